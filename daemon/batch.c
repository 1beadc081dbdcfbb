/* MGet and MSet: many keys of one namespace in one request. MGet answers
 * the L1 hits at once and reads every miss in one Redis round trip (one
 * script); MSet writes every entry and publishes one invalidation naming
 * all the keys, in one script. The per-key rules (tickets, versions,
 * coherence) are those of Get and Set. */
#include "batch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method.h"
#include "units.h"

typedef Nearcache__V1__MGetRequest pb_mget_request;
typedef Nearcache__V1__MGetReply pb_mget_reply;
typedef Nearcache__V1__MGetItem pb_mget_item;
typedef Nearcache__V1__MSetRequest pb_mset_request;
typedef Nearcache__V1__MSetReply pb_mset_reply;
typedef Nearcache__V1__MSetFailure pb_mset_failure;

/* One key of an MGet. A hit from L1 owns a copy of its value. */
typedef struct item {
    ks_l1_key k;
    int done, found, from_l1, stale, negative;
    void *copy; /* L1 hits */
    const void *value;
    size_t len;
    uint64_t ttl_ms;
    uint64_t stale_ms; /* served under stale_if_error: since caught up */
    l1_ticket ticket;
} item;

typedef struct mget {
    size_t n, missing;
    item items[];
} mget;

static void run_mget(jobq_job *job, l2 *conn);
static void mget_take(service *svc, item *it, const l2_value *v, int64_t t0, l2_status rv);
static void run_mset(jobq_job *job, l2 *conn);

static void mget_free(mget *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++) {
        ks_l1_key_free(&b->items[i].k);
        free(b->items[i].copy);
    }
    free(b);
}

struct copy_hit {
    int64_t now;
    item *it;
};

/* method_hit_fn: copies the hit out. */
static void copy_hit(void *arg, const void *value, size_t len, int64_t expires_at)
{
    struct copy_hit *h = arg;
    h->it->copy = malloc(len ? len : 1);
    if (h->it->copy == NULL)
        return; /* served as a miss below */
    memcpy(h->it->copy, value, len);
    h->it->value = h->it->copy;
    h->it->len = len;
    h->it->ttl_ms = (uint64_t)(expires_at - h->now);
}

/* Answers item it from L1 when L1 holds its key under `version`: returns 1
 * with the item done, found and holding a copy of the value. */
static int item_from_l1(service *svc, item *it, uint64_t version, int64_t now)
{
    struct copy_hit h = {now, it};
    if (!method_l1_get(svc, it->k.buf, it->k.len, version, now, copy_hit, &h) || it->copy == NULL)
        return 0;
    it->done = it->found = it->from_l1 = 1;
    return 1;
}

/* Checks the batch's size and every key. Returns 0, or answers and -1. */
static int check_batch(service *svc, call *c, ProtobufCBinaryData ns, size_t n,
                       ProtobufCBinaryData (*key_at)(const void *, size_t), const void *req)
{
    if (n == 0 || n > CONFIG_LIVE(svc->cfg->max_batch)) {
        method_refuse(svc, c, CODE(INVALID_ARGUMENT),
                      "%zu keys; a batch takes 1 to max_batch (%" PRIu64 ")", n,
                      CONFIG_LIVE(svc->cfg->max_batch));
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (method_check_ns_key(svc, c, ns, key_at(req, i)) != 0)
            return -1;
    return 0;
}

static ProtobufCBinaryData mget_key(const void *req, size_t i)
{
    return ((const pb_mget_request *)req)->keys[i];
}

static ProtobufCBinaryData mset_key(const void *req, size_t i)
{
    return ((const pb_mset_request *)req)->entries[i]->key;
}

/* Answers an MGet from its items, then frees the batch. */
static void mget_reply(call *c, mget *b)
{
    pb_mget_item *items = calloc(b->n, sizeof *items);
    pb_mget_item **ptrs = calloc(b->n, sizeof *ptrs);
    pb_get_reply *gets = calloc(b->n, sizeof *gets);
    if (items == NULL || ptrs == NULL || gets == NULL) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
    } else {
        for (size_t i = 0; i < b->n; i++) {
            const item *it = &b->items[i];
            nearcache__v1__mget_item__init(&items[i]);
            nearcache__v1__get_reply__init(&gets[i]);
            items[i].found = it->found;
            items[i].get = &gets[i];
            gets[i].value = (ProtobufCBinaryData){it->len, (uint8_t *)it->value};
            gets[i].source =
                it->from_l1 ? NEARCACHE__V1__SOURCE__SOURCE_L1 : NEARCACHE__V1__SOURCE__SOURCE_L2;
            gets[i].ttl_ms = it->ttl_ms;
            gets[i].stale = it->stale;
            gets[i].stale_ms = it->stale_ms;
            gets[i].negative = it->negative;
            ptrs[i] = &items[i];
        }
        pb_mget_reply mr = NEARCACHE__V1__MGET_REPLY__INIT;
        mr.n_items = b->n;
        mr.items = ptrs;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(MGET);
        r.mget = &mr;
        call_reply(c, &r);
    }
    free(items);
    free(ptrs);
    free(gets);
}

