package nearcache

// The near tier: hot values kept in this process, bounded in bytes (an LRU
// per shard, no global lock on a hit), kept coherent by the daemon's ring
// with the reader algorithm of docs/protocol.md ("The reader"), as the C
// and Python clients do.
//
// Before every lookup the tier checks, with atomic loads only, that the
// ring has not moved (epoch, serving_until, flush generation, head); when
// it has, one goroutine applies the new slots under ringMu while the others
// wait for it. A slot stamps its key (or namespace) hash before it drops
// the matching entries under their shard's lock, and an emptying counts
// itself before it empties the shards, so a fill that checks its ticket
// under the shard lock either sees the stamp (and is refused) or is
// dropped by it afterwards.

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// nearShardBytes: a tier has a shard per this many bytes, 1 to 32 of
	// them (a power of two), so that one shard holds values as large as a
	// small tier itself.
	nearShardBytes = 1 << 20
	nearMaxShards  = 32
	nearStamps     = 4096
	// entryOverhead is what an entry costs beyond its bytes: the entry
	// (128), its map slot at the map's emptiest (57), and the rest measured
	// (honest_test.go: a full tier holds at most 1.1x its bytes).
	entryOverhead = 240
)

// nearState is what a lookup found.
type nearState int8

const (
	nearMiss nearState = iota
	nearHit
	nearAbsent // a negative entry: known absent
)

// ticket is the tier's state when a request was sent.
type ticket struct {
	flushes, cursor uint64
	at              int64 // ms: a reply's TTL counts from then
}

type hkey struct{ nsh, kh uint64 }

// entry is one key's value (absent: known absent).
type entry struct {
	nsh, kh    uint64
	ns, key    string
	value      []byte
	absent     bool
	expires    int64
	charge     int64
	prev, next *entry // the shard's LRU list, most recent first
	chain      *entry // another key with the same hashes
}

type nearShard struct {
	mu        sync.Mutex
	m         map[hkey]*entry
	lru       entry // sentinel
	bytes     int64
	count     int
	max       int64
	byNS      map[uint64]int // entries per namespace hash
	hits      uint64
	misses    uint64
	evictions uint64
	_         [64]byte
}

type nearTier struct {
	path   string
	maxTTL int64 // ms
	max    int64
	shards []nearShard
	mask   uint64

	ringMu    sync.Mutex // applying the ring, mapping it
	rg        atomic.Pointer[ring]
	epoch     atomic.Uint64
	gen       atomic.Uint64
	cursor    atomic.Uint64
	flushes   atomic.Uint64 // emptyings, for tickets
	recheckAt int64         // under ringMu
	problem   string        // under ringMu
	applied   bool          // under ringMu: a ring was applied before
	keyStamp  [nearStamps]atomic.Uint64
	nsStamp   [nearStamps]atomic.Uint64

	nflushes, laps, refused, idleMisses atomic.Uint64
}

func newNearTier(path string, maxBytes int64, maxTTL time.Duration) *nearTier {
	n := &nearTier{path: path, max: maxBytes, maxTTL: max(maxTTL.Milliseconds(), 1)}
	shards := 1
	for shards < nearMaxShards && int64(shards*2)*nearShardBytes <= maxBytes {
		shards *= 2
	}
	n.shards, n.mask = make([]nearShard, shards), uint64(shards-1)
	for i := range n.shards {
		sh := &n.shards[i]
		sh.m = make(map[hkey]*entry)
		sh.byNS = make(map[uint64]int)
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
		sh.max = maxBytes / int64(shards)
	}
	n.ringMu.Lock()
	n.attachLocked(nowMS())
	n.ringMu.Unlock()
	return n
}

// allocSize is what the allocator takes for a string of n bytes (its size
// classes are 8-byte steps up to 128, then 16 up to 256; a little more
// beyond, charged with the value's capacity).
func allocSize(n int) int {
	if n <= 128 {
		return (n + 7) &^ 7
	}
	return (n + 15) &^ 15
}

// mix is the C client's mix of the two hashes: the key stamps' index.
func mix(nsh, kh uint64) uint64 {
	h := nsh ^ (kh * 0x9e3779b97f4a7c15)
	return h ^ (h >> 29)
}

func (n *nearTier) shardOf(nsh, kh uint64) *nearShard {
	return &n.shards[mix(nsh, kh)&n.mask]
}

