#!/bin/sh
# The README's map of the daemon's modules names every daemon/*.c, each
# once, and no file that is not in daemon/. Usage: module_map.sh SOURCE_DIR
set -eu
src=$1
map=$(sed -n '/^The daemon.s modules/,/^$/p; /^| files | what |$/,/^$/p' "$src/README.md")
[ -n "$map" ] || { echo "README.md: no map of the daemon's modules" >&2; exit 1; }
files=$(printf '%s\n' "$map" | grep '^| `' | cut -d'|' -f2) # the rows' first cells
status=0
for f in "$src"/daemon/*.c; do
    name=$(basename "$f")
    if ! printf '%s\n' "$files" | grep -q "\`$name\`"; then
        echo "README.md's module map does not name daemon/$name" >&2
        status=1
    fi
done
for name in $(printf '%s\n' "$files" | grep -o '`[a-z0-9_]*\.[ch]`' | sort | uniq -d | tr -d '`'); do
    echo "README.md's module map names daemon/$name more than once" >&2
    status=1
done
for name in $(printf '%s\n' "$map" | grep -o '`[a-z0-9_]*\.[ch]`' | tr -d '`'); do
    if [ ! -e "$src/daemon/$name" ]; then
        echo "README.md's module map names daemon/$name, which does not exist" >&2
        status=1
    fi
done
exit $status
