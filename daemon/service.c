/* The cache methods; see service.h.
 * A Get tries L1 on the server thread and copies the value straight into the
 * reply under the shard lock (one lookup, one copy). Misses, Sets and Deletes
 * run on a jobq worker: Redis first, then L1, then the answer. A failed or
 * uncertain Redis write drops the key from L1, never keeps an old copy. */
#include "service.h"
#include "service_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "coherence.h"
#include "flight.h"
#include "log.h"
#include "waits.h"
#include "units.h"

/* Where a request's key lives in Redis. */
l2_key svc_redis_key(const service *svc, ProtobufCBinaryData ns, ProtobufCBinaryData key)
{
    l2_key k = {svc->cfg->prefix, ns.data, ns.len, key.data, key.len};
    return k;
}

/* The invalidation a write on `conn` publishes; `ref` is filled in here and
 * must live as long as the message. Returns the packed size in *len and a
 * new buffer (the caller frees it), or NULL. */
static uint8_t *inval_msg(service *svc, l2 *conn, pb_key_ref *ref, const pb_key_ref *key,
                          ProtobufCBinaryData bump_ns, size_t *len)
{
    pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
    pb_key_ref *refs[1] = {ref};
    m.origin = svc->node_id;
    m.stream = l2_stream(conn);
    m.seq = l2_next_seq(conn);
    if (key != NULL) {
        *ref = *key;
        m.n_keys = 1;
        m.keys = refs;
    }
    m.bump_ns = bump_ns;
    uint8_t *buf = malloc(codec_inval_size(&m) + 1);
    if (buf != NULL)
        *len = codec_inval_pack(&m, buf);
    return buf;
}

/* Checks a namespace and key against the limits. Returns 0, or answers the
 * call with INVALID_ARGUMENT and returns -1. */
int svc_check_ns_key(service *svc, call *c, ProtobufCBinaryData ns, ProtobufCBinaryData key)
{
    const config *cfg = svc->cfg;
    const char *problem = NULL;
    char text[160];
    if (ns.len == 0)
        problem = "namespace is empty";
    else if (ns.len > cfg->max_namespace_size)
        problem = text, snprintf(text, sizeof text,
                                 "namespace is %zu bytes; max_namespace_size "
                                 "is %" PRIu64,
                                 ns.len, cfg->max_namespace_size);
    else if (memchr(ns.data, ':', ns.len) != NULL)
        problem = "namespace contains ':', which separates the parts of a Redis key";
    else if (key.len == 0)
        problem = "key is empty";
    else if (key.len > cfg->max_key_size)
        problem = text, snprintf(text, sizeof text, "key is %zu bytes; max_key_size is %" PRIu64,
                                 key.len, cfg->max_key_size);
    if (problem == NULL)
        return 0;
    stats_inc(&svc->st->bad_requests);
    call_fail(c, CODE(INVALID_ARGUMENT), "%s", problem);
    return -1;
}

/* Time left before the call's deadline, capped by redis_timeout; answers
 * DEADLINE_EXCEEDED and returns 0 when none is left. */
int64_t svc_answer_by(const call *c)
{
    int64_t deadline = call_deadline(c), left = deadline - units_now_ms();
    return deadline - svc_min64(ANSWER_MARGIN_MS, left > 0 ? left / 10 : 0);
}

int64_t svc_redis_budget(service *svc, call *c, int64_t by, const char *what)
{
    int64_t left = by - units_now_ms();
    if (left <= 0) {
        call_fail(c, CODE(DEADLINE_EXCEEDED), "deadline exceeded before the %s", what);
        return 0;
    }
    return left < svc->cfg->redis_timeout_ms ? left : svc->cfg->redis_timeout_ms;
}

/* The status and message that fit a Redis command that failed with
 * `status` and error text e. */
static int l2_failure(service *svc, call *c, int status, const char *e, char *text, size_t size)
{
    stats_inc(&svc->st->redis_errors);
    snprintf(text, size, "%s", e);
    if (status == L2_ETIMEOUT && units_now_ms() >= call_deadline(c) - ANSWER_MARGIN_MS) {
        snprintf(text, size, "deadline exceeded waiting for redis");
        return CODE(DEADLINE_EXCEEDED);
    }
    if (status == L2_EREPLY && strstr(e, "OOM") != NULL)
        return CODE(RESOURCE_EXHAUSTED);
    if (status == L2_EREPLY && strstr(e, "WRONGTYPE") != NULL)
        return CODE(FAILED_PRECONDITION);
    return CODE(UNAVAILABLE);
}

int svc_may_serve_stale(service *svc, int status)
{
    int unreachable = status == L2_EDOWN || status == L2_ETIMEOUT;
    return unreachable && svc->cfg->stale_if_error_ms > 0 &&
           coh_staleness(svc->coh, units_now_ms()) <= svc->cfg->stale_if_error_ms;
}

/* Answers a failed Redis command with the status that fits it. */
void svc_fail_l2(service *svc, call *c, l2 *conn, int status)
{
    char text[700];
    int code = l2_failure(svc, c, status, l2_error(conn), text, sizeof text);
    call_fail(c, code, "%s", text);
}

int64_t svc_min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

