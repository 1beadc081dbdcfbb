#!/usr/bin/env bash
# The soak (issue 18): a private redis-server (no persistence), daemons A and
# B, and a mixed load of C clients (bench/soak_client.c) and Python clients
# (bench/soak_client.py), most with a near tier, for --minutes N (default
# 30) or --seconds N. One fault a minute (--fault-every), in turn: Redis
# killed and restarted empty, Redis frozen for 3 s, CLIENT KILL of the
# subscriptions, daemon B killed (-9) and restarted, a reader killed (-9)
# mid-request and restarted. RSS, open descriptors and threads of A, B and
# a Python client are sampled every 10 s; at the end bench/soak_check.py
# checks every read against the acknowledged writes (0 stale reads within
# coherence_window), and the daemons must exit 0 on SIGTERM. CI runs a
# short one (scripts/test.sh).
#
#   bench/soak.sh [--minutes N | --seconds N] [--fault-every SECONDS] [--out DIR]
# (NC_BUILD: the build, default build/; --fault-every: default 60)
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${NC_BUILD:-$here/build}
minutes=30
seconds=""
every=60
out=""
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) minutes=$2; seconds=""; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --fault-every) every=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $minutes =~ ^[0-9]+$ ]] && [ "$minutes" -ge 1 ] || { echo "soak: --minutes takes a whole number >= 1" >&2; exit 2; }
[ -z "$seconds" ] || { [[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -ge 10 ]; } ||
  { echo "soak: --seconds takes a whole number >= 10" >&2; exit 2; }
[ -n "$seconds" ] || seconds=$((minutes * 60))
[[ $every =~ ^[0-9]+$ ]] && [ "$every" -ge 5 ] || { echo "soak: --fault-every takes a whole number >= 5" >&2; exit 2; }
daemon=$build/daemon/nearcached client=$build/bench/nc-soak-client cli=$build/client/nearcache-cli
for f in "$daemon" "$client" "$cli"; do
  [ -x "$f" ] || { echo "soak: $f missing: build with -DNC_BUILD_BENCH=ON" >&2; exit 2; }
done
py=$here/.venv/bin/python
[ -x "$py" ] || bash "$here/scripts/venv.sh" >/dev/null || exit 2
out=${out:-$build/soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/redis" && rm -f "$out"/*.log "$out"/*.sock* "$out/samples.tsv"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
window_ms=1000 # coherence_window (the default)
pids=()
cleanup() {
  for p in "${pids[@]}" ${redis_pid:-} ${a_pid:-} ${b_pid:-}; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT
log() { echo "$(date +%T) soak: $*" | tee -a "$out/soak.log"; }

start_redis() {
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$out/redis" \
    >>"$out/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.05; done
  log "redis did not start"; exit 1
}
rcli() { redis-cli -p "$port" "$@" >/dev/null 2>&1; }

# start_daemon NAME: starts nearcached on $out/NAME.sock; sets NAME_pid.
start_daemon() {
  "$daemon" --listen "ipc://$out/$1.sock" --redis "redis://127.0.0.1:$port" >>"$out/$1.log" 2>&1 &
  printf -v "$1_pid" %s $!
  for _ in $(seq 100); do "$cli" -s "ipc://$out/$1.sock" ping >/dev/null 2>&1 && return; sleep 0.05; done
  log "daemon $1 did not answer"; exit 1
}

# The clients: [lang role id daemon near_bytes rate]; reader i logs to rI.log.
clients=(
  "c writer 0 a 0 100" "py writer 1 b 0 100"
  "c reader 0 a 0 300" "c reader 1 a 8388608 300" "c reader 2 b 8388608 300"
  "py reader 3 a 8388608 300" "py reader 4 b 8388608 300"
)
cpid=()
start_client() { # index into clients
  local lang role id d near rate
  read -r lang role id d near rate <<<"${clients[$1]}"
  local file="$out/${role:0:1}$id.log"
  if [ "$lang" = c ]; then
    "$client" "ipc://$out/$d.sock" "$file" "$role" "$id" 2 16 "$rate" "$near" 2>>"$out/clients.err" &
  else
    "$py" "$here/bench/soak_client.py" "ipc://$out/$d.sock" "$file" "$role" "$id" 2 16 "$rate" "$near" \
      2>>"$out/clients.err" &
  fi
  cpid[$1]=$!
  pids+=($!)
}

# sample T: a line per watched process: T name pid rss_kb fds threads
sample() {
  local name pid
  for name in a b py3; do
    case $name in a) pid=$a_pid ;; b) pid=$b_pid ;; py3) pid=${cpid[5]} ;; esac
    [ -r "/proc/$pid/status" ] || continue
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$name" "$pid" \
      "$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")" "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)" \
      "$(awk '/^Threads/ {print $2}' "/proc/$pid/status")" >>"$out/samples.tsv"
  done
}

