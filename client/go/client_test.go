package nearcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var bg = context.Background()

func TestSetThenGetReturnsTheValueFromTheDaemon(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	if err := c.Set(bg, "users", "42", []byte("alice"), time.Minute); err != nil {
		t.Fatal(err)
	}
	v, err := c.Get(bg, "users", "42")
	if err != nil || string(v) != "alice" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	res, err := c.GetEx(bg, "users", "42", GetOptions{})
	if err != nil || res.Source != SourceL1 || !res.Found || res.TTL <= 0 || res.TTL > time.Minute {
		t.Fatalf("GetEx = %+v, %v", res, err)
	}
}

func TestMissingKeyIsErrNotFound(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	v, err := c.Get(bg, "users", "nobody")
	if !errors.Is(err, ErrNotFound) || v != nil {
		t.Fatalf("Get = %q, %v; want ErrNotFound", v, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != NotFound || e.Message != "not found" {
		t.Fatalf("error %#v", err)
	}
}

func TestNegativeEntryIsErrNotFoundAndSaysSo(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	if _, err := c.SetEx(bg, "users", "404", nil, time.Minute, SetOptions{Negative: true}); err != nil {
		t.Fatal(err)
	}
	res, err := c.GetEx(bg, "users", "404", GetOptions{})
	if !errors.Is(err, ErrNotFound) || !res.Negative || res.TTL <= 0 {
		t.Fatalf("GetEx = %+v, %v", res, err)
	}
}

func TestDeleteSaysWhetherTheKeyExisted(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d)
	_ = c.Set(bg, "users", "43", []byte("bob"), 0)
	for _, want := range []bool{true, false} {
		existed, err := c.Delete(bg, "users", "43")
		if err != nil || existed != want {
			t.Fatalf("Delete = %v, %v; want %v", existed, err, want)
		}
	}
	if _, err := c.Get(bg, "users", "43"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

func TestMSetThenMGetInKeyOrderWithNilForAbsent(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	for _, near := range []int64{0, DefaultNearBytes} {
		c := dial(t, d, WithNearBytes(near))
		err := c.MSet(bg, "m", map[string][]byte{"1": []byte("ann"), "2": []byte("bob"), "e": {}}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for round := 0; round < 2; round++ { // the second from the near tier, when on
			got, err := c.MGet(bg, "m", []string{"2", "3", "1", "e"})
			if err != nil {
				t.Fatal(err)
			}
			if string(got[0]) != "bob" || got[1] != nil || string(got[2]) != "ann" || got[3] == nil || len(got[3]) != 0 {
				t.Fatalf("near %d round %d: MGet = %q", near, round, got)
			}
		}
	}
}

func TestAnMSetRedisRefusesNamesEveryKeyNotStored(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	d := startDaemon(t, r)
	c := dial(t, d)
	r.CLI("HSET", "nc:v1:nsver:bad", "f", "v") // a version Redis cannot read: the script fails
	err := c.MSet(bg, "bad", map[string][]byte{"1": []byte("ann"), "2": []byte("bob")}, time.Minute)
	var me *MSetError
	if !errors.As(err, &me) || !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("MSet = %v, want an *MSetError of FAILED_PRECONDITION", err)
	}
	sort.Strings(me.NotStored)
	if strings.Join(me.NotStored, ",") != "1,2" || len(me.MaybeStored) != 0 {
		t.Fatalf("not stored %q, maybe stored %q: one server stores all or none", me.NotStored, me.MaybeStored)
	}
}

func TestBumpDropsTheNamespaceAndCountsUp(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d)
	_ = c.Set(bg, "sessions", "a", []byte("1"), 0)
	if _, err := c.Get(bg, "sessions", "a"); err != nil { // now in the near tier too
		t.Fatal(err)
	}
	v1, err := c.Bump(bg, "sessions")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := c.Bump(bg, "sessions")
	if err != nil || v2 != v1+1 {
		t.Fatalf("Bump = %d then %d, %v", v1, v2, err)
	}
	if _, err := c.Get(bg, "sessions", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Bump: %v", err)
	}
}

func TestStatsAndPingReportTheDaemon(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	_, _ = c.Get(bg, "s", "k")
	st, err := c.Stats(bg)
	if err != nil || st["gets"] < 1 || st["requests"] < 1 {
		t.Fatalf("Stats = %v, %v", st, err)
	}
	p, err := c.Ping(bg)
	if err != nil || !p.RedisUp || !p.L1Serving || len(p.NodeID) != 16 || p.MaxRequestSize != 1115264 {
		t.Fatalf("Ping = %+v, %v", p, err)
	}
}

func TestBadArgumentsAreErrInvalidArgumentWithTheDaemonsMessage(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	cases := []struct {
		name string
		call func() error
		msg  string
	}{
		{"colon in namespace", func() error { _, err := c.Get(bg, "a:b", "k"); return err }, "contains ':'"},
		{"empty key", func() error { return c.Set(bg, "ns", "", []byte("v"), 0) }, "key is empty"},
		{"empty namespace", func() error { _, err := c.Bump(bg, ""); return err }, "namespace is empty"},
		{"negative ttl", func() error { return c.Set(bg, "ns", "k", nil, -time.Second) }, "ttl must be"},
	}
	for _, tc := range cases {
		err := tc.call()
		var e *Error
		if !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &e) || !bytes.Contains([]byte(e.Message), []byte(tc.msg)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestTooLargeRequestIsRefusedWithoutSending(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	err := c.Set(bg, "big", "k", make([]byte, 1_200_000), 0)
	if !errors.Is(err, ErrResourceExhausted) {
		t.Fatalf("Set of 1.2 MB: %v", err)
	}
	if err := c.Set(bg, "big", "k", make([]byte, 500_000), 0); err != nil {
		t.Fatalf("Set of 500 kB: %v", err)
	}
}

func TestManyRequestsInFlightOnOneConnection(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k := fmt.Sprint(i)
			if err := c.Set(bg, "many", k, []byte("v"+k), 0); err != nil {
				errs <- err
				return
			}
			v, err := c.Get(bg, "many", k)
			if err != nil || string(v) != "v"+k {
				errs <- fmt.Errorf("key %s: %q, %v", k, v, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(c.cn.Load().pending); n != 0 {
		t.Fatalf("%d calls left pending", n)
	}
}

func TestContextDeadlineBecomesTheRequestsTimeout(t *testing.T) {
	d := startDaemon(t, startRedis(t))
	holder := dial(t, d, WithNearBytes(0))
	waiter := dial(t, d, WithNearBytes(0))
	res, err := holder.GetEx(bg, "lease", "7", GetOptions{Lease: true})
	if err != nil || res.Lease != LeaseGranted || len(res.LeaseToken) == 0 {
		t.Fatalf("first lease Get = %+v, %v", res, err)
	}
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err = waiter.GetEx(ctx, "lease", "7", GetOptions{Lease: true})
	took := time.Since(start)
	// The daemon answers LEASE_BUSY a little before the budget it was sent
	// (no error: before the context ended), not at the lease's end (3 s) nor
	// at the client's own 1 s; past the 300 ms only by the machine's time.
	if err != nil || res.Lease != LeaseBusy || took < 200*time.Millisecond || took > time.Second {
		t.Fatalf("waiting lease Get = %+v, %v after %v", res, err, took)
	}
	// A context already past its deadline is not sent.
	ctx2, cancel2 := context.WithTimeout(bg, -time.Second)
	defer cancel2()
	if _, err := waiter.Get(ctx2, "lease", "7"); !errors.Is(err, ErrDeadlineExceeded) ||
		!errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired context: %v", err)
	}
	ctx3, cancel3 := context.WithCancel(bg)
	cancel3()
	if _, err := waiter.Get(ctx3, "lease", "7"); !errors.Is(err, ErrCanceled) {
		t.Fatalf("canceled context: %v", err)
	}
}

func TestLeaseReleaseLetsTheNextCallerTakeIt(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	res, _ := c.GetEx(bg, "lease", "9", GetOptions{Lease: true})
	if res.Lease != LeaseGranted {
		t.Fatalf("lease %v", res.Lease)
	}
	released, err := c.Release(bg, "lease", "9", res.LeaseToken)
	if err != nil || !released {
		t.Fatalf("Release = %v, %v", released, err)
	}
	res2, _ := c.GetEx(bg, "lease", "9", GetOptions{Lease: true})
	if res2.Lease != LeaseGranted || bytes.Equal(res2.LeaseToken, res.LeaseToken) {
		t.Fatalf("after release: %+v", res2)
	}
	// A set with the old token is refused.
	if _, err := c.SetEx(bg, "lease", "9", []byte("x"), 0, SetOptions{LeaseToken: res.LeaseToken}); !errors.Is(err, ErrAborted) {
		t.Fatalf("SetEx with a stale token: %v", err)
	}
}

func TestReconnectsAfterTheDaemonRestarts(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	d := startDaemon(t, r)
	c := dial(t, d, WithNearBytes(0))
	_ = c.Set(bg, "r", "k", []byte("v"), 0)
	d.Stop()
	d.Start(t)
	var v []byte
	var err error
	waitFor(t, "a Get to succeed after the restart", 5*time.Second, func() bool {
		v, err = c.Get(bg, "r", "k")
		return err == nil
	})
	if string(v) != "v" {
		t.Fatalf("Get after restart = %q, %v", v, err)
	}
}

func TestDialURLRules(t *testing.T) {
	t.Setenv("NEARCACHE_URL", "")
	if _, err := Dial("tcp://127.0.0.1:1"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("tcp url: %v", err)
	}
	c, err := Dial("", WithLazyDial())
	if err != nil || c.URL() != DefaultURL {
		t.Fatalf("default url: %v, %v", c, err)
	}
	c.Close()
	t.Setenv("NEARCACHE_URL", "ipc:///tmp/elsewhere.sock")
	c, _ = Dial("", WithLazyDial())
	if c.URL() != "ipc:///tmp/elsewhere.sock" {
		t.Fatalf("NEARCACHE_URL not used: %s", c.URL())
	}
	c.Close()
	if _, err := Dial("", WithTimeout(0)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("zero timeout: %v", err)
	}
}

func TestClosedClientFails(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d)
	c.Close()
	if _, err := c.Get(bg, "a", "b"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// The daemon path allocates only the value it returns (rueidis's manners).
func TestDaemonPathAllocatesOnlyTheValue(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are counted without -race (scripts/test-go.sh runs them so)")
	}
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	v := []byte("alice")
	_ = c.Set(bg, "users", "42", v, time.Minute)
	for _, tc := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"Get of a value", 1, func() { _, _ = c.Get(bg, "users", "42") }},
		{"Get of a missing key", 0, func() { _, _ = c.Get(bg, "users", "nope") }},
		{"Set", 0, func() { _ = c.Set(bg, "users", "42", v, time.Minute) }},
		{"Delete", 0, func() { _, _ = c.Delete(bg, "users", "gone") }},
	} {
		if n := testing.AllocsPerRun(500, tc.f); n > tc.max {
			t.Errorf("%s allocates %v times", tc.name, n)
		}
	}
}
