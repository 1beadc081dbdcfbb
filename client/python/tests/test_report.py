"""Near-tier reports (docs/protocol.md, "Client rules", R3): a client with a
near tier sends its counters to its daemon in the background, at most once
a second and only when they changed; the daemon sums them for the host."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from conftest import open_client
from procs import Daemon, wait_until

import nearcache
from nearcache._near import NearTier
from nearcache._pb import nearcache_pb2 as pb
from nearcache._report import Reporter


def test_a_report_is_due_once_an_interval_and_only_after_a_change(tmp_path: Any) -> None:
    tier = NearTier(str(tmp_path / "none.ring"), 1 << 20, 60_000)
    r = Reporter(tier)
    first = r.due(100.0)
    assert first is not None and first.request is not None
    sent = first.request.near_report
    assert sent.reporter != 0 and sent.pid == os.getpid()
    assert (sent.hits, sent.misses, sent.fills_refused) == (0, 0, 0)
    assert not sent.reported_before  # no daemon took one yet
    assert r.due(100.5) is None  # not due yet
    assert r.due(101.0) is not None  # due, and the last was never answered
    reply = pb.Reply()
    reply.near_report.interval_ms = 2000
    first.decode(reply)
    assert r.interval == 2.0
    assert r.due(103.5) is None  # answered, and nothing changed since
    tier.entry(b"ns", b"k")  # a miss
    again = r.due(106.0)
    assert again is not None and again.request is not None
    assert again.request.near_report.misses == 1
    assert again.request.near_report.reporter == sent.reporter
    assert again.request.near_report.reported_before  # a restarted daemon starts from it


def test_a_daemon_without_near_report_is_not_asked_again(tmp_path: Any) -> None:
    r = Reporter(NearTier(str(tmp_path / "none.ring"), 1 << 20, 60_000))
    call = r.due(0.0)
    assert call is not None
    with pytest.raises(nearcache.Unimplemented):
        call.decode(pb.Reply(code=pb.UNIMPLEMENTED, message="unknown method"))
    assert r.off and r.due(10.0) is None


def test_near_hits_reach_the_daemons_stats_without_another_call(
    kind: str, daemon: Daemon, ns: str
) -> None:
    with open_client(kind, daemon.url, timeout=5) as cl, nearcache.Client(daemon.url) as probe:
        before = probe.stats()
        cl.set(ns, "k", "v", 60)
        wait_until(lambda: cl.get_ex(ns, "k").source is nearcache.Source.NEAR, 5, "a near hit")
        hits = cl.near_stats().hits
        for _ in range(50):
            assert cl.get(ns, "k") == b"v"
        hits += 50
        t0 = time.monotonic()
        wait_until(
            lambda: probe.stats()["near_hits"] - before["near_hits"] >= hits, 5, "the report"
        )
        assert time.monotonic() - t0 < 3  # within about a second
        assert probe.stats()["near_clients"] >= 1


def test_a_closing_client_sends_a_last_report(kind: str, daemon: Daemon, ns: str) -> None:
    with nearcache.Client(daemon.url) as probe:
        cl = open_client(kind, daemon.url, timeout=5)
        cl.set(ns, "k", "v", 60)
        wait_until(lambda: cl.get_ex(ns, "k").source is nearcache.Source.NEAR, 5, "a near hit")
        before = probe.stats()["near_hits"]
        for _ in range(30):
            cl.get(ns, "k")
        getattr(cl, "shutdown", cl.close)()  # within the interval: the last report has them
        assert probe.stats()["near_hits"] - before >= 30