struct hit {
    call *c;
    int64_t now;
    uint32_t version; /* the namespace version whose entries may be served */
    int stale;        /* serving under stale_if_error */
    int64_t stale_ms;
    int64_t expires_at; /* of the entry served */
    int prepared;
};

/* l1_visit_fn: rejects an entry of an older namespace version, else encodes
 * the hit into the reply under the shard lock. */
static int on_hit(void *arg, const void *value, size_t len, int64_t expires_at, uint32_t tag)
{
    struct hit *h = arg;
    if (tag != h->version)
        return 1;
    wire_get_reply r = {.result = WIRE_REPLY_GET,
                        .value = {value, len},
                        .source = NEARCACHE__V1__SOURCE__SOURCE_L1,
                        .ttl_ms = (uint64_t)(expires_at - h->now),
                        .stale = h->stale,
                        .stale_ms = h->stale ? (uint64_t)h->stale_ms : 0};
    h->expires_at = expires_at;
    h->prepared = call_prepare_get(h->c, &r) == 0;
    return 0;
}

/* A sliding refresh in the background: PEXPIRE through the Get script. */
typedef struct slide_job {
    jobq_job job;
    service *svc;
    uint64_t slide_ms;
    size_t nslen, klen;
    char bytes[]; /* namespace, then key */
} slide_job;

static void run_slide(jobq_job *job, l2 *conn)
{
    slide_job *sj = (slide_job *)job;
    l2_key rk = {sj->svc->cfg->prefix, sj->bytes, sj->nslen, sj->bytes + sj->nslen, sj->klen};
    l2_get_opts o = {.slide_ms = (int64_t)sj->slide_ms};
    l2_value v = {0};
    if (l2_get(conn, &rk, &o, sj->svc->cfg->redis_timeout_ms, &v) == L2_OK)
        stats_inc(&sj->svc->st->slides);
    l2_value_free(&v);
    free(sj);
}

/* A sliding Get served from L1: once half of the entry's life is used up,
 * extend it in L1 at once (so the hits after this one do not ask again)
 * and in Redis in the background. So a key read all the time costs one
 * Redis call per half period, not one per hit. */
static void slide(service *svc, const pb_get_request *g, const coh_key *k, int64_t now,
                  int64_t expires_at)
{
    int64_t life = svc_min64((int64_t)g->slide_ttl_ms, svc->cfg->l1_max_ttl_ms);
    if (expires_at - now > life / 2)
        return;
    slide_job *sj = malloc(sizeof *sj + g->ns.len + g->key.len);
    if (sj == NULL)
        return;
    sj->svc = svc;
    sj->slide_ms = g->slide_ttl_ms;
    sj->nslen = g->ns.len;
    sj->klen = g->key.len;
    memcpy(sj->bytes, g->ns.data, g->ns.len);
    memcpy(sj->bytes + g->ns.len, g->key.data, g->key.len);
    l1_extend(svc->cache, k->buf, k->len, now + life);
    if (jobq_submit(svc->q, &sj->job, run_slide, svc) != 0)
        free(sj);
}

/* Tries L1 for a Get; `stale` allows it while not caught up (stale_if_error).
 * Returns 1 when the call was answered. */
static int answer_from_l1(service *svc, call *c, const coh_key *k, int stale)
{
    const pb_get_request *g = call_request(c)->get;
    uint64_t version;
    struct hit h = {.c = c, .now = units_now_ms(), .stale = stale};
    if (stale)
        h.stale_ms = coh_staleness(svc->coh, h.now);
    if (!stale && !coh_serving(svc->coh, h.now))
        return 0;
    if (!coh_version(svc->coh, g->ns.data, g->ns.len, &version))
        return 0;
    h.version = (uint32_t)version;
    if (!l1_get(svc->cache, k->buf, k->len, h.now, on_hit, &h))
        return 0;
    if (!h.prepared) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory encoding the value");
        return 1;
    }
    stats_inc(stale ? &svc->st->stale_served : &svc->st->l1_hits);
    if (g->slide_ttl_ms > 0 && !stale)
        slide(svc, g, k, h.now, h.expires_at);
    call_send(c);
    return 1;
}

/* The call whose flight link l is. */
static call *call_of_flight(flight_link *l)
{
    return call_of_state((call_state *)((char *)l - offsetof(call_state, flight)));
}

/* Answers a Get's leader and every call that joined its flight with r. */
static void answer_get(service *svc, call *leader, const pb_reply *r)
{
    flight_link *w = flight_land(svc->flights, &call_state_of(leader)->flight);
    call_reply(leader, r);
    while (w != NULL) {
        flight_link *next = flight_next(w);
        call_reply(call_of_flight(w), r);
        w = next;
    }
}

/* answer_get() with an error status and message. */
static void fail_get(service *svc, call *leader, int code, const char *text)
{
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.code = code;
    r.message = (char *)text;
    if (code == CODE(DEADLINE_EXCEEDED))
        stats_inc(&svc->st->deadline_exceeded);
    answer_get(svc, leader, &r);
}

/* Redis could not answer a Get (`status`, error text e): serve L1 under
 * stale_if_error if allowed, to the leader and to each call that joined it. */
