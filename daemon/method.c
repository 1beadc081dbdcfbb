/* What the methods share; see method.h. Nothing here knows a method: the
 * method files call in, never the other way. */
#include "method.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "publish.h"
#include "units.h"

/* Where a request's key lives in Redis. */
l2_key method_redis_key(const service *svc, ProtobufCBinaryData ns, ProtobufCBinaryData key)
{
    uint64_t floor = coh_version_floor(svc->coh, ns.data, ns.len), known = 0;
    l2_key k = {svc->cfg->prefix, ns.data, ns.len, key.data, key.len, floor,
                coh_serving(svc->coh, units_now_ms()) &&
                    coh_version(svc->coh, ns.data, ns.len, &known) && known == floor};
    return k;
}

/* Checks a namespace and key against the limits. Returns 0, or answers the
 * call with INVALID_ARGUMENT and returns -1. */
int method_check_ns_key(service *svc, call *c, ProtobufCBinaryData ns, ProtobufCBinaryData key)
{
    const config *cfg = svc->cfg;
    const char *problem = NULL;
    char text[160];
    if (ns.len == 0)
        problem = "namespace is empty";
    else if (ns.len > CONFIG_LIVE(cfg->max_namespace_size))
        problem = text, snprintf(text, sizeof text,
                                 "namespace is %zu bytes; max_namespace_size "
                                 "is %" PRIu64,
                                 ns.len, CONFIG_LIVE(cfg->max_namespace_size));
    else if (memchr(ns.data, ':', ns.len) != NULL)
        problem = "namespace contains ':', which separates the parts of a Redis key";
    else if (key.len == 0)
        problem = "key is empty";
    else if (key.len > CONFIG_LIVE(cfg->max_key_size))
        problem = text, snprintf(text, sizeof text, "key is %zu bytes; max_key_size is %" PRIu64,
                                 key.len, CONFIG_LIVE(cfg->max_key_size));
    if (problem == NULL)
        return 0;
    method_refuse(svc, c, CODE(INVALID_ARGUMENT), "%s", problem);
    return -1;
}

void method_refuse(service *svc, call *c, int code, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    stats_inc(&svc->st->bad_requests);
    call_fail(c, code, "%s", text);
}

int64_t method_answer_by(const call *c)
{
    int64_t deadline = call_deadline(c), left = deadline - units_now_ms();
    return deadline - method_min64(ANSWER_MARGIN_MS, left > 0 ? left / 10 : 0);
}

int64_t method_redis_budget(service *svc, call *c, int64_t by, const char *what)
{
    int64_t left = by - units_now_ms();
    if (left <= 0) {
        call_fail(c, CODE(DEADLINE_EXCEEDED), "deadline exceeded before the %s", what);
        return 0;
    }
    return left < svc->cfg->redis_timeout_ms ? left : svc->cfg->redis_timeout_ms;
}

int method_l2_failure(service *svc, call *c, l2_status status, const char *e, char *text,
                      size_t size)
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

int method_may_serve_stale(service *svc, l2_status status)
{
    int unreachable = status == L2_EDOWN || status == L2_ETIMEOUT;
    return unreachable && svc->cfg->stale_if_error_ms > 0 &&
           coh_staleness(svc->coh, units_now_ms()) <= svc->cfg->stale_if_error_ms;
}

/* Answers a failed Redis command with the status that fits it. */
void method_fail_l2(service *svc, call *c, l2 *conn, l2_status status)
{
    char text[700];
    int code = method_l2_failure(svc, c, status, l2_error(conn), text, sizeof text);
    call_fail(c, code, "%s", text);
}

int64_t method_min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

struct versioned {
    uint32_t version;
    method_hit_fn hit;
    void *arg;
};

/* l1_visit_fn: the version check of every L1 hit. */
static int visit_versioned(void *arg, const void *value, size_t len, int64_t expires_at,
                           uint32_t tag)
{
    struct versioned *v = arg;
    if (tag != v->version)
        return 1;
    v->hit(v->arg, value, len, expires_at);
    return 0;
}

int method_l1_get(service *svc, const void *key, size_t klen, uint64_t version, int64_t now,
                  method_hit_fn hit, void *arg)
{
    struct versioned v = {(uint32_t)version, hit, arg};
    return l1_get(svc->cache, key, klen, now, visit_versioned, &v);
}

