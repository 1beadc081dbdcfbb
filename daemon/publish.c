/* The publisher's thread, batches and heartbeats; see publish.h. The
 * pending batch is guarded by `mu`; the batch being sent, and on a Cluster
 * the map and the buckets' state, belong to the thread alone. */
#include "publish.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyspace.h"
#include "l2.h"
#include "l2cluster.h"
#include "l2conn.h"
#include "log.h"
#include "units.h"

#define MAX_STREAMS   65   /* coherence.h: 64 workers and the publisher */
#define RETRY_MS      20   /* between attempts at a batch that failed */
#define STOP_ATTEMPTS 3    /* at shutdown, a batch that keeps failing is given up */

/* One key of a batch: offsets into the batch's bytes. */
typedef struct ref {
    size_t ns, nslen, key, klen;
    int local; /* drop it from this node's L1 too once published */
} ref;

typedef struct batch {
    uint8_t *bytes;
    size_t used, cap;
    ref *refs;
    size_t n, refcap;
    call **calls;
    size_t ncalls, callcap;
    int flush_all;    /* something could not be recorded: every L1 empties */
    int64_t first_ms; /* when its first entry came */
} batch;

/* A Cluster's buckets (keyspace.h): their channels, where the map puts
 * them, and the one the batch being sent goes to. */
typedef struct buckets {
    char chan[KS_INVAL_BUCKETS][KS_CHANNEL_SIZE];
    char own[KS_INVAL_BUCKETS][KS_OWN_CHANNEL_SIZE];
    unsigned slot[KS_INVAL_BUCKETS];    /* of each bucket's channels */
    uint64_t seq[KS_INVAL_BUCKETS];     /* the last seq published on each */
    int16_t owner[KS_SLOTS];            /* the map: a node index per slot (-1: none) */
    int16_t first[L2CLUSTER_MAX_NODES]; /* per node: its lowest bucket (-1: none) */
    int heads[KS_INVAL_BUCKETS];        /* each master's lowest bucket: where it publishes */
    int nheads;
    uint64_t reloads;   /* the map's version (l2cluster_counts.reloads) read last */
    unsigned subs_seen; /* coh_subscriptions() when the map was last taken */
    unsigned turn; /* the master whose turn it is to carry a batch */
    int64_t own_at[KS_INVAL_BUCKETS];    /* when each took this node's last heartbeat */
    int64_t shared_at[KS_INVAL_BUCKETS]; /* ... and its last on the shared channel */
    /* the batch being sent: its bucket and seq, once chosen */
    int assigned, target;
    uint64_t target_seq;
} buckets;

struct publisher {
    const config *cfg;
    config_redis_url url;
    coh *coh;
    jobq *q;
    stats *st;
    pub_times t;
    uint32_t stream;
    int sharded; /* a Cluster: SPUBLISH on the channels' master, always in batches */
    char channel[KS_CHANNEL_SIZE], own[KS_OWN_CHANNEL_SIZE], node_id[64];
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* the thread: something to send, or stop */
    pthread_cond_t fresh; /* pub_ready()'s waiters: a shared message went out */
    batch pending;        /* guarded by mu */
    _Atomic int64_t shared_sent; /* send time of the last shared message Redis took; 0: none */
    atomic_int wanted;           /* a pub_begin() waits: a shared heartbeat now */
    atomic_int open;             /* writes between pub_begin() and pub_end() */
    atomic_int stopping;
    atomic_int down;             /* the last publish failed: a write need not wait for one */
    _Atomic int64_t round_sent;  /* every master took a shared message since (or shared_sent) */
    buckets *bk;                 /* a Cluster's; NULL on one server */
    int64_t own_sent;            /* every master took an own heartbeat since (thread only) */
    pthread_t thread;
    int started;
};

pub_times pub_timing(const config *cfg)
{
    int64_t i = cfg->heartbeat_interval_ms, w = cfg->coherence_window_ms;
    pub_times t;
    t.own_ms = i / 2 > 0 ? i / 2 : 1;
    t.shared_ms = i;
    t.gate_ms = t.shared_ms + i / 2;
    t.silence_ms = (t.gate_ms + w) / 2;
    if (t.silence_ms > t.gate_ms + 2 * i)
        t.silence_ms = t.gate_ms + 2 * i; /* a long window need not make a long wait */
    return t;
}

