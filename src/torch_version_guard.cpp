// Fails the build when the LibTorch headers compiled against are not those of the
// LibTorch CMake found and links (e.g. Debian's libtorch-dev headers in /usr/include
// picked up while linking a pip/official LibTorch's libraries, or the other way round).
#include <torch/version.h>

#include "copgen/torch_found_version.hpp"

static_assert(TORCH_VERSION_MAJOR == COPGEN_FOUND_TORCH_VERSION_MAJOR &&
                  TORCH_VERSION_MINOR == COPGEN_FOUND_TORCH_VERSION_MINOR,
              "copgen: <torch/version.h> is not from the LibTorch CMake found (" COPGEN_FOUND_TORCH_VERSION
              ", " COPGEN_FOUND_TORCH_LIBRARY_DIR "): another LibTorch's headers come first on the include "
              "path (Debian's libtorch-dev installs them under /usr/include)");
