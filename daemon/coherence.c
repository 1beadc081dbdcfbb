/* Coherence state; see coherence.h.
 * `up` and `verified_ms` are atomics read on every Get; the version map is
 * guarded by a rwlock (read on every Get of a known namespace); the stream
 * table belongs to the subscriber thread alone. */
#include "coherence.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "keyspace.h"
#include "log.h"
#include "ring.h"
#include "units.h"

#define COH_MAX_STREAMS 65 /* 64 workers and the publisher */
#define COH_MAX_ORIGIN  64 /* node ids are 16 hex digits; longer ones are refused */

/* A namespace's version: the highest this node has seen, which stays as the
 * floor it sends with every script (l2.h) also while the node does not trust it
 * (`known` 0, after L1 was emptied), so a version never goes back. */
typedef struct nsver {
    UT_hash_handle hh;
    uint64_t version;
    int known; /* read from Redis since L1 was last emptied */
    char ns[];
} nsver;

/* Another daemon heard on the channel (by a heartbeat or a numbered
 * message), and when it was last heard. */
typedef struct origin_seen {
    UT_hash_handle hh;
    int64_t heard_ms; /* this node's clock when its last message arrived */
    int64_t sent_ms;  /* its clock: the latest heartbeat of it heard */
    char id[];
} origin_seen;

/* The last seq seen from one (origin, stream) on one channel, keyed
 * "ORIGIN/STREAM/CHANNEL" (a stream is ordered per channel only). */
typedef struct stream_seen {
    UT_hash_handle hh;
    uint64_t last;
    char id[];
} stream_seen;

struct coh {
    l1 *cache;
    stats *st;
    int64_t window_ms;
    char node_id[64];
    atomic_int up;
    _Atomic int64_t verified_ms; /* send time of the last own heartbeat heard; 0: none */
    pthread_rwlock_t versions_lock;
    nsver *versions;      /* guarded by versions_lock */
    stream_seen *streams; /* subscriber thread only */
    origin_seen *origins; /* subscriber thread only; kept across L1 resets */
    int64_t silence_ms;   /* coh_set_silence(); 0: off */
    int64_t subscribed_ms; /* when the current subscription was confirmed */
    int settled; /* from every source, an own heartbeat sent silence_ms after it was heard */
    int nsources;          /* the subscription's connections (one per master on a Cluster) */
    int64_t own_sent[COH_MAX_SOURCES]; /* per source: send time of the last own heartbeat heard */
    atomic_uint subscriptions;         /* subscriptions confirmed so far */
    coh_hook hook;
    void *hook_arg;
    _Atomic(ring *) ring; /* the near tiers' ring, or NULL; set once, any time */
    _Atomic uint64_t
        uncertain[COH_MAX_STREAMS]; /* per own stream: a seq whose write may have run */
    _Atomic uint64_t confirmed[COH_MAX_STREAMS]; /* per own stream: its last used seq */
};

void coh_set_hook(coh *c, coh_hook hook, void *arg)
{
    c->hook = hook;
    c->hook_arg = arg;
}

/* The ring, if set yet. */
static ring *ring_of(coh *c)
{
    return atomic_load_explicit(&c->ring, memory_order_acquire);
}

void coh_set_ring(coh *c, ring *r)
{
    atomic_store_explicit(&c->ring, r, memory_order_release);
}

/* Tells the near tiers (after the L1 drop) that a key changed. */
static void ring_key(coh *c, const void *ns, size_t nslen, const void *key, size_t klen)
{
    ring *r = ring_of(c);
    if (r != NULL)
        ring_publish(r, RING_KEY, ring_hash(ns, nslen), ring_hash(key, klen));
}

void coh_key_changed(coh *c, const void *l1key, size_t len)
{
    size_t nslen = ks_l1_key_ns_len(l1key, len);
    ring_key(c, l1key, nslen, (const char *)l1key + nslen + 1, len - nslen - 1);
}

void coh_drop_key(coh *c, const void *l1key, size_t len)
{
    l1_invalidate(c->cache, l1key, len);
    coh_key_changed(c, l1key, len);
}

void coh_l1_emptied(coh *c)
{
    ring *r = ring_of(c);
    if (r != NULL)
        ring_flush(r);
}

/* L1 may serve until `verified` + the window (0: not at all); so may the
 * near tiers. */
static void set_verified(coh *c, int64_t verified)
{
    atomic_store(&c->verified_ms, verified);
    ring *r = ring_of(c);
    if (r != NULL)
        ring_serve_until(r, verified > 0 && atomic_load(&c->up) ? verified + c->window_ms : 0);
}

