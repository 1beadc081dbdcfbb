package nearcache

// A ring writer for the reader's tests: what the daemon does to its ring
// file (common/ring.c), so the tests can publish, flush, stop, lap and tear
// slots at will. It writes through its own shared mapping.

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"
)

type ringWriter struct {
	path  string
	slots uint64
	mem   []byte
	epoch uint64
}

// newRingWriter makes the ring file at path (under a temporary name, then
// renamed) with slots slots, a random epoch, serving for servingMS.
func newRingWriter(t testing.TB, path string, slots uint64, servingMS int64) *ringWriter {
	size := ringSlotsAt + int(slots)*ringSlotSize
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(size)); err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(mem) })
	w := &ringWriter{path: path, slots: slots, mem: mem, epoch: rand.Uint64() | 1}
	copy(mem, ringMagic)
	binary.LittleEndian.PutUint32(mem[8:], ringLayout)
	binary.LittleEndian.PutUint32(mem[12:], ringSlotSize)
	binary.LittleEndian.PutUint64(mem[16:], slots)
	w.put(offEpoch, w.epoch)
	if servingMS != 0 {
		w.serveFor(servingMS)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return w
}

func tempRingPath(t testing.TB) string { return filepath.Join(t.TempDir(), "nc.sock.ring") }

func (w *ringWriter) put(off uint64, v uint64) {
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&w.mem[off])), v)
}

func (w *ringWriter) get(off uint64) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&w.mem[off])))
}

func (w *ringWriter) head() uint64 { return w.get(offHead) }

// publish writes one slot, seqlock-style, and returns its seq.
func (w *ringWriter) publish(kind uint32, nsh, kh uint64) uint64 {
	seq := w.head() + 1
	at := ringSlotsAt + (seq%w.slots)*ringSlotSize
	w.put(at, 0)
	binary.LittleEndian.PutUint32(w.mem[at+8:], kind)
	w.put(at+16, nsh)
	w.put(at+24, kh)
	w.put(at, seq)
	w.put(offHead, seq)
	return seq
}

func (w *ringWriter) key(ns, key string) uint64 {
	return w.publish(kindKey, fnv1a64(ns), fnv1a64(key))
}

func (w *ringWriter) bump(ns string) uint64 { return w.publish(kindNamespace, fnv1a64(ns), 0) }

// tear leaves slot seq half rewritten (its seq 0).
func (w *ringWriter) tear(seq uint64) { w.put(ringSlotsAt+(seq%w.slots)*ringSlotSize, 0) }

func (w *ringWriter) flush() { w.put(offGen, w.get(offGen)+1) }

// serveFor sets serving_until ms from now (negative: in the past).
func (w *ringWriter) serveFor(ms int64) { w.put(offUntil, uint64(nowMS()+ms)) }

// stop poisons the file as a stopping daemon does.
func (w *ringWriter) stop() {
	w.put(offEpoch, 0)
	w.put(offUntil, 0)
}
