package nearcache

import (
	"bytes"
	"testing"

	"github.com/nearcache/nearcache/client/go/internal/pb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The hand encoders write exactly what proto.Marshal writes.
func TestHandEncodedRequestsEqualProtoMarshal(t *testing.T) {
	ttl := int64(300000)
	cases := []struct {
		name   string
		method protowire.Number
		hand   smallReq
		want   *pb.Request
	}{
		{"get", mGet, &getReq{ns: "users", key: "42"},
			&pb.Request{Method: &pb.Request_Get{Get: &pb.GetRequest{Ns: []byte("users"), Key: []byte("42")}}}},
		{"get with lease", mGet, &getReq{ns: "users", key: "7", lease: true, leaseTTL: 500, slideTTL: 9},
			&pb.Request{Method: &pb.Request_Get{Get: &pb.GetRequest{Ns: []byte("users"), Key: []byte("7"),
				Lease: true, LeaseTtlMs: 500, SlideTtlMs: 9}}}},
		{"set", mSet, &setReq{ns: "users", key: "43", value: []byte("bob"), hasTTL: true, ttlMS: ttl},
			&pb.Request{Method: &pb.Request_Set{Set: &pb.SetRequest{Ns: []byte("users"), Key: []byte("43"),
				Value: []byte("bob"), Ttl: &pb.SetRequest_TtlMs{TtlMs: ttl}}}}},
		{"set default ttl, token, negative, swr", mSet,
			&setReq{ns: "u", key: "k", token: []byte("t-1"), negative: true, swrMS: 70},
			&pb.Request{Method: &pb.Request_Set{Set: &pb.SetRequest{Ns: []byte("u"), Key: []byte("k"),
				LeaseToken: []byte("t-1"), Negative: true, StaleWhileRevalidateMs: 70}}}},
		{"delete", mDelete, &delReq{ns: "users", key: "43", token: []byte("x")},
			&pb.Request{Method: &pb.Request_Delete{Delete: &pb.DeleteRequest{Ns: []byte("users"), Key: []byte("43"),
				LeaseToken: []byte("x")}}}},
		{"bump", mBump, &bumpReq{ns: "users"},
			&pb.Request{Method: &pb.Request_BumpNamespace{BumpNamespace: &pb.BumpNamespaceRequest{Ns: []byte("users")}}}},
		{"near report", mNearReport, &nearReportReq{reporter: 9, pid: 77, hits: 5, misses: 2, refused: 1, before: true},
			&pb.Request{Method: &pb.Request_NearReport{NearReport: &pb.NearReportRequest{Reporter: 9, Pid: 77,
				Hits: 5, Misses: 2, FillsRefused: 1, ReportedBefore: true}}}},
	}
	for _, tc := range cases {
		tc.want.Id, tc.want.TimeoutMs = 7, 250
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(tc.want)
		if err != nil {
			t.Fatal(err)
		}
		got := appendEnvelope(nil, 7, 250, tc.method, tc.hand.size())
		got = tc.hand.append(got)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got % x\nwant % x", tc.name, got, want)
		}
	}
}

// The protocol page's worked example, byte for byte.
func TestWorkedExampleGet(t *testing.T) {
	g := &getReq{ns: "users", key: "42"}
	got := g.append(appendEnvelope(nil, 7, 250, mGet, g.size()))
	want := []byte{0x08, 0x07, 0x10, 0xfa, 0x01, 0x52, 0x0b, 0x0a, 0x05, 'u', 's', 'e', 'r', 's', 0x12, 0x02, '4', '2'}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x", got)
	}
}

func TestDecodeReplyReadsTheEnvelopeAndGetReply(t *testing.T) {
	// id 7, code 5, "known absent", get{ttl_ms 60000, negative}
	b := []byte{0x08, 0x07, 0x10, 0x05, 0x1a, 0x0c, 'k', 'n', 'o', 'w', 'n', ' ', 'a', 'b', 's', 'e', 'n', 't',
		0x52, 0x06, 0x18, 0xe0, 0xd4, 0x03, 0x38, 0x01}
	var r reply
	if err := decodeReply(b, &r); err != nil || r.id != 7 || r.code != NotFound || string(r.message) != "known absent" ||
		r.method != mGet {
		t.Fatalf("%+v, %v", r, err)
	}
	var g getReply
	if err := decodeGetReply(r.result, &g); err != nil || g.ttlMS != 60000 || !g.negative {
		t.Fatalf("%+v, %v", g, err)
	}
	if err := decodeReply([]byte{0x08}, &r); err == nil {
		t.Fatal("a truncated reply decoded")
	}
}

func TestHandshakeIsChecked(t *testing.T) {
	ok := []byte{0, 'S', 'P', 0, 0, 0x31, 0, 0}
	if err := checkHandshake(ok); err != nil {
		t.Fatal(err)
	}
	if err := checkHandshake([]byte{0, 'S', 'P', 0, 0, 0x30, 0, 0}); err == nil {
		t.Fatal("a REQ peer was accepted")
	}
	if err := checkHandshake([]byte("HTTP/1.1")); err == nil {
		t.Fatal("garbage was accepted")
	}
}
