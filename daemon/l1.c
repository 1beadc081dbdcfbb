/* L1 store; see l1.h. Per shard, under its lock: each entry is one allocation
 * (header, key, value) on one chain of the shard's hash table and on its LRU
 * list (head = least recently used); the table has at least one bucket per
 * entry unless a bigger one could not be allocated; `bytes` sums l1_charge()
 * over the entries and never exceeds `budget`. A key is hashed once: the high
 * bits pick the shard, the low 32 bits (kept in the entry) the bucket, bits
 * 32..37 its stamp slot. A ticket is (generation << 32 | stamp);
 * l1_invalidate() bumps the stamp of its slot and l1_flush() the store's
 * generation, both before they remove anything, so a ticket taken earlier no
 * longer matches. */
#include "l1.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define L1_DEFAULT_SHARDS 16u
#define L1_MAX_SHARDS     (1u << 20)
#define L1_MIN_BUCKETS    8u                  /* a shard's first table */
#define L1_MAX_BUCKETS    ((uint64_t)1 << 32) /* one per value of the 32-bit hash */
#define L1_MALLOC_SLACK   16u                 /* allocator header and rounding, per entry */
#define L1_BUCKET_SHARE   16u                 /* see l1_entry_overhead() */
#define L1_CACHE_LINE     64u
#define L1_STAMP_SLOTS    64u /* per shard; a power of two */

/* One entry: this header, then the key, then the value, in one allocation.
 * `chain` links the entries of one bucket, `prev` and `next` the shard's LRU
 * list. `hash` is the low 32 bits of the key's hash: it picks the bucket,
 * spares the key compare of almost every other entry on the chain, and lets
 * the table grow without hashing keys again. 48 bytes on 64-bit hosts, with
 * no padding. */
typedef struct l1_entry {
    struct l1_entry *chain;
    struct l1_entry *prev, *next; /* towards the least / the most recent */
    int64_t expires_at;
    uint32_t hash;
    uint32_t klen; /* keys are at most max_key_size (512 MiB) plus a namespace */
    uint32_t vlen;
    uint32_t tag; /* the caller's */
    unsigned char data[];
} l1_entry;

#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(l1_entry) <= 48, "l1 entry header grew; overhead budget is 80 bytes");
#endif

typedef struct l1_shard {
    alignas(L1_CACHE_LINE) pthread_mutex_t lock;
    l1_entry **buckets; /* nbuckets chain heads; NULL until the first entry */
    uint64_t nbuckets;  /* 0 or a power of two */
    l1_entry *lru_head; /* the least recently used entry */
    l1_entry *lru_tail; /* the most recently used entry */
    uint64_t bytes;
    uint64_t budget;
    uint64_t entries;
    uint64_t evictions;
    uint64_t expired;
    uint32_t stamps[L1_STAMP_SLOTS];
} l1_shard;

struct l1 {
    l1_shard *shards;
    unsigned nshards;
    unsigned shard_bits; /* nshards == 1 << shard_bits */
    uint64_t max_memory;
    _Atomic uint32_t generation;
};

/* The header, the allocator's share (glibc adds 8 bytes to a request and
 * rounds up to 16: 8 to 23 bytes, 16 assumed), and the entry's share of the
 * bucket array. The array has an 8-byte pointer per bucket and doubles when
 * the entries outnumber the buckets, so a shard at its peak entry count has
 * 1 to 2 buckets per entry: 8 to 16 bytes, charged at the upper end. The
 * array never shrinks: a shard whose entries became fewer (larger values,
 * deletions) keeps buckets for as many as it once held, uncharged. */
size_t l1_entry_overhead(void)
{
    return sizeof(l1_entry) + L1_MALLOC_SLACK + L1_BUCKET_SHARE;
}

/* Returns the bytes an entry of these lengths is charged. */
static uint64_t l1_charge(uint64_t klen, uint64_t vlen)
{
    return l1_entry_overhead() + klen + vlen;
}