static void get_failed(service *svc, call *c, int status, const char *e, const coh_key *k)
{
    char text[700];
    int code = l2_failure(svc, c, status, e, text, sizeof text);
    if (!svc_may_serve_stale(svc, status)) {
        fail_get(svc, c, code, text);
        return;
    }
    flight_link *w = flight_land(svc->flights, &call_state_of(c)->flight);
    if (!answer_from_l1(svc, c, k, 1))
        call_fail(c, code, "%s", text);
    while (w != NULL) {
        flight_link *next = flight_next(w); /* before w's call is answered */
        if (!answer_from_l1(svc, call_of_flight(w), k, 1))
            call_fail(call_of_flight(w), code, "%s", text);
        w = next;
    }
}

/* Fills *gr and *r with a value read from Redis (r->get points at gr; gr
 * points into v) and keeps it in L1 if the fill's ticket is still good. A
 * stale-while-revalidate value past its TTL is not kept. */
static void value_reply(service *svc, const coh_key *k, const l2_value *v, int64_t t0,
                        l1_ticket ticket, pb_get_reply *gr, pb_reply *r)
{
    stats_inc(&svc->st->l2_hits);
    int64_t life =
        v->pttl_ms >= 0 ? svc_min64(v->pttl_ms, svc->cfg->l1_max_ttl_ms) : svc->cfg->l1_max_ttl_ms;
    if (!v->stale && coh_serving(svc->coh, units_now_ms()) &&
        l1_fill(svc->cache, k->buf, k->len, v->data, v->len, (uint32_t)v->version, t0 + life, t0,
                ticket) == ESTALE)
        stats_inc(&svc->st->fills_voided);
    if (v->stale)
        stats_inc(&svc->st->stale_served);
    nearcache__v1__get_reply__init(gr);
    gr->value.data = (uint8_t *)v->data;
    gr->value.len = v->len;
    gr->source = NEARCACHE__V1__SOURCE__SOURCE_L2;
    gr->ttl_ms = v->pttl_ms > 0 ? (uint64_t)v->pttl_ms : 0;
    gr->stale = v->stale;
    nearcache__v1__reply__init(r);
    r->result_case = RESULT(GET);
    r->get = gr;
}

/* Fills *gr and *r with NOT_FOUND, saying when the key is known absent. */
static void missing_reply(const l2_value *v, pb_get_reply *gr, pb_reply *r)
{
    nearcache__v1__get_reply__init(gr);
    gr->negative = v->negative;
    nearcache__v1__reply__init(r);
    r->code = CODE(NOT_FOUND);
    r->message = v->negative ? "known absent" : "not found";
    r->result_case = RESULT(GET);
    r->get = gr;
}

/* A plain Get's Redis read landed (L2_OK or L2_NIL), read at t0: answers
 * the call and every call that joined its flight. */
static void get_read(service *svc, call *c, const coh_key *k, int rv, const l2_value *v, int64_t t0)
{
    const pb_get_request *g = call_request(c)->get;
    coh_version_seen(svc->coh, g->ns.data, g->ns.len, v->version);
    pb_get_reply gr;
    pb_reply r;
    if (rv == L2_NIL) {
        stats_inc(&svc->st->l2_misses);
        if (v->negative)
            stats_inc(&svc->st->negative_hits);
        missing_reply(v, &gr, &r);
    } else {
        value_reply(svc, k, v, t0, call_state_of(c)->ticket, &gr, &r);
    }
    answer_get(svc, c, &r);
}

static void job_get_lease(service *svc, call *c, l2 *conn, const coh_key *k);

