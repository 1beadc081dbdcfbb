package nearcache

// The hot requests (Get, Set, Delete, BumpNamespace, NearReport) are
// encoded here by hand, straight into the frame's buffer, and the Reply's
// envelope and GetReply decoded by hand, so that a round trip allocates
// nothing but the value it returns. They encode exactly as proto.Marshal
// does (wire_test.go compares them); the other methods go through the
// generated messages in internal/pb.

import (
	"encoding/binary"

	"google.golang.org/protobuf/encoding/protowire"
)

// Request and Reply field numbers (proto/nearcache.proto).
const (
	fID         = 1
	fTimeout    = 2
	fCode       = 2
	fMessage    = 3
	mGet        = 10
	mSet        = 11
	mDelete     = 12
	mStats      = 13
	mPing       = 14
	mMGet       = 15
	mMSet       = 16
	mBump       = 17
	mNearReport = 18
)

// frameHead is the IPC frame's header (a byte 1, a 64-bit length) plus the
// 4-byte SP request id that starts every REQ message.
const frameHead = 1 + 8 + 4

func sizeStr(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func sizeUint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendStr(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendEnvelope appends a Request's id, timeout_ms and the tag and length
// of its method field.
func appendEnvelope(b []byte, id uint64, timeoutMS uint32, method protowire.Number, size int) []byte {
	b = appendUint(b, fID, id)
	b = appendUint(b, fTimeout, uint64(timeoutMS))
	b = protowire.AppendTag(b, method, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(size))
}

// getReq is a GetRequest.
type getReq struct {
	ns, key  string
	lease    bool
	leaseTTL uint32
	slideTTL uint64
}

func (g *getReq) size() int {
	n := sizeStr(1, g.ns) + sizeStr(2, g.key)
	if g.lease {
		n += 2
	}
	return n + sizeUint(4, uint64(g.leaseTTL)) + sizeUint(5, g.slideTTL)
}

func (g *getReq) append(b []byte) []byte {
	b = appendStr(b, 1, g.ns)
	b = appendStr(b, 2, g.key)
	if g.lease {
		b = append(b, 3<<3, 1)
	}
	b = appendUint(b, 4, uint64(g.leaseTTL))
	return appendUint(b, 5, g.slideTTL)
}

// setReq is a SetRequest; hasTTL says whether ttl_ms (a oneof) is present.
type setReq struct {
	ns, key  string
	value    []byte
	hasTTL   bool
	ttlMS    int64
	token    []byte
	negative bool
	swrMS    uint64
}

func (s *setReq) size() int {
	n := sizeStr(1, s.ns) + sizeStr(2, s.key)
	if len(s.value) > 0 {
		n += 1 + protowire.SizeBytes(len(s.value))
	}
	if s.hasTTL {
		n += 1 + protowire.SizeVarint(uint64(s.ttlMS))
	}
	if len(s.token) > 0 {
		n += 1 + protowire.SizeBytes(len(s.token))
	}
	if s.negative {
		n += 2
	}
	return n + sizeUint(7, s.swrMS)
}

func (s *setReq) append(b []byte) []byte {
	b = appendStr(b, 1, s.ns)
	b = appendStr(b, 2, s.key)
	if len(s.value) > 0 {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, s.value)
	}
	if s.hasTTL {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s.ttlMS))
	}
	if len(s.token) > 0 {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, s.token)
	}
	if s.negative {
		b = append(b, 6<<3, 1)
	}
	return appendUint(b, 7, s.swrMS)
}

// delReq is a DeleteRequest (with a token: a lease release).
type delReq struct {
	ns, key string
	token   []byte
}

func (d *delReq) size() int {
	n := sizeStr(1, d.ns) + sizeStr(2, d.key)
	if len(d.token) > 0 {
		n += 1 + protowire.SizeBytes(len(d.token))
	}
	return n
}

func (d *delReq) append(b []byte) []byte {
	b = appendStr(b, 1, d.ns)
	b = appendStr(b, 2, d.key)
	if len(d.token) > 0 {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, d.token)
	}
	return b
}

// reply is a decoded Reply envelope; result is the raw bytes of the result
// field numbered method (they point into the frame's buffer).
type reply struct {
	id      uint64
	code    Code
	message []byte
	method  protowire.Number
	result  []byte
}

// decodeReply decodes a Reply's envelope, skipping unknown fields.
func decodeReply(b []byte, r *reply) error {
	*r = reply{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fID && typ == protowire.VarintType:
			r.id, n = protowire.ConsumeVarint(b)
		case num == fCode && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			r.code = Code(int32(v))
		case num == fMessage && typ == protowire.BytesType:
			r.message, n = protowire.ConsumeBytes(b)
		case num >= mGet && num < 30 && typ == protowire.BytesType:
			r.method = num
			r.result, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// getReply is a decoded GetReply; value and token point into the frame.
type getReply struct {
	value    []byte
	source   Source
	ttlMS    uint64
	token    []byte
	lease    LeaseState
	stale    bool
	negative bool
	staleMS  uint64
}

func decodeGetReply(b []byte, g *getReply) error {
	*g = getReply{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v uint64
		if typ == protowire.VarintType {
			v, n = protowire.ConsumeVarint(b)
			switch num {
			case 2:
				g.source = Source(v)
			case 3:
				g.ttlMS = v
			case 5:
				g.lease = LeaseState(v)
			case 6:
				g.stale = v != 0
			case 7:
				g.negative = v != 0
			case 10:
				g.staleMS = v
			}
		} else if typ == protowire.BytesType && (num == 1 || num == 4) {
			var s []byte
			s, n = protowire.ConsumeBytes(b)
			if num == 1 {
				g.value = s
			} else {
				g.token = s
			}
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// firstVarint returns field 1 of a message as a varint (SetReply.ttl_ms,
// DeleteReply.existed, BumpNamespaceReply.version, NearReportReply's
// interval_ms), or 0.
func firstVarint(b []byte) (uint64, error) {
	var out uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.VarintType {
			out, n = protowire.ConsumeVarint(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return out, nil
}

// startFrame returns b holding room for the frame head.
func startFrame(b []byte) []byte {
	return append(b[:0], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

// finishFrame fills in the frame head of b for SP request id spid.
func finishFrame(b []byte, spid uint32) {
	b[0] = 1
	binary.BigEndian.PutUint64(b[1:9], uint64(len(b)-9))
	binary.BigEndian.PutUint32(b[9:13], spid)
}
