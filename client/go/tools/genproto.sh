#!/usr/bin/env bash
# Regenerates internal/pb/nearcache.pb.go from proto/nearcache.proto, with
# protoc-gen-go at the version go.mod pins and the protoc the Python client's
# gencode comes from (grpcio-tools, pinned and installed on first use by
# client/python/tools/genproto.py into build/py-tools); $PROTOC overrides it.
# With --check it writes nothing and exits 1 if the committed file differs.
set -euo pipefail
gomod=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$gomod/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$gomod" && go build -o "$tmp/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go)
if [ -n "${PROTOC:-}" ]; then
  protoc() { $PROTOC "$@"; }
else
  py=$repo/.venv/bin/python
  [ -x "$py" ] || py=python3
  tools=$("$py" -c 'import runpy, sys; print(runpy.run_path(sys.argv[1])["tools_dir"]())' \
    "$repo/client/python/tools/genproto.py")
  protoc() {
    PYTHONPATH=$tools "$py" -c 'import sys; from grpc_tools import _protoc_compiler as c
sys.exit(c.run_main([a.encode() for a in sys.argv]))' "$@"
  }
fi
protoc --plugin=protoc-gen-go="$tmp/protoc-gen-go" -I"$repo/proto" \
  --go_out="$tmp" --go_opt=paths=source_relative \
  --go_opt=Mnearcache.proto=github.com/nearcache/nearcache/client/go/internal/pb\;pb \
  "$repo/proto/nearcache.proto"
out="$gomod/internal/pb/nearcache.pb.go"
if [ "${1:-}" = --check ]; then
  cmp -s "$tmp/nearcache.pb.go" "$out" ||
    { echo "$out is out of date: run client/go/tools/genproto.sh" >&2; exit 1; }
  exit 0
fi
mkdir -p "$(dirname "$out")"
cp "$tmp/nearcache.pb.go" "$out"
