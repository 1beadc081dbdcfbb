/* Set, Delete and BumpNamespace: each runs its script on a worker (Redis
 * first), then L1, then the answer, sent once the write's invalidation is
 * published: by the script itself (a bump, and every write with
 * inval_batch = 0), or by the publisher's next batch (publish.h). A failed or uncertain Redis write drops the key from L1,
 * never keeps an old copy; a write wakes the Gets parked for its key. */
#include "write.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "method.h"
#include "units.h"

/* What every write does around its script: a ticket before it is sent, the
 * invalidation message with this stream's next seq, and after the answer
 * the seq confirmed (or kept for the next message) and the stats. */
typedef struct write_ctx {
    ks_l1_key k;
    l1_ticket ticket;
    uint8_t *msg;
    l2_msg m;
    uint64_t seq;
    int open; /* method_publish_begin() succeeded */
} write_ctx;

/* method_key_at_fn over one key (req points at it). */
static ProtobufCBinaryData the_key(const void *req, size_t i)
{
    return *(const ProtobufCBinaryData *)req;
}

/* Builds the write's message: of `key`, or (bump) of a bump of ns to
 * version bump_to. Returns 0, or -1 with the call answered. */
static int write_msg(service *svc, call *c, l2 *conn, write_ctx *w, ProtobufCBinaryData ns,
                     ProtobufCBinaryData key, int bump, uint64_t bump_to)
{
    free(w->msg);
    w->m.channel = method_script_channel(svc);
    if (!bump && w->m.channel[0] == '\0') {
        w->m.data = "", w->m.len = 0; /* the publisher sends it */
        return 0;
    }
    /* a bump's compare-and-set publishes its own; on a Cluster its worker
     * does, after it (a script can only SPUBLISH to its own slot) */
    w->m.channel = method_sharded(svc) ? "" : svc->channel;
    w->msg = method_inval_msg(svc, conn, ns, bump ? 0 : 1, the_key, &key, bump_to, &w->m.len);
    if (w->msg == NULL) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return -1;
    }
    w->m.data = w->msg;
    return 0;
}

static int write_begin(service *svc, call *c, l2 *conn, write_ctx *w, ProtobufCBinaryData ns,
                       ProtobufCBinaryData key, int bump)
{
    memset(w, 0, sizeof *w);
    if (ks_l1_key_make(&w->k, ns.data, ns.len, key.data, key.len) != 0) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return -1;
    }
    if (method_publish_begin(svc, c) != 0) {
        ks_l1_key_free(&w->k);
        return -1;
    }
    w->open = 1;
    if (!bump && write_msg(svc, c, conn, w, ns, key, 0, 0) != 0) {
        method_publish_end(svc);
        ks_l1_key_free(&w->k);
        return -1;
    }
    w->seq = coh_next_seq(svc->coh, l2_stream(conn));
    w->ticket = l1_reserve(svc->cache, w->k.buf, w->k.len);
    return 0;
}

static void write_end(service *svc, l2 *conn, write_ctx *w, int published)
{
    if (w->msg != NULL)
        method_settle_seq(svc, conn, w->seq, published);
    else if (published)
        stats_inc(&svc->st->invalidations_sent); /* in the publisher's batch */
    if (w->open)
        method_publish_end(svc);
    free(w->msg);
    ks_l1_key_free(&w->k);
}

