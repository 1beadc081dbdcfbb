"""The client works with the lowest protobuf runtime pyproject.toml accepts
(the suite itself runs on the newest the venv resolved): that runtime is
installed beside the build and put first on the path of a pytest run of
the wire-level tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from procs import build_dir

HERE = Path(__file__).resolve().parent


def lowest() -> str:
    """The lower bound of the protobuf requirement in pyproject.toml."""
    text = (HERE.parent / "pyproject.toml").read_text()
    m = re.search(r'"protobuf>=([0-9.]+),<[0-9]+"', text)
    assert m, "pyproject.toml names no protobuf range"
    return m.group(1)


# It runs four test files in a child pytest: the suite's 60 s per test is too
# short on a loaded machine (the child has its own 300 s).
@pytest.mark.timeout(360)
def test_the_lowest_protobuf_runtime_runs_the_wire_tests() -> None:
    version = lowest()
    where = build_dir() / "py-tools" / f"protobuf-{version}"
    if not (where / "google" / "protobuf").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--no-deps", "--target", str(where), f"protobuf=={version}"],
            check=True,
        )  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(where), str(HERE)]))
    probe = "import google.protobuf as g; print(g.__version__)"
    seen = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert seen.stdout.strip() == version
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "test_core.py", "test_methods.py", "test_conformance.py", "test_status.py"],
        cwd=HERE, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
