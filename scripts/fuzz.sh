#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang-14, ASan + UBSan) in
# build-fuzz/ and runs each for SECONDS (default 60), or only the TARGETs
# named: scripts/fuzz.sh [SECONDS] [TARGET...], as many at once as there
# are cores. New inputs go to build-fuzz/corpus/TARGET (the committed seeds
# in tests/fuzz/corpus are read, never written); a crash leaves its input
# in build-fuzz/artifacts/.
# Prints one line per target (seconds, executions, crashes); exits non-zero
# if any target crashed. docs/fuzzing.md has the last long run.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
shift $(($# > 0 ? 1 : 0))
out="$here/build-fuzz"
CC=clang-14 cmake -S "$here" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNC_FUZZ=ON \
  -DNC_BUILD_TESTS=OFF -DNC_BUILD_BENCH=OFF >/dev/null || exit 1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$here"/tests/fuzz/fuzz_*.c; do
    t=$(basename "$f" .c)
    targets+=("${t#fuzz_}")
  done
fi
cmake --build "$out" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" -- --no-print-directory \
  >/dev/null || exit 1
dict_of() {
  case $1 in
    redis_url) echo redis_url.dict ;;
    config) echo config.dict ;;
    lane_reply | script_reply) echo resp.dict ;;
  esac
}
mkdir -p "$out/artifacts"
# run_one TARGET: runs it; its exit status goes to build-fuzz/fuzz-TARGET.rc
run_one() {
  local t=$1 work="$out/corpus/$1" log="$out/fuzz-$1.log"
  mkdir -p "$work"
  local args=(-max_total_time="$secs" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048
    -artifact_prefix="$out/artifacts/$t-")
  local d
  d=$(dict_of "$t")
  [ -n "$d" ] && args+=(-dict="$here/tests/fuzz/$d")
  (cd "$out" && "$out/tests/fuzz/fuzz_$t" "${args[@]}" "$work" "$here/tests/fuzz/corpus/$t") \
    >"$log" 2>&1
  echo $? >"$out/fuzz-$t.rc"
}
# Each target is one process on one core: as many at once as there are cores.
jobs=$(nproc)
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  rm -f "$out/fuzz-$t.rc"
  run_one "$t" &
done
wait
failed=0
printf '%-14s %8s %12s %8s\n' target seconds executions crashes
for t in "${targets[@]}"; do
  log="$out/fuzz-$t.log"
  rc=$(cat "$out/fuzz-$t.rc" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=1
    failed=1
    grep -E 'ERROR|check failed|runtime error|SUMMARY' "$log" | head -5 >&2
    echo "fuzz_$t: failed (log: $log)" >&2
  fi
  printf '%-14s %8s %12s %8s\n' "$t" "$secs" "${execs:-?}" "$crashes"
done
exit $failed
