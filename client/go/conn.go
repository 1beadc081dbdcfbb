package nearcache

// One connection to the daemon: nng's ipc:// transport spoken by hand
// (docs/protocol.md, "SP over IPC without nng"). Callers write their frames
// under a write lock; one reader goroutine cuts the replies and hands each
// to the call waiting for its SP request id, so any number of requests are
// in flight at once, answered in any order. When the connection fails every
// call still waiting is told, with lostError, that its request may have
// been applied.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	protoREQ    = 0x30
	protoREP    = 0x31
	spIDBit     = 0x80000000
	maxReplyLen = 1 << 30
)

// handshake is what a REQ peer sends first.
var handshake = [8]byte{0, 'S', 'P', 0, 0, protoREQ, 0, 0}

// checkHandshake checks the peer's 8 bytes: an SP peer speaking REP.
func checkHandshake(h []byte) error {
	if len(h) != 8 || h[0] != 0 || h[1] != 'S' || h[2] != 'P' || h[3] != 0 || h[6] != 0 || h[7] != 0 {
		return fmt.Errorf("not an SP peer: handshake %x", h)
	}
	if p := binary.BigEndian.Uint16(h[4:6]); p != protoREP {
		return fmt.Errorf("peer speaks SP protocol 0x%x, expected 0x%x", p, protoREP)
	}
	return nil
}

// lostError is a connection's failure as a call sees it; sent says whether
// its request may have reached the daemon.
type lostError struct {
	why  string
	sent bool
}

func (e *lostError) Error() string { return e.why }

// call is one request in flight: its frame, then its reply's body. Calls
// are pooled; a call given up on while the reader holds it is not.
type call struct {
	spid  uint32
	req   []byte
	resp  []byte
	lost  *lostError
	done  chan struct{}
	timer *time.Timer
}

var callPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &call{done: make(chan struct{}, 1), timer: t, req: make([]byte, 0, 256)}
}}

type conn struct {
	nc      *net.UnixConn
	wmu     sync.Mutex
	mu      sync.Mutex
	pending map[uint32]*call
	dead    atomic.Bool
	err     string
}

// dialConn connects to the socket at path and exchanges the SP handshake
// before deadline.
func dialConn(path string, deadline time.Time) (*conn, error) {
	nc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(deadline)
	var h [8]byte
	if _, err = nc.Write(handshake[:]); err == nil {
		_, err = io.ReadFull(nc, h[:])
	}
	if err == nil {
		err = checkHandshake(h[:])
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake with %s: %w", path, err)
	}
	_ = nc.SetDeadline(time.Time{})
	c := &conn{nc: nc, pending: make(map[uint32]*call)}
	go c.readLoop()
	return c, nil
}

// send registers cl and writes its frame. It returns the failure when the
// call failed at once (the caller must not wait); otherwise the reply, or
// the connection's failure (in cl.lost), comes through cl.done.
func (c *conn) send(cl *call) *lostError {
	c.mu.Lock()
	if c.dead.Load() {
		c.mu.Unlock()
		return &lostError{why: c.err, sent: false}
	}
	cl.lost = nil
	c.pending[cl.spid] = cl
	c.mu.Unlock()
	c.wmu.Lock()
	n, err := c.nc.Write(cl.req)
	c.wmu.Unlock()
	if err == nil {
		return nil
	}
	why := "write: " + err.Error()
	c.mu.Lock()
	_, mine := c.pending[cl.spid]
	delete(c.pending, cl.spid)
	c.mu.Unlock()
	c.fail(why)
	if mine {
		return &lostError{why: why, sent: n > 0}
	}
	return nil // fail() or the reader took it: it is told through done
}

// abandon takes cl back from the connection after its caller gave up on
// it; it returns false when the reader holds it (it must not be reused).
func (c *conn) abandon(cl *call) bool {
	c.mu.Lock()
	_, ok := c.pending[cl.spid]
	delete(c.pending, cl.spid)
	c.mu.Unlock()
	return ok
}

// fail marks the connection dead, closes it and tells every waiting call.
func (c *conn) fail(why string) {
	c.mu.Lock()
	if c.dead.Load() {
		c.mu.Unlock()
		return
	}
	c.err = why
	c.dead.Store(true)
	calls := c.pending
	c.pending = make(map[uint32]*call)
	c.mu.Unlock()
	c.nc.Close()
	for _, cl := range calls {
		cl.lost = &lostError{why: why, sent: true}
		cl.done <- struct{}{}
	}
}

func (c *conn) close() { c.fail("connection closed by the client") }

// readLoop reads frames until the connection fails; each reply goes to the
// call that waits for its id (replies to calls given up on are dropped).
func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var head [frameHead]byte
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			c.fail(readError(err))
			return
		}
		size := binary.BigEndian.Uint64(head[1:9])
		if head[0] != 1 || size < 4 || size > maxReplyLen {
			c.fail(fmt.Sprintf("bad reply frame (type %d, %d bytes)", head[0], size))
			return
		}
		spid := binary.BigEndian.Uint32(head[9:13])
		if spid&spIDBit == 0 {
			c.fail("reply backtrace longer than one hop")
			return
		}
		body := int(size - 4)
		c.mu.Lock()
		cl := c.pending[spid]
		delete(c.pending, spid)
		c.mu.Unlock()
		if cl == nil {
			if _, err := br.Discard(body); err != nil {
				c.fail(readError(err))
				return
			}
			continue
		}
		if cap(cl.resp) < body {
			cl.resp = make([]byte, body)
		}
		cl.resp = cl.resp[:body]
		if _, err := io.ReadFull(br, cl.resp); err != nil {
			cl.lost = &lostError{why: readError(err), sent: true}
			cl.done <- struct{}{}
			c.fail(readError(err))
			return
		}
		cl.done <- struct{}{}
	}
}

func readError(err error) string {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return "the daemon closed the connection"
	}
	return "read: " + err.Error()
}
