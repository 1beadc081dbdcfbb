// Scalability Protocols (SP) over IPC without I/O: the REQ side of nng's
// ipc:// transport (docs/protocol.md, "SP over IPC without nng"). A
// connection starts with each side sending 8 bytes naming its protocol (REQ
// 0x30, REP 0x31); then every message is a frame: a byte 0x01, a 64-bit
// big-endian length, the SP header (a 32-bit request id, top bit set) and the
// body. The REP side echoes the header, so a reply names its request.
'use strict';
const { ProtocolError } = require('./errors');

const PROTO_REQ = 0x30;
const PROTO_REP = 0x31;
const HANDSHAKE_LEN = 8;
const HEAD = 9; // kind byte and 64-bit length
const ID_BIT = 0x80000000;

/** Returns the 8 bytes a peer of protocol `proto` sends first. */
function handshake(proto = PROTO_REQ) {
  return Buffer.from([0, 0x53, 0x50, 0, proto >> 8, proto & 0xff, 0, 0]);
}

/** Throws ProtocolError unless `b` is the handshake of an SP peer of protocol `expect`. */
function checkHandshake(b, expect = PROTO_REP) {
  if (b.length !== HANDSHAKE_LEN || b[0] !== 0 || b[1] !== 0x53 || b[2] !== 0x50 || b[3] !== 0 ||
      b[6] !== 0 || b[7] !== 0)
    throw new ProtocolError(`not an SP peer: handshake ${b.toString('hex')}`);
  const proto = b.readUInt16BE(4);
  if (proto !== expect)
    throw new ProtocolError(`peer speaks SP protocol 0x${proto.toString(16)}, expected 0x${expect.toString(16)}`);
}

/** Returns the SP request id for the n-th request: 31 bits of n, top bit set. */
function requestId(n) {
  return (ID_BIT | (n & 0x7fffffff)) >>> 0;
}

/** Returns one frame carrying a request: header `spId`, then `body`. */
function frame(spId, body) {
  const out = Buffer.allocUnsafe(HEAD + 4 + body.length);
  out[0] = 1;
  out.writeUInt32BE(0, 1);
  out.writeUInt32BE(4 + body.length, 5);
  out.writeUInt32BE(spId, HEAD);
  out.set(body, HEAD + 4);
  return out;
}

/**
 * Collects bytes from the REP peer and cuts them into replies: feed() what
 * the socket gave, then take replies with next() until it returns null.
 * Throws ProtocolError on a frame no REP peer sends or larger than maxSize.
 */
class FrameReader {
  constructor(maxSize = 2 ** 31) {
    this.max = maxSize;
    this.chunks = [];
    this.have = 0;
    this.need = HEAD; // bytes of the next header or body
    this.inBody = false;
  }

  feed(chunk) {
    this.chunks.push(chunk);
    this.have += chunk.length;
  }

  take(n) {
    const first = this.chunks[0];
    let out;
    if (first.length === n) {
      out = this.chunks.shift();
    } else if (first.length > n) {
      out = first.subarray(0, n);
      this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.have -= n;
    return out;
  }

  /** Returns the next complete reply as {spId, body}, or null. */
  next() {
    for (;;) {
      if (this.have < this.need) return null;
      if (!this.inBody) {
        const h = this.take(HEAD);
        if (h[0] !== 1) throw new ProtocolError(`unknown IPC frame type 0x${h[0].toString(16)}`);
        const size = h.readUInt32BE(1) * 2 ** 32 + h.readUInt32BE(5);
        if (size < 4 || size > this.max) throw new ProtocolError(`reply frame of ${size} bytes`);
        this.need = size;
        this.inBody = true;
        continue;
      }
      const b = this.take(this.need);
      this.need = HEAD;
      this.inBody = false;
      const spId = b.readUInt32BE(0);
      if (!(spId & ID_BIT)) throw new ProtocolError('reply backtrace longer than one hop');
      return { spId, body: b.subarray(4) };
    }
  }
}

module.exports = { PROTO_REQ, PROTO_REP, HANDSHAKE_LEN, handshake, checkHandshake, requestId, frame, FrameReader };
