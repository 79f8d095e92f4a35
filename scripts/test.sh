#!/usr/bin/env bash
# Installs the dependencies, builds copgen with its tests, and runs every test; then does
# the same against a CUDA LibTorch (scripts/dev/install_cuda_torch.sh: pip torch 2.11.0 for
# CUDA 13.0 in a virtual environment), where the unit, e2e and python tests run on the CPU.
# Usage: scripts/test.sh [ctest arguments...]   (e.g. -L unit, -R cli; both builds get them)
# Environment:
#   COPGEN_BUILD_DIR        the Debian LibTorch (1.13, CPU) build (default: build)
#   COPGEN_CUDA_BUILD_DIR   the CUDA LibTorch build (default: build-cuda)
#   COPGEN_SKIP_CUDA_BUILD=1  only the Debian LibTorch build (CI runs both: docs/performance.md
#                           gives each part's time)
#   COPGEN_CUDA_TORCH_VENV  where install_cuda_torch.sh puts torch (default /opt/copgen-torch-2.11.0)
#   COPGEN_SKIP_GPU_ROOT=1  leave out the last part: the CUDA build's GPU-machine bundle run
#                           with --cpu inside a minimal Debian root (scripts/gpu/gpu_root.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${COPGEN_BUILD_DIR:-$root/build}"
cuda_build_dir="${COPGEN_CUDA_BUILD_DIR:-$root/build-cuda}"
jobs="$(nproc 2>/dev/null || echo 2)"

t0=$SECONDS
stamp() { echo "test.sh: $(date -u +%H:%M:%S) $1 (+$((SECONDS - t0)) s)"; }
# elapsed NAME START: how long part NAME took
timings=()
elapsed() { timings+=("$(printf '%-28s %5d s' "$1" $((SECONDS - $2)))"); }
report() {
  echo "test.sh: timings"
  for line in "${timings[@]}"; do echo "  $line"; done
}
trap report EXIT

stamp "LibTorch 1.13 (Debian, CPU): build"
t=$SECONDS
bash "$root/scripts/dev/build.sh" "$build_dir" -DCOPGEN_BUILD_TESTS=ON
elapsed "1.13 deps+configure+build" $t
stamp "LibTorch 1.13 (Debian, CPU): tests"
t=$SECONDS
(cd "$build_dir" && ctest --output-on-failure -j "$jobs" "$@")
elapsed "1.13 tests" $t

if [ "${COPGEN_SKIP_CUDA_BUILD:-0}" = 1 ]; then
  stamp "no CUDA LibTorch build (COPGEN_SKIP_CUDA_BUILD=1)"
  exit 0
fi

stamp "LibTorch 2.11 (pip, CUDA 13.0): install"
t=$SECONDS
prefix="$(bash "$root/scripts/dev/install_cuda_torch.sh" --print-prefix)"
venv_python="$(bash "$root/scripts/dev/install_cuda_torch.sh" --print-venv)/bin/python"
elapsed "2.11 install" $t
stamp "LibTorch 2.11 (pip, CUDA 13.0): configure ($prefix)"
t=$SECONDS
mkdir -p "$cuda_build_dir"
cmake -S "$root" -B "$cuda_build_dir" -DCMAKE_BUILD_TYPE=Release -DCOPGEN_BUILD_TESTS=ON \
  -DCMAKE_PREFIX_PATH="$prefix" -DCOPGEN_PYTHON="$venv_python" -DPython_EXECUTABLE="$venv_python" | tee "$cuda_build_dir/configure.log"
if ! grep -q 'copgen: CUDA support ON' "$cuda_build_dir/configure.log"; then
  echo "test.sh: the LibTorch in $prefix did not give a CUDA build (copgen: CUDA support OFF)" >&2
  exit 1
fi
elapsed "2.11 configure" $t
stamp "LibTorch 2.11 (pip, CUDA 13.0): build"
t=$SECONDS
cmake --build "$cuda_build_dir" -j "$jobs"
elapsed "2.11 build" $t
stamp "LibTorch 2.11 (pip, CUDA 13.0): tests"
t=$SECONDS
# No GPU in CI: the gpu label would only report skips.
(cd "$cuda_build_dir" && ctest --output-on-failure -j "$jobs" -L 'unit|e2e|python' "$@")
elapsed "2.11 tests" $t

if [ "${COPGEN_SKIP_GPU_ROOT:-0}" = 1 ]; then
  stamp "no GPU check in the GPU-like root (COPGEN_SKIP_GPU_ROOT=1)"
else
  # The GPU machine's path without a GPU: the bundle of the CUDA build, then
  # `gpu_check.sh --run BUNDLE --cpu` inside a minimal Debian with only the pip torch
  # (scripts/gpu/gpu_root.sh; needs root, cached in /var/cache/copgen-gpu-root). Fails when
  # a step fails, the ldd step included. The time limit is generous: no timed tests.
  stamp "GPU check from the bundle in the GPU-like root (CPU)"
  t=$SECONDS
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  bash "$root/scripts/gpu/gpu_check.sh" --prepare "$cuda_build_dir/gpu-bundle" --build "$cuda_build_dir"
  $SUDO env COPGEN_CUDA_TORCH_VENV="$(dirname "$(dirname "$venv_python")")" \
    bash "$root/scripts/gpu/gpu_root.sh" --bundle "$cuda_build_dir/gpu-bundle" \
    --out "$cuda_build_dir/gpu-root-out" -- --time-limit 1800
  elapsed "gpu check in the root" $t
fi
stamp "done"
