package nearcache

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Issue 18: the memory a full near tier holds, after a collection, is at
// most 1.1 times its near_bytes, for small and large values alike.
func TestFullTierHoldsAtMostATenthMoreThanItsBytes(t *testing.T) {
	if raceEnabled {
		t.Skip("measured without -race (scripts/test-go.sh runs it so): slow, and the heap differs")
	}
	for _, tc := range []struct {
		name     string
		min, max int
		maxBytes int64
	}{
		{"tiny values", 1, 16, 4 << 20},
		{"small values", 10, 300, 8 << 20},
		{"mixed values", 1, 5000, 16 << 20},
		{"large values", 20000, 70000, 32 << 20},
		// A value is kept only if it fits in a shard: 16 shards of 1 MiB + 1 KiB.
		{"1 MiB values", 1 << 20, 1 << 20, 16<<20 + 16<<10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := liveHeap()
			n := tierWith(t, tc.maxBytes)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := 0; int64(i) < 3*tc.maxBytes/int64(tc.min+100); i++ {
				size := tc.min + rng.IntN(tc.max-tc.min+1)
				v := append([]byte(nil), make([]byte, size)...) // as decodeGet copies a value
				n.fill(n.ticket(), "ns", fmt.Sprintf("key-%d", i), v, false, 0)
			}
			live := liveHeap() - before
			s := n.stats()
			t.Logf("%d entries, near bytes %d of %d, live %d (%.2fx)", s.Entries, s.Bytes, tc.maxBytes, live,
				float64(live)/float64(tc.maxBytes))
			if float64(live) > 1.1*float64(tc.maxBytes) {
				t.Fatalf("live %d bytes for near_bytes %d", live, tc.maxBytes)
			}
			if s.Evictions == 0 || float64(s.Bytes) < 0.9*float64(tc.maxBytes) {
				t.Fatalf("the tier was not filled: %+v", s)
			}
			runtime.KeepAlive(n)
		})
	}
}
