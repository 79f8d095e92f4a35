#!/usr/bin/env bash
# `gpu_check.sh --run BUNDLE --cpu` inside a root file system that looks like the GPU machine:
# a minimal Debian 12 (debootstrap --variant=minbase --include=python3: the C library, bash,
# python3 3.11, nothing of GDAL, PROJ, copgen or Debian's torch) with the pinned pip CUDA torch
# (the virtual environment of scripts/dev/install_cuda_torch.sh) bound read-only at
# /opt/torch/.venv and first on PATH, and a copy of what the GPU machine receives: the
# working tree's tracked and untracked-not-ignored files plus the bundle, in /work/repo.
# Run as root (debootstrap, mounts, chroot). docs/performance.md explains the choice.
#
#   scripts/gpu/gpu_root.sh --build-root                  # make the root once (cached)
#   scripts/gpu/gpu_root.sh --bundle DIR [--out DIR] [-- gpu_check args...]
#
# --bundle DIR  a directory made by `gpu_check.sh --prepare DIR`; it is copied to
#               /work/repo/build-cuda/gpu-bundle inside the root, where
#               `carry: ["build-cuda/gpu-bundle"]` puts it on the GPU machine
# --out DIR     where gpu_check.json and gpu_check.log land (default ./gpu-root-out)
# Environment:
#   COPGEN_GPU_ROOT          the cached root (default /var/cache/copgen-gpu-root)
#   COPGEN_CUDA_TORCH_VENV   the pip torch's environment (default /opt/copgen-torch-2.11.0)
#   COPGEN_DEBIAN_MIRROR     debootstrap's mirror (default http://deb.debian.org/debian)
# Exit status: gpu_check's (0 when every step, the ldd step included, passed); 2 on a
# setup error. All mounts live in a private mount namespace (unshare -m), so none outlives
# the run even when it is killed; a trap also unmounts them and removes the run's files.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
root="${COPGEN_GPU_ROOT:-/var/cache/copgen-gpu-root}"
venv="${COPGEN_CUDA_TORCH_VENV:-/opt/copgen-torch-2.11.0}"
mirror="${COPGEN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
recipe="debootstrap --variant=minbase --include=python3 bookworm"

log() { echo "gpu_root: $*" >&2; }
die() { log "$*"; exit 2; }

build_only=0 bundle="" out="$PWD/gpu-root-out"
while [ $# -gt 0 ]; do
  case "$1" in
    --build-root) build_only=1 ;;
    --bundle) bundle="${2:?--bundle needs a directory}"; shift ;;
    --out) out="${2:?--out needs a directory}"; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
extra=("$@")
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mount, chroot)"

# Mount points below DIR in this mount namespace (a leftover would make rm -rf reach the host).
mounts_below() { awk -v d="$1/" 'index($2 "/", d) == 1 { print $2 }' /proc/self/mounts; }

build_root() {
  if [ -f "$root/.copgen-gpu-root" ] && [ "$(cat "$root/.copgen-gpu-root")" = "$recipe" ]; then
    log "root $root ready ($recipe)"
    return
  fi
  command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/dev/install_deps.sh installs it)"
  local tmp="$root.tmp"
  for d in "$root" "$tmp"; do
    [ -z "$(mounts_below "$d")" ] || die "something is mounted below $d; unmount it first"
  done
  rm -rf "$tmp"
  mkdir -p "$(dirname "$root")"
  log "making $root: $recipe ($mirror)"
  local t=$SECONDS
  debootstrap --variant=minbase --include=python3 bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
    { tail -20 "$tmp.log" >&2; die "debootstrap failed (log: $tmp.log)"; }
  rm -f "$tmp"/var/cache/apt/archives/*.deb
  echo "$recipe" >"$tmp/.copgen-gpu-root"
  rm -rf "$root"
  mv "$tmp" "$root"
  rm -f "$tmp.log"
  log "root made in $((SECONDS - t)) s ($(du -sh "$root" | cut -f1))"
}

build_root
[ "$build_only" = 1 ] && exit 0

[ -n "$bundle" ] || die "--bundle DIR is required (gpu_check.sh --prepare DIR makes it)"
[ -f "$bundle/bundle.tar.xz" ] || die "$bundle/bundle.tar.xz is missing (gpu_check.sh --prepare $bundle)"
[ -x "$venv/bin/python3" ] || die "$venv/bin/python3 is missing (scripts/dev/install_cuda_torch.sh)"
# The venv's python is a link to /usr/bin/python3: the root's, which must be the same minor.
venv_minor="$(sed -n 's/^version *= *\([0-9]*\.[0-9]*\).*/\1/p' "$venv/pyvenv.cfg")"
[ -x "$root/usr/bin/python$venv_minor" ] ||
  die "the root has no python$venv_minor for $venv (made with python $venv_minor)"

