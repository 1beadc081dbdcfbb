#!/usr/bin/env bash
# The Go client's benchmarks (docs/benchmarks.md, "Go client"): starts a
# private redis-server on a loopback port and two nearcached nodes on it,
# then runs, in the same run: libnearcache's L1-hit Get (nearcache-bench run
# l1), the Go near-tier hit against rueidis DoCache hits and go-redis Get,
# the Go daemon path, the stampede (2 processes, 2 daemons), and invalidation
# delivery (nearcache-bench inval, then the Go client's). Prints markdown.
# --smoke: short runs, to check every part works. Needs build/ (NC_BUILD).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build="${NC_BUILD:-$here/build}"
dur=3s cdur=3 rounds=2000
if [ "${1:-}" = --smoke ]; then dur=200ms cdur=0.3 rounds=50; fi
dir=$(mktemp -d /tmp/nc-gobench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
(cd "$here/bench/go" && GOFLAGS=-buildvcs=false go build -o "$dir/gobench" .)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --daemonize no --logfile "$dir/redis.log" &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
for n in a b; do
  "$build/daemon/nearcached" --listen "ipc://$dir/$n.sock" --redis "redis://127.0.0.1:$port" \
    --log-level warn 2>"$dir/$n.log" &
  pids+=($!)
done
for n in a b; do
  for _ in $(seq 200); do
    "$build/client/nearcache-cli" -s "ipc://$dir/$n.sock" stats --json 2>/dev/null |
      grep -q '"l1_serving": 1' && break
    sleep 0.05
  done
done
sleep 1.2 # the ring serves from the daemon's next heartbeat
modver() { (cd "$here/bench/go" && go list -m -f '{{.Version}}' "$1"); }
echo "Measured by \`bench/go/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown));"
echo "$(go env GOVERSION), rueidis $(modver github.com/redis/rueidis), go-redis $(modver github.com/redis/go-redis/v9),"
echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'); load average $(cut -d' ' -f1-3 /proc/loadavg) at the start."
echo
echo "#### libnearcache, L1-hit Get (the daemon path's floor)"
echo
"$build/bench/nearcache-bench" run l1@1 l1@16 --url "ipc://$dir/a.sock" \
  --redis "redis://127.0.0.1:$port" --duration "$cdur" --value-size 100 --keys 1 --md /dev/stdout |
  grep '^|' || true
echo
echo "#### Hits: Go near tier, rueidis DoCache, go-redis Get, Go daemon path (100-byte value)"
echo
"$dir/gobench" hits -url "ipc://$dir/a.sock" -redis "127.0.0.1:$port" -duration "$dur"
echo
echo "#### Stampede: one cold key, Fetch (nearcache) or cache-aside (rueidis, go-redis), 20 ms load"
echo
"$dir/gobench" stampede -a "ipc://$dir/a.sock" -b "ipc://$dir/b.sock" -redis "127.0.0.1:$port" -n 100
echo
echo "#### Invalidation delivery: C (nearcache-bench inval), then Go"
echo
echo '```text'
"$build/bench/nearcache-bench" inval --a "ipc://$dir/a.sock" --b "ipc://$dir/b.sock" --rounds "$rounds"
echo '```'
echo
"$dir/gobench" coherence -a "ipc://$dir/a.sock" -b "ipc://$dir/b.sock" -rounds "$rounds"
echo
echo "Load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