static void job_get(service *svc, call *c, l2 *conn)
{
    const pb_get_request *g = call_request(c)->get;
    coh_key k;
    if (coh_key_make(&k, g->ns.data, g->ns.len, g->key.data, g->key.len) != 0) {
        fail_get(svc, c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    if (g->lease) {
        job_get_lease(svc, c, conn, &k);
        coh_key_free(&k);
        return;
    }
    int64_t left = svc_answer_by(c) - units_now_ms();
    if (left <= 0) {
        fail_get(svc, c, CODE(DEADLINE_EXCEEDED), "deadline exceeded before the redis read");
        coh_key_free(&k);
        return;
    }
    l2_key rk = svc_redis_key(svc, g->ns, g->key);
    l2_get_opts o = {.slide_ms = (int64_t)g->slide_ttl_ms};
    int64_t t0 = units_now_ms();
    l2_value v = {0};
    int rv = l2_get(conn, &rk, &o, svc_min64(left, svc->cfg->redis_timeout_ms), &v);
    if (rv == L2_OK || rv == L2_NIL)
        get_read(svc, c, &k, rv, &v, t0);
    else
        get_failed(svc, c, rv, l2_error(conn), &k);
    l2_value_free(&v);
    coh_key_free(&k);
}

/* Answers a lease Get with no value: GRANTED (with its token) or BUSY. */
static void reply_lease(call *c, int state, const char *token)
{
    pb_get_reply g = NEARCACHE__V1__GET_REPLY__INIT;
    g.lease = state;
    if (token != NULL)
        g.lease_token = (ProtobufCBinaryData){strlen(token), (uint8_t *)token};
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.result_case = RESULT(GET);
    r.get = &g;
    call_reply(c, &r);
}

/* A Get with a lease that found someone else filling: park it until that
 * fill (or its deadline, less a margin to answer in time). */
static void park(service *svc, call *c, const coh_key *k)
{
    /* A parked Get holds its context: park only while 16 stay free, so
     * other Gets, Pings and Stats always find one. */
    if (call_free_contexts(c) <= 16 ||
        waits_park(svc->waits, k->buf, k->len, c, svc_answer_by(c)) != 0) {
        reply_lease(c, NEARCACHE__V1__LEASE_STATE__LEASE_BUSY, NULL);
        return;
    }
    stats_inc(&svc->st->lease_waits);
    /* A write that landed between the read and the park bumped the key's
     * stamp; its wake-up came too early to find this call: wake it now. */
    if (l1_reserve(svc->cache, k->buf, k->len) != call_state_of(c)->ticket)
        waits_wake(svc->waits, k->buf, k->len);
}

/* waits_wake_fn: a parked Get's key was written, or its time is up. */
static void on_wake(void *arg, call *c, int timed_out)
{
    service *svc = arg;
    if (timed_out) {
        reply_lease(c, NEARCACHE__V1__LEASE_STATE__LEASE_BUSY, NULL);
        return;
    }
    const pb_get_request *g = call_request(c)->get;
    coh_key k;
    if (coh_key_make(&k, g->ns.data, g->ns.len, g->key.data, g->key.len) != 0) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    call_state_of(c)->waited = 1;
    call_state_of(c)->ticket = l1_reserve(svc->cache, k.buf, k.len);
    coh_key_free(&k);
    svc_submit(svc, c);
}

/* The Redis read of a Get that asked for a lease. No single flight here:
 * joiners of a granted flight would all think they hold the lease. */
static void job_get_lease(service *svc, call *c, l2 *conn, const coh_key *k)
{
    const pb_get_request *g = call_request(c)->get;
    int64_t left = svc_answer_by(c) - units_now_ms();
    if (left <= 0) {
        call_fail(c, CODE(DEADLINE_EXCEEDED), "deadline exceeded before the redis read");
        return;
    }
    char token[48];
    snprintf(token, sizeof token, "%s-%" PRIu64, svc->node_id,
             atomic_fetch_add(&svc->next_token, 1));
    l2_get_opts o = {.lease = 1, .token = token, .slide_ms = (int64_t)g->slide_ttl_ms};
    o.lease_ttl_ms = g->lease_ttl_ms > 0 ? g->lease_ttl_ms : svc->cfg->lease_ttl_ms;
    l2_key rk = svc_redis_key(svc, g->ns, g->key);
    int64_t t0 = units_now_ms();
    l2_value v = {0};
    int rv = l2_get(conn, &rk, &o, svc_min64(left, svc->cfg->redis_timeout_ms), &v);
    if (rv == L2_OK || rv == L2_NIL)
        coh_version_seen(svc->coh, g->ns.data, g->ns.len, v.version);
    if (rv != L2_OK && rv != L2_NIL) {
        get_failed(svc, c, rv, l2_error(conn), k); /* stale_if_error applies, without a lease */
    } else if (rv == L2_NIL && v.lease == 1) {
        stats_inc(&svc->st->l2_misses);
        stats_inc(&svc->st->leases_granted);
        reply_lease(c, NEARCACHE__V1__LEASE_STATE__LEASE_GRANTED, token);
    } else if (rv == L2_NIL && v.lease == 3) {
        park(svc, c, k);
    } else if (rv == L2_NIL) {
        stats_inc(&svc->st->l2_misses);
        if (v.negative)
            stats_inc(&svc->st->negative_hits);
        pb_get_reply gr;
        pb_reply r;
        missing_reply(&v, &gr, &r);
        call_reply(c, &r);
    } else {
        pb_get_reply gr;
        pb_reply r;
        value_reply(svc, k, &v, t0, call_state_of(c)->ticket, &gr, &r);
        if (v.lease == 1) { /* stale: this caller refreshes it */
            stats_inc(&svc->st->leases_granted);
            gr.lease = NEARCACHE__V1__LEASE_STATE__LEASE_GRANTED;
            gr.lease_token = (ProtobufCBinaryData){strlen(token), (uint8_t *)token};
        } else if (call_state_of(c)->waited) {
            gr.lease = NEARCACHE__V1__LEASE_STATE__LEASE_WAITED;
        }
        call_reply(c, &r);
    }
    l2_value_free(&v);
}

/* What every write does around its script: a ticket before it is sent, the
 * invalidation message with this stream's next seq, and after the answer
 * the seq confirmed (or kept for the next message) and the stats. */
typedef struct write_ctx {
    coh_key k;
    l1_ticket ticket;
    pb_key_ref ref;
    uint8_t *msg;
    l2_msg m;
    uint64_t seq;
} write_ctx;

static int write_begin(service *svc, call *c, l2 *conn, write_ctx *w, ProtobufCBinaryData ns,
                       ProtobufCBinaryData key, int bump)
{
    memset(w, 0, sizeof *w);
    pb_key_ref kr = NEARCACHE__V1__KEY_REF__INIT;
    kr.ns = ns;
    kr.key = key;
    ProtobufCBinaryData none = {0, NULL};
    if (coh_key_make(&w->k, ns.data, ns.len, key.data, key.len) != 0 ||
        (w->msg = inval_msg(svc, conn, &w->ref, bump ? NULL : &kr, bump ? ns : none, &w->m.len)) ==
            NULL) {
        coh_key_free(&w->k);
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return -1;
    }
    w->m.channel = svc->channel;
    w->m.data = w->msg;
    w->seq = l2_next_seq(conn);
    w->ticket = l1_reserve(svc->cache, w->k.buf, w->k.len);
    return 0;
}

/* Settles a write's sequence number. Published: the seq is used. Surely
 * not published (no connection, refused, a void lease): the next message
 * reuses it. Unknown (the script was sent, its answer lost): the seq is
 * used too, so a receiver that never gets it sees a gap and empties L1;
 * and this node applies its own message if it turns up, since it could not
 * apply the write itself. */
void svc_settle_seq(service *svc, l2 *conn, uint64_t seq, int published)
{
    if (published) {
        l2_confirm_seq(conn, seq);
        stats_inc(&svc->st->invalidations_sent);
    } else if (l2_maybe_ran(conn)) {
        l2_confirm_seq(conn, seq);
        coh_uncertain(svc->coh, l2_stream(conn), seq);
    }
}

static void write_end(service *svc, l2 *conn, write_ctx *w, int published)
{
    svc_settle_seq(svc, conn, w->seq, published);
    free(w->msg);
    coh_key_free(&w->k);
}

int64_t svc_ttl(service *svc, int has_ttl, int64_t ttl_ms)
{
    int64_t ttl = has_ttl ? ttl_ms : svc->cfg->default_ttl_ms;
    ttl = svc_min64(ttl, svc->cfg->max_ttl_ms);
    uint64_t pct = svc->cfg->ttl_jitter_pct;
    if (pct > 0 && ttl > 1) {
        uint32_t r;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
            r = (uint32_t)units_now_ms();
        /* uniform in [-pct, +pct] percent of ttl */
        double f = ((double)r / UINT32_MAX * 2.0 - 1.0) * (double)pct / 100.0;
        ttl = svc_min64(ttl + (int64_t)((double)ttl * f), svc->cfg->max_ttl_ms);
        if (ttl < 1)
            ttl = 1;
    }
    return ttl;
}

static void job_set(service *svc, call *c, l2 *conn)
{
    const pb_set_request *s = call_request(c)->set;
    int64_t ttl = svc_ttl(svc, s->ttl_case == NEARCACHE__V1__SET_REQUEST__TTL_TTL_MS, s->ttl_ms);
    int64_t budget = svc_redis_budget(svc, c, call_deadline(c), "redis write");
    write_ctx w;
    if (budget == 0 || write_begin(svc, c, conn, &w, s->ns, s->key, 0) != 0)
        return;
    l2_key rk = svc_redis_key(svc, s->ns, s->key);
    l2_set_opts o = {.negative = s->negative, .swr_ms = (int64_t)s->stale_while_revalidate_ms};
    if (s->lease_token.len > 0)
        o.token = (const char *)s->lease_token.data, o.token_len = s->lease_token.len;
    int64_t t0 = units_now_ms();
    uint64_t version = 0;
    int stored = 0;
    int rv =
        l2_set(conn, &rk, s->value.data, s->value.len, ttl, &o, &w.m, budget, &version, &stored);
    if (rv != L2_OK) {
        l1_invalidate(svc->cache, w.k.buf, w.k.len); /* it may or may not have landed */
        svc_fail_l2(svc, c, conn, rv);
    } else if (!stored) {
        stats_inc(&svc->st->lease_sets_rejected);
        call_fail(c, CODE(ABORTED),
                  "lease is no longer valid: the key was written or deleted "
                  "since it was granted, or it expired; nothing stored");
    } else {
        coh_version_seen(svc->coh, s->ns.data, s->ns.len, version);
        if (coh_serving(svc->coh, units_now_ms()) && !s->negative)
            l1_write(svc->cache, w.k.buf, w.k.len, s->value.data, s->value.len, (uint32_t)version,
                     t0 + svc_min64(ttl, svc->cfg->l1_max_ttl_ms), t0, w.ticket);
        else
            l1_invalidate(svc->cache, w.k.buf, w.k.len);
        waits_wake(svc->waits, w.k.buf, w.k.len); /* callers waiting for this fill */
        pb_set_reply sr = NEARCACHE__V1__SET_REPLY__INIT;
        sr.ttl_ms = (uint64_t)ttl;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(SET);
        r.set = &sr;
        call_reply(c, &r);
    }
    write_end(svc, conn, &w, rv == L2_OK && stored);
}

static void job_delete(service *svc, call *c, l2 *conn)
{
    const pb_delete_request *d = call_request(c)->delete_;
    int64_t budget = svc_redis_budget(svc, c, call_deadline(c), "redis delete");
    write_ctx w;
    if (budget == 0 || write_begin(svc, c, conn, &w, d->ns, d->key, 0) != 0)
        return;
    l2_key rk = svc_redis_key(svc, d->ns, d->key);
    int existed = 0;
    uint64_t version = 0;
    const void *token = d->lease_token.len > 0 ? d->lease_token.data : NULL;
    int rv = l2_del(conn, &rk, token, d->lease_token.len, &w.m, budget, &existed, &version);
    l1_invalidate(svc->cache, w.k.buf, w.k.len); /* whatever Redis said */
    if (rv != L2_OK) {
        svc_fail_l2(svc, c, conn, rv);
    } else {
        waits_wake(svc->waits, w.k.buf, w.k.len); /* their lease holder lost the lease */
        pb_delete_reply dr = NEARCACHE__V1__DELETE_REPLY__INIT;
        dr.existed = existed;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(DELETE);
        r.delete_ = &dr;
        call_reply(c, &r);
    }
    /* a release of a lease that was no longer held publishes nothing */
    write_end(svc, conn, &w, rv == L2_OK && (token == NULL || existed));
}

static void job_bump(service *svc, call *c, l2 *conn)
{
    const pb_bump_request *b = call_request(c)->bump_namespace;
    int64_t budget = svc_redis_budget(svc, c, call_deadline(c), "redis bump");
    ProtobufCBinaryData none = {0, NULL};
    write_ctx w;
    if (budget == 0 || write_begin(svc, c, conn, &w, b->ns, none, 1) != 0)
        return;
    l2_key rk = svc_redis_key(svc, b->ns, none);
    uint64_t version = 0;
    int rv = l2_bump(conn, &rk, &w.m, budget, &version);
    if (rv != L2_OK) {
        svc_fail_l2(svc, c, conn, rv);
    } else {
        coh_bumped(svc->coh, b->ns.data, b->ns.len, version);
        pb_bump_reply br = NEARCACHE__V1__BUMP_NAMESPACE_REPLY__INIT;
        br.version = version;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(BUMP_NAMESPACE);
        r.bump_namespace = &br;
        call_reply(c, &r);
    }
    write_end(svc, conn, &w, rv == L2_OK);
}

static void job_run(jobq_job *job, l2 *conn)
{
    call *c = call_of_job(job);
    service *svc = job->arg;
    switch (call_request(c)->method_case) {
    case METHOD(GET):
        job_get(svc, c, conn);
        break;
    case METHOD(SET):
        job_set(svc, c, conn);
        break;
    case METHOD(DELETE):
        job_delete(svc, c, conn);
        break;
    case METHOD(BUMP_NAMESPACE):
        job_bump(svc, c, conn);
        break;
    case METHOD(MGET):
        batch_job_mget(svc, c, conn);
        break;
    case METHOD(MSET):
        batch_job_mset(svc, c, conn);
        break;
    default:
        call_fail(c, CODE(INTERNAL), "method %d has no Redis job", call_request(c)->method_case);
    }
}

/* Hands the call to a Redis worker, or turns it away when too many wait. */
void svc_submit(service *svc, call *c)
{
    int rv = jobq_submit(svc->q, call_job(c), job_run, svc);
    if (rv == 0)
        return;
    stats_inc(&svc->st->overloaded);
    if (rv == EAGAIN)
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "too many requests waiting for redis (%zu)",
                  jobq_taken(svc->q));
    else
        call_fail(c, CODE(UNAVAILABLE), "shutting down");
}

/* Hands a Get that missed L1 to a Redis worker, or turns it (and its
 * flight) away when too many wait. */
static void submit_get(service *svc, call *c)
{
    int rv = jobq_submit(svc->q, call_job(c), job_run, svc);
    if (rv != 0) {
        char text[96];
        snprintf(text, sizeof text,
                 rv == EAGAIN ? "too many requests waiting for redis (%zu)" : "shutting down",
                 jobq_taken(svc->q));
        stats_inc(&svc->st->overloaded);
        fail_get(svc, c, rv == EAGAIN ? CODE(RESOURCE_EXHAUSTED) : CODE(UNAVAILABLE), text);
    }
}

/* Sends a plain Get's read down the read lane when the namespace's version
 * is known here; returns 0 when it cannot (the workers read it then). A
 * read on the lane takes one of the jobq's places, so calls waiting for
 * Redis on either path leave the server 16 contexts, as the jobq alone. */
static int read_by_lane(service *svc, call *c)
{
    const pb_get_request *g = call_request(c)->get;
    uint64_t version;
    if (svc->lane == NULL || !lane_up(svc->lane) ||
        !coh_version(svc->coh, g->ns.data, g->ns.len, &version))
        return 0;
    if (jobq_hold(svc->q) != 0) /* as many wait for Redis as may */
        return 0;
    l2_key rk = svc_redis_key(svc, g->ns, g->key);
    if (lane_get(svc->lane, &rk, version, svc_answer_by(c), c) == 0)
        return 1;
    jobq_unhold(svc->q);
    return 0;
}

/* lane_done_fn: a Get's read came down the lane (on the lane's thread). */
static void on_lane(void *arg, void *req, int status, l2_value *v, int64_t sent_at)
{
    service *svc = arg;
    call *c = req;
    const pb_get_request *g = call_request(c)->get;
    coh_key k;
    jobq_unhold(svc->q);
    if (status == LANE_FELL)
        coh_version_fell(svc->coh, g->ns.data, g->ns.len);
    if (status == LANE_RETRY || status == LANE_MOVED || status == LANE_FELL) {
        stats_inc(&svc->st->redis_lane_retries);
        submit_get(svc, c);
    } else if (coh_key_make(&k, g->ns.data, g->ns.len, g->key.data, g->key.len) != 0) {
        fail_get(svc, c, CODE(RESOURCE_EXHAUSTED), "out of memory");
    } else {
        if (status == LANE_TIMEOUT)
            get_failed(svc, c, L2_ETIMEOUT, "redis did not answer in time (read lane)", &k);
        else
            get_read(svc, c, &k, status, v, sent_at);
        coh_key_free(&k);
    }
    if (v != NULL)
        l2_value_free(v);
}

static void handle_get(service *svc, call *c)
{
    const pb_get_request *g = call_request(c)->get;
    stats_inc(&svc->st->gets);
    if (svc_check_ns_key(svc, c, g->ns, g->key) != 0)
        return;
    if (g->slide_ttl_ms > (uint64_t)svc->cfg->max_ttl_ms ||
        g->lease_ttl_ms > (uint64_t)svc->cfg->max_ttl_ms) {
        stats_inc(&svc->st->bad_requests);
        call_fail(c, CODE(INVALID_ARGUMENT), "%s exceeds max_ttl (%" PRId64 " ms)",
                  g->slide_ttl_ms > (uint64_t)svc->cfg->max_ttl_ms ? "slide_ttl_ms"
                                                                   : "lease_ttl_ms",
                  svc->cfg->max_ttl_ms);
        return;
    }
    coh_key k;
    if (coh_key_make(&k, g->ns.data, g->ns.len, g->key.data, g->key.len) != 0) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    if (answer_from_l1(svc, c, &k, 0)) {
        coh_key_free(&k);
        return;
    }
    stats_inc(&svc->st->l1_misses);
    call_state *cs = call_state_of(c);
    cs->waited = 0;
    cs->ticket = l1_reserve(svc->cache, k.buf, k.len); /* before Redis is read */
    cs->flight = (flight_link){0};                     /* no flight */
    if (!g->lease && flight_join(svc->flights, k.buf, k.len, cs->ticket, &cs->flight)) {
        stats_inc(&svc->st->single_flight_joins); /* answered when the leader lands */
        coh_key_free(&k);
        return;
    }
    if (g->lease || g->slide_ttl_ms > 0 || !read_by_lane(svc, c))
        submit_get(svc, c);
    coh_key_free(&k);
}

static void handle_set(service *svc, call *c)
{
    const pb_set_request *s = call_request(c)->set;
    stats_inc(&svc->st->sets);
    if (svc_check_ns_key(svc, c, s->ns, s->key) != 0)
        return;
    if (s->value.len > svc->cfg->max_value_size) {
        stats_inc(&svc->st->bad_requests);
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "value is %zu bytes; max_value_size is %" PRIu64,
                  s->value.len, svc->cfg->max_value_size);
        return;
    }
    if (s->ttl_case == NEARCACHE__V1__SET_REQUEST__TTL_TTL_MS && s->ttl_ms <= 0) {
        stats_inc(&svc->st->bad_requests);
        call_fail(c, CODE(INVALID_ARGUMENT), "ttl_ms must be positive (got %" PRId64 ")",
                  s->ttl_ms);
        return;
    }
    if (s->stale_while_revalidate_ms > (uint64_t)svc->cfg->max_ttl_ms) {
        stats_inc(&svc->st->bad_requests);
        call_fail(c, CODE(INVALID_ARGUMENT),
                  "stale_while_revalidate_ms %" PRIu64 " exceeds max_ttl (%" PRId64 " ms)",
                  s->stale_while_revalidate_ms, svc->cfg->max_ttl_ms);
        return;
    }
    if (s->lease_token.len > 64) {
        stats_inc(&svc->st->bad_requests);
        call_fail(c, CODE(INVALID_ARGUMENT), "lease_token is %zu bytes; tokens are at most 64",
                  s->lease_token.len);
        return;
    }
    svc_submit(svc, c);
}

