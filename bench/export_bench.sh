#!/usr/bin/env bash
# Benchmark (not a test): wall time of the tiny model exports that every build of the
# tests makes (tests/CMakeLists.txt) and that tests/python/test_export.py makes once:
# the tiny models, with parity fixtures, and the tiny metric feature extractors, each
# REPEAT times (default 3). Reports figures; never fails on time.
#
#   bench/export_bench.sh [PYTHON] [REPEAT]
#
# PYTHON: an interpreter with torch and numpy (default: scripts/dev/find_python.sh's).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${1:-$(bash "$root/scripts/dev/find_python.sh")}"
repeat="${2:-3}"
export_models="$root/scripts/models/export_models.py"
work="$(mktemp -d "${TMPDIR:-/tmp}/copgen-export-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT

# One line per export: its name and each run's wall seconds.
measure() {
  local name=$1; shift
  local times=()
  for ((i = 0; i < repeat; i++)); do
    rm -rf "$work/out"
    local start=$EPOCHREALTIME
    "$python" "$export_models" "$@" --quiet
    times+=("$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')")
  done
  printf '%-44s' "$name"
  printf ' %8.2f' "${times[@]}"
  printf '\n'
}

echo "copgen export: $("$python" -c 'import torch; print("torch", torch.__version__)'), $repeat run(s) each, seconds"
measure "tiny models + parity fixtures (test_export)" \
  --tiny --seed 7 --out "$work/out/tiny" --parity-dir "$work/out/parity" --save-state-dicts "$work/out/state"
measure "tiny models + parity fixtures (ctest)" \
  --tiny --seed 7 --out "$work/out/tiny" --parity-dir "$work/out/parity"
measure "tiny extractors + parity fixtures (ctest)" \
  --tiny-extractors --seed 7 --extractors-out "$work/out/ext" --parity-dir "$work/out/ext-parity"
