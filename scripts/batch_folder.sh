#!/usr/bin/env bash
# Translate every tile of a folder with copgen, resumably (docs/batch.md).
#
#   scripts/batch_folder.sh IN_DIR OUT_DIR --from S2L1C --to S2L2A [copgen translate flags...]
#
# IN_DIR is a Major TOM tree (Core-<MOD>/<row>/<cell>/<product>/), one folder per
# modality (S2L1C/, S1RTC/, ... or s2_l1c/, ...), or a flat folder of tiles of the one
# --from modality (any GDAL raster or .npy, sub-folders allowed), for which a list file
# is written to OUT_DIR/copgen-tiles.txt and passed with --inputs-from.
# Rerunning the same command resumes: finished tuples are skipped. Without --seed the
# seed is $COPGEN_SEED (default 0), so that a rerun continues with the same seed.
# The copgen binary: $COPGEN, else copgen on PATH, else build/copgen of this checkout.
# Exit status: copgen's (0 all done, 3 some tuple had bad input, 130 interrupted, ...).
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
case "$1" in -h|--help) usage ;; esac
in_dir=$1 out_dir=$2
shift 2
[ -d "$in_dir" ] || { echo "batch_folder.sh: '$in_dir' is not a directory" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
copgen="${COPGEN:-}"
if [ -z "$copgen" ]; then
  if command -v copgen >/dev/null 2>&1; then copgen=copgen; else copgen="$root/build/copgen"; fi
fi

# --from (needed for a flat folder) and whether --seed was given
from="" has_seed=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --from) from="${args[i+1]:-}" ;;
    --from=*) from="${args[i]#--from=}" ;;
    --seed|--seed=*) has_seed=1 ;;
  esac
done
seed_args=()
[ "$has_seed" = 1 ] || seed_args=(--seed "${COPGEN_SEED:-0}")

# A Major TOM tree or one folder per modality: discovered by copgen itself.
layout=flat
shopt -s nocasematch
for d in "$in_dir"/*/; do
  name=$(basename "$d")
  case "$name" in
    core-*|dem|s1rtc|s1_rtc|s2l1c|s2_l1c|s2l2a|s2_l2a) layout=tree ;;
  esac
done
shopt -u nocasematch

if [ "$layout" = tree ]; then
  exec "$copgen" translate --input-dir "$in_dir" --output-dir "$out_dir" "${seed_args[@]}" "$@"
fi

# A flat folder of tiles of one modality: list them, keyed by their relative path.
case "$from" in
  ""|*,*) echo "batch_folder.sh: a flat folder of tiles needs exactly one --from modality" >&2; exit 2 ;;
esac
mkdir -p "$out_dir"
list="$out_dir/copgen-tiles.txt"
in_abs="$(cd "$in_dir" && pwd)"
tmp_list="$list.tmp-$$"
( cd "$in_abs" && find . -type f ! -name '.*' ! -name '*.aux.xml' ! -name '*.ovr' ! -name '*.msk' \
      ! -name '*.json' ! -name '*.txt' | LC_ALL=C sort ) |
  while IFS= read -r rel; do
    rel=${rel#./}
    key=${rel%.*}
    printf 'key=%s\t%s=%s\n' "$key" "$from" "$in_abs/$rel"
  done > "$tmp_list"
mv "$tmp_list" "$list"
echo "batch_folder.sh: $(wc -l < "$list") tile(s) listed in $list" >&2
exec "$copgen" translate --inputs-from "$list" --output-dir "$out_dir" "${seed_args[@]}" "$@"
