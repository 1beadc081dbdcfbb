/* Per-namespace hits and misses, Space-Saving; see nstop.h.
 * A row is found by its namespace's 64-bit hash, probed from hash % n
 * over every row (n is small: tens). A row changes owner only under the
 * lock, inside a seqlock (seq odd while it changes), so a reader copies a
 * consistent name (byte by byte, each a relaxed atomic: no data race); the counters themselves are
 * relaxed atomics that the hit path bumps without the lock. */
#include "nstop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct row {
    atomic_uint_fast64_t seq;  /* odd while the row changes owner */
    atomic_uint_fast64_t hash; /* the owner's hash; 0: free */
    atomic_uint_fast64_t hits, misses;
    atomic_uint_fast64_t near_hits, near_misses;
    atomic_uint_fast64_t denied;
    atomic_uint_fast64_t inherited; /* Space-Saving: the rank it took over */
    char name[NSTOP_NAME_MAX];      /* bytes written and read one relaxed atomic each */
    atomic_size_t len;
    atomic_int truncated;
};

struct nstop {
    size_t n;
    pthread_mutex_t mu; /* taken to change a row's owner */
    atomic_uint_fast64_t other_hits, other_misses;
    atomic_uint_fast64_t other_near_hits, other_near_misses;
    atomic_uint_fast64_t other_denied;
    struct row *rows;
};

int nstop_create(nstop **out, size_t n)
{
    nstop *t = calloc(1, sizeof *t);
    if (t == NULL || n == 0 || (t->rows = calloc(n, sizeof *t->rows)) == NULL) {
        free(t);
        return ENOMEM;
    }
    t->n = n;
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return 0;
}

void nstop_destroy(nstop *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->rows);
    free(t);
}

size_t nstop_size(const nstop *t)
{
    return t->n;
}

/* FNV-1a, never 0 (0 marks a free row). */
static uint64_t hash_of(const void *ns, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const unsigned char *)ns)[i]) * 1099511628211ULL;
    return h != 0 ? h : 1;
}

static void bump(atomic_uint_fast64_t *hits, atomic_uint_fast64_t *misses, int hit)
{
    atomic_fetch_add_explicit(hit ? hits : misses, 1, memory_order_relaxed);
}

static struct row *find(nstop *t, uint64_t h)
{
    for (size_t i = 0, at = h % t->n; i < t->n; i++, at = at + 1 < t->n ? at + 1 : 0)
        if (atomic_load_explicit(&t->rows[at].hash, memory_order_acquire) == h)
            return &t->rows[at];
    return NULL;
}

static uint64_t rank_of(struct row *r)
{
    return atomic_load_explicit(&r->hits, memory_order_relaxed) +
           atomic_load_explicit(&r->misses, memory_order_relaxed) +
           atomic_load_explicit(&r->near_hits, memory_order_relaxed) +
           atomic_load_explicit(&r->near_misses, memory_order_relaxed) +
           atomic_load_explicit(&r->denied, memory_order_relaxed) +
           atomic_load_explicit(&r->inherited, memory_order_relaxed);
}

/* Gives the free row, or else the row of least rank, to namespace h, its
 * old counts moving to `other`. Called with the lock held. */
static struct row *take_row_locked(nstop *t, uint64_t h, const void *ns, size_t len)
{
    struct row *r = &t->rows[0];
    uint64_t least = UINT64_MAX;
    for (size_t i = 0; i < t->n && least > 0; i++) {
        uint64_t rank = atomic_load(&t->rows[i].hash) == 0 ? 0 : rank_of(&t->rows[i]);
        if (rank < least)
            least = rank, r = &t->rows[i];
    }
    atomic_fetch_add(&r->seq, 1); /* odd: changing */
    atomic_store(&r->hash, 0);
    atomic_fetch_add(&t->other_hits, atomic_exchange(&r->hits, 0));
    atomic_fetch_add(&t->other_misses, atomic_exchange(&r->misses, 0));
    atomic_fetch_add(&t->other_near_hits, atomic_exchange(&r->near_hits, 0));
    atomic_fetch_add(&t->other_near_misses, atomic_exchange(&r->near_misses, 0));
    atomic_fetch_add(&t->other_denied, atomic_exchange(&r->denied, 0));
    atomic_store(&r->inherited, least);
    size_t keep = len < NSTOP_NAME_MAX ? len : NSTOP_NAME_MAX;
    for (size_t i = 0; i < keep; i++)
        __atomic_store_n(&r->name[i], ((const char *)ns)[i], __ATOMIC_RELAXED);
    atomic_store(&r->len, keep);
    atomic_store(&r->truncated, len > NSTOP_NAME_MAX);
    atomic_store(&r->hash, h);
    atomic_fetch_add(&r->seq, 1); /* even: settled */
    return r;
}