static uint64_t l1_rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Hashes a key with the single-lane form of xxHash64: 8 bytes per step, then
 * a full avalanche, so both the high bits (shard) and the low bits (bucket)
 * are well mixed. Returns the 64-bit hash. */
static uint64_t l1_hash(const void *key, size_t len)
{
    const uint64_t p1 = 0x9E3779B185EBCA87u, p2 = 0xC2B2AE3D27D4EB4Fu;
    const uint64_t p3 = 0x165667B19E3779F9u, p4 = 0x85EBCA77C2B2AE63u;
    const uint64_t p5 = 0x27D4EB2F165667C5u;
    const unsigned char *p = key;
    uint64_t h = p5 + (uint64_t)len;

    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, sizeof w);
        h ^= l1_rotl(w * p2, 31) * p1;
        h = l1_rotl(h, 27) * p1 + p4;
    }
    if (len >= 4) {
        uint32_t w;
        memcpy(&w, p, sizeof w);
        h ^= (uint64_t)w * p1;
        h = l1_rotl(h, 23) * p2 + p3;
        p += 4;
        len -= 4;
    }
    for (; len > 0; p++, len--) {
        h ^= *p * p5;
        h = l1_rotl(h, 11) * p1;
    }
    h ^= h >> 33;
    h *= p2;
    h ^= h >> 29;
    h *= p3;
    h ^= h >> 32;
    return h;
}

/* Returns the shard that owns hash h. */
static l1_shard *l1_shard_of(l1 *s, uint64_t h)
{
    if (s->shard_bits == 0)
        return &s->shards[0];
    return &s->shards[h >> (64 - s->shard_bits)];
}

/* Returns the chain head of the bucket for hash32. Needs sh->lock and a
 * table. */
static l1_entry **l1_bucket_locked(l1_shard *sh, uint32_t hash32)
{
    return &sh->buckets[hash32 & (sh->nbuckets - 1)];
}

/* Returns the entry of the key, or NULL. Needs sh->lock. */
static l1_entry *l1_find_locked(l1_shard *sh, const void *key, size_t klen, uint64_t h)
{
    if (sh->buckets == NULL)
        return NULL;
    uint32_t hash32 = (uint32_t)h;
    for (l1_entry *e = *l1_bucket_locked(sh, hash32); e != NULL; e = e->chain) {
        if (e->hash == hash32 && e->klen == klen && (klen == 0 || memcmp(e->data, key, klen) == 0))
            return e;
    }
    return NULL;
}

/* Doubles the bucket array (allocating the first one for an empty shard) and
 * moves every entry to its new chain, using the hash kept in the entry. When
 * the bigger array cannot be allocated, keeps the one there is: chains get
 * longer, nothing is lost, and the next insertion tries again. Needs
 * sh->lock. */
