#!/usr/bin/env bash
# Translate every tuple of a folder with copgen, resumably (docs/batch.md).
#
#   scripts/recipes/batch_folder.sh IN_DIR OUT_DIR --from S2L1C --to S2L2A [copgen translate flags...]
#
# Runs `copgen translate --input-dir IN_DIR --output-dir OUT_DIR`: copgen itself discovers
# the layout of IN_DIR, a Major TOM tree (Core-<MOD>/<row>/<cell>/<product>/) or one folder
# per modality (S2L1C/, S1RTC/, ... or s2_l1c/, ...). A flat folder of tiles is no layout:
# put it in a folder named after its modality (IN_DIR/S2L1C/...; outputs then go to
# OUT_DIR/<GEN>/<relative path>.tif), or list the tuples for --inputs-from.
# Rerunning the same command resumes: finished tuples are skipped. The seed: --seed, else
# $COPGEN_SEED when set, else copgen draws one (logged and in the report); give one for a
# resumed run to write the bytes of an uninterrupted one.
# The copgen binary: $COPGEN, else copgen on PATH, else build/copgen of this checkout.
# Exit status: copgen's (0 all done, 3 some tuple had bad input, 130 interrupted, ...).
set -euo pipefail

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
case "$1" in -h|--help) usage ;; esac
in_dir=$1 out_dir=$2
shift 2
[ -d "$in_dir" ] || { echo "batch_folder.sh: '$in_dir' is not a directory" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
copgen="${COPGEN:-}"
if [ -z "$copgen" ]; then
  if command -v copgen >/dev/null 2>&1; then copgen=copgen; else copgen="$root/build/copgen"; fi
fi

seed_args=()
if [ -n "${COPGEN_SEED:-}" ]; then
  seed_args=(--seed "$COPGEN_SEED")
  for a in "$@"; do
    case "$a" in --seed|--seed=*) seed_args=() ;; esac
  done
fi

exec "$copgen" translate --input-dir "$in_dir" --output-dir "$out_dir" "${seed_args[@]}" "$@"