static void job_set(service *svc, call *c, l2 *conn)
{
    const pb_set_request *s = call_request(c)->set;
    int64_t ttl = method_ttl(svc, s->ttl_case == NEARCACHE__V1__SET_REQUEST__TTL_TTL_MS, s->ttl_ms);
    int64_t budget = method_redis_budget(svc, c, call_deadline(c), "redis write");
    write_ctx w;
    if (budget == 0 || write_begin(svc, c, conn, &w, s->ns, s->key, 0) != 0)
        return;
    l2_key rk = method_redis_key(svc, s->ns, s->key);
    l2_set_opts o = {.negative = s->negative, .swr_ms = (int64_t)s->stale_while_revalidate_ms};
    if (s->lease_token.len > 0)
        o.token = (const char *)s->lease_token.data, o.token_len = s->lease_token.len;
    int64_t t0 = units_now_ms();
    uint64_t version = 0;
    int stored = 0;
    l2_status rv =
        l2_set(conn, &rk, s->value.data, s->value.len, ttl, &o, &w.m, budget, &version, &stored);
    if (rv != L2_OK) {
        method_l1_drop(svc, w.k.buf, w.k.len); /* it may or may not have landed */
        method_publish_unknown(svc, conn, s->ns, 1, the_key, &s->key, 0);
        method_fail_l2(svc, c, conn, rv);
    } else if (!stored) {
        stats_inc(&svc->st->lease_sets_rejected);
        call_fail(c, CODE(ABORTED),
                  "lease is no longer valid: the key was written or deleted "
                  "since it was granted, or it expired; nothing stored");
    } else {
        int durable = method_replicated(svc, c, conn, "write") == 0;
        coh_version_seen(svc->coh, s->ns.data, s->ns.len, version);
        method_written(svc, w.k.buf, w.k.len, s->value.data, s->value.len, version, ttl, t0, w.ticket,
                    durable && coh_serving(svc->coh, units_now_ms()) && !s->negative);
        if (!durable) {
            /* method_replicated()'s answer */
            method_send_written(svc, c, s->ns, 1, the_key, &s->key);
            goto out;
        }
        pb_set_reply sr = NEARCACHE__V1__SET_REPLY__INIT;
        sr.ttl_ms = (uint64_t)ttl;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(SET);
        r.set = &sr;
        method_reply_written(svc, c, &r, s->ns, 1, the_key, &s->key);
    }
out:
    write_end(svc, conn, &w, rv == L2_OK && stored);
}

static void job_delete(service *svc, call *c, l2 *conn)
{
    const pb_delete_request *d = call_request(c)->delete_;
    int64_t budget = method_redis_budget(svc, c, call_deadline(c), "redis delete");
    write_ctx w;
    if (budget == 0 || write_begin(svc, c, conn, &w, d->ns, d->key, 0) != 0)
        return;
    l2_key rk = method_redis_key(svc, d->ns, d->key);
    int existed = 0;
    uint64_t version = 0;
    const void *token = d->lease_token.len > 0 ? d->lease_token.data : NULL;
    l2_status rv = l2_del(conn, &rk, token, d->lease_token.len, &w.m, budget, &existed, &version);
    method_l1_drop(svc, w.k.buf, w.k.len); /* whatever Redis said */
    /* a release of a lease that was no longer held publishes nothing */
    size_t n = token == NULL || existed;
    if (rv != L2_OK) {
        method_publish_unknown(svc, conn, d->ns, 1, the_key, &d->key, 0);
        method_fail_l2(svc, c, conn, rv);
    } else {
        waits_wake(svc->waits, w.k.buf, w.k.len); /* their lease holder lost the lease */
        if (method_replicated(svc, c, conn, "delete") != 0) {
            method_send_written(svc, c, d->ns, n, the_key, &d->key);
            goto out;
        }
        pb_delete_reply dr = NEARCACHE__V1__DELETE_REPLY__INIT;
        dr.existed = existed;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(DELETE);
        r.delete_ = &dr;
        method_reply_written(svc, c, &r, d->ns, n, the_key, &d->key);
    }
out:
    write_end(svc, conn, &w, rv == L2_OK && n > 0);
}

/* A bump is a compare-and-set: the daemon builds the message for the
 * version it expects to make (from + 1), and the script bumps only if Redis
 * holds `from`, else answers the version it holds, to try again from. */
#define BUMP_TRIES 8

