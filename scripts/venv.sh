#!/usr/bin/env bash
# Makes .venv (from the python3 first on PATH, 3.10 or newer) and installs
# the Python client into it, editable, with its test tools; skips what is
# already there. Extra arguments name other extras (e.g. `dev`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"
extras="test${1:+,$(IFS=,; echo "$*")}"

python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  { echo "venv: python3 is $(python3 --version 2>&1); the client needs 3.10 or newer" >&2; exit 1; }
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# Reinstall only when pyproject.toml changed since the last install (or the
# extras asked for differ); pip itself skips packages already present.
stamp="$venv/.nearcache-$extras"
if [ ! -e "$stamp" ] || [ "$here/client/python/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here/client/python[$extras]"
  touch "$stamp"
fi