int pub_batching(const publisher *p)
{
    return p != NULL && (p->cfg->inval_batch || p->sharded);
}

int pub_sharded(const publisher *p)
{
    return p != NULL && p->sharded;
}

static int grow(void **buf, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *b = realloc(*buf, n * size);
    if (b == NULL)
        return -1;
    *buf = b;
    *cap = n;
    return 0;
}

/* Appends one key; -1 out of memory. */
static int batch_key(batch *b, ProtobufCBinaryData ns, ProtobufCBinaryData key, int local)
{
    if (grow((void **)&b->bytes, &b->cap, b->used + ns.len + key.len, 1) != 0 ||
        grow((void **)&b->refs, &b->refcap, b->n + 1, sizeof *b->refs) != 0)
        return -1;
    ref *r = &b->refs[b->n++];
    r->ns = b->used, r->nslen = ns.len;
    memcpy(b->bytes + b->used, ns.data, ns.len), b->used += ns.len;
    r->key = b->used, r->klen = key.len;
    memcpy(b->bytes + b->used, key.data, key.len), b->used += key.len;
    r->local = local;
    return 0;
}

static void batch_clear(batch *b)
{
    b->used = b->n = b->ncalls = 0;
    b->flush_all = 0;
    b->first_ms = 0;
}

static void batch_free(batch *b)
{
    free(b->bytes);
    free(b->refs);
    free(b->calls);
    memset(b, 0, sizeof *b);
}

static int batch_empty(const batch *b)
{
    return b->n == 0 && b->ncalls == 0 && !b->flush_all;
}

