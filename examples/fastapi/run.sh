#!/usr/bin/env bash
# Runs the example service under Uvicorn against a running nearcached
# ($NEARCACHE_URL, e.g. the one scripts/run.sh starts) and SQLite in this
# folder ($DATABASE_URL for another database). Extra flags go to uvicorn.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
"$root/scripts/venv.sh"
cd "$here"
exec "$root/.venv/bin/python" -m uvicorn shop.main:app --app-dir "$here" "$@"
