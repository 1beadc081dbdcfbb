#!/usr/bin/env bash
# TLS to Redis against plain TCP (issue 23): one redis-server serving both a
# plain port and a TLS port (certificates made here with openssl), a daemon
# on each (--l1-max-ttl 1ms, so every Get is an L2 hit), and direct hiredis
# GETs on the plain port; optionally a daemon of another build on the plain
# port (--before NEARCACHED: the same-run before/after ratio of the plain
# path). One nearcache-bench run measures them all, interleaved in slices
# (paths l2, l2-tls, l2-other, redis-get; one client, then 16): L2-hit p50
# with one client, ops/s with 16. Prints Markdown.
#
#   bench/tls.sh [--duration S (6)] [--slices N (12)] [--before NEARCACHED
#                [--before-name TEXT]] [--docs]
#
# --docs also writes the table as the "TLS to Redis" section of
# docs/benchmarks.md (between its tls-bench markers, which bench/run.sh
# keeps). NC_BUILD names the build directory (default build/). bench/run.sh
# runs it (--smoke: --duration 0.3 --slices 1).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="${NC_BUILD:-$here/build}"
duration=6 slices=12 before="" before_name="another build" docs=0
while [ $# -gt 0 ]; do
  case "$1" in
  --duration) duration=$2; shift 2 ;;
  --slices) slices=$2; shift 2 ;;
  --before) before=$2; shift 2 ;;
  --before-name) before_name=$2; shift 2 ;;
  --docs) docs=1; shift ;;
  *) echo "usage: $0 [--duration S] [--slices N] [--before NEARCACHED [--before-name TEXT]] [--docs]" >&2; exit 2 ;;
  esac
