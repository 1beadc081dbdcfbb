#!/usr/bin/env bash
# Builds the Debian package (scripts/build-deb.sh), checks it with
# lintian (only the two warnings explained in docs/operations.md may
# remain), installs it with dpkg -i, runs the installed programs, checks the
# installed unit with systemd-analyze (verify must be clean, security
# exposure at most 1.5), runs COMMAND (if given) while the package is
# installed, and purges the package again. Needs root (or sudo) for dpkg.
# Usage: check-deb.sh SOURCE_DIR BUILD_DIR [COMMAND [ARG...]].
set -euo pipefail
src=${1:?usage: check-deb.sh SOURCE_DIR BUILD_DIR [COMMAND [ARG...]]}
build=${2:?usage: check-deb.sh SOURCE_DIR BUILD_DIR [COMMAND [ARG...]]}
shift 2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
say() { echo "check-deb: $*"; }
fail() { echo "check-deb: FAILED: $*" >&2; exit 1; }

deb=$(bash "$src/scripts/build-deb.sh" "$src" "$build")
say "built $(basename "$deb")"

# One package holds library and daemon (on purpose: see docs/operations.md),
# which lintian reports with these two warnings; anything else fails.
allowed='^W: nearcache: (link-to-shared-library-in-wrong-package|package-name-doesnt-match-sonames) '
if command -v lintian >/dev/null; then
  report=$(lintian "$deb" 2>/dev/null || true)
  echo "$report" | sed 's/^/  lintian: /'
  other=$(echo "$report" | grep -E '^[EW]: ' | grep -Ev "$allowed" || true)
  [ -z "$other" ] || fail "lintian reports more than the two explained warnings"
else
  fail "lintian is not installed (scripts/deps.sh installs it)"
fi

if dpkg-query -W -f='${Status}' nearcache 2>/dev/null | grep -q "install ok installed"; then
  fail "a nearcache package is installed on this machine already; not replacing it"
fi
trap '$sudo dpkg --purge nearcache >/dev/null 2>&1 || true' EXIT
$sudo dpkg -i "$deb" >/dev/null
say "installed: $(/usr/sbin/nearcached --version), $(/usr/bin/nearcache-cli --version)"
[ "$(pkg-config --modversion nearcache)" = "$(/usr/sbin/nearcached --version | cut -d' ' -f2)" ] ||
  fail "pkg-config does not find the installed nearcache.pc"
getent group nearcache >/dev/null || fail "postinst made no group nearcache"
[ "$(stat -c %a /etc/nearcache/redis_password)" = 600 ] ||
  fail "postinst made no private /etc/nearcache/redis_password"
dpkg-query -W -f='${Conffiles}' nearcache | grep -q /etc/nearcache/nearcached.conf ||
  fail "nearcached.conf is not a conffile"

# The installed daemon as the unit runs it: user and group nearcache, umask
# 0077, the Redis password as a credential (the unit's fallback, one empty
# line), $NOTIFY_SOCKET unset. Only the socket moves to a scratch directory.
run_as_unit() {
  local tmp pid code=0
  tmp=$(mktemp -d /tmp/nc-check-deb-XXXXXX) && chmod 0755 "$tmp"
  mkdir -m 0700 "$tmp/creds" && printf '\n' > "$tmp/creds/redis_password"
  chmod 0400 "$tmp/creds/redis_password" && mkdir -m 0750 "$tmp/run"
  chown -R nearcache:nearcache "$tmp/creds" "$tmp/run"
  (umask 0077 && CREDENTIALS_DIRECTORY=$tmp/creds exec setpriv --reuid nearcache \
     --regid nearcache --clear-groups /usr/sbin/nearcached \
     --config /etc/nearcache/nearcached.conf --redis-password-file redis_password \
     --listen "ipc://$tmp/run/nearcached.sock" --redis redis://127.0.0.1:1) 2>"$tmp/log" &
  pid=$!
  for _ in $(seq 100); do [ -S "$tmp/run/nearcached.sock" ] && break; sleep 0.05; done
  /usr/bin/nearcache-cli -s "ipc://$tmp/run/nearcached.sock" ping >/dev/null || code=1
  [ "$(stat -c '%a %G' "$tmp/run/nearcached.sock")" = "660 nearcache" ] || code=2
  kill -TERM "$pid" && wait "$pid" || code=3
  [ $code -eq 0 ] || { cat "$tmp/log" >&2; rm -rf "$tmp"; fail "the installed daemon, run as the unit runs it (step $code)"; }
  rm -rf "$tmp"
  say "the installed daemon ran as nearcache with the unit's arguments, socket 660 nearcache, answered ping, exited 0"
}
if [ "$(id -u)" -eq 0 ]; then
  run_as_unit
else
  say "SKIPPED running the installed daemon as nearcache: that needs root, not sudo"
fi

unit=/lib/systemd/system/nearcached.service
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify is not clean: $out"
  exposure=$(systemd-analyze security --offline=true "$unit" 2>&1 | grep 'Overall exposure')
  say "systemd-analyze verify clean; $exposure"
  systemd-analyze security --offline=true --threshold=15 "$unit" >/dev/null 2>&1 ||
    fail "exposure above 1.5: $exposure"
else
  say "SKIPPED the unit checks: systemd-analyze is not installed (package systemd)"
fi

if [ $# -gt 0 ]; then
  "$@" || fail "$* (run with the package installed)"
fi

$sudo dpkg --purge nearcache >/dev/null
trap - EXIT
[ ! -e /usr/sbin/nearcached ] || fail "dpkg --purge left /usr/sbin/nearcached"
say "purged"
