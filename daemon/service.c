/* The cache methods; see service.h.
 * A Get tries L1 on the server thread and copies the value straight into the
 * reply under the shard lock (one lookup, one copy). Misses, Sets and Deletes
 * run on a jobq worker: Redis first, then L1, then the answer. A failed or
 * uncertain Redis write drops the key from L1, never keeps an old copy. */
#include "service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "units.h"

#define RKEY_INLINE 2048

struct service {
    const config *cfg;
    l1 *cache;
    jobq *q;
    stats *st;
    int64_t started_ms;
    char node_id[17];
};

/* A Redis key PREFIX:NS:VER:KEY, on the stack when it fits. */
typedef struct rkey {
    char *buf;
    size_t len;
    char inline_buf[RKEY_INLINE];
} rkey;

static int rkey_build(const service *svc, ProtobufCBinaryData ns, ProtobufCBinaryData key,
                      rkey *k)
{
    size_t plen = strlen(svc->cfg->prefix);
    size_t need = plen + ns.len + key.len + 8;
    k->buf = need <= RKEY_INLINE ? k->inline_buf : malloc(need);
    if (k->buf == NULL)
        return ENOMEM;
    char *p = k->buf;
    memcpy(p, svc->cfg->prefix, plen), p += plen;
    *p++ = ':';
    memcpy(p, ns.data, ns.len), p += ns.len;
    memcpy(p, ":0:", 3), p += 3; /* namespace version: 0 until bumps exist */
    memcpy(p, key.data, key.len), p += key.len;
    k->len = (size_t)(p - k->buf);
    return 0;
}

static void rkey_free(rkey *k)
{
    if (k->buf != k->inline_buf)
        free(k->buf);
}

/* Checks a namespace and key against the limits. Returns 0, or answers the
 * call with INVALID_ARGUMENT and returns -1. */
