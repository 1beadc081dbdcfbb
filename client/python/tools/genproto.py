"""Regenerates src/nearcache/_pb/nearcache_pb2.py (and .pyi) from
proto/nearcache.proto.

Run from anywhere: ``python client/python/tools/genproto.py`` (needs the
``dev`` extra: grpcio-tools). With ``--check`` it writes nothing and exits 1
if the committed files differ from what protoc makes now.

Why grpcio-tools and not Debian's protoc: Debian 12's protobuf-compiler is
3.21.12, whose gencode matches the protobuf 4.21 runtime only; grpcio-tools
1.85.1 bundles libprotoc 35.1, whose gencode declares (and checks at import)
Python protobuf 7.35.1, so the runtime pin in pyproject.toml is
``protobuf>=7.35.1,<8``. Regenerate when either one moves.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_DIR = HERE.parents[2] / "proto"
OUT_DIR = HERE.parent / "src" / "nearcache" / "_pb"
FILES = ("nearcache_pb2.py", "nearcache_pb2.pyi")


def generate(out: Path) -> None:
    """Runs protoc (from grpcio-tools) on nearcache.proto into ``out``."""
    from grpc_tools import protoc  # type: ignore[import-untyped]

    rc = protoc.main(
        [
            "protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            str(PROTO_DIR / "nearcache.proto"),
        ]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed ({rc})")


def stale_files() -> list[str]:
    """Returns the names of the committed files that differ from fresh gencode."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        return [
            name
            for name in FILES
            if (Path(tmp) / name).read_bytes() != (OUT_DIR / name).read_bytes()
        ]


def main() -> int:
    if "--check" in sys.argv[1:]:
        stale = stale_files()
        for name in stale:
            print(f"{OUT_DIR / name} is out of date: run {Path(__file__).name}")
        return 1 if stale else 0
    generate(OUT_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
