#!/usr/bin/env bash
# Fan-out: Redis's CPU per invalidated write, before (inval_batch = 0: every
# write's script publishes its own message) and after (inval_batch = 1:
# batched by the daemon's publisher), in the same run against one Redis.
# Starts a private redis-server on a loopback TCP port; for each setting a
# nearcached on it, then nc-fanout-bench (500 subscribing connections, 16
# writer threads doing Sets through the daemon); stops everything by pid.
#   bench/fanout.sh [--smoke] [--subs N] [--writers N] [--seconds S]
#                   [--cluster [--before NEARCACHED]]
# --smoke: 50 subscribers, 4 writers, 1 s, just to show every path runs.
# --cluster: a 3-master Redis Cluster instead (no replicas), each subscriber
#   one connection per master subscribed to its channels, and Redis's CPU per
#   write on each master; --before NEARCACHED also runs that nearcached
#   binary (one built before channels per master: every subscriber on the one
#   sharded channel nc:v1:inval's master) against the same cluster first.
# Build first (scripts/run.sh, or cmake with -DNC_BUILD_BENCH=ON).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="${NC_BUILD:-$here/build}"
subs=500 writers=16 seconds=5 idle=2 raw=20000 cluster=0 before=
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) subs=50 writers=4 seconds=1 idle=0.3 raw=1000 ;;
    --subs) subs=$2; shift ;;
    --writers) writers=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --cluster) cluster=1 ;;
    --before) before=$2; shift ;;
    *) echo "usage: $0 [--smoke] [--subs N] [--writers N] [--seconds S] [--cluster [--before NEARCACHED]]" >&2; exit 2 ;;
  esac
  shift
done
ulimit -n "$((3 * subs + 1024))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d /tmp/nc-fanout-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stat() { # stat SOCKET FIELD
  "$build/client/nearcache-cli" -s "ipc://$1" stats --json | sed -n "s/.*\"$2\": \\([0-9]*\\).*/\\1/p"
}

serving() { # serving SOCKET: wait until the daemon serves from L1
  for _ in $(seq 200); do
    "$build/client/nearcache-cli" -s "ipc://$1" stats --json 2>/dev/null \
      | grep -q '"l1_serving": 1' && break
    sleep 0.05
  done
}

if [ "$cluster" = 1 ]; then
  ports=()
  for i in 1 2 3; do
    p=$(free_port)
    while [ "$p" -gt 55000 ]; do p=$(free_port); done # the bus port is p + 10000
    ports+=("$p")
    mkdir -p "$dir/$p"
    (cd "$dir/$p" && exec redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file nodes.conf --save "" --appendonly no --maxclients "$((subs + 200))" \
      --daemonize no --logfile "$dir/$p/redis.log") &
    pids+=($!)
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
  redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-yes >"$dir/create.log"
  for _ in $(seq 200); do
    ok=1
    for p in "${ports[@]}"; do
      redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' || ok=0
    done
    [ "$ok" = 1 ] && break
    sleep 0.05
  done
  url="cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
  list=$(IFS=,; echo "${ports[*]}")
  # cphase LABEL NEARCACHED ONE-CHANNEL
  cphase() {
    local sock="$dir/c$3.sock"
    "$2" --listen "ipc://$sock" --redis "$url" --log-level warn 2>"$dir/c$3.log" &
    local pid=$!
    pids+=($pid)
    serving "$sock"
    "$build/bench/nc-fanout-bench" --cluster "$list" --one-channel "$3" --daemon "ipc://$sock" \
      --subs "$subs" --writers "$writers" --seconds "$seconds" --idle "$idle" --label "$1"
    echo "$1: daemon: $(stat "$sock" invalidations_sent) invalidations in $(stat "$sock" invalidation_batches) messages"
    kill "$pid"
    wait "$pid" || { cat "$dir/c$3.log"; exit 1; }
  }
  if [ -n "$before" ]; then
    cphase "cluster, one channel (before)" "$before" 1
  fi
  cphase "cluster, a channel per master" "$build/daemon/nearcached" 0
  exit 0
fi

port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --maxclients "$((subs + 200))" \
  --dir "$dir" --daemonize no --logfile "$dir/redis.log" &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

# phase LABEL BATCH SUBS [RAW]
phase() {
  local sock="$dir/$1.sock"
  "$build/daemon/nearcached" --listen "ipc://$sock" --redis "redis://127.0.0.1:$port" \
    --inval-batch "$2" --log-level warn 2>"$dir/$1.log" &
  local pid=$!
  pids+=($pid)
  serving "$sock"
  "$build/bench/nc-fanout-bench" --port "$port" --daemon "ipc://$sock" --subs "$3" \
    --writers "$writers" --seconds "$seconds" --idle "$idle" --label "$1" --raw "${4:-0}"
  echo "$1: daemon: $(stat "$sock" invalidations_sent) invalidations in $(stat "$sock" invalidation_batches) messages"
  kill "$pid"
  wait "$pid" || { cat "$dir/$1.log"; exit 1; }
}

phase "before-0subs (inval_batch 0)" 0 0
phase "before (inval_batch 0)" 0 "$subs" "$raw"
phase "after (inval_batch 1)" 1 "$subs"
