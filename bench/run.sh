#!/usr/bin/env bash
# The standard benchmark suite (issue 5), in under 5 minutes. Starts its own
# redis-servers, delay proxy and nearcached daemons in a temporary directory,
# runs `nearcache-bench suite` (every path against its baselines, interleaved
# in one run), a perf profile of the daemon and of the echo floor, and
# `nearcache-bench memory` and `stampede`; writes docs/benchmarks.md (all
# but the Python client's section, which it keeps: client/python/bench/report.py
# writes that) and docs/benchmarks.png; stops everything by pid on exit.
#
# Remote Redis: when this shell may create network namespaces (root), the
# bench runs in namespace A and the "remote" Redis in namespace B, joined by a
# veth pair with 10.200.N.1/.2 (addresses exist only inside the two
# namespaces); nc-delay-proxy in A delays both ways, starting at 125 µs each
# way and calibrated until the whole link adds 250 µs to a round trip (the
# proxy's own hops add some; --no-calibrate keeps 125 µs). Otherwise the
# remote Redis is another local redis-server behind the proxy on loopback.
#
#   bench/run.sh [--duration S] [--smoke] [--no-docs] [--no-profile] [--no-memory]
#                [--no-netns] [--no-calibrate] [-- BENCH OPTIONS...]
#
# It also runs bench/tls.sh (TLS to Redis against plain TCP); with
# NC_BENCH_BEFORE=PATH/nearcached, a daemon of that build too (the plain
# path before and after a change, in the same run).
#
# --smoke runs every path for a fraction of a second and writes nothing
# (for CI). NC_BUILD names the build directory (default build/).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="${NC_BUILD:-$here/build}"
duration=3 smoke=0 docs=1 profile=1 memory=1 use_netns=1 calibrate=1
delay_us=125    # each way, to start with
target_rtt=250  # what the link should add to a round trip
mem_value=100   # value size of the memory fill (the suite's)
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
  --duration) duration=$2; shift 2 ;;
  --smoke) smoke=1 docs=0 profile=0 memory=0; shift ;;
  --no-docs) docs=0; shift ;;
  --no-profile) profile=0; shift ;;
  --no-memory) memory=0; shift ;;
  --no-netns) use_netns=0; shift ;;
  --no-calibrate) calibrate=0; shift ;;
  --) shift; extra=("$@"); break ;;
  *) echo "usage: $0 [--duration S] [--smoke] [--no-docs] [--no-profile] [--no-memory] [--no-netns] [--no-calibrate] [-- BENCH OPTIONS]" >&2; exit 2 ;;
  esac
done
start_s=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '== %s\n' "$*" >&2; }

# ---- tools and build -------------------------------------------------------
if [ $docs -eq 1 ] && ! command -v gnuplot >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "installing gnuplot-nox"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null ||
      log "gnuplot-nox did not install; no plot"
  else
    log "gnuplot is missing (apt-get install gnuplot-nox); no plot"
  fi
fi
log "building in $build"
cmake -S "$here" -B "$build" -DNC_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target nearcached nearcache-cli nearcache-bench nc-delay-proxy \
  -- --no-print-directory >/dev/null
bench="$build/bench/nearcache-bench"
cli="$build/client/nearcache-cli"

