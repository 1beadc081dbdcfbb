"""The daemon's acl rules against a Python client running as another uid
(Debian's ``daemon``, uid 1), with its near tier on: a denied read raises
PermissionDenied, leaves the connection open and puts nothing into the near
tier; a lease Get without ``w`` is a plain Get. The child runs the system's
interpreter on a copy of the package (and protobuf) in a directory every
uid can read. Runs as root (CI does), to switch users."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import google.protobuf
import pytest
from procs import Daemon

import nearcache

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switches users: run as root (CI does)")

UID = 1  # Debian's daemon user and group

CHILD = r"""
import sys
import nearcache

url = sys.argv[1]
with nearcache.Client(url, timeout=3) as c:
    assert c.near_stats() is not None, "the near tier is on"
    c.set("mine", "k", b"v")
    assert c.get("mine", "k") == b"v"
    for _ in range(2):  # the second time too: nothing came into the near tier
        try:
            c.get("secret", "k")
            raise SystemExit("read secret")
        except nearcache.PermissionDenied as e:
            assert 'namespace "secret"' in str(e) and "'r'" in str(e), str(e)
    c.set("drop", "k", b"x")  # w only: its own write is not readable from the near tier
    try:
        c.get("drop", "k")
        raise SystemExit("read drop")
    except nearcache.PermissionDenied:
        pass
    r = c.get_ex("ro", "missing", lease=True)  # r only: answered as a plain Get
    assert r.value is None and r.lease is nearcache.LeaseState.NONE, r
    assert c.get("mine", "k") == b"v", "the connection still serves"
print("ok")
"""


@pytest.fixture(scope="module")
def readable_tree() -> Iterator[Path]:
    """The package and protobuf copied where every uid can read them."""
    d = Path(tempfile.mkdtemp(prefix="nc-pytest-acl-"))
    os.chmod(d, 0o755)
    shutil.copytree(Path(nearcache.__file__).parent, d / "nearcache")
    shutil.copytree(Path(google.protobuf.__file__).parents[1], d / "google")
    (d / "child.py").write_text(CHILD)
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def interpreter() -> str:
    """An interpreter the other uid may run: the system's, of this version."""
    for p in (os.path.realpath(sys.executable), f"/usr/bin/python3.{sys.version_info[1]}"):
        if p.startswith("/usr/"):
            return p
    pytest.skip(f"no interpreter outside a private home ({sys.executable})")


def test_a_denied_read_never_reaches_the_near_tier(
    make_daemon: Callable[..., Daemon], readable_tree: Path
) -> None:
    d = make_daemon(
        "--socket-mode", "0666",
        "--acl", "* uid:0 rwa",
        "--acl", f"mine uid:{UID} rw",
        "--acl", f"drop uid:{UID} w",
        "--acl", "ro* * r",
    )  # fmt: skip
    os.chmod(d.dir, 0o755)
    with nearcache.Client(d.url) as root:
        root.set("secret", "k", b"s")
        before = root.stats()["acl_denied"]
        p = subprocess.run(
            ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", interpreter(),
             str(readable_tree / "child.py"), d.url],
            env={"PYTHONPATH": str(readable_tree), "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert p.returncode == 0 and p.stdout.strip() == "ok", p.stdout + p.stderr
        assert root.stats()["acl_denied"] == before + 3
