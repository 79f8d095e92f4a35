#!/usr/bin/env bash
# Builds copgen's libFuzzer targets (fuzz/) with clang and runs each one for a bounded
# time on a seed corpus this script creates. Not part of CI; see docs/errors.md.
#
# Usage: scripts/dev/fuzz.sh [BUILD_DIR] [SECONDS_PER_TARGET] [TARGET...]
#   BUILD_DIR           default /tmp/build-fuzz
#   SECONDS_PER_TARGET  default 60
#   TARGET              manifest, specs, raster, npy (default: all four)
# Needs clang with libFuzzer (Debian 12: apt-get install clang; its libclang-rt-14-dev
# holds libclang_rt.fuzzer) and gdal-bin + python3-numpy for the seeds.
# Crashes are written to BUILD_DIR/fuzz-artifacts/<target>/; the grown corpora stay in
# BUILD_DIR/fuzz-corpus/<target>/. Exits 1 when any target found a crash.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="${1:-/tmp/build-fuzz}"
seconds="${2:-60}"
shift 2 || shift $# || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(manifest specs raster npy)
python="${COPGEN_PYTHON:-/usr/bin/python3}"
jobs="${FUZZ_BUILD_JOBS:-2}"

cxx="$(command -v clang++ || true)"
if [ -z "$cxx" ]; then
  echo "fuzz.sh: clang++ not found (apt-get install clang)" >&2
  exit 2
fi

cmake -S "$root" -B "$build_dir" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOPGEN_BUILD_TESTS=OFF -DCOPGEN_BUILD_FUZZERS=ON \
  -DCOPGEN_PCH=OFF >/dev/null
cmake --build "$build_dir" -j "$jobs" --target $(printf 'fuzz_%s ' "${targets[@]}")

seeds="$build_dir/fuzz-seeds"
corpus="$build_dir/fuzz-corpus"
artifacts="$build_dir/fuzz-artifacts"
rm -rf "$seeds"
mkdir -p "$seeds"/{manifest,specs,raster,npy} "$artifacts"

# ---- seeds -------------------------------------------------------------------------
manifest='{"format": "copgen-models", "format_version": 1,
 "modalities": ["DEM", "S1RTC", "S2L1C", "S2L2A"],
 "latent_shape": [4, 32, 32], "image_size": 256, "scale_factor": 0.18215,
 "schedule": {"type": "discrete_vp", "beta_schedule": "scaled_linear",
              "beta_start": 0.00085, "beta_end": 0.012, "num_timesteps": 1000},
 "backbone": {"file": "backbone.pt", "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
              "embed_dim": 1024, "depth": 20, "num_heads": 16, "mlp_ratio": 4, "patch_size": 2,
              "num_modalities": 4, "qkv_bias": false, "parameters": 286600000,
              "attention": "math", "source": "nnet_ema_114000.pth"},
 "autoencoder": {"file": "autoencoder.pt", "sha256": "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
                 "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "z_channels": 4,
                 "embed_dim": 4, "parameters": 83700000, "source": "autoencoder_kl_ema.pth"}}'
printf '%s' "$manifest" >"$seeds/manifest/valid.json"
printf '%s' "${manifest/\"format_version\": 1/\"format_version\": 2}" >"$seeds/manifest/version2.json"
printf '%s' "${manifest:0:300}" >"$seeds/manifest/truncated.json"
printf '%s' "${manifest/\"ch_mult\": \[1, 2, 4, 4\]/\"ch_mult\": [1, 2]}" >"$seeds/manifest/small.json"
cat >"$build_dir/fuzz-manifest.dict" <<'DICT'
"format"
"copgen-models"
"format_version"
"modalities"
"latent_shape"
"image_size"
"scale_factor"
"schedule"
"backbone"
"autoencoder"
"sha256"
"ch_mult"
"patch_size"
"num_heads"
"embed_dim"
"depth"
"1e308"
"-1"
"null"
"[]"
"{}"
DICT

printf '\000S2L1C,DEM' >"$seeds/specs/list.txt"
printf '\000dem\ns1_rtc, S2L2A' >"$seeds/specs/lines.txt"
printf '\001S2L2A=/data/tile.tif' >"$seeds/specs/input.txt"
printf '\001s1_rtc=a=b.tif\nDEM=dem.npy' >"$seeds/specs/inputs.txt"