# ---- processes, namespaces, cleanup ----------------------------------------
dir=$(mktemp -d /tmp/nc-bench-XXXXXX)
pids=() netns=() veth=""
cleanup() {
  set +e
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$veth" ] && ip link del "$veth" 2>/dev/null
  for n in "${netns[@]}"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

nsa="" nsb=""
in_a() { if [ -n "$nsa" ]; then ip netns exec "$nsa" "$@"; else "$@"; fi; }
# For `bg_a CMD &`: the background subshell becomes CMD, so $! is its pid.
bg_a() { if [ -n "$nsa" ]; then exec ip netns exec "$nsa" "$@"; else exec "$@"; fi; }
bg_b() { if [ -n "$nsb" ]; then exec ip netns exec "$nsb" "$@"; else exec "$@"; fi; }
forget() { # PID: it has been waited for; never signal it again
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
# Runs CMD in namespace A and waits for it, as a background job so that a
# signal to this script is handled at once (and the trap stops CMD too).
fg_a() {
  bg_a "$@" &
  local p=$! rc=0
  pids+=($p)
  wait $p || rc=$?
  forget $p
  return $rc
}

setup_netns() {
  [ $use_netns -eq 1 ] && [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null || return 1
  local n=$(($$ % 200 + 20)) a="ncb$$a" b="ncb$$b"
  ip netns add "$a" 2>/dev/null || return 1
  netns+=("$a")
  ip netns add "$b" 2>/dev/null || return 1
  netns+=("$b")
  ip link add "v$$a" type veth peer name "v$$b" 2>/dev/null || return 1
  veth="v$$a"
  ip link set "v$$a" netns "$a" && ip link set "v$$b" netns "$b" || return 1
  veth="" # deleted with its namespace from now on
  ip -n "$a" addr add "10.200.$n.1/24" dev "v$$a" &&
    ip -n "$b" addr add "10.200.$n.2/24" dev "v$$b" &&
    ip -n "$a" link set lo up && ip -n "$b" link set lo up &&
    ip -n "$a" link set "v$$a" up && ip -n "$b" link set "v$$b" up || return 1
  nsa=$a nsb=$b remote_host="10.200.$n.2"
}

free_port() { # a TCP port nothing listens on (in namespace A)
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    in_a ss -Hltn "sport = :$p" | grep -q . || { echo $p; return; }
  done
}

wait_for() { # DESCRIPTION COMMAND...: retry for up to 10 s
  local what=$1
  shift
  for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "run.sh: $what did not come up; logs in $dir" >&2
  tail -n 5 "$dir"/*.log >&2 || true
  return 1
}

start_redis() { # NAME IN_FN HOST PORT [REDIS-SERVER ARGS...]
  local name=$1 in=$2 host=$3 port=$4
  shift 4
  $in redis-server --bind "$host" --port "$port" --protected-mode no --save "" \
    --appendonly no --dir "$dir" --daemonize no --logfile "$dir/$name.log" "$@" &
  pids+=($!)
  wait_for "redis $name" in_a redis-cli -h "$host" -p "$port" ping
}

# A 3-master Redis Cluster on loopback (no replicas: the bench measures the
# routing, not the failover); sets $cluster_url and $p_cluster.
start_cluster() {
  local ports=() i p
  for i in 1 2 3; do
    p=$(free_port)
    ports+=("$p")
    start_redis "cluster$i" bg_a 127.0.0.1 "$p" --cluster-enabled yes \
      --cluster-config-file "$dir/nodes-$i.conf" --cluster-port "$(free_port)" || return 1
  done
  in_a redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-yes >"$dir/cluster.log" 2>&1 ||
    { cat "$dir/cluster.log" >&2; return 1; }
  for _ in $(seq 200); do
    in_a redis-cli -p "${ports[0]}" cluster info 2>/dev/null | grep -q cluster_state:ok && break
    sleep 0.05
  done
  p_cluster=${ports[0]}
  cluster_url="cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
}

declare -A dpid
start_daemon() { # NAME REDIS_URL ARGS...
  local name=$1 redis=$2
  shift 2
  bg_a "$build/daemon/nearcached" --listen "ipc://$dir/$name.sock" --redis "$redis" \
    --log-level warn "$@" 2>"$dir/$name.log" &
  pids+=($!)
  dpid[$name]=$!
}

serving() { "$cli" -s "ipc://$dir/$1.sock" stats --json | grep -q '"l1_serving": 1'; }

if setup_netns; then
  link="network namespaces: bench and daemons in one, remote Redis in another at $remote_host over a veth pair; nc-delay-proxy in the first delays both ways"
else
  nsa="" nsb="" remote_host=127.0.0.1
  link="loopback (no network namespace): remote Redis on 127.0.0.1 behind nc-delay-proxy, which delays both ways"
fi
log "remote link: $link"

p_local=$(free_port)
start_redis redis bg_a 127.0.0.1 "$p_local"
p_remote=6379
[ -z "$nsb" ] && p_remote=$(free_port)
start_redis redis-remote bg_b "$remote_host" "$p_remote"
p_proxy=$(free_port)
start_proxy() { # DELAY_US (each way, for commands and pub/sub alike)
  bg_a "$build/tools/nc-delay-proxy" "$p_proxy" "$remote_host" "$p_remote" --delay-us "$1" \
    --up-delay-us "$1" --pubsub-delay-us "$1" 2>>"$dir/proxy.log" &
  proxy_pid=$!
  pids+=($proxy_pid)
  # The proxy sleeps in ppoll(); the default 50 µs timer slack would add up
  # to that much to each delay.
  echo 1000 >"/proc/$proxy_pid/timerslack_ns" 2>/dev/null || true
  wait_for "delay proxy" in_a redis-cli -h 127.0.0.1 -p "$p_proxy" ping
}
stop_proxy() { kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; forget "$proxy_pid"; }
link_added() { # the p50 a GET through the proxy adds to one to the same Redis without it, in µs
  in_a "$bench" run redis-get-near redis-get-remote --redis-near "redis://$remote_host:$p_remote" \
    --redis-remote "redis://127.0.0.1:$p_proxy" --keys 100 --duration 1.5 --slices 3 --warmup 0.2 \
    --json | grep -o '"p50_us": [0-9.]*' | cut -d' ' -f2 | paste -sd' ' |
    awk '{printf "%d", $2 - $1}'
}
# The proxy's own two hops through a user-space process add latency too, so
# its delay is calibrated until the link as a whole adds the target RTT.
calibration=""
start_proxy "$delay_us"
if [ $calibrate -eq 1 ] && [ $smoke -eq 0 ]; then
  for try in 1 2 3 4 5; do
    added=$(link_added) || true
    [ -n "$added" ] || { log "could not measure the link; keeping $delay_us µs each way"; break; }
    calibration+="${calibration:+; }$delay_us µs each way → +$added µs"
    off=$((target_rtt - added))
    [ ${off#-} -le 20 ] || [ $try -eq 5 ] && break
    delay_us=$((delay_us + off / 2))
    [ $delay_us -lt 0 ] && delay_us=0
    stop_proxy
    start_proxy "$delay_us"
  done
  link+=" (calibrated to add ${target_rtt} µs per round trip in all: $calibration; final delay $delay_us µs each way)"
  log "link calibration: $calibration; using $delay_us µs each way"
else
  link+=" ($delay_us µs each way)"
fi

# The suite outlasts the default 60 s l1_max_ttl; 10 minutes keeps the
# warmed keys in L1 so that the l1 path is all L1 hits.
start_daemon a "redis://127.0.0.1:$p_local" --l1-max-ttl 10m
start_daemon l2 "redis://127.0.0.1:$p_local" --l1-max-ttl 1ms
start_daemon remote "redis://127.0.0.1:$p_proxy" --l1-max-ttl 10m
log "a 3-master Redis Cluster for the cluster paths"
start_cluster
start_daemon cl "$cluster_url" --l1-max-ttl 1ms
for n in a l2 remote cl; do wait_for "nearcached $n" serving $n; done

dur=$duration warm=0.5 slices=6
# the smoke: each path in two slices (the interleaving still runs) of 0.1 s
[ $smoke -eq 1 ] && dur=0.2 warm=0.05 slices=2
common=(--url "ipc://$dir/a.sock" --url-l2 "ipc://$dir/l2.sock" --url-remote "ipc://$dir/remote.sock"
  --redis "redis://127.0.0.1:$p_local" --redis-remote "redis://127.0.0.1:$p_proxy"
  --redis-near "redis://$remote_host:$p_remote" --pid "${dpid[a]}" --pid-l2 "${dpid[l2]}"
  --pid-remote "${dpid[remote]}" --url-cluster "ipc://$dir/cl.sock"
  --redis-cluster "redis://127.0.0.1:$p_cluster" --pid-cluster "${dpid[cl]}" --tmpdir "$dir" --link "$link" --duration "$dur" --warmup "$warm"
  --slices "$slices" --link-rtt-us "$target_rtt")

# ---- the suite ---------------------------------------------------------------
log "suite: every path against its baselines, interleaved (${dur}s per path)"
fg_a "$bench" suite "${common[@]}" --json --md "$dir/suite.md" --plot "$dir/plot.dat" \
  "${extra[@]}" >"$dir/suite.json"
cat "$dir/suite.md"
counters='"(requests|l1_hits|l1_misses|l2_hits|l1_expired|subscription_losses|sequence_gaps|fills_voided|redis_errors|deadline_exceeded|overloaded)": [0-9]+'
for n in a l2 remote cl; do
  echo "$n: $("$cli" -s "ipc://$dir/$n.sock" stats --json | grep -oE "$counters" | tr -d '"' | paste -sd' ')"
done >"$dir/counters.txt"

# ---- stampede: database loads of a cold hot key -------------------------------
stampede_rounds=30
[ $smoke -eq 1 ] && stampede_rounds=2
log "stampede: 16 clients on two daemons read a cold key at once (${stampede_rounds} rounds)"
fg_a "$bench" stampede --a "ipc://$dir/a.sock" --b "ipc://$dir/l2.sock" \
  --redis "redis://127.0.0.1:$p_local" --threads 16 --rounds $stampede_rounds --load-ms 5 \
  >"$dir/stampede.txt"
cat "$dir/stampede.txt"

# ---- TLS to Redis: the same L2 hits over TLS, plain TCP, direct hiredis ------
log "tls: L2 hits through a daemon on rediss:// against one on redis:// (bench/tls.sh)"
tls_args=()
[ $docs -eq 1 ] && tls_args+=(--docs)
[ $smoke -eq 1 ] && tls_args+=(--duration 0.3 --slices 1)
[ -n "${NC_BENCH_BEFORE:-}" ] && tls_args+=(--before "$NC_BENCH_BEFORE" --before-name "${NC_BENCH_BEFORE_NAME:-another build}")
NC_BUILD="$build" bash "$here/bench/tls.sh" "${tls_args[@]}"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
if [ $smoke -eq 1 ]; then
  log "smoke run passed in $((SECONDS - start_s)) s"
  exit 0
fi

# ---- what Redis spends on an L2 read ----------------------------------------
log "redis: time per command while the daemon serves L2 reads"
rcli() { in_a redis-cli -h 127.0.0.1 -p "$p_local" "$@"; }
rcli config resetstat >/dev/null
fg_a "$bench" run l2 redis-get "${common[@]}" --duration 2 --slices 2 --warmup 0.2 >/dev/null
rcli info commandstats | tr -d '\r' | grep -E '^cmdstat_(evalsha|exec|multi|get|pttl|exists|time):' \
  >"$dir/commandstats.txt" || true
cat "$dir/commandstats.txt"

# ---- profiles ----------------------------------------------------------------
profile_one() { # NAME PID SPEC [BENCH OPTIONS]: perf of PID while SPEC runs
  local name=$1 pid=$2 spec=$3
  shift 3
  bg_a "$bench" run "$spec" "${common[@]}" "$@" --duration 4 --slices 1 --warmup 1 \
    >"$dir/prof-$name.txt" 2>&1 &
  local b=$!
  pids+=($b)
  sleep 1.5
  perf record -q -F 999 -p "$pid" -o "$dir/prof-$name.data" -- sleep 3 >/dev/null 2>&1 || true
  wait $b || true
  forget $b
  perf report -q -i "$dir/prof-$name.data" --no-children --sort dso --stdio 2>/dev/null |
    grep % | head -8 >"$dir/prof-$name.dso" || true
  perf report -q -i "$dir/prof-$name.data" --no-children --sort dso,sym --stdio 2>/dev/null |
    grep % | head -25 >"$dir/prof-$name.sym" || true
}
if [ $profile -eq 1 ] && command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
  log "profile: perf on nearcached (l1 x16) and on the echo server (echo x16)"
  bg_a "$bench" echo-server --listen "ipc://$dir/echo.sock" &
  pids+=($!)
  echo_pid=$!
  profile_one daemon "${dpid[a]}" "l1@16"
  profile_one echo "$echo_pid" "echo@16" --echo-url "ipc://$dir/echo.sock"
else
  profile=0
fi

# ---- memory ------------------------------------------------------------------
if [ $memory -eq 1 ]; then
  log "memory: filling a 64 MiB L1 with ${mem_value}-byte values until it evicts"
  p_mem=$(free_port)
  start_redis redis-mem bg_a 127.0.0.1 "$p_mem"
  start_daemon mem "redis://127.0.0.1:$p_mem" --l1-max-memory 64MB
  wait_for "nearcached mem" serving mem
  fg_a "$bench" memory --url "ipc://$dir/mem.sock" --pid "${dpid[mem]}" --threads 16 \
    --value-size $mem_value --fill-factor 1.05 --md "$dir/memory.md" --json >"$dir/memory.json"
  cat "$dir/memory.md"
fi

# ---- docs --------------------------------------------------------------------
[ $docs -eq 1 ] || exit 0
out="$here/docs/benchmarks.md"
png="$here/docs/benchmarks.png"
if command -v gnuplot >/dev/null; then
  gnuplot -e "datafile='$dir/plot.dat'; outfile='$png'" "$here/bench/plot.gp" 2>"$dir/gnuplot.log" ||
    log "gnuplot failed: $(cat "$dir/gnuplot.log")"
fi
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
# The Python client's section (client/python/bench/report.py writes it) is
# copied through, as the page has it, between its two marker lines.
kept=$(sed -n '/^<!-- python-bench:begin -->$/,/^<!-- python-bench:end -->$/p' "$out" 2>/dev/null || true)
# (a begin marker without its end would copy the page to its end: not kept)
[ "$(tail -n1 <<<"$kept")" = '<!-- python-bench:end -->' ] || kept=
[ -n "$kept" ] || kept='<!-- python-bench:begin -->
## The Python client against the tutorial

Not measured yet: `client/python/bench/report.py` writes this section.
<!-- python-bench:end -->'
# The Node.js client's section (client/node/bench/bench.js's figures) likewise.
kept_node=$(sed -n '/^<!-- node-bench:begin -->$/,/^<!-- node-bench:end -->$/p' "$out" 2>/dev/null || true)
[ "$(tail -n1 <<<"$kept_node")" = '<!-- node-bench:end -->' ] || kept_node=
# So is the Go client's (bench/go/run.sh measures it), when it is there.
gokept=$(sed -n '/^<!-- go-bench:begin -->$/,/^<!-- go-bench:end -->$/p' "$out" 2>/dev/null || true)
[ "$(tail -n1 <<<"$gokept")" = '<!-- go-bench:end -->' ] || gokept=
# And the TLS section (bench/tls.sh, run above, wrote it).
tlskept=$(sed -n '/^<!-- tls-bench:begin -->$/,/^<!-- tls-bench:end -->$/p' "$out" 2>/dev/null || true)
[ "$(tail -n1 <<<"$tlskept")" = '<!-- tls-bench:end -->' ] || tlskept=
# And the fan-out section (bench/fanout.sh measures it).
fanoutkept=$(sed -n '/^<!-- fanout-bench:begin -->$/,/^<!-- fanout-bench:end -->$/p' "$out" 2>/dev/null || true)
[ "$(tail -n1 <<<"$fanoutkept")" = '<!-- fanout-bench:end -->' ] || fanoutkept=
{
  cat <<EOF
# Benchmarks

Written by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)); run it again to refresh.
Every figure below comes from that one run: the paths are measured interleaved in
slices (A B C … A B C …) so that a noisy machine moves both sides of each ratio alike.
Absolute numbers on a shared 2-core VM drift from run to run by ±30 %; the ratios
move much less.

## Machine

| | |
| --- | --- |
| CPU | $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') |
| kernel | $(uname -r) |
| nng | $(version_of libnng1) |
| hiredis | $(version_of libhiredis0.14) |
| protobuf-c | $(version_of libprotobuf-c1) |
| redis-server | $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') |
| gcc | $(gcc -dumpfullversion), $(btype=$(grep -m1 CMAKE_BUILD_TYPE: "$build/CMakeCache.txt" | cut -d= -f2); echo "${btype:-RelWithDebInfo}") build |
| remote link | $link |
| load average (1, 5, 15 min) | $load_start at the start, $load_end after the suite |

## Setup

- Keys: 10 000 (\`k0000000\`…), values of 100 bytes, all in Redis before the run
  (\`nc:v1:{TAG}:bench:VER:KEY\` under the namespace's version, 1 h TTL) and read once through each daemon. Mixed
  workload: 90 % Get / 10 % Set, key popularity Zipf with s = 0.99.
- Each path runs 3 s (after a 0.5 s warm-up) in 6 slices of 0.5 s, taken in
  turn with every other path; one client, then 16.
- Each client thread has its own connection: its own \`nc_client\`, hiredis
  context or nng REQ socket, as separate processes on a host would.
  Closed loop: a thread sends its next request when the last one is answered.
- \`echo\`: the transport floor. An nng REP socket with 256 contexts (as
  nearcached) in its own process, replying with the request's message;
  requests are as large as an L1-hit Get reply. The client reuses one context
  and aio per thread, as libnearcache does from its pool. \`echo-percall\`
  makes both per call, as libnearcache did before it pooled them;
  \`l1-raw\` sends a hand-encoded Get to the daemon on the echo client, so
  \`echo\` → \`l1-raw\` is the daemon's share of an L1 hit and \`l1-raw\` →
  \`l1\` the client library's.
- \`mget\`: one \`nc_mget()\` of 10 random warmed keys (all L1 hits), against
  \`redis-mget\`, one MGET of the same 10 keys; ops/s counts calls.
- \`l2\`: a second daemon with \`--l1-max-ttl 1ms\`, read with uniformly random
  keys, so every Get misses L1 and hits Redis (and fills L1 for 1 ms).
  \`mget-l2\`: an \`nc_mget()\` of 10 random keys through it (L1 misses);
  \`set\` and \`redis-set\`: a Set through the first daemon, and a direct SET.
- Redis Cluster (issue 17): three \`redis-server --cluster-enabled yes\` masters
  on loopback, no replicas, and a daemon on \`cluster://\` with
  \`--l1-max-ttl 1ms\`. \`l2-cluster\`, \`set-cluster\` and \`mget-cluster\` (10
  keys, so about 10 slots on the three masters) go through it;
  \`redis-get-cluster\`, \`redis-set-cluster\` and \`redis-mget-cluster\` are
  hiredis routed by slot as a cluster client does, the last one as a pipeline
  of GETs per master, all sent before any answer is read (a node refuses an
  MGET across slots).
- Redis is reached over TCP on loopback (local) or through the delay link
  (remote); the daemons use the same addresses as the direct hiredis baselines.
- "server CPU µs/op" is the CPU time of the daemon (or echo server) process
  over the measured time, divided by the operations; "server switches/op" the
  context switches of all its threads (\`/proc/PID/task/*/status\`), likewise.
- The daemons run with the defaults except \`--l1-max-ttl 10m\` (the run
  outlasts the default 60 s, which would turn some \`l1\` Gets into L2 reads).
- \`l1\` and \`l1-raw\` time only the Gets answered from L1 and \`l2\` only
  those answered from Redis (their ops/s count only those too); "L1 share"
  says how many of all Gets came from L1. A daemon that falls behind its own
  heartbeat under load stops serving L1 for a while (see the counters below).

## Targets (issue 5), this run

| target | measured | | |
| --- | ---: | ---: | --- |
$(grep -h -E '\*\*(met|missed)\*\*' "$dir/suite.md" "$dir/memory.md" 2>/dev/null)

Why each missed target misses, and where its floor is: see "Where the floor
is, and why" below.

![latency per path](benchmarks.png)

## Paths

EOF
  cat "$dir/suite.md"
  echo
  cat <<EOF
Daemon counters after the suite (\`nearcache-cli stats\`): \`l1_misses\` on
\`a\` beyond the first read of each key, or \`subscription_losses\`, mean
that L1 stopped serving for a while (a node that misses its own heartbeat for
\`coherence_window\` answers from Redis until it has caught up).

\`\`\`
$(cat "$dir/counters.txt")
\`\`\`

EOF
  if [ -f "$dir/memory.md" ]; then
    cat <<EOF
## Memory

A daemon with \`--l1-max-memory 64MB\` and its own Redis is filled with Sets of
new keys (${mem_value}-byte values, as in the suite) until L1 evicts, and on to
1.05 × the entries it held then. The charged figure is \`l1_bytes / l1_entries\`
minus key and value: what L1 counts against its budget for each entry, fixed
by construction (\`l1_entry_overhead()\`). RSS is \`VmRSS\` from \`/proc/PID/status\`; "from RSS growth" is
(RSS full − RSS empty) / entries − (key + value), everything the process pays
per entry (allocator headers and rounding, hash buckets, fragmentation).

EOF
    cat "$dir/memory.md"
    echo
  fi
  cat <<EOF
## Stampede: database loads of a cold hot key

\`nearcache-bench stampede\`: 16 client threads, alternately on daemon \`a\` and
daemon \`l2\` (two "hosts" sharing the local Redis), read the same key, new
each round so that no one has it, at the same moment (a barrier), and load it
from "the database" when they must: a loader that takes 5 ms and counts its
calls. The three ways take turns round by round. "loads/round" is what one
cold key costs the database; the latencies are a client's read, load
included.

\`\`\`
$(cat "$dir/stampede.txt")
\`\`\`

EOF
  if [ -s "$dir/commandstats.txt" ]; then
    cat <<EOF
## What Redis spends

\`INFO commandstats\` of the local Redis while \`l2\` (the daemon's read
lane: one MULTI ... EXEC of GET, GET, PTTL, GET, EXISTS, PTTL and TIME per
Get; \`exec\` includes the commands it ran) and \`redis-get\` (plain GET)
ran for 2 s each; \`usec_per_call\` is Redis's own execution time, without
the network.

\`\`\`
$(cat "$dir/commandstats.txt")
\`\`\`

EOF
  fi
  if [ $profile -eq 1 ]; then
    cat <<EOF
## Profiles from this run

\`perf record -F 999\` for 3 s on the server process while 16 clients ran
L1-hit Gets (daemon) or echo round trips (echo server). Share of samples by
object, then the top symbols.

nearcached, \`l1\` × 16:

\`\`\`
$(cat "$dir/prof-daemon.dso")

$(cat "$dir/prof-daemon.sym")
\`\`\`

echo server, \`echo\` × 16:

\`\`\`
$(cat "$dir/prof-echo.dso")

$(cat "$dir/prof-echo.sym")
\`\`\`

EOF
  fi
  printf '%s\n\n' "$kept"
  [ -z "$kept_node" ] || printf '%s\n\n' "$kept_node"
  [ -z "$gokept" ] || printf '%s\n\n' "$gokept"
  [ -z "$fanoutkept" ] || printf '%s\n\n' "$fanoutkept"
  [ -z "$tlskept" ] || printf '%s\n\n' "$tlskept"
  cat "$here/bench/analysis.md"
  cat <<EOF

## Reproducing

After the README's setup (\`scripts/deps.sh\`, or \`scripts/test.sh\` once), as
root for the network namespaces (without them the remote link is loopback):

\`\`\`sh
bench/run.sh            # this page and benchmarks.png; this run took $((SECONDS - start_s)) s
bench/run.sh --smoke    # every path for a moment, writes nothing
bench/tls.sh --docs --before OTHER/build/daemon/nearcached --before-name "main at COMMIT"   # only the TLS section (~1 min)
bench/callgrind.sh      # instructions per L1-hit Get in the daemon and the client (~30 s)
.venv/bin/python client/python/bench/report.py   # the Python client's section (~5 min)
build/bench/nearcache-bench run l1@16 echo@16 --url ... --redis ...   # any paths; --help lists them
\`\`\`

<details><summary>This run's figures as JSON (<code>nearcache-bench suite --json</code>)</summary>

\`\`\`json
$(cat "$dir/suite.json")
$(cat "$dir/memory.json" 2>/dev/null)
\`\`\`

</details>
EOF
} >"$out.tmp"
mv "$out.tmp" "$out"
log "wrote $out$([ -f "$png" ] && echo " and $png") in $((SECONDS - start_s)) s"
