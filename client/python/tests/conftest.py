"""Fixtures: a real redis-server and a real nearcached shared by a test
module (each test uses namespaces of its own), and fresh ones for tests that
stop, restart or reconfigure them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from facade import AsyncAsSync
from procs import Daemon, Fleet, Redis

import nearcache


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    r = Redis().start()
    yield r
    r.cleanup()


@pytest.fixture(scope="module")
def daemon(redis: Redis) -> Iterator[Daemon]:
    fleet = Fleet(1, redis=redis)
    yield fleet[0]
    fleet.stop()


@pytest.fixture
def make_daemon(redis: Redis) -> Iterator[Callable[..., Daemon]]:
    """Starts daemons of the test's own (flags as arguments) on the module's
    Redis (or ``redis_``); stops them by pid after the test."""
    fleet = Fleet(redis=redis)

    def make(*flags: str, redis_: Redis | None = redis) -> Daemon:
        return fleet.add(*flags, redis=redis_)

    yield make
    fleet.stop(check=False)  # some tests leave a daemon killed or frozen


@pytest.fixture
def ns() -> str:
    """A namespace no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def client(daemon: Daemon) -> Iterator[nearcache.Client]:
    with nearcache.Client(daemon.url, timeout=5) as c:
        yield c


@pytest.fixture
async def aclient(daemon: Daemon) -> AsyncIterator[nearcache.AsyncClient]:
    async with nearcache.AsyncClient(daemon.url, timeout=5) as c:
        yield c


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Runs a test once with each client."""
    return str(request.param)


def open_client(kind: str, url: str, **kw: object) -> Any:
    """A Client, or an AsyncClient behind the same blocking API."""
    return nearcache.Client(url, **kw) if kind == "sync" else AsyncAsSync(url, **kw)  # type: ignore[arg-type]


@pytest.fixture
def c(kind: str, daemon: Daemon) -> Iterator[Any]:
    """The module's daemon through each client in turn."""
    with open_client(kind, daemon.url, timeout=5) as cl:
        yield cl