static void handle_delete(service *svc, call *c)
{
    const pb_delete_request *d = call_request(c)->delete_;
    stats_inc(&svc->st->deletes);
    if (svc_check_ns_key(svc, c, d->ns, d->key) != 0)
        return;
    svc_submit(svc, c);
}

static void handle_bump(service *svc, call *c)
{
    const pb_bump_request *b = call_request(c)->bump_namespace;
    ProtobufCBinaryData key = {1, (uint8_t *)"-"}; /* only the namespace is checked */
    if (svc_check_ns_key(svc, c, b->ns, key) != 0)
        return;
    svc_submit(svc, c);
}

static void handle_stats(service *svc, call *c)
{
    l1_stats ls;
    l1_get_stats(svc->cache, &ls);
    int64_t now = units_now_ms();
    stats_gauges g = {
        .l1_entries = (int64_t)ls.entries,
        .l1_bytes = (int64_t)ls.bytes,
        .l1_max_memory = (int64_t)ls.max_bytes,
        .l1_evictions = (int64_t)ls.evictions,
        .l1_expired = (int64_t)ls.expired,
        .redis_connections_up = (int64_t)jobq_connected(svc->q),
        .redis_queue = (int64_t)jobq_waiting(svc->q),
        .redis_lane_up = svc->lane != NULL && lane_up(svc->lane),
        .redis_lane_reads = svc->lane != NULL ? (int64_t)lane_reads(svc->lane) : 0,
        .subscription_up = coh_subscribed_now(svc->coh),
        .l1_serving = coh_serving(svc->coh, now),
        .lease_waiting = (int64_t)waits_parked(svc->waits),
        .uptime_ms = now - svc->started_ms,
    };
    stats_row rows[STATS_COUNT];
    stats_rows(svc->st, &g, rows);
    pb_stat cells[STATS_COUNT], *ptrs[STATS_COUNT];
    for (size_t i = 0; i < STATS_COUNT; i++) {
        nearcache__v1__stat__init(&cells[i]);
        cells[i].name = (char *)rows[i].name;
        cells[i].value = rows[i].value;
        ptrs[i] = &cells[i];
    }
    pb_stats_reply sr = NEARCACHE__V1__STATS_REPLY__INIT;
    sr.n_stats = STATS_COUNT;
    sr.stats = ptrs;
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.result_case = RESULT(STATS);
    r.stats = &sr;
    call_reply(c, &r);
}