// current reports, with atomic loads only, whether the tier is caught up
// with the ring and may serve at now.
func (n *nearTier) current(now int64) bool {
	r := n.rg.Load()
	if r == nil {
		return false
	}
	e := r.epoch()
	return e != 0 && r.until() >= now && r.gen() == n.gen.Load() && r.head() == n.cursor.Load() &&
		e == n.epoch.Load()
}

// ready returns whether the tier may serve at now, applying the ring first.
func (n *nearTier) ready(now int64) bool {
	if n.current(now) {
		return true
	}
	n.ringMu.Lock()
	ok := n.catchUpLocked(now)
	n.ringMu.Unlock()
	return ok
}

// lookup returns the value of ns/key, without allocating.
func (n *nearTier) lookup(ns, key string) ([]byte, nearState) {
	v, _, st := n.find(ns, key, false)
	return v, st
}

// lookupEx is lookup with the entry's time left.
func (n *nearTier) lookupEx(ns, key string) ([]byte, time.Duration, nearState) {
	return n.find(ns, key, true)
}

func (n *nearTier) find(ns, key string, wantTTL bool) ([]byte, time.Duration, nearState) {
	now := nowMS()
	if !n.ready(now) {
		n.idleMisses.Add(1)
		return nil, 0, nearMiss
	}
	nsh, kh := fnv1a64(ns), fnv1a64(key)
	sh := n.shardOf(nsh, kh)
	sh.mu.Lock()
	e := sh.m[hkey{nsh, kh}]
	for e != nil && (e.key != key || e.ns != ns) {
		e = e.chain
	}
	if e != nil {
		if e.expires > now {
			sh.touch(e)
			sh.hits++
			v, st := e.value, nearHit
			if e.absent {
				st = nearAbsent
			}
			var ttl time.Duration
			if wantTTL {
				ttl = time.Duration(e.expires-now) * time.Millisecond
			}
			sh.mu.Unlock()
			return v, ttl, st
		}
		sh.removeLocked(e)
	}
	sh.misses++
	sh.mu.Unlock()
	return nil, 0, nearMiss
}

// ticket returns the ticket to fill with: take it before sending.
func (n *nearTier) ticket() ticket {
	now := nowMS()
	n.ready(now)
	return ticket{flushes: n.flushes.Load(), cursor: n.cursor.Load(), at: now}
}

// offer fills the tier from a Get's result when it is a plain value or a
// negative entry with its time left (never a plain miss, nothing stale,
// no lease state).
func (n *nearTier) offer(t ticket, ns, key string, res *GetResult) {
	switch keepOf(res) {
	case nearHit:
		n.fill(t, ns, key, res.Value, false, res.TTL)
	case nearAbsent:
		n.fill(t, ns, key, nil, true, res.TTL)
	}
}

// keepOf says what a Get's result may put in the tier: its value (nearHit),
// known absent (nearAbsent), or nothing (nearMiss).
func keepOf(res *GetResult) nearState {
	switch {
	case res.Stale || res.Lease != LeaseNone:
		return nearMiss
	case res.Found:
		return nearHit
	case res.Negative && res.TTL > 0: // (older daemons sent one without)
		return nearAbsent
	}
	return nearMiss
}

// fill keeps value for at most ttl (0: no TTL) and the tier's max TTL
// unless the ticket is void; it returns whether it kept it.
func (n *nearTier) fill(t ticket, ns, key string, value []byte, absent bool, ttl time.Duration) bool {
	life := n.maxTTL
	if ms := ttl.Milliseconds(); ttl > 0 {
		life = min(max(ms, 1), life)
	}
	charge := int64(allocSize(len(ns)) + allocSize(len(key)) + cap(value) + entryOverhead)
	nsh, kh := fnv1a64(ns), fnv1a64(key)
	sh := n.shardOf(nsh, kh)
	if charge > sh.max {
		return false
	}
	ok := n.ready(nowMS())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !ok || t.flushes != n.flushes.Load() || n.keyStamp[mix(nsh, kh)%nearStamps].Load() > t.cursor ||
		n.nsStamp[nsh%nearStamps].Load() > t.cursor {
		n.refused.Add(1)
		return false
	}
	if old := sh.findLocked(nsh, kh, ns, key); old != nil {
		sh.removeLocked(old)
	}
	e := &entry{nsh: nsh, kh: kh, ns: strings.Clone(ns), key: strings.Clone(key), value: value,
		absent: absent, expires: t.at + life, charge: charge}
	hk := hkey{nsh, kh}
	e.chain = sh.m[hk]
	sh.m[hk] = e
	sh.byNS[nsh]++
	e.next, e.prev = sh.lru.next, &sh.lru
	sh.lru.next.prev = e
	sh.lru.next = e
	sh.bytes += charge
	sh.count++
	for sh.bytes > sh.max && sh.lru.prev != &sh.lru {
		sh.removeLocked(sh.lru.prev)
		sh.evictions++
	}
	return true
}