void pub_add(publisher *p, ProtobufCBinaryData ns, size_t n, pub_key_at_fn key_at,
             const void *req, call *c)
{
    pthread_mutex_lock(&p->mu);
    batch *b = &p->pending;
    if (batch_empty(b))
        b->first_ms = units_now_ms();
    for (size_t i = 0; i < n; i++)
        if (batch_key(b, ns, key_at(req, i), c == NULL) != 0)
            b->flush_all = 1;
    if (c != NULL) {
        if (grow((void **)&b->calls, &b->callcap, b->ncalls + 1, sizeof *b->calls) == 0)
            b->calls[b->ncalls++] = c;
        else
            call_send(c); /* cannot wait: its keys (or the flush) still go out */
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pub_end(publisher *p)
{
    if (atomic_fetch_sub(&p->open, 1) != 1)
        return;
    pthread_mutex_lock(&p->mu);
    pthread_cond_signal(&p->cv); /* the batch need not wait any more */
    pthread_mutex_unlock(&p->mu);
}

/* Open first, then look at the gate; the publisher closes the gate first,
 * then looks for open writes, before it goes quiet: so either this write
 * sees the gate closed, or the publisher sees the write (both seq_cst). */
int pub_begin(publisher *p, int64_t deadline)
{
    for (;;) {
        atomic_fetch_add(&p->open, 1);
        if (units_now_ms() - atomic_load(&p->shared_sent) <= p->t.gate_ms)
            return 0;
        pub_end(p);
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->wanted, 1);
        pthread_cond_signal(&p->cv); /* a heartbeat now opens the gate */
        int64_t now = units_now_ms();
        int fresh = now - atomic_load(&p->shared_sent) <= p->t.gate_ms;
        if (!fresh && (now >= deadline || atomic_load(&p->stopping) || atomic_load(&p->down))) {
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
        if (!fresh)
            units_cond_wait_ms(&p->fresh, &p->mu, deadline - now);
        pthread_mutex_unlock(&p->mu);
    }
}

/* PUBLISH (SPUBLISH) buf on `channel`. Returns 0 when Redis took it. */
static int publish(publisher *p, l2 *conn, const char *channel, const uint8_t *buf, size_t n)
{
    if (!p->sharded && !l2conn_connected(l2_conn(conn)) && jobq_connected(p->q) > 0)
        l2conn_retry_now(l2_conn(conn)); /* Redis is back: do not sit out the backoff */
    int ok = l2_publish(conn, channel, buf, n, p->cfg->redis_timeout_ms) == L2_OK;
    atomic_store(&p->down, !ok); /* while it fails, writes fail fast at the gate */
    return ok ? 0 : -1;
}

/* A message of this node on `bucket` (a Cluster's; -1 on one server): the
 * keys of `b` (may be NULL: a heartbeat alone) with seq, a
 * heartbeat sent now when `beat`, a bye when `bye`. Packs it into a
 * malloc'd buffer (*len) or returns NULL. */
static uint8_t *message(publisher *p, const batch *b, int bucket, uint64_t seq, int beat, int bye,
                        int64_t now, size_t *len)
{
    uint64_t seqs[MAX_STREAMS];
    pb_heartbeat hb = NEARCACHE__V1__HEARTBEAT__INIT;
    pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
    m.origin = p->node_id;
    m.bye = bye;
    if (beat) {
        hb.sent_ms = now;
        hb.stream_seqs = seqs;
        hb.n_stream_seqs = coh_stream_seqs(p->coh, seqs, p->stream + 1);
        if (bucket >= 0) { /* seqs are per channel: the workers' bumps go on bucket 0 */
            for (size_t i = 0; i < hb.n_stream_seqs && i < p->stream; i++)
                seqs[i] = bucket == 0 ? seqs[i] : 0;
            if (p->stream < hb.n_stream_seqs)
                seqs[p->stream] = p->bk->seq[bucket];
        }
        if (b != NULL && p->stream < hb.n_stream_seqs)
            seqs[p->stream] = seq; /* this message's own, checked before its heartbeat */
        m.heartbeat = &hb;
    }
    size_t n = b != NULL ? b->n : 0;
    pb_key_ref *refs = calloc(n ? n : 1, sizeof *refs), **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    uint8_t *buf = NULL;
    if (refs != NULL && ptrs != NULL) {
        for (size_t i = 0; i < n; i++) {
            nearcache__v1__key_ref__init(&refs[i]);
            refs[i].ns = (ProtobufCBinaryData){b->refs[i].nslen, b->bytes + b->refs[i].ns};
            refs[i].key = (ProtobufCBinaryData){b->refs[i].klen, b->bytes + b->refs[i].key};
            ptrs[i] = &refs[i];
        }
        if (b != NULL) {
            m.stream = p->stream;
            m.seq = seq;
            m.n_keys = n;
            m.keys = n > 0 ? ptrs : NULL;
            m.flush_all = b->flush_all;
        }
        if ((buf = malloc(codec_inval_size(&m) + 1)) != NULL)
            *len = codec_inval_pack(&m, buf);
    }
    free(refs);
    free(ptrs);
    return buf;
}

/* Marks a shared message sent at `sent` as taken by Redis (by bucket `b`'s
 * master on a Cluster; -1 on one server): the gate opens, and the next
 * shared heartbeats are due a shared period after the oldest master's. */
static void shared_done(publisher *p, int64_t sent, int b)
{
    int64_t round = sent, own = sent;
    if (b >= 0) {
        buckets *k = p->bk;
        k->shared_at[b] = k->own_at[b] = sent;
        for (int i = 0; i < k->nheads; i++) {
            if (k->shared_at[k->heads[i]] < round)
                round = k->shared_at[k->heads[i]];
            if (k->own_at[k->heads[i]] < own)
                own = k->own_at[k->heads[i]];
        }
    }
    p->own_sent = own;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->shared_sent, sent);
    atomic_store(&p->round_sent, round);
    atomic_store(&p->wanted, 0);
    pthread_cond_broadcast(&p->fresh);
    pthread_mutex_unlock(&p->mu);
}

/* ---- a Cluster: a channel per master ------------------------------------ */

/* Takes the map of the publisher's connection (after loading it again when
 * the subscriber subscribed anew since: it saw a newer one): each master
 * publishes on its lowest bucket. */
static void take_map(publisher *p, l2 *conn)
{
    buckets *k = p->bk;
    l2cluster *cl = l2_cluster(conn);
    unsigned subs = coh_subscriptions(p->coh);
    if (subs != k->subs_seen) {
        k->subs_seen = subs;
        l2cluster_reload(cl);
    }
    uint64_t reloads = l2cluster_counters(cl).reloads;
    if (reloads == k->reloads && k->nheads > 0)
        return;
    k->reloads = reloads;
    l2cluster_owners(cl, k->owner);
    for (int i = 0; i < L2CLUSTER_MAX_NODES; i++)
        k->first[i] = -1;
    k->nheads = 0;
    for (int b = 0; b < KS_INVAL_BUCKETS; b++) {
        int m = k->owner[k->slot[b]];
        if (m >= 0 && m < L2CLUSTER_MAX_NODES && k->first[m] < 0)
            k->first[m] = (int16_t)b, k->heads[k->nheads++] = b;
    }
    if (k->nheads == 0)
        k->heads[0] = 0, k->nheads = 1; /* no map yet: l2_publish() loads one */
}

/* Publishes the batch being sent, whole, on one master's channel, the
 * masters taken in turn, with that channel's next seq and a heartbeat. A
 * master that cannot take it (down, failing over) passes it to the next:
 * any channel will do, since every node hears them all, and the seq left
 * unused there is the next message's on it, so no one sees a gap. Returns
 * 0 once it is published, else -1 (it is tried again, from the next
 * master on). */
static int send_parts(publisher *p, l2 *conn, const batch *b, int64_t now)
{
    buckets *k = p->bk;
    if (!k->assigned)
        take_map(p, conn);
    for (int tries = 0; tries < k->nheads && tries < 2; tries++) {
        if (!k->assigned) {
            k->target = k->heads[k->turn++ % (unsigned)k->nheads];
            k->target_seq = k->seq[k->target] + 1;
            k->assigned = 1;
        }
        size_t len = 0;
        uint8_t *buf = message(p, b, k->target, k->target_seq, 1, 0, now, &len);
        int ok = buf != NULL && publish(p, conn, k->chan[k->target], buf, len) == 0;
        free(buf);
        if (ok) {
            k->seq[k->target] = k->target_seq;
            k->assigned = 0;
            stats_inc(&p->st->invalidation_batches);
            shared_done(p, now, k->target);
            return 0;
        }
        k->assigned = 0;
    }
    return -1;
}

/* Publishes the batch with a heartbeat. Returns 0 (its calls answered, its
 * local keys dropped here) or -1 (its calls past their deadline answered
 * UNAVAILABLE; the rest wait for the next attempt). */
static int send_batch(publisher *p, l2 *conn, batch *b, uint64_t seq)
{
    int64_t now = units_now_ms();
    int ok;
    if (p->bk != NULL) {
        ok = send_parts(p, conn, b, now) == 0;
    } else {
        size_t len = 0;
        uint8_t *buf = message(p, b, -1, seq, 1, 0, now, &len);
        ok = buf != NULL && publish(p, conn, p->channel, buf, len) == 0;
        free(buf);
        if (ok) {
            coh_confirm_seq(p->coh, p->stream, seq);
            stats_inc(&p->st->invalidation_batches);
            shared_done(p, now, -1);
        }
    }
    if (!ok) {
        size_t kept = 0;
        for (size_t i = 0; i < b->ncalls; i++) {
            if (units_now_ms() < call_deadline(b->calls[i])) {
                b->calls[kept++] = b->calls[i];
                continue;
            }
            stats_inc(&p->st->redis_errors);
            call_fail(b->calls[i], CODE(UNAVAILABLE),
                      "the write is done in redis, but its invalidation could not be published "
                      "yet (%s): other hosts may serve the old value until it is, or until they "
                      "count this daemon silent",
                      l2_error(conn));
        }
        b->ncalls = kept;
        return -1;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (!b->refs[i].local)
            continue;
        ks_l1_key k;
        if (ks_l1_key_make(&k, b->bytes + b->refs[i].ns, b->refs[i].nslen,
                           b->bytes + b->refs[i].key, b->refs[i].klen) == 0) {
            coh_drop_key(p->coh, k.buf, k.len);
            ks_l1_key_free(&k);
        }
    }
    for (size_t i = 0; i < b->ncalls; i++)
        call_send(b->calls[i]);
    b->ncalls = 0;
    return 0;
}

/* A heartbeat (or the bye) alone, on the shared channel or this node's; on
 * a Cluster on every master's. Returns 0 when every one went out. */
static int beat(publisher *p, l2 *conn, int shared, int bye)
{
    int64_t now = units_now_ms();
    size_t len = 0;
    if (p->bk == NULL) {
        uint8_t *buf = message(p, NULL, -1, 0, 1, bye, now, &len);
        int ok = buf != NULL && publish(p, conn, shared ? p->channel : p->own, buf, len) == 0;
        free(buf);
        if (ok && shared && !bye)
            shared_done(p, now, -1);
        else if (ok && !bye)
            p->own_sent = now;
        return ok ? 0 : -1;
    }
    take_map(p, conn);
    buckets *k = p->bk;
    /* the masters due (or, when none is, the one waiting longest) */
    int64_t *at = shared ? k->shared_at : k->own_at, period = shared ? p->t.shared_ms : p->t.own_ms;
    int oldest = k->heads[0], failed = 0, due = 0;
    for (int i = 0; i < k->nheads; i++)
        if (at[k->heads[i]] < at[oldest])
            oldest = k->heads[i];
    for (int i = 0; i < k->nheads; i++) {
        int b = k->heads[i];
        if (!bye && b != oldest && at[b] + period > now + p->t.own_ms / 2)
            continue;
        due++;
        uint8_t *buf = message(p, NULL, b, 0, 1, bye, now, &len);
        int ok = buf != NULL && publish(p, conn, shared ? k->chan[b] : k->own[b], buf, len) == 0;
        free(buf);
        failed += !ok;
        if (ok && shared && !bye)
            shared_done(p, now, b);
        else if (ok && !bye)
            k->own_at[b] = now;
    }
    atomic_store(&p->down, failed == due);
    if (!shared) {
        int64_t own = now;
        for (int i = 0; i < k->nheads; i++)
            if (k->own_at[k->heads[i]] < own)
                own = k->own_at[k->heads[i]];
        p->own_sent = own;
    }
    return failed ? -1 : 0;
}

/* With mu held and nothing pending: closes the gate, then makes sure no
 * write opened meanwhile (pub_begin()'s order is the reverse). Returns 1
 * when this node may go quiet (a bye: no one needs to watch it while it
 * writes nothing; its next write waits for a heartbeat first), else 0 with
 * the gate as it was. */
static int go_quiet(publisher *p)
{
    int64_t was = atomic_exchange(&p->shared_sent, 0);
    if (atomic_load(&p->open) == 0 && !atomic_load(&p->wanted)) {
        atomic_store(&p->round_sent, 0);
        return 1;
    }
    atomic_store(&p->shared_sent, was);
    return 0;
}

/* When the next heartbeat on the shared channel is due (not quiet): a
 * shared period after the last shared message, at once when a write waits
 * for the gate, and a failed one again each heartbeat_interval. */
static int64_t shared_due_at(publisher *p, int64_t tried)
{
    int64_t due = atomic_load(&p->round_sent) + p->t.shared_ms;
    if (atomic_load(&p->wanted))
        return due < tried + RETRY_MS ? due : tried + RETRY_MS;
    int64_t again = tried + p->cfg->heartbeat_interval_ms;
    return due > again ? due : again;
}

/* Stopping, with a batch that cannot be published: answers its calls and
 * drops it (the others will count this daemon silent). */
static void give_up(l2 *conn, batch *out)
{
    for (size_t i = 0; i < out->ncalls; i++)
        call_fail(out->calls[i], CODE(UNAVAILABLE),
                  "the write is done in redis, but this daemon stopped before it could publish "
                  "its invalidation: other hosts stop serving the old value once they count "
                  "this daemon silent");
    log_warn("publisher: stopping with %zu invalidations unpublished: %s; the other daemons "
             "will empty their L1 when they count this one silent",
             out->n, l2_error(conn));
    batch_clear(out);
}

static void *pub_main(void *arg)
{
    publisher *p = arg;
    l2 *conn = NULL;
    if (l2_create(&conn, &p->url, p->cfg->redis_timeout_ms, "publisher", p->stream) != 0) {
        log_error("publisher: out of memory");
        return NULL;
    }
    int64_t delay = p->cfg->inval_batch_delay_ms;
    int64_t own_tried = 0, shared_tried = 0, busy = units_now_ms();
    int quiet = 0; /* said bye for now: no write under way, no shared heartbeats */
    batch out = {0};
    uint64_t seq = 0; /* of `out` while it waits to go out; 0: none yet */
    int failures = 0, clean = 1;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int64_t now = units_now_ms();
        int stopping = atomic_load(&p->stopping);
        int64_t go = p->pending.first_ms + delay; /* when the pending batch may go */
        if (atomic_load(&p->open) > 0)
            go += PUB_LINGER_MS; /* scripts under way: wait for them, a little */
        if (batch_empty(&out) && !batch_empty(&p->pending) && (stopping || now >= go)) {
            batch t = out;
            out = p->pending;
            p->pending = t;
            batch_clear(&p->pending);
        }
        if (stopping && batch_empty(&out) && batch_empty(&p->pending))
            break;
        if (!batch_empty(&out) || !batch_empty(&p->pending) || atomic_load(&p->open) > 0 ||
            atomic_load(&p->wanted))
            busy = now, quiet = 0;
        else if (!quiet && !stopping && now - busy >= p->t.silence_ms && go_quiet(p)) {
            quiet = 1;
            pthread_mutex_unlock(&p->mu);
            beat(p, conn, 1, 1); /* others stop watching; lost, they count this node silent */
            pthread_mutex_lock(&p->mu);
            continue;
        }
        int64_t shared_due = quiet ? INT64_MAX : shared_due_at(p, shared_tried);
        int64_t own_due = (p->own_sent > own_tried ? p->own_sent : own_tried) + p->t.own_ms;
        int64_t wake = shared_due < own_due ? shared_due : own_due;
        if (!batch_empty(&p->pending) && go < wake)
            wake = go;
        if (batch_empty(&out) && now < wake && !stopping) {
            units_cond_wait_ms(&p->cv, &p->mu, wake - now);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        if (!batch_empty(&out)) {
            if (seq == 0)
                seq = coh_next_seq(p->coh, p->stream);
            if (send_batch(p, conn, &out, seq) == 0) {
                batch_clear(&out);
                seq = 0;
                failures = 0;
            } else if (stopping && ++failures >= STOP_ATTEMPTS) {
                give_up(conn, &out);
                if (p->bk != NULL)
                    p->bk->assigned = 0;
                clean = 0;
            } else {
                if (failures++ == 0)
                    log_warn("publisher: cannot publish %zu invalidations: %s (retrying)", out.n,
                             l2_error(conn));
                struct timespec ts = {0, RETRY_MS * 1000000L};
                nanosleep(&ts, NULL);
            }
        } else if (now >= shared_due) {
            shared_tried = now;
            beat(p, conn, 1, 0); /* an own heartbeat too, where it went */
        } else if (now >= own_due) {
            own_tried = now;
            beat(p, conn, 0, 0);
        }
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    if (clean && beat(p, conn, 1, 1) != 0)
        log_warn("publisher: cannot say bye: %s; the other daemons will empty their L1 when "
                 "they count this one silent",
                 l2_error(conn));
    batch_free(&out);
    l2_destroy(conn);
    return NULL;
}

int pub_create(publisher **out, const config *cfg, const config_redis_url *url,
               const char *prefix, const char *node_id, uint32_t stream, coh *c, jobq *q,
               stats *st)
{
    publisher *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ENOMEM;
    p->cfg = cfg;
    p->url = *url;
    p->coh = c;
    p->q = q;
    p->st = st;
    p->t = pub_timing(cfg);
    p->stream = stream;
    p->sharded = url->nseeds > 0;
    if (p->sharded && (p->bk = calloc(1, sizeof *p->bk)) == NULL) {
        free(p);
        return ENOMEM;
    }
    if (p->sharded) {
        unsigned n_of[KS_INVAL_BUCKETS];
        ks_inval_tags(prefix, n_of);
        for (int b = 0; b < KS_INVAL_BUCKETS; b++) {
            int len =
                ks_inval_channel(p->bk->chan[b], sizeof p->bk->chan[b], prefix, n_of[b], NULL);
            ks_inval_channel(p->bk->own[b], sizeof p->bk->own[b], prefix, n_of[b], node_id);
            p->bk->slot[b] = ks_slot(p->bk->chan[b], (size_t)len);
        }
    }
    ks_channel(p->channel, sizeof p->channel, prefix);
    ks_own_channel(p->own, sizeof p->own, prefix, node_id);
    snprintf(p->node_id, sizeof p->node_id, "%s", node_id);
    pthread_mutex_init(&p->mu, NULL);
    units_cond_init(&p->cv);
    units_cond_init(&p->fresh);
    int rv = pthread_create(&p->thread, NULL, pub_main, p);
    if (rv != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_cond_destroy(&p->fresh);
        pthread_mutex_destroy(&p->mu);
        free(p->bk);
        free(p);
        return rv;
    }
    p->started = 1;
    *out = p;
    return 0;
}

void pub_destroy(publisher *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stopping, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_cond_broadcast(&p->fresh);
    pthread_mutex_unlock(&p->mu);
    if (p->started)
        pthread_join(p->thread, NULL);
    batch_free(&p->pending);
    free(p->bk);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->fresh);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
