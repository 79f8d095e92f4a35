# Finding LibTorch, and the workarounds its CMake config (TorchConfig.cmake, Caffe2's)
# needs so that one build uses one LibTorch: Debian's libtorch-dev, an official LibTorch
# or pip's torch, given through CMAKE_PREFIX_PATH. Included once by the top-level
# CMakeLists.txt, before any target is made. Sets, besides TorchConfig.cmake's own
# Torch_VERSION, TORCH_INCLUDE_DIRS and TORCH_LIBRARIES:
#   COPGEN_WITH_CUDA              ON when the LibTorch found has CUDA (and COPGEN_CUDA is ON)
#   COPGEN_TORCH_LIBRARY_DIR      the real directory of the libtorch.so found
#   COPGEN_TORCH_VERSION_MAJOR/_MINOR  Torch_VERSION's numbers
#   COPGEN_TORCH_LINK_LIBRARIES   what a target links for LibTorch, in this order
#   copgen_torch_location         the libtorch.so of the `torch` target
#   CMAKE_CXX_STANDARD            17, or 20 for a LibTorch that requires it (unless given)
# and defines copgen_target_use_torch(TARGET): LibTorch's headers ahead of all others, and
# the CUDA switch, for TARGET.

# ---- which LibTorch --------------------------------------------------------------------
# Debian's libtorch-dev ships TorchConfig.cmake; an official (CUDA) LibTorch is
# found the same way through CMAKE_PREFIX_PATH, and so is pip's torch, given the prefix
# that `python -c 'import torch; print(torch.utils.cmake_prefix_path)'` prints
# (scripts/dev/install_cuda_torch.sh --print-prefix), i.e. <site-packages>/torch/share/cmake.
# TorchConfig.cmake then looks up libtorch.so and libc10.so in <prefix>/lib and the system
# directories before torch's own lib/, and would pick Debian's /usr/lib/<triplet>/libtorch.so:
# so the torch root above such a prefix (or above a Torch_DIR) goes first in the prefixes.
set(copgen_torch_roots)
foreach(copgen_p IN LISTS CMAKE_PREFIX_PATH)
  if(EXISTS "${copgen_p}/Torch/TorchConfig.cmake")
    get_filename_component(copgen_p "${copgen_p}/../.." ABSOLUTE)
    list(APPEND copgen_torch_roots "${copgen_p}")
  endif()
endforeach()
if(Torch_DIR AND EXISTS "${Torch_DIR}/TorchConfig.cmake" AND EXISTS "${Torch_DIR}/../../../lib")
  get_filename_component(copgen_p "${Torch_DIR}/../../.." ABSOLUTE)
  list(APPEND copgen_torch_roots "${copgen_p}")
endif()
list(PREPEND CMAKE_PREFIX_PATH ${copgen_torch_roots})

# A CUDA LibTorch's Caffe2 config compiles a CUDA probe (GPU detection) with
# CMAKE_CUDA_STANDARD, which it defaults to CMAKE_CXX_STANDARD; CMake 3.25 knows no CUDA20
# flags for nvcc 13, so -DCMAKE_CXX_STANDARD=20 would fail there. copgen compiles no CUDA
# sources: the probe gets C++17.
if(NOT DEFINED CMAKE_CUDA_STANDARD)
  set(CMAKE_CUDA_STANDARD 17)
endif()
find_package(Torch REQUIRED)

# The libraries TorchConfig.cmake found by name must be those of its own targets (a stale
# cache or a prefix order that lets another LibTorch's libraries win fails here).
get_target_property(copgen_torch_location torch LOCATION)
get_filename_component(copgen_torch_target_dir "${copgen_torch_location}" DIRECTORY)
get_filename_component(copgen_torch_target_dir "${copgen_torch_target_dir}" REALPATH)
foreach(copgen_lib_var TORCH_LIBRARY c10_LIBRARY)
  get_filename_component(copgen_p "${${copgen_lib_var}}" DIRECTORY)
  get_filename_component(copgen_p "${copgen_p}" REALPATH)
  if(NOT copgen_p STREQUAL copgen_torch_target_dir)
    message(FATAL_ERROR "copgen: ${copgen_lib_var} is ${${copgen_lib_var}}, not in the LibTorch found "
                        "(${Torch_DIR}, libraries in ${copgen_torch_target_dir}). Give the torch root "
                        "in CMAKE_PREFIX_PATH, or a fresh build directory.")
  endif()
endforeach()
# The directory of the LibTorch libraries found (Debian: /usr/lib/<triplet>; a pip or
# official LibTorch: its lib/): CopgenRunpath.cmake puts it in the binaries' RUNPATH.
set(COPGEN_TORCH_LIBRARY_DIR "${copgen_torch_target_dir}")

# ---- CUDA and the C++ standard ---------------------------------------------------------
# A LibTorch with CUDA (an official build given through CMAKE_PREFIX_PATH) defines the
# torch_cuda / c10_cuda targets; then src/cuda.cpp compiles its CUDA graph, pinned-memory
# and device-statistics code (COPGEN_WITH_CUDA). Debian's CPU-only LibTorch has neither.
option(COPGEN_CUDA "Use CUDA when the LibTorch found has it" ON)
set(COPGEN_WITH_CUDA OFF)
if(COPGEN_CUDA AND (TARGET torch_cuda OR TARGET c10_cuda OR CAFFE2_USE_CUDA OR TORCH_CUDA_LIBRARIES))
  set(COPGEN_WITH_CUDA ON)
