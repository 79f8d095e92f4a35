#!/usr/bin/env bash
# Benchmark (not a test): how long `--inputs-from` takes to match the items of a saved
# STAC search, by footprint and by grid:code, for N items of each of two modalities
# (S2L2A and S1RTC tiles of one degree on a grid, S1 shifted by half a tile). It runs the
# batch's --dry-run (read, parse, match, plan every output), which loads no model.
# Usage: bench/stac_match_bench.sh BUILD_DIR [N...]   (default N: 8000 20000 100000)
set -euo pipefail
build="${1:?build dir}"; shift
counts=("$@")
[ ${#counts[@]} -eq 0 ] && counts=(8000 20000 100000)
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
printf '%-8s %-10s %-10s %-12s %-14s\n' items match seconds peak_rss_MB json_MB
for n in "${counts[@]}"; do
  for match in footprint grid:code; do
    /usr/bin/python3 - "$n" "$match" "$work/search.json" <<'EOF'
import json, sys
n, match, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
side = int(n ** 0.5) + 1
features = []
for i in range(n):
    x, y = -170 + i % side * 1.0, -80 + (i // side) % 160 * 1.0
    for coll, dx in (("sentinel-2-l2a", 0.0), ("sentinel-1-rtc", 0.5)):
        props = {"datetime": "2024-05-01T10:00:00Z"}
        if match == "grid:code":
            props["grid:code"] = "CELL-%d" % i
        features.append({"type": "Feature", "stac_version": "1.0.0", "id": "%s-%06d" % (coll[:10], i),
                         "collection": coll, "bbox": [x + dx, y, x + dx + 1.0, y + 1.0],
                         "geometry": None, "properties": props,
                         "assets": {"data": {"href": "https://example.invalid/%d.tif" % i}}})
json.dump({"type": "FeatureCollection", "features": features}, open(path, "w"))
EOF
    size_mb=$(( $(stat -c %s "$work/search.json") / 1048576 ))
    rm -rf "$work/out"
    /usr/bin/time -f "%e %M" -o "$work/t" "$build/copgen" translate --inputs-from "$work/search.json" \
      --from S2L2A,S1RTC --to DEM --output-dir "$work/out" --dry-run --quiet > "$work/plan.txt"
    read -r secs kb < "$work/t"
    printf '%-8s %-10s %-10s %-12s %-14s\n' "$n" "$match" "$secs" "$((kb / 1024))" "$size_mb"
  done
done