static void handle_ping(service *svc, call *c)
{
    pb_ping_reply p = NEARCACHE__V1__PING_REPLY__INIT;
    p.version = NC_VERSION;
    p.node_id = svc->node_id;
    p.uptime_ms = (uint64_t)(units_now_ms() - svc->started_ms);
    p.redis_up = jobq_connected(svc->q) > 0;
    p.subscribed = coh_subscribed_now(svc->coh);
    p.l1_serving = coh_serving(svc->coh, units_now_ms());
    p.max_request_size = config_max_request(svc->cfg);
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.result_case = RESULT(PING);
    r.ping = &p;
    call_reply(c, &r);
}

void service_handle(void *arg, call *c)
{
    service *svc = arg;
    switch (call_request(c)->method_case) {
    case METHOD(GET):
        handle_get(svc, c);
        break;
    case METHOD(SET):
        handle_set(svc, c);
        break;
    case METHOD(DELETE):
        handle_delete(svc, c);
        break;
    case METHOD(STATS):
        handle_stats(svc, c);
        break;
    case METHOD(PING):
        handle_ping(svc, c);
        break;
    case METHOD(BUMP_NAMESPACE):
        handle_bump(svc, c);
        break;
    case METHOD(MGET):
        batch_handle_mget(svc, c);
        break;
    case METHOD(MSET):
        batch_handle_mset(svc, c);
        break;
    default:
        call_fail(c, CODE(UNIMPLEMENTED), "method %d is not implemented",
                  call_request(c)->method_case);
    }
}