void method_fill(service *svc, const void *key, size_t klen, const l2_value *v, int64_t t0,
                 l1_ticket ticket)
{
    int64_t life = v->pttl_ms >= 0 ? method_min64(v->pttl_ms, svc->cfg->l1_max_ttl_ms)
                                   : svc->cfg->l1_max_ttl_ms;
    if (!v->stale && coh_serving(svc->coh, units_now_ms()) &&
        l1_fill(svc->cache, key, klen, v->data, v->len, (uint32_t)v->version, t0 + life, t0,
                ticket) == ESTALE)
        stats_inc(&svc->st->fills_voided);
}

void method_written(service *svc, const void *key, size_t klen, const void *value, size_t vlen,
                    uint64_t version, int64_t ttl_ms, int64_t t0, l1_ticket ticket, int keep)
{
    if (keep) {
        l1_write(svc->cache, key, klen, value, vlen, (uint32_t)version,
                 t0 + method_min64(ttl_ms, svc->cfg->l1_max_ttl_ms), t0, ticket);
        coh_key_changed(svc->coh, key, klen);
    } else {
        method_l1_drop(svc, key, klen);
    }
    waits_wake(svc->waits, key, klen); /* callers waiting for this fill */
}

void method_l1_drop(service *svc, const void *key, size_t klen)
{
    if (key == NULL) {
        l1_flush(svc->cache);
        coh_l1_emptied(svc->coh);
        return;
    }
    l1_invalidate(svc->cache, key, klen);
    coh_key_changed(svc->coh, key, klen);
}

uint8_t *method_inval_msg(service *svc, l2 *conn, ProtobufCBinaryData ns, size_t n,
                       method_key_at_fn key_at, const void *req, uint64_t bump_version, size_t *len)
{
    pb_key_ref *refs = calloc(n ? n : 1, sizeof *refs), **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    uint8_t *buf = NULL;
    if (refs != NULL && ptrs != NULL) {
        for (size_t i = 0; i < n; i++) {
            nearcache__v1__key_ref__init(&refs[i]);
            refs[i].ns = ns;
            refs[i].key = key_at(req, i);
            ptrs[i] = &refs[i];
        }
        pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
        m.origin = svc->node_id;
        m.stream = l2_stream(conn);
        m.seq = coh_next_seq(svc->coh, m.stream);
        m.n_keys = n;
        m.keys = n > 0 ? ptrs : NULL;
        if (n == 0)
            m.bump_ns = ns, m.bump_version = bump_version;
        if ((buf = malloc(codec_inval_size(&m) + 1)) != NULL)
            *len = codec_inval_pack(&m, buf);
    }
    free(refs);
    free(ptrs);
    return buf;
}

void method_publish_end(service *svc)
{
    if (svc->pub != NULL)
        pub_end(svc->pub);
}

int method_publish_begin(service *svc, call *c)
{
    /* no longer than the worker would wait for Redis: others queue behind it */
    int64_t by = method_min64(method_answer_by(c), units_now_ms() + svc->cfg->redis_timeout_ms);
    if (svc->pub == NULL || pub_begin(svc->pub, by) == 0)
        return 0;
    stats_inc(&svc->st->redis_errors);
    call_fail(c, CODE(UNAVAILABLE),
              "this daemon cannot publish on the invalidation channel; no write starts until it "
              "can");
    return -1;
}

int method_sharded(const service *svc)
{
    return pub_sharded(svc->pub);
}

const char *method_script_channel(const service *svc)
{
    return pub_batching(svc->pub) ? "" : svc->channel;
}

void method_send_written(service *svc, call *c, ProtobufCBinaryData ns, size_t n,
                         method_key_at_fn key_at, const void *req)
{
    if (pub_batching(svc->pub))
        pub_add(svc->pub, ns, n, key_at, req, c);
    else
        call_send(c);
}

void method_reply_written(service *svc, call *c, const pb_reply *r, ProtobufCBinaryData ns,
                          size_t n, method_key_at_fn key_at, const void *req)
{
    if (call_prepare(c, r) != 0) {
        pb_reply oom = NEARCACHE__V1__REPLY__INIT;
        oom.code = CODE(INTERNAL);
        oom.message = "out of memory encoding the reply (the write is done)";
        if (call_prepare(c, &oom) != 0)
            log_error("out of memory encoding a reply; dropping it");
    }
    method_send_written(svc, c, ns, n, key_at, req);
}

