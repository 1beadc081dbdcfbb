#!/usr/bin/env bash
# The release: every artifact of one version, checked, in one folder.
#
#   release.sh [--out DIR] [--tag]   from a clean git tree: the Debian package
#       (scripts/check-deb.sh: lintian, dpkg -i, the installed daemon run as
#       the unit runs it, dpkg --purge), the Python wheel and sdist (twine
#       check; the wheel installed into a fresh venv talks to the daemon
#       installed from the .deb), the Node.js tarball (npm pack) when
#       client/node exists, the Go module's tag name when client/go exists,
#       and SHA256SUMS, into DIR (default dist/nearcache-VERSION). --tag also
#       makes the git tags vVERSION and client/go/vVERSION.
#   release.sh --dry [--out DIR]     the same from a tree with changes (for
#       scripts/test.sh; default DIR build/release): artifacts not to ship.
#   release.sh check                 every copy of the version and the license
#       agrees with VERSION and LICENSE (no build; the ctest release_check).
#   release.sh set-version X.Y.Z     writes VERSION and its copies
#       (pyproject.toml, package.json, the LICENSE copies) and opens the
#       changelog's X.Y.Z section from Unreleased; then check.
#
# Needs root or sudo (dpkg), python3 with venv, and npm for client/node.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "release: $*"; }
fail() { echo "release: FAILED: $*" >&2; exit 1; }
semver='^[0-9]+\.[0-9]+\.[0-9]+$'
py_dir=$src/client/python
node_dir=$src/client/node
go_dir=$src/client/go

# The value of a JSON file's top-level string field (python3 is a dependency).
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$1" "$2"; }
pyproject_field() { sed -nE "s/^$2 = \"([^\"]*)\"$/\\1/p" "$1" | head -n 1; }

# Every copy agrees with VERSION and LICENSE; prints each problem and fails
# once at the end, so one run names all of them.
check() {
  local v bad=0 f
  v=$(cat "$src/VERSION")
  problem() { echo "release: check: $*" >&2; bad=1; }
  [[ $v =~ $semver ]] || problem "VERSION is '$v', not X.Y.Z"
  bash "$src/scripts/deb-changelog.sh" "$src/CHANGELOG.md" "$v" check >/dev/null ||
    problem "CHANGELOG.md makes no Debian changelog for $v (see above)"
  grep -q '^MIT License$' "$src/LICENSE" || problem "LICENSE is not the MIT license"
  [ "$(pyproject_field "$py_dir/pyproject.toml" version)" = "$v" ] ||
    problem "client/python/pyproject.toml: version is not $v (release.sh set-version $v)"
  [ "$(pyproject_field "$py_dir/pyproject.toml" license)" = MIT ] ||
    problem "client/python/pyproject.toml: license is not MIT"
  if [ -f "$node_dir/package.json" ]; then
    [ "$(json_field "$node_dir/package.json" version)" = "$v" ] ||
      problem "client/node/package.json: version is not $v (release.sh set-version $v)"
    [ "$(json_field "$node_dir/package.json" license)" = MIT ] ||
      problem "client/node/package.json: license is not MIT"
    if [ -f "$node_dir/package-lock.json" ]; then
      [ "$(json_field "$node_dir/package-lock.json" version)" = "$v" ] ||
        problem "client/node/package-lock.json: version is not $v (release.sh set-version $v)"
    fi
  fi
  if [ -f "$go_dir/go.mod" ]; then
    local mod major=${v%%.*}
    mod=$(sed -nE 's/^module[[:space:]]+([^[:space:]]+).*/\1/p' "$go_dir/go.mod")
    # The go command finds version X of a module in client/go by the tag
    # client/go/vX, so the path ends in the folder (and /vN from 2 on).
    [[ $mod == */client/go || $mod == */client/go/v[0-9]* ]] ||
      problem "client/go/go.mod: module $mod does not end in /client/go, so the tag client/go/v$v would not name it"
    if [ "$major" -ge 2 ] && [[ $mod != */v$major ]]; then
      problem "client/go/go.mod: module $mod must end in /v$major for version $v"
    fi
  fi
  for f in "$py_dir" "$node_dir" "$go_dir"; do
    [ -d "$f" ] || continue
    cmp -s "$src/LICENSE" "$f/LICENSE" ||
      problem "${f#"$src"/}/LICENSE is not a copy of LICENSE (release.sh set-version $v)"
  done
  [ $bad -eq 0 ] || return 1
  say "check: version $v and the MIT license agree everywhere"
}

