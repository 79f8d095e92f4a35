#!/usr/bin/env bash
# Benchmark (not a test): peak memory of copgen against the reference pipeline, the first
# row of `copgen bench --compare-reference` (batch 1, one timed call, a one-step end-to-end
# run) for each precision, side by side, from the bench's JSON (docs/performance.md, "Memory").
# Usage: bench/reference_memory.sh BUILD_DIR MODELS_DIR [precisions]   (default: fp32,bf16)
# Full-size random models: /usr/bin/python3 scripts/models/export_models.py --out DIR --seed 0
set -euo pipefail
build="${1:?build dir}"; models="${2:?models dir}"; precisions="${3:-fp32,bf16}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
printf '%-10s %-8s %-22s %-22s %-16s %-16s\n' device precision copgen_peak_host_GB reference_peak_host_GB \
  copgen_peak_dev_GB reference_peak_dev_GB
IFS=, read -r -a list <<< "$precisions"
for p in "${list[@]}"; do
  "$build/copgen" bench --models "$models" --precisions "$p" --batch-sizes 1 --warmup 0 --repeat 1 --steps 1 \
    --compare-reference --quiet --json "$work/$p.json" > /dev/null
  /usr/bin/python3 - "$work/$p.json" <<'PY'
import json, sys
def gb(v):
    return "-" if v is None or v < 0 else f"{v / 1e9:.2f}"
for r in json.load(open(sys.argv[1]))["rows"]:
    if "skipped" in r:
        print(f"{r['device']:<10} {r['precision']:<8} skipped: {r['skipped']}")
        continue
    ref = r["reference"]
    print(f"{r['device']:<10} {r['precision']:<8} {gb(r['peak_host_rss_bytes']):<22} {gb(ref['peak_host_rss_bytes']):<22} "
          f"{gb(r['peak_device_bytes']):<16} {gb(ref['peak_device_bytes']):<16}")
PY
done
