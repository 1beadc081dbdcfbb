#!/usr/bin/env bash
# TLS to Redis against plain TCP (issue 23): one redis-server serving both a
# plain port and a TLS port (certificates made here with openssl), a daemon
# on each (--l1-max-ttl 1ms, so every Get is an L2 hit), and direct hiredis
# GETs on the plain port; optionally a daemon of another build on the plain
# port (--before NEARCACHED: the same-run before/after ratio of the plain
# path). Rounds take the configurations in turn (plain, TLS, before,
# hiredis, then again), and the table gives each one's median over the
# rounds: L2-hit p50 with one client, ops/s with 16. Prints Markdown.
#
#   bench/tls.sh [--duration S (2)] [--rounds N (5)] [--before NEARCACHED] [--docs]
#
# --docs also writes the table as the "TLS to Redis" section of
# docs/benchmarks.md (between its tls-bench markers, which bench/run.sh
# keeps). NC_BUILD names the build directory (default build/). bench/run.sh
# runs it (--smoke: --duration 0.3 --rounds 1).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="${NC_BUILD:-$here/build}"
duration=2 rounds=5 before="" docs=0
while [ $# -gt 0 ]; do
  case "$1" in
  --duration) duration=$2; shift 2 ;;
  --rounds) rounds=$2; shift 2 ;;
  --before) before=$2; shift 2 ;;
  --docs) docs=1; shift ;;
  *) echo "usage: $0 [--duration S] [--rounds N] [--before NEARCACHED] [--docs]" >&2; exit 2 ;;
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
  echo "tls.sh: $what did not come up; logs in $dir" >&2
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

pp=$(free_port)
pt=$(free_port)
redis-server --bind 127.0.0.1 --port "$pp" --tls-port "$pt" --tls-cert-file "$dir/redis.crt" \
  --tls-key-file "$dir/redis.key" --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no \
  --save "" --appendonly no --dir "$dir" --daemonize no --logfile "$dir/redis.log" &
pids+=($!)
wait_for redis redis-cli -p "$pp" ping

configs=(plain tls)
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
if [ -n "$before" ]; then
  start_daemon before "$before" "redis://127.0.0.1:$pp"
  configs+=(before)
fi

common=(--redis "redis://127.0.0.1:$pp" --duration "$duration" --slices 1 --warmup 0.3 --json)
for r in $(seq "$rounds"); do
  for c in "${configs[@]}"; do
    "$bench" run l2 l2@16 --url-l2 "ipc://$dir/$c.sock" "${common[@]}" >"$dir/$c.$r.json"
  done
  "$bench" run redis-get redis-get@16 "${common[@]}" >"$dir/hiredis.$r.json"
done

python3 - "$dir" "$rounds" "${configs[@]}" >"$dir/table.md" <<'EOF'
import json, statistics, sys
d, rounds, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def rows(name):
    out = {}
    for r in range(1, rounds + 1):
        for row in json.load(open(f"{d}/{name}.{r}.json"))["rows"]:
            out.setdefault(row["clients"], []).append(row)
    p50 = statistics.median(x["p50_us"] for x in out[1])
    ops = statistics.median(x["ops_per_s"] for x in out[16])
    errs = sum(x["errors"] for k in out for x in out[k])
    return p50, ops, errs
label = {
    "tls": "nearcached, Redis over TLS (`rediss://`)",
    "plain": "nearcached, Redis over plain TCP",
    "before": "nearcached of the `--before` build, plain TCP",
    "hiredis": "direct hiredis GET, plain TCP (no daemon)",
}
m = {c: rows(c) for c in configs + ["hiredis"]}
print("| | L2-hit p50, 1 client (µs) | ops/s, 16 clients | errors |")
print("| --- | ---: | ---: | ---: |")
for c in ["tls", "plain"] + (["before"] if "before" in m else []) + ["hiredis"]:
    p50, ops, errs = m[c]
    print(f"| {label[c]} | {p50:.1f} | {ops:,.0f} | {errs} |")
t, p = m["tls"], m["plain"]
ok = "**met**" if t[0] <= 1.15 * p[0] else "**missed**"
print(f"| TLS / plain | {t[0] / p[0]:.2f}× (target ≤ 1.15×: {ok}) | {t[1] / p[1]:.2f}× | |")
if "before" in m:
    b = m["before"]
    print(f"| plain / before | {p[0] / b[0]:.2f}× | {p[1] / b[1]:.2f}× | |")
h = m["hiredis"]
print(f"| TLS / direct hiredis | {t[0] / h[0]:.1f}× | {t[1] / h[1]:.2f}× | |")
EOF
cat "$dir/table.md"
[ $docs -eq 1 ] || exit 0
before_note=""
[ -n "$before" ] && before_note=", and a daemon of another build (\`--before\`) on the plain port"
{
  cat <<EOF
<!-- tls-bench:begin -->
## TLS to Redis

Written by \`bench/tls.sh --docs\` (which \`bench/run.sh\` runs) on $(date -u '+%Y-%m-%d %H:%M UTC')
(commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)). One redis-server
serves a plain port and a TLS port (TLS 1.3, an EC P-256 certificate of a private
CA); one daemon reads it over plain TCP, another over TLS (\`rediss://\`, full
verification), both with \`--l1-max-ttl 1ms\` so that every Get is an L2 hit
(through the read lane), and direct hiredis GETs go to the plain port$before_note.
The configurations take turns, ${duration} s each, for $rounds rounds; each figure
is the median of its rounds. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg).

EOF
  cat "$dir/table.md"
  cat <<EOF

A TLS connection pays for its handshake once (a reconnect resumes the
session); per request what remains is encrypting a few hundred bytes each way.
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