int coh_create(coh **out, const char *node_id, l1 *cache, stats *st, int64_t window_ms)
{
    coh *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ENOMEM;
    c->cache = cache;
    c->st = st;
    c->window_ms = window_ms;
    c->nsources = 1;
    snprintf(c->node_id, sizeof c->node_id, "%s", node_id);
    pthread_rwlock_init(&c->versions_lock, NULL);
    *out = c;
    return 0;
}

/* Marks every version unknown, so each is read from Redis again; each stays
 * as its namespace's floor. */
static void forget_versions(coh *c)
{
    nsver *v, *tmp;
    pthread_rwlock_wrlock(&c->versions_lock);
    HASH_ITER(hh, c->versions, v, tmp)
    v->known = 0;
    pthread_rwlock_unlock(&c->versions_lock);
}

static void free_versions(coh *c)
{
    nsver *v, *tmp;
    HASH_ITER(hh, c->versions, v, tmp)
    {
        HASH_DEL(c->versions, v);
        free(v);
    }
}

static void forget_origins(coh *c)
{
    origin_seen *o, *tmp;
    HASH_ITER(hh, c->origins, o, tmp)
    {
        HASH_DEL(c->origins, o);
        free(o);
    }
}

static void forget_streams(coh *c)
{
    stream_seen *s, *tmp;
    HASH_ITER(hh, c->streams, s, tmp)
    {
        HASH_DEL(c->streams, s);
        free(s);
    }
}

void coh_destroy(coh *c)
{
    if (c == NULL)
        return;
    free_versions(c);
    forget_streams(c);
    forget_origins(c);
    pthread_rwlock_destroy(&c->versions_lock);
    free(c);
}

int coh_serving(coh *c, int64_t now)
{
    if (!atomic_load_explicit(&c->up, memory_order_acquire))
        return 0;
    int64_t v = atomic_load_explicit(&c->verified_ms, memory_order_acquire);
    return v != 0 && now - v <= c->window_ms;
}

int64_t coh_staleness(coh *c, int64_t now)
{
    int64_t v = atomic_load(&c->verified_ms);
    return v == 0 ? INT64_MAX : now - v;
}

int coh_subscribed_now(coh *c)
{
    return atomic_load(&c->up);
}

int coh_version(coh *c, const void *ns, size_t nslen, uint64_t *ver)
{
    nsver *v;
    int known = 0;
    pthread_rwlock_rdlock(&c->versions_lock);
    HASH_FIND(hh, c->versions, ns, (unsigned)nslen, v);
    if (v != NULL && v->known)
        *ver = v->version, known = 1;
    pthread_rwlock_unlock(&c->versions_lock);
    return known;
}

uint64_t coh_version_floor(coh *c, const void *ns, size_t nslen)
{
    nsver *v;
    uint64_t floor = 0;
    pthread_rwlock_rdlock(&c->versions_lock);
    HASH_FIND(hh, c->versions, ns, (unsigned)nslen, v);
    if (v != NULL)
        floor = v->version;
    pthread_rwlock_unlock(&c->versions_lock);
    return floor;
}

static void drop_namespace(coh *c, const void *ns, size_t nslen);

/* L1 entries carry the low 32 bits of their version (l1.h): a version that
 * jumps this far (one recreated from Redis's clock) could wrap onto an old
 * entry's, so such a jump drops the namespace from L1. */
#define COH_VERSION_JUMP (UINT64_C(1) << 31)

void coh_version_seen(coh *c, const void *ns, size_t nslen, uint64_t ver)
{
    uint64_t known;
    if (ver == 0 || ver > (uint64_t)INT64_MAX)
        return; /* none (a read of a namespace without one), or an unreadable reply */
    if (coh_version(c, ns, nslen, &known) && known >= ver)
        return; /* the common case, under the read lock only */
    nsver *v;
    int jumped = 0;
    pthread_rwlock_wrlock(&c->versions_lock);
    HASH_FIND(hh, c->versions, ns, (unsigned)nslen, v);
    if (v == NULL && (v = malloc(sizeof *v + nslen)) != NULL) {
        memcpy(v->ns, ns, nslen);
        v->version = ver;
        v->known = 1;
        HASH_ADD_KEYPTR(hh, c->versions, v->ns, (unsigned)nslen, v);
        if (v->hh.tbl == NULL)
            free(v); /* out of memory: stay unknown, reads go to Redis */
    } else if (v != NULL && ver >= v->version) {
        jumped = ver - v->version >= COH_VERSION_JUMP;
        v->version = ver;
        v->known = 1;
    }
    pthread_rwlock_unlock(&c->versions_lock);
    if (jumped)
        drop_namespace(c, ns, nslen);
}