set_version() {
  local v=${1:?usage: release.sh set-version X.Y.Z} f
  [[ $v =~ $semver ]] || fail "'$v' is not X.Y.Z"
  echo "$v" > "$src/VERSION"
  sed -i -E "s/^version = \"[^\"]*\"$/version = \"$v\"/" "$py_dir/pyproject.toml"
  for f in "$node_dir/package.json" "$node_dir/package-lock.json"; do
    [ -f "$f" ] || continue
    python3 - "$f" "$v" <<'PY'
import json, sys
path, v = sys.argv[1], sys.argv[2]
with open(path) as f:
    data = json.load(f)
data["version"] = v
if "" in data.get("packages", {}):  # the lock file's own entry
    data["packages"][""]["version"] = v
with open(path, "w") as f:
    f.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
PY
  done
  for f in "$py_dir" "$node_dir" "$go_dir"; do
    [ -d "$f" ] && cp "$src/LICENSE" "$f/LICENSE"
  done
  if ! grep -qF "## [$v] - " "$src/CHANGELOG.md"; then
    sed -i "s/^## \[Unreleased\]$/## [Unreleased]\n\n## [$v] - $(date -u +%F)/" "$src/CHANGELOG.md"
    say "CHANGELOG.md: the notes under Unreleased are now $v's; read them over"
  fi
  check
}

case "${1:-}" in
  check) check; exit ;;
  set-version) set_version "${2:-}"; exit ;;
esac

dry=0 tag=0 out=""
while [ $# -gt 0 ]; do
  case $1 in
    --dry) dry=1 ;;
    --tag) tag=1 ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    *) fail "unknown argument '$1' (see the top of scripts/release.sh)" ;;
  esac
  shift
done
version=$(cat "$src/VERSION")
if [ $dry -eq 1 ]; then
  [ $tag -eq 0 ] || fail "--tag is for a real release, not --dry"
  out=${out:-$src/build/release}
else
  [ -z "$(git -C "$src" status --porcelain)" ] ||
    fail "the tree has changes (git status); commit them, or use --dry"
  out=${out:-$src/dist/nearcache-$version}