/* An MGet's misses read on a Cluster's read lanes, one per master, all at
 * once (by script they would be one slot after the other): the last read
 * to land answers the call, on its lane's thread, or sends it to the
 * workers when any could not be read there. */
typedef struct lane_mget {
    service *svc;
    call *c;
    mget *b;
    pthread_mutex_t mu;
    size_t left; /* reads still to land, + 1 while they are being sent */
    int failed;
    int64_t t0;
    size_t *index; /* read j is item index[j] */
    l2_value *vals;
    l2_status *st;
    struct lane_read {
        struct lane_mget *lm;
        size_t j;
    } *reads;
} lane_mget;

static void lane_mget_free(lane_mget *lm)
{
    pthread_mutex_destroy(&lm->mu);
    free(lm->index), free(lm->vals), free(lm->st), free(lm->reads);
    free(lm);
}

/* Called by whoever brings lm->left to 0. */
static void lane_mget_finish(lane_mget *lm)
{
    service *svc = lm->svc;
    jobq_unhold(svc->q);
    size_t n = lm->b->missing;
    if (lm->failed) { /* the workers read them all, by script */
        stats_inc(&svc->st->redis_lane_retries);
        for (size_t j = 0; j < n; j++)
            l2_value_free(&lm->vals[j]);
        method_submit(svc, lm->c, run_mget);
    } else {
        for (size_t j = 0; j < n; j++)
            mget_take(svc, &lm->b->items[lm->index[j]], &lm->vals[j], lm->t0, lm->st[j]);
        mget_reply(lm->c, lm->b);
        for (size_t j = 0; j < n; j++)
            l2_value_free(&lm->vals[j]);
        mget_free(lm->b);
    }
    lane_mget_free(lm);
}

/* lane_done_fn: one read of a lane MGet landed (on a lane's thread). */
static void lane_mget_landed(void *arg, void *req, lane_status status, l2_value *v,
                             int64_t sent_at)
{
    (void)arg, (void)sent_at;
    struct lane_read *r = req;
    lane_mget *lm = r->lm;
    pthread_mutex_lock(&lm->mu);
    if (status == LANE_OK || status == LANE_NIL) {
        lm->vals[r->j] = *v; /* takes its reply */
        lm->st[r->j] = (l2_status)status;
    } else {
        lm->failed = 1;
        if (v != NULL)
            l2_value_free(v);
    }
    if (status == LANE_RETRY)
        lanes_poke(lm->svc->lanes); /* the slot may have moved */
    int last = --lm->left == 0;
    pthread_mutex_unlock(&lm->mu);
    if (last)
        lane_mget_finish(lm);
}

/* Sends the misses of b down the lanes when there are a Cluster's and the
 * node serves under the version it knows; returns 1 when the lanes took
 * the call (answered, or to be), 0 when the workers should read them. */
static int mget_by_lanes(service *svc, call *c, mget *b)
{
    const pb_mget_request *m = call_request(c)->mget;
    l2_key rk = method_redis_key(svc, m->ns, m->keys[0]);
    if (b->missing < 2 || !lanes_sharded(svc->lanes) || !rk.known || jobq_hold(svc->q) != 0)
        return 0;
    size_t n = b->missing;
    lane_mget *lm = calloc(1, sizeof *lm);
    l2_key *keys = calloc(n, sizeof *keys);
    void **reqs = calloc(n, sizeof *reqs);
    if (lm != NULL) {
        *lm = (lane_mget){.svc = svc, .c = c, .b = b, .left = n + 1, .t0 = units_now_ms()};
        pthread_mutex_init(&lm->mu, NULL);
        lm->index = calloc(n, sizeof *lm->index);
        lm->vals = calloc(n, sizeof *lm->vals);
        lm->st = calloc(n, sizeof *lm->st);
        lm->reads = calloc(n, sizeof *lm->reads);
    }
    if (lm == NULL || keys == NULL || reqs == NULL || lm->index == NULL || lm->vals == NULL ||
        lm->st == NULL || lm->reads == NULL) {
        if (lm != NULL)
            lane_mget_free(lm);
        free(keys), free(reqs);
        jobq_unhold(svc->q);
        return 0;
    }
    for (size_t i = 0, j = 0; i < b->n; i++)
        if (!b->items[i].done) {
            keys[j] = method_redis_key(svc, m->ns, m->keys[i]);
            lm->reads[j] = (struct lane_read){lm, j};
            reqs[j] = &lm->reads[j];
            lm->index[j++] = i;
        }
    call_state_of(c)->mget = b; /* for the workers, if it comes to them */
    size_t sent = lanes_send(svc->lanes, keys, n, rk.floor, method_answer_by(c), reqs,
                             lane_mget_landed, NULL);
    free(keys), free(reqs);
    pthread_mutex_lock(&lm->mu);
    lm->failed |= sent < n;
    lm->left -= n - sent + 1; /* the reads never sent, and this sender */
    int last = lm->left == 0;
    pthread_mutex_unlock(&lm->mu);
    if (last)
        lane_mget_finish(lm);
    return 1;
}