endif()
message(STATUS "copgen: CUDA support ${COPGEN_WITH_CUDA} (LibTorch ${Torch_VERSION})")
if(NOT DEFINED CMAKE_CXX_STANDARD)
  if(Torch_VERSION VERSION_GREATER_EQUAL 2.13)
    set(CMAKE_CXX_STANDARD 20)  # LibTorch >= 2.13 headers require C++20
  else()
    set(CMAKE_CXX_STANDARD 17)
  endif()
endif()
message(STATUS "copgen: C++${CMAKE_CXX_STANDARD}")

# ---- MKL -------------------------------------------------------------------------------
# Caffe2's caffe2::mkl target names ${MKL_ROOT}/lib/intel64 etc. even when MKL_ROOT is
# empty: keep only link directories that exist (else /lib/intel64... end up in RUNPATH).
if(TARGET caffe2::mkl)
  get_target_property(copgen_mkl_dirs caffe2::mkl INTERFACE_LINK_DIRECTORIES)
  if(copgen_mkl_dirs)
    set(copgen_existing)
    foreach(copgen_p IN LISTS copgen_mkl_dirs)
      if(IS_DIRECTORY "${copgen_p}")
        list(APPEND copgen_existing "${copgen_p}")
      endif()
    endforeach()
    set_target_properties(caffe2::mkl PROPERTIES INTERFACE_LINK_DIRECTORIES "${copgen_existing}")
  endif()
endif()

# ---- the version the headers must see ---------------------------------------------------
# Torch_VERSION as the headers must see it: src/torch_version_guard.cpp static_asserts
# that <torch/version.h> is the found LibTorch's, so that a build can never mix one
# LibTorch's headers (e.g. Debian's in /usr/include) with another's libraries
# (CopgenGenerated.cmake writes the numbers into torch_found_version.hpp).
string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" copgen_torch_mm "${Torch_VERSION}")
if(NOT copgen_torch_mm)
  message(FATAL_ERROR "copgen: cannot read major.minor from Torch_VERSION '${Torch_VERSION}'")
endif()
set(COPGEN_TORCH_VERSION_MAJOR ${CMAKE_MATCH_1})
set(COPGEN_TORCH_VERSION_MINOR ${CMAKE_MATCH_2})

# ---- linking ---------------------------------------------------------------------------
# libstdc++ goes before LibTorch in the binaries' NEEDED list, so that it comes first in the
# dynamic symbol lookup: pip's libtorch.so exports (as strong symbols) a statically linked
# std::filesystem that would otherwise interpose on libstdc++'s, and its remove_all crashes
# when called from our code (pytorch/pytorch#133437). Harmless against Debian's LibTorch.
set(COPGEN_TORCH_LINK_LIBRARIES stdc++ ${TORCH_LIBRARIES})

# ---- headers, per target ---------------------------------------------------------------
# copgen_target_use_torch(TARGET): LibTorch's include directories for TARGET (PUBLIC),
# first of all, and COPGEN_WITH_CUDA with the CUDA toolkit's headers where CUDA is on.
# Call it after TARGET's own include directories.
function(copgen_target_use_torch target)
  # Torch's exported flags carry -D_GLIBCXX_USE_CXX11_ABI and include paths; its headers
  # are marked SYSTEM so that our warnings stay ours.
  # BEFORE: the found LibTorch's headers come first, ahead of any other include directory
  # (and of /usr/include, where Debian's libtorch-dev puts torch/, ATen/ and c10/).
  target_include_directories(${target} SYSTEM BEFORE PUBLIC ${TORCH_INCLUDE_DIRS})
  # pip's torch ships its own fmt (v12) in <torch>/include/fmt: with torch's include
  # directories first, spdlog (built against Debian's fmt 9) would be compiled against it and
  # fail. A directory holding only a link to the fmt headers of the fmt::fmt that spdlog uses
  # goes before them (no LibTorch header that copgen includes uses fmt).
  set(torch_fmt OFF)
  foreach(dir IN LISTS TORCH_INCLUDE_DIRS)
    if(EXISTS "${dir}/fmt/core.h")
      set(torch_fmt ON)
    endif()
  endforeach()
  if(torch_fmt AND TARGET fmt::fmt)
    get_target_property(fmt_include fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
    list(GET fmt_include 0 fmt_include)
    set(fmt_shim ${CMAKE_CURRENT_BINARY_DIR}/fmt-before-torch)
    file(MAKE_DIRECTORY ${fmt_shim})
    file(CREATE_LINK ${fmt_include}/fmt ${fmt_shim}/fmt SYMBOLIC)
    target_include_directories(${target} SYSTEM BEFORE PUBLIC ${fmt_shim})
    message(STATUS "copgen: fmt headers from ${fmt_include} (for spdlog), before LibTorch's own fmt")
  endif()
  if(COPGEN_WITH_CUDA)
    target_compile_definitions(${target} PUBLIC COPGEN_WITH_CUDA=1)
    if(CUDAToolkit_INCLUDE_DIRS)
      target_include_directories(${target} SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
    elseif(CUDA_INCLUDE_DIRS)
      target_include_directories(${target} SYSTEM PRIVATE ${CUDA_INCLUDE_DIRS})
    endif()
  endif()
endfunction()