static int check_ns_key(service *svc, call *c, ProtobufCBinaryData ns, ProtobufCBinaryData key)
{
    const config *cfg = svc->cfg;
    const char *problem = NULL;
    char text[160];
    if (ns.len == 0)
        problem = "namespace is empty";
    else if (ns.len > cfg->max_namespace_size)
        problem = text, snprintf(text, sizeof text, "namespace is %zu bytes; max_namespace_size "
                                 "is %" PRIu64, ns.len, cfg->max_namespace_size);
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
static int64_t redis_budget(service *svc, call *c, const char *what)
{
    int64_t left = call_deadline(c) - units_now_ms();
    if (left <= 0) {
        call_fail(c, CODE(DEADLINE_EXCEEDED), "deadline exceeded before the %s", what);
        return 0;
    }
    return left < svc->cfg->redis_timeout_ms ? left : svc->cfg->redis_timeout_ms;
}

/* Answers a failed Redis command with the status that fits it. */
static void fail_l2(service *svc, call *c, l2 *conn, int status)
{
    stats_inc(&svc->st->redis_errors);
    const char *e = l2_error(conn);
    if (status == L2_ETIMEOUT && units_now_ms() >= call_deadline(c))
        call_fail(c, CODE(DEADLINE_EXCEEDED), "deadline exceeded waiting for redis");
    else if (status == L2_EREPLY && strstr(e, "OOM") != NULL)
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "%s", e);
    else if (status == L2_EREPLY && strstr(e, "WRONGTYPE") != NULL)
        call_fail(c, CODE(FAILED_PRECONDITION), "%s", e);
    else
        call_fail(c, CODE(UNAVAILABLE), "%s", e);
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static void job_get(service *svc, call *c, l2 *conn)
{
    const pb_get_request *g = call_request(c)->get;
    rkey k;
    int64_t budget = redis_budget(svc, c, "redis read");
    if (budget == 0)
        return;
    if (rkey_build(svc, g->ns, g->key, &k) != 0) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    int64_t t0 = units_now_ms();
    l2_value v = {0};
    int rv = l2_get(conn, k.buf, k.len, budget, &v);
    if (rv == L2_NIL) {
        stats_inc(&svc->st->l2_misses);
        call_fail(c, CODE(NOT_FOUND), "not found");
    } else if (rv != L2_OK) {
        fail_l2(svc, c, conn, rv);
    } else {
        stats_inc(&svc->st->l2_hits);
        int64_t life = v.pttl_ms >= 0 ? min64(v.pttl_ms, svc->cfg->l1_max_ttl_ms)
                                      : svc->cfg->l1_max_ttl_ms;
        l1_set(svc->cache, k.buf, k.len, v.data, v.len, t0 + life, t0);
        pb_get_reply gr = NEARCACHE__V1__GET_REPLY__INIT;
        gr.value.data = (uint8_t *)v.data;
        gr.value.len = v.len;
        gr.source = NEARCACHE__V1__SOURCE__SOURCE_L2;
        gr.ttl_ms = v.pttl_ms > 0 ? (uint64_t)v.pttl_ms : 0;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(GET);
        r.get = &gr;
        call_reply(c, &r);
    }
    l2_value_free(&v);
    rkey_free(&k);
}

static void job_set(service *svc, call *c, l2 *conn)
{
    const pb_set_request *s = call_request(c)->set;
    int64_t ttl = s->ttl_case == NEARCACHE__V1__SET_REQUEST__TTL_TTL_MS ? s->ttl_ms
                                                                         : svc->cfg->default_ttl_ms;
    ttl = min64(ttl, svc->cfg->max_ttl_ms);
    rkey k;
    int64_t budget = redis_budget(svc, c, "redis write");
    if (budget == 0)
        return;
    if (rkey_build(svc, s->ns, s->key, &k) != 0) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    int64_t t0 = units_now_ms();
    int rv = l2_set(conn, k.buf, k.len, s->value.data, s->value.len, ttl, budget);
    if (rv != L2_OK) {
        l1_del(svc->cache, k.buf, k.len); /* the write may or may not have landed */
        fail_l2(svc, c, conn, rv);
    } else {
        l1_set(svc->cache, k.buf, k.len, s->value.data, s->value.len,
               t0 + min64(ttl, svc->cfg->l1_max_ttl_ms), t0);
        pb_set_reply sr = NEARCACHE__V1__SET_REPLY__INIT;
        sr.ttl_ms = (uint64_t)ttl;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(SET);
        r.set = &sr;
        call_reply(c, &r);
    }
    rkey_free(&k);
}

static void job_delete(service *svc, call *c, l2 *conn)
{
    const pb_delete_request *d = call_request(c)->delete_;
    rkey k;
    int64_t budget = redis_budget(svc, c, "redis delete");
    if (budget == 0)
        return;
    if (rkey_build(svc, d->ns, d->key, &k) != 0) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    int existed = 0;
    int rv = l2_del(conn, k.buf, k.len, budget, &existed);
    l1_del(svc->cache, k.buf, k.len); /* whatever Redis said */
    if (rv != L2_OK) {
        fail_l2(svc, c, conn, rv);
    } else {
        pb_delete_reply dr = NEARCACHE__V1__DELETE_REPLY__INIT;
        dr.existed = existed;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(DELETE);
        r.delete_ = &dr;
        call_reply(c, &r);
    }
    rkey_free(&k);
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
    default:
        call_fail(c, CODE(INTERNAL), "method %d has no Redis job", call_request(c)->method_case);
    }
}

/* Hands the call to a Redis worker, or turns it away when too many wait. */
static void submit(service *svc, call *c)
{
    int rv = jobq_submit(svc->q, call_job(c), job_run, svc);
    if (rv == 0)
        return;
    stats_inc(&svc->st->overloaded);
    if (rv == EAGAIN)
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "too many requests waiting for redis (%zu)",
                  jobq_waiting(svc->q));
    else
        call_fail(c, CODE(UNAVAILABLE), "shutting down");
}

struct hit {
    call *c;
    int64_t now;
    int prepared;
};

/* l1_visit_fn: encodes the L1 hit into the reply under the shard lock. */
static void on_hit(void *arg, const void *value, size_t len, int64_t expires_at)
{
    struct hit *h = arg;
    pb_get_reply g = NEARCACHE__V1__GET_REPLY__INIT;
    g.value.data = (uint8_t *)value;
    g.value.len = len;
    g.source = NEARCACHE__V1__SOURCE__SOURCE_L1;
    g.ttl_ms = (uint64_t)(expires_at - h->now);
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.result_case = RESULT(GET);
    r.get = &g;
    h->prepared = call_prepare(h->c, &r) == 0;
}

