"""Property-based fuzzing (hypothesis) of the Python client's decoders of
bytes from outside the process, as tests/fuzz does for the C ones
(docs/fuzzing.md): the connection's bytes (SP handshake, frames, the Reply
protobuf and each call's reading of it), and the near tier's ring reader
on any file, valid or not, changing under it. Each either works or raises
the client's own errors, never anything else."""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nearcache import _core, _sp
from nearcache._pb import nearcache_pb2 as pb
from nearcache._ring import MAGIC, SLOT_SIZE, SLOTS_AT, SLOTS_MIN, RingError, RingReader
from nearcache.errors import Error

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CALLS: list[Callable[[], _core.Call[Any]]] = [
    lambda: _core.get("users", "42"),
    lambda: _core.set_("users", "42", b"v"),
    lambda: _core.delete("users", "42"),
    lambda: _core.mget("users", ["1", "2", "3"]),
    lambda: _core.mset("users", {"1": b"a"}),
    lambda: _core.bump("users"),
    _core.stats,
    _core.ping,
]


def _reply_bodies() -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, and real replies with bytes changed in them."""
    real = [
        pb.Reply(id=1, code=pb.NOT_FOUND, message="not found"),
        pb.Reply(id=1, get=pb.GetReply(value=b"bob", source=pb.SOURCE_L1, ttl_ms=5000)),
        pb.Reply(
            id=1, mget=pb.MGetReply(items=[pb.MGetItem(found=True, get=pb.GetReply(value=b"a"))])
        ),
        pb.Reply(id=1, stats=pb.StatsReply(stats=[pb.Stat(name="requests", value=3)])),
        pb.Reply(id=1, ping=pb.PingReply(version="0.1.0", protocol_version=1)),
    ]
    seeds = st.sampled_from([r.SerializeToString() for r in real])
    mutated = st.tuples(seeds, st.integers(0, 64), st.binary(max_size=4)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + len(t[2]) :]
    )
    return st.one_of(st.binary(max_size=200), mutated)


@FUZZ
@given(body=_reply_bodies(), which=st.integers(0, len(CALLS) - 1))
def test_any_reply_body_decodes_or_raises_a_client_error(body: bytes, which: int) -> None:
    call = CALLS[which]()
    if call.request is not None:
        call.request.id = 1
    with contextlib.suppress(Error):
        _core.finish(call, body)


@FUZZ
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=6))
def test_any_bytes_from_the_daemon_frame_or_raise_a_protocol_error(
    data: bytes, cuts: list[int]
) -> None:
    proto = _core.Protocol()
    stream = _sp.handshake(_sp.PROTO_REP) + data
    at = 0
    try:
        for cut in [*sorted(cuts), len(stream)]:
            for sp_id, body in proto.receive(stream[at:cut]):
                assert sp_id & 0x80000000
                assert isinstance(body, bytes)
            at = max(at, cut)
    except Error:
        pass


@FUZZ
@given(bodies=st.lists(st.binary(max_size=100), max_size=5), chunk=st.integers(1, 50))
def test_frames_cut_anywhere_come_out_whole(bodies: list[bytes], chunk: int) -> None:
    stream = b"".join(_sp.frame(_sp.request_id(i + 1), b) for i, b in enumerate(bodies))
    reader = _sp.FrameReader()
    got: list[tuple[int, bytes]] = []
    for i in range(0, len(stream), chunk):
        reader.feed(stream[i : i + chunk])
        got += reader.replies()
    assert got == [(_sp.request_id(i + 1), b) for i, b in enumerate(bodies)]
    assert reader.pending() == 0


def _ring_header(slots: int) -> bytes:
    head = bytearray(SLOTS_AT)
    head[0:8] = MAGIC
    struct.pack_into("<IIQ", head, 8, 1, SLOT_SIZE, slots)
    return bytes(head)


@FUZZ
@given(
    writes=st.lists(
        st.tuples(st.integers(0, SLOTS_AT + SLOTS_MIN * SLOT_SIZE), st.binary(max_size=16)),
        max_size=12,
    ),
    grow=st.integers(-SLOTS_AT - 64, 64),
    seqs=st.lists(st.integers(0, (1 << 64) - 1), max_size=8),
)
def test_any_ring_file_maps_or_raises_a_ring_error_and_reads_any_slot(
    tmp_path_factory: Any, writes: list[tuple[int, bytes]], grow: int, seqs: list[int]
) -> None:
    path: Path = tmp_path_factory.mktemp("ring") / "nc.sock.ring"
    data = bytearray(_ring_header(SLOTS_MIN) + bytes(SLOTS_MIN * SLOT_SIZE))
    for at, b in writes[: len(writes) // 2]:  # a file someone else wrote
        data[at : at + len(b)] = b
    path.write_bytes(bytes(data[: max(0, len(data) + grow)]))
    try:
        reader = RingReader(str(path))
    except RingError:
        return
    try:
        with open(path, "r+b") as f:  # and keeps writing while it is read
            for at, b in writes[len(writes) // 2 :]:
                f.seek(min(at, os.fstat(f.fileno()).st_size))
                f.write(b[: max(0, os.fstat(f.fileno()).st_size - f.tell())])
                f.flush()
                reader.header()
                for seq in seqs:
                    slot = reader.slot(seq)
                    assert slot is None or slot.seq == seq
        reader.epoch(), reader.flush_gen(), reader.head(), reader.serving_until()
        reader.replaced()
    finally:
        reader.close()
