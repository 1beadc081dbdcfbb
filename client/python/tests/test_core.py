"""The sans-I/O core without sockets: SP handshake and frames, request ids,
request encoding, reply decoding and the status-to-exception mapping."""

from __future__ import annotations

import struct
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import nearcache
from nearcache import _core, _sp
from nearcache._pb import nearcache_pb2 as pb


def reply_frame(sp_id: int, reply: pb.Reply) -> bytes:
    body = reply.SerializeToString()
    return b"\x01" + struct.pack(">Q", 4 + len(body)) + struct.pack(">I", sp_id) + body


def test_handshake_names_req0_and_accepts_only_rep0() -> None:
    assert _sp.handshake() == b"\x00SP\x00\x00\x30\x00\x00"
    _sp.check_handshake(b"\x00SP\x00\x00\x31\x00\x00")
    with pytest.raises(nearcache.ProtocolError, match="0x30"):
        _sp.check_handshake(b"\x00SP\x00\x00\x30\x00\x00")
    with pytest.raises(nearcache.ProtocolError, match="not an SP peer"):
        _sp.check_handshake(b"HTTP/1.1")


def test_request_ids_have_the_top_bit_set_and_wrap_within_31_bits() -> None:
    assert _sp.request_id(1) == 0x80000001
    assert _sp.request_id(0x7FFFFFFF) == 0xFFFFFFFF
    assert _sp.request_id(0x80000000) == 0x80000000


def test_a_frame_is_type_length_id_body() -> None:
    assert (
        _sp.frame(0x80000007, b"abc")
        == b"\x01" + (7).to_bytes(8, "big") + bytes.fromhex("80000007") + b"abc"
    )


def test_the_worked_example_get_encodes_as_the_protocol_doc_shows() -> None:
    call = _core.get("users", b"42")
    proto = _core.Protocol()
    proto._next = 7
    sp_id, data = proto.encode(call, 250)
    assert sp_id == 0x80000007
    assert data[13:] == bytes.fromhex("08 07 10 fa 01 52 0b 0a 05 75 73 65 72 73 12 02 34 32")


def test_set_leaves_the_ttl_out_when_none_and_sends_it_when_given() -> None:
    assert not _core.set_("n", "k", "v").request.set.HasField("ttl_ms")  # type: ignore[union-attr]
    sent = _core.set_("n", "k", "v", timedelta(minutes=5)).request
    assert sent is not None and sent.set.ttl_ms == 300000
    sent = _core.set_("n", "k", "v", 0.0001).request
    assert sent is not None and sent.set.ttl_ms == 1  # a fraction of a ms rounds up, never to 0


def test_keys_accept_str_and_bytes_and_refuse_other_types() -> None:
    a = _core.get("ns", "ключ").request
    b = _core.get(b"ns", "ключ".encode()).request
    assert a == b
    with pytest.raises(TypeError, match="key must be str or bytes"):
        _core.get("ns", 42)  # type: ignore[arg-type]


def test_replies_are_cut_from_bytes_however_they_arrive() -> None:
    proto = _core.Protocol()
    stream = _sp.handshake(_sp.PROTO_REP)
    for i in (1, 2, 3):
        stream += reply_frame(_sp.request_id(i), pb.Reply(id=i, code=pb.OK))
    got: list[tuple[int, bytes]] = []
    for i in range(len(stream)):  # one byte at a time
        got += proto.receive(stream[i : i + 1])
    assert [sp_id for sp_id, _ in got] == [0x80000001, 0x80000002, 0x80000003]
    assert pb.Reply.FromString(got[2][1]).id == 3


def test_a_frame_of_another_type_is_a_protocol_error() -> None:
    proto = _core.Protocol()
    with pytest.raises(nearcache.ProtocolError, match="frame type"):
        proto.receive(_sp.handshake(_sp.PROTO_REP) + b"\x02" + bytes(12))


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (pb.INVALID_ARGUMENT, nearcache.InvalidArgument),
        (pb.DEADLINE_EXCEEDED, nearcache.DeadlineExceeded),
        (pb.NOT_FOUND, nearcache.NotFound),
        (pb.PERMISSION_DENIED, nearcache.PermissionDenied),
        (pb.RESOURCE_EXHAUSTED, nearcache.ResourceExhausted),
        (pb.FAILED_PRECONDITION, nearcache.FailedPrecondition),
        (pb.ABORTED, nearcache.Aborted),
        (pb.UNIMPLEMENTED, nearcache.Unimplemented),
        (pb.INTERNAL, nearcache.Internal),
        (pb.UNAVAILABLE, nearcache.Unavailable),
        (pb.DATA_LOSS, nearcache.Error),
    ],
)
def test_each_status_code_raises_its_exception_with_the_daemons_message(
    code: int, cls: type[nearcache.Error]
) -> None:
    call = _core.delete("n", "k")
    reply = pb.Reply(id=0, code=code, message="the daemon says why")  # type: ignore[arg-type]
    with pytest.raises(nearcache.Error) as e:
        _core.finish(call, reply.SerializeToString())
    assert type(e.value) is cls
    assert e.value.message == "the daemon says why"
    assert e.value.code == code
    assert e.value.code_name == pb.Code.Name(code)