/* Drops every L1 entry of the namespace (older versions are unreachable
 * already; this gives their memory back). */
static void drop_namespace(coh *c, const void *ns, size_t nslen)
{
    ks_l1_key prefix;
    if (ks_l1_key_make(&prefix, ns, nslen, "", 0) != 0)
        return;
    l1_del_prefix(c->cache, prefix.buf, prefix.len);
    ks_l1_key_free(&prefix);
    ring *r = ring_of(c);
    if (r != NULL)
        ring_publish(r, RING_NAMESPACE, ring_hash(ns, nslen), 0);
}

void coh_bumped(coh *c, const void *ns, size_t nslen, uint64_t ver)
{
    coh_version_seen(c, ns, nslen, ver);
    drop_namespace(c, ns, nslen);
    stats_inc(&c->st->namespace_bumps);
    if (c->hook != NULL)
        c->hook(c->hook_arg, NULL, 0); /* leases of the old version are moot */
}

/* Empties L1 and forgets what it knew, as after a lost message. */
static void reset(coh *c)
{
    l1_flush(c->cache);
    coh_l1_emptied(c);
    forget_versions(c);
    forget_streams(c);
    if (c->hook != NULL)
        c->hook(c->hook_arg, NULL, 0);
}

void coh_version_fell(coh *c, const void *ns, size_t nslen, uint64_t held)
{
    int n = (int)(nslen > 64 ? 64 : nslen);
    uint64_t floor = coh_version_floor(c, ns, nslen);
    if (held == 0)
        log_warn("namespace %.*s: redis lost its version (this node saw %" PRIu64
                 "; evicted, flushed or failed over?); the next write makes one above",
                 n, (const char *)ns, floor);
    else
        log_warn("namespace %.*s: redis holds version %" PRIu64 ", below the %" PRIu64
                 " this node saw (failed over to a replica that missed a bump?); "
                 "the next script raises it above",
                 n, (const char *)ns, held, floor);
}

void coh_set_silence(coh *c, int64_t silence_ms)
{
    c->silence_ms = silence_ms;
}

void coh_subscribed(coh *c)
{
    coh_subscribed_to(c, 1);
}

void coh_subscribed_to(coh *c, int sources)
{
    set_verified(c, 0);
    reset(c);
    forget_origins(c);
    c->subscribed_ms = units_now_ms();
    c->settled = c->silence_ms == 0;
    c->nsources = sources < 1 ? 1 : sources > COH_MAX_SOURCES ? COH_MAX_SOURCES : sources;
    memset(c->own_sent, 0, sizeof c->own_sent);
    atomic_fetch_add(&c->subscriptions, 1);
    atomic_store(&c->up, 1);
}

unsigned coh_subscriptions(coh *c)
{
    return atomic_load(&c->subscriptions);
}

void coh_lost(coh *c)
{
    ring *r = ring_of(c);
    if (r != NULL)
        ring_serve_until(r, 0);
    if (atomic_exchange(&c->up, 0))
        stats_inc(&c->st->subscription_losses);
}

/* The record of (origin, stream), made with `baseline` as its last seq when
 * new (*created set then). NULL when out of memory. */
static stream_seen *stream_of(coh *c, const char *origin, uint32_t stream, unsigned channel,
                              uint64_t baseline, int *created)
{
    char id[112];
    int n = snprintf(id, sizeof id, "%s/%u/%u", origin, stream, channel);
    stream_seen *s;
    *created = 0;
    HASH_FIND(hh, c->streams, id, (unsigned)n, s);
    if (s != NULL)
        return s;
    if ((s = malloc(sizeof *s + (size_t)n + 1)) == NULL)
        return NULL;
    memcpy(s->id, id, (size_t)n + 1);
    s->last = baseline;
    HASH_ADD_KEYPTR(hh, c->streams, s->id, (unsigned)n, s);
    if (s->hh.tbl == NULL) {
        free(s);
        return NULL;
    }
    *created = 1;
    return s;
}

/* Records message `seq` of (origin, stream). Returns 1 when messages were
 * missed before it. The first message of a stream sets its baseline (what
 * came before our subscription does not matter: L1 was emptied then); a
 * repeat is no gap (a write whose answer was lost is retried with its seq). */
