package nearcache

// Read-through with a lease (docs/read-through.md): one load per key across
// every process and host. Fetch asks for the key with a lease; a hit is
// returned; a miss granted the lease calls load and stores what it returned
// with the lease's token, or releases the lease when load fails; a miss
// while another caller holds the lease waits in the daemon for that
// caller's value. A stale value (stale-while-revalidate) is returned at
// once while the caller granted the lease refreshes it in the background.

import (
	"context"
	"errors"
	"time"
)

// Fetch returns the value of ns/key, calling load to make it (at most once
// per key at a time, across every process and host) and storing it for ttl
// (0: the daemon's default_ttl). When load fails its error is returned and
// the lease released, so that a waiting caller loads at once. When the
// lease holder does not store in time (LeaseBusy) Fetch calls load itself
// and stores nothing. A key known absent (a negative entry) gives
// ErrNotFound. When the daemon cannot be reached Fetch returns the error,
// or with WithFailOpen calls load directly and stores nothing. The value
// may be shared with the near tier: do not modify it.
func (c *Client) Fetch(ctx context.Context, ns, key string, ttl time.Duration,
	load func(context.Context) ([]byte, error)) ([]byte, error) {
	if n := c.near; n != nil {
		if v, st := n.lookup(ns, key); st == nearHit {
			return v, nil
		} else if st == nearAbsent {
			return nil, errKnownAbsent
		}
	}
	g := getReq{ns: ns, key: key, lease: true}
	if c.o.leaseTTL > 0 {
		g.leaseTTL = msOf(c.o.leaseTTL)
	}
	var res GetResult
	err := c.get(ctx, &g, &res) // (the near tier was just asked)
	switch {
	case err == nil && res.Found:
		if res.Stale && res.Lease == LeaseGranted {
			go c.refresh(ns, key, ttl, load, res.LeaseToken)
		}
		return res.Value, nil
	case err == nil && res.Lease == LeaseGranted:
		return c.loadAndStore(ctx, ns, key, ttl, load, res.LeaseToken)
	case err == nil && res.Lease == LeaseBusy:
		return load(ctx) // its holder will store it; we only load
	case errors.Is(err, ErrNotFound):
		return nil, err
	case err != nil && c.o.failOpen && unreachable(err):
		return load(ctx)
	case err != nil:
		return nil, err
	}
	return c.loadAndStore(ctx, ns, key, ttl, load, nil) // a miss without lease state
}

// unreachable reports whether err says the daemon could not be reached (or
// did not answer), as opposed to an answer of the daemon.
func unreachable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Err != nil && (e.Code == Unavailable || e.Code == DeadlineExceeded ||
		e.Code == PermissionDenied)
}

// loadAndStore calls load and stores its value with token (nil: none),
// releasing the lease when load fails. A store the daemon refuses
// (ErrAborted: the key was written meanwhile) still returns the value.
func (c *Client) loadAndStore(ctx context.Context, ns, key string, ttl time.Duration,
	load func(context.Context) ([]byte, error), token []byte) (_ []byte, err error) {
	release := func() {
		if token != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.timeout)
			_, _ = c.Release(rctx, ns, key, token)
			cancel()
		}
	}
	ok := false
	defer func() {
		if !ok { // load panicked: give the lease up, then go on panicking
			release()
		}
	}()
	v, err := load(ctx)
	ok = true
	if err != nil {
		release()
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	_, _ = c.SetEx(ctx, ns, key, v, ttl, SetOptions{LeaseToken: token})
	return v, nil
}

// refresh reloads a stale value in the background under the lease it was
// granted.
func (c *Client) refresh(ns, key string, ttl time.Duration, load func(context.Context) ([]byte, error),
	token []byte) {
	lease := c.o.leaseTTL
	if lease <= 0 {
		lease = 3 * time.Second // the daemon's default lease_ttl
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.timeout+lease)
	defer cancel()
	_, _ = c.loadAndStore(ctx, ns, key, ttl, load, token)
}
