package nearcache

// Resends after a lost connection (docs/protocol.md, "Timeouts, resends and
// reconnects"), against a fake REP peer that drops the first connection
// right after reading a request and answers on the next.

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nearcache/nearcache/client/go/internal/pb"
	"google.golang.org/protobuf/proto"
)

// fakeDaemon accepts connections on a socket; the first `drop` requests
// it reads each close their connection, the others get an OK reply.
type fakeDaemon struct {
	url      string
	requests atomic.Int32
}

func startFakeDaemon(t *testing.T, drop int32) *fakeDaemon {
	path := filepath.Join(t.TempDir(), "fake.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f := &fakeDaemon{url: "ipc://" + path}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.serve(c, drop)
		}
	}()
	return f
}

func (f *fakeDaemon) serve(c net.Conn, drop int32) {
	defer c.Close()
	var h [8]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return
	}
	_, _ = c.Write([]byte{0, 'S', 'P', 0, 0, protoREP, 0, 0})
	for {
		var head [frameHead]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint64(head[1:9])-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if f.requests.Add(1) <= drop {
			return // the connection is lost after the request was sent
		}
		var req pb.Request
		_ = proto.Unmarshal(body, &req)
		rep := &pb.Reply{Id: req.Id}
		switch req.Method.(type) {
		case *pb.Request_Ping:
			rep.Result = &pb.Reply_Ping{Ping: &pb.PingReply{Version: "fake"}}
		case *pb.Request_Set:
			rep.Result = &pb.Reply_Set{Set: &pb.SetReply{TtlMs: 1}}
		case *pb.Request_Delete:
			rep.Result = &pb.Reply_Delete{Delete: &pb.DeleteReply{Existed: true}}
		}
		out, _ := proto.Marshal(rep)
		frame := append(head[:0:0], 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
		frame = append(frame, out...)
		finishFrame(frame, binary.BigEndian.Uint32(head[9:13]))
		_, _ = c.Write(frame)
	}
}

func TestARequestSafeToRepeatIsResentOnceOnANewConnection(t *testing.T) {
	f := startFakeDaemon(t, 1)
	c, err := Dial(f.url, WithNearBytes(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.Ping(bg)
	if err != nil || p.Version != "fake" || f.requests.Load() != 2 {
		t.Fatalf("Ping = %+v, %v after %d requests", p, err, f.requests.Load())
	}
}

func TestARequestUnsafeToRepeatIsNotResent(t *testing.T) {
	f := startFakeDaemon(t, 1)
	c, err := Dial(f.url, WithNearBytes(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.SetEx(bg, "ns", "k", []byte("v"), 0, SetOptions{LeaseToken: []byte("t")})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "may have been applied") {
		t.Fatalf("SetEx with a token: %v", err)
	}
	if n := f.requests.Load(); n != 1 {
		t.Fatalf("%d requests: it was resent", n)
	}
	// A Delete lost so is kept (R2) and sent on the next connection.
	f.requests.Store(0)
	_, err = c.Delete(bg, "ns", "k") // the fake drops it
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("lost Delete: %v", err)
	}
	waitFor(t, "the kept Delete to be sent again", 2*time.Second, func() bool { return f.requests.Load() == 2 })
}
