package nearcache

// The reader's side of the daemon's invalidation ring (docs/protocol.md,
// "The near-tier ring"): the file mapped read-only and shared with
// syscall.Mmap, its header checked once, and every 8-byte field read with
// one atomic load (sync/atomic on the mapping), in the writer's order.

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
	_ "unsafe" // go:linkname
)

const (
	ringMagic    = "NCRING\x00\x00"
	ringLayout   = 1
	ringSlotSize = 32
	ringSlotsAt  = 192
	ringSlotsMin = 64
	ringSlotsMax = 1 << 24
	// ringRecheckMS: how often a tier that cannot serve looks for a new file.
	ringRecheckMS = 100

	offEpoch = 24
	offGen   = 32
	offHead  = 64
	offUntil = 128

	kindKey       = 1
	kindNamespace = 2
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// nowMS returns CLOCK_MONOTONIC in ms, the clock of serving_until (the Go
// runtime's nanotime reads that clock on Linux).
func nowMS() int64 { return nanotime() / 1e6 }

// fnv1a64 returns the FNV-1a 64 hash of s, as a slot carries it.
func fnv1a64(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// ring is one mapped ring file.
type ring struct {
	path     string
	mem      []byte
	dev, ino uint64
	slots    uint64
}

// openRing maps the ring at path and checks its header.
func openRing(path string) (*ring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("near ring %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("near ring %s: %w", path, err)
	}
	size := st.Size()
	if size < ringSlotsAt {
		return nil, fmt.Errorf("near ring %s: too short for a ring header", path)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("near ring %s: mmap: %w", path, err)
	}
	r := &ring{path: path, mem: mem}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		r.dev, r.ino = sys.Dev, sys.Ino
	}
	slots := binary.LittleEndian.Uint64(mem[16:24])
	problem := ""
	switch {
	case string(mem[:8]) != ringMagic:
		problem = "not a near ring (bad magic)"
	case binary.LittleEndian.Uint32(mem[8:12]) != ringLayout:
		problem = fmt.Sprintf("a ring of another layout version (%d; this client reads %d)",
			binary.LittleEndian.Uint32(mem[8:12]), ringLayout)
	case binary.LittleEndian.Uint32(mem[12:16]) != ringSlotSize || slots < ringSlotsMin ||
		slots > ringSlotsMax || slots&(slots-1) != 0:
		problem = "a ring header with a bad slot size or count"
	case uint64(size) < ringSlotsAt+slots*ringSlotSize:
		problem = "truncated: shorter than its slots"
	}
	if problem != "" {
		_ = syscall.Munmap(mem)
		return nil, fmt.Errorf("near ring %s: %s", path, problem)
	}
	r.slots = slots
	// Goroutines read the mapping without a lock, each holding r while it
	// does: it is unmapped once r is unreachable, never under a reader.
	runtime.SetFinalizer(r, func(r *ring) { _ = syscall.Munmap(r.mem) })
	return r, nil
}

func (r *ring) load64(off uint64) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&r.mem[off])))
}

func (r *ring) epoch() uint64 { return r.load64(offEpoch) }
func (r *ring) gen() uint64   { return r.load64(offGen) }
func (r *ring) head() uint64  { return r.load64(offHead) }
func (r *ring) until() int64  { return int64(r.load64(offUntil)) }

// slot reads slot seq; ok is false when its seq does not read seq before
// and after its fields (it was overwritten: the reader was lapped).
func (r *ring) slot(seq uint64) (kind uint32, nsh, kh uint64, ok bool) {
	at := ringSlotsAt + (seq&(r.slots-1))*ringSlotSize
	if r.load64(at) != seq {
		return 0, 0, 0, false
	}
	kind = atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.mem[at+8])))
	nsh = r.load64(at + 16)
	kh = r.load64(at + 24)
	if r.load64(at) != seq {
		return 0, 0, 0, false
	}
	return kind, nsh, kh, true
}

// replaced reports whether the path now names another file, or none.
func (r *ring) replaced() bool {
	var st syscall.Stat_t
	if err := syscall.Stat(r.path, &st); err != nil {
		return true
	}
	return st.Dev != r.dev || st.Ino != r.ino
}
