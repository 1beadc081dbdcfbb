package nearcache

// The client rules of docs/protocol.md: R1 (fail fast on dial, with a
// backoff) and R2 (pending invalidations).

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nearcache/nearcache/client/go/nctest"
)

func TestDialOfAMissingSocketFailsAtOnceAndSaysWhatToDo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.sock")
	start := time.Now()
	_, err := Dial("ipc://" + path)
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Dial: %v", err)
	}
	for _, want := range []string{path, "no daemon is listening", "NEARCACHE_URL"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q lacks %q", e.Message, want)
		}
	}
	if took := time.Since(start); took > 500*time.Millisecond { // not its 1 s timeout
		t.Fatalf("Dial took %v", took)
	}
}

func TestDialOfAStaleSocketSaysTheDaemonIsNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	_, err = Dial("ipc://" + path)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) ||
		!strings.Contains(err.Error(), "stale socket") {
		t.Fatalf("Dial: %v", err)
	}
}

func TestPermissionDeniedNamesOwnerGroupModeAndTheFix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nc.sock")
	if err := os.WriteFile(path, nil, 0o660); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(path, 0o660)
	err := dialError(path, &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EACCES)})
	var e *Error
	if !errors.As(err, &e) || e.Code != PermissionDenied || !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("%v", err)
	}
	for _, want := range []string{path, ":", " 0660)", "to group", "socket_group"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q lacks %q", e.Message, want)
		}
	}
}

func TestCallsBeforeTheNextDialIsDueFailAtOnceThenItDialsOnce(t *testing.T) {
	r := startRedis(t)
	dir := t.TempDir()
	url := "ipc://" + dir + "/nc.sock"
	c, err := Dial(url, WithLazyDial(), WithNearBytes(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, first := c.Ping(bg)
	if !errors.Is(first, ErrUnavailable) {
		t.Fatalf("first Ping: %v", first)
	}
	d := nctest.NewDaemon(t, r, dir)
	d.Start(t)
	// The backoff after the first failure is 25 to 50 ms; the daemon took
	// longer than that to start, so the next call dials, once, and works.
	if _, err := c.Ping(bg); err != nil {
		t.Fatalf("Ping once the daemon is up: %v", err)
	}
	d.Stop()
	_, err1 := c.Ping(bg) // the connection is lost: one dial, which fails
	start := time.Now()
	_, err2 := c.Ping(bg) // within the backoff: no dial, the same error
	// at once: within the backoff's 25 ms (1 ms was one preemption under -race)
	if took := time.Since(start); err1 == nil || err2 != err1 || took > 25*time.Millisecond {
		t.Fatalf("after the daemon stopped: %v, then %v in %v", err1, err2, took)
	}
}

func TestInvalidationsThatCannotBeDeliveredAreKeptAndSentFirst(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	d := startDaemon(t, r)
	c := dial(t, d, WithPendingLimit(3))
	strict := dial(t, d, WithStrictInvalidation(true))
	for _, k := range []string{"1", "2", "3", "4", "5"} {
		_ = c.Set(bg, "p", k, []byte("v"+k), time.Hour)
	}
	_ = c.Set(bg, "q", "1", []byte("v"), time.Hour)
	_ = c.Set(bg, "other", "x", []byte("v"), time.Hour)
	for _, k := range []string{"1", "2"} { // in the near tier
		if _, err := c.Get(bg, "p", k); err != nil {
			t.Fatal(err)
		}
	}
	before := c.NearStats()
	d.Stop()
	existed, err := c.Delete(bg, "p", "1")
	if !errors.Is(err, ErrQueued) || errors.Is(err, ErrUnavailable) || existed {
		t.Fatalf("Delete with the daemon down: %v, %v", existed, err)
	}
	// kept: the near tier empties (a reply in flight may hold p/1's old value)
	if st := c.NearStats(); st.Entries != 0 || st.Flushes != before.Flushes+1 {
		t.Fatalf("near tier after a kept Delete: %+v (before: %+v)", st, before)
	}
	if _, err := c.Get(bg, "p", "1"); errors.Is(err, ErrQueued) || err == nil {
		t.Fatalf("the near tier still serves a deleted key: %v", err)
	}
	if _, err := c.Bump(bg, "q"); !errors.Is(err, ErrQueued) {
		t.Fatalf("Bump with the daemon down: %v", err)
	}
	for _, k := range []string{"2", "3"} { // the third and fourth: past the bound of 3
		if _, err := c.Delete(bg, "p", k); !errors.Is(err, ErrQueued) {
			t.Fatal(err)
		}
	}
	if _, err := c.Delete(bg, "other", "x"); !errors.Is(err, ErrQueued) {
		t.Fatal(err)
	}
	if _, err := strict.Delete(bg, "p", "5"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("strict Delete: %v", err)
	}
	d.Start(t)
	waitFor(t, "the client to reconnect", 5*time.Second, func() bool {
		_, err := c.Ping(bg)
		return err == nil
	})
	check := dial(t, d, WithNearBytes(0))
	for _, k := range []struct{ ns, key string }{{"p", "1"}, {"p", "2"}, {"p", "3"}, {"p", "4"}, {"q", "1"}, {"other", "x"}} {
		// p/2 and p/3 went past the bound: p was bumped instead (p/4 too).
		if _, err := check.Get(bg, k.ns, k.key); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s/%s after reconnect: %v", k.ns, k.key, err)
		}
	}
	if c.npend.Load() != 0 {
		t.Fatalf("%d invalidations still pending", c.npend.Load())
	}
}

func TestCloseFlushesPendingInvalidationsWhenTheDaemonAnswers(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	d := startDaemon(t, r)
	c, err := Dial(d.URL, WithNearBytes(0))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Set(bg, "c", "k", []byte("v"), time.Hour)
	d.Stop()
	if _, err := c.Delete(bg, "c", "k"); !errors.Is(err, ErrQueued) {
		t.Fatal(err)
	}
	d.Start(t)
	time.Sleep(100 * time.Millisecond) // the backoff
	c.Close()
	if _, err := dial(t, d).Get(bg, "c", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Close: %v", err)
	}
}

// R3: the near tier's counters reach the daemon, at most once a second and
// only when they changed, and the daemon adds them to the host's totals.
func TestNearTierReportsItsCountersToTheDaemon(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d)
	_ = c.Set(bg, "r3", "k", []byte("v"), time.Minute)
	waitFor(t, "a near-tier hit", 2*time.Second, func() bool {
		r, _ := c.GetEx(bg, "r3", "k", GetOptions{})
		return r.Source == SourceNear
	})
	for i := 0; i < 100; i++ {
		_, _ = c.Get(bg, "r3", "k")
	}
	hits := c.NearStats().Hits
	plain := dial(t, d, WithNearBytes(0))
	var st map[string]int64
	waitFor(t, "the report", 3*time.Second, func() bool {
		st, _ = plain.Stats(bg)
		return st["near_hits"] >= int64(hits)
	})
	// The reporter counts a report once its reply is back, a moment after
	// the daemon took it: wait for that count to catch up with the totals.
	waitFor(t, "the report counted", time.Second, func() bool { return c.reporter.reports.Load() >= 1 })
	time.Sleep(50 * time.Millisecond)
	if st["near_clients"] != 1 || st["near_misses"] < 1 {
		t.Fatalf("stats after the report: near_hits %d near_misses %d near_clients %d",
			st["near_hits"], st["near_misses"], st["near_clients"])
	}
	// Idle: nothing changed, so nothing more is sent.
	sent := c.reporter.reports.Load()
	time.Sleep(2200 * time.Millisecond)
	if c.reporter.reports.Load() != sent {
		t.Fatalf("reports went on without any change: %d then %d", sent, c.reporter.reports.Load())
	}
}

