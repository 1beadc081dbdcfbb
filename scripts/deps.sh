#!/usr/bin/env bash
# Installs what nearcache needs to build, test and run, from Debian 12
# packages, skipping what is already installed. systemd is there for
# systemd-analyze (the unit checks; it need not be running), lintian
# for the package check, wrk for the Python HTTP bench, libjansson-dev for
# the C tests that read tests/conformance/, util-linux (setpriv) and passwd
# (useradd, groupadd) for the acl tests' clients of other users, clang-14
# and libclang-rt-14-dev (libFuzzer's runtime) for the fuzz targets
# (scripts/fuzz.sh), libssl-dev for TLS to Redis and openssl for the
# TLS tests' certificates.
set -euo pipefail

pkgs=(build-essential cmake pkg-config libnng-dev libhiredis-dev libprotobuf-c-dev
      protobuf-c-compiler uthash-dev libcriterion-dev libsystemd-dev redis-server redis-tools
      python3 python3-venv systemd lintian file wrk libjansson-dev util-linux passwd
      clang-14 libclang-rt-14-dev libssl-dev openssl)
# The Node.js client (client/node) needs node 20+ with npm; Debian's own are
# taken only when there is none (a NodeSource node bundles its npm).
command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
