// Package nearcache is the Go client of nearcached, the per-host cache
// daemon (L1 in its memory, Redis as L2): the wire protocol over its Unix
// socket without nng, many requests in flight on one connection, a near
// tier kept coherent by the daemon's ring, and read-through with leases
// (Fetch). See docs/go.md.
package nearcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearcache/nearcache/client/go/internal/pb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// smallRequest: a larger request makes the client learn the daemon's limit.
const smallRequest = 64 << 10

// Client is a connection to one daemon, safe for any number of goroutines.
type Client struct {
	url, path string
	o         options
	near      *nearTier
	cn        atomic.Pointer[conn]
	seq       atomic.Uint64
	npend     atomic.Int32 // invalidations waiting to be sent (R2)
	limit     atomic.Uint64
	closed    atomic.Bool
	reporter  *reporter

	dmu      sync.Mutex // dialing, the backoff and the pending invalidations
	dialErr  error
	dialDue  time.Time
	dialSock uint64 // socketID at the failed dial
	backoff  time.Duration
	pend     pendingQueue
	flushing bool // flushLoop runs
}

// Dial returns a client of the daemon at url ("ipc://PATH"; "" means
// $NEARCACHE_URL, else DefaultURL). It connects at once and fails when no
// daemon answers there (unless WithLazyDial); after that the client
// reconnects by itself. The near tier is on (DefaultNearBytes) unless
// WithNearBytes(0).
func Dial(url string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout, nearBytes: DefaultNearBytes,
		nearMaxTTL: DefaultNearMaxTTL, pendingLimit: DefaultPendingLimit, report: true}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.timeout <= 0:
		return nil, invalid("WithTimeout must be positive, got %v", o.timeout)
	case o.nearBytes < 0:
		return nil, invalid("WithNearBytes must be >= 0, got %d", o.nearBytes)
	case o.nearMaxTTL <= 0:
		return nil, invalid("WithNearMaxTTL must be positive, got %v", o.nearMaxTTL)
	case o.pendingLimit < 0:
		return nil, invalid("WithPendingLimit must be >= 0, got %d", o.pendingLimit)
	}
	url, path, err := resolveURL(url)
	if err != nil {
		return nil, err
	}
	c := &Client{url: url, path: path, o: o}
	c.pend.init()
	if !o.lazy {
		if _, err := c.redial(time.Now().Add(o.timeout)); err != nil {
			return nil, err
		}
	}
	if o.nearBytes > 0 {
		ring := o.nearRing
		if ring == "" {
			ring = path + ".ring"
		}
		c.near = newNearTier(ring, o.nearBytes, o.nearMaxTTL)
		if o.report {
			c.reporter = startReporter(c)
		}
	}
	return c, nil
}

func invalid(format string, args ...any) error {
	return &Error{Code: InvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// URL returns the daemon's URL.
func (c *Client) URL() string { return c.url }

// getConn returns the connection, dialing when there is none (R1) and
// sending the pending invalidations first (R2).
func (c *Client) getConn(deadline time.Time) (*conn, error) {
	if cn := c.cn.Load(); cn != nil && !cn.dead.Load() && c.npend.Load() == 0 {
		return cn, nil
	}
	return c.redial(deadline)
}

// redial dials once if no live connection exists and a dial is due, then
// flushes the pending invalidations. Takes c.dmu.
func (c *Client) redial(deadline time.Time) (*conn, error) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.closed.Load() {
		return nil, errClosed
	}
	cn := c.cn.Load()
	if cn == nil || cn.dead.Load() {
		now := time.Now()
		if c.dialErr != nil && now.Before(c.dialDue) && socketID(c.path) == c.dialSock {
			return nil, c.dialErr // (a socket made since the failure is dialed at once)
		}
		fresh, err := dialConn(c.path, deadline)
		if err != nil {
			var wait time.Duration
			c.backoff, wait = nextBackoff(c.backoff)
			c.dialErr, c.dialDue, c.dialSock = dialError(c.path, err), now.Add(wait), socketID(c.path)
			return nil, c.dialErr
		}
		c.backoff, c.dialErr = 0, nil
		cn = fresh
		c.cn.Store(cn)
	}
	if c.pend.len() > 0 {
		if err := c.flushPendingLocked(cn, deadline); err != nil && err != errStillKept {
			return nil, err
		}
	}
	return cn, nil
}

// budget returns a call's timeout_ms and when the client stops waiting;
// viaCtx says the context's deadline is that time.
func (c *Client) budget(ctx context.Context) (uint32, time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, false, ctxError(err, 0)
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return 0, time.Time{}, false, ctxError(context.DeadlineExceeded, 0)
		}
		return msOf(left), dl, true, nil
	}
	t := c.o.timeout
	return msOf(t), time.Now().Add(t + max(100*time.Millisecond, t/10)), false, nil
}

