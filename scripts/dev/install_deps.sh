#!/usr/bin/env bash
# Installs everything copgen needs to build, test and export models on Debian 12.
# Idempotent: packages already present are left alone. Run as root (or with sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ccache
  libtorch-dev libopenblas0-pthread
  libgdal-dev gdal-bin
  libcurl4-openssl-dev         # src/remote.cpp: STAC documents and raster probes over HTTP
  libcli11-dev libspdlog-dev nlohmann-json3-dev catch2
  python3-torch python3-numpy
  jq time                      # the benchmarks in bench/
  debootstrap                  # scripts/gpu/gpu_root.sh: the GPU-machine-like root of CI's GPU check
  chromium fonts-dejavu-core   # tests/browser: the HTML pages opened in headless Chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install_deps: done"
