#!/usr/bin/env bash
# Builds nearcache and runs nearcached in the foreground, listening on
# ipc://REPO/.run/nearcached.sock. Without --redis URL (or $NEARCACHE_REDIS)
# it starts a private redis-server on a Unix socket in .run/ and stops it on
# exit. Extra arguments go to nearcached (see `nearcached --help`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh"
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$here/build" -j"$(nproc)" -- --no-print-directory >/dev/null

run="$here/.run"
mkdir -p "$run"
listen="ipc://$run/nearcached.sock"
redis="${NEARCACHE_REDIS:-}"
for a in "$@"; do
  case "$a" in --redis | --redis=*) redis="given" ;; esac
done

redis_pid=""
stop_redis() { [ -z "$redis_pid" ] || { kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null || true; }; }
trap stop_redis EXIT
if [ -z "$redis" ]; then
  rm -f "$run/redis.sock"
  redis-server --port 0 --unixsocket "$run/redis.sock" --unixsocketperm 700 --save "" \
    --appendonly no --dir "$run" --daemonize no --logfile "$run/redis.log" &
  redis_pid=$!
  for _ in $(seq 100); do [ -S "$run/redis.sock" ] && break; sleep 0.05; done
  redis="unix://$run/redis.sock"
  set -- --redis "$redis" "$@"
  echo "run: private redis-server (pid $redis_pid) on $redis"
elif [ "$redis" != "given" ]; then
  set -- --redis "$redis" "$@"
fi

cli="$here/build/client/nearcache-cli"
cat <<MSG
run: nearcached on $listen; in another shell:
  export NEARCACHE_URL=$listen
  $cli set users 42 alice --ttl 5m
  $cli get users 42
  $cli stats --json
run: Ctrl-C stops it.
MSG
status=0
"$here/build/daemon/nearcached" --listen "$listen" "$@" || status=$?
exit $status
