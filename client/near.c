/* The near tier; see near.h. The reader follows docs/protocol.md, "The
 * reader", and passes tests/conformance/ring.json.
 *
 * An entry is a value or a negative entry ("known absent": no value bytes,
 * charged for its key like any other); both live and die by the same rules.
 *
 * Entries live in NEAR_SHARDS shards, each a chained hash table and an LRU
 * list under the shard's own lock (`shard.mu`), with a byte budget of its
 * own. An entry is found by the hashes the ring uses (ring_hash of the
 * namespace and of the key), so a key slot finds its entries in one bucket;
 * a namespace slot walks every shard.
 *
 * The tier's lock (`near.ring_mu`) guards the ring state: the reader, the
 * cursor, the flush count and the stamps. The stamps are two direct-mapped
 * arrays (ring.h's RING_STAMPS) of the last slot seq that named a key (or a
 * namespace) hashing there; a fill is refused when its slot's stamp is past
 * its ticket, which may refuse a fill of another key with the same stamp
 * index, never allow a stale one. `seen_*` mirror the ring header as last
 * applied, so a lookup takes ring_mu only when the ring moved.
 *
 * Lock order: ring_mu, then one shard's mu at a time. A function named
 * *_shard_locked expects its shard's mu held; *_ring_locked expects ring_mu. */
#include "near.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "units.h"

#define NEAR_SHARDS   16
#define NEAR_BUCKETS0 64

typedef struct entry {
    struct entry *next;                /* hash chain */
    struct entry *lru_prev, *lru_next; /* most recent first */
    uint64_t nsh, kh;
    int64_t expires_at;
    uint32_t nslen, klen, vlen;
    uint8_t negative; /* known absent: vlen is 0 */
    char data[];      /* ns, key, value, NUL */
} entry;

typedef struct shard {
    pthread_mutex_t mu;
    entry **buckets;
    size_t nbuckets, count, bytes;
    entry lru; /* sentinel */
} shard;

struct near {
    shard shards[NEAR_SHARDS];
    size_t max_shard_bytes;
    int64_t max_ttl_ms;

    pthread_mutex_t ring_mu;
    _Atomic(ring_reader *) rd; /* NULL until mapped */
    ring_reader **retired;     /* replaced readers, unmapped at near_close() */
    size_t nretired;
    uint64_t epoch, gen, cursor, flushes;
    int seen_ring; /* a ring was applied before: a new one empties the tier (counted) */
    int64_t recheck_at;
    uint64_t key_stamp[RING_STAMPS], ns_stamp[RING_STAMPS];
    char problem[256];
    _Atomic uint64_t seen_epoch, seen_gen, seen_head; /* mirrors, for lookups */

    _Atomic uint64_t hits, misses, evictions, nflushes, laps, refused;
    char ring_path[];
};

static shard *shard_of(near *n, uint64_t h)
{
    return &n->shards[h >> 60 & (NEAR_SHARDS - 1)];
}

/* What an entry costs, so that max_bytes bounds the heap the tier holds:
 * its block as malloc keeps it (usable size and the chunk's header), and
 * its share of the bucket table (at most two pointers: a table doubles when
 * its entries reach its buckets). */
static size_t charge(const entry *e)
{
    return malloc_usable_size((void *)e) + sizeof(size_t) + 2 * sizeof(entry *);
}

static void lru_unlink(entry *e)
{
    e->lru_prev->lru_next = e->lru_next;
    e->lru_next->lru_prev = e->lru_prev;
}

static void lru_push(shard *s, entry *e)
{
    e->lru_next = s->lru.lru_next;
    e->lru_prev = &s->lru;
    s->lru.lru_next->lru_prev = e;
    s->lru.lru_next = e;
}

/* Unlinks *at (in its chain) and frees it. */
static void remove_shard_locked(shard *s, entry **at)
{
    entry *e = *at;
    *at = e->next;
    lru_unlink(e);
    s->count--;
    s->bytes -= charge(e);
    free(e);
}

