"""Every status code the daemon sends, and the client's own failures, as
exceptions under nearcache.Error carrying the daemon's message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import open_client
from procs import Daemon, Redis, wait_until

import nearcache


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.get("ns", ""), "key is empty"),
        (lambda c: c.get("", "k"), "namespace is empty"),
        (lambda c: c.get("a:b", "k"), "namespace contains ':'"),
        (lambda c: c.get("ns", "k" * 1025), "key is 1025 bytes; max_key_size is 1024"),
        (lambda c: c.bump("n" * 129), "namespace is 129 bytes; max_namespace_size is 128"),
        (lambda c: c.set("ns", "k", "v", 0), "ttl_ms must be positive (got 0)"),
        (lambda c: c.set("ns", "k", "v", -5), "ttl_ms must be positive (got -5000)"),
        (lambda c: c.mget("ns", []), "0 keys; a batch takes 1 to max_batch (1000)"),
        (lambda c: c.mset("ns", [("k", "v", -1)]), "entry 0 has a negative ttl_ms"),
        (lambda c: c.set("ns", "k", "v", lease_token=b"t" * 65), "lease_token is 65 bytes"),
    ],
)
def test_bad_input_is_invalid_argument_naming_the_problem(
    c: Any, call: Callable[[Any], object], message: str
) -> None:
    with pytest.raises(nearcache.InvalidArgument) as e:
        call(c)
    assert message in e.value.message
    assert e.value.code == 3
    c.ping()  # and the connection goes on


def test_a_value_over_max_value_size_is_resource_exhausted(c: Any, ns: str) -> None:
    with pytest.raises(nearcache.ResourceExhausted, match="max_value_size is 1048576"):
        c.set(ns, "big", bytes(1048577))
    c.set(ns, "big", bytes(1048576))
    assert c.get(ns, "big") == bytes(1048576)


def test_a_request_larger_than_the_daemon_reads_is_refused_without_sending(c: Any, ns: str) -> None:
    before = c.stats()["requests"]
    with pytest.raises(nearcache.ResourceExhausted, match="larger than the daemon accepts"):
        c.mset(ns, {"a": bytes(600000), "b": bytes(600000)})
    # Only the Ping that learned the limit and this Stats reached it.
    assert c.stats()["requests"] - before <= 3
    assert c.get(ns, "a") is None


def test_a_key_holding_another_redis_type_is_failed_precondition(
    c: Any, ns: str, redis: Redis
) -> None:
    redis.cmd("RPUSH", redis.data_key(ns, "list"), "x")
    with pytest.raises(nearcache.FailedPrecondition, match="WRONGTYPE"):
        c.get(ns, "list")


def test_an_unknown_method_is_unimplemented(c: Any) -> None:
    reply = c.request(bytes.fromhex("08 05 ea 01 00"))
    assert reply.code == 12 and "field 29" in reply.message


@pytest.fixture
def own_redis() -> Iterator[Redis]:
    r = Redis().start()
    yield r
    r.cleanup()


def test_a_stopped_redis_is_unavailable_and_its_return_heals(
    kind: str, own_redis: Redis, make_daemon: Callable[..., Daemon], ns: str
) -> None:
    d = make_daemon("--redis-timeout", "300ms", redis_=own_redis)
    with open_client(kind, d.url, timeout=2) as cl:
        cl.set(ns, "k", "v")
        own_redis.stop()
        # A write always goes to Redis (a read of "k" may still hit L1 until
        # the daemon notices the lost subscription).
        with pytest.raises(nearcache.Unavailable, match="redis"):
            cl.set(ns, "k2", "v")
        wait_until(lambda: not cl.ping().l1_serving, 10, "the daemon to stop serving L1")
        own_redis.start()
        d.wait_ready()
        # The workers reconnect with backoff: allow them a few seconds.
        end = time.monotonic() + 10
        while True:
            try:
                assert cl.get(ns, "k") is None  # the Redis came back empty
                break
            except nearcache.Unavailable:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)


def asleep(r: Redis) -> bool:
    """Whether Redis leaves a PING unanswered for 100 ms."""
    with socket.create_connection(("127.0.0.1", r.port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        s.settimeout(0.1)
        try:
            return not s.recv(16)
        except TimeoutError:
            return True


def test_a_sleeping_redis_makes_a_short_request_deadline_exceeded(
    kind: str, own_redis: Redis, make_daemon: Callable[..., Daemon], ns: str
) -> None:
    d = make_daemon(redis_=own_redis)
    with open_client(kind, d.url, timeout=2) as cl:
        sleeper = subprocess.Popen(
            ["redis-cli", "-p", str(own_redis.port), "DEBUG", "SLEEP", "2"],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: asleep(own_redis), 5, "redis to fall asleep")
            with pytest.raises(nearcache.DeadlineExceeded, match="deadline exceeded"):
                cl.get(ns, "k", timeout=0.3)
        finally:
            sleeper.wait(10)
        assert cl.get(ns, "k") is None


def stopped(pid: int) -> bool:
    """Whether every thread of process ``pid`` is stopped (state T)."""
    stats = (
        Path(f"/proc/{pid}/task/{t}/stat").read_text() for t in os.listdir(f"/proc/{pid}/task")
    )
    return all(s.rsplit(")", 1)[1].split()[0] == "T" for s in stats)


def test_a_daemon_that_does_not_answer_is_deadline_exceeded_then_the_client_goes_on(
    kind: str, make_daemon: Callable[..., Daemon], ns: str
) -> None:
    d = make_daemon()
    with open_client(kind, d.url, timeout=2) as cl:
        cl.set(ns, "k", "v")
        os.kill(d.pid, signal.SIGSTOP)
        wait_until(lambda: stopped(d.pid), 5, "the daemon to stop")
        try:
            t0 = time.monotonic()
            with pytest.raises(nearcache.DeadlineExceeded, match="no reply from the daemon"):
                cl.get(ns, "k", timeout=0.2)
            assert time.monotonic() - t0 < 1.0
        finally:
            os.kill(d.pid, signal.SIGCONT)
        assert cl.get(ns, "k") == b"v"
        assert cl.get(ns, "k") == b"v"  # the late reply was not taken for this one


def test_no_daemon_is_unavailable_naming_the_url(kind: str, tmp_path: Any) -> None:
    url = f"ipc://{tmp_path}/none.sock"
    with open_client(kind, url, timeout=0.3) as cl:
        with pytest.raises(nearcache.Unavailable, match="cannot reach nearcached at " + url):
            cl.get("ns", "k")
        t0 = time.monotonic()
        with pytest.raises(nearcache.Unavailable):
            cl.ping()
        assert time.monotonic() - t0 < 0.1  # known down: fails fast


def test_a_closed_client_is_unavailable(c: Any) -> None:
    c.ping()
    c.close()
    with pytest.raises(nearcache.Unavailable, match="closed"):
        c.ping()