static void on_invalidated(void *arg, const void *key, size_t klen);

int service_create(service **out, const config *cfg, const config_redis_url *url, l1 *cache,
                   jobq *q, stats *st)
{
    service *svc = calloc(1, sizeof *svc);
    if (svc == NULL)
        return ENOMEM;
    svc->cfg = cfg;
    svc->cache = cache;
    svc->q = q;
    svc->st = st;
    svc->started_ms = units_now_ms();
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != sizeof id)
        id = (uint64_t)units_now_ms() ^ ((uint64_t)getpid() << 32);
    snprintf(svc->node_id, sizeof svc->node_id, "%016" PRIx64, id);
    snprintf(svc->channel, sizeof svc->channel, "%s:inval", cfg->prefix);
    if (coh_create(&svc->coh, svc->node_id, cache, st, cfg->coherence_window_ms) != 0 ||
        flights_create(&svc->flights) != 0 || waits_create(&svc->waits, on_wake, svc) != 0) {
        service_free(svc);
        return ENOMEM;
    }
    coh_set_hook(svc->coh, on_invalidated, svc);
    size_t depth = cfg->redis_lane < cfg->contexts ? cfg->redis_lane : cfg->contexts;
    if (depth > 0 && lane_start(&svc->lane, url, cfg->redis_timeout_ms, cfg->redis_timeout_ms,
                                depth, on_lane, svc) != 0) {
        service_free(svc);
        return ENOMEM;
    }
    *out = svc;
    return 0;
}

/* coh_hook: a key (or, with NULL, every key) was invalidated here. */
static void on_invalidated(void *arg, const void *key, size_t klen)
{
    service *svc = arg;
    waits_wake(svc->waits, key, klen);
}

void service_quiesce(service *svc)
{
    if (svc == NULL)
        return;
    lane_stop(svc->lane); /* hands the reads in flight to the workers */
    svc->lane = NULL;
    waits_free(svc->waits); /* answers every parked Get */
    svc->waits = NULL;
}

void service_free(service *svc)
{
    if (svc == NULL)
        return;
    lane_stop(svc->lane);
    waits_free(svc->waits);
    coh_free(svc->coh);
    flights_free(svc->flights);
    free(svc);
}

const char *service_node_id(const service *svc)
{
    return svc->node_id;
}

const char *service_channel(const service *svc)
{
    return svc->channel;
}

coh *service_coherence(service *svc)
{
    return svc->coh;
}
