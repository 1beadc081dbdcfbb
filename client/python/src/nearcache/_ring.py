"""The reader of the daemon's invalidation ring (docs/protocol.md, "The
near-tier ring"): the file mapped read-only and shared, its header checked,
its fields and slots read as the writer's seqlock requires.

The layout's constants below are common/ring.h's; a test checks them
against it and against tests/conformance/ring.json, whose scenarios the
near tier (``_near``) runs.

Every 8-byte field is read with one copy of its 8 aligned bytes: a slot's
with ``struct.unpack_from`` in native byte order, the header's (on every
lookup) by indexing a ``memoryview`` cast to 8-byte words, both of which
CPython does with one ``memcpy`` (one load on x86-64 and arm64, but CPython
promises no atomicity). The reads follow the writer's order (serving_until
before the head, seq before and after a slot's fields), which x86-64 keeps
for loads; on weaker memory models the interpreter's own work between two
reads is all that orders them. The reader is written to stay safe if a copy
is ever torn by a concurrent write:

- a slot's seq: while the daemon rewrites slot *s* its seq goes from
  *s* - count to 0 to *s*, and a mix of those bytes is never *s* (where it
  differs from *s* it holds bytes of 0 or of the smaller *s* - count). A
  torn seq therefore reads as being lapped, and the tier empties itself;
  that is why seq is read before and after the slot's fields, not trusted
  from the one copy of the whole slot;
- the epoch and the flush generation: a torn value differs from the one
  seen, which empties the tier;
- the head: a torn head past the real one names slots not written yet,
  which read as a lap; a head that then reads below the cursor empties the
  tier again (the near tier checks both), so no slot is skipped;
- serving_until is rewritten only by a daemon that just heard its own
  heartbeat, and set to 0 when it stops (a mix with 0 is never larger).
"""

from __future__ import annotations

import mmap
import os
import struct
import sys
import time
from dataclasses import dataclass

__all__ = [
    "KIND_KEY",
    "KIND_NAMESPACE",
    "RECHECK_MS",
    "STAMPS",
    "RingError",
    "RingReader",
    "Slot",
    "default_path",
    "fnv1a64",
    "key_mix",
    "now_ms",
]

# common/ring.h's RING_* (little-endian; offsets in bytes).
MAGIC = b"NCRING\0\0"
LAYOUT = 1
SLOT_SIZE = 32
SLOTS_AT = 192
SLOTS_MIN = 64
SLOTS_MAX = 1 << 24
LAYOUT_AT = 8
SLOT_SIZE_AT = 12
SLOT_COUNT_AT = 16
EPOCH_AT = 24
FLUSH_GEN_AT = 32
HEAD_AT = 64
SERVING_UNTIL_AT = 128
SLOT_SEQ_AT = 0  # a slot's fields, from the slot's start
SLOT_KIND_AT = 8
SLOT_NS_HASH_AT = 16
SLOT_KEY_HASH_AT = 24
KIND_KEY = 1
KIND_NAMESPACE = 2
#: A reader's stamps of each kind (docs/protocol.md, "The reader").
STAMPS = 4096
#: How often (ms) a reader that cannot serve looks for a new ring file.
RECHECK_MS = 100
SUFFIX = ".ring"

#: The header's fields as indexes of 8-byte words (RingReader.words).
EPOCH, GEN, HEAD, UNTIL = EPOCH_AT // 8, FLUSH_GEN_AT // 8, HEAD_AT // 8, SERVING_UNTIL_AT // 8

if sys.byteorder != "little":  # pragma: no cover
    raise ImportError("the near-tier ring is little-endian; this machine is not")
# Native formats: CPython copies each field with one memcpy (see above).
_u64 = struct.Struct("=Q").unpack_from
_i64 = struct.Struct("=q").unpack_from
_header = struct.Struct("<8sIIQ").unpack_from  # magic, then LAYOUT_AT to SLOT_COUNT_AT
_fields = struct.Struct("=I4xQQ").unpack_from  # kind, ns hash, key hash

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def fnv1a64(data: bytes) -> int:
    """Returns the FNV-1a 64-bit hash of ``data``: what a slot carries for
    a namespace or a key."""
    h = _FNV_OFFSET
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK64
    return h


def key_mix(ns_hash: int, key_hash: int) -> int:
    """Returns the mix of a key's two hashes whose value mod STAMPS indexes
    its stamp (common/ring.h's ring_key_mix)."""
    x = ns_hash ^ ((key_hash * 0x9E3779B97F4A7C15) & _MASK64)
    return x ^ (x >> 29)


