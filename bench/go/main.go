// Command gobench measures the Go client against rueidis and go-redis on
// the same Redis (docs/benchmarks.md, "Go client"); bench/go/run.sh starts
// the Redis and the daemons and runs every part.
//
//	gobench hits -url ipc://A.sock -redis 127.0.0.1:PORT [-duration 2s]
//	gobench stampede -a ipc://A.sock -b ipc://B.sock -redis 127.0.0.1:PORT [-n 100]
//	gobench coherence -a ipc://A.sock -b ipc://B.sock [-rounds 1000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	nearcache "github.com/nearcache/nearcache/client/go"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

var bg = context.Background()

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gobench hits|stampede|stampede-child|coherence [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	url := fs.String("url", "", "nearcached URL (hits)")
	a := fs.String("a", "", "first nearcached URL")
	b := fs.String("b", "", "second nearcached URL")
	redisAddr := fs.String("redis", "", "Redis host:port")
	dur := fs.Duration("duration", 2*time.Second, "time per measurement")
	n := fs.Int("n", 100, "goroutines per process (stampede)")
	rounds := fs.Int("rounds", 1000, "rounds (coherence)")
	key := fs.String("key", "", "key (stampede-child)")
	start := fs.Int64("start", 0, "start time, unix ns (stampede-child)")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "hits":
		err = hits(*url, *redisAddr, *dur)
	case "stampede":
		err = stampede(*a, *b, *redisAddr, *n)
	case "stampede-child":
		err = stampedeSide(*b, *redisAddr, *key, *n, time.Unix(0, *start))
	case "coherence":
		err = coherence(*a, *b, *rounds)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gobench:", err)
		os.Exit(1)
	}
}

// result is one measurement: ops/s over all goroutines and the p50 and p99
// of single operations.
type result struct {
	ops      float64
	p50, p99 time.Duration
}

// measure runs op in g goroutines for d (after a warm-up of d/4), timing
// every operation, and returns the result.
func measure(g int, d time.Duration, op func() error) (result, error) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	lat := make([][]time.Duration, g)
	counts := make([]int, g)
	errs := make(chan error, g)
	for w := 0; w < 5000; w++ { // warm up
		if err := op(); err != nil {
			return result{}, err
		}
	}
	began := time.Now()
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			buf := make([]time.Duration, 0, 1<<18)
			for !stop.Load() {
				t := time.Now()
				if err := op(); err != nil {
					errs <- err
					return
				}
				if len(buf) < cap(buf) {
					buf = append(buf, time.Since(t))
				}
				counts[i]++
			}
			lat[i] = buf
		}(i)
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(began)
	select {
	case err := <-errs:
		return result{}, err
	default:
	}
	var all []time.Duration
	total := 0
	for i := range lat {
		all = append(all, lat[i]...)
		total += counts[i]
	}
	slices.Sort(all)
	return result{ops: float64(total) / elapsed.Seconds(), p50: all[len(all)/2], p99: all[len(all)*99/100]}, nil
}