done
bench="$build/bench/nearcache-bench"
cli="$build/client/nearcache-cli"
dir=$(mktemp -d /tmp/nc-tls-bench-XXXXXX)
pids=()
cleanup() {
  set +e
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    ss -Hltn "sport = :$p" | grep -q . || { echo $p; return; }
  done
}
wait_for() { # DESCRIPTION COMMAND...
  local what=$1
  shift
  for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "tls.sh: $what did not come up:" >&2
  tail -n 5 "$dir"/*.log >&2 || true
  return 1
}

# A CA and a certificate for 127.0.0.1 (EC P-256, as a managed Redis would
# likely have).
(
  cd "$dir"
  key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${key[@]}" -keyout ca.key -out ca.crt -days 30 -subj "/CN=bench CA"
  openssl req "${key[@]}" -keyout redis.key -out redis.csr -subj "/CN=127.0.0.1"
  printf 'subjectAltName=IP:127.0.0.1\n' >san.cnf
  openssl x509 -req -in redis.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile san.cnf -out redis.crt
) >"$dir/openssl.log" 2>&1

# Ports are taken by others' tests now and then: a few tries.
for try in 1 2 3 4 5; do
  pp=$(free_port)
  pt=$(free_port)
  redis-server --bind 127.0.0.1 --port "$pp" --tls-port "$pt" --tls-cert-file "$dir/redis.crt" \
    --tls-key-file "$dir/redis.key" --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no \
    --save "" --appendonly no --dir "$dir" --daemonize no --logfile "$dir/redis.log" &
  redis_pid=$!
  pids+=($redis_pid)
  for _ in $(seq 100); do
    redis-cli -p "$pp" ping >/dev/null 2>&1 && break 2
    kill -0 $redis_pid 2>/dev/null || break
    sleep 0.05
  done
  [ $try -lt 5 ] || { tail -n 5 "$dir/redis.log" >&2; exit 1; }
done

start_daemon() { # NAME BINARY REDIS_URL ARGS...
  local name=$1 bin=$2 url=$3
  shift 3
  "$bin" --listen "ipc://$dir/$name.sock" --redis "$url" --l1-max-ttl 1ms --log-level warn \
    "$@" 2>"$dir/$name.log" &
  pids+=($!)
  wait_for "nearcached $name" sh -c "'$cli' -s 'ipc://$dir/$name.sock' stats --json | grep -q '\"l1_serving\": 1'"
}
start_daemon plain "$build/daemon/nearcached" "redis://127.0.0.1:$pp"
start_daemon tls "$build/daemon/nearcached" "rediss://127.0.0.1:$pt" \
  --redis-tls-ca-file "$dir/ca.crt"
paths=(l2 l2-tls redis-get l2@16 l2-tls@16 redis-get@16)
other=()
if [ -n "$before" ]; then
  start_daemon before "$before" "redis://127.0.0.1:$pp"
  paths=(l2 l2-tls l2-other redis-get l2@16 l2-tls@16 l2-other@16 redis-get@16)
  other=(--url-l2-other "ipc://$dir/before.sock")
fi
"$bench" run "${paths[@]}" --url-l2 "ipc://$dir/plain.sock" --url-l2-tls "ipc://$dir/tls.sock" \
  "${other[@]}" --redis "redis://127.0.0.1:$pp" --duration "$duration" --slices "$slices" \
  --warmup 0.5 --json >"$dir/run.json"

python3 - "$dir/run.json" >"$dir/table.md" <<'EOF'
import json, sys
rows = {(r["path"], r["clients"]): r for r in json.load(open(sys.argv[1]))["rows"]}
label = {
    "l2-tls": "nearcached, Redis over TLS (`rediss://`)",
    "l2": "nearcached, Redis over plain TCP",
    "l2-other": "nearcached of the `--before` build, plain TCP",
    "redis-get": "direct hiredis GET, plain TCP (no daemon)",
}
m = {p: (rows[(p, 1)]["p50_us"], rows[(p, 16)]["ops_per_s"],
         rows[(p, 1)]["errors"] + rows[(p, 16)]["errors"])
     for p in label if (p, 1) in rows}
print("| | L2-hit p50, 1 client (µs) | ops/s, 16 clients | errors |")
print("| --- | ---: | ---: | ---: |")
for p in label:
    if p in m:
        print(f"| {label[p]} | {m[p][0]:.1f} | {m[p][1]:,.0f} | {m[p][2]} |")
t, p = m["l2-tls"], m["l2"]
ok = "**met**" if t[0] <= 1.15 * p[0] else "**missed**"
print(f"| TLS / plain | {t[0] / p[0]:.2f}× (target ≤ 1.15×: {ok}) | {t[1] / p[1]:.2f}× | |")
if "l2-other" in m:
    b = m["l2-other"]
    print(f"| plain / before | {p[0] / b[0]:.2f}× | {p[1] / b[1]:.2f}× | |")
h = m["redis-get"]
print(f"| TLS / direct hiredis | {t[0] / h[0]:.1f}× | {t[1] / h[1]:.2f}× | |")
EOF
cat "$dir/table.md"
[ $docs -eq 1 ] || exit 0
before_note=""
[ -n "$before" ] && before_note=" A daemon of another build (\`--before\`: $before_name) reads the plain port too, for the ratio before/after this change."
{
  cat <<EOF
<!-- tls-bench:begin -->
## TLS to Redis

Written by \`bench/tls.sh --docs\` (which \`bench/run.sh\` runs) on $(date -u '+%Y-%m-%d %H:%M UTC')
(commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)). One redis-server
serves a plain port and a TLS port (TLS 1.3, an EC P-256 certificate of a private
CA). One daemon reads it over plain TCP, another over TLS (\`rediss://\`, full
verification), both with \`--l1-max-ttl 1ms\` so that every Get is an L2 hit
(through the read lane); direct hiredis GETs go to the plain port.$before_note
One \`nearcache-bench run\` measures every path for ${duration} s in $slices interleaved
slices (A B C … A B C …), so that a noisy machine moves both sides of each ratio
alike. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg).

EOF
  cat "$dir/table.md"
  cat <<EOF

A TLS connection pays for its handshake once (a reconnect resumes the
session); per request what remains is encrypting a few hundred bytes each way,
in the daemon and in Redis. One client hardly sees it; 16 clients keep both
cores busy, and there the encryption shows as fewer operations per second.
<!-- tls-bench:end -->
EOF
} >"$dir/section.md"
python3 - "$here/docs/benchmarks.md" "$dir/section.md" <<'EOF'
import re, sys
page, section = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
text = open(page).read()
pat = re.compile(r"<!-- tls-bench:begin -->.*?<!-- tls-bench:end -->", re.S)
if pat.search(text):
    text = pat.sub(lambda m: section, text)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(page, "w").write(text)
EOF
echo "tls.sh: wrote the TLS section of docs/benchmarks.md" >&2