static entry **find_shard_locked(shard *s, uint64_t h, nc_bytes ns, nc_bytes key)
{
    entry **at = &s->buckets[h & (s->nbuckets - 1)];
    for (; *at != NULL; at = &(*at)->next) {
        entry *e = *at;
        if (e->nslen == ns.len && e->klen == key.len && memcmp(e->data, ns.data, ns.len) == 0 &&
            memcmp(e->data + ns.len, key.data, key.len) == 0)
            break;
    }
    return at;
}

static void empty_shard_locked(shard *s)
{
    for (size_t b = 0; b < s->nbuckets; b++)
        while (s->buckets[b] != NULL)
            remove_shard_locked(s, &s->buckets[b]);
}

/* Empties every shard. */
static void empty_all(near *n)
{
    for (int i = 0; i < NEAR_SHARDS; i++) {
        pthread_mutex_lock(&n->shards[i].mu);
        empty_shard_locked(&n->shards[i]);
        pthread_mutex_unlock(&n->shards[i].mu);
    }
}

/* Forgets everything: after a flush, a lap or a new epoch. */
static void flush_ring_locked(near *n, uint64_t head)
{
    empty_all(n);
    n->flushes++;
    n->cursor = head;
}

static void drop_key_hashes(near *n, uint64_t nsh, uint64_t kh)
{
    uint64_t h = ring_key_mix(nsh, kh);
    shard *s = shard_of(n, h);
    pthread_mutex_lock(&s->mu);
    for (entry **at = &s->buckets[h & (s->nbuckets - 1)]; *at != NULL;)
        if ((*at)->nsh == nsh && (*at)->kh == kh)
            remove_shard_locked(s, at);
        else
            at = &(*at)->next;
    pthread_mutex_unlock(&s->mu);
}

static void drop_ns_hash(near *n, uint64_t nsh)
{
    for (int i = 0; i < NEAR_SHARDS; i++) {
        shard *s = &n->shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t b = 0; b < s->nbuckets; b++)
            for (entry **at = &s->buckets[b]; *at != NULL;)
                if ((*at)->nsh == nsh)
                    remove_shard_locked(s, at);
                else
                    at = &(*at)->next;
        pthread_mutex_unlock(&s->mu);
    }
}

/* Maps the ring when none is mapped, or again when the daemon made a new
 * one; at most every RING_RECHECK_MS. */
static void attach_ring_locked(near *n, int64_t now)
{
    ring_reader *rd = atomic_load(&n->rd);
    if (now < n->recheck_at || (rd != NULL && !ring_reader_replaced(rd)))
        return;
    n->recheck_at = now + RING_RECHECK_MS;
    ring_reader *fresh;
    char err[256];
    if (ring_reader_open(&fresh, n->ring_path, err, sizeof err) != 0) {
        snprintf(n->problem, sizeof n->problem, "%s", err);
        return;
    }
    if (rd != NULL) { /* a thread may still be reading it: unmap it at close */
        ring_reader **r = realloc(n->retired, sizeof *r * (n->nretired + 1));
        if (r == NULL) {
            ring_reader_close(fresh);
            return;
        }
        n->retired = r;
        n->retired[n->nretired++] = rd;
    }
    n->problem[0] = '\0';
    n->epoch = 0; /* catch_up_ring_locked() sees a new epoch */
    atomic_store(&n->rd, fresh);
}

/* Applies the ring up to its head: a new epoch or flush generation, or
 * being lapped, empties the tier. Returns the reader when the tier may
 * serve now, else NULL. */