# The run's files: the working-tree copy, /tmp, and the output, bound into the root.
run="$(mktemp -d /var/tmp/copgen-gpu-root-run.XXXXXX)"
mkdir -p "$run/repo" "$run/tmp" "$out"
out="$(cd "$out" && pwd)"
cleanup() {
  local m
  for m in $(mounts_below "$root" | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$run"
}
trap cleanup EXIT
child=""
# SIGTERM/SIGINT reach gpu_check.py (the unshare process execs down to it), which records
# the step in progress as interrupted; then the trap above cleans up.
stop() { [ -z "$child" ] || { kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; }; exit "$1"; }
trap 'stop 143' TERM
trap 'stop 130' INT

# What the GPU machine receives: tracked and untracked-not-ignored files (deleted ones
# skipped), then the carried bundle. Without git (a source tarball): everything but .git
# and the build trees.
if command -v git >/dev/null && git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$repo" && git ls-files -z -co --exclude-standard |
    while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done |
    tar --null -T - -cf -) | tar -xf - -C "$run/repo"
else
  tar -C "$repo" --exclude=./.git --exclude='./build*' --exclude=./models/demo -cf - . | tar -xf - -C "$run/repo"
fi
mkdir -p "$run/repo/build-cuda/gpu-bundle"
cp -a "$bundle"/. "$run/repo/build-cuda/gpu-bundle/"
bytes="$(du -sb "$run/repo" | cut -f1)"
log "working-tree copy $((bytes / 1048576)) MiB with the bundle ($(du -sh "$bundle" | cut -f1))"
[ "$bytes" -le $((64 * 1048576)) ] ||
  die "the working tree with the bundle is $((bytes / 1048576)) MiB: over the 64 MiB the GPU machine may be given"

inner=$(cat <<'EOF'
set -eu
fail() { echo "gpu_root: the root does not look like the GPU machine: $*" >&2; exit 2; }
# Nothing of the build machine: no GDAL, PROJ, Debian torch, copgen, build tree.
for pat in /usr/lib/*/libgdal* /usr/lib/*/libproj* /usr/lib/*/libtorch* /usr/lib/python3/dist-packages/torch \
           /usr/local/bin/copgen /usr/bin/copgen /work/repo/build /work/repo/build-cuda/copgen \
           /work/repo/build-cuda/CMakeCache.txt; do
  [ ! -e "$pat" ] || fail "$pat exists"
done
[ "$(command -v python3)" = /opt/torch/.venv/bin/python3 ] || fail "python3 is $(command -v python3)"
python3 -c 'import torch, sys; v = torch.__version__.split("+")[0]; sys.exit(0 if v == "2.11.0" else "torch " + v)'
cd /work/repo
exec bash scripts/gpu/gpu_check.sh --run build-cuda/gpu-bundle --cpu "$@"
EOF
)

rc=0
unshare --mount --propagation private -- bash -euc '
  root=$1 venv=$2 run=$3 out=$4 inner=$5; shift 5
  mkdir -p "$root/opt/torch/.venv" "$root/work/repo" "$root/work/out" "$root/dev" "$root/proc" "$root/tmp"
  mount --rbind /dev "$root/dev"
  mount --rbind /proc "$root/proc"
  mount --bind "$venv" "$root/opt/torch/.venv"
  mount -o remount,bind,ro "$root/opt/torch/.venv"
  mount --bind "$run/repo" "$root/work/repo"
  mount --bind "$run/tmp" "$root/tmp"
  mount --bind "$out" "$root/work/out"
  exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 OUT=/work/out TMPDIR=/tmp \
    PATH=/opt/torch/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "$inner" gpu_root "$@"
' gpu_root "$root" "$venv" "$run" "$out" "$inner" "${extra[@]}" &
child=$!
wait "$child" || rc=$?
log "gpu_check --run --cpu in the root: exit $rc; $out/gpu_check.json"
exit "$rc"