void batch_handle_mget(service *svc, call *c)
{
    const pb_mget_request *m = call_request(c)->mget;
    stats_inc(&svc->st->mgets);
    if (check_batch(svc, c, m->ns, m->n_keys, mget_key, m) != 0)
        return;
    mget *b = calloc(1, sizeof *b + m->n_keys * sizeof(item));
    if (b == NULL) {
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    b->n = m->n_keys;
    uint64_t version = 0;
    int64_t now = units_now_ms();
    int use_l1 =
        coh_serving(svc->coh, now) && coh_version(svc->coh, m->ns.data, m->ns.len, &version);
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (ks_l1_key_make(&it->k, m->ns.data, m->ns.len, m->keys[i].data, m->keys[i].len) != 0) {
            b->n = i;
            mget_free(b);
            call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
            return;
        }
        if (use_l1 && item_from_l1(svc, it, version, now)) {
            stats_inc(&svc->st->l1_hits);
        } else {
            it->ticket = l1_reserve(svc->cache, it->k.buf, it->k.len);
            b->missing++;
            stats_inc(&svc->st->l1_misses);
        }
    }
    if (b->missing == 0) {
        mget_reply(c, b);
        mget_free(b);
        return;
    }
    if (mget_by_lanes(svc, c, b))
        return;
    call_state_of(c)->mget = b;
    method_submit(svc, c, run_mget);
}

/* Takes one Redis answer into item it (and L1, if its ticket is good). */
static void mget_take(service *svc, item *it, const l2_value *v, int64_t t0, l2_status rv)
{
    it->done = 1;
    it->negative = v->negative;
    if (rv != L2_OK) {
        stats_inc(&svc->st->l2_misses);
        if (v->negative && v->pttl_ms > 0)
            it->ttl_ms = (uint64_t)v->pttl_ms;
        return;
    }
    stats_inc(&svc->st->l2_hits);
    it->found = 1;
    it->value = v->data;
    it->len = v->len;
    it->stale = v->stale;
    it->ttl_ms = v->pttl_ms > 0 ? (uint64_t)v->pttl_ms : 0;
    method_fill(svc, it->k.buf, it->k.len, v, t0, it->ticket);
}

/* Redis could not answer an MGet: under stale_if_error, answers it when L1
 * holds every key still missing (served marked stale) and returns 1. */
static int mget_stale(service *svc, call *c, mget *b, l2_status rv)
{
    const pb_mget_request *m = call_request(c)->mget;
    uint64_t version;
    int64_t now = units_now_ms();
    if (!method_may_serve_stale(svc, rv) || !coh_version(svc->coh, m->ns.data, m->ns.len, &version))
        return 0;
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->done)
            continue;
        if (!item_from_l1(svc, it, version, now))
            return 0;
        it->stale = 1;
        it->stale_ms = (uint64_t)coh_staleness(svc->coh, now);
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].stale)
            stats_inc(&svc->st->stale_served);
    stats_inc(&svc->st->redis_errors);
    mget_reply(c, b);
    return 1;
}

