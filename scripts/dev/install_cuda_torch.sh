#!/usr/bin/env bash
# Installs a pinned CUDA build of torch (PyPI's default torch 2.11.0 wheel, built for
# CUDA 13.0) into a virtual environment, for building copgen against a CUDA LibTorch:
#
#   prefix="$(bash scripts/dev/install_cuda_torch.sh --print-prefix)"
#   cmake -S . -B build-cuda -DCMAKE_PREFIX_PATH="$prefix" -DCOPGEN_PYTHON="$venv/bin/python"
#
# Idempotent: when the environment already imports torch 2.11.0 nothing is downloaded.
# The environment is made with Debian's /usr/bin/python3 (never the python3 first on
# PATH, and nothing is pip-installed into Debian's Python).
#
# Environment: COPGEN_CUDA_TORCH_VENV   the environment (default /opt/copgen-torch-2.11.0)
# Options:     --print-prefix   print only torch's CMake prefix (nothing else on stdout)
#              --print-venv     print only the environment's directory
# Otherwise the CMake prefix is the last line printed on stdout; progress goes to stderr.
set -euo pipefail

TORCH_VERSION=2.11.0
venv="${COPGEN_CUDA_TORCH_VENV:-/opt/copgen-torch-$TORCH_VERSION}"
mode=install
case "${1:-}" in
  --print-prefix) mode=prefix ;;
  --print-venv) mode=venv ;;
  "") ;;
  *) echo "usage: $0 [--print-prefix|--print-venv]" >&2; exit 2 ;;
esac

log() { echo "install_cuda_torch: $*" >&2; }
py="$venv/bin/python"

# "VERSION CUDA PREFIX" of the environment's torch (one import: importing torch is slow).
torch_info() {
  [ -x "$py" ] && "$py" -c 'import numpy, torch, torch.utils
print(torch.__version__.split("+")[0], torch.version.cuda or "none", torch.utils.cmake_prefix_path)' 2>/dev/null
}
info=""
have_torch() {
  info="$(torch_info)" && [ "${info%% *}" = "$TORCH_VERSION" ]
}

if [ "$mode" = venv ]; then
  echo "$venv"
  exit 0
fi

if have_torch; then
  log "torch $TORCH_VERSION already in $venv"
else
  if [ ! -x /usr/bin/python3 ]; then
    log "Debian's /usr/bin/python3 is missing (scripts/dev/install_deps.sh)"
    exit 1
  fi
  if ! /usr/bin/python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
    log "installing python3-venv"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends python3-venv
  fi
  if [ ! -x "$py" ]; then
    log "creating $venv"
    /usr/bin/python3 -m venv "$venv"
  fi
  log "installing torch==$TORCH_VERSION (CUDA build, several GB) into $venv"
  # stdout of pip goes to stderr: stdout carries only the prefix.
  "$py" -m pip install --no-input --progress-bar off "torch==$TORCH_VERSION" numpy >&2
  if ! have_torch; then
    log "torch $TORCH_VERSION does not import from $venv after installing"
    exit 1
  fi
fi

# The CUDA major of the wheel must match nvcc's (CMake compiles against nvcc's toolkit
# headers while linking the wheel's CUDA runtime).
read -r _ torch_cuda torch_prefix <<<"$info"
if [ "$torch_cuda" = none ]; then
  log "torch in $venv is a CPU-only build (torch.version.cuda is None)"
  exit 1
fi
nvcc_bin="$(command -v nvcc || true)"
if [ -z "$nvcc_bin" ] && [ -x /usr/local/cuda/bin/nvcc ]; then nvcc_bin=/usr/local/cuda/bin/nvcc; fi
if [ -n "$nvcc_bin" ]; then
  nvcc_cuda="$("$nvcc_bin" --version | sed -n 's/.*release \([0-9][0-9.]*\),.*/\1/p')"
  if [ "${nvcc_cuda%%.*}" != "${torch_cuda%%.*}" ]; then
    log "CUDA mismatch: torch $TORCH_VERSION is built for CUDA $torch_cuda but $nvcc_bin is CUDA $nvcc_cuda"
    exit 1
  fi
  [ "$mode" = prefix ] || log "torch CUDA $torch_cuda, nvcc ($nvcc_bin) CUDA $nvcc_cuda"
else
  log "warning: no nvcc found; CMake needs a CUDA $torch_cuda toolkit to use this LibTorch"
fi

echo "$torch_prefix"
