#!/usr/bin/env bash
# Installs what is missing, builds nearcache twice (plain, and with
# AddressSanitizer + UBSan) and runs the suite on each (under the sanitizers
# all but the long timing-bound tests, ctest label "long"); after the plain
# one, the Python client's tests (pytest, in .venv, against that build), the
# Node.js client's (npm ci, then node --test against that build), the Go
# client's (scripts/test-go.sh, go test -race against that build) and
# the release in its dry form (scripts/release.sh --dry: every artifact, and
# the Debian package's check, which installs it with dpkg -i and purges it
# again, so it needs root or sudo),
# a 30-second soak (bench/soak.sh: each fault once, the history check),
# and each libFuzzer target for a few seconds (scripts/fuzz.sh), so none
# can rot, and a ThreadSanitizer build under load (scripts/tsan.sh). Every
# test starts its own redis-server on a free loopback port and stops it by
# pid. Exits non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh" || exit 1
jobs=$(nproc)
# Each phase's header line carries the seconds elapsed since the start.
phase() { printf '== [%4ds] %s\n' "$SECONDS" "$*"; }
SECONDS=0

run_suite() { # NAME BUILD_DIR CMAKE_ARGS...
  local name=$1 dir=$2
  shift 2
  phase "$name: build ($dir)"
  cmake -S "$here" -B "$dir" "$@" >/dev/null || return 1
  cmake --build "$dir" -j"$jobs" -- --no-print-directory >/dev/null || return 1
  phase "$name: test"
  local reports="$dir/sanitizer-reports" status=0
  rm -rf "$reports" && mkdir -p "$reports"
  # Sanitizer reports go to files: criterion runs each test in a child whose
  # report might not fail the test by itself, so any report fails the suite.
  ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan" \
    bash -c 'cd "$1" && ctest --output-on-failure -j"$2" $3' _ "$dir" "$jobs" "${NC_CTEST_ARGS:-}" ||
    status=$?
  if [ -n "$(ls -A "$reports")" ]; then
    phase "$name: sanitizer reports:" >&2
    cat "$reports"/* >&2
    status=1
  fi
  return $status
}

failed=0
run_suite plain "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNC_BUILD_BENCH=ON || failed=1
phase "python: lint (ruff, mypy --strict), client tests (pytest against build/), bench smoke"
if "$here/scripts/venv.sh" dev bench; then
  py="$here/client/python"
  (cd "$py" && "$here/.venv/bin/ruff" check -q src tests tools bench ../../examples/fastapi &&
    "$here/.venv/bin/ruff" format -q --check src tests tools bench ../../examples/fastapi &&
    "$here/.venv/bin/mypy" --no-incremental &&
    "$here/.venv/bin/ruff" check -q ../../bench/soak_client.py ../../bench/soak_check.py &&
    "$here/.venv/bin/ruff" format -q --check ../../bench/soak_client.py ../../bench/soak_check.py &&
    "$here/.venv/bin/mypy" --no-incremental --strict ../../bench/soak_client.py ../../bench/soak_check.py) ||
    failed=1
  phase "python: pytest"
  # a worker per core (pytest-xdist), each a test file at a time (its module
  # fixtures as in one process): every test starts its own Redis and
  # daemons on free ports, in directories of its own
  NC_BUILD="$here/build" "$here/.venv/bin/python" -m pytest -q -p no:cacheprovider -n "$jobs" \
    --dist loadfile "$py/tests" ||
    failed=1
  phase "python: bench smoke"
  for b in tutorial http_load failopen orjson_hit; do
    NC_BUILD="$here/build" "$here/.venv/bin/python" "$py/bench/$b.py" --smoke \
      > "$here/build/py-bench-$b.log" 2>&1 || { cat "$here/build/py-bench-$b.log"; failed=1; }
  done
else
  phase "python: could not make .venv" >&2
  failed=1
fi
phase "node: npm ci (builds the near tier's addon), eslint, tsc --noEmit, node --test against build/"
nd="$here/client/node"
(cd "$nd" && NEARCACHE_ADDON_REQUIRED=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
  npm run -s lint && NC_BUILD="$here/build" npm test > "$here/build/node-test.log" 2>&1) ||
  { tail -n 60 "$here/build/node-test.log" 2>/dev/null; failed=1; }
grep -E '^# (pass|fail)' "$here/build/node-test.log" 2>/dev/null | tr '\n' ' ' && echo
NC_BUILD="$here/build" node "$nd/bench/bench.js" --smoke > "$here/build/node-bench.log" 2>&1 ||
  { cat "$here/build/node-bench.log"; failed=1; }
phase "go: client/go and examples/go (scripts/test-go.sh, against build/)"
NC_BUILD="$here/build" bash "$here/scripts/test-go.sh" || failed=1
phase "bench smoke: every path runs (figures are for docs/benchmarks.md, not a gate): bench/inval.sh"
NC_BUILD="$here/build" bash "$here/bench/inval.sh" --rounds 50 || failed=1
phase "bench smoke: bench/fanout.sh --smoke"
NC_BUILD="$here/build" bash "$here/bench/fanout.sh" --smoke || failed=1
phase "bench smoke: bench/run.sh --smoke"
NC_BUILD="$here/build" bash "$here/bench/run.sh" --smoke > "$here/build/bench-smoke.log" 2>&1 ||
  { cat "$here/build/bench-smoke.log"; failed=1; }
tail -n 1 "$here/build/bench-smoke.log"
phase "soak smoke: bench/soak.sh for 30 s, a fault every 6 s (each once), the history check"
NC_BUILD="$here/build" bash "$here/bench/soak.sh" --seconds 30 --fault-every 6 \
  --out "$here/build/soak-smoke" > "$here/build/soak-smoke.log" 2>&1 ||
  { tail -n 30 "$here/build/soak-smoke.log"; failed=1; }
tail -n 1 "$here/build/soak-smoke.log"
phase "release (dry): the wheel and sdist (twine), the .deb (cpack, lintian, dpkg -i, the unit's"
echo "   checks, the wheel in a fresh venv against the installed daemon, dpkg --purge), npm pack"
bash "$here/scripts/release.sh" --dry --out "$here/build/release" || failed=1
phase "fuzz: each target for 4 s (scripts/fuzz.sh; the long runs: docs/fuzzing.md)"
"$here/scripts/fuzz.sh" 4 || failed=1
phase "tsan: nearcached and libnearcache under ThreadSanitizer, driven by nearcache-bench (scripts/tsan.sh)"
"$here/scripts/tsan.sh" 2 || failed=1
NC_CTEST_ARGS="-LE long" run_suite sanitizers "$here/build-asan" -DCMAKE_BUILD_TYPE=Debug -DNC_SANITIZE=ON \
  -DNC_BUILD_BENCH=OFF -DNC_LONG_TESTS=OFF || failed=1
if [ $failed -ne 0 ]; then
  phase "FAILED"
  exit 1
fi
phase "all suites passed"
