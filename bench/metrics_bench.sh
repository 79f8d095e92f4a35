#!/usr/bin/env bash
# Benchmark (not a test): time and peak memory of `copgen metrics` on random features,
# N points per set (default 10,000): Inception 2048-d for FID, VGG16 4096-d for
# precision/recall (k = 3). Reports figures; never fails on time.
#
#   bench/metrics_bench.sh [COPGEN_BINARY] [N]
#
# Needs /usr/bin/time (GNU time, for the peak resident set size) and a python3 with numpy.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
copgen="${1:-$root/build/copgen}"
n="${2:-10000}"
python="${COPGEN_PYTHON:-/usr/bin/python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/copgen-metrics-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Non-negative features (like post-ReLU activations), the fake set shifted a little.
"$python" - "$work" "$n" <<'EOF'
import os, sys
import numpy as np
work, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
for name, shift in (("real", 0.0), ("fake", 0.1)):
    os.makedirs(os.path.join(work, name))
    for file, dim in (("inception.npy", 2048), ("vgg16.npy", 4096)):
        x = np.abs(rng.standard_normal((n, dim), dtype=np.float32)) + np.float32(shift)
        np.save(os.path.join(work, name, file), x)
EOF

echo "copgen metrics on random features: $n points per set, Inception 2048-d, VGG16 4096-d"
echo "binary: $copgen"
echo "threads: ${OMP_NUM_THREADS:-$(nproc) (all cores)}"
/usr/bin/time -v "$copgen" metrics --features "$work" --json "$work/scores.json" >"$work/out.txt" 2>"$work/time.txt"
cat "$work/out.txt"
grep -E "Elapsed \(wall clock\)|Maximum resident set size|User time|System time" "$work/time.txt"