static void l1_grow_locked(l1_shard *sh)
{
    uint64_t n = sh->nbuckets == 0 ? L1_MIN_BUCKETS : 2 * sh->nbuckets;
    if (n > L1_MAX_BUCKETS || n > SIZE_MAX / sizeof(l1_entry *))
        return;
    l1_entry **b = calloc((size_t)n, sizeof *b);
    if (b == NULL)
        return;
    for (uint64_t i = 0; i < sh->nbuckets; i++) {
        l1_entry *e = sh->buckets[i], *chain;
        for (; e != NULL; e = chain) {
            chain = e->chain;
            e->chain = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->nbuckets = n;
}

/* Appends e to the LRU list as its most recent entry. Needs sh->lock. */
static void l1_lru_append_locked(l1_shard *sh, l1_entry *e)
{
    e->prev = sh->lru_tail;
    e->next = NULL;
    if (sh->lru_tail != NULL)
        sh->lru_tail->next = e;
    else
        sh->lru_head = e;
    sh->lru_tail = e;
}

/* Takes e off the LRU list. Needs sh->lock. */
static void l1_lru_unlink_locked(l1_shard *sh, l1_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        sh->lru_head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        sh->lru_tail = e->prev;
}

/* Unlinks e, uncharges it and frees it. Needs sh->lock. */
static void l1_remove_locked(l1_shard *sh, l1_entry *e)
{
    l1_entry **p = l1_bucket_locked(sh, e->hash);
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    l1_lru_unlink_locked(sh, e);
    sh->bytes -= l1_charge(e->klen, e->vlen);
    sh->entries--;
    free(e);
}

/* Links e at the most recently used end and charges it, growing the table
 * first if e would outnumber its buckets. Returns 0, or ENOMEM when the shard
 * had no table yet and none could be allocated; e is then freed. Needs
 * sh->lock; e must not be linked. */
static int l1_link_locked(l1_shard *sh, l1_entry *e)
{
    if (sh->entries >= sh->nbuckets)
        l1_grow_locked(sh);
    if (sh->buckets == NULL) {
        free(e);
        return ENOMEM;
    }
    l1_entry **b = l1_bucket_locked(sh, e->hash);
    e->chain = *b;
    *b = e;
    l1_lru_append_locked(sh, e);
    sh->bytes += l1_charge(e->klen, e->vlen);
    sh->entries++;
    return 0;
}

/* Makes e the most recently used entry of its shard. Needs sh->lock. */
static void l1_touch_locked(l1_shard *sh, l1_entry *e)
{
    if (e == sh->lru_tail)
        return;
    l1_lru_unlink_locked(sh, e);
    l1_lru_append_locked(sh, e);
}

/* Evicts least recently used entries until `need` more bytes fit in the
 * budget. The caller has checked that need <= budget. Needs sh->lock. */
static void l1_make_room_locked(l1_shard *sh, uint64_t need)
{
    while (sh->lru_head != NULL && sh->bytes + need > sh->budget) {
        l1_remove_locked(sh, sh->lru_head);
        sh->evictions++;
    }
}

/* Returns the smallest power of two >= n, for 1 <= n <= L1_MAX_SHARDS. */
static unsigned l1_pow2_at_least(unsigned n, unsigned *bits)
{
    unsigned p = 1;
    *bits = 0;
    while (p < n) {
        p <<= 1;
        (*bits)++;
    }
    return p;
}

/* Also returns ENOMEM for more than L1_MAX_SHARDS shards: far more locks than
 * any host has cores, and the rounding would overflow near UINT_MAX. */
int l1_create(l1 **out, uint64_t max_memory, unsigned shards)
{
    if (shards == 0)
        shards = L1_DEFAULT_SHARDS;
    if (shards > L1_MAX_SHARDS)
        return ENOMEM;
    l1 *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ENOMEM;
    s->nshards = l1_pow2_at_least(shards, &s->shard_bits);
    s->max_memory = max_memory;
    s->shards = aligned_alloc(alignof(l1_shard), s->nshards * sizeof(l1_shard));
    if (s->shards == NULL)
        goto fail_shards;
    memset(s->shards, 0, s->nshards * sizeof(l1_shard));
    unsigned i;
    for (i = 0; i < s->nshards; i++) {
        if (pthread_mutex_init(&s->shards[i].lock, NULL) != 0)
            goto fail_locks;
        s->shards[i].budget = max_memory / s->nshards;
    }
    *out = s;
    return 0;

fail_locks:
    while (i-- > 0)
        pthread_mutex_destroy(&s->shards[i].lock);
    free(s->shards);
fail_shards:
    free(s);
    return ENOMEM;
}

void l1_destroy(l1 *s)
{
    if (s == NULL)
        return;
    for (unsigned i = 0; i < s->nshards; i++) {
        l1_shard *sh = &s->shards[i]; /* no other thread may hold the store now */
        l1_entry *e = sh->lru_head, *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
        free(sh->buckets);
        pthread_mutex_destroy(&sh->lock);
    }
    free(s->shards);
    free(s);
}

/* visit may be NULL to test for a live entry only. */
int l1_get(l1 *s, const void *key, size_t klen, int64_t now, l1_visit_fn visit, void *arg)
{
    if (klen > UINT32_MAX)
        return 0; /* never stored: entries keep 32-bit lengths */
    uint64_t h = l1_hash(key, klen);
    l1_shard *sh = l1_shard_of(s, h);
    int hit = 0;

    pthread_mutex_lock(&sh->lock);
    l1_entry *e = l1_find_locked(sh, key, klen, h);
    if (e != NULL && e->expires_at <= now) {
        l1_remove_locked(sh, e);
        sh->expired++;
    } else if (e != NULL && visit != NULL &&
               visit(arg, e->data + klen, e->vlen, e->expires_at, e->tag) != 0) {
        l1_remove_locked(sh, e); /* rejected by the caller: stale */
    } else if (e != NULL) {
        l1_touch_locked(sh, e);
        hit = 1;
    }
    pthread_mutex_unlock(&sh->lock);
    return hit;
}

/* Returns a new, unlinked entry holding copies of key and value, or NULL. */
static l1_entry *l1_entry_new(const void *key, size_t klen, const void *value, size_t vlen,
                              uint32_t tag, int64_t expires_at, uint64_t h)
{
    size_t size = offsetof(l1_entry, data) + klen + vlen;
    l1_entry *e = malloc(size < sizeof(l1_entry) ? sizeof(l1_entry) : size);
    if (e == NULL)
        return NULL;
    e->hash = (uint32_t)h;
    e->klen = (uint32_t)klen;
    e->expires_at = expires_at;
    e->vlen = (uint32_t)vlen;
    e->tag = tag;
    if (klen > 0)
        memcpy(e->data, key, klen);
    if (vlen > 0)
        memcpy(e->data + klen, value, vlen);
    return e;
}

static uint32_t *l1_stamp_locked(l1_shard *sh, uint64_t h)
{
    return &sh->stamps[(h >> 32) & (L1_STAMP_SLOTS - 1)];
}

static l1_ticket l1_ticket_locked(l1 *s, l1_shard *sh, uint64_t h)
{
    return (l1_ticket)atomic_load(&s->generation) << 32 | *l1_stamp_locked(sh, h);
}

enum l1_mode {
    L1_STORE, /* unconditionally */
    L1_FILL,  /* if the ticket is good */
    L1_WRITE, /* void other tickets, then store if ours is good */
};

/* The copy is made before the lock is taken, so the critical section is
 * lookups and pointer updates only. On every error, ENOMEM included, the old
 * entry of the key is removed: the caller meant to replace it, so keeping it
 * could serve a value the caller knows to be stale. */
static int l1_store(l1 *s, const void *key, size_t klen, const void *value, size_t vlen,
                    uint32_t tag, int64_t expires_at, int64_t now, enum l1_mode mode,
                    l1_ticket ticket)
{
    if (klen > UINT32_MAX)
        return E2BIG; /* no entry of such a key can exist */
    uint64_t h = l1_hash(key, klen);
    l1_shard *sh = l1_shard_of(s, h);
    int rc = 0;
    l1_entry *e = NULL;

    if (expires_at <= now)
        rc = EINVAL;
    else if (vlen > UINT32_MAX || l1_charge(klen, vlen) > sh->budget)
        rc = E2BIG;
    else if ((e = l1_entry_new(key, klen, value, vlen, tag, expires_at, h)) == NULL)
        rc = ENOMEM;

    pthread_mutex_lock(&sh->lock);
    int stale = mode != L1_STORE && l1_ticket_locked(s, sh, h) != ticket;
    if (mode == L1_WRITE)
        (*l1_stamp_locked(sh, h))++;
    l1_entry *old = l1_find_locked(sh, key, klen, h);
    if (stale) {
        free(e);
        e = NULL;
        rc = ESTALE;
    }
    /* A write supersedes any entry of its key. A stale fill leaves the entry
     * alone: the invalidation that voided the ticket removed the entry of
     * its time (or hit another key of the slot), so what is here is as good
     * as it was. */
    if (old != NULL && (!stale || mode == L1_WRITE))
        l1_remove_locked(sh, old); /* a replacement, not an eviction */
    if (e != NULL) {
        l1_make_room_locked(sh, l1_charge(klen, vlen));
        rc = l1_link_locked(sh, e);
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

int l1_set(l1 *s, const void *key, size_t klen, const void *value, size_t vlen, uint32_t tag,
           int64_t expires_at, int64_t now)
{
    return l1_store(s, key, klen, value, vlen, tag, expires_at, now, L1_STORE, 0);
}

int l1_fill(l1 *s, const void *key, size_t klen, const void *value, size_t vlen, uint32_t tag,
            int64_t expires_at, int64_t now, l1_ticket ticket)
{
    return l1_store(s, key, klen, value, vlen, tag, expires_at, now, L1_FILL, ticket);
}

int l1_write(l1 *s, const void *key, size_t klen, const void *value, size_t vlen, uint32_t tag,
             int64_t expires_at, int64_t now, l1_ticket ticket)
{
    return l1_store(s, key, klen, value, vlen, tag, expires_at, now, L1_WRITE, ticket);
}

l1_ticket l1_reserve(l1 *s, const void *key, size_t klen)
{
    uint64_t h = l1_hash(key, klen);
    l1_shard *sh = l1_shard_of(s, h);
    pthread_mutex_lock(&sh->lock);
    l1_ticket t = l1_ticket_locked(s, sh, h);
    pthread_mutex_unlock(&sh->lock);
    return t;
}

int l1_extend(l1 *s, const void *key, size_t klen, int64_t expires_at)
{
    if (klen > UINT32_MAX)
        return 0;
    uint64_t h = l1_hash(key, klen);
    l1_shard *sh = l1_shard_of(s, h);
    pthread_mutex_lock(&sh->lock);
    l1_entry *e = l1_find_locked(sh, key, klen, h);
    if (e != NULL)
        e->expires_at = expires_at;
    pthread_mutex_unlock(&sh->lock);
    return e != NULL;
}

int l1_invalidate(l1 *s, const void *key, size_t klen)
{
    uint64_t h = l1_hash(key, klen);
    l1_shard *sh = l1_shard_of(s, h);
    pthread_mutex_lock(&sh->lock);
    (*l1_stamp_locked(sh, h))++;
    l1_entry *e = klen <= UINT32_MAX ? l1_find_locked(sh, key, klen, h) : NULL;
    if (e != NULL)
        l1_remove_locked(sh, e);
    pthread_mutex_unlock(&sh->lock);
    return e != NULL;
}

void l1_flush(l1 *s)
{
    atomic_fetch_add(&s->generation, 1);
    l1_del_prefix(s, "", 0);
}

int l1_del(l1 *s, const void *key, size_t klen)
{
    if (klen > UINT32_MAX)
        return 0;
    uint64_t h = l1_hash(key, klen);
    l1_shard *sh = l1_shard_of(s, h);

    pthread_mutex_lock(&sh->lock);
    l1_entry *e = l1_find_locked(sh, key, klen, h);
    if (e != NULL)
        l1_remove_locked(sh, e);
    pthread_mutex_unlock(&sh->lock);
    return e != NULL;
}

uint64_t l1_del_prefix(l1 *s, const void *prefix, size_t plen)
{
    uint64_t removed = 0;
    for (unsigned i = 0; i < s->nshards; i++) {
        l1_shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->lock);
        l1_entry *e = sh->lru_head, *next;
        for (; e != NULL; e = next) {
            next = e->next;
            if (e->klen >= plen && (plen == 0 || memcmp(e->data, prefix, plen) == 0)) {
                l1_remove_locked(sh, e);
                removed++;
            }
        }
        pthread_mutex_unlock(&sh->lock);
    }
    return removed;
}

/* Takes each shard lock in turn, so the totals are a sum of per-shard
 * snapshots, not one atomic snapshot of the whole store. */
void l1_get_stats(l1 *s, l1_stats *out)
{
    memset(out, 0, sizeof *out);
    out->max_bytes = s->max_memory;
    for (unsigned i = 0; i < s->nshards; i++) {
        l1_shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->lock);
        out->entries += sh->entries;
        out->bytes += sh->bytes;
        out->evictions += sh->evictions;
        out->expired += sh->expired;
        pthread_mutex_unlock(&sh->lock);
    }
}
