# The binaries' RUNPATH: they load the LibTorch (and the CUDA runtime) they were built
# against, never another one found first at run time (e.g. Debian's libtorch.so in
# /usr/lib/<triplet> for a build against pip's torch); ctest torch_runpath checks it with
# ldd (tests/check_torch_runpath.cmake). Included by the top-level CMakeLists.txt after
# CopgenTorch.cmake (it needs COPGEN_TORCH_LIBRARY_DIR) and before any target is made
# (targets take CMAKE_INSTALL_RPATH / CMAKE_BUILD_RPATH when they are created).

# The LibTorch library directory, unless the linker searches it anyway (Debian's).
if(NOT COPGEN_TORCH_LIBRARY_DIR IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES
   AND NOT COPGEN_TORCH_LIBRARY_DIR IN_LIST CMAKE_PLATFORM_IMPLICIT_LINK_DIRECTORIES)
  list(APPEND CMAKE_INSTALL_RPATH "${COPGEN_TORCH_LIBRARY_DIR}")
endif()
# A pip torch finds its CUDA libraries in the nvidia-* wheels (its own RUNPATH); copgen links
# the CUDA runtime directly (torch::cudart, from the toolkit CMake found), so the wheels'
# libcudart directory goes into its RUNPATH too: it then runs where no CUDA toolkit is.
file(GLOB copgen_wheel_cudart "${COPGEN_TORCH_LIBRARY_DIR}/../../nvidia/*/lib/libcudart.so*")
foreach(copgen_p IN LISTS copgen_wheel_cudart)
  get_filename_component(copgen_p "${copgen_p}" DIRECTORY)
  get_filename_component(copgen_p "${copgen_p}" REALPATH)
  list(APPEND CMAKE_INSTALL_RPATH "${copgen_p}")
  list(APPEND CMAKE_BUILD_RPATH "${copgen_p}")
endforeach()
list(REMOVE_DUPLICATES CMAKE_INSTALL_RPATH)
# ... and the other non-system directories linked from (e.g. the CUDA toolkit's).
set(CMAKE_INSTALL_RPATH_USE_LINK_PATH ON)
