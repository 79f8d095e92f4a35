#!/usr/bin/env bash
# The one-command demo: installs, builds, makes the demo models if missing, and runs
# `copgen translate --from S2L1C --to S2L2A` on the bundled demo tile.
#
# The demo models are tiny and randomly initialised (same architecture as COP-GEN-Beta):
# the output shows the whole pipeline working, not a meaningful image. For real results
# convert the published checkpoints (models/README.md) and pass --models.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${COPGEN_BUILD_DIR:-$root/build}"
models="$root/models/demo"
out_dir="$root/demo-output"

COPGEN_BUILD_TARGET=copgen bash "$root/scripts/dev/build.sh" "$build_dir"
if [ ! -f "$models/copgen.json" ]; then
  echo "demo: exporting tiny demo models into $models"
  "$(bash "$root/scripts/dev/find_python.sh")" "$root/scripts/models/export_models.py" --tiny --seed 42 --out "$models"
fi
mkdir -p "$out_dir"
start=$(date +%s%N)
"$build_dir/copgen" translate --from S2L1C --to S2L2A \
  -i "$root/demo/s2l1c_demo.tif" -o "$out_dir/s2l2a_demo.tif" \
  --models "$models" --seed 42 --overwrite
end=$(date +%s%N)
echo "demo: translate took $(( (end - start) / 1000000 )) ms"
echo "demo: output written to $out_dir/s2l2a_demo.tif"
gdalinfo "$out_dir/s2l2a_demo.tif" | sed -n '1,12p'
