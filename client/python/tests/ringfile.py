"""A ring writer for the reader's tests: what the daemon does to its ring
file (common/ring.c), in Python, so the tests can publish, flush, stop,
lap and tear slots at will."""

from __future__ import annotations

import mmap
import os
import random
import struct
from pathlib import Path

from nearcache._ring import KIND_KEY, KIND_NAMESPACE, SLOT_SIZE, SLOTS_AT, fnv1a64, now_ms


class RingWriter:
    """Makes the ring file at ``path`` (under a temporary name, then
    renamed, as the daemon does) with ``slots`` slots, a random epoch and
    serving_until ``serving`` seconds from now (0: not serving)."""

    def __init__(self, path: Path, slots: int = 64, serving: float = 60.0) -> None:
        self.path = path
        self.slots = slots
        size = SLOTS_AT + slots * SLOT_SIZE
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.truncate(size)
        fd = os.open(tmp, os.O_RDWR)
        try:
            self.mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        struct.pack_into("<8sIIQ", self.mm, 0, b"NCRING\0\0", 1, SLOT_SIZE, slots)
        self.epoch = random.getrandbits(63) | 1
        self._put(24, self.epoch)
        if serving:
            self.serve_for(serving)
        os.rename(tmp, path)

    def _put(self, at: int, v: int, fmt: str = "<Q") -> None:
        struct.pack_into(fmt, self.mm, at, v)

    def _get(self, at: int) -> int:
        v: int = struct.unpack_from("<Q", self.mm, at)[0]
        return v

    @property
    def head(self) -> int:
        return self._get(64)

    def publish(self, kind: int, nsh: int, kh: int) -> int:
        """Publishes one slot, seqlock-style; returns its seq."""
        seq = self.head + 1
        at = SLOTS_AT + (seq % self.slots) * SLOT_SIZE
        self._put(at, 0)
        struct.pack_into("<IIQQ", self.mm, at + 8, kind, 0, nsh, kh)
        self._put(at, seq)
        self._put(64, seq)
        return seq

    def key(self, ns: bytes, key: bytes) -> int:
        """Publishes that (ns, key) changed."""
        return self.publish(KIND_KEY, fnv1a64(ns), fnv1a64(key))

    def bump(self, ns: bytes) -> int:
        """Publishes that every key of ns changed."""
        return self.publish(KIND_NAMESPACE, fnv1a64(ns), 0)

    def tear(self, seq: int) -> None:
        """Leaves slot ``seq`` half rewritten (its seq 0)."""
        self._put(SLOTS_AT + (seq % self.slots) * SLOT_SIZE, 0)

    def flush(self) -> None:
        """Raises the flush generation (the daemon emptied its L1)."""
        self._put(32, self._get(32) + 1)

    def serve_for(self, seconds: float) -> None:
        """Sets serving_until that far from now (negative: in the past)."""
        self._put(128, now_ms() + int(seconds * 1000), "<q")

    def stop(self) -> None:
        """Poisons the ring as a stopping daemon does: epoch and serving 0."""
        self._put(128, 0, "<q")
        self._put(24, 0)

    def close(self) -> None:
        self.mm.close()