static void handle_get(service *svc, call *c)
{
    const pb_get_request *g = call_request(c)->get;
    stats_inc(&svc->st->gets);
    if (check_ns_key(svc, c, g->ns, g->key) != 0)
        return;
    rkey k;
    if (rkey_build(svc, g->ns, g->key, &k) != 0) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    struct hit h = {.c = c, .now = units_now_ms()};
    int found = l1_get(svc->cache, k.buf, k.len, h.now, on_hit, &h);
    rkey_free(&k);
    if (found && h.prepared) {
        stats_inc(&svc->st->l1_hits);
        call_send(c);
        return;
    }
    if (found) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory encoding the value");
        return;
    }
    stats_inc(&svc->st->l1_misses);
    submit(svc, c);
}

static void handle_set(service *svc, call *c)
{
    const pb_set_request *s = call_request(c)->set;
    stats_inc(&svc->st->sets);
    if (check_ns_key(svc, c, s->ns, s->key) != 0)
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
    submit(svc, c);
}

static void handle_delete(service *svc, call *c)
{
    const pb_delete_request *d = call_request(c)->delete_;
    stats_inc(&svc->st->deletes);
    if (check_ns_key(svc, c, d->ns, d->key) != 0)
        return;
    submit(svc, c);
}

static void handle_stats(service *svc, call *c)
{
    l1_stats ls;
    l1_get_stats(svc->cache, &ls);
    stats *st = svc->st;
    struct {
        const char *name;
        int64_t value;
    } rows[] = {
        {"requests", (int64_t)stats_get(&st->requests)},
        {"bad_requests", (int64_t)stats_get(&st->bad_requests)},
        {"gets", (int64_t)stats_get(&st->gets)},
        {"sets", (int64_t)stats_get(&st->sets)},
        {"deletes", (int64_t)stats_get(&st->deletes)},
        {"l1_hits", (int64_t)stats_get(&st->l1_hits)},
        {"l1_misses", (int64_t)stats_get(&st->l1_misses)},
        {"l2_hits", (int64_t)stats_get(&st->l2_hits)},
        {"l2_misses", (int64_t)stats_get(&st->l2_misses)},
        {"l1_entries", (int64_t)ls.entries},
        {"l1_bytes", (int64_t)ls.bytes},
        {"l1_max_memory", (int64_t)ls.max_bytes},
        {"l1_evictions", (int64_t)ls.evictions},
        {"l1_expired", (int64_t)ls.expired},
        {"redis_errors", (int64_t)stats_get(&st->redis_errors)},
        {"redis_connections_up", (int64_t)jobq_connected(svc->q)},
        {"redis_queue", (int64_t)jobq_waiting(svc->q)},
        {"deadline_exceeded", (int64_t)stats_get(&st->deadline_exceeded)},
        {"overloaded", (int64_t)stats_get(&st->overloaded)},
        {"uptime_ms", units_now_ms() - svc->started_ms},
    };
    enum { NROWS = sizeof rows / sizeof rows[0] };
    pb_stat cells[NROWS], *ptrs[NROWS];
    for (size_t i = 0; i < NROWS; i++) {
        nearcache__v1__stat__init(&cells[i]);
        cells[i].name = (char *)rows[i].name;
        cells[i].value = rows[i].value;
        ptrs[i] = &cells[i];
    }
    pb_stats_reply sr = NEARCACHE__V1__STATS_REPLY__INIT;
    sr.n_stats = NROWS;
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
    default:
        call_fail(c, CODE(UNIMPLEMENTED), "method %d is not implemented",
                  call_request(c)->method_case);
    }
}

int service_create(service **out, const config *cfg, l1 *cache, jobq *q, stats *st)
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
    *out = svc;
    return 0;
}

void service_free(service *svc)
{
    free(svc);
}

const char *service_node_id(const service *svc)
{
    return svc->node_id;
}
