package nearcache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFetchLoadsOncePerKeyAcrossClientsAndDaemons(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	d1, d2 := startDaemon(t, r), startDaemon(t, r)
	clients := []*Client{dial(t, d1), dial(t, d2), dial(t, d1, WithNearBytes(0)), dial(t, d2, WithNearBytes(0))}
	var loads atomic.Int32
	load := func(ctx context.Context) ([]byte, error) {
		loads.Add(1)
		time.Sleep(100 * time.Millisecond) // a slow database
		return []byte("row"), nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(c *Client) {
			defer wg.Done()
			v, err := c.Fetch(bg, "users", "7", time.Minute, load)
			if err != nil || string(v) != "row" {
				errs <- errors.Join(err, errors.New(string(v)))
			}
		}(clients[i%len(clients)])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads for one cold key", n)
	}
	// And once stored, a hit from the near tier.
	v, err := clients[0].Fetch(bg, "users", "7", time.Minute, load)
	if err != nil || string(v) != "row" || loads.Load() != 1 {
		t.Fatalf("hit: %q %v, %d loads", v, err, loads.Load())
	}
}

func TestFetchReleasesTheLeaseWhenLoadFails(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	a, b := dial(t, d), dial(t, d)
	boom := errors.New("database down")
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := a.Fetch(bg, "users", "8", time.Minute, func(ctx context.Context) ([]byte, error) {
			close(started)
			time.Sleep(200 * time.Millisecond)
			return nil, boom
		})
		done <- err
	}()
	<-started
	start := time.Now()
	v, err := b.Fetch(bg, "users", "8", time.Minute, func(ctx context.Context) ([]byte, error) {
		return []byte("second"), nil
	})
	if err != nil || string(v) != "second" {
		t.Fatalf("waiter: %q %v", v, err)
	}
	// The waiter took the lease when the first loader released it, well
	// before the lease's own 3 s ran out.
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the waiter loaded after %v", took)
	}
	if err := <-done; !errors.Is(err, boom) {
		t.Fatalf("first loader: %v", err)
	}
}

func TestFetchOfAKnownAbsentKeyIsNotFoundWithoutLoading(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d)
	_, _ = c.SetEx(bg, "users", "404", nil, time.Minute, SetOptions{Negative: true})
	_, err := c.Fetch(bg, "users", "404", time.Minute, func(ctx context.Context) ([]byte, error) {
		t.Fatal("loaded a known-absent key")
		return nil, nil
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Fetch: %v", err)
	}
}

func TestFetchFailsOpenOnlyWhenAskedWithNoDaemon(t *testing.T) {
	url := "ipc://" + t.TempDir() + "/none.sock"
	strict, err := Dial(url, WithLazyDial())
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	load := func(ctx context.Context) ([]byte, error) { return []byte("db"), nil }
	if _, err := strict.Fetch(bg, "u", "1", 0, load); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("without fail-open: %v", err)
	}
	open, _ := Dial(url, WithLazyDial(), WithFailOpen(true))
	defer open.Close()
	start := time.Now()
	for i := 0; i < 100; i++ {
		if v, err := open.Fetch(bg, "u", "1", 0, load); err != nil || string(v) != "db" {
			t.Fatalf("fail-open: %q %v", v, err)
		}
	}
	// R1: no dial is retried until the deadline; calls before the next dial
	// is due fail at once.
	// (a call that waited for its 1 s timeout would cost that; 10 ms each
	// leaves a loaded machine under -race a second in all)
	if per := time.Since(start) / 100; per > 10*time.Millisecond {
		t.Fatalf("a fail-open Fetch with no daemon costs %v", per)
	}
}

func TestFetchReturnsAStaleValueAtOnceAndRefreshesItInTheBackground(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d, WithNearBytes(0))
	if _, err := c.SetEx(bg, "swr", "k", []byte("old"), 200*time.Millisecond,
		SetOptions{StaleWhileRevalidate: time.Minute}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	refreshed := make(chan struct{})
	v, err := c.Fetch(bg, "swr", "k", time.Minute, func(ctx context.Context) ([]byte, error) {
		defer close(refreshed)
		return []byte("new"), nil
	})
	if err != nil || string(v) != "old" {
		t.Fatalf("Fetch of a stale value: %q %v", v, err)
	}
	<-refreshed
	waitFor(t, "the refreshed value", 2*time.Second, func() bool {
		v, err := c.Get(bg, "swr", "k")
		return err == nil && string(v) == "new"
	})
}

func TestFetchReleasesTheLeaseWhenLoadPanics(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, startRedis(t))
	c := dial(t, d)
	func() {
		defer func() { _ = recover() }()
		_, _ = c.Fetch(bg, "users", "p", time.Minute, func(ctx context.Context) ([]byte, error) {
			panic("loader bug")
		})
	}()
	start := time.Now()
	v, err := c.Fetch(bg, "users", "p", time.Minute, func(ctx context.Context) ([]byte, error) {
		return []byte("ok"), nil
	})
	if err != nil || string(v) != "ok" || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("after a panicking loader: %q %v in %v (the lease was not released)", v, err, time.Since(start))
	}
}
