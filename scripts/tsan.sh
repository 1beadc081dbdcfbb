#!/usr/bin/env bash
# ThreadSanitizer run: builds nearcached, libnearcache and nearcache-bench
# with -fsanitize=thread in build-tsan/, starts a private redis-server and
# two daemons on it, and drives them with real multi-threaded clients
# (nearcache-bench: L1 hits, misses, Zipf reads and writes, MGets, near-tier
# readers, a stampede across both daemons, invalidation round trips), and a
# third daemon on a 3-master Redis Cluster (its read lanes per master: Gets
# and MGets), then stops the daemons with SIGTERM. Any TSan report, from a daemon or a
# client, fails it. scripts/tsan.sh [SECONDS per load path, default 2]
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-2}
out="$here/build-tsan"
cmake -S "$here" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNC_TSAN=ON -DNC_BUILD_TESTS=OFF \
  -DNC_BUILD_BENCH=ON >/dev/null || exit 1
cmake --build "$out" -j"$(nproc)" --target nearcached nearcache-cli nearcache-bench \
  -- --no-print-directory >/dev/null || exit 1
dir=$(mktemp -d /tmp/nc-tsan.XXXXXX)
export TSAN_OPTIONS="log_path=$dir/tsan halt_on_error=0 second_deadlock_stack=1"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  >"$dir/redis.log" 2>&1 &
rpid=$!
pids+=("$rpid")
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis=redis://127.0.0.1:$port
daemon() { # NAME
  "$out/daemon/nearcached" --listen "ipc://$dir/$1.sock" --redis "$redis" \
    --heartbeat-interval 50ms >"$dir/$1.log" 2>&1 &
  pids+=($!)
  eval "pid_$1=$!"
}
daemon a
daemon b
# a 3-master cluster (no replicas) and a daemon on it
cports=()
for i in 1 2 3; do
  cp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  bp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir/node$i"
  redis-server --port "$cp" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir/node$i" \
    --cluster-enabled yes --cluster-port "$bp" >"$dir/node$i.log" 2>&1 &
  pids+=($!)
  cports+=("$cp")
done
for cp in "${cports[@]}"; do
  for _ in $(seq 100); do redis-cli -p "$cp" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
redis-cli --cluster create "${cports[@]/#/127.0.0.1:}" --cluster-yes >"$dir/cluster.log" 2>&1
for _ in $(seq 200); do
  redis-cli -p "${cports[0]}" cluster info 2>/dev/null | grep -q cluster_state:ok && break
  sleep 0.05
done
redis="cluster://127.0.0.1:${cports[0]},127.0.0.1:${cports[1]}" daemon c
redis=redis://127.0.0.1:$port
for s in a b c; do
  for _ in $(seq 200); do
    NEARCACHE_URL="ipc://$dir/$s.sock" "$out/client/nearcache-cli" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
done
failed=0
bench="$out/bench/nearcache-bench"
a="ipc://$dir/a.sock" b="ipc://$dir/b.sock"
"$bench" run l1@4 miss@2 zipf@4 mget@2 near@4 zipf-near@4 --url "$a" --redis "$redis" \
  --keys 2000 --duration "$secs" --warmup 0.2 --slices 1 >"$dir/bench.log" 2>&1 || failed=1
"$bench" stampede --a "$a" --b "$b" --redis "$redis" --threads 8 --rounds 20 \
  >"$dir/stampede.log" 2>&1 || failed=1
"$bench" inval --a "$a" --b "$b" --rounds 100 >"$dir/inval.log" 2>&1 || failed=1
"$bench" run l2-cluster@4 mget-cluster@2 set-cluster@2 --url-cluster "ipc://$dir/c.sock" \
  --redis-cluster "redis://127.0.0.1:${cports[0]}" --keys 2000 --duration "$secs" --warmup 0.2 \
  --slices 1 >"$dir/bench-cluster.log" 2>&1 || failed=1
[ $failed -ne 0 ] && tail -n 5 "$dir"/bench.log "$dir"/stampede.log "$dir"/inval.log \
  "$dir"/bench-cluster.log >&2
for s in a b c; do
  p=$(eval echo "\$pid_$s")
  kill -TERM "$p"
  wait "$p"
  rc=$?
  [ $rc -eq 0 ] || { echo "tsan: daemon $s exited $rc" >&2; tail -n 5 "$dir/$s.log" >&2; failed=1; }
done
if ls "$dir"/tsan* >/dev/null 2>&1; then
  echo "tsan: reports:" >&2
  cat "$dir"/tsan* >&2
  failed=1
fi
echo "tsan: $(ls "$dir"/tsan* 2>/dev/null | wc -l) report files; logs in $dir"
[ $failed -eq 0 ] && rm -rf "$dir"
exit $failed
