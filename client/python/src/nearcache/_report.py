"""Near-tier reports (docs/protocol.md, "Client rules", R3), without I/O:
when a client sends its near tier's counters to its daemon, and what.

The counters are cumulative since the client started (in a forked child,
since the fork, under a reporter id of its own). A report is due at most
once per interval (the daemon's ``interval_ms``, 1 s by default) and only
when a counter changed since the last report the daemon accepted. The
shells send it from a background thread (``Client``) or task
(``AsyncClient``), never on the hit path.
"""

from __future__ import annotations

import os
import random
from typing import Any

from ._core import Call, check
from ._near import NearTier
from ._pb import nearcache_pb2 as pb

__all__ = ["DEFAULT_INTERVAL", "Reporter"]

#: Seconds between reports when the daemon asks for no other interval.
DEFAULT_INTERVAL = 1.0


class Reporter:
    """The report schedule of one client's near tier ``tier``."""

    def __init__(self, tier: NearTier) -> None:
        self.tier = tier
        self.interval = DEFAULT_INTERVAL
        self.off = False  #: the daemon does not know NearReport
        self._pid = 0
        self._id = 0
        self._due = 0.0
        self._sent: tuple[int, int, int] | None = None

    def due(self, now: float, last: bool = False) -> Call[Any] | None:
        """Returns the report to send at ``now`` (monotonic seconds), or
        None when none is due or nothing changed. ``last``: the client is
        closing, so a report is due whenever something changed."""
        if self.off or (now < self._due and not last):
            return None
        self._due = now + self.interval
        if self._pid != os.getpid():  # new, or a forked child: a reporter of its own
            self._pid, self._sent = os.getpid(), None
            self._id = random.getrandbits(64) or 1
        st = self.tier.stats()
        counters = (st.hits, st.misses, st.fills_refused)
        if counters == self._sent:
            return None
        req = pb.NearReportRequest(
            reporter=self._id,
            pid=self._pid,
            hits=counters[0],
            misses=counters[1],
            fills_refused=counters[2],
            reported_before=self._sent is not None,  # a restarted daemon starts from here
        )

        def decode(reply: pb.Reply) -> None:
            if reply.code == pb.UNIMPLEMENTED:
                self.off = True  # an older daemon: never again
            check(reply)
            self._sent = counters
            ms = reply.near_report.interval_ms
            self.interval = ms / 1000 if ms else DEFAULT_INTERVAL

        return Call(pb.Request(near_report=req), decode, retry_safe=True)
