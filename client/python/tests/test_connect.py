"""Dialing fails fast and says why (docs/protocol.md, "Client rules", R1):
a missing socket, a stale one and a forbidden one are each known at once;
a call before the next dial is due fails without dialing; a fail-open
``@cached`` call with no daemon costs about the function's own time."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import open_client
from procs import Daemon

import nearcache
from nearcache._link import MAX_BACKOFF, MIN_BACKOFF, Link


def test_the_backoff_doubles_from_50_ms_to_2_s_with_jitter_and_resets_on_success() -> None:
    for jitter in (0.0, 1.0):
        link = Link("ipc:///nowhere/nc.sock", 1.0, rng=lambda j=jitter: j)  # type: ignore[misc]
        now, pauses = 100.0, []
        for _ in range(9):
            link.may_dial(now)  # due: returns
            link.dial_failed(now, FileNotFoundError(2, "No such file or directory"))
            with pytest.raises(nearcache.Unavailable, match=r"no socket /nowhere/nc\.sock"):
                link.may_dial(now + 0.001)  # before it is due: the last error, at once
            due = link._due
            pauses.append(due - now)
            now = due
        factor = 0.5 + 0.5 * jitter  # half to all of it
        want = [min(MIN_BACKOFF * 2**i, MAX_BACKOFF) * factor for i in range(9)]
        assert pauses == pytest.approx(want)
        assert max(pauses) <= MAX_BACKOFF
        link.dialed()
        link.may_dial(now)  # reset: due at once
        link.dial_failed(now, ConnectionRefusedError(111, "Connection refused"))
        assert link._due - now == pytest.approx(MIN_BACKOFF * factor)


def test_a_missing_directory_is_named_too(tmp_path: Path) -> None:
    url = f"ipc://{tmp_path}/gone/nc.sock"
    with pytest.raises(nearcache.Unavailable, match=f"nor its directory {tmp_path}/gone"):
        nearcache.Client(url, near_bytes=0).ping()


def test_a_missing_socket_fails_at_once_naming_the_path_and_nearcache_url(
    kind: str, tmp_path: Path
) -> None:
    url = f"ipc://{tmp_path}/none.sock"
    with open_client(kind, url, timeout=5) as cl:
        t0 = time.monotonic()
        with pytest.raises(nearcache.Unavailable) as e:
            cl.get("ns", "k")
        assert time.monotonic() - t0 < 0.5  # not the 5 s timeout
        assert f"cannot reach nearcached at {url}" in e.value.message
        assert f"there is no socket {tmp_path}/none.sock" in e.value.message
        assert "no daemon is listening there" in e.value.message
        assert "NEARCACHE_URL" in e.value.message


def test_a_stale_socket_is_refused_at_once(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # bound, never listening: a daemon that died
    with open_client(kind, f"ipc://{path}", timeout=5) as cl:
        t0 = time.monotonic()
        with pytest.raises(nearcache.Unavailable, match=f"nothing listens on {path}"):
            cl.ping()
        assert time.monotonic() - t0 < 0.5


def test_a_call_before_the_next_dial_is_due_does_not_dial(kind: str, tmp_path: Path) -> None:
    for attempt in range(5):  # the second call must come within the first backoff
        path = tmp_path / f"s{attempt}.sock"
        with socket.socket(socket.AF_UNIX) as srv:
            srv.bind(str(path))  # bound, not listening yet: refused
            srv.setblocking(False)
            with open_client(kind, f"ipc://{path}", timeout=0.3, near_bytes=0) as cl:
                with pytest.raises(nearcache.Unavailable, match="nothing listens"):
                    cl.ping()
                failed = time.monotonic()
                srv.listen()  # the same file, unchanged, now accepting
                with pytest.raises(nearcache.Unavailable, match="nothing listens"):
                    cl.ping()  # the last error again...
                with pytest.raises(BlockingIOError):
                    srv.accept()  # ...and no dial
                if time.monotonic() - failed > MIN_BACKOFF * 0.5:
                    continue  # too slow to tell (a loaded machine): again
                time.sleep(MIN_BACKOFF * 1.1)
                with pytest.raises(nearcache.DeadlineExceeded):
                    cl.ping()  # due: one dial (we never answer its handshake)
                srv.accept()[0].close()
                return
    pytest.fail("never managed a second call within the backoff")


def test_a_socket_file_that_changed_is_dialed_before_the_backoff_ends(
    kind: str, daemon: Daemon, tmp_path: Path
) -> None:
    path = tmp_path / "late.sock"
    with open_client(kind, f"ipc://{path}", timeout=5) as cl:
        for i in range(4):  # the backoff grows to 400 ms (200 to 400 with its jitter)
            if i:
                time.sleep(MIN_BACKOFF * 2 ** (i - 1) * 1.1)  # due again
            with pytest.raises(nearcache.Unavailable, match="there is no socket"):
                cl.ping()
        os.link(daemon.url.removeprefix("ipc://"), path)  # a daemon started there
        assert cl.ping().l1_serving  # at once, not after the backoff


def _connect_as_nobody(url: str) -> subprocess.CompletedProcess[str]:
    """Runs a Ping as user nobody (we are root) in a child process."""
    code = (
        "import os, sys, nearcache\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    nearcache.Client(sys.argv[1], near_bytes=0).ping()\n"
        "except nearcache.PermissionDenied as e:\n"
        "    print(e.message); sys.exit(3)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=30, check=False
    )


def test_a_forbidden_socket_is_permission_denied_naming_owner_group_mode_and_the_fix(
    make_daemon: Callable[..., Daemon],
) -> None:
    d = make_daemon()
    path = d.url.removeprefix("ipc://")
    os.chmod(Path(path).parent, 0o755)  # the socket itself is what forbids
    st = os.stat(path)
    if os.geteuid() == 0:
        out = _connect_as_nobody(d.url)
        assert out.returncode == 3, out.stdout + out.stderr
        message = out.stdout
        me = "nobody"
    else:
        os.chmod(path, 0)  # even its owner may not connect now
        st = os.stat(path)
        with pytest.raises(nearcache.PermissionDenied) as e:
            nearcache.Client(d.url, near_bytes=0).ping()
        message = e.value.message
        me = pwd.getpwuid(os.geteuid()).pw_name
    owner = f"{pwd.getpwuid(st.st_uid).pw_name}:{grp.getgrgid(st.st_gid).gr_name}"
    mode = f"{st.st_mode & 0o7777:04o}"
    assert f"permission denied on {path} ({owner} {mode})" in message
    assert f"this process runs as {me}" in message
    assert f"Add {me} to the group {grp.getgrgid(st.st_gid).gr_name}" in message
    assert "socket_group" in message


def _timed(fn: Callable[[], Any], n: int, pause: float) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
        time.sleep(pause)
    return out


def test_fail_open_cached_calls_with_no_daemon_run_the_function_at_once(tmp_path: Path) -> None:
    client = nearcache.Client(f"ipc://{tmp_path}/none.sock", timeout=1)
    calls = []

    @nearcache.cached(ttl=60, client=client)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    # Back to back (calls before the next dial is due) and spaced past the
    # backoff (each call dials once): neither waits for the 1 s timeout.
    took = _timed(lambda: double(21), 200, 0) + _timed(lambda: double(21), 10, 0.06)
    assert calls == [21] * 210
    assert double.cache_info()["errors"] == 210
    assert max(took) < 0.5, max(took)  # none waited for the 1 s timeout
    assert statistics.median(took) < 0.002  # the benchmark measures it closely
    client.close()


def test_fail_open_async_cached_calls_with_no_daemon_run_the_function_at_once(
    tmp_path: Path,
) -> None:
    aclient = nearcache.AsyncClient(f"ipc://{tmp_path}/none.sock", timeout=1)

    @nearcache.cached(ttl=60, client=aclient)
    async def double(x: int) -> int:
        return 2 * x

    async def run() -> list[float]:
        took = []
        for i in range(120):
            t = time.perf_counter()
            assert await double(i) == 2 * i
            took.append(time.perf_counter() - t)
            if i % 12 == 0:
                await asyncio.sleep(0.06)
        await aclient.close()
        return took

    took = asyncio.run(run())
    assert double.cache_info()["errors"] == 120
    assert max(took) < 0.5, max(took)  # none waited for the 1 s timeout
    assert statistics.median(took) < 0.002
