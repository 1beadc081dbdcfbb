#!/usr/bin/env bash
# Builds the Debian package into BUILD_DIR: a Release build with the prefix
# /usr and Debian's hardening flags (dpkg-buildflags, hardening=+all), then
# cpack -G DEB. Prints the package's path. Usage: build-deb.sh [SOURCE_DIR
# [BUILD_DIR]] (defaults: this tree, SOURCE_DIR/build-deb).
set -euo pipefail
src=$(cd "${1:-$(dirname "$0")/..}" && pwd)
build=${2:-$src/build-deb}
flags() { (cd "$src" && DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1"); }
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DNC_BUILD_TESTS=OFF -DNC_BUILD_BENCH=OFF \
  -DCMAKE_C_FLAGS="$(flags CPPFLAGS) $(flags CFLAGS)" \
  -DCMAKE_EXE_LINKER_FLAGS="$(flags LDFLAGS)" -DCMAKE_SHARED_LINKER_FLAGS="$(flags LDFLAGS)" \
  >/dev/null
cmake --build "$build" -j"$(nproc)" -- --no-print-directory >/dev/null
rm -f "$build"/nearcache_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
ls "$build"/nearcache_*.deb
