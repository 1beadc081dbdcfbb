#!/usr/bin/env bash
# Writes the Debian changelog made from CHANGELOG.md (Keep a Changelog): one
# entry per released version, newest first, each bullet a "*" item; the
# Unreleased section is left out. Fails when the newest release is not
# VERSION, so the package never carries another version's notes.
# Usage: deb-changelog.sh CHANGELOG.md VERSION MAINTAINER > changelog
set -euo pipefail
changelog=${1:?usage: deb-changelog.sh CHANGELOG.md VERSION MAINTAINER}
version=${2:?usage: deb-changelog.sh CHANGELOG.md VERSION MAINTAINER}
maintainer=${3:?usage: deb-changelog.sh CHANGELOG.md VERSION MAINTAINER}
fail() { echo "deb-changelog: $changelog: $*" >&2; exit 1; }

newest=$(sed -nE 's/^## \[([0-9][^]]*)\].*/\1/p' "$changelog" | head -n 1)
[ -n "$newest" ] || fail "no released version (a heading '## [X.Y.Z] - YYYY-MM-DD')"
[ "$newest" = "$version" ] || fail "the newest release is $newest, VERSION says $version"

# Each release: its heading's version and date, then its bullets; a bullet's
# continuation lines (indented in Markdown) stay indented under the "*".
entry_end() {
  [ -n "$cur" ] || return 0
  [ "$items" -gt 0 ] || fail "$cur says nothing that changed (no '- ' items)"
  printf '\n -- %s  %s\n\n' "$maintainer" "$(LC_ALL=C date -u -R -d "$date")"
}
cur="" date="" items=0
while IFS= read -r line; do
  if [[ $line =~ ^##\ \[([0-9][^]]*)\]\ -\ ([0-9]{4}-[0-9]{2}-[0-9]{2})$ ]]; then
    entry_end
    cur=${BASH_REMATCH[1]} date=${BASH_REMATCH[2]} items=0
    printf 'nearcache (%s) unstable; urgency=medium\n\n' "$cur"
  elif [[ $line =~ ^##\  ]]; then
    [[ $line =~ ^##\ \[Unreleased\] ]] || fail "a heading that is not '## [X.Y.Z] - YYYY-MM-DD': $line"
    entry_end
    cur=""
  elif [ -n "$cur" ] && [[ $line =~ ^-\ (.*) ]]; then
    printf '  * %s\n' "${BASH_REMATCH[1]}"
    items=$((items + 1))
  elif [ -n "$cur" ] && [[ $line =~ ^\ \ +([^ ].*) ]]; then
    printf '    %s\n' "${BASH_REMATCH[1]}"
  fi
done < "$changelog"
entry_end
