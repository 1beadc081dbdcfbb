package nearcache

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tierWith returns a tier over a fresh ring file (the ring's own behaviour
// is ringcases_test.go's: the shared scenarios).
func tierWith(t *testing.T, maxBytes int64) *nearTier {
	w := &scenarioWriter{t: t, path: filepath.Join(t.TempDir(), "nc.sock.ring")}
	w.step(map[string]any{"op": "create", "slots": 64.0, "epoch": 1.0, "serving_in_ms": 60000.0})
	n := newNearTier(w.path, maxBytes, time.Minute)
	t.Cleanup(n.close)
	return n
}

func fillNow(n *nearTier, ns, key, value string) bool {
	return n.fill(n.ticket(), ns, key, []byte(value), false, 0)
}

func TestTierStaysWithinItsBytesEvictingLeastRecent(t *testing.T) {
	n := tierWith(t, 64<<10)
	val := strings.Repeat("x", 100)
	for i := 0; i < 2000; i++ {
		fillNow(n, "ns", fmt.Sprint(i), val)
	}
	s := n.stats()
	if s.Bytes > 64<<10 || s.Evictions == 0 || s.Entries == 0 {
		t.Fatalf("stats %+v", s)
	}
	if _, st := n.lookup("ns", "1999"); st != nearHit {
		t.Fatal("the most recent entry was evicted")
	}
	if _, st := n.lookup("ns", "0"); st != nearMiss {
		t.Fatal("the oldest entry survived")
	}
}

func TestNearHitAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are counted without -race (scripts/test-go.sh runs them so)")
	}
	n := tierWith(t, 1<<20)
	fillNow(n, "users", "42", "alice")
	allocs := testing.AllocsPerRun(1000, func() {
		if _, st := n.lookup("users", "42"); st != nearHit {
			panic("miss")
		}
	})
	if allocs != 0 {
		t.Fatalf("a near hit allocates %v times", allocs)
	}
}

// Against real daemons: a value read once is served by the near tier, and
// a write through another daemon (another host) reaches it through the ring.
func TestNearTierIsCoherentWithAnotherHostsWrites(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	d1, d2 := startDaemon(t, r), startDaemon(t, r)
	c := dial(t, d1)
	other := dial(t, d2, WithNearBytes(0))
	if err := other.Set(bg, "users", "1", []byte("old"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// (The Set's invalidation reaches d1's ring a moment later, and refuses
	// a fill ticketed before it: so ask until one is kept.)
	var res GetResult
	var err error
	waitFor(t, "a near-tier hit", 2*time.Second, func() bool {
		res, err = c.GetEx(bg, "users", "1", GetOptions{})
		return err == nil && res.Source == SourceNear
	})
	if string(res.Value) != "old" {
		t.Fatalf("near hit = %+v", res)
	}
	if err := other.Set(bg, "users", "1", []byte("new"), time.Minute); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, "the other host's write", 2*time.Second, func() bool {
		v, err := c.Get(bg, "users", "1")
		return err == nil && string(v) == "new"
	})
	t.Logf("seen after %v", time.Since(start))
	// Own writes drop the entry before they are sent.
	_ = c.Set(bg, "users", "1", []byte("mine"), time.Minute)
	if v, _ := c.Get(bg, "users", "1"); string(v) != "mine" {
		t.Fatalf("own write not read back: %q", v)
	}
	// Negative entries are kept as known absent, plain misses are not.
	_, _ = other.SetEx(bg, "users", "404", nil, time.Minute, SetOptions{Negative: true})
	waitFor(t, "a negative near-tier hit", 2*time.Second, func() bool {
		res, err = c.GetEx(bg, "users", "404", GetOptions{})
		return res.Source == SourceNear
	})
	if !errors.Is(err, ErrNotFound) || !res.Negative {
		t.Fatalf("negative entry: %+v %v", res, err)
	}
	_, _ = c.Get(bg, "users", "none")
	if res, _ := c.GetEx(bg, "users", "none", GetOptions{}); res.Source == SourceNear {
		t.Fatal("a plain miss was kept")
	}
	// The daemon stopping poisons the ring: nothing more from the near tier.
	_, _ = c.Get(bg, "users", "1")
	d1.Stop()
	if _, err := c.Get(bg, "users", "1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get with the daemon stopped: %v", err)
	}
}

func TestClientNearHitAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are counted without -race (scripts/test-go.sh runs them so)")
	}
	d := startDaemon(t, startRedis(t))
	c := dial(t, d)
	_ = c.Set(bg, "users", "42", []byte("alice"), time.Minute)
	_, _ = c.Get(bg, "users", "42")
	runtime.GC()
	allocs := testing.AllocsPerRun(1000, func() {
		if v, err := c.Get(bg, "users", "42"); err != nil || len(v) != 5 {
			panic(fmt.Sprint(v, err))
		}
	})
	if allocs != 0 {
		t.Fatalf("Client.Get from the near tier allocates %v times", allocs)
	}
	if s := c.NearStats(); s.Hits < 1000 {
		t.Fatalf("near stats %+v", s)
	}
}
