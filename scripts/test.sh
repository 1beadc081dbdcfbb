#!/usr/bin/env bash
# Installs what is missing, builds nearcache twice (plain, and with
# AddressSanitizer + UBSan) and runs the whole suite on each. Every test
# starts its own redis-server on a free loopback port and stops it by pid.
# Exits non-zero on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh"
jobs=$(nproc)

run_suite() { # NAME BUILD_DIR CMAKE_ARGS...
  local name=$1 dir=$2
  shift 2
  echo "== $name: build ($dir)"
  cmake -S "$here" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" -- --no-print-directory >/dev/null
  echo "== $name: test"
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

run_suite plain "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite sanitizers "$here/build-asan" -DCMAKE_BUILD_TYPE=Debug -DNC_SANITIZE=ON
echo "== all suites passed"
