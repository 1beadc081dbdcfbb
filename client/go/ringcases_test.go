package nearcache

// The ring reader's conformance scenarios (tests/conformance/ring.json;
// docs/protocol.md, "The reader's scenarios"), run against this near tier
// with a writer of a few lines.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

type ringSpec struct {
	Layout    map[string]any    `json:"layout"`
	Hashes    map[string]string `json:"hashes"`
	Stamps    []map[string]any  `json:"stamps"`
	Replies   []map[string]any  `json:"replies"`
	Scenarios []struct {
		Name  string           `json:"name"`
		Steps []map[string]any `json:"steps"`
	} `json:"scenarios"`
}

func loadRingSpec(t *testing.T) *ringSpec {
	raw, err := os.ReadFile("../../tests/conformance/ring.json")
	if err != nil {
		t.Fatal(err)
	}
	var s ringSpec
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func hexU64(t *testing.T, s string) uint64 {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

func TestRingLayoutHashesStampsAndRepliesMatchTheSpec(t *testing.T) {
	s := loadRingSpec(t)
	want := map[string]int64{"layout": ringLayout, "slot_size": ringSlotSize, "slots_at": ringSlotsAt,
		"slots_min": ringSlotsMin, "slots_max": ringSlotsMax, "epoch_at": offEpoch, "flush_gen_at": offGen,
		"head_at": offHead, "serving_until_at": offUntil, "kind_key": kindKey,
		"kind_namespace": kindNamespace, "stamps": nearStamps, "recheck_ms": ringRecheckMS,
		"slot_seq_at": 0, "slot_kind_at": 8, "slot_ns_hash_at": 16, "slot_key_hash_at": 24}
	for k, v := range want {
		if got, ok := s.Layout[k]; !ok || num(got) != v {
			t.Errorf("layout %s: spec %v, this client %d", k, got, v)
		}
	}
	if s.Layout["magic"] != fmt.Sprintf("%x", ringMagic) {
		t.Errorf("magic %v", s.Layout["magic"])
	}
	for name, h := range s.Hashes {
		if got := fnv1a64(name); got != hexU64(t, h) {
			t.Errorf("fnv1a64(%q) = %x, want %s", name, got, h)
		}
	}
	for _, st := range s.Stamps {
		nsh := fnv1a64(st["ns"].(string))
		if got := nsh % nearStamps; int64(got) != num(st["ns_stamp"]) {
			t.Errorf("ns stamp of %v = %d", st["ns"], got)
		}
		if key, ok := st["key"].(string); ok {
			m := mix(nsh, fnv1a64(key))
			if m != hexU64(t, st["mix"].(string)) || int64(m%nearStamps) != num(st["key_stamp"]) {
				t.Errorf("mix of %v/%v = %x", st["ns"], key, m)
			}
		}
	}
	lease := map[string]LeaseState{"NONE": LeaseNone, "GRANTED": LeaseGranted, "WAITED": LeaseWaited, "BUSY": LeaseBusy}
	keep := map[nearState]string{nearHit: "value", nearAbsent: "negative", nearMiss: "nothing"}
	for _, r := range s.Replies {
		res := GetResult{Found: r["found"].(bool), Negative: r["negative"].(bool), Stale: r["stale"].(bool),
			Lease: lease[r["lease"].(string)], TTL: time.Duration(num(r["ttl_ms"])) * time.Millisecond}
		if got := keep[keepOf(&res)]; got != r["keep"] {
			t.Errorf("%s: keeps %s, want %v", r["name"], got, r["keep"])
		}
	}
}

// scenarioWriter is the ring's writer of the scenarios.
type scenarioWriter struct {
	t      *testing.T
	path   string
	hashes map[string]string
	mem    []byte
}

func (w *scenarioWriter) at(off uint64) *uint64 { return (*uint64)(unsafe.Pointer(&w.mem[off])) }
func (w *scenarioWriter) put(off, v uint64)     { atomic.StoreUint64(w.at(off), v) }
func (w *scenarioWriter) get(off uint64) uint64 { return atomic.LoadUint64(w.at(off)) }

func (w *scenarioWriter) hash(name string) uint64 {
	h, ok := w.hashes[name]
	if !ok {
		w.t.Fatalf("no hash for %q in the spec", name)
	}
	return hexU64(w.t, h)
}

// replace writes data under a temporary name, renames it onto the path,
// and maps it.
func (w *scenarioWriter) replace(data []byte) {
	tmp := w.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Rename(tmp, w.path); err != nil {
		w.t.Fatal(err)
	}
	w.mem = nil
	if len(data) < ringSlotsAt {
		return
	}
	f, err := os.OpenFile(w.path, os.O_RDWR, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, len(data), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = syscall.Munmap(mem) })
	w.mem = mem
}

func (w *scenarioWriter) step(st map[string]any) bool {
	opt := func(k string, def int64) int64 {
		if v, ok := st[k]; ok {
			return num(v)
		}
		return def
	}
	switch st["op"] {
	case "create":
		slots := uint64(num(st["slots"]))
		data := make([]byte, opt("length", int64(ringSlotsAt+slots*ringSlotSize)))
		copy(data, ringMagic)
		binary.LittleEndian.PutUint32(data[8:], uint32(opt("layout", ringLayout)))
		binary.LittleEndian.PutUint32(data[12:], uint32(opt("slot_size", ringSlotSize)))
		binary.LittleEndian.PutUint64(data[16:], slots)
		binary.LittleEndian.PutUint64(data[offEpoch:], uint64(num(st["epoch"])))
		binary.LittleEndian.PutUint64(data[offUntil:], uint64(nowMS()+num(st["serving_in_ms"])))
		w.replace(data)
	case "raw":
		w.replace([]byte(strings.Repeat(st["text"].(string), int(opt("repeat", 1)))))
	case "publish":
		nsh, kh, kind := w.hash(st["ns"].(string)), uint64(0), uint64(kindNamespace)
		if key, ok := st["key"].(string); ok {
			kh, kind = w.hash(key), kindKey
		}
		slots := w.get(16)
		for i := int64(0); i < opt("times", 1); i++ {
			seq := w.get(offHead) + 1
			at := ringSlotsAt + (seq%slots)*ringSlotSize
			w.put(at, 0)
			w.put(at+8, kind) // kind and the 4 zero bytes after it
			w.put(at+16, nsh)
			w.put(at+24, kh)
			w.put(at, seq)
			w.put(offHead, seq)
		}
	case "flush":
		w.put(offGen, w.get(offGen)+1)
	case "epoch":
		w.put(offEpoch, uint64(num(st["epoch"])))
	case "serve":
		if until, ok := st["until"]; ok {
			w.put(offUntil, uint64(num(until)))
		} else {
			w.put(offUntil, uint64(nowMS()+num(st["in_ms"])))
		}
	case "stop":
		w.put(offUntil, 0)
		w.put(offEpoch, 0)
		_ = os.Remove(w.path)
	case "tear":
		seq := uint64(num(st["seq"]))
		w.put(ringSlotsAt+(seq%w.get(16))*ringSlotSize, 0)
	case "head":
		w.put(offHead, uint64(num(st["head"])))
	default:
		return false
	}
	return true
}

func TestRingScenarios(t *testing.T) {
	s := loadRingSpec(t)
	if len(s.Scenarios) == 0 {
		t.Fatal("no scenarios")
	}
	for _, sc := range s.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			w := &scenarioWriter{t: t, path: filepath.Join(t.TempDir(), "nc.sock.ring"), hashes: s.Hashes}
			var n *nearTier
			tickets := map[string]ticket{}
			defer func() {
				if n != nil {
					n.close()
				}
			}()
			for i, st := range sc.Steps {
				where := fmt.Sprintf("step %d %v", i, st)
				if w.step(st) {
					continue
				}
				opt := func(k string, def int64) int64 {
					if v, ok := st[k]; ok {
						return num(v)
					}
					return def
				}
				str := func(k string) string { v, _ := st[k].(string); return v }
				switch st["op"] {
				case "open":
					n = newNearTier(w.path, opt("max_bytes", 1<<20), time.Duration(opt("max_ttl_ms", 60000))*time.Millisecond)
				case "ticket":
					tickets[str("name")] = n.ticket()
				case "fill":
					tk, ok := tickets[str("ticket")]
					if !ok {
						tk = n.ticket()
					}
					ttl := time.Duration(num(st["ttl_ms"])) * time.Millisecond
					if neg, _ := st["negative"].(bool); neg {
						n.fill(tk, str("ns"), str("key"), nil, true, ttl)
					} else {
						n.fill(tk, str("ns"), str("key"), []byte(strings.Repeat(str("value"), int(opt("repeat", 1)))), false, ttl)
					}
				case "get":
					v, ttl, state := n.lookupEx(str("ns"), str("key"))
					want, hasWant := st["want"]
					neg, _ := st["negative"].(bool)
					switch {
					case neg && state != nearAbsent:
						t.Fatalf("%s: got %v %q, want a negative hit", where, state, v)
					case hasWant && want == nil && state != nearMiss:
						t.Fatalf("%s: got %v %q, want a miss", where, state, v)
					case hasWant && want != nil && (state != nearHit || string(v) != want):
						t.Fatalf("%s: got %v %q", where, state, v)
					}
					if max, ok := st["ttl_max"]; ok && (ttl <= 0 || ttl > time.Duration(num(max))*time.Millisecond) {
						t.Fatalf("%s: time left %v", where, ttl)
					}
				case "drop":
					n.drop(str("ns"), str("key"))
				case "drop_ns":
					n.dropNS(str("ns"))
				case "forget":
					n.forget()
				case "sleep":
					time.Sleep(time.Duration(num(st["ms"])) * time.Millisecond)
				case "stats":
					checkStats(t, where, n.stats(), st)
				default:
					t.Fatalf("%s: unknown op", where)
				}
			}
		})
	}
}

func checkStats(t *testing.T, where string, s NearStats, st map[string]any) {
	got := map[string]any{"hits": float64(s.Hits), "misses": float64(s.Misses), "entries": float64(s.Entries),
		"flushes": float64(s.Flushes), "laps": float64(s.Laps), "fills_refused": float64(s.FillsRefused),
		"serving": s.Serving}
	for k, want := range st {
		switch k {
		case "op":
		case "problem":
			if words, ok := want.([]any); ok {
				p := strings.ToLower(s.Problem)
				if p == "" || !strings.Contains(s.Problem, "nc.sock.ring") {
					t.Fatalf("%s: problem %q", where, s.Problem)
				}
				for _, w := range words {
					if !strings.Contains(p, strings.ToLower(w.(string))) {
						t.Fatalf("%s: problem %q lacks %q", where, s.Problem, w)
					}
				}
			} else if s.Problem != want {
				t.Fatalf("%s: problem %q", where, s.Problem)
			}
		default:
			if g, ok := got[k]; !ok || g != want {
				t.Fatalf("%s: %s = %v (stats %+v)", where, k, g, s)
			}
		}
	}
}
