#!/usr/bin/env bash
# copgen on one machine with several GPUs: one process per GPU, each its own shard
# (docs/batch.md).
#
#   scripts/recipes/multi_gpu.sh [--gpus N | --gpus 0,2,3] [--device-flag] IN_DIR OUT_DIR --from S2L1C --to S2L2A [flags...]
#
# Process i of N runs `copgen translate --shard i/N` on one GPU, all into OUT_DIR (each
# shard writes OUT_DIR/copgen-report.shard-i-of-N.json and logs to
# OUT_DIR/logs/shard-i-of-N.log). By default a process sees only its GPU through
# CUDA_VISIBLE_DEVICES; with --device-flag every process sees all of them and gets
# --device cuda:<id> instead. GPUs: --gpus, else those in CUDA_VISIBLE_DEVICES, else
# every GPU nvidia-smi lists. CPU threads are split evenly between the processes.
# Ctrl-C (or TERM) stops every process cleanly; rerunning the same command resumes.
# Without --seed the seed is $COPGEN_SEED (default 0). Exit status: 0 when every shard
# succeeded, else the first non-zero status of a shard.
set -euo pipefail

gpus="" device_flag=0
while [ $# -gt 0 ]; do
  case "$1" in
    --gpus) gpus=$2; shift 2 ;;
    --gpus=*) gpus=${1#--gpus=}; shift ;;
    --device-flag) device_flag=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  echo "usage: scripts/recipes/multi_gpu.sh [--gpus N|LIST] [--device-flag] IN_DIR OUT_DIR [copgen translate flags...]" >&2
  exit 2
fi
in_dir=$1 out_dir=$2
shift 2

# the GPU ids, one per process
ids=()
if [[ "$gpus" =~ ^[0-9]+$ ]]; then
  for ((i = 0; i < gpus; i++)); do ids+=("$i"); done
elif [ -n "$gpus" ]; then
  IFS=, read -r -a ids <<< "$gpus"
elif [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
  IFS=, read -r -a ids <<< "$CUDA_VISIBLE_DEVICES"
elif command -v nvidia-smi >/dev/null 2>&1; then
  n=$(nvidia-smi -L | grep -c '^GPU ' || true)
  for ((i = 0; i < n; i++)); do ids+=("$i"); done
fi
count=${#ids[@]}
if [ "$count" -eq 0 ]; then
  echo "multi_gpu.sh: no GPU found (give --gpus N)" >&2
  exit 2
fi

seed_args=(--seed "${COPGEN_SEED:-0}")
for a in "$@"; do
  case "$a" in --seed|--seed=*) seed_args=() ;; esac
done
threads=$(( $(nproc) / count ))
[ "$threads" -ge 1 ] || threads=1
copgen="${COPGEN:-copgen}"
mkdir -p "$out_dir/logs"

pids=()
# shellcheck disable=SC2317  # called by the trap
stop() {
  trap - INT TERM
  echo "multi_gpu.sh: stopping ${#pids[@]} process(es)" >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM

for ((i = 0; i < count; i++)); do
  log="$out_dir/logs/shard-$i-of-$count.log"
  if [ "$device_flag" = 1 ]; then
    "$copgen" translate --input-dir "$in_dir" --output-dir "$out_dir" --shard "$i/$count" \
      --device "cuda:${ids[i]}" --threads "$threads" "${seed_args[@]}" "$@" > "$log" 2>&1 &
  else
    CUDA_VISIBLE_DEVICES="${ids[i]}" "$copgen" translate --input-dir "$in_dir" --output-dir "$out_dir" \
      --shard "$i/$count" --device cuda --threads "$threads" "${seed_args[@]}" "$@" > "$log" 2>&1 &
  fi
  pids+=("$!")
  echo "multi_gpu.sh: shard $i/$count on GPU ${ids[i]} (pid $!, log $log)" >&2
done

status=0
for ((i = 0; i < count; i++)); do
  rc=0
  wait "${pids[i]}" || rc=$?
  # wait returns early (> 128) when a trapped signal arrives: wait again for the exit
  while [ "$rc" -gt 128 ] && kill -0 "${pids[i]}" 2>/dev/null; do
    rc=0
    wait "${pids[i]}" || rc=$?
  done
  echo "multi_gpu.sh: shard $i/$count exited with $rc" >&2
  [ "$status" -ne 0 ] || status=$rc
done
exit "$status"
