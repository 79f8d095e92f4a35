# Writes the git commit of the source tree into a header, at every build (cmake -P; run by
# the copgen_build_commit target of CopgenGenerated.cmake). The file is rewritten only when
# its text changes, so that only the file that includes it (src/provenance.cpp) recompiles
# after a commit. Outside a git checkout (a source archive) the commit is "unknown".
#   cmake -DSOURCE_DIR=<repository> -DOUTPUT=<header> -P CopgenBuildCommit.cmake
set(commit "unknown")
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS "${SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${SOURCE_DIR}" rev-parse HEAD
                  OUTPUT_VARIABLE head OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE head_rc ERROR_QUIET)
  if(head_rc EQUAL 0 AND head MATCHES "^[0-9a-f]+$")
    set(commit "${head}")
    # uncommitted changes to tracked files (untracked files are not looked at)
    execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${SOURCE_DIR}" status --porcelain --untracked-files=no
                    OUTPUT_VARIABLE changes RESULT_VARIABLE status_rc ERROR_QUIET)
    if(status_rc EQUAL 0 AND NOT changes STREQUAL "")
      string(APPEND commit "-dirty")
    endif()
  endif()
endif()
set(text "// Generated at build time by cmake/CopgenBuildCommit.cmake; do not edit.
#pragma once
namespace copgen {
inline constexpr const char* kGitCommit = \"${commit}\";
}  // namespace copgen
")
set(old "")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUTPUT}" "${text}")
endif()