void method_publish_unknown(service *svc, l2 *conn, ProtobufCBinaryData ns, size_t n,
                            method_key_at_fn key_at, const void *req, int partly)
{
    if (pub_batching(svc->pub) && (partly || l2_maybe_ran(conn)))
        pub_add(svc->pub, ns, n, key_at, req, NULL);
}

/* Settles a write's sequence number. Published: the seq is used. Surely
 * not published (no connection, refused, a void lease): the next message
 * reuses it. Unknown (the script was sent, its answer lost): the seq is
 * used too, so a receiver that never gets it sees a gap and empties L1;
 * and this node applies its own message if it turns up, since it could not
 * apply the write itself. */
void method_settle_seq(service *svc, l2 *conn, uint64_t seq, int published)
{
    if (published) {
        coh_confirm_seq(svc->coh, l2_stream(conn), seq);
        stats_inc(&svc->st->invalidations_sent);
        stats_inc(&svc->st->invalidation_batches);
    } else if (l2_maybe_ran(conn)) {
        coh_confirm_seq(svc->coh, l2_stream(conn), seq);
        coh_uncertain(svc->coh, l2_stream(conn), seq);
    }
}

int method_replicated(service *svc, call *c, l2 *conn, const char *what)
{
    uint64_t want = svc->cfg->redis_wait_replicas;
    if (want == 0)
        return 0;
    int64_t wait = svc->cfg->redis_wait_timeout_ms;
    int acked = 0;
    l2_status rv = l2_wait(conn, (int)want, wait, wait + svc->cfg->redis_timeout_ms, &acked);
    if (rv == L2_OK && (uint64_t)acked >= want)
        return 0;
    stats_inc(&svc->st->redis_errors);
    char text[512];
    if (rv == L2_OK)
        snprintf(text, sizeof text,
                 "the %s is done on the redis master and announced, but %d of the %" PRIu64
                 " replicas redis_wait_replicas asks for confirmed it within %" PRId64
                 " ms; a failover may lose it",
                 what, acked, want, wait);
    else
        snprintf(text, sizeof text,
                 "the %s is done on the redis master and announced, but no replica is known "
                 "to have it (WAIT: %s); a failover may lose it",
                 what, l2_error(conn));
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.code = CODE(UNAVAILABLE);
    r.message = text;
    log_debug("%s", text);
    if (call_prepare(c, &r) != 0)
        log_error("out of memory encoding a reply; dropping it");
    return -1;
}

int64_t method_ttl(service *svc, int has_ttl, int64_t ttl_ms)
{
    int64_t ttl = has_ttl ? ttl_ms : CONFIG_LIVE(svc->cfg->default_ttl_ms);
    ttl = method_min64(ttl, CONFIG_LIVE(svc->cfg->max_ttl_ms));
    uint64_t pct = CONFIG_LIVE(svc->cfg->ttl_jitter_pct);
    if (pct > 0 && ttl > 1) {
        uint32_t r;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
            r = (uint32_t)units_now_ms();
        /* uniform in [-pct, +pct] percent of ttl */
        double f = ((double)r / UINT32_MAX * 2.0 - 1.0) * (double)pct / 100.0;
        ttl = method_min64(ttl + (int64_t)((double)ttl * f), CONFIG_LIVE(svc->cfg->max_ttl_ms));
        if (ttl < 1)
            ttl = 1;
    }
    return ttl;
}

int method_hand_off(service *svc, call *c, jobq_fn run, char *text, size_t size)
{
    int rv = jobq_submit(svc->q, call_job(c), run, svc);
    if (rv == 0)
        return 0;
    stats_inc(&svc->st->overloaded);
    if (rv == EAGAIN) {
        snprintf(text, size, "too many requests waiting for redis (%zu)", jobq_taken(svc->q));
        return CODE(RESOURCE_EXHAUSTED);
    }
    snprintf(text, size, "shutting down");
    return CODE(UNAVAILABLE);
}

void method_submit(service *svc, call *c, jobq_fn run)
{
    char text[96];
    int code = method_hand_off(svc, c, run, text, sizeof text);
    if (code != 0)
        call_fail(c, code, "%s", text);
}