func (sh *nearShard) findLocked(nsh, kh uint64, ns, key string) *entry {
	e := sh.m[hkey{nsh, kh}]
	for e != nil && (e.key != key || e.ns != ns) {
		e = e.chain
	}
	return e
}

// touch moves e to the front of the LRU list.
func (sh *nearShard) touch(e *entry) {
	if sh.lru.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.next, e.prev = sh.lru.next, &sh.lru
	sh.lru.next.prev = e
	sh.lru.next = e
}

// removeLocked takes e out of the map, the LRU list and the counts.
func (sh *nearShard) removeLocked(e *entry) {
	hk := hkey{e.nsh, e.kh}
	p := sh.m[hk]
	if p == e {
		if e.chain == nil {
			delete(sh.m, hk)
		} else {
			sh.m[hk] = e.chain
		}
	} else {
		for p != nil && p.chain != e {
			p = p.chain
		}
		if p != nil {
			p.chain = e.chain
		}
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next, e.chain = nil, nil, nil
	sh.bytes -= e.charge
	sh.count--
	if c := sh.byNS[e.nsh] - 1; c > 0 {
		sh.byNS[e.nsh] = c
	} else {
		delete(sh.byNS, e.nsh)
	}
}

// dropHashes drops every entry of (nsh, kh).
func (sh *nearShard) dropHashes(nsh, kh uint64) {
	sh.mu.Lock()
	for e := sh.m[hkey{nsh, kh}]; e != nil; e = sh.m[hkey{nsh, kh}] {
		sh.removeLocked(e)
	}
	sh.mu.Unlock()
}

// dropNSHash drops every entry of namespace hash nsh.
func (sh *nearShard) dropNSHash(nsh uint64) {
	sh.mu.Lock()
	if sh.byNS[nsh] > 0 {
		for e := sh.lru.next; e != &sh.lru; {
			next := e.next
			if e.nsh == nsh {
				sh.removeLocked(e)
			}
			e = next
		}
	}
	sh.mu.Unlock()
}

func (sh *nearShard) empty() {
	sh.mu.Lock()
	clear(sh.m)
	clear(sh.byNS)
	for e := sh.lru.next; e != &sh.lru; {
		next := e.next
		e.prev, e.next, e.chain = nil, nil, nil
		e = next
	}
	sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
	sh.bytes, sh.count = 0, 0
	sh.mu.Unlock()
}

// drop drops ns/key: before this process's own write of it.
func (n *nearTier) drop(ns, key string) {
	nsh, kh := fnv1a64(ns), fnv1a64(key)
	sh := n.shardOf(nsh, kh)
	sh.mu.Lock()
	if e := sh.findLocked(nsh, kh, ns, key); e != nil {
		sh.removeLocked(e)
	}
	sh.mu.Unlock()
}

// dropNS drops every key of ns: before this process's own bump.
func (n *nearTier) dropNS(ns string) {
	nsh := fnv1a64(ns)
	for i := range n.shards {
		n.shards[i].dropNSHash(nsh)
	}
}

// forget empties the tier and refuses every fill ticketed before: when
// this process's own invalidation is kept undelivered (rule R2), no ring
// slot will refuse a reply in flight that holds what it replaced.
func (n *nearTier) forget() {
	n.ringMu.Lock()
	n.flushLocked(n.cursor.Load())
	n.nflushes.Add(1)
	n.ringMu.Unlock()
}

// flushLocked empties the tier (a new epoch, a flush, a lap) and sets the
// cursor to head. Needs ringMu.
func (n *nearTier) flushLocked(head uint64) {
	n.flushes.Add(1)
	for i := range n.shards {
		n.shards[i].empty()
	}
	n.cursor.Store(head)
}

// attachLocked maps the ring when none is mapped, or again when the daemon
// made a new one; at most every ringRecheckMS. Needs ringMu.
func (n *nearTier) attachLocked(now int64) {
	r := n.rg.Load()
	if now < n.recheckAt || (r != nil && !r.replaced()) {
		return
	}
	n.recheckAt = now + ringRecheckMS
	fresh, err := openRing(n.path)
	if err != nil {
		n.problem = err.Error()
		return
	}
	n.problem = ""
	n.epoch.Store(0) // catchUpLocked sees a new epoch
	n.rg.Store(fresh)
}

// catchUpLocked applies the ring up to its head (steps 1 to 5 of the
// reader); a new epoch or flush generation, or a lap, empties the tier.
// It returns whether the tier may serve. Needs ringMu.
func (n *nearTier) catchUpLocked(now int64) bool {
	r := n.rg.Load()
	var epoch, gen, head uint64
	var until int64
	if r != nil {
		epoch, until = r.epoch(), r.until()
	}
	if epoch == 0 || until < now {
		n.attachLocked(now) // the daemon stopped or stalled: a new ring?
		if r = n.rg.Load(); r == nil {
			return false
		}
		if epoch, until = r.epoch(), r.until(); epoch == 0 || until < now {
			return false
		}
	}
	gen, head = r.gen(), r.head()
	cursor := n.cursor.Load()
	if epoch != n.epoch.Load() || gen != n.gen.Load() {
		if n.applied { // (not the first ring this reader applies)
			n.nflushes.Add(1)
		}
		n.applied = true
		newEpoch := epoch != n.epoch.Load()
		n.flushLocked(head)
		if newEpoch { // a new ring counts from 1 again
			for i := range n.keyStamp {
				n.keyStamp[i].Store(0)
				n.nsStamp[i].Store(0)
			}
		}
		n.epoch.Store(epoch)
		n.gen.Store(gen)
		return true
	}
	if head-cursor > r.slots || head < cursor {
		n.laps.Add(1)
		n.flushLocked(head)
		return true
	}
	for seq := cursor + 1; seq <= head; seq++ {
		kind, nsh, kh, ok := r.slot(seq)
		if !ok { // overwritten while we read: lapped
			n.laps.Add(1)
			n.flushLocked(head)
			return true
		}
		if kind == kindNamespace {
			n.nsStamp[nsh%nearStamps].Store(seq)
			for i := range n.shards {
				n.shards[i].dropNSHash(nsh)
			}
		} else {
			n.keyStamp[mix(nsh, kh)%nearStamps].Store(seq)
			n.shardOf(nsh, kh).dropHashes(nsh, kh)
		}
	}
	n.cursor.Store(head)
	return true
}

// NearStats are the near tier's counters. Flushes: times it was emptied
// because the daemon emptied its L1, restarted or stopped; Laps: because
// the ring overtook it; FillsRefused: replies not kept because the key
// changed while they were in flight; Serving: whether it may serve now;
// Problem: why it cannot map the ring, if it cannot.
type NearStats struct {
	Enabled      bool
	Hits         uint64
	Misses       uint64
	Entries      int
	Bytes        int64
	MaxBytes     int64
	Evictions    uint64
	Flushes      uint64
	Laps         uint64
	FillsRefused uint64
	Serving      bool
	Problem      string
}

func (n *nearTier) stats() NearStats {
	now := nowMS()
	s := NearStats{Enabled: true, MaxBytes: n.max, Serving: n.ready(now)}
	for i := range n.shards {
		sh := &n.shards[i]
		sh.mu.Lock()
		s.Hits += sh.hits
		s.Misses += sh.misses
		s.Entries += sh.count
		s.Bytes += sh.bytes
		s.Evictions += sh.evictions
		sh.mu.Unlock()
	}
	s.Misses += n.idleMisses.Load()
	s.Flushes, s.Laps, s.FillsRefused = n.nflushes.Load(), n.laps.Load(), n.refused.Load()
	n.ringMu.Lock()
	s.Problem = n.problem
	n.ringMu.Unlock()
	return s
}

// close empties the tier and lets the ring's mapping go.
func (n *nearTier) close() {
	n.ringMu.Lock()
	n.flushLocked(0)
	n.rg.Store(nil)
	n.recheckAt = 1 << 62
	n.ringMu.Unlock()
}

// NearStats returns the near tier's counters (Enabled false without one).
func (c *Client) NearStats() NearStats {
	if c.near == nil {
		return NearStats{}
	}
	return c.near.stats()
}
