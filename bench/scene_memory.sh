#!/usr/bin/env bash
# Benchmark (not a test): time and peak memory of `copgen translate` on synthetic scenes of
# 1k, 2k and 4k pixels (and optionally 10980) with the tiny models.
# Usage: bench/scene_memory.sh BUILD_DIR MODELS_DIR [sizes...]   (default sizes: 1024 2048 4096)
set -euo pipefail
build="${1:?build dir}"; models="${2:?models dir}"; shift 2
sizes=("${@:-1024 2048 4096}")
[ $# -eq 0 ] && sizes=(1024 2048 4096)
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
printf '%-8s %-10s %-14s\n' size seconds peak_rss_MB
for n in "${sizes[@]}"; do
  # a georeferenced 3-band Byte scene, made with GDAL alone (no data file needed)
  gdal_create -of GTiff -outsize "$n" "$n" -bands 3 -ot Byte -burn 90 -burn 120 -burn 60 \
    -a_srs EPSG:32633 -a_ullr 500000 $((5000000 + n * 10)) $((500000 + n * 10)) 5000000 \
    -co TILED=YES -co COMPRESS=DEFLATE "$work/s$n.tif" >/dev/null
  /usr/bin/time -f "%e %M" -o "$work/t" "$build/copgen" translate --models "$models" --from S2L1C --to S2L2A \
    -i "$work/s$n.tif" -o "$work/o$n.tif" --steps 2 --seed 1 --batch-size 32 --quiet
  read -r secs kb < "$work/t"
  printf '%-8s %-10s %-14s\n' "$n" "$secs" "$((kb / 1024))"
done
