/* Get: L1 first, on the server thread, copying the value straight into the
 * reply under the shard lock (one lookup, one copy); a miss joins or leads
 * a single flight, and its Redis read goes down the read lane when the
 * namespace's version is known here, else to a worker. A Get with a lease
 * is read by a worker alone and parks (waits.h) while another caller
 * fills the key. A Redis read fills L1 only under the ticket taken before
 * it was sent, so a read that raced a write or an invalidation is not
 * kept. */
#include "get.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nstop.h"
#include "method.h"
#include "units.h"

struct hit {
    call *c;
    int64_t now;
    int stale; /* serving under stale_if_error */
    int64_t stale_ms;
    int64_t expires_at; /* of the entry served */
    int prepared;
};

/* method_hit_fn: encodes the hit into the reply under the shard lock. */

/* Counts the call's Get in its namespace's row (nstop), a hit or a miss. */
static void count_ns(service *svc, call *c, int hit)
{
    if (svc->st->namespaces != NULL) {
        const pb_get_request *g = call_request(c)->get;
        nstop_count(svc->st->namespaces, g->ns.data, g->ns.len, hit);
    }
}

static void on_hit(void *arg, const void *value, size_t len, int64_t expires_at)
{
    struct hit *h = arg;
    wire_get_reply r = {.result = WIRE_REPLY_GET,
                        .value = {value, len},
                        .source = NEARCACHE__V1__SOURCE__SOURCE_L1,
                        .ttl_ms = (uint64_t)(expires_at - h->now),
                        .stale = h->stale,
                        .stale_ms = h->stale ? (uint64_t)h->stale_ms : 0};
    h->expires_at = expires_at;
    h->prepared = call_prepare_get(h->c, &r) == 0;
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
    ProtobufCBinaryData ns = {sj->nslen, (uint8_t *)sj->bytes};
    ProtobufCBinaryData key = {sj->klen, (uint8_t *)sj->bytes + sj->nslen};
    l2_key rk = method_redis_key(sj->svc, ns, key);
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
static void slide(service *svc, const pb_get_request *g, const ks_l1_key *k, int64_t now,
                  int64_t expires_at)
{
    int64_t life = method_min64((int64_t)g->slide_ttl_ms, svc->cfg->l1_max_ttl_ms);
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
static int answer_from_l1(service *svc, call *c, const ks_l1_key *k, int stale)
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
    if (!method_l1_get(svc, k->buf, k->len, version, h.now, on_hit, &h))
        return 0;
    if (!h.prepared) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory encoding the value");
        return 1;
    }
    stats_inc(stale ? &svc->st->stale_served : &svc->st->l1_hits);
    count_ns(svc, c, 1);
    if (g->slide_ttl_ms > 0 && !stale)
        slide(svc, g, k, h.now, h.expires_at);
    if (!stale)
        call_set_tier(c, STATS_TIER_L1);
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
static void get_failed(service *svc, call *c, l2_status status, const char *e, const ks_l1_key *k)
{
    char text[700];
    int code = method_l2_failure(svc, c, status, e, text, sizeof text);
    if (!method_may_serve_stale(svc, status)) {
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
static void value_reply(service *svc, const ks_l1_key *k, const l2_value *v, int64_t t0,
                        l1_ticket ticket, pb_get_reply *gr, pb_reply *r)
{
    stats_inc(&svc->st->l2_hits);
    method_fill(svc, k->buf, k->len, v, t0, ticket);
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

/* Fills *gr and *r with NOT_FOUND, saying when the key is known absent
 * and, then, for how long more (a near tier keeps it no longer). */
static void missing_reply(const l2_value *v, pb_get_reply *gr, pb_reply *r)
{
    nearcache__v1__get_reply__init(gr);
    gr->negative = v->negative;
    if (v->negative && v->pttl_ms > 0)
        gr->ttl_ms = (uint64_t)v->pttl_ms;
    nearcache__v1__reply__init(r);
    r->code = CODE(NOT_FOUND);
    r->message = v->negative ? "known absent" : "not found";
    r->result_case = RESULT(GET);
    r->get = gr;
}

/* A plain Get's Redis read landed (L2_OK or L2_NIL), read at t0: answers
 * the call and every call that joined its flight. */
static void get_read(service *svc, call *c, const ks_l1_key *k, l2_status rv, const l2_value *v,
                     int64_t t0)
{
    const pb_get_request *g = call_request(c)->get;
    coh_version_seen(svc->coh, g->ns.data, g->ns.len, v->version);
    pb_get_reply gr;
    pb_reply r;
    if (rv == L2_NIL) {
        stats_inc(&svc->st->l2_misses);
        count_ns(svc, c, 0);
        if (v->negative)
            stats_inc(&svc->st->negative_hits);
        missing_reply(v, &gr, &r);
    } else {
        value_reply(svc, k, v, t0, call_state_of(c)->ticket, &gr, &r);
        count_ns(svc, c, 1);
    }
    answer_get(svc, c, &r);
}

static void job_get_lease(service *svc, call *c, l2 *conn, const ks_l1_key *k);

static void job_get(service *svc, call *c, l2 *conn)
{
    const pb_get_request *g = call_request(c)->get;
    ks_l1_key k;
    if (ks_l1_key_make(&k, g->ns.data, g->ns.len, g->key.data, g->key.len) != 0) {
        fail_get(svc, c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    if (g->lease) {
        job_get_lease(svc, c, conn, &k);
        ks_l1_key_free(&k);
        return;
    }
    int64_t left = method_answer_by(c) - units_now_ms();
    if (left <= 0) {
        fail_get(svc, c, CODE(DEADLINE_EXCEEDED), "deadline exceeded before the redis read");
        ks_l1_key_free(&k);
        return;
    }
    l2_key rk = method_redis_key(svc, g->ns, g->key);
    l2_get_opts o = {.slide_ms = (int64_t)g->slide_ttl_ms};
    int64_t t0 = units_now_ms();
    l2_value v = {0};
    l2_status rv = l2_get(conn, &rk, &o, method_min64(left, svc->cfg->redis_timeout_ms), &v);
    if (rv == L2_OK || rv == L2_NIL)
        get_read(svc, c, &k, rv, &v, t0);
    else
        get_failed(svc, c, rv, l2_error(conn), &k);
    l2_value_free(&v);
    ks_l1_key_free(&k);
}

/* jobq_fn: a Get's Redis read on a worker. */
static void run_get(jobq_job *job, l2 *conn)
{
    job_get(job->arg, call_of_job(job), conn);
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
static void park(service *svc, call *c, const ks_l1_key *k)
{
    /* A parked Get holds its context: park only while the reserved ones
     * stay free, so other Gets, Pings and Stats always find one. Once
     * parked, the call is the waker's (it may run on another thread at
     * once): nothing of it is touched after waits_park(). */
    l1_ticket ticket = call_state_of(c)->ticket;
    if (call_free_contexts(c) <= CONFIG_RESERVED_CONTEXTS ||
        waits_park(svc->waits, k->buf, k->len, c, method_answer_by(c)) != 0) {
        reply_lease(c, NEARCACHE__V1__LEASE_STATE__LEASE_BUSY, NULL);
        return;
    }
    stats_inc(&svc->st->lease_waits);
    /* A write that landed between the read and the park bumped the key's
     * stamp; its wake-up came too early to find this call: wake it now. */
    if (l1_reserve(svc->cache, k->buf, k->len) != ticket)
        waits_wake(svc->waits, k->buf, k->len);
}

/* waits_wake_fn: a parked Get's key was written, or its time is up. */
void get_on_wake(void *arg, call *c, int timed_out)
{
    service *svc = arg;
    if (timed_out) {
        reply_lease(c, NEARCACHE__V1__LEASE_STATE__LEASE_BUSY, NULL);
        return;
    }
    const pb_get_request *g = call_request(c)->get;
    ks_l1_key k;
    if (ks_l1_key_make(&k, g->ns.data, g->ns.len, g->key.data, g->key.len) != 0) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    call_state_of(c)->waited = 1;
    call_state_of(c)->ticket = l1_reserve(svc->cache, k.buf, k.len);
    ks_l1_key_free(&k);
    method_submit(svc, c, run_get);
}

/* The Redis read of a Get that asked for a lease. No single flight here:
 * joiners of a granted flight would all think they hold the lease. */
static void job_get_lease(service *svc, call *c, l2 *conn, const ks_l1_key *k)
{
    const pb_get_request *g = call_request(c)->get;
    int64_t left = method_answer_by(c) - units_now_ms();
    if (left <= 0) {
        call_fail(c, CODE(DEADLINE_EXCEEDED), "deadline exceeded before the redis read");
        return;
    }
    char token[48];
    snprintf(token, sizeof token, "%s-%" PRIu64, svc->node_id,
             atomic_fetch_add(&svc->next_token, 1));
    l2_get_opts o = {.lease = 1, .token = token, .slide_ms = (int64_t)g->slide_ttl_ms};
    o.lease_ttl_ms = g->lease_ttl_ms > 0 ? g->lease_ttl_ms : CONFIG_LIVE(svc->cfg->lease_ttl_ms);
    l2_key rk = method_redis_key(svc, g->ns, g->key);
    int64_t t0 = units_now_ms();
    l2_value v = {0};
    l2_status rv = l2_get(conn, &rk, &o, method_min64(left, svc->cfg->redis_timeout_ms), &v);
    if (rv == L2_OK || rv == L2_NIL)
        coh_version_seen(svc->coh, g->ns.data, g->ns.len, v.version);
    if (rv != L2_OK && rv != L2_NIL) {
        get_failed(svc, c, rv, l2_error(conn), k); /* stale_if_error applies, without a lease */
    } else if (rv == L2_NIL && v.lease == 1) {
        stats_inc(&svc->st->l2_misses);
        count_ns(svc, c, 0);
        stats_inc(&svc->st->leases_granted);
        reply_lease(c, NEARCACHE__V1__LEASE_STATE__LEASE_GRANTED, token);
    } else if (rv == L2_NIL && v.lease == 3) {
        park(svc, c, k);
    } else if (rv == L2_NIL) {
        stats_inc(&svc->st->l2_misses);
        count_ns(svc, c, 0);
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
        count_ns(svc, c, 1);
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

/* Hands a Get that missed L1 to a Redis worker, or turns it (and its
 * flight) away when too many wait. */
static void submit_get(service *svc, call *c)
{
    char text[96];
    int code = method_hand_off(svc, c, run_get, text, sizeof text);
    if (code != 0)
        fail_get(svc, c, code, text);
}

/* Sends a plain Get's read down the read lane when the namespace's version
 * is known here; returns 0 when it cannot (the workers read it then). A
 * read on the lane takes one of the jobq's places, so calls waiting for
 * Redis on either path leave the server CONFIG_RESERVED_CONTEXTS free, as
 * the jobq alone. */
static int read_by_lane(service *svc, call *c)
{
    const pb_get_request *g = call_request(c)->get;
    uint64_t version;
    l2_key rk = method_redis_key(svc, g->ns, g->key);
    lane *ln = lanes_for(svc->lanes, &rk);
    if (ln == NULL || !coh_version(svc->coh, g->ns.data, g->ns.len, &version))
        return 0;
    if (jobq_hold(svc->q) != 0) /* as many wait for Redis as may */
        return 0;
    if (lane_get(ln, &rk, version, method_answer_by(c), c) == 0)
        return 1;
    jobq_unhold(svc->q);
    return 0;
}

/* lane_done_fn: a Get's read came down the lane (on the lane's thread). */
void get_on_lane(void *arg, void *req, lane_status status, l2_value *v, int64_t sent_at)
{
    service *svc = arg;
    call *c = req;
    const pb_get_request *g = call_request(c)->get;
    ks_l1_key k;
    jobq_unhold(svc->q);
    if (status == LANE_FELL) /* the script recreates the version above this node's */
        coh_version_fell(svc->coh, g->ns.data, g->ns.len, v->version);
    if (status == LANE_RETRY)
        lanes_poke(svc->lanes); /* on a Cluster, the slot may have moved */
    if (status == LANE_RETRY || status == LANE_MOVED || status == LANE_FELL) {
        stats_inc(&svc->st->redis_lane_retries);
        submit_get(svc, c);
    } else if (ks_l1_key_make(&k, g->ns.data, g->ns.len, g->key.data, g->key.len) != 0) {
        fail_get(svc, c, CODE(RESOURCE_EXHAUSTED), "out of memory");
    } else {
        if (status == LANE_TIMEOUT)
            get_failed(svc, c, L2_ETIMEOUT, "redis did not answer in time (read lane)", &k);
        else
            get_read(svc, c, &k, (l2_status)status, v, sent_at); /* LANE_OK/NIL: L2_OK/NIL */
        ks_l1_key_free(&k);
    }
    if (v != NULL)
        l2_value_free(v);
}

void get_handle(service *svc, call *c)
{
    const pb_get_request *g = call_request(c)->get;
    stats_inc(&svc->st->gets);
    if (method_check_ns_key(svc, c, g->ns, g->key) != 0)
        return;
    if (g->slide_ttl_ms > (uint64_t)CONFIG_LIVE(svc->cfg->max_ttl_ms) ||
        g->lease_ttl_ms > (uint64_t)CONFIG_LIVE(svc->cfg->max_ttl_ms)) {
        method_refuse(svc, c, CODE(INVALID_ARGUMENT), "%s exceeds max_ttl (%" PRId64 " ms)",
                      g->slide_ttl_ms > (uint64_t)CONFIG_LIVE(svc->cfg->max_ttl_ms)
                          ? "slide_ttl_ms"
                          : "lease_ttl_ms",
                      CONFIG_LIVE(svc->cfg->max_ttl_ms));
        return;
    }
    ks_l1_key k;
    if (ks_l1_key_make(&k, g->ns.data, g->ns.len, g->key.data, g->key.len) != 0) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    if (answer_from_l1(svc, c, &k, 0)) {
        ks_l1_key_free(&k);
        return;
    }
    stats_inc(&svc->st->l1_misses);
    call_set_tier(c, STATS_TIER_L2); /* whatever answers it, it waits for Redis */
    call_state *cs = call_state_of(c);
    cs->waited = 0;
    cs->ticket = l1_reserve(svc->cache, k.buf, k.len); /* before Redis is read */
    cs->flight = (flight_link){0};                     /* no flight */
    if (!g->lease && flight_join(svc->flights, k.buf, k.len, cs->ticket, &cs->flight)) {
        stats_inc(&svc->st->single_flight_joins); /* answered when the leader lands */
        ks_l1_key_free(&k);
        return;
    }
    if (g->lease || g->slide_ttl_ms > 0 || !read_by_lane(svc, c))
        submit_get(svc, c);
    ks_l1_key_free(&k);
}
