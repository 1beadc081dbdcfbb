package nearcache

// Pending invalidations (docs/protocol.md, "Client rules", R2): a Delete
// without a lease token or a Bump that could not reach the daemon is kept,
// in order, bounded, and sent before any other request once a connection
// is established again. Past the bound the client keeps the namespaces of
// the ones it dropped and bumps them first.

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// inval is one kept invalidation: a Delete of ns/key, or a Bump of ns.
type inval struct {
	bump    bool
	ns, key string
}

// pendingQueue is guarded by Client.dmu.
type pendingQueue struct {
	items    []inval
	overflow map[string]struct{}
	order    []string // overflow's namespaces, in the order they came
}

func (q *pendingQueue) init()    { q.overflow = make(map[string]struct{}) }
func (q *pendingQueue) len() int { return len(q.items) + len(q.order) }

// queueIfUnreachable keeps iv when err says the daemon could not be
// reached or the connection was lost before the reply; it returns the
// error the caller sees then (ErrQueued, or err under strictness), else err.
func (c *Client) queueIfUnreachable(err error, iv inval) error {
	var e *Error
	if !errors.As(err, &e) || e.Code != Unavailable && e.Code != PermissionDenied {
		return err
	}
	if e == errClosed || e.Err == nil { // the daemon's own UNAVAILABLE (Redis): it answered
		return err
	}
	c.dmu.Lock()
	if len(c.pend.items) < c.o.pendingLimit {
		c.pend.items = append(c.pend.items, iv)
	} else if _, ok := c.pend.overflow[iv.ns]; !ok {
		c.pend.overflow[iv.ns] = struct{}{}
		c.pend.order = append(c.pend.order, iv.ns)
	}
	c.npend.Store(int32(c.pend.len()))
	if !c.flushing {
		c.flushing = true
		go c.flushLoop()
	}
	c.dmu.Unlock()
	if c.near != nil {
		c.near.forget() // a Get in flight may hold what it replaced
	}
	if c.o.strict {
		return err
	}
	return queued{err}
}

// queued is the non-fatal error of a kept invalidation.
type queued struct{ cause error }

func (q queued) Error() string        { return ErrQueued.Error() + " (" + q.cause.Error() + ")" }
func (q queued) Is(target error) bool { return target == ErrQueued }

// flushLoop sends the kept invalidations as soon as a connection can be
// made again, without waiting for the application's next call: every 50 ms
// while any are kept (each try a dial only when the backoff allows one).
func (c *Client) flushLoop() {
	for {
		time.Sleep(backoffMin)
		c.dmu.Lock()
		if c.closed.Load() || c.pend.len() == 0 {
			c.flushing = false
			c.dmu.Unlock()
			return
		}
		c.dmu.Unlock()
		_, _ = c.getConn(time.Now().Add(c.o.timeout))
	}
}

// errStillKept says the daemon answered a kept invalidation UNAVAILABLE or
// RESOURCE_EXHAUSTED (its Redis down, its queue full): it stays first in
// line, and the call that flushed goes on, as in C and Python.
var errStillKept = errors.New("nearcache: the daemon could not apply a kept invalidation yet")

// flushPendingLocked sends the kept invalidations on cn, bumps of the
// overflowed namespaces first, each waiting for its reply. A lost
// connection, or a reply that it could not apply yet (errStillKept), stops
// it, keeping what is left; one the daemon refuses outright is dropped.
// Needs c.dmu.
func (c *Client) flushPendingLocked(cn *conn, deadline time.Time) error {
	defer func() { c.npend.Store(int32(c.pend.len())) }()
	for len(c.pend.order) > 0 {
		ns := c.pend.order[0]
		if err := c.sendOn(cn, mBump, &bumpReq{ns: ns}, deadline); err != nil {
			return err
		}
		delete(c.pend.overflow, ns)
		c.pend.order = c.pend.order[1:]
	}
	for len(c.pend.items) > 0 {
		iv := c.pend.items[0]
		var err error
		if iv.bump {
			err = c.sendOn(cn, mBump, &bumpReq{ns: iv.ns}, deadline)
		} else {
			err = c.sendOn(cn, mDelete, &delReq{ns: iv.ns, key: iv.key}, deadline)
		}
		if err != nil {
			return err
		}
		c.pend.items = c.pend.items[1:]
	}
	return nil
}

// sendOn runs one request on cn (no redial). A reply counts as delivered
// unless its code says the daemon could not apply it yet (errStillKept).
func (c *Client) sendOn(cn *conn, method protowire.Number, m smallReq, deadline time.Time) error {
	wait := max(time.Until(deadline), c.o.timeout)
	tms := msOf(c.o.timeout)
	cl := c.newCall(tms, method, sizeOf(m))
	cl.req = appendOf(cl.req, m)
	finishFrame(cl.req, cl.spid)
	lost, reusable, err := c.exchange(context.Background(), cn, cl, time.Now().Add(wait), false, tms)
	kept := false
	if err == nil && lost == nil {
		var r reply
		kept = decodeReply(cl.resp, &r) == nil && (r.code == Unavailable || r.code == ResourceExhausted)
	}
	if reusable {
		callPool.Put(cl)
	}
	if err != nil {
		return err
	}
	if kept {
		return errStillKept
	}
	if lost != nil {
		return &Error{Code: Unavailable, Err: lost, Message: "connection to nearcached lost (" +
			lost.why + ") while sending the pending invalidations"}
	}
	return nil
}