static void job_bump(service *svc, call *c, l2 *conn)
{
    const pb_bump_request *b = call_request(c)->bump_namespace;
    ProtobufCBinaryData none = {0, NULL};
    write_ctx w;
    if (method_redis_budget(svc, c, call_deadline(c), "redis bump") == 0 ||
        write_begin(svc, c, conn, &w, b->ns, none, 1) != 0)
        return;
    l2_key rk = method_redis_key(svc, b->ns, none);
    uint64_t from = rk.floor, version = 0;
    int bumped = 0, answered = 0;
    l2_status rv = L2_OK;
    for (int i = 0; i < BUMP_TRIES && rv == L2_OK && !bumped && !answered; i++, from = version) {
        int64_t budget = method_redis_budget(svc, c, call_deadline(c), "redis bump");
        answered = budget == 0 || write_msg(svc, c, conn, &w, b->ns, none, 1, from + 1) != 0;
        if (!answered)
            rv = l2_bump(conn, &rk, from, &w.m, budget, &version, &bumped);
    }
    if (answered) {
        /* the call was answered (deadline, out of memory) */
    } else if (rv != L2_OK) {
        method_fail_l2(svc, c, conn, rv);
    } else if (!bumped) {
        call_fail(c, CODE(ABORTED),
                  "the namespace was bumped concurrently %d times while this bump tried; "
                  "nothing changed, try again",
                  BUMP_TRIES);
    } else if (method_sharded(svc) &&
               (rv = l2_publish(conn, svc->channel, w.m.data, w.m.len,
                                svc->cfg->redis_timeout_ms)) != L2_OK) {
        coh_bumped(svc->coh, b->ns.data, b->ns.len, version);
        stats_inc(&svc->st->redis_errors);
        call_fail(c, CODE(UNAVAILABLE),
                  "the namespace is bumped to %" PRIu64 " in redis, but its message could not be "
                  "published (%s): the other hosts empty their L1 at this daemon's next "
                  "heartbeat, or when they count it silent",
                  version, l2_error(conn));
        rv = L2_OK; /* its seq is used up: the others see the gap */
    } else {
        coh_bumped(svc->coh, b->ns.data, b->ns.len, version);
        if (method_replicated(svc, c, conn, "bump") != 0) {
            call_send(c);
            goto out;
        }
        pb_bump_reply br = NEARCACHE__V1__BUMP_NAMESPACE_REPLY__INIT;
        br.version = version;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(BUMP_NAMESPACE);
        r.bump_namespace = &br;
        call_reply(c, &r);
    }
out:
    write_end(svc, conn, &w, rv == L2_OK && bumped);
}

/* jobq_fns: a write's script on a worker. */
static void run_set(jobq_job *job, l2 *conn)
{
    job_set(job->arg, call_of_job(job), conn);
}

static void run_delete(jobq_job *job, l2 *conn)
{
    job_delete(job->arg, call_of_job(job), conn);
}

static void run_bump(jobq_job *job, l2 *conn)
{
    job_bump(job->arg, call_of_job(job), conn);
}

void write_handle_set(service *svc, call *c)
{
    const pb_set_request *s = call_request(c)->set;
    stats_inc(&svc->st->sets);
    if (method_check_ns_key(svc, c, s->ns, s->key) != 0)
        return;
    if (s->value.len > CONFIG_LIVE(svc->cfg->max_value_size)) {
        method_refuse(svc, c, CODE(RESOURCE_EXHAUSTED),
                      "value is %zu bytes; max_value_size is %" PRIu64, s->value.len,
                      CONFIG_LIVE(svc->cfg->max_value_size));
        return;
    }
    if (s->ttl_case == NEARCACHE__V1__SET_REQUEST__TTL_TTL_MS && s->ttl_ms <= 0) {
        method_refuse(svc, c, CODE(INVALID_ARGUMENT), "ttl_ms must be positive (got %" PRId64 ")",
                      s->ttl_ms);
        return;
    }
    if (s->stale_while_revalidate_ms > (uint64_t)CONFIG_LIVE(svc->cfg->max_ttl_ms)) {
        method_refuse(svc, c, CODE(INVALID_ARGUMENT),
                      "stale_while_revalidate_ms %" PRIu64 " exceeds max_ttl (%" PRId64 " ms)",
                      s->stale_while_revalidate_ms, CONFIG_LIVE(svc->cfg->max_ttl_ms));
        return;
    }
    if (s->lease_token.len > 64) {
        method_refuse(svc, c, CODE(INVALID_ARGUMENT),
                      "lease_token is %zu bytes; tokens are at most 64", s->lease_token.len);
        return;
    }
    method_submit(svc, c, run_set);
}

void write_handle_delete(service *svc, call *c)
{
    const pb_delete_request *d = call_request(c)->delete_;
    stats_inc(&svc->st->deletes);
    if (method_check_ns_key(svc, c, d->ns, d->key) != 0)
        return;
    method_submit(svc, c, run_delete);
}

void write_handle_bump(service *svc, call *c)
{
    const pb_bump_request *b = call_request(c)->bump_namespace;
    ProtobufCBinaryData key = {1, (uint8_t *)"-"}; /* only the namespace is checked */
    if (method_check_ns_key(svc, c, b->ns, key) != 0)
        return;
    method_submit(svc, c, run_bump);
}
