"""The Python code in the docs runs as it stands: every code block of the
README's Python part and of docs/python.md either runs (Python blocks are
run here, against a real daemon) or is marked ``<!-- fragment: why -->``
on the line before it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from procs import REPO, Daemon

FENCE = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>\w*)\n(?P<code>.*?)\n```", re.S)


def blocks(path: Path, section: str | None = None) -> list[tuple[str, str, str, bool]]:
    """(where, lang, code, fragment) for each code block of ``path`` (of its
    ``## section`` only, when given)."""
    text = path.read_text()
    if section is not None:
        start = text.index(f"## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end != -1 else len(text)]
    out = []
    for m in FENCE.finditer(text):
        line = text[: m.start("code")].count("\n")
        fragment = m.group("before").startswith("<!-- fragment:")
        out.append(
            (f"{path.name} block at line ~{line}", m.group("lang"), m.group("code"), fragment)
        )
    return out


ALL = blocks(REPO / "README.md", "Using it from Python") + blocks(REPO / "docs" / "python.md")


def test_every_block_that_does_not_run_here_is_marked_a_fragment() -> None:
    unmarked = [where for where, lang, _, fragment in ALL if lang != "python" and not fragment]
    assert not unmarked, f"mark these <!-- fragment: why --> or make them Python: {unmarked}"
    assert sum(1 for b in ALL if b[1] == "python" and not b[3]) >= 5


@pytest.mark.parametrize(
    ("where", "code"),
    [pytest.param(w, c, id=w) for w, lang, c, fragment in ALL if lang == "python" and not fragment],
)
def test_a_python_block_runs(where: str, code: str, daemon: Daemon, tmp_path: Path) -> None:
    env = dict(os.environ, NEARCACHE_URL=daemon.url)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, f"{where}:\n{out.stdout}\n{out.stderr}"
    assert "calling the function" not in out.stderr, out.stderr  # it reached the daemon


def test_the_readme_example_reads_its_own_update(daemon: Daemon, tmp_path: Path) -> None:
    (code,) = [c for _, lang, c, _ in blocks(REPO / "README.md", "Using it from Python")]
    env = dict(os.environ, NEARCACHE_URL=daemon.url)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.splitlines() == [
        "Product(id=42, name='lamp')",
        "Product(id=42, name='lamp v2')",
    ], out.stderr