// msOf returns d in whole ms, at least 1, at most the field's range.
func msOf(d time.Duration) uint32 {
	ms := d.Milliseconds()
	switch {
	case ms < 1:
		return 1
	case ms > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(ms)
}

func ctxError(err error, ms uint32) error {
	if err == context.Canceled {
		return &Error{Code: Canceled, Message: "the call's context was canceled", Err: err}
	}
	if ms == 0 {
		return &Error{Code: DeadlineExceeded, Message: "the call's deadline passed before it was sent", Err: err}
	}
	return &Error{Code: DeadlineExceeded, Err: err,
		Message: fmt.Sprintf("no reply from the daemon within %d ms", ms)}
}

// newCall returns a pooled call whose request starts with the frame head
// and the envelope of method with a body of size bytes.
func (c *Client) newCall(tms uint32, method protowire.Number, size int) *call {
	cl := callPool.Get().(*call)
	n := c.seq.Add(1)
	cl.spid = spIDBit | uint32(n&0x7fffffff)
	cl.req = startFrame(cl.req)
	cl.req = appendEnvelope(cl.req, n, tms, method, size)
	return cl
}

// do sends cl and waits for its reply (in cl.resp), resending it once on a
// new connection when the first was lost before it could have been applied,
// or when resending is safe. It returns the reply's decoded envelope. On
// an error cl must not be reused unless reusable says so.
func (c *Client) do(ctx context.Context, cl *call, deadline time.Time, viaCtx, retrySafe bool,
	tms uint32, r *reply) (reusable bool, err error) {
	finishFrame(cl.req, cl.spid)
	if len(cl.req)-frameHead > smallRequest {
		if err := c.checkSize(ctx, len(cl.req)-frameHead); err != nil {
			return true, err
		}
	}
	for attempt := 0; ; attempt++ {
		cn, err := c.getConn(deadline)
		if err != nil {
			return true, err
		}
		lost, reusable, err := c.exchange(ctx, cn, cl, deadline, viaCtx, tms)
		if err != nil {
			return reusable, err
		}
		if lost == nil {
			if err := decodeReply(cl.resp, r); err != nil {
				return true, &Error{Code: Internal, Err: err,
					Message: "the daemon's reply does not decode: " + err.Error()}
			}
			return true, nil
		}
		if attempt == 0 && (retrySafe || !lost.sent) {
			continue
		}
		return true, &Error{Code: Unavailable, Err: lost, Message: "connection to nearcached lost (" +
			lost.why + "); the request may have been applied"}
	}
}

// exchange sends cl on cn and waits for its reply or its loss.
func (c *Client) exchange(ctx context.Context, cn *conn, cl *call, deadline time.Time, viaCtx bool,
	tms uint32) (*lostError, bool, error) {
	if lost := cn.send(cl); lost != nil {
		return lost, true, nil
	}
	var tc <-chan time.Time
	if !viaCtx {
		cl.timer.Reset(time.Until(deadline))
		tc = cl.timer.C
	}
	select {
	case <-cl.done:
		if !viaCtx {
			cl.timer.Stop()
		}
		return cl.lost, true, nil
	case <-ctx.Done():
		if !viaCtx {
			cl.timer.Stop()
		}
		return nil, cn.abandon(cl), ctxError(ctx.Err(), tms)
	case <-tc:
		return nil, cn.abandon(cl), ctxError(context.DeadlineExceeded, tms)
	}
}

// checkSize refuses a request larger than the daemon reads (asking it once).
func (c *Client) checkSize(ctx context.Context, size int) error {
	lim := c.limit.Load()
	if lim == 0 {
		p, err := c.Ping(ctx)
		if err != nil {
			return err
		}
		lim = p.MaxRequestSize
		c.limit.Store(lim)
	}
	if lim > 0 && uint64(size) > lim {
		return &Error{Code: ResourceExhausted, Message: fmt.Sprintf(
			"request of %d bytes is larger than the daemon accepts (%d bytes; see max_value_size)", size, lim)}
	}
	return nil
}

// result returns the reply's error, or nil when its code is OK and it
// carries method's result.
func (r *reply) err(method protowire.Number) error {
	if r.code != OK {
		return replyError(r)
	}
	if r.method != method {
		return &Error{Code: Internal, Message: fmt.Sprintf(
			"the daemon answered result %d to method %d", r.method, method)}
	}
	return nil
}

// roundTrip runs one request given as a generated message on the generic
// path and returns its reply's result bytes (copied), also with the error
// of a reply that carries one.
func (c *Client) roundTrip(ctx context.Context, method protowire.Number, m proto.Message,
	retrySafe bool) ([]byte, error) {
	tms, deadline, viaCtx, err := c.budget(ctx)
	if err != nil {
		return nil, err
	}
	body, err := proto.Marshal(m)
	if err != nil {
		return nil, &Error{Code: InvalidArgument, Err: err, Message: err.Error()}
	}
	cl := c.newCall(tms, method, len(body))
	cl.req = append(cl.req, body...)
	var r reply
	reusable, err := c.do(ctx, cl, deadline, viaCtx, retrySafe, tms, &r)
	var out []byte
	if err == nil {
		err = r.err(method)
		// an error reply may carry the result too (a failed MSet's)
		if err == nil || r.method == method {
			out = append([]byte(nil), r.result...)
		}
	}
	if reusable {
		callPool.Put(cl)
	}
	return out, err
}

// Get returns the value of ns/key. A missing key (or one known absent)
// gives an error for which errors.Is(err, ErrNotFound) holds. A near-tier
// hit allocates nothing; the value is shared with it: do not modify it.
func (c *Client) Get(ctx context.Context, ns, key string) ([]byte, error) {
	if n := c.near; n != nil {
		if v, st := n.lookup(ns, key); st != nearMiss {
			if st == nearAbsent {
				return nil, errKnownAbsent
			}
			return v, nil
		}
	}
	g := getReq{ns: ns, key: key}
	var res GetResult
	err := c.get(ctx, &g, &res)
	return res.Value, err
}

// GetEx is Get with options (a lease, a sliding TTL) and everything the
// reply says. Its errors are Get's; on ErrNotFound res still says whether
// the key is known absent (Negative) and for how long (TTL).
func (c *Client) GetEx(ctx context.Context, ns, key string, opts GetOptions) (GetResult, error) {
	var res GetResult
	if n := c.near; n != nil && opts.SlideTTL <= 0 {
		if v, ttl, st := n.lookupEx(ns, key); st != nearMiss {
			res = GetResult{Value: v, Found: st == nearHit, Source: SourceNear, TTL: ttl,
				Negative: st == nearAbsent}
			if st == nearAbsent {
				return res, errKnownAbsent
			}
			return res, nil
		}
	}
	g := getReq{ns: ns, key: key, lease: opts.Lease, leaseTTL: msOf(opts.LeaseTTL),
		slideTTL: uint64(max(opts.SlideTTL, 0).Milliseconds())}
	if opts.LeaseTTL <= 0 {
		g.leaseTTL = 0
	}
	if opts.SlideTTL > 0 && g.slideTTL == 0 {
		g.slideTTL = 1
	}
	err := c.get(ctx, &g, &res)
	return res, err
}

// get asks the daemon and fills the near tier from the reply when it may.
func (c *Client) get(ctx context.Context, g *getReq, res *GetResult) error {
	var t ticket
	near := c.near
	if near != nil {
		t = near.ticket()
	}
	tms, deadline, viaCtx, err := c.budget(ctx)
	if err != nil {
		return err
	}
	cl := c.newCall(tms, mGet, g.size())
	cl.req = g.append(cl.req)
	var r reply
	reusable, err := c.do(ctx, cl, deadline, viaCtx, !g.lease, tms, &r)
	if err == nil {
		err = c.decodeGet(&r, res)
	}
	if reusable {
		callPool.Put(cl)
	}
	if near != nil && (err == nil || res.Negative) && g.slideTTL == 0 {
		near.offer(t, g.ns, g.key, res)
	}
	return err
}

// decodeGet fills res from a Get's reply and returns the reply's error.
func (c *Client) decodeGet(r *reply, res *GetResult) error {
	if r.code != OK && r.code != NotFound {
		return replyError(r)
	}
	var g getReply
	if r.method == mGet {
		if err := decodeGetReply(r.result, &g); err != nil {
			return &Error{Code: Internal, Err: err, Message: "the daemon's GetReply does not decode"}
		}
	} else if r.code == OK {
		return r.err(mGet)
	}
	*res = GetResult{Source: g.source, TTL: time.Duration(g.ttlMS) * time.Millisecond,
		Lease: g.lease, Stale: g.stale, StaleFor: time.Duration(g.staleMS) * time.Millisecond,
		Negative: g.negative}
	if len(g.token) > 0 {
		res.LeaseToken = append([]byte(nil), g.token...)
	}
	if r.code == NotFound {
		return replyError(r)
	}
	if g.lease == LeaseGranted && !g.stale || g.lease == LeaseBusy {
		return nil // no value
	}
	res.Found = true
	res.Value = append([]byte(nil), g.value...) // (its capacity is what the near tier charges)
	return nil
}

// Set stores value under ns/key for ttl (0: the daemon's default_ttl).
func (c *Client) Set(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	_, err := c.SetEx(ctx, ns, key, value, ttl, SetOptions{})
	return err
}

// SetEx is Set with options (a lease token, a negative entry,
// stale-while-revalidate); it returns the TTL the daemon applied. A lease
// that is gone gives ErrAborted, and nothing was stored.
func (c *Client) SetEx(ctx context.Context, ns, key string, value []byte, ttl time.Duration,
	opts SetOptions) (time.Duration, error) {
	if ttl < 0 {
		return 0, invalid("ttl must be >= 0 (0: the daemon's default), got %v", ttl)
	}
	s := setReq{ns: ns, key: key, value: value, hasTTL: ttl > 0, ttlMS: int64(msOf(ttl)),
		token: opts.LeaseToken, negative: opts.Negative}
	if ttl > 0 && ttl.Milliseconds() > int64(msOf(ttl)) {
		s.ttlMS = ttl.Milliseconds()
	}
	if opts.StaleWhileRevalidate > 0 {
		s.swrMS = uint64(msOf(opts.StaleWhileRevalidate))
	}
	if c.near != nil {
		c.near.drop(ns, key)
	}
	res, err := c.small(ctx, mSet, &s, len(opts.LeaseToken) == 0)
	return time.Duration(res) * time.Millisecond, err
}

// smallReq is a hand-encoded request.
type smallReq interface {
	size() int
	append([]byte) []byte
}

// sizeOf and appendOf call m's methods on its concrete type, so that a
// request passed as a smallReq does not escape to the heap.
func sizeOf(m smallReq) int {
	switch m := m.(type) {
	case *setReq:
		return m.size()
	case *delReq:
		return m.size()
	case *bumpReq:
		return m.size()
	case *nearReportReq:
		return m.size()
	}
	panic("nearcache: unknown request type")
}

func appendOf(b []byte, m smallReq) []byte {
	switch m := m.(type) {
	case *setReq:
		return m.append(b)
	case *delReq:
		return m.append(b)
	case *bumpReq:
		return m.append(b)
	case *nearReportReq:
		return m.append(b)
	}
	panic("nearcache: unknown request type")
}

// small runs a hand-encoded request whose reply's field 1 is a varint and
// returns that field.
func (c *Client) small(ctx context.Context, method protowire.Number, m smallReq, retrySafe bool) (uint64, error) {
	tms, deadline, viaCtx, err := c.budget(ctx)
	if err != nil {
		return 0, err
	}
	cl := c.newCall(tms, method, sizeOf(m))
	cl.req = appendOf(cl.req, m)
	var r reply
	reusable, err := c.do(ctx, cl, deadline, viaCtx, retrySafe, tms, &r)
	var v uint64
	if err == nil {
		if err = r.err(method); err == nil {
			v, err = firstVarint(r.result)
		}
	}
	if reusable {
		callPool.Put(cl)
	}
	return v, err
}

// Delete removes ns/key and returns whether Redis held it. When the daemon
// cannot be reached the invalidation is kept and sent once it answers
// again: the error then matches ErrQueued (see WithStrictInvalidation).
func (c *Client) Delete(ctx context.Context, ns, key string) (bool, error) {
	if c.near != nil {
		c.near.drop(ns, key)
	}
	d := delReq{ns: ns, key: key}
	v, err := c.small(ctx, mDelete, &d, false)
	if err != nil {
		return false, c.queueIfUnreachable(err, inval{ns: ns, key: key})
	}
	return v != 0, nil
}

// Release gives up a lease granted to a GetEx (a loader that failed):
// nothing is stored and a waiting Get can take the lease at once. It
// returns whether the lease was still held with that token.
func (c *Client) Release(ctx context.Context, ns, key string, token []byte) (bool, error) {
	d := delReq{ns: ns, key: key, token: token}
	v, err := c.small(ctx, mDelete, &d, false)
	return v != 0, err
}

// bumpReq is a BumpNamespaceRequest.
type bumpReq struct{ ns string }

func (b *bumpReq) size() int              { return sizeStr(1, b.ns) }
func (b *bumpReq) append(p []byte) []byte { return appendStr(p, 1, b.ns) }

// Bump drops every key of ns on every host and returns the namespace's new
// version. Like Delete, it is queued when the daemon cannot be reached.
func (c *Client) Bump(ctx context.Context, ns string) (uint64, error) {
	if c.near != nil {
		c.near.dropNS(ns)
	}
	v, err := c.small(ctx, mBump, &bumpReq{ns: ns}, false)
	if err != nil {
		return 0, c.queueIfUnreachable(err, inval{bump: true, ns: ns})
	}
	return v, nil
}

// MGet returns the values of keys in ns, in their order, nil for each key
// that is absent. Values are shared with the near tier: do not modify them.
func (c *Client) MGet(ctx context.Context, ns string, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	ask := make([]int, 0, len(keys))
	if n := c.near; n != nil {
		for i, k := range keys {
			v, st := n.lookup(ns, k)
			if st == nearMiss {
				ask = append(ask, i)
			} else if st == nearHit {
				out[i] = v
			}
		}
	} else {
		for i := range keys {
			ask = append(ask, i)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	var t ticket
	if c.near != nil {
		t = c.near.ticket()
	}
	m := &pb.MGetRequest{Ns: []byte(ns), Keys: make([][]byte, len(ask))}
	for j, i := range ask {
		m.Keys[j] = []byte(keys[i])
	}
	b, err := c.roundTrip(ctx, mMGet, m, true)
	if err != nil {
		return nil, err
	}
	var rep pb.MGetReply
	if err := proto.Unmarshal(b, &rep); err != nil || len(rep.Items) != len(ask) {
		return nil, &Error{Code: Internal, Err: err, Message: fmt.Sprintf(
			"the daemon's MGetReply does not decode or has %d items for %d keys", len(rep.Items), len(ask))}
	}
	for j, i := range ask {
		it := rep.Items[j]
		g := it.GetGet()
		res := GetResult{Found: it.Found, Source: Source(g.GetSource()),
			TTL: time.Duration(g.GetTtlMs()) * time.Millisecond, Stale: g.GetStale(), Negative: g.GetNegative()}
		if it.Found {
			res.Value = g.GetValue()
			if res.Value == nil {
				res.Value = []byte{}
			}
			out[i] = res.Value
		}
		if c.near != nil {
			c.near.offer(t, ns, keys[i], &res)
		}
	}
	return out, nil
}

// MSet stores every entry in ns with ttl (0: the daemon's default_ttl), in
// one request and one Redis script (on a Redis Cluster, one per hash slot:
// some slots may fail while others are stored). When the daemon's answer
// names the entries not stored, the error is an *MSetError that says which
// keys to retry.
func (c *Client) MSet(ctx context.Context, ns string, entries map[string][]byte, ttl time.Duration) error {
	if ttl < 0 {
		return invalid("ttl must be >= 0 (0: the daemon's default), got %v", ttl)
	}
	var ms int64
	if ttl > 0 {
		ms = max(ttl.Milliseconds(), 1)
	}
	m := &pb.MSetRequest{Ns: []byte(ns)}
	for k, v := range entries {
		m.Entries = append(m.Entries, &pb.MSetEntry{Key: []byte(k), Value: v, TtlMs: ms})
		if c.near != nil {
			c.near.drop(ns, k)
		}
	}
	b, err := c.roundTrip(ctx, mMSet, m, true)
	var e *Error
	if err == nil || len(b) == 0 || !errors.As(err, &e) {
		return err
	}
	var r pb.MSetReply
	if proto.Unmarshal(b, &r) != nil || len(r.Failed) == 0 {
		return err
	}
	me := &MSetError{Err: e}
	for _, f := range r.Failed {
		for _, i := range f.Index {
			if int(i) >= len(m.Entries) {
				continue
			}
			k := string(m.Entries[i].Key)
			if f.MaybeStored {
				me.MaybeStored = append(me.MaybeStored, k)
			} else {
				me.NotStored = append(me.NotStored, k)
			}
		}
	}
	return me
}

// Stats returns the daemon's counters and gauges by name.
func (c *Client) Stats(ctx context.Context) (map[string]int64, error) {
	b, err := c.roundTrip(ctx, mStats, &pb.StatsRequest{}, true)
	if err != nil {
		return nil, err
	}
	var rep pb.StatsReply
	if err := proto.Unmarshal(b, &rep); err != nil {
		return nil, &Error{Code: Internal, Err: err, Message: "the daemon's StatsReply does not decode"}
	}
	out := make(map[string]int64, len(rep.Stats))
	for _, s := range rep.Stats {
		out[s.Name] = s.Value
	}
	return out, nil
}

// Ping asks the daemon how it is; it never touches Redis.
func (c *Client) Ping(ctx context.Context) (PingInfo, error) {
	b, err := c.roundTrip(ctx, mPing, &pb.PingRequest{}, true)
	if err != nil {
		return PingInfo{}, err
	}
	var p pb.PingReply
	if err := proto.Unmarshal(b, &p); err != nil {
		return PingInfo{}, &Error{Code: Internal, Err: err, Message: "the daemon's PingReply does not decode"}
	}
	return PingInfo{Version: p.Version, NodeID: p.NodeId, Uptime: time.Duration(p.UptimeMs) * time.Millisecond,
		RedisUp: p.RedisUp, Subscribed: p.Subscribed, L1Serving: p.L1Serving,
		MaxRequestSize: p.MaxRequestSize}, nil
}

// Request sends raw, a serialized nearcache.v1.Request, as it is (its id
// and timeout_ms included) and returns the daemon's Reply as it came,
// whatever its code (decode it with proto/nearcache.proto). For tests and
// tools; nothing is resent.
func (c *Client) Request(ctx context.Context, raw []byte) ([]byte, error) {
	_, deadline, viaCtx, err := c.budget(ctx)
	if err != nil {
		return nil, err
	}
	cl := callPool.Get().(*call)
	cl.spid = spIDBit | uint32(c.seq.Add(1)&0x7fffffff)
	cl.req = append(startFrame(cl.req), raw...)
	var r reply
	reusable, err := c.do(ctx, cl, deadline, viaCtx, false, 0, &r)
	var out []byte
	if err == nil {
		out = append([]byte(nil), cl.resp...)
	}
	if reusable {
		callPool.Put(cl)
	}
	return out, err
}

// Close flushes the pending invalidations when the daemon answers, stops
// the near tier's reports, and closes the connection. Calls in flight fail.
func (c *Client) Close() error {
	if c.closed.Load() {
		return nil
	}
	if c.npend.Load() > 0 {
		_, _ = c.getConn(time.Now().Add(c.o.timeout))
	}
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	if c.reporter != nil {
		c.reporter.stop()
	}
	c.dmu.Lock()
	cn := c.cn.Swap(nil)
	c.dmu.Unlock()
	if cn != nil {
		cn.close()
	}
	if c.near != nil {
		c.near.close()
	}
	return nil
}

// String describes the client.
func (c *Client) String() string {
	return "nearcache.Client(" + strings.TrimSpace(c.url) + ")"
}
