#!/usr/bin/env bash
# Installs a build into a temporary prefix (cmake --install with DESTDIR, so
# nothing reaches the system), moves the prefix elsewhere, and compiles and
# runs a small program against it with pkg-config: the nearcache.pc file
# must find the moved prefix by itself (${pcfiledir}). Usage: BUILD_DIR.
set -euo pipefail
build=${1:?usage: check-install.sh BUILD_DIR}
tmp=$(mktemp -d /tmp/nc-check-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

DESTDIR="$tmp/root" cmake --install "$build" --prefix /opt/nearcache >/dev/null
mv "$tmp/root/opt/nearcache" "$tmp/moved"
pc=$(find "$tmp/moved" -name nearcache.pc)
[ -n "$pc" ] || { echo "check-install: no nearcache.pc installed" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir nearcache)
[ -e "$libdir/libnearcache.so" ] || { echo "check-install: libdir $libdir is wrong" >&2; exit 1; }

cat > "$tmp/hello.c" <<'C'
#include <nearcache.h>
#include <stdio.h>

int main(void)
{
    nc_client *c = NULL; /* nc_open in the background does not need a daemon */
    if (nc_open(&c, "ipc:///nonexistent/nearcache.sock", NC_OPEN_BACKGROUND) != NC_OK)
        return 1;
    nc_close(c);
    printf("%s\n", nc_strerror(NC_ENOTFOUND));
    return 0;
}
C
# shellcheck disable=SC2046 # pkg-config prints several words
cc -Wall -Werror -o "$tmp/hello" "$tmp/hello.c" $(pkg-config --cflags --libs nearcache)
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/hello")
[ -n "$out" ] || { echo "check-install: the program printed nothing" >&2; exit 1; }
echo "check-install: compiled and ran against the moved prefix ($(pkg-config --modversion nearcache)): $out"