static int seq_gap(coh *c, const char *origin, uint32_t stream, unsigned channel, uint64_t seq)
{
    int created;
    stream_seen *s = stream_of(c, origin, stream, channel, seq, &created);
    if (s == NULL)
        return 1; /* cannot track it: assume the worst */
    int gap = !created && seq > s->last + 1;
    if (seq > s->last)
        s->last = seq;
    return gap;
}

/* Another node's heartbeat: the last confirmed seq of each of its streams.
 * A confirmed message was published before the heartbeat, so it must have
 * arrived here already; if it has not, it was lost on the way. */
static int heartbeat_gap(coh *c, const pb_invalidation *m, unsigned channel)
{
    int gap = 0;
    for (size_t i = 0; i < m->heartbeat->n_stream_seqs; i++) {
        uint64_t confirmed = m->heartbeat->stream_seqs[i];
        int created;
        stream_seen *s = stream_of(c, m->origin, (uint32_t)i, channel, confirmed, &created);
        if (s == NULL)
            return 1;
        if (!created && confirmed > s->last) {
            gap = 1;
            s->last = confirmed;
        }
    }
    return gap;
}

static void apply_change(coh *c, const pb_invalidation *m, int own, unsigned channel);

/* Forgets the streams of an origin that said bye. */
static void forget_origin_streams(coh *c, const char *origin)
{
    size_t n = strlen(origin);
    stream_seen *s, *tmp;
    HASH_ITER(hh, c->streams, s, tmp)
    {
        if (strncmp(s->id, origin, n) == 0 && s->id[n] == '/') {
            HASH_DEL(c->streams, s);
            free(s);
        }
    }
}

static void gap_found(coh *c, const pb_invalidation *m)
{
    stats_inc(&c->st->sequence_gaps);
    log_warn("missed invalidations from node %s: emptying L1", m->origin);
    reset(c);
}

void coh_uncertain(coh *c, uint32_t stream, uint64_t seq)
{
    if (stream < COH_MAX_STREAMS)
        atomic_store(&c->uncertain[stream], seq);
}

uint64_t coh_next_seq(coh *c, uint32_t stream)
{
    return stream < COH_MAX_STREAMS ? atomic_load(&c->confirmed[stream]) + 1 : 0;
}

void coh_confirm_seq(coh *c, uint32_t stream, uint64_t seq)
{
    if (stream < COH_MAX_STREAMS)
        atomic_store(&c->confirmed[stream], seq);
}

size_t coh_stream_seqs(coh *c, uint64_t *seqs, size_t n)
{
    if (n > COH_MAX_STREAMS)
        n = COH_MAX_STREAMS;
    for (size_t i = 0; i < n; i++)
        seqs[i] = atomic_load(&c->confirmed[i]);
    return n;
}

/* Whether an own message must be applied: its write's outcome was unknown
 * to this node, so nothing was applied locally. */
static int own_uncertain(coh *c, const pb_invalidation *m)
{
    return m->seq != 0 && m->stream < COH_MAX_STREAMS &&
           atomic_load(&c->uncertain[m->stream]) == m->seq;
}

void coh_message_lost(coh *c)
{
    stats_inc(&c->st->sequence_gaps);
    reset(c);
}

/* Another daemon was heard: it is alive now, or (bye) stopped cleanly.
 * Returns 0 for a bye older than a heartbeat of it already heard (on a
 * Cluster the bye goes to every master, and a lagging master's copy may
 * come after the heartbeat that ended the quiet), which changes nothing;
 * else 1. */
static int origin_heard(coh *c, const pb_invalidation *m)
{
    if (c->silence_ms == 0)
        return 1;
    origin_seen *o;
    size_t n = strlen(m->origin);
    int64_t sent = m->heartbeat != NULL ? m->heartbeat->sent_ms : 0;
    HASH_FIND(hh, c->origins, m->origin, (unsigned)n, o);
    if (m->bye) {
        if (o != NULL && m->heartbeat != NULL && sent < o->sent_ms)
            return 0;
        if (o != NULL) {
            HASH_DEL(c->origins, o);
            free(o);
            stats_inc(&c->st->origins_bye);
            log_info("node %s stopped cleanly", m->origin);
        }
        return 1;
    }
    if (o == NULL && (o = malloc(sizeof *o + n + 1)) != NULL) {
        o->sent_ms = 0;
        memcpy(o->id, m->origin, n + 1);
        HASH_ADD_KEYPTR(hh, c->origins, o->id, (unsigned)n, o);
        if (o->hh.tbl == NULL) {
            free(o);
            o = NULL;
        }
    }
    if (o == NULL) {
        coh_message_lost(c); /* cannot watch it: assume the worst */
        return 1;
    }
    o->heard_ms = units_now_ms();
    if (sent > o->sent_ms)
        o->sent_ms = sent;
    return 1;
}

