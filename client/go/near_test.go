package nearcache

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tierWith returns a tier over a fresh ring file and its writer.
func tierWith(t *testing.T, maxBytes int64) (*nearTier, *ringWriter) {
	path := tempRingPath(t)
	w := newRingWriter(t, path, 64, 60_000)
	n := newNearTier(path, maxBytes, time.Minute)
	t.Cleanup(n.close)
	return n, w
}

func fillNow(n *nearTier, ns, key, value string) bool {
	return n.fill(n.ticket(), ns, key, []byte(value), false, 0)
}

func TestTierServesWhatItWasFilledWith(t *testing.T) {
	n, _ := tierWith(t, 1<<20)
	if !fillNow(n, "ns", "k", "v") {
		t.Fatal("fill refused")
	}
	v, st := n.lookup("ns", "k")
	if st != nearHit || string(v) != "v" {
		t.Fatalf("lookup = %q, %v", v, st)
	}
	if _, st := n.lookup("ns", "other"); st != nearMiss {
		t.Fatal("a key never filled hit")
	}
}

func TestSlotDropsItsKeyAndRefusesAFillTicketedBeforeIt(t *testing.T) {
	n, w := tierWith(t, 1<<20)
	fillNow(n, "ns", "k", "v")
	fillNow(n, "ns", "k2", "v2")
	tk := n.ticket()
	w.key("ns", "k")
	if _, st := n.lookup("ns", "k"); st != nearMiss {
		t.Fatal("a key named by a slot still hit")
	}
	if _, st := n.lookup("ns", "k2"); st != nearHit {
		t.Fatal("another key was dropped")
	}
	if n.fill(tk, "ns", "k", []byte("old"), false, 0) {
		t.Fatal("a fill ticketed before the key's slot was kept")
	}
	if !fillNow(n, "ns", "k", "new") {
		t.Fatal("a fill ticketed after the slot was refused")
	}
}

func TestNamespaceSlotDropsEveryKeyOfIt(t *testing.T) {
	n, w := tierWith(t, 1<<20)
	for i := 0; i < 50; i++ {
		fillNow(n, "a", fmt.Sprint(i), "v")
	}
	fillNow(n, "b", "1", "v")
	tk := n.ticket()
	w.bump("a")
	for i := 0; i < 50; i++ {
		if _, st := n.lookup("a", fmt.Sprint(i)); st != nearMiss {
			t.Fatalf("key %d of a bumped namespace hit", i)
		}
	}
	if _, st := n.lookup("b", "1"); st != nearHit {
		t.Fatal("another namespace was dropped")
	}
	if n.fill(tk, "a", "x", []byte("v"), false, 0) {
		t.Fatal("a fill of the namespace ticketed before the bump was kept")
	}
}

func TestFlushLapAndNewEpochEmptyTheTier(t *testing.T) {
	steps := []struct {
		name string
		do   func(t *testing.T, w *ringWriter) *ringWriter
	}{
		{"flush generation", func(t *testing.T, w *ringWriter) *ringWriter { w.flush(); return w }},
		{"lapped by more than the slot count", func(t *testing.T, w *ringWriter) *ringWriter {
			for i := 0; i < 65; i++ {
				w.key("other", fmt.Sprint(i))
			}
			return w
		}},
		{"a torn slot", func(t *testing.T, w *ringWriter) *ringWriter { w.tear(w.key("x", "y")); return w }},
		{"a new ring (daemon restarted)", func(t *testing.T, w *ringWriter) *ringWriter {
			return newRingWriter(t, w.path, 64, 60_000)
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			n, w := tierWith(t, 1<<20)
			fillNow(n, "ns", "k", "v")
			tk := n.ticket()
			s.do(t, w)
			if s.name == "a new ring (daemon restarted)" {
				n.ringMu.Lock()
				n.recheckAt = 0
				n.ringMu.Unlock()
				w.stop() // the old one is poisoned when its daemon stops
			}
			if _, st := n.lookup("ns", "k"); st != nearMiss {
				t.Fatal("still served after the tier had to empty itself")
			}
			if n.fill(tk, "ns", "k", []byte("v"), false, 0) {
				t.Fatal("a fill ticketed before the emptying was kept")
			}
			if !fillNow(n, "ns", "k", "v2") {
				t.Fatalf("cannot fill afterwards: %+v", n.stats())
			}
			if v, st := n.lookup("ns", "k"); st != nearHit || string(v) != "v2" {
				t.Fatalf("lookup afterwards = %q %v", v, st)
			}
		})
	}
}

func TestNotServingWhenTheDaemonStopsOrStalls(t *testing.T) {
	n, w := tierWith(t, 1<<20)
	fillNow(n, "ns", "k", "v")
	w.serveFor(-1)
	if _, st := n.lookup("ns", "k"); st != nearMiss {
		t.Fatal("served past serving_until")
	}
	w.serveFor(60_000)
	if _, st := n.lookup("ns", "k"); st != nearHit {
		t.Fatal("did not serve again once serving_until moved on")
	}
	w.stop()
	if _, st := n.lookup("ns", "k"); st != nearMiss {
		t.Fatal("served after the daemon stopped")
	}
	if s := n.stats(); s.Serving {
		t.Fatal("stats say serving")
	}
}

func TestNoRingServesNothingAndSaysWhy(t *testing.T) {
	n := newNearTier("/nonexistent/nc.sock.ring", 1<<20, time.Minute)
	defer n.close()
	if n.fill(n.ticket(), "ns", "k", []byte("v"), false, 0) {
		t.Fatal("filled without a ring")
	}
	if s := n.stats(); s.Serving || !strings.Contains(s.Problem, "/nonexistent/nc.sock.ring") {
		t.Fatalf("stats %+v", s)
	}
}

func TestBadRingFilesAreRefusedWithTheReason(t *testing.T) {
	path := tempRingPath(t)
	w := newRingWriter(t, path, 64, 60_000)
	w.mem[8] = 2
	if _, err := openRing(path); err == nil || !strings.Contains(err.Error(), "layout version") {
		t.Fatalf("layout 2: %v", err)
	}
	w.mem[8], w.mem[0] = 1, 'X'
	if _, err := openRing(path); err == nil || !strings.Contains(err.Error(), "bad magic") {
		t.Fatalf("bad magic: %v", err)
	}
	short := tempRingPath(t)
	_ = os.WriteFile(short, []byte("NCRING"), 0o644)
	if _, err := openRing(short); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("short: %v", err)
	}
}

func TestTierStaysWithinItsBytesEvictingLeastRecent(t *testing.T) {
	n, _ := tierWith(t, 64<<10)
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

func TestEntryExpiresAtItsTTLFromTheTicket(t *testing.T) {
	n, _ := tierWith(t, 1<<20)
	tk := n.ticket()
	tk.at -= 1000 // the request went out a second ago
	n.fill(tk, "ns", "k", []byte("v"), false, 1500*time.Millisecond)
	if _, st := n.lookup("ns", "k"); st != nearHit {
		t.Fatal("not kept")
	}
	time.Sleep(600 * time.Millisecond)
	if _, st := n.lookup("ns", "k"); st != nearMiss {
		t.Fatal("kept past its TTL counted from the ticket")
	}
}

func TestNearHitAllocatesNothing(t *testing.T) {
	n, _ := tierWith(t, 1<<20)
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