fi
check
# The folder holds this release alone: an earlier run's files go, anything
# else makes the run stop rather than be deleted or summed.
mkdir -p "$out" && out=$(cd "$out" && pwd)
rm -f "$out"/nearcache[-_]* "$out"/go-module.txt "$out"/SHA256SUMS
[ -z "$(ls -A "$out")" ] || fail "$out holds other files; give an empty folder"
tmp=$(mktemp -d /tmp/nc-release-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Python: wheel and sdist with the build frontend of the project's venv
# (scripts/venv.sh; the `release` extra), then twine check.
venv=$src/.venv
"$venv/bin/python" -c 'import build, twine' 2>/dev/null || "$src/scripts/venv.sh" release
rm -rf "$py_dir/build"
"$venv/bin/python" -m build --no-isolation --sdist --wheel --outdir "$tmp/py" "$py_dir" \
  > "$tmp/py-build.log" 2>&1 || { cat "$tmp/py-build.log" >&2; fail "python -m build"; }
rm -rf "$py_dir/build"
wheel=$tmp/py/nearcache-$version-py3-none-any.whl
sdist=$tmp/py/nearcache-$version.tar.gz
[ -f "$wheel" ] && [ -f "$sdist" ] || fail "the wheel or sdist is not version $version: $(ls "$tmp/py")"
"$venv/bin/twine" --no-color check --strict "$wheel" "$sdist" > "$tmp/twine.log" 2>&1 ||
  { cat "$tmp/twine.log" >&2; fail "twine check"; }
sed 's/^/  twine: /' "$tmp/twine.log"
# (listings read whole: grep -q would close the pipe early under pipefail)
zip_names() { "$venv/bin/python" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1"; }
[[ $'\n'$(zip_names "$wheel")$'\n' == *"dist-info/licenses/LICENSE"$'\n'* ]] ||
  fail "the wheel holds no LICENSE"
[[ $'\n'$(tar -tzf "$sdist")$'\n' == *$'\n'"nearcache-$version/LICENSE"$'\n'* ]] ||
  fail "the sdist holds no LICENSE"
cp "$wheel" "$sdist" "$out/"
say "python: $(basename "$wheel"), $(basename "$sdist")"

# A fresh venv with the wheel alone; the smoke test runs against the daemon
# installed from the .deb, inside check-deb.sh's install cycle below.
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check "$wheel"
cat > "$tmp/smoke.sh" <<'SH'
#!/usr/bin/env bash
# Runs while the .deb is installed: a private redis-server, the installed
# nearcached on it, and the wheel's client in the fresh venv. Args: TMP VERSION.
set -euo pipefail
tmp=$1 version=$2
for prog in /usr/sbin/nearcached /usr/bin/nearcache-cli; do
  [ "$("$prog" --version)" = "$(basename "$prog") $version" ] ||
    { echo "$prog --version says '$("$prog" --version)', not $version" >&2; exit 1; }
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$tmp" > "$tmp/redis.log" 2>&1 &
redis=$!
/usr/sbin/nearcached --config /etc/nearcache/nearcached.conf --listen "ipc://$tmp/d.sock" \
  --redis "redis://127.0.0.1:$port" 2> "$tmp/daemon.log" &
daemon=$!
stop() { kill -TERM "$daemon" "$redis" 2>/dev/null; wait "$daemon" "$redis" 2>/dev/null || true; }
trap stop EXIT
code=0
(cd "$tmp" && "$tmp/venv/bin/python" - "ipc://$tmp/d.sock" "$version") <<'PY' || code=$?
import sys
import time

import nearcache

url, version = sys.argv[1], sys.argv[2]
assert nearcache.__version__ == version, (nearcache.__version__, version)
assert nearcache.__file__.startswith(sys.prefix), nearcache.__file__  # the wheel, not the tree
deadline = time.monotonic() + 10
while True:
    try:
        with nearcache.Client(url, timeout=2) as c:
            info = c.ping()
            if not (info.redis_up and info.l1_serving):
                raise nearcache.Unavailable("not serving yet")
            assert (info.version, info.protocol_version) == (version, 1), info
            c.set("release", "smoke", b"ok", ttl=60)
            assert c.get("release", "smoke") == b"ok"
            print(f"nearcache {nearcache.__version__} from the wheel: ping, set and get"
                  f" against the installed nearcached {info.version} (protocol {info.protocol_version})")
            break
    except nearcache.Unavailable:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
PY
[ $code -eq 0 ] || { cat "$tmp/daemon.log" >&2; exit 1; }
SH

# The Debian package: built, checked and installed by check-deb.sh, which
# runs the smoke test while it is installed and purges it at the end.
build_deb=$src/build-deb
bash "$src/scripts/check-deb.sh" "$src" "$build_deb" bash "$tmp/smoke.sh" "$tmp" "$version"
deb=$(ls "$build_deb"/nearcache_"$version"_*.deb 2>/dev/null) || fail "no nearcache_${version}_*.deb"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "$deb says version $(dpkg-deb -f "$deb" Version)"
cp "$deb" "$out/"

# Node.js: npm pack of client/node (its lock file's dependencies, its own
# prepack scripts), checked for the version and the license.
if [ -f "$node_dir/package.json" ]; then
  command -v npm >/dev/null || fail "client/node needs npm (scripts/deps.sh)"
  if [ -f "$node_dir/package-lock.json" ] && [ ! -d "$node_dir/node_modules" ]; then
    (cd "$node_dir" && npm ci --no-audit --no-fund >/dev/null)
  fi
  tgz=$(cd "$node_dir" && npm pack --silent --pack-destination "$out" | tail -n 1)
  [ "$(tar -xzOf "$out/$tgz" package/package.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" = "$version" ] ||
    fail "$tgz is not version $version"
  [[ $'\n'$(tar -tzf "$out/$tgz")$'\n' == *$'\n'package/LICENSE$'\n'* ]] ||
    fail "$tgz holds no LICENSE"
  say "node: $tgz"
fi

# Go: a module is released by a tag on the commit, named after its folder.
if [ -f "$go_dir/go.mod" ]; then
  mod=$(sed -nE 's/^module[[:space:]]+([^[:space:]]+).*/\1/p' "$go_dir/go.mod")
  gotag=client/go/v$version
  printf 'module %s\ntag %s\ncommit %s\n' "$mod" "$gotag" "$(git -C "$src" rev-parse HEAD)" \
    > "$out/go-module.txt"
  say "go: $mod at tag $gotag"
fi

(cd "$out" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | sort |
  xargs sha256sum > SHA256SUMS)
if [ $tag -eq 1 ]; then
  git -C "$src" tag -a "v$version" -m "nearcache $version"
  [ ! -f "$go_dir/go.mod" ] || git -C "$src" tag -a "client/go/v$version" -m "nearcache Go module $version"
  say "tagged v$version$([ -f "$go_dir/go.mod" ] && echo " and client/go/v$version"); push them with git push --tags"
fi
say "$([ $dry -eq 1 ] && echo "dry run, not to ship: ")version $version in $out:"
sed 's/^/  /' "$out/SHA256SUMS"