static void job_mget(service *svc, call *c, l2 *conn)
{
    const pb_mget_request *m = call_request(c)->mget;
    mget *b = call_state_of(c)->mget;
    int64_t budget = method_redis_budget(svc, c, method_answer_by(c), "redis read");
    l2_key *keys = budget > 0 ? calloc(b->missing, sizeof *keys) : NULL;
    if (budget > 0 && keys == NULL)
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
    if (keys == NULL) {
        mget_free(b);
        return;
    }
    size_t *index = calloc(b->missing, sizeof *index), n = 0;
    for (size_t i = 0; index != NULL && i < b->n; i++)
        if (!b->items[i].done) {
            keys[n] = method_redis_key(svc, m->ns, m->keys[i]);
            index[n++] = i;
        }
    l2_key rk = method_redis_key(svc, m->ns, m->keys[0]);
    l2_batch got = {0};
    int64_t t0 = units_now_ms();
    l2_status rv = index == NULL ? L2_EREPLY : l2_mget(conn, &rk, keys, n, budget, &got);
    if (rv != L2_OK) {
        if (!mget_stale(svc, c, b, rv))
            method_fail_l2(svc, c, conn, rv);
    } else {
        coh_version_seen(svc->coh, m->ns.data, m->ns.len, got.version);
        for (size_t j = 0; j < n; j++) {
            l2_value v;
            l2_status one = l2_batch_item(&got, j, &v);
            mget_take(svc, &b->items[index[j]], &v, t0, one);
        }
        mget_reply(c, b);
    }
    l2_batch_free(&got);
    free(index);
    free(keys);
    mget_free(b);
}

void batch_handle_mset(service *svc, call *c)
{
    const pb_mset_request *m = call_request(c)->mset;
    stats_inc(&svc->st->msets);
    if (check_batch(svc, c, m->ns, m->n_entries, mset_key, m) != 0)
        return;
    for (size_t i = 0; i < m->n_entries; i++) {
        if (m->entries[i]->value.len > CONFIG_LIVE(svc->cfg->max_value_size)) {
            method_refuse(svc, c, CODE(RESOURCE_EXHAUSTED),
                          "entry %zu is larger than max_value_size", i);
            return;
        }
        if (m->entries[i]->ttl_ms < 0) {
            method_refuse(svc, c, CODE(INVALID_ARGUMENT), "entry %zu has a negative ttl_ms", i);
            return;
        }
    }
    method_submit(svc, c, run_mset);
}

/* After the scripts: this node's L1 and waiters, key by key. `ok` says
 * whether the entries res stored may stay in L1 (the others are dropped). */
static void mset_apply(service *svc, const pb_mset_request *m, const l2_entry *e,
                       const l1_ticket *tickets, uint64_t version, const l2_mset_result *res,
                       int ok, int64_t t0)
{
    int serving = ok && coh_serving(svc->coh, units_now_ms());
    for (size_t i = 0; i < m->n_entries; i++) {
        ks_l1_key k;
        if (ks_l1_key_make(&k, m->ns.data, m->ns.len, e[i].key, e[i].klen) != 0) {
            method_l1_drop(svc, NULL, 0); /* cannot drop the one key: drop them all */
            continue;
        }
        if (ok && res->fail != NULL && res->fail[i] < 0)
            method_written(svc, k.buf, k.len, e[i].value, e[i].vlen, version, e[i].ttl_ms, t0,
                           tickets[i], serving);
        else
            method_l1_drop(svc, k.buf, k.len);
        ks_l1_key_free(&k);
    }
}

/* Answers an MSet that failed in part or whole: the code of its first
 * failure, and an MSetReply naming every entry not stored. */
static void mset_fail(service *svc, call *c, l2 *conn, l2_status rv, const l2_mset_result *res)
{
    char text[700];
    const pb_mset_request *m = call_request(c)->mset;
    size_t n = m->n_entries;
    if (res->fail == NULL || res->nfails == 0) { /* out of memory before any script */
        method_publish_unknown(svc, conn, m->ns, n, mset_key, m, 0);
        method_fail_l2(svc, c, conn, rv);
        return;
    }
    pb_mset_failure *f = calloc(res->nfails, sizeof *f);
    pb_mset_failure **fp = calloc(res->nfails, sizeof *fp);
    uint32_t *index = calloc(n ? n : 1, sizeof *index);
    char(*msg)[sizeof text] = calloc(res->nfails, sizeof *msg);
    if (f == NULL || fp == NULL || index == NULL || msg == NULL) {
        free(f), free(fp), free(index), free(msg);
        method_publish_unknown(svc, conn, m->ns, n, mset_key, m, 1);
        method_fail_l2(svc, c, conn, rv);
        return;
    }
    size_t used = 0;
    for (size_t j = 0; j < res->nfails; j++) {
        nearcache__v1__mset_failure__init(&f[j]);
        f[j].code = method_l2_failure(svc, c, res->fails[j].status, res->fails[j].message, msg[j],
                                      sizeof msg[j]);
        f[j].message = msg[j];
        f[j].maybe_stored = res->fails[j].maybe_ran;
        f[j].index = index + used;
        for (size_t i = 0; i < n; i++)
            if (res->fail[i] == (int)j)
                f[j].index[f[j].n_index++] = (uint32_t)i;
        used += f[j].n_index;
        fp[j] = &f[j];
    }
    pb_mset_reply mr = NEARCACHE__V1__MSET_REPLY__INIT;
    mr.stored = (uint32_t)res->stored;
    mr.n_failed = res->nfails;
    mr.failed = fp;
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.code = f[0].code;
    snprintf(text, sizeof text, "%s", res->nfails == 1 && res->stored == 0 ? msg[0] : l2_error(conn));
    r.message = text;
    r.result_case = RESULT(MSET);
    r.mset = &mr;
    int maybe = res->stored > 0;
    for (size_t j = 0; j < res->nfails; j++)
        maybe |= f[j].maybe_stored;
    if (maybe) /* answered once what may be stored is announced */
        method_reply_written(svc, c, &r, m->ns, n, mset_key, m);
    else
        call_reply(c, &r);
    free(f), free(fp), free(index), free(msg);
}

