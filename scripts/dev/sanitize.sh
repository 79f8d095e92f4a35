#!/usr/bin/env bash
# Builds copgen and its tests with AddressSanitizer and UndefinedBehaviorSanitizer
# (-DCOPGEN_SANITIZE=ON) and runs the test suite under them. See docs/errors.md.
#
# Usage: scripts/dev/sanitize.sh [BUILD_DIR] [ctest arguments...]
#   BUILD_DIR  default /tmp/build-asan
#   e.g. scripts/dev/sanitize.sh /tmp/build-asan -L unit
# Env: SANITIZE_BUILD_JOBS (default 2), SANITIZE_TEST_JOBS (default 2).
#
# LibTorch, GDAL and their dependencies are not instrumented. Leak checking stays on for
# copgen's code; the one-time allocations those libraries never free are suppressed in
# scripts/dev/sanitizers/lsan.supp. UBSan stops at the first finding (-fno-sanitize-recover).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="${1:-/tmp/build-asan}"
shift || true

cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOPGEN_SANITIZE=ON \
  -DCOPGEN_BUILD_TESTS=ON >/dev/null
cmake --build "$build_dir" -j "${SANITIZE_BUILD_JOBS:-2}"

supp="$root/scripts/dev/sanitizers"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_odr_violation=0:strict_string_checks=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$supp/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp}"
cd "$build_dir"
ctest --output-on-failure -j "${SANITIZE_TEST_JOBS:-2}" "$@"
