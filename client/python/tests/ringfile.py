"""A ring writer for the tests: what the daemon does to its ring file
(common/ring.c), and the writer ops of tests/conformance/ring.json's
scenarios (docs/protocol.md, "The reader's scenarios"), so the tests can
publish, flush, stop, lap and tear slots at will."""

from __future__ import annotations

import mmap
import os
import random
import struct
from pathlib import Path

from nearcache._ring import (
    EPOCH_AT,
    FLUSH_GEN_AT,
    HEAD_AT,
    KIND_KEY,
    KIND_NAMESPACE,
    LAYOUT,
    MAGIC,
    SERVING_UNTIL_AT,
    SLOT_KEY_HASH_AT,
    SLOT_KIND_AT,
    SLOT_NS_HASH_AT,
    SLOT_SEQ_AT,
    SLOT_SIZE,
    SLOTS_AT,
    fnv1a64,
    now_ms,
)


def replace_file(path: Path, content: bytes) -> None:
    """Writes ``content`` as the file at ``path``: under a temporary name,
    then renamed, as the daemon makes its ring (a new file for readers)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.rename(tmp, path)


class RingWriter:
    """Makes the ring file at ``path`` with ``slots`` slots, an epoch
    (random unless given) and serving_until ``serving`` seconds from now
    (0: not serving); ``layout``, ``slot_size`` and ``length`` make a file
    that is not a ring of this layout."""

    def __init__(
        self,
        path: Path,
        slots: int = 64,
        serving: float = 60.0,
        *,
        epoch: int | None = None,
        layout: int = LAYOUT,
        slot_size: int = SLOT_SIZE,
        length: int | None = None,
    ) -> None:
        self.path = path
        self.slots = slots
        self.epoch = random.getrandbits(63) | 1 if epoch is None else epoch
        size = SLOTS_AT + slots * SLOT_SIZE if length is None else length
        head = bytearray(max(size, SLOTS_AT))
        struct.pack_into("<8sIIQ", head, 0, MAGIC, layout, slot_size, slots)
        struct.pack_into("<Q", head, EPOCH_AT, self.epoch)
        if serving:
            struct.pack_into("<q", head, SERVING_UNTIL_AT, now_ms() + int(serving * 1000))
        replace_file(path, bytes(head[:size]))
        fd = os.open(path, os.O_RDWR)
        try:
            self.mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)

    def _put(self, at: int, v: int, fmt: str = "<Q") -> None:
        struct.pack_into(fmt, self.mm, at, v)

    def _get(self, at: int) -> int:
        v: int = struct.unpack_from("<Q", self.mm, at)[0]
        return v

    @property
    def head(self) -> int:
        return self._get(HEAD_AT)

    def publish(self, kind: int, nsh: int, kh: int) -> int:
        """Publishes one slot, seqlock-style; returns its seq."""
        seq = self.head + 1
        at = SLOTS_AT + (seq % self.slots) * SLOT_SIZE
        self._put(at + SLOT_SEQ_AT, 0)
        self._put(at + SLOT_KIND_AT, kind, "<I")
        self._put(at + SLOT_NS_HASH_AT, nsh)
        self._put(at + SLOT_KEY_HASH_AT, kh)
        self._put(at + SLOT_SEQ_AT, seq)
        self._put(HEAD_AT, seq)
        return seq

    def key(self, ns: bytes, key: bytes) -> int:
        """Publishes that (ns, key) changed."""
        return self.publish(KIND_KEY, fnv1a64(ns), fnv1a64(key))

    def bump(self, ns: bytes) -> int:
        """Publishes that every key of ns changed."""
        return self.publish(KIND_NAMESPACE, fnv1a64(ns), 0)

    def tear(self, seq: int) -> None:
        """Leaves slot ``seq`` half rewritten (its seq 0)."""
        self._put(SLOTS_AT + (seq % self.slots) * SLOT_SIZE + SLOT_SEQ_AT, 0)

    def flush(self) -> None:
        """Raises the flush generation (the daemon emptied its L1)."""
        self._put(FLUSH_GEN_AT, self._get(FLUSH_GEN_AT) + 1)

    def set_epoch(self, epoch: int) -> None:
        self._put(EPOCH_AT, epoch)

    def set_head(self, head: int) -> None:
        self._put(HEAD_AT, head)

    def serve_until(self, until_ms: int) -> None:
        """Sets serving_until (``CLOCK_MONOTONIC`` ms; 0: not serving)."""
        self._put(SERVING_UNTIL_AT, until_ms, "<q")

    def serve_for(self, seconds: float) -> None:
        """Sets serving_until that far from now (negative: in the past)."""
        self.serve_until(now_ms() + int(seconds * 1000))

    def stop(self) -> None:
        """Poisons the ring as a stopping daemon does (epoch and serving 0)
        and removes its file."""
        self.serve_until(0)
        self.set_epoch(0)
        self.path.unlink()

    def close(self) -> None:
        self.mm.close()
