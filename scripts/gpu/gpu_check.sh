#!/usr/bin/env bash
# copgen's GPU verification in one call; see scripts/gpu/gpu_check.py for the steps.
#   scripts/gpu/gpu_check.sh --prepare DIR [--build build-cuda]   # dev machine: the bundle (< 64 MiB)
#   scripts/gpu/gpu_check.sh --run DIR                            # GPU machine, repository root
#   scripts/gpu/gpu_check.sh --run DIR --cpu                      # the same from the bundle, on the CPU
#                                                     # (CI: inside scripts/gpu/gpu_root.sh's root)
#   scripts/gpu/gpu_check.sh --dry-run [--build build]            # CPU: every step, tiny models
# Writes $OUT/gpu_check.json and $OUT/gpu_check.log (OUT defaults to ./gpu-check-out).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py=""
for a in "$@"; do
  case "$a" in --python|--python=*) py="given" ;; esac
done
if [ -z "$py" ]; then
  case " $* " in
    *" --run "*) py="$(command -v python3)" ;;  # the GPU machine's python with CUDA torch
    *) py="$(bash "$root/scripts/dev/find_python.sh" 2>/dev/null || command -v python3)" ;;
  esac
  exec "$py" "$root/scripts/gpu/gpu_check.py" --python "$py" "$@"
fi
exec "$(command -v python3)" "$root/scripts/gpu/gpu_check.py" "$@"
