'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const sp = require('../lib/sp');
const { ProtocolError } = require('../lib/errors');

function reply(spId, body) {
  const b = Buffer.alloc(9 + 4 + body.length);
  b[0] = 1;
  b.writeUInt32BE(4 + body.length, 5);
  b.writeUInt32BE(spId, 9);
  Buffer.from(body).copy(b, 13);
  return b;
}

test('the handshake names REQ and accepts only a REP peer', () => {
  assert.equal(sp.handshake().toString('hex'), '0053500000300000');
  sp.checkHandshake(sp.handshake(sp.PROTO_REP));
  assert.throws(() => sp.checkHandshake(sp.handshake(sp.PROTO_REQ)), /protocol 0x30, expected 0x31/);
  assert.throws(() => sp.checkHandshake(Buffer.from('HTTP/1.1')), ProtocolError);
});

test('a frame is a type byte, a 64-bit length, the id with its top bit, then the body', () => {
  const f = sp.frame(sp.requestId(7), Buffer.from('ab'));
  assert.equal(f.toString('hex'), '01' + '0000000000000006' + '80000007' + '6162');
  assert.equal(sp.requestId(0x80000005), 0x80000005);
});

test('replies are cut out of bytes however they arrive', () => {
  const r = new sp.FrameReader();
  const all = Buffer.concat([reply(0x80000001, 'one'), reply(0x80000002, ''), reply(0x80000003, 'three')]);
  const got = [];
  for (let i = 0; i < all.length; i += 3) {
    r.feed(all.subarray(i, i + 3));
    for (let x = r.next(); x !== null; x = r.next()) got.push([x.spId, x.body.toString()]);
  }
  assert.deepEqual(got, [[0x80000001, 'one'], [0x80000002, ''], [0x80000003, 'three']]);
});

test('bytes no REP peer sends are a ProtocolError', () => {
  const r = new sp.FrameReader(100);
  r.feed(Buffer.from('020000000000000004', 'hex'));
  assert.throws(() => r.next(), /unknown IPC frame type 0x2/);
  const big = new sp.FrameReader(100);
  big.feed(Buffer.from('010000000000001000', 'hex'));
  assert.throws(() => big.next(), /reply frame of 4096 bytes/);
  const hop = new sp.FrameReader();
  hop.feed(reply(1, 'x'));
  assert.throws(() => hop.next(), /backtrace longer than one hop/);
});
