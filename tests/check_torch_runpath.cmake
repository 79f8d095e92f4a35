# ctest torch_runpath: the copgen binary, as built and as installed, loads libtorch_cpu.so
# and libc10.so from TORCH_LIBRARY_DIR (the LibTorch CMake found), never from another
# LibTorch such as Debian's in /usr/lib/<triplet>.
#   cmake -DCOPGEN_BIN=... -DBUILD_DIR=... -DTORCH_LIBRARY_DIR=... -DSCRATCH=... -P check_torch_runpath.cmake
foreach(v COPGEN_BIN BUILD_DIR TORCH_LIBRARY_DIR SCRATCH)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_torch_runpath: -D${v}= missing")
  endif()
endforeach()
find_program(LDD ldd REQUIRED)
get_filename_component(want_dir "${TORCH_LIBRARY_DIR}" REALPATH)

function(check_binary bin)
  if(NOT EXISTS "${bin}")
    message(FATAL_ERROR "check_torch_runpath: no ${bin}")
  endif()
  execute_process(COMMAND ${LDD} "${bin}" OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "check_torch_runpath: ldd ${bin} failed (${rc}):\n${out}")
  endif()
  foreach(lib libtorch_cpu.so libc10.so)
    string(REGEX MATCH "[\t ]${lib}[^ ]* => ([^ ]+)" line "${out}")
    if(NOT line)
      message(FATAL_ERROR "check_torch_runpath: ${bin} does not load ${lib} (or it is not found):\n${out}")
    endif()
    get_filename_component(got_dir "${CMAKE_MATCH_1}" DIRECTORY)
    get_filename_component(got_dir "${got_dir}" REALPATH)
    if(NOT got_dir STREQUAL want_dir)
      message(FATAL_ERROR "check_torch_runpath: ${bin} loads ${CMAKE_MATCH_1}, not from the LibTorch "
                          "it was built against (${want_dir})")
    endif()
    message(STATUS "${bin}: ${lib} => ${CMAKE_MATCH_1}")
  endforeach()
endfunction()

check_binary("${COPGEN_BIN}")

file(REMOVE_RECURSE "${SCRATCH}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${SCRATCH}"
                OUTPUT_VARIABLE out ERROR_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "check_torch_runpath: cmake --install ${BUILD_DIR} failed:\n${out}")
endif()
get_filename_component(name "${COPGEN_BIN}" NAME)
check_binary("${SCRATCH}/bin/${name}")
file(REMOVE_RECURSE "${SCRATCH}")
