#!/usr/bin/env bash
# Installs the dependencies, builds copgen with its tests, and runs every test.
# Usage: scripts/test.sh [ctest arguments...]   (e.g. -L unit, -R cli)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${COPGEN_BUILD_DIR:-$root/build}"

bash "$root/scripts/build.sh" "$build_dir" -DCOPGEN_BUILD_TESTS=ON
cd "$build_dir"
ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
