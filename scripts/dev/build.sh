#!/usr/bin/env bash
# Installs the dependencies (Debian 12) and builds copgen into BUILD_DIR (default: build).
# Usage: scripts/dev/build.sh [BUILD_DIR] [extra cmake arguments...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="${1:-$root/build}"
shift || true

bash "$root/scripts/dev/install_deps.sh"
jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@"
# COPGEN_BUILD_TARGET (e.g. copgen) builds one target instead of everything
if [ -n "${COPGEN_BUILD_TARGET:-}" ]; then
  cmake --build "$build_dir" -j "$jobs" --target "$COPGEN_BUILD_TARGET"
else
  cmake --build "$build_dir" -j "$jobs"
fi
