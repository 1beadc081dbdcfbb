#!/usr/bin/env bash
# Invalidation delivery time: starts a private redis-server (Unix socket) and
# two nearcached nodes in a temporary directory, runs `nearcache-bench inval`
# between them, and stops everything by pid. Arguments go to the bench
# (e.g. --rounds 2000 --json). Run scripts/run.sh or scripts/test.sh once
# first, or have build/ built.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="${NC_BUILD:-$here/build}"
dir=$(mktemp -d /tmp/nc-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

redis-server --port 0 --unixsocket "$dir/redis.sock" --save "" --appendonly no \
  --dir "$dir" --daemonize no --logfile "$dir/redis.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/redis.sock" ] && break; sleep 0.05; done
for n in a b; do
  "$build/daemon/nearcached" --listen "ipc://$dir/$n.sock" --redis "unix://$dir/redis.sock" \
    --log-level warn 2>"$dir/$n.log" &
  pids+=($!)
done
for n in a b; do
  for _ in $(seq 200); do
    "$build/client/nearcache-cli" -s "ipc://$dir/$n.sock" stats --json 2>/dev/null \
      | grep -q '"l1_serving": 1' && break
    sleep 0.05
  done
done
"$build/bench/nearcache-bench" inval --a "ipc://$dir/a.sock" --b "ipc://$dir/b.sock" "$@"