def default_path(url: str) -> str:
    """Returns the ring file of a daemon listening on ``url``: an
    ``ipc://`` socket's path + ``.ring``; "" for another transport."""
    return url[len("ipc://") :] + SUFFIX if url.startswith("ipc://") else ""


def now_ms() -> int:
    """Returns ``CLOCK_MONOTONIC`` in whole milliseconds, the clock of the
    ring's ``serving_until``."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000_000


class RingError(Exception):
    """The file is missing, unreadable, or not a ring of this layout."""


@dataclass(frozen=True)
class Slot:
    """One slot, read whole."""

    seq: int
    kind: int
    ns_hash: int
    key_hash: int


class RingReader:
    """The ring file at ``path`` mapped read-only. Raises RingError naming
    the file when it cannot be mapped or its header is not a ring of this
    layout (magic, layout version, slot size and count, file size). Not
    thread-safe: the near tier calls it under its lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise RingError(f"near ring {path}: {e.strerror or e}") from None
        try:
            st = os.fstat(fd)
            if st.st_size < SLOTS_AT:
                raise RingError(f"near ring {path}: too short for a ring header")
            try:
                self._mm = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ)
            except (OSError, ValueError) as e:
                raise RingError(f"near ring {path}: {e}") from None
        finally:
            os.close(fd)
        self.dev, self.ino = st.st_dev, st.st_ino
        magic, layout, slot_size, slots = _header(self._mm, 0)
        problem = None
        if magic != MAGIC:
            problem = "not a near ring (bad magic)"
        elif layout != LAYOUT:
            problem = f"a ring of another layout version ({layout}; this client reads {LAYOUT})"
        elif (
            slot_size != SLOT_SIZE
            or not SLOTS_MIN <= slots <= SLOTS_MAX
            or slots & (slots - 1) != 0
        ):
            problem = "a ring header with a bad slot size or count"
        elif st.st_size < SLOTS_AT + slots * SLOT_SIZE:
            problem = "truncated: shorter than its slots"
        if problem is not None:
            self._mm.close()
            raise RingError(f"near ring {path}: {problem}")
        self.slots: int = slots
        self._mask = slots - 1
        # The header as 8-byte words (indexing copies one word with memcpy,
        # like unpack_from, and is the cheapest read): unsigned and signed.
        self.words = memoryview(self._mm)[:SLOTS_AT].cast("Q")
        self.swords = memoryview(self._mm)[:SLOTS_AT].cast("q")

    def epoch(self) -> int:
        """The daemon's epoch: new at each start, 0 once it stopped."""
        v: int = _u64(self._mm, EPOCH_AT)[0]
        return v

    def flush_gen(self) -> int:
        """The flush generation: raised each time the daemon empties its L1."""
        v: int = _u64(self._mm, FLUSH_GEN_AT)[0]
        return v

    def head(self) -> int:
        """The sequence number of the last slot published (0: none yet)."""
        v: int = _u64(self._mm, HEAD_AT)[0]
        return v

    def serving_until(self) -> int:
        """``CLOCK_MONOTONIC`` ms until which the daemon's L1 may serve (0: not)."""
        v: int = _i64(self._mm, SERVING_UNTIL_AT)[0]
        return v

    def header(self) -> tuple[int, int, int, int]:
        """Returns (epoch, serving_until, flush generation, head), each read
        on its own, in that order: serving_until before the head, so that a
        reader that sees a fresh serving_until also sees every slot the
        daemon published before it."""
        w = self.words
        return w[EPOCH], self.swords[UNTIL], w[GEN], w[HEAD]

    def slot(self, seq: int) -> Slot | None:
        """Reads slot ``seq`` (1 <= seq <= head). Returns it when its seq
        reads ``seq`` before and after its fields, else None: the daemon
        overwrote it (this reader was lapped) or is rewriting it."""
        mm = self._mm
        at = SLOTS_AT + (seq & self._mask) * SLOT_SIZE
        if _u64(mm, at + SLOT_SEQ_AT)[0] != seq:
            return None
        kind, nsh, kh = _fields(mm, at + SLOT_KIND_AT)
        if _u64(mm, at + SLOT_SEQ_AT)[0] != seq:
            return None
        return Slot(seq, kind, nsh, kh)

    def replaced(self) -> bool:
        """Whether the path now names another file (the daemon restarted and
        made a new ring), or none."""
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != (self.dev, self.ino)

    def close(self) -> None:
        """Unmaps the file."""
        self.words.release()
        self.swords.release()
        self._mm.close()