/* This node's own heartbeat, sent at `sent`, came back on `source`: every
 * message published there before it has been applied here, and L1 serves
 * up to the oldest of the last ones heard from every source. A daemon last heard more than
 * silence_ms before `sent` died or was cut off without saying bye, and the
 * batch of its last writes may never come (docs/coherence.md, "A writer
 * that dies"): L1 is emptied, as for a lost message. The first heartbeat
 * sent silence_ms after the subscription also empties L1 of what was read
 * before it, and only then does L1 serve: by then every writer alive at
 * the subscription has been heard, or its writes are in Redis. */
static void own_heartbeat(coh *c, int64_t sent, int source)
{
    if (c->silence_ms > 0) {
        int silent = 0;
        origin_seen *o, *tmp;
        HASH_ITER(hh, c->origins, o, tmp)
        {
            if (sent - o->heard_ms <= c->silence_ms)
                continue;
            log_warn("node %s silent for more than %" PRId64 " ms without a bye: emptying L1",
                     o->id, c->silence_ms);
            HASH_DEL(c->origins, o);
            free(o);
            silent = 1;
        }
        if (silent) {
            stats_inc(&c->st->origins_silent);
            reset(c);
        }
    }
    if (source >= 0 && source < c->nsources && sent > c->own_sent[source])
        c->own_sent[source] = sent;
    int64_t least = INT64_MAX;
    for (int i = 0; i < c->nsources; i++)
        if (c->own_sent[i] < least)
            least = c->own_sent[i];
    if (least == 0)
        return; /* a source not heard yet: not serving */
    if (c->silence_ms > 0 && !c->settled) {
        if (least < c->subscribed_ms + c->silence_ms)
            return; /* not serving yet */
        c->settled = 1;
        reset(c); /* fills read during the wait are not kept */
    }
    set_verified(c, least);
}

void coh_apply(coh *c, const pb_invalidation *m)
{
    coh_apply_from(c, m, 0, 0);
}

void coh_apply_from(coh *c, const pb_invalidation *m, int source, unsigned channel)
{
    if (strlen(m->origin) > COH_MAX_ORIGIN) {
        log_warn("message with a %zu-byte origin: not from a daemon; emptying L1",
                 strlen(m->origin));
        coh_message_lost(c);
        return;
    }
    int own = strcmp(m->origin, c->node_id) == 0;
    if (!own && (m->heartbeat != NULL || m->seq != 0 || m->bye) && !origin_heard(c, m))
        return; /* a late copy of a bye: nothing in it to apply */
    if (m->n_keys > 0 || m->bump_ns.len > 0 || m->flush_all)
        apply_change(c, m, own, channel);
    if (m->heartbeat != NULL) {
        if (own)
            own_heartbeat(c, m->heartbeat->sent_ms, source);
        else if (heartbeat_gap(c, m, channel))
            gap_found(c, m);
    }
    if (!own && m->bye)
        forget_origin_streams(c, m->origin);
}

/* The invalidation part of a message: keys, a bump, a flush. */
static void apply_change(coh *c, const pb_invalidation *m, int own, unsigned channel)
{
    if (own && !own_uncertain(c, m))
        return; /* applied locally before the write was answered */
    if (!own)
        stats_inc(&c->st->invalidations_received);
    if (!own && m->seq != 0 && seq_gap(c, m->origin, m->stream, channel, m->seq)) {
        gap_found(c, m);
        return;
    }
    if (m->flush_all) {
        log_info("flush-all from node %s: emptying L1", m->origin);
        reset(c);
        return;
    }
    for (size_t i = 0; i < m->n_keys; i++) {
        ks_l1_key k;
        if (ks_l1_key_make(&k, m->keys[i]->ns.data, m->keys[i]->ns.len, m->keys[i]->key.data,
                           m->keys[i]->key.len) != 0) {
            reset(c); /* cannot drop the one key: drop them all */
            return;
        }
        l1_invalidate(c->cache, k.buf, k.len);
        ring_key(c, m->keys[i]->ns.data, m->keys[i]->ns.len, m->keys[i]->key.data,
                 m->keys[i]->key.len);
        if (c->hook != NULL)
            c->hook(c->hook_arg, k.buf, k.len);
        ks_l1_key_free(&k);
    }
    if (m->bump_ns.len > 0)
        coh_bumped(c, m->bump_ns.data, m->bump_ns.len, m->bump_version);
}
