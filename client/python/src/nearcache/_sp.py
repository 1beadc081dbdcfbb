"""Scalability Protocols (SP) over IPC, without I/O: the REQ side of nng's
``ipc://`` transport, as plain functions and one buffer class.

A connection starts with each side sending an 8-byte header naming its
protocol (REQ is 0x30, its peer REP 0x31). Then every message is a frame:
one byte ``0x01``, an 8-byte big-endian length, and that many bytes: the SP
header (for REQ/REP, a 32-bit request id with its top bit set) followed by
the body. The REP side echoes the header, so a reply names its request.
"""

from __future__ import annotations

import struct

from .errors import ProtocolError

__all__ = [
    "HANDSHAKE_LEN",
    "PROTO_REP",
    "PROTO_REQ",
    "FrameReader",
    "check_handshake",
    "frame",
    "handshake",
    "request_id",
]

PROTO_REQ = 0x30
PROTO_REP = 0x31
HANDSHAKE_LEN = 8
_MSG = 0x01
_FRAME_HEAD = struct.Struct(">BQ")
_ID = struct.Struct(">I")
_ID_BIT = 0x80000000


def handshake(proto: int = PROTO_REQ) -> bytes:
    """Returns the 8 bytes a peer of protocol ``proto`` sends first."""
    return b"\x00SP\x00" + struct.pack(">H", proto) + b"\x00\x00"


def check_handshake(data: bytes, expect: int = PROTO_REP) -> None:
    """Checks the peer's 8-byte header; raises ProtocolError unless it is an
    SP header of protocol ``expect``."""
    if len(data) != HANDSHAKE_LEN or data[:4] != b"\x00SP\x00" or data[6:] != b"\x00\x00":
        raise ProtocolError(f"not an SP peer: handshake {data.hex()}")
    proto = struct.unpack(">H", data[4:6])[0]
    if proto != expect:
        raise ProtocolError(f"peer speaks SP protocol 0x{proto:x}, expected 0x{expect:x}")


def request_id(n: int) -> int:
    """Returns the SP request id for the n-th request: 31 bits of n with the
    top bit set (REQ/REP marks the last element of the backtrace so)."""
    return _ID_BIT | (n & 0x7FFFFFFF)


def frame(sp_id: int, body: bytes) -> bytes:
    """Returns one IPC frame carrying a REQ message: header ``sp_id``, then
    ``body``."""
    return _FRAME_HEAD.pack(_MSG, 4 + len(body)) + _ID.pack(sp_id) + body


class FrameReader:
    """Collects bytes from the REP peer and cuts them into replies.

    Feed it whatever the socket gave with :meth:`feed`; :meth:`replies`
    returns each complete reply as ``(sp_id, body)``. Raises ProtocolError on
    a frame that no REP peer sends, or larger than ``max_size``."""

    def __init__(self, max_size: int = 1 << 31) -> None:
        self._buf = bytearray()
        self._max = max_size

    def feed(self, data: bytes) -> None:
        """Appends bytes read from the connection."""
        self._buf += data

    def replies(self) -> list[tuple[int, bytes]]:
        """Returns the complete replies buffered so far, in order."""
        out: list[tuple[int, bytes]] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= _FRAME_HEAD.size:
            kind, size = _FRAME_HEAD.unpack_from(buf, pos)
            if kind != _MSG:
                raise ProtocolError(f"unknown IPC frame type 0x{kind:02x}")
            if size < 4 or size > self._max:
                raise ProtocolError(f"reply frame of {size} bytes")
            end = pos + _FRAME_HEAD.size + size
            if len(buf) < end:
                break
            start = pos + _FRAME_HEAD.size
            # The backtrace ends with the element whose top bit is set: our id.
            sp_id = _ID.unpack_from(buf, start)[0]
            if not sp_id & _ID_BIT:
                raise ProtocolError("reply backtrace longer than one hop")
            out.append((sp_id, bytes(buf[start + 4 : end])))
            pos = end
        if pos:
            del buf[:pos]
        return out

    def pending(self) -> int:
        """Returns the number of bytes of an incomplete frame held."""
        return len(self._buf)