void nstop_count(nstop *t, const void *ns, size_t len, int hit)
{
    uint64_t h = hash_of(ns, len);
    struct row *r = find(t, h);
    if (r != NULL) {
        bump(&r->hits, &r->misses, hit);
        return;
    }
    if (pthread_mutex_trylock(&t->mu) != 0) {
        bump(&t->other_hits, &t->other_misses, hit);
        return;
    }
    if ((r = find(t, h)) == NULL)
        r = take_row_locked(t, h, ns, len);
    bump(&r->hits, &r->misses, hit);
    pthread_mutex_unlock(&t->mu);
}

void nstop_count_near(nstop *t, const void *ns, size_t len, uint64_t hits, uint64_t misses)
{
    uint64_t h = hash_of(ns, len);
    pthread_mutex_lock(&t->mu);
    struct row *r = find(t, h);
    if (r == NULL)
        r = take_row_locked(t, h, ns, len);
    atomic_fetch_add_explicit(&r->near_hits, hits, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->near_misses, misses, memory_order_relaxed);
    pthread_mutex_unlock(&t->mu);
}

void nstop_count_denied(nstop *t, const void *ns, size_t len)
{
    uint64_t h = hash_of(ns, len);
    pthread_mutex_lock(&t->mu);
    struct row *r = find(t, h);
    if (r == NULL)
        r = take_row_locked(t, h, ns, len);
    atomic_fetch_add_explicit(&r->denied, 1, memory_order_relaxed);
    pthread_mutex_unlock(&t->mu);
}

/* Copies row r into *out; returns 0 when it is free or changed meanwhile. */
static int copy_row(struct row *r, nstop_row *out, uint64_t *rank)
{
    uint64_t seq = atomic_load_explicit(&r->seq, memory_order_acquire);
    if ((seq & 1) || atomic_load(&r->hash) == 0)
        return 0;
    out->len = atomic_load(&r->len);
    out->truncated = atomic_load(&r->truncated);
    for (size_t i = 0; i < out->len && i < NSTOP_NAME_MAX; i++)
        out->name[i] = __atomic_load_n(&r->name[i], __ATOMIC_RELAXED);
    out->hits = atomic_load_explicit(&r->hits, memory_order_relaxed);
    out->misses = atomic_load_explicit(&r->misses, memory_order_relaxed);
    out->near_hits = atomic_load_explicit(&r->near_hits, memory_order_relaxed);
    out->near_misses = atomic_load_explicit(&r->near_misses, memory_order_relaxed);
    out->denied = atomic_load_explicit(&r->denied, memory_order_relaxed);
    *rank = out->hits + out->misses + out->near_hits + out->near_misses + out->denied +
            atomic_load(&r->inherited);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&r->seq, memory_order_relaxed) == seq;
}

size_t nstop_read(nstop *t, nstop_row *rows, nstop_row *other)
{
    uint64_t rank[t->n > 0 ? t->n : 1];
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        nstop_row tmp;
        uint64_t rk = 0;
        if (!copy_row(&t->rows[i], &tmp, &rk))
            continue;
        size_t at = k++; /* insertion sort, busiest first: n is small */
        for (; at > 0 && rank[at - 1] < rk; at--)
            rows[at] = rows[at - 1], rank[at] = rank[at - 1];
        rows[at] = tmp;
        rank[at] = rk;
    }
    memset(other, 0, sizeof *other);
    memcpy(other->name, "other", 5);
    other->len = 5;
    other->hits = atomic_load(&t->other_hits);
    other->misses = atomic_load(&t->other_misses);
    other->near_hits = atomic_load(&t->other_near_hits);
    other->near_misses = atomic_load(&t->other_near_misses);
    other->denied = atomic_load(&t->other_denied);
    return k;
}
