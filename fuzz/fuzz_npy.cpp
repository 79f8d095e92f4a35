// Fuzzes the .npy reader: the bytes are written to a file (read_npy reads files) and
// must load as a float32 tensor of the declared shape or throw copgen::InputError.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "copgen/error.hpp"
#include "copgen/npy.hpp"

namespace {
std::string fuzz_path() {
  const char* dir = std::getenv("COPGEN_FUZZ_TMP");
  return std::string(dir != nullptr ? dir : "/tmp") + "/copgen-fuzz-" + std::to_string(::getpid()) + ".npy";
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = fuzz_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    const torch::Tensor t = copgen::read_npy(path);
    if (t.scalar_type() != torch::kFloat32 || !t.is_contiguous()) __builtin_trap();
  } catch (const copgen::InputError&) {
  }
  return 0;
}
