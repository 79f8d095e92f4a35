#!/usr/bin/env bash
# Benchmark (not a test): throughput of `copgen translate --input-dir` (the batch runner)
# on N synthetic 256 x 256 S2L1C tiles (default 32), S2L1C -> S2L2A, at several batch
# sizes; tuples per second and the share of wall time the network is busy (time inside
# sample_tuples / wall, from the run report). Reports figures; never fails on time.
#
#   bench/batch_bench.sh [COPGEN_BINARY] [MODELS_DIR] [N] [STEPS] [BATCH_SIZES]
#
# MODELS_DIR defaults to $COPGEN_MODELS, STEPS to 3, BATCH_SIZES to "1 4 16".
# Extra copgen flags: $COPGEN_BENCH_FLAGS (e.g. "--device cuda --precision bf16").
# Needs gdal_create (gdal-bin) and jq.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
copgen="${1:-$root/build/copgen}"
models="${2:-${COPGEN_MODELS:?give MODELS_DIR or set COPGEN_MODELS}}"
n="${3:-32}"
steps="${4:-3}"
read -r -a sizes <<< "${5:-1 4 16}"
read -r -a extra <<< "${COPGEN_BENCH_FLAGS:-}"
work="$(mktemp -d "${TMPDIR:-/tmp}/copgen-batch-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/in/S2L1C"
for ((i = 0; i < n; i++)); do
  gdal_create -q -of GTiff -outsize 256 256 -bands 3 -ot Byte \
    -burn $(( (37 * i) % 256 )) -burn $(( (91 * i + 40) % 256 )) -burn $(( (13 * i + 90) % 256 )) \
    "$work/in/S2L1C/tile_$(printf '%03d' "$i").tif"
done

echo "copgen batch: $n tiles S2L1C -> S2L2A, $steps steps, models $models ${extra[*]:-}"
printf '%-10s %10s %12s %14s %12s %12s\n' batch wall_s tuples/s network_busy read_wait_s write_s
for b in "${sizes[@]}"; do
  out="$work/out-$b"
  COPGEN_MODELS="$models" "$copgen" translate --input-dir "$work/in" --output-dir "$out" \
    --from S2L1C --to S2L2A --steps "$steps" --seed 1 --batch-size "$b" -q "${extra[@]}"
  jq -r --arg b "$b" '.timings | [$b, (.wall_seconds|tostring), (.tuples_per_second|tostring),
      (.network_busy_share|tostring), (.read_wait_seconds|tostring), (.write_seconds|tostring)] | @tsv' \
    "$out/copgen-report.json" |
    awk -F'\t' '{ printf "%-10s %10.2f %12.2f %13.1f%% %12.3f %12.3f\n", $1, $2, $3, 100 * $4, $5, $6 }'
done