if command -v gdal_create >/dev/null; then
  r="$seeds/raster"
  gdal_create -q -of GTiff -outsize 8 8 -bands 3 -ot Byte -burn 7 -burn 90 -burn 200 \
    -a_srs EPSG:32633 -a_ullr 500000 5000080 500080 5000000 -co COMPRESS=DEFLATE "$r/rgb.tif"
  gdal_create -q -of GTiff -outsize 16 16 -bands 3 -ot Byte -burn 1 \
    -co TILED=YES -co BLOCKXSIZE=16 -co BLOCKYSIZE=16 "$r/tiled.tif"
  gdal_create -q -of GTiff -outsize 4 4 -bands 1 -ot Byte -burn 0 -a_nodata 0 "$r/nodata.tif"
  gdal_create -q -of GTiff -outsize 4 4 -bands 1 -ot Float32 -burn 0.5 "$r/float.tif"
  gdal_create -q -of GTiff -outsize 6 6 -bands 3 -ot Byte -burn 3 -co COMPRESS=LZW -co PREDICTOR=2 "$r/lzw.tif"
  gdal_create -q -of GTiff -outsize 100000 100000 -bands 3 -ot Byte \
    -co TILED=YES -co BLOCKXSIZE=4096 -co BLOCKYSIZE=4096 -co SPARSE_OK=TRUE "$r/huge.tif"
  gdal_translate -q -of PNG "$r/rgb.tif" "$r/rgb.png"
  rm -f "$r"/*.aux.xml
else
  echo "fuzz.sh: gdal_create not found (apt-get install gdal-bin); raster seeds are empty" >&2
  printf 'II*\000' >"$seeds/raster/header.tif"
fi

"$python" - "$seeds/npy" <<'PY'
import sys, numpy as np
d = sys.argv[1]
np.save(f"{d}/f4.npy", np.arange(24, dtype="<f4").reshape(2, 3, 4))
np.save(f"{d}/f8.npy", np.arange(6, dtype="<f8").reshape(3, 2))
np.save(f"{d}/f2.npy", np.arange(5, dtype="<f2"))
np.save(f"{d}/scalar.npy", np.float32(3.5))
np.save(f"{d}/empty.npy", np.zeros((0, 3), dtype="<f4"))
np.save(f"{d}/fortran.npy", np.asfortranarray(np.ones((2, 2), dtype="<f4")))
np.save(f"{d}/int.npy", np.ones(3, dtype="<i4"))
with open(f"{d}/v2.npy", "wb") as f:
    np.lib.format.write_array(f, np.ones((2, 2), dtype="<f4"), version=(2, 0))
PY
cat >"$build_dir/fuzz-npy.dict" <<'DICT'
"\x93NUMPY"
"'descr'"
"'<f4'"
"'<f8'"
"'<f2'"
"'fortran_order'"
"False"
"True"
"'shape'"
"(0,"
"9223372036854775807"
DICT

# ---- runs --------------------------------------------------------------------------
export COPGEN_FUZZ_TMP="${COPGEN_FUZZ_TMP:-/dev/shm}"
[ -d "$COPGEN_FUZZ_TMP" ] && [ -w "$COPGEN_FUZZ_TMP" ] || export COPGEN_FUZZ_TMP=/tmp
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$corpus/$t" "$artifacts/$t"
  dict=()
  [ -f "$build_dir/fuzz-$t.dict" ] && dict=(-dict="$build_dir/fuzz-$t.dict")
  # long inputs reach deep nesting and long headers; GDAL is slow on long ones
  case "$t" in
    manifest | npy) max_len=65536 ;;
    specs) max_len=4096 ;;
    *) max_len=16384 ;;
  esac
  log="$build_dir/fuzz-$t.log"
  echo "== fuzz_$t for ${seconds} s (log: $log)"
  set +e
  "$build_dir/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="$max_len" -timeout=20 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t/" "${dict[@]}" \
    "$corpus/$t" "$seeds/$t" >"$log" 2>&1
  rc=$?
  set -e
  runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)"
  secs="$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -Eo 'in [0-9]+' | grep -Eo '[0-9]+' | tail -1)"
  cov="$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)"
  if [ "$rc" -ne 0 ]; then
    status=1
    summary+=("fuzz_$t: FOUND A CRASH (exit $rc) after ${runs:-?} executions; see $log and $artifacts/$t/")
    grep -E 'ERROR: |SUMMARY: |runtime error|uncaught exception|Test unit written' "$log" | head -8 >&2 || true
  else
    summary+=("fuzz_$t: ${runs:-?} executions in ${secs:-$seconds} s, no crash (${cov:-})")
  fi
done
echo
printf '%s\n' "${summary[@]}"
exit "$status"