func hits(url, redisAddr string, d time.Duration) error {
	value := make([]byte, 100)
	near, err := nearcache.Dial(url)
	if err != nil {
		return err
	}
	defer near.Close()
	daemon, err := nearcache.Dial(url, nearcache.WithNearBytes(0))
	if err != nil {
		return err
	}
	defer daemon.Close()
	if err := near.Set(bg, "bench", "hot", value, time.Hour); err != nil {
		return err
	}
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr}})
	if err != nil {
		return err
	}
	defer rc.Close()
	gr := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 32})
	defer gr.Close()
	if err := gr.Set(bg, "bench:hot", value, time.Hour).Err(); err != nil {
		return err
	}
	ops := []struct {
		name string
		op   func() error
	}{
		{"nearcache Get, near-tier hit", func() error {
			v, err := near.Get(bg, "bench", "hot")
			if err == nil && len(v) != 100 {
				err = fmt.Errorf("got %d bytes", len(v))
			}
			return err
		}},
		{"rueidis DoCache, client-side cache hit", func() error {
			v, err := rc.DoCache(bg, rc.B().Get().Key("bench:hot").Cache(), time.Minute).AsBytes()
			if err == nil && len(v) != 100 {
				err = fmt.Errorf("got %d bytes", len(v))
			}
			return err
		}},
		{"go-redis Get (a Redis round trip)", func() error {
			v, err := gr.Get(bg, "bench:hot").Bytes()
			if err == nil && len(v) != 100 {
				err = fmt.Errorf("got %d bytes", len(v))
			}
			return err
		}},
		{"nearcache Get, near tier off (daemon L1 hit)", func() error {
			v, err := daemon.Get(bg, "bench", "hot")
			if err == nil && len(v) != 100 {
				err = fmt.Errorf("got %d bytes", len(v))
			}
			return err
		}},
	}
	fmt.Println("| path | goroutines | p50 | p99 | ops/s |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: |")
	for _, o := range ops {
		for _, g := range []int{1, 16} {
			r, err := measure(g, d, o.op)
			if err != nil {
				return fmt.Errorf("%s: %w", o.name, err)
			}
			fmt.Printf("| %s | %d | %s | %s | %.0f |\n", o.name, g, us(r.p50), us(r.p99), r.ops)
		}
	}
	if s := near.NearStats(); s.Hits == 0 {
		return fmt.Errorf("the near tier never hit: %+v", s)
	}
	return nil
}

func us(d time.Duration) string {
	if d < 10*time.Microsecond {
		return fmt.Sprintf("%.2f µs", float64(d)/1e3)
	}
	return fmt.Sprintf("%.1f µs", float64(d)/1e3)
}

// loadDelay is the database's time per load in the stampede.
const loadDelay = 20 * time.Millisecond

// stampede runs n goroutines here (on daemon a) and n in a child process
// (on daemon b), all asking for one cold key at the same instant, with
// Fetch; then the same with rueidis and go-redis doing cache-aside. Loads
// are counted in Redis, across both processes.
func stampede(a, b, redisAddr string, n int) error {
	gr := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer gr.Close()
	fmt.Println("| client | goroutines (2 processes) | loads of one cold key |")
	fmt.Println("| --- | ---: | ---: |")
	for _, kind := range []string{"nearcache", "rueidis", "go-redis"} {
		key := fmt.Sprintf("%s-%d", kind, time.Now().UnixNano())
		at := time.Now().Add(time.Second)
		child := exec.Command(os.Args[0], "stampede-child", "-b", b, "-redis", redisAddr, "-key", key,
			"-n", strconv.Itoa(n), "-start", strconv.FormatInt(at.UnixNano(), 10))
		child.Stdout, child.Stderr = os.Stderr, os.Stderr
		child.Env = append(os.Environ(), "GOBENCH_KIND="+kind)
		if err := child.Start(); err != nil {
			return err
		}
		_ = os.Setenv("GOBENCH_KIND", kind)
		err := stampedeSide(a, redisAddr, key, n, at)
		if werr := child.Wait(); err == nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		loads, _ := gr.Get(bg, "loads:"+key).Int()
		fmt.Printf("| %s | %d | %d |\n", kind, 2*n, loads)
	}
	return nil
}

