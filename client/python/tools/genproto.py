"""Regenerates src/nearcache/_pb/nearcache_pb2.py (and .pyi) from
proto/nearcache.proto.

Run from anywhere: ``python client/python/tools/genproto.py``. With
``--check`` it writes nothing and exits 1 if the committed files differ from
what protoc makes now.

Which protoc: the one in grpcio-tools 1.51.3 (libprotoc 21.12), installed
on first use into ``$NC_BUILD/py-tools`` (default ``build/py-tools``) and
run in a process of its own, so it never touches the environment's own
protobuf. Its gencode needs only the protobuf runtime's ``builder`` module
(3.20 and later) and checks no version at import, which is what lets
pyproject.toml accept ``protobuf>=3.20.3,<8``; test_protobuf_range runs the
client against the lowest of that range, the suite itself against the
newest. Newer protoc versions pin the runtime to their own minor version.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
PROTO_DIR = REPO / "proto"
OUT_DIR = HERE.parent / "src" / "nearcache" / "_pb"
FILES = ("nearcache_pb2.py", "nearcache_pb2.pyi")
GRPCIO_TOOLS = "1.51.3"


def tools_dir() -> Path:
    """Returns where grpcio-tools is installed (installs it if needed)."""
    where = Path(os.environ.get("NC_BUILD") or REPO / "build") / "py-tools"
    where = where / f"grpcio-tools-{GRPCIO_TOOLS}"
    if not (where / "grpc_tools").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--no-deps", "--target", str(where), f"grpcio-tools=={GRPCIO_TOOLS}"],
            check=True,
        )  # fmt: skip
    return where


def generate(out: Path) -> None:
    """Runs protoc (from grpcio-tools) on nearcache.proto into ``out``."""
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        str(PROTO_DIR / "nearcache.proto"),
    ]
    code = (
        "import sys; from grpc_tools import _protoc_compiler as c; "
        "sys.exit(c.run_main([a.encode() for a in sys.argv[1:]]))"
    )
    env = dict(os.environ, PYTHONPATH=str(tools_dir()))
    rc = subprocess.run([sys.executable, "-c", code, *args], env=env, check=False).returncode
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