def test_a_get_not_found_is_none_and_keeps_negative() -> None:
    call = _core.get("n", "k")
    call.request.id = 3  # type: ignore[union-attr]
    body = pb.Reply(
        id=3, code=pb.NOT_FOUND, message="known absent", get=pb.GetReply(negative=True)
    ).SerializeToString()
    res = _core.finish(call, body)
    assert res.value is None and res.negative and not res.found


def test_a_granted_lease_has_no_value_but_an_empty_value_is_found() -> None:
    granted = pb.Reply(get=pb.GetReply(lease=pb.LEASE_GRANTED, lease_token=b"t-1"))
    res = _core.finish(_core.get("n", "k", lease=True), granted.SerializeToString())
    assert res.value is None and res.lease is nearcache.LeaseState.GRANTED
    assert res.lease_token == b"t-1"
    empty = pb.Reply(get=pb.GetReply(source=pb.SOURCE_L2))
    assert _core.finish(_core.get("n", "k"), empty.SerializeToString()).value == b""


def test_a_reply_with_another_id_is_a_protocol_error() -> None:
    call = _core.ping()
    call.request.id = 4  # type: ignore[union-attr]
    with pytest.raises(nearcache.ProtocolError, match="does not match"):
        _core.finish(call, pb.Reply(id=5).SerializeToString())


def test_ping_gives_the_protocol_version_and_refuses_another() -> None:
    old = pb.Reply(ping=pb.PingReply(version="0.0.9"))  # from before the field: version 1
    info = _core.finish(_core.ping(), old.SerializeToString())
    assert (info.version, info.protocol_version) == ("0.0.9", 1)
    other = pb.Reply(ping=pb.PingReply(version="9.0.0", protocol_version=2))
    with pytest.raises(nearcache.ProtocolError, match="wire protocol version 2, this client 1"):
        _core.finish(_core.ping(), other.SerializeToString())


def test_an_mset_that_failed_in_part_names_the_keys_to_retry() -> None:
    items = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]
    reply = pb.Reply(
        code=pb.UNAVAILABLE,
        message="redis: down (2 of 4 entries stored, one hash slot at a time)",
        mset=pb.MSetReply(
            stored=1,
            failed=[
                pb.MSetFailure(index=[1, 3], code=pb.UNAVAILABLE, message="down"),
                pb.MSetFailure(index=[2], code=pb.UNAVAILABLE, maybe_stored=True),
            ],
        ),
    )
    with pytest.raises(nearcache.Unavailable, match="2 of 4") as err:
        _core.finish(_core.mset("n", items), reply.SerializeToString())
    assert err.value.not_stored == [b"b", b"d"]
    assert err.value.maybe_stored == [b"c"]
    # an error without an MSetReply says nothing of the entries
    refused = pb.Reply(code=pb.INVALID_ARGUMENT, message="entry 0 has a negative ttl_ms")
    with pytest.raises(nearcache.InvalidArgument) as refusal:
        _core.finish(_core.mset("n", items), refused.SerializeToString())
    assert refusal.value.not_stored is None and refusal.value.maybe_stored is None


def test_bytes_that_are_not_a_reply_are_a_protocol_error() -> None:
    with pytest.raises(nearcache.ProtocolError, match=r"not a nearcache\.v1\.Reply"):
        _core.finish(_core.ping(), b"\xff\xff\xff")


def test_url_comes_from_the_argument_then_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NEARCACHE_URL", raising=False)
    assert _core.resolve_url(None) == "ipc:///run/nearcache/nearcached.sock"
    monkeypatch.setenv("NEARCACHE_URL", "ipc:///tmp/x.sock")
    assert _core.resolve_url(None) == "ipc:///tmp/x.sock"
    assert nearcache.Client().url == "ipc:///tmp/x.sock"
    assert _core.resolve_url("ipc:///y") == "ipc:///y"


def test_other_transports_are_refused() -> None:
    with pytest.raises(nearcache.InvalidArgument, match="ipc://PATH only"):
        nearcache.Client("tcp://127.0.0.1:5555")


def test_the_near_tier_is_on_by_default_and_off_with_zero_bytes() -> None:
    assert nearcache.Client("ipc:///x").near_stats() is not None
    assert nearcache.Client("ipc:///x", near_bytes=0).near_stats() is None
    assert nearcache.AsyncClient("ipc:///x", near_bytes=0).near_stats() is None
    with pytest.raises(ValueError, match="near_bytes"):
        nearcache.Client("ipc:///x", near_bytes=-1)


def test_a_request_over_the_daemons_limit_is_refused() -> None:
    with pytest.raises(nearcache.ResourceExhausted, match="larger than the daemon accepts"):
        _core.check_size(2000, 1000)
    _core.check_size(2000, None)


def test_the_committed_gencode_is_what_protoc_makes_from_the_proto() -> None:
    tool = Path(__file__).resolve().parents[1] / "tools" / "genproto.py"
    out = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_installed_version_is_the_repositorys() -> None:
    root = Path(__file__).resolve().parents[3]
    assert nearcache.__version__ == (root / "VERSION").read_text().strip()