static ring_reader *catch_up_ring_locked(near *n, int64_t now)
{
    ring_reader *rd = atomic_load(&n->rd);
    uint64_t epoch = rd != NULL ? ring_reader_epoch(rd) : 0;
    if (epoch == 0 || ring_reader_serving_until(rd) < now) {
        attach_ring_locked(n, now); /* the daemon stopped or stalled: is there a new ring? */
        rd = atomic_load(&n->rd);
        epoch = rd != NULL ? ring_reader_epoch(rd) : 0;
        if (epoch == 0 || ring_reader_serving_until(rd) < now)
            return NULL;
    }
    uint64_t gen = ring_reader_flush_gen(rd), head = ring_reader_head(rd);
    if (epoch != n->epoch || gen != n->gen) {
        if (n->seen_ring)
            atomic_fetch_add(&n->nflushes, 1);
        n->seen_ring = 1;
        flush_ring_locked(n, head);
        if (epoch != n->epoch) { /* a new ring counts from 1 again */
            memset(n->key_stamp, 0, sizeof n->key_stamp);
            memset(n->ns_stamp, 0, sizeof n->ns_stamp);
        }
        n->epoch = epoch;
        n->gen = gen;
    } else if (head - n->cursor > ring_reader_slots(rd)) {
        atomic_fetch_add(&n->laps, 1);
        flush_ring_locked(n, head);
    }
    for (uint64_t seq = n->cursor + 1; seq <= head; seq++) {
        ring_slot sl;
        if (!ring_reader_slot(rd, seq, &sl)) { /* overwritten while we read: lapped */
            atomic_fetch_add(&n->laps, 1);
            flush_ring_locked(n, head);
            break;
        }
        if (sl.kind == RING_NAMESPACE) {
            drop_ns_hash(n, sl.ns_hash);
            n->ns_stamp[sl.ns_hash % RING_STAMPS] = seq;
        } else {
            drop_key_hashes(n, sl.ns_hash, sl.key_hash);
            n->key_stamp[ring_key_mix(sl.ns_hash, sl.key_hash) % RING_STAMPS] = seq;
        }
    }
    n->cursor = head;
    atomic_store_explicit(&n->seen_epoch, epoch, memory_order_relaxed);
    atomic_store_explicit(&n->seen_gen, gen, memory_order_relaxed);
    atomic_store_explicit(&n->seen_head, head, memory_order_release);
    return rd;
}

/* Whether the tier may serve now, applying the ring first if it moved. */
static int ready(near *n, int64_t now)
{
    ring_reader *rd = atomic_load_explicit(&n->rd, memory_order_acquire);
    if (rd != NULL && ring_reader_serving_until(rd) >= now &&
        ring_reader_head(rd) == atomic_load_explicit(&n->seen_head, memory_order_acquire) &&
        ring_reader_flush_gen(rd) == atomic_load_explicit(&n->seen_gen, memory_order_relaxed) &&
        ring_reader_epoch(rd) == atomic_load_explicit(&n->seen_epoch, memory_order_relaxed))
        return 1; /* nothing new */
    pthread_mutex_lock(&n->ring_mu);
    int ok = catch_up_ring_locked(n, now) != NULL;
    pthread_mutex_unlock(&n->ring_mu);
    return ok;
}

int near_open(near **out, const char *ring_path, size_t max_bytes, int64_t max_ttl_ms)
{
    size_t plen = strlen(ring_path);
    near *n = calloc(1, sizeof *n + plen + 1);
    if (n == NULL)
        return NC_ENOMEM;
    memcpy(n->ring_path, ring_path, plen + 1);
    n->max_shard_bytes = max_bytes / NEAR_SHARDS;
    n->max_ttl_ms = max_ttl_ms;
    pthread_mutex_init(&n->ring_mu, NULL);
    for (int i = 0; i < NEAR_SHARDS; i++) {
        shard *s = &n->shards[i];
        pthread_mutex_init(&s->mu, NULL);
        s->lru.lru_next = s->lru.lru_prev = &s->lru;
        s->nbuckets = NEAR_BUCKETS0;
        if ((s->buckets = calloc(s->nbuckets, sizeof *s->buckets)) == NULL) {
            near_close(n);
            return NC_ENOMEM;
        }
    }
    pthread_mutex_lock(&n->ring_mu);
    attach_ring_locked(n, units_now_ms());
    pthread_mutex_unlock(&n->ring_mu);
    *out = n;
    return NC_OK;
}

void near_close(near *n)
{
    if (n == NULL)
        return;
    for (int i = 0; i < NEAR_SHARDS; i++) {
        if (n->shards[i].buckets != NULL)
            empty_shard_locked(&n->shards[i]);
        free(n->shards[i].buckets);
        pthread_mutex_destroy(&n->shards[i].mu);
    }
    ring_reader_close(atomic_load(&n->rd));
    for (size_t i = 0; i < n->nretired; i++)
        ring_reader_close(n->retired[i]);
    free(n->retired);
    pthread_mutex_destroy(&n->ring_mu);
    free(n);
}