fault() { # the minute's fault, in turn
  case $(($1 % 5)) in
    0) log "fault: redis killed (-9), restarted empty 1 s later"
       kill -9 "$redis_pid"; wait "$redis_pid" 2>/dev/null; sleep 1; start_redis ;;
    1) log "fault: redis frozen (SIGSTOP) for 3 s"
       kill -STOP "$redis_pid"; sleep 3; kill -CONT "$redis_pid" ;;
    2) log "fault: CLIENT KILL TYPE pubsub"
       rcli CLIENT KILL TYPE pubsub ;;
    3) log "fault: daemon B killed (-9), restarted 0.3 s later"
       kill -9 "$b_pid"; wait "$b_pid" 2>/dev/null; sleep 0.3; start_daemon b ;;
    4) local i=$((2 + ($1 / 5) % 5)) # a reader, C or Python in turn
       log "fault: reader ${clients[$i]} killed (-9) mid-request, restarted"
       kill -9 "${cpid[$i]}"; wait "${cpid[$i]}" 2>/dev/null; start_client "$i" ;;
  esac
}

log "$seconds s into $out; load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_redis
start_daemon a
start_daemon b
for i in "${!clients[@]}"; do start_client "$i"; done
t0=$(date +%s)
end=$((t0 + seconds))
next_fault=$((t0 + every / 2)) n=0 next_sample=$t0
while [ "$(date +%s)" -lt "$end" ]; do
  now=$(date +%s)
  [ "$now" -ge "$next_sample" ] && { sample $((now - t0)); next_sample=$((next_sample + 10)); }
  [ "$now" -ge "$next_fault" ] && { fault $n; n=$((n + 1)); next_fault=$((next_fault + every)); }
  sleep 1
done
sample $(($(date +%s) - t0))
log "done: $n faults; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!clients[@]}"; do kill -9 "${cpid[$i]}" 2>/dev/null; done
wait "${cpid[@]}" 2>/dev/null
status=0
for d in a b; do
  pid_var=${d}_pid pid=${!pid_var}
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "daemon $d did not exit within 10 s of SIGTERM"; kill -9 "$pid"; status=1
  fi
  wait "$pid"; rc=$?
  [ $rc -eq 0 ] || { log "daemon $d exited $rc on SIGTERM"; status=1; }
done
a_pid="" b_pid=""
kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; redis_pid=""
# figures: each process's first sample after the first minute (or at the
# start of a run shorter than 2 minutes), its last, its largest
awk -F'\t' -v skip=$((seconds >= 120 ? 60 : 0)) '$1 >= skip {
    k = $2; if (!(k in first)) first[k] = "at " $1 " s " $4 " KiB, " $5 " fds, " $6 " threads"
    last[k] = $4 " KiB, " $5 " fds, " $6 " threads"
    if ($4 > rss[k]) rss[k] = $4; if ($5 > fd[k]) fd[k] = $5; if ($6 > th[k]) th[k] = $6 }
  END { for (k in first) printf "soak: %s: %s; at the end %s; largest %s KiB, %s fds, %s threads\n",
        k, first[k], last[k], rss[k], fd[k], th[k] }' "$out/samples.tsv" | sort | tee -a "$out/soak.log"
errs=$(grep -c . "$out/clients.err" 2>/dev/null || true)
log "client progress lines (calls, errors) in clients.err: $errs"
"$py" "$here/bench/soak_check.py" "$window_ms" "$out"/[wr]*.log | tee -a "$out/soak.log" || status=1
exit $status
