// The wire messages (lib/gen/nearcache_pb.js, generated from
// proto/nearcache.proto) and the two functions the client uses: encode a
// Request, decode a Reply. 64-bit integers are decoded as numbers (exact up
// to 2^53: TTLs in ms, counters and namespace versions made from Redis's
// clock in microseconds stay far below), by a reader of our own, so that
// the protobufjs instance other code in the process may share keeps its
// settings.
'use strict';
const protobuf = require('protobufjs/minimal');
const { nearcache } = require('./gen/nearcache_pb');

const v1 = nearcache.v1;
const TWO64 = 2 ** 64;

function NumReader(buf) {
  protobuf.BufferReader.call(this, buf);
}
NumReader.prototype = Object.create(protobuf.BufferReader.prototype);
NumReader.prototype.constructor = NumReader;
NumReader.prototype.uint64 = function uint64() {
  const buf = this.buf;
  let pos = this.pos;
  let v = 0;
  let mul = 1;
  for (;;) {
    if (pos >= this.len) throw RangeError('varint runs past the end of the message');
    const b = buf[pos++];
    v += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 128;
  }
  this.pos = pos;
  return v;
};
NumReader.prototype.int64 = function int64() {
  const v = this.uint64();
  return v >= 2 ** 63 ? v - TWO64 : v;
};

/** Returns the bytes of a nearcache.v1.Request made from a plain object. */
function encodeRequest(obj) {
  return v1.Request.encode(obj).finish();
}

/** Returns the Reply in `buf`; throws on bytes that are not one. */
function decodeReply(buf) {
  return v1.Reply.decode(new NumReader(buf));
}

module.exports = { v1, encodeRequest, decodeReply };