int near_get(near *n, nc_bytes ns, nc_bytes key, void **value, size_t *len, uint64_t *ttl_ms,
             int *negative)
{
    int64_t now = units_now_ms();
    if (!ready(n, now)) {
        atomic_fetch_add_explicit(&n->misses, 1, memory_order_relaxed);
        return 0;
    }
    uint64_t h = ring_key_mix(ring_hash(ns.data, ns.len), ring_hash(key.data, key.len));
    shard *s = shard_of(n, h);
    int hit = 0;
    pthread_mutex_lock(&s->mu);
    entry **at = find_shard_locked(s, h, ns, key);
    if (*at != NULL && (*at)->expires_at <= now) {
        remove_shard_locked(s, at);
    } else if (*at != NULL) {
        entry *e = *at;
        char *copy = e->negative ? NULL : malloc((size_t)e->vlen + 1);
        if (e->negative || copy != NULL) {
            if (copy != NULL)
                memcpy(copy, e->data + e->nslen + e->klen, (size_t)e->vlen + 1);
            *value = copy;
            *len = e->vlen;
            *ttl_ms = (uint64_t)(e->expires_at - now);
            *negative = e->negative;
            lru_unlink(e);
            lru_push(s, e);
            hit = 1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add_explicit(hit ? &n->hits : &n->misses, 1, memory_order_relaxed);
    return hit;
}

near_ticket near_take_ticket(near *n)
{
    int64_t now = units_now_ms();
    pthread_mutex_lock(&n->ring_mu);
    catch_up_ring_locked(n, now);
    near_ticket t = {n->flushes, n->cursor, now};
    pthread_mutex_unlock(&n->ring_mu);
    return t;
}

/* Doubles the shard's table. */
static void grow_shard_locked(shard *s)
{
    size_t nb = s->nbuckets * 2;
    entry **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++)
        for (entry *e = s->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            entry **to = &b[ring_key_mix(e->nsh, e->kh) & (nb - 1)];
            e->next = *to;
            *to = e;
        }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

/* Inserts e in place of any entry of its key, then evicts from the LRU end
 * until the shard fits its budget. */
static void insert_shard_locked(near *n, shard *s, entry *e, uint64_t h, nc_bytes ns, nc_bytes key)
{
    entry **at = find_shard_locked(s, h, ns, key);
    if (*at != NULL)
        remove_shard_locked(s, at);
    if (s->count >= s->nbuckets)
        grow_shard_locked(s);
    entry **head = &s->buckets[h & (s->nbuckets - 1)];
    e->next = *head;
    *head = e;
    lru_push(s, e);
    s->count++;
    s->bytes += charge(e);
    while (s->bytes > n->max_shard_bytes && s->lru.lru_prev != &s->lru) {
        entry *old = s->lru.lru_prev;
        uint64_t oh = ring_key_mix(old->nsh, old->kh);
        entry **oat = &s->buckets[oh & (s->nbuckets - 1)];
        while (*oat != old)
            oat = &(*oat)->next;
        remove_shard_locked(s, oat);
        atomic_fetch_add_explicit(&n->evictions, 1, memory_order_relaxed);
    }
}

/* Keeps a value, or a negative entry (value NULL, len 0), as near.h says. */
static void fill(near *n, const near_ticket *t, nc_bytes ns, nc_bytes key, const void *value,
                 size_t len, int negative, uint64_t ttl_ms)
{
    int64_t now = units_now_ms();
    uint64_t max = (uint64_t)n->max_ttl_ms;
    uint64_t life = ttl_ms > 0 && ttl_ms < max ? ttl_ms : max; /* 0: Redis holds no TTL */
    uint64_t nsh = ring_hash(ns.data, ns.len), kh = ring_hash(key.data, key.len);
    uint64_t h = ring_key_mix(nsh, kh);
    if (life == 0 || len > UINT32_MAX || ns.len > UINT32_MAX || key.len > UINT32_MAX)
        return;
    entry *e = malloc(sizeof *e + ns.len + key.len + len + 1);
    if (e == NULL)
        return;
    *e = (entry){.nsh = nsh,
                 .kh = kh,
                 /* from the request: Redis's TTL was read before the reply came */
                 .expires_at = t->at_ms + (int64_t)life,
                 .nslen = (uint32_t)ns.len,
                 .klen = (uint32_t)key.len,
                 .vlen = (uint32_t)len,
                 .negative = negative != 0};
    memcpy(e->data, ns.data, ns.len);
    memcpy(e->data + ns.len, key.data, key.len);
    if (len > 0)
        memcpy(e->data + ns.len + key.len, value, len);
    e->data[ns.len + key.len + len] = '\0';
    if (charge(e) > n->max_shard_bytes) {
        free(e);
        return;
    }
    pthread_mutex_lock(&n->ring_mu);
    int ok = catch_up_ring_locked(n, now) != NULL && t->flushes == n->flushes &&
             n->key_stamp[h % RING_STAMPS] <= t->cursor &&
             n->ns_stamp[nsh % RING_STAMPS] <= t->cursor;
    if (ok) {
        shard *s = shard_of(n, h);
        pthread_mutex_lock(&s->mu);
        insert_shard_locked(n, s, e, h, ns, key);
        pthread_mutex_unlock(&s->mu);
    } else {
        free(e);
        atomic_fetch_add_explicit(&n->refused, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&n->ring_mu);
}

near_keep near_keep_of(int found, int negative, int stale, int leased, uint64_t ttl_ms)
{
    if (stale || leased)
        return NEAR_KEEP_NOTHING;
    if (found)
        return NEAR_KEEP_VALUE;
    return negative && ttl_ms > 0 ? NEAR_KEEP_NEGATIVE : NEAR_KEEP_NOTHING;
}

void near_fill(near *n, const near_ticket *t, nc_bytes ns, nc_bytes key, const void *value,
               size_t len, uint64_t ttl_ms)
{
    fill(n, t, ns, key, value, len, 0, ttl_ms);
}

void near_fill_negative(near *n, const near_ticket *t, nc_bytes ns, nc_bytes key, uint64_t ttl_ms)
{
    fill(n, t, ns, key, NULL, 0, 1, ttl_ms);
}

void near_drop(near *n, nc_bytes ns, nc_bytes key)
{
    uint64_t nsh = ring_hash(ns.data, ns.len), kh = ring_hash(key.data, key.len);
    pthread_mutex_lock(&n->ring_mu); /* no fill in between */
    drop_key_hashes(n, nsh, kh);
    pthread_mutex_unlock(&n->ring_mu);
}

void near_drop_ns(near *n, nc_bytes ns)
{
    pthread_mutex_lock(&n->ring_mu);
    drop_ns_hash(n, ring_hash(ns.data, ns.len));
    pthread_mutex_unlock(&n->ring_mu);
}

void near_forget(near *n)
{
    pthread_mutex_lock(&n->ring_mu); /* no fill in between */
    flush_ring_locked(n, n->cursor);
    atomic_fetch_add(&n->nflushes, 1);
    pthread_mutex_unlock(&n->ring_mu);
}

void near_stats(near *n, nc_near_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < NEAR_SHARDS; i++) {
        pthread_mutex_lock(&n->shards[i].mu);
        out->entries += n->shards[i].count;
        out->bytes += n->shards[i].bytes;
        pthread_mutex_unlock(&n->shards[i].mu);
    }
    out->hits = atomic_load(&n->hits);
    out->misses = atomic_load(&n->misses);
    out->evictions = atomic_load(&n->evictions);
    out->flushes = atomic_load(&n->nflushes);
    out->laps = atomic_load(&n->laps);
    out->fills_refused = atomic_load(&n->refused);
    pthread_mutex_lock(&n->ring_mu);
    out->serving = catch_up_ring_locked(n, units_now_ms()) != NULL;
    snprintf(out->problem, sizeof out->problem, "%s", n->problem);
    pthread_mutex_unlock(&n->ring_mu);
}
