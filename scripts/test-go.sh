#!/usr/bin/env bash
# The Go client's suite (client/go, examples/go): gofmt, go vet, staticcheck
# (pinned, installed into build/go-bin), the generated protobuf code checked
# against proto/nearcache.proto, then go test -race against the plain
# build's nearcached ($NC_BUILD, default build/), and bench/go/run.sh --smoke.
# The client needs Go 1.24, the benchmarks' rueidis and go-redis 1.26: a
# missing or older go is replaced by the toolchain module from the Go proxy
# (golang.org/toolchain), unpacked into build/go-toolchain.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export NC_BUILD=${NC_BUILD:-$here/build}
need=1.26.0
toolchain=go1.26.0
staticcheck=v0.8.2

go_ok() { command -v go >/dev/null && [ "$(printf '%s\n%s\n' "$need" "$(go env GOVERSION | sed 's/^go//')" | sort -V | head -1)" = "$need" ]; }
if ! go_ok; then
  dir="$NC_BUILD/go-toolchain"
  if [ ! -x "$dir/bin/go" ]; then
    arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
    echo "== go: fetching $toolchain ($arch) from proxy.golang.org"
    tmp=$(mktemp -d) && curl -fsSL -o "$tmp/tc.zip" \
      "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-$toolchain.linux-$arch.zip" &&
      (cd "$tmp" && python3 -m zipfile -e tc.zip x) && rm -rf "$dir" &&
      mv "$tmp/x/golang.org/toolchain@v0.0.1-$toolchain.linux-$arch" "$dir" && chmod -R u+x "$dir/bin" "$dir/pkg/tool"
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
  go_ok || { echo "go: need Go $need or newer (see README, Go)" >&2; exit 1; }
fi
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
bin="$NC_BUILD/go-bin"
failed=0
[ -x "$bin/staticcheck" ] || (cd /tmp && GOBIN="$bin" go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck") ||
  { echo "go: cannot install staticcheck" >&2; exit 1; }
for mod in client/go examples/go bench/go; do
  [ -f "$here/$mod/go.mod" ] || continue
  echo "== go: $mod: gofmt, vet, staticcheck, test -race (at ${SECONDS}s)"
  cd "$here/$mod" || exit 1
  bad=$(gofmt -l .) && [ -z "$bad" ] || { echo "gofmt: $bad" >&2; failed=1; }
  go vet ./... || failed=1
  "$bin/staticcheck" ./... || failed=1
  go test -race -count=1 ./... || failed=1
done
echo "== go: client/go: the allocation and memory tests, without -race (at ${SECONDS}s)"
(cd "$here/client/go" && go test -count=1 -run 'Allocat|FullTier' .) || failed=1
bash "$here/client/go/tools/genproto.sh" --check || failed=1
echo "== go: bench smoke (bench/go/run.sh --smoke; figures are for docs/benchmarks.md, not a gate; at ${SECONDS}s)"
bash "$here/bench/go/run.sh" --smoke > "$NC_BUILD/go-bench-smoke.log" 2>&1 ||
  { cat "$NC_BUILD/go-bench-smoke.log"; failed=1; }
echo "== go: done in ${SECONDS}s"
exit $failed