// R2: what is kept is sent as soon as the daemon is back, without another
// call of the application; R1: a socket made since the failed dial is
// dialed at once, before the backoff is due.
func TestKeptInvalidationsAreSentWhenTheDaemonIsBackWithoutAnotherCall(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	_ = c.Set(bg, "bg", "k", []byte("v"), time.Hour)
	d.Stop()
	if _, err := c.Delete(bg, "bg", "k"); !errors.Is(err, ErrQueued) {
		t.Fatal(err)
	}
	d.Start(t)
	check := dial(t, d, WithNearBytes(0))
	waitFor(t, "the kept Delete to reach the daemon", 3*time.Second, func() bool {
		_, err := check.Get(bg, "bg", "k")
		return errors.Is(err, ErrNotFound)
	})
}

func TestMissingDirectoryIsNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "nc.sock")
	_, err := Dial("ipc://" + path)
	if err == nil || !strings.Contains(err.Error(), "nor does its directory") {
		t.Fatalf("Dial: %v", err)
	}
}

// R2: a kept Delete that the daemon cannot apply yet (its Redis is down)
// stays first in line without failing the calls behind it, and is sent
// again once Redis is back.
func TestAKeptDeleteTheDaemonCannotApplyYetStaysKeptAndOtherCallsGoOn(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	d := startDaemon(t, r)
	c := dial(t, d, WithNearBytes(0))
	if err := c.Set(bg, "kd", "k", []byte("old"), time.Hour); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	if _, err := c.Delete(bg, "kd", "k"); !errors.Is(err, ErrQueued) {
		t.Fatalf("Delete with the daemon down: %v", err)
	}
	r.Kill()
	d.Start(t)
	waitFor(t, "a Ping behind the kept Delete", 5*time.Second, func() bool {
		_, err := c.Ping(bg)
		return err == nil
	})
	if c.npend.Load() != 1 {
		t.Fatalf("%d kept invalidations while the daemon's Redis is down, want 1", c.npend.Load())
	}
	r.Restart(t)
	waitFor(t, "the kept Delete sent once Redis is back", 10*time.Second, func() bool {
		return c.npend.Load() == 0
	})
}
