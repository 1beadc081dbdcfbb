#!/usr/bin/env bash
# Instructions per L1-hit Get, counted by valgrind --tool=callgrind: in the
# daemon (our functions only, inclusive) and on the client's calling thread
# (libnearcache against the raw nng echo, with and without a context per
# call). Deterministic where the timed benchmarks are noisy; run.sh's figures
# say how long, this says how much of it is our code. About a minute.
#   bench/callgrind.sh [OPS]      (NC_BUILD: build directory, default build/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="${NC_BUILD:-$here/build}"
ops=${1:-2000}
keys=100
command -v valgrind >/dev/null || { echo "callgrind.sh: needs valgrind" >&2; exit 1; }
bench="$build/bench/nearcache-bench"
cli="$build/client/nearcache-cli"
dir=$(mktemp -d /tmp/nc-callgrind-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${NC_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

redis-server --port 0 --unixsocket "$dir/redis.sock" --save "" --appendonly no --dir "$dir" \
  --daemonize no --logfile "$dir/redis.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/redis.sock" ] && break; sleep 0.05; done
serving() {
  for _ in $(seq 300); do
    "$cli" -s "$1" stats --json 2>/dev/null | grep -q '"l1_serving": 1' && return 0
    sleep 0.1
  done
  echo "callgrind.sh: $1 did not come up" >&2
  return 1
}
load() { "$bench" run "$@" --redis "unix://$dir/redis.sock" --keys $keys --slices 1 --warmup 0 >/dev/null; }
per_op() { # FILE FUNCTION DIVISOR: inclusive instructions of FUNCTION / DIVISOR
  # (the largest entry: callgrind lists an inlined function under both files)
  callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$1" 2>/dev/null |
    awk -v fn="$2" -v n="$3" '
      $0 ~ ("[:]" fn "( |$)") || (fn == "PROGRAM TOTALS" && /PROGRAM TOTALS/) {
        gsub(",", "", $1); if ($1 + 0 > best) best = $1 + 0 }
      END { printf "%.0f", best / n }'
}

# The daemon, under callgrind; L1 warmed by a first run, counters zeroed,
# then `ops` Gets (plus the bench's own warm-up read of every key: all hits).
valgrind --tool=callgrind --callgrind-out-file="$dir/daemon.out" "$build/daemon/nearcached" \
  --listen "ipc://$dir/d.sock" --redis "unix://$dir/redis.sock" --l1-max-ttl 10m \
  --request-timeout 10s --log-level warn 2>"$dir/daemon.log" &
dpid=$!
pids+=($dpid)
serving "ipc://$dir/d.sock"
load l1-raw --url "ipc://$dir/d.sock" --ops 1
callgrind_control -z "$dpid" >/dev/null 2>&1
load l1-raw --url "ipc://$dir/d.sock" --ops "$ops"
callgrind_control -d "$dpid" >/dev/null 2>&1
gets=$((ops + keys + 1))
d="$dir/daemon.out.1"

# The client's calling thread, against a plain daemon and the echo server.
"$build/daemon/nearcached" --listen "ipc://$dir/n.sock" --redis "unix://$dir/redis.sock" \
  --l1-max-ttl 10m --log-level warn 2>"$dir/n.log" &
pids+=($!)
"$bench" echo-server --listen "ipc://$dir/echo.sock" &
pids+=($!)
serving "ipc://$dir/n.sock"
for p in l1 l1-raw echo echo-percall; do
  valgrind --tool=callgrind --callgrind-out-file="$dir/c-$p.out" --toggle-collect=worker_main \
    "$bench" run "$p" --url "ipc://$dir/n.sock" --echo-url "ipc://$dir/echo.sock" \
    --redis "unix://$dir/redis.sock" --keys $keys --ops "$ops" --slices 1 --warmup 0 \
    >/dev/null 2>&1
done

cat <<EOF
Instructions per L1-hit Get ($ops Gets; valgrind --tool=callgrind, user space only)

daemon, inclusive, our functions (nng's own work on its threads not included):
  call_cb (receive, decode, handle, encode, send)  $(per_op "$d" call_cb $gets)
    codec_request_unpack (protobuf-c)              $(per_op "$d" codec_request_unpack $gets)
    codec_request_free   (protobuf-c)              $(per_op "$d" codec_request_free $gets)
    call_prepare (reply size + nng_msg + pack)     $(per_op "$d" call_prepare $gets)
    call_prepare_get (the same, by hand: wire.c)   $(per_op "$d" call_prepare_get $gets)
    l1_get (hash, shard lock, lookup, LRU touch)   $(( $(per_op "$d" l1_get $gets) - $(per_op "$d" on_hit $gets) ))
    call_send (nng_ctx_send)                       $(per_op "$d" call_send $gets)

client, the calling thread's loop, per operation (includes the nng calls it makes):
  echo          (raw REQ, one context + aio reused)  $(per_op "$dir/c-echo.out" 'PROGRAM TOTALS' "$ops")
  echo-percall  (a context + aio per call)           $(per_op "$dir/c-echo-percall.out" 'PROGRAM TOTALS' "$ops")
  l1-raw        (hand-encoded Get, reused context)   $(per_op "$dir/c-l1-raw.out" 'PROGRAM TOTALS' "$ops")
  l1            (nc_get through libnearcache)        $(per_op "$dir/c-l1.out" 'PROGRAM TOTALS' "$ops")
    of which protobuf-c unpack / pack                $(per_op "$dir/c-l1.out" codec_reply_unpack "$ops") / $(per_op "$dir/c-l1.out" codec_request_pack "$ops")
    of which wire.c decode / encode                  $(per_op "$dir/c-l1.out" wire_get_reply_decode "$ops") / $(per_op "$dir/c-l1.out" wire_get_request_encode "$ops")
    of which nng_ctx_open + nng_ctx_close            $(( $(per_op "$dir/c-l1.out" nng_ctx_open "$ops") + $(per_op "$dir/c-l1.out" nng_ctx_close "$ops") ))
    of which nng_aio_alloc + nng_aio_free            $(( $(per_op "$dir/c-l1.out" nng_aio_alloc "$ops") + $(per_op "$dir/c-l1.out" nng_aio_free "$ops") ))
EOF