// stampedeSide is one process's half of a stampede ($GOBENCH_KIND says
// which client).
func stampedeSide(url, redisAddr, key string, n int, at time.Time) error {
	gr := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: n})
	defer gr.Close()
	load := func(ctx context.Context) ([]byte, error) {
		time.Sleep(loadDelay)
		return []byte("row"), gr.Incr(ctx, "loads:"+key).Err()
	}
	var get func() error
	switch os.Getenv("GOBENCH_KIND") {
	case "nearcache":
		c, err := nearcache.Dial(url, nearcache.WithTimeout(5*time.Second))
		if err != nil {
			return err
		}
		defer c.Close()
		get = func() error {
			v, err := c.Fetch(bg, "stampede", key, time.Minute, load)
			if err == nil && string(v) != "row" {
				err = fmt.Errorf("got %q", v)
			}
			return err
		}
	case "rueidis":
		rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr}})
		if err != nil {
			return err
		}
		defer rc.Close()
		get = func() error {
			_, err := rc.DoCache(bg, rc.B().Get().Key("s:"+key).Cache(), time.Minute).AsBytes()
			if rueidis.IsRedisNil(err) {
				v, err := load(bg)
				if err != nil {
					return err
				}
				return rc.Do(bg, rc.B().Set().Key("s:"+key).Value(string(v)).Ex(time.Minute).Build()).Error()
			}
			return err
		}
	default:
		get = func() error {
			_, err := gr.Get(bg, "s:"+key).Bytes()
			if err == redis.Nil {
				v, err := load(bg)
				if err != nil {
					return err
				}
				return gr.Set(bg, "s:"+key, v, time.Minute).Err()
			}
			return err
		}
	}
	time.Sleep(time.Until(at))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := get(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// coherence measures, per round, the time from a write acknowledged by
// daemon a to the first read of the new value through daemon b: by a Go
// client without a near tier (the daemon's own delivery plus a round trip)
// and, every other round, by one whose near tier holds the key.
func coherence(a, b string, rounds int) error {
	w, err := nearcache.Dial(a, nearcache.WithNearBytes(0))
	if err != nil {
		return err
	}
	defer w.Close()
	plain, err := nearcache.Dial(b, nearcache.WithNearBytes(0))
	if err != nil {
		return err
	}
	defer plain.Close()
	near, err := nearcache.Dial(b, nearcache.WithNearBytes(1<<20))
	if err != nil {
		return err
	}
	defer near.Close()
	var toDaemon, toNear []time.Duration
	value := "v0"
	if err := w.Set(bg, "bench", "inval", []byte(value), 10*time.Minute); err != nil {
		return err
	}
	hot := func(c *nearcache.Client, want string, from nearcache.Source) bool {
		for i := 0; i < 1000; i++ {
			r, err := c.GetEx(bg, "bench", "inval", nearcache.GetOptions{})
			if err == nil && string(r.Value) == want && r.Source == from {
				return true
			}
		}
		return false
	}
	failures := 0
	for i := 1; i <= rounds; i++ {
		reader := plain
		if i%2 == 0 {
			reader = near
		}
		if !hot(plain, value, nearcache.SourceL1) || !hot(near, value, nearcache.SourceNear) {
			failures++
			continue
		}
		value = "v" + strconv.Itoa(i)
		if err := w.Set(bg, "bench", "inval", []byte(value), 10*time.Minute); err != nil {
			return err
		}
		acked := time.Now()
		for {
			v, err := reader.Get(bg, "bench", "inval")
			if err == nil && string(v) == value {
				break
			}
			// A near-tier read spins without blocking: give the core to the
			// daemons (2 cores here) as a blocking read would.
			syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
		}
		if reader == plain {
			toDaemon = append(toDaemon, time.Since(acked))
		} else {
			toNear = append(toNear, time.Since(acked))
		}
	}
	if failures > rounds/10 {
		return fmt.Errorf("%d of %d rounds could not make the key hot", failures, rounds)
	}
	slices.Sort(toDaemon)
	slices.Sort(toNear)
	q := func(s []time.Duration, f float64) time.Duration { return s[int(float64(len(s)-1)*f)] }
	fmt.Println("| set through daemon A, then the new value read through daemon B | rounds | p50 | p99 |")
	fmt.Println("| --- | ---: | ---: | ---: |")
	fmt.Printf("| Go client, near tier off (daemon delivery + a round trip) | %d | %s | %s |\n",
		len(toDaemon), us(q(toDaemon, 0.5)), us(q(toDaemon, 0.99)))
	fmt.Printf("| Go client, near tier holding the key (through the ring) | %d | %s | %s |\n",
		len(toNear), us(q(toNear, 0.5)), us(q(toNear, 0.99)))
	fmt.Printf("\nnear-tier p99 / daemon p99: %.2f (target <= 1.5)\n",
		float64(q(toNear, 0.99))/float64(q(toDaemon, 0.99)))
	return nil
}
