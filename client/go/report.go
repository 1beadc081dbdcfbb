package nearcache

// Near-tier reports (docs/protocol.md, "Client rules", R3): the tier's
// counters, cumulative since the client started, sent to the daemon with
// NearReport on the connection the client has, at most once per interval
// (the daemon's interval_ms, default 1 s) and only when they changed, from
// a goroutine of their own: never on the hit path. A daemon that does not
// know the method (UNIMPLEMENTED) is not asked again.

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"
)

// nearReportReq is a NearReportRequest (without per-namespace counts).
type nearReportReq struct {
	reporter, hits, misses, refused uint64
	pid                             uint32
	before                          bool // reported_before: a daemon took a report of it
}

func (m *nearReportReq) size() int {
	return sizeUint(1, m.reporter) + sizeUint(2, uint64(m.pid)) + sizeUint(3, m.hits) +
		sizeUint(4, m.misses) + sizeUint(5, m.refused) + sizeUint(7, m.flag())
}

func (m *nearReportReq) flag() uint64 {
	if m.before {
		return 1
	}
	return 0
}

func (m *nearReportReq) append(b []byte) []byte {
	b = appendUint(b, 1, m.reporter)
	b = appendUint(b, 2, uint64(m.pid))
	b = appendUint(b, 3, m.hits)
	b = appendUint(b, 4, m.misses)
	b = appendUint(b, 5, m.refused)
	return appendUint(b, 7, m.flag())
}

type reporter struct {
	c    *Client
	id   uint64
	quit chan struct{}
	done chan struct{}
	sent nearReportReq
	// reports counts the reports the daemon took (for tests).
	reports atomic.Uint64
}

func startReporter(c *Client) *reporter {
	r := &reporter{c: c, id: rand.Uint64() | 1, quit: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r
}

// stop ends the reports with a last one, if the counters changed and a
// connection is up.
func (r *reporter) stop() {
	close(r.quit)
	<-r.done
	r.once()
}

func (r *reporter) loop() {
	defer close(r.done)
	interval := time.Second
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		next, stop := r.once()
		if stop {
			return
		}
		if next > 0 {
			interval = next
		}
		t.Reset(interval)
	}
}

// once sends a report if the counters changed and a connection is up; it
// returns the daemon's interval and whether to stop reporting.
func (r *reporter) once() (time.Duration, bool) {
	c := r.c
	if cn := c.cn.Load(); cn == nil || cn.dead.Load() {
		return 0, false
	}
	s := c.near.stats()
	m := nearReportReq{reporter: r.id, pid: uint32(os.Getpid()), hits: s.Hits, misses: s.Misses,
		refused: s.FillsRefused}
	if m == r.sent {
		return 0, false
	}
	m.before = r.reports.Load() > 0 // a restarted daemon starts from this one
	ctx, cancel := context.WithTimeout(context.Background(), c.o.timeout)
	defer cancel()
	v, err := c.small(ctx, mNearReport, &m, true)
	if errors.Is(err, ErrUnimplemented) {
		return 0, true
	}
	if err != nil {
		return 0, false
	}
	r.sent = m
	r.sent.before = false // compared with the next report's counters, which carry none
	r.reports.Add(1)
	return time.Duration(v) * time.Millisecond, false
}
