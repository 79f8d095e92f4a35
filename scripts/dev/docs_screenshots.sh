#!/usr/bin/env bash
# Remakes the pictures in docs/img/ from the browser tests (tests/e2e/test_report.cpp,
# tests/e2e/test_browser.cpp): runs the [browser] tests of a build with the tiny test models,
# which save full-size screenshots, then writes each at half size (GDAL's average
# resampling) with a palette of 128 colours (GDAL's rgb2pct.py), the eval report cut to its
# top 1400 pixels (the table and the first grid), so that each stays under 150 KB; the
# bench chart, a few flat colours, as it is.
# Usage: scripts/dev/docs_screenshots.sh [BUILD_DIR]   (default: build; needs Chromium and
# gdal-bin: scripts/dev/install_deps.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
CI=true COPGEN_TEST_OUTPUT="$out" "$build/tests/copgen_e2e_tests" "[browser]"
mkdir -p "$root/docs/img"
# eval's report.html, a batch's contact sheet, bench's SVG chart (docs/img/preview.png is made by hand: docs/scenes.md)
for name in eval_report batch_index bench_chart; do
  shot="$out/browser/$name.png"
  dest="$root/docs/img/$name.png"
  read -r width height < <(gdalinfo "$shot" | sed -n 's/^Size is \([0-9]*\), \([0-9]*\)$/\1 \2/p')
  if [ "$name" = eval_report ] && [ "$height" -gt 1400 ]; then height=1400; fi
  if [ "$name" = bench_chart ]; then  # a few flat colours: small as it is, and sharp
    gdal_translate -q -of PNG -srcwin 0 0 "$width" "$height" "$shot" "$dest"
  else
    gdal_translate -q -of GTiff -srcwin 0 0 "$width" "$height" -outsize 50% 50% -r average "$shot" "$out/half.tif"
    rgb2pct.py -n 128 "$out/half.tif" "$out/palette.tif" > /dev/null
    gdal_translate -q -of PNG "$out/palette.tif" "$dest"
  fi
  rm -f "$dest.aux.xml" "$out/half.tif" "$out/palette.tif"
  echo "docs_screenshots: $dest ($(stat -c %s "$dest") bytes)"
done