static void job_mset(service *svc, call *c, l2 *conn)
{
    const pb_mset_request *m = call_request(c)->mset;
    size_t n = m->n_entries, len = 0;
    int64_t budget = method_redis_budget(svc, c, call_deadline(c), "redis write");
    if (budget == 0 || method_publish_begin(svc, c) != 0)
        return;
    const char *channel = method_script_channel(svc); /* "": the publisher's batch */
    l2_entry *e = calloc(n, sizeof *e);
    l1_ticket *tickets = calloc(n, sizeof *tickets);
    uint8_t *msg = e == NULL || tickets == NULL ? NULL
                   : channel[0] != '\0'
                       ? method_inval_msg(svc, conn, m->ns, m->n_entries, mset_key, m, 0, &len)
                       : calloc(1, 1);
    if (msg == NULL) {
        free(e);
        free(tickets);
        method_publish_end(svc);
        call_fail(c, CODE(RESOURCE_EXHAUSTED), "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const Nearcache__V1__MSetEntry *en = m->entries[i];
        e[i] = (l2_entry){en->key.data, en->key.len, en->value.data, en->value.len,
                          method_ttl(svc, en->ttl_ms != 0, en->ttl_ms)};
        ks_l1_key k;
        if (ks_l1_key_make(&k, m->ns.data, m->ns.len, en->key.data, en->key.len) == 0) {
            tickets[i] = l1_reserve(svc->cache, k.buf, k.len);
            ks_l1_key_free(&k);
        }
    }
    uint64_t seq = coh_next_seq(svc->coh, l2_stream(conn)), version = 0;
    l2_msg lm = {channel, msg, len};
    l2_key rk = method_redis_key(svc, m->ns, m->entries[0]->key);
    int64_t t0 = units_now_ms();
    l2_mset_result res;
    int rv = l2_mset(conn, &rk, e, n, &lm, budget, &version, &res);
    /* a slot stored is a message published (each slot's script sends it,
     * or the publisher's batch does) */
    if (channel[0] != '\0')
        method_settle_seq(svc, conn, seq, res.stored > 0);
    else if (res.stored > 0)
        stats_inc(&svc->st->invalidations_sent);
    if (res.stored > 0)
        coh_version_seen(svc->coh, m->ns.data, m->ns.len, version);
    /* the entries of a partial MSet stay in L1 unless a WAIT was asked for
     * (it is not sent after a failure) */
    int durable = rv == L2_OK ? method_replicated(svc, c, conn, "MSet") == 0
                              : svc->cfg->redis_wait_replicas == 0;
    mset_apply(svc, m, e, tickets, version, &res, durable, t0);
    if (rv != L2_OK) {
        mset_fail(svc, c, conn, rv, &res);
    } else if (durable) {
        pb_mset_reply mr = NEARCACHE__V1__MSET_REPLY__INIT;
        mr.stored = (uint32_t)n;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.result_case = RESULT(MSET);
        r.mset = &mr;
        method_reply_written(svc, c, &r, m->ns, n, mset_key, m);
    } else {
        /* method_replicated()'s answer, now that m is no longer read */
        method_send_written(svc, c, m->ns, n, mset_key, m);
    }
    method_publish_end(svc);
    l2_mset_result_free(&res);
    free(msg);
    free(e);
    free(tickets);
}

/* jobq_fns: a batch's script on a worker. */
static void run_mget(jobq_job *job, l2 *conn)
{
    job_mget(job->arg, call_of_job(job), conn);
}

static void run_mset(jobq_job *job, l2 *conn)
{
    job_mset(job->arg, call_of_job(job), conn);
}
