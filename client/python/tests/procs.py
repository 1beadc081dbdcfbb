"""Real redis-server and nearcached processes for the tests, as the C
harness (tests/harness.c) runs them: each in its own temporary directory, on
a free loopback port or an IPC path there, dying with the test process, and
stopped by pid. :class:`Fleet` is the harness's ``h_fleet``: Redis plus N
daemons with options."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import EllipsisType

import nearcache

REPO = Path(__file__).resolve().parents[3]


def build_dir() -> Path:
    """Returns the CMake build directory: ``$NC_BUILD``, else ``build/``."""
    return Path(os.environ.get("NC_BUILD") or REPO / "build")


def daemon_binary() -> Path:
    """Returns the nearcached built by CMake; raises if there is none."""
    path = build_dir() / "daemon" / "nearcached"
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: build the C code first (see README)")
    return path


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(cond: object, timeout: float, what: str) -> None:
    """Polls ``cond()`` every 10 ms until it is true; raises after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise TimeoutError(f"timed out waiting for {what}")


class Redis:
    """A redis-server on a free loopback port in a temporary directory."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nc-pytest-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> Redis:
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--daemonize",
                "no",
                "--enable-debug-command",
                "yes",
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.close()
        wait_until(lambda: self.cmd("PING") == "PONG", 10, "redis-server to answer PING")
        return self

    def cmd(self, *args: str) -> str:
        """Runs one command through redis-cli; returns its output, trimmed."""
        out = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return out.stdout.decode(errors="replace").strip()

    def data_key(self, ns: str, key: str) -> str:
        """The Redis key of (ns, key) under prefix nc:v1 and the version Redis
        holds, as daemon/keyspace.c names it (its hash tag: FNV-1a of
        NS:KEY); a namespace without one is given 1 first, as a daemon would
        give it one."""
        self.cmd("SET", f"nc:v1:nsver:{ns}", "1", "NX")
        h = 2166136261
        for b in f"{ns}:{key}".encode():
            h = ((h ^ b) * 16777619) & 0xFFFFFFFF
        version = self.cmd("GET", f"nc:v1:nsver:{ns}")
        return f"nc:v1:{{{h:08x}}}:{ns}:{version}:{key}"

    def stop(self, hard: bool = True) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            self.proc.wait(10)
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    """A nearcached on ``ipc://DIR/nc.sock`` against a Redis, with the C
    harness's generous timeouts and any extra flags."""

    def __init__(self, redis: Redis | None, *flags: str) -> None:
        self.redis = redis
        self.flags = flags
        self.dir = Path(tempfile.mkdtemp(prefix="nc-pytest-daemon-"))
        self.url = f"ipc://{self.dir}/nc.sock"
        self.log = self.dir / "nearcached.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        log = open(self.log, "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [
                str(daemon_binary()),
                "--listen",
                self.url,
                "--redis",
                self.redis.url if self.redis else "redis://127.0.0.1:1",
                "--log-level",
                "debug",
                "--redis-timeout",
                "2s",
                "--request-timeout",
                "5s",
                *self.flags,
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 10) -> None:
        """Waits until it answers Ping and, with a running Redis, serves L1."""
        need_l1 = self.redis is not None and self.redis.proc is not None

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"nearcached exited at start:\n{self.log.read_text()}")
            try:
                with nearcache.Client(self.url, timeout=0.5) as c:
                    return c.ping().l1_serving or not need_l1
            except nearcache.Error:
                return False

        wait_until(ready, timeout, f"nearcached to get ready; log:\n{self.log}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> int:
        """SIGTERM, wait; returns its exit status."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        self.proc = None
        return code

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Fleet:
    """What most tests stand on, as the C harness's ``h_fleet``: one
    redis-server (its own, or one given) and daemons on it. ``Fleet(n,
    *flags)`` starts Redis and ``n`` daemons with the same flags; ``add()``
    starts one more; ``stop()`` stops every daemon still running by pid,
    expecting each to exit 0 (its log in the error when not), then the
    Redis it started."""

    def __init__(self, n: int = 0, *flags: str, redis: Redis | None = None) -> None:
        self.own_redis = redis is None
        self.redis = redis if redis is not None else Redis().start()
        self.nodes: list[Daemon] = []
        try:
            for _ in range(n):
                self.add(*flags)
        except BaseException:
            self.stop(check=False)
            raise

    def add(self, *flags: str, redis: Redis | EllipsisType | None = ...) -> Daemon:
        """Starts a daemon on this fleet's Redis (or ``redis``; None: an
        unreachable one) with ``flags``; returns it."""
        d = Daemon(self.redis if isinstance(redis, EllipsisType) else redis, *flags)
        self.nodes.append(d)
        return d.start()

    def __getitem__(self, i: int) -> Daemon:
        return self.nodes[i]

    def stop(self, check: bool = True) -> None:
        """Stops the daemons (expecting exit 0 when ``check``), then Redis."""
        failed = []
        for d in self.nodes:
            if d.proc is not None and d.proc.poll() is None:
                code = d.stop()
                if code != 0:
                    failed.append(f"nearcached exited {code}:\n{d.log.read_text()}")
            d.cleanup()
        self.nodes = []
        if self.own_redis:
            self.redis.cleanup()
        if check and failed:
            raise AssertionError("\n".join(failed))
