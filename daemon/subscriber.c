/* The invalidation channels' readers; see subscriber.h. Each blocks in
 * l2io_get_reply() with a read timeout of coherence_window; sub_destroy()
 * wakes them by shutting their sockets down. On a Cluster, `mu` also
 * serializes the readers' calls into coherence. */
#include "subscriber.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "backoff.h"
#include "keyspace.h"
#include "l2cluster.h"
#include "l2conn.h"
#include "log.h"
#include "units.h"

#define RETRY_MAX_MS 2000 /* a lost subscription is missed L1: retry sooner */

typedef struct subscriber subscriber;

/* A Cluster's connection to one master and its reader thread. */
typedef struct sub_source {
    subscriber *s;
    int index; /* coherence's source number */
    l2io *io;  /* guarded by s->mu */
    pthread_t thread;
    int started;
} sub_source;

struct subscriber {
    const config *cfg;
    config_redis_url url;
    char channel[KS_CHANNEL_SIZE];
    char own[KS_OWN_CHANNEL_SIZE]; /* this node's heartbeats to itself */
    coh *coh;
    atomic_int stopping;
    pthread_mutex_t mu; /* guards io and the sources' io (for sub_destroy) */
    l2io *io;
    pthread_t reader;
    int reader_started;
    int failing; /* subscribe attempts failed in a row (reader thread only) */
    /* a Cluster's (NULL, 0 on one server): */
    l2cluster *cl;                               /* for the slot map */
    config_redis_url *urls;                      /* per master of the map */
    char (*chans)[2][KS_OWN_CHANNEL_SIZE];       /* per bucket: its channel, its own channel */
    unsigned bslot[KS_INVAL_BUCKETS];            /* per bucket: its channels' slot */
    sub_source src[COH_MAX_SOURCES];
    int nsrc;
    pthread_cond_t lost_cv; /* a source lost its connection (or we stop) */
    int lost;               /* guarded by mu */
};

/* One server: connects as every connection does (l2conn_dial: AUTH and
 * SELECT as the URL asks; pub/sub ignores the database) and subscribes to
 * both channels. Returns the connection, or NULL with the reason logged. */
static l2io *subscribe(subscriber *s)
{
    char err[600];
    const char *argv[] = {"SUBSCRIBE", s->channel, s->own};
    l2io *io = l2conn_dial(&s->url, s->cfg->redis_timeout_ms, err, sizeof err);
    const char *why = io == NULL ? err : NULL;
    if (why == NULL) {
        redisReply *r = l2io_command(io, 3, argv, NULL);
        why = r == NULL                      ? l2io_errstr(io)
              : r->type != REDIS_REPLY_ARRAY ? "SUBSCRIBE refused"
                                             : NULL;
        freeReplyObject(r);
        r = NULL; /* one confirmation per channel */
        if (why == NULL && l2io_get_reply(io, &r) != 0)
            why = l2io_errstr(io);
        else if (why == NULL && r->type != REDIS_REPLY_ARRAY)
            why = "SUBSCRIBE refused";
        freeReplyObject(r);
    }
    if (why != NULL) {
        if (s->failing++ == 0)
            log_warn("subscriber: cannot subscribe to %s: %s (retrying)", s->channel, why);
        else
            log_debug("subscriber: %s", why);
        l2io_free(io);
        return NULL;
    }
    l2io_set_timeout(io, s->cfg->coherence_window_ms);
    return io;
}

/* Hands one pub/sub reply to coherence. Returns 0, or -1 for a reply that
 * is not a message (the connection is then made anew). */
static int deliver(subscriber *s, const redisReply *r, int source)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_STRING ||
        (strcmp(r->element[0]->str, "message") != 0 && strcmp(r->element[0]->str, "smessage") != 0))
        return -1; /* a "sunsubscribe": the channels' slot moved, or its master failed over */
    const redisReply *payload = r->element[2];
    pb_invalidation *m = codec_inval_unpack(payload->str, payload->len);
    if (m == NULL) {
        /* It may have been an invalidation: treat it as one that was lost. */
        log_warn("subscriber: undecodable message of %zu bytes on %s; emptying L1", payload->len,
                 s->channel);
        coh_message_lost(s->coh);
        return 0;
    }
    if (s->cl != NULL) /* the channel's bucket: both of a bucket's channels share its slot */
        coh_apply_from(s->coh, m, source,
                       ks_inval_bucket(ks_slot(r->element[1]->str, r->element[1]->len)));
    else
        coh_apply(s->coh, m);
    codec_inval_free(m);
    return 0;
}

/* Reads messages until the connection fails, goes silent or we stop. */
static void listen_until_lost(subscriber *s, l2io *io)
{
    while (!atomic_load(&s->stopping)) {
        redisReply *r = NULL;
        if (l2io_get_reply(io, &r) != 0) {
            if (!atomic_load(&s->stopping))
                log_warn("subscription to %s lost: %s", s->channel,
                         l2io_timed_out(io) ? "silent past coherence_window" : l2io_errstr(io));
            return;
        }
        int bad = deliver(s, r, 0);
        freeReplyObject(r);
        if (bad) {
            log_warn("subscription to %s: unexpected reply; subscribing again", s->channel);
            return;
        }
    }
}

/* A subscription attempt failed: waits the backoff's next delay. */
static void sleep_backoff(backoff *bo)
{
    int64_t retry_ms = backoff_fail(bo);
    struct timespec ts = {.tv_sec = retry_ms / 1000, .tv_nsec = (retry_ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void *reader_main(void *arg)
{
    subscriber *s = arg;
    backoff bo = backoff_make(RETRY_MAX_MS);
    while (!atomic_load(&s->stopping)) {
        l2io *io = subscribe(s);
        if (io == NULL) {
            sleep_backoff(&bo);
            continue;
        }
        backoff_reset(&bo);
        s->failing = 0;
        pthread_mutex_lock(&s->mu);
        s->io = io;
        pthread_mutex_unlock(&s->mu);
        coh_subscribed(s->coh);
        log_info("subscribed to %s; L1 emptied, serving from it again once caught up", s->channel);
        listen_until_lost(s, io);
        coh_lost(s->coh);
        pthread_mutex_lock(&s->mu);
        s->io = NULL;
        pthread_mutex_unlock(&s->mu);
        l2io_free(io);
    }
    return NULL;
}

/* ---- a Cluster: a connection per master ---------------------------------- */

/* Dials master m's connection for source i and SSUBSCRIBEs there the
 * channels of every bucket b with at[b] == i (one command per bucket: a
 * command's channels must share a slot). Returns the connection, or NULL
 * with the reason in why. */
static l2io *subscribe_master(subscriber *s, int m, int i, const int *at, char *why,
                              size_t whylen)
{
    char err[600];
    l2io *io = l2conn_dial(&s->urls[m], s->cfg->redis_timeout_ms, err, sizeof err);
    if (io == NULL) {
        snprintf(why, whylen, "%s", err);
        return NULL;
    }
    int n = 0;
    for (int b = 0; b < KS_INVAL_BUCKETS; b++) {
        if (at[b] != i)
            continue;
        const char *argv[] = {"SSUBSCRIBE", s->chans[b][0], s->chans[b][1]};
        if (l2io_append(io, 3, argv, NULL) != 0)
            goto fail;
        n += 2; /* one confirmation per channel */
    }
    int done;
    if (l2io_flush(io, &done) != 0)
        goto fail;
    while (n > 0) {
        redisReply *r = NULL;
        if (l2io_get_reply(io, &r) != 0)
            goto fail;
        int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                 r->element[0]->type == REDIS_REPLY_STRING;
        /* an smessage published on a channel subscribed already, between
         * two of our commands, comes before the subscription counts: skip */
        int early = ok && strcmp(r->element[0]->str, "smessage") == 0;
        ok = ok && (early || strcmp(r->element[0]->str, "ssubscribe") == 0);
        if (!ok) /* a MOVED: the map changed under us */
            snprintf(why, whylen, "%s:%d: %s", l2io_host(io), l2io_port(io),
                     r->type == REDIS_REPLY_ERROR ? r->str : "SSUBSCRIBE refused");
        freeReplyObject(r);
        if (!ok) {
            l2io_free(io);
            return NULL;
        }
        n -= !early; /* one confirmation per channel */
    }
    l2io_set_timeout(io, s->cfg->coherence_window_ms);
    return io;
fail:
    snprintf(why, whylen, "%s", l2io_errstr(io));
    l2io_free(io);
    return NULL;
}

/* Loads the slot map and subscribes every bucket's channels on the master
 * serving them. Returns how many masters (sources) it subscribed on, with
 * their connections in s->src, or 0 with the reason logged. */
static int subscribe_cluster(subscriber *s)
{
    char why[700] = "";
    int16_t owner[KS_SLOTS];
    int at[KS_INVAL_BUCKETS], src_of[L2CLUSTER_MAX_NODES], master_of[COH_MAX_SOURCES];
    int n = 0;
    if (l2cluster_reload(s->cl) != L2_OK) {
        snprintf(why, sizeof why, "%s", l2cluster_error(s->cl));
        goto fail;
    }
    size_t masters = l2cluster_layout(s->cl, owner, s->urls, L2CLUSTER_MAX_NODES);
    for (size_t m = 0; m < L2CLUSTER_MAX_NODES; m++)
        src_of[m] = -1;
    for (int b = 0; b < KS_INVAL_BUCKETS; b++) {
        int m = owner[s->bslot[b]];
        if (m < 0 || (size_t)m >= masters) {
            snprintf(why, sizeof why, "no master serves slot %u", s->bslot[b]);
            goto fail;
        }
        if (src_of[m] < 0)
            master_of[n] = m, src_of[m] = n++; /* at most one per bucket */
        at[b] = src_of[m];
    }
    for (int i = 0; i < n; i++) {
        if (atomic_load(&s->stopping)) /* sub_destroy() cannot reach these yet */
            goto fail;
        if ((s->src[i].io = subscribe_master(s, master_of[i], i, at, why, sizeof why)) == NULL)
            goto fail;
    }
    return n;
fail:
    for (int i = 0; i < n; i++) {
        l2io_free(s->src[i].io);
        s->src[i].io = NULL;
    }
    if (s->failing++ == 0)
        log_warn("subscriber: cannot subscribe to the cluster's channels: %s (retrying)", why);
    else
        log_debug("subscriber: %s", why);
    return 0;
}

/* Loses the subscription as a whole (mu held): the first source to fail
 * stops L1 at once, the others stop delivering. */
static void lose_locked(subscriber *s)
{
    if (!s->lost)
        coh_lost(s->coh);
    s->lost = 1;
    pthread_cond_signal(&s->lost_cv);
}

static void *source_main(void *arg)
{
    sub_source *src = arg;
    subscriber *s = src->s;
    for (;;) {
        redisReply *r = NULL;
        int failed = l2io_get_reply(src->io, &r) != 0;
        pthread_mutex_lock(&s->mu);
        if (s->lost || atomic_load(&s->stopping)) {
            pthread_mutex_unlock(&s->mu);
            freeReplyObject(r);
            break;
        }
        if (failed) {
            log_warn("subscription to the cluster's channels on %s:%d lost: %s",
                     l2io_host(src->io), l2io_port(src->io),
                     l2io_timed_out(src->io) ? "silent past coherence_window"
                                             : l2io_errstr(src->io));
        } else if (deliver(s, r, src->index) != 0) {
            log_warn("subscription on %s:%d: unexpected reply (a slot moved?); subscribing again",
                     l2io_host(src->io), l2io_port(src->io));
            failed = 1;
        }
        if (failed)
            lose_locked(s);
        pthread_mutex_unlock(&s->mu);
        freeReplyObject(r);
        if (failed)
            break;
    }
    pthread_mutex_lock(&s->mu);
    lose_locked(s); /* the others stop too */
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Subscribes, starts a reader per master, and waits until one of them
 * loses its connection; then stops them all and begins again. */
static void *cluster_main(void *arg)
{
    subscriber *s = arg;
    backoff bo = backoff_make(RETRY_MAX_MS);
    while (!atomic_load(&s->stopping)) {
        int n = subscribe_cluster(s);
        if (n == 0) {
            sleep_backoff(&bo);
            continue;
        }
        backoff_reset(&bo);
        s->failing = 0;
        pthread_mutex_lock(&s->mu);
        s->nsrc = n;
        s->lost = 0;
        coh_subscribed_to(s->coh, n);
        for (int i = 0; i < n; i++) {
            s->src[i].s = s;
            s->src[i].index = i;
            s->src[i].started =
                pthread_create(&s->src[i].thread, NULL, source_main, &s->src[i]) == 0;
            if (!s->src[i].started)
                lose_locked(s);
        }
        log_info("subscribed to the cluster's %d channels on %d masters; L1 emptied, serving "
                 "from it again once caught up on every one",
                 KS_INVAL_BUCKETS, n);
        while (!s->lost && !atomic_load(&s->stopping))
            pthread_cond_wait(&s->lost_cv, &s->mu);
        lose_locked(s);
        for (int i = 0; i < n; i++)
            shutdown(l2io_fd(s->src[i].io), SHUT_RDWR); /* wakes its reader */
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < n; i++)
            if (s->src[i].started)
                pthread_join(s->src[i].thread, NULL);
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < n; i++) {
            l2io_free(s->src[i].io);
            s->src[i].io = NULL;
            s->src[i].started = 0;
        }
        s->nsrc = 0;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* A Cluster's parts: the map's handle and every bucket's channels. */
static int setup_cluster(subscriber *s, const char *prefix, const char *node_id)
{
    unsigned n_of[KS_INVAL_BUCKETS];
    if (l2cluster_create(&s->cl, &s->url, s->cfg->redis_timeout_ms, "subscriber") != 0 ||
        (s->urls = calloc(L2CLUSTER_MAX_NODES, sizeof *s->urls)) == NULL ||
        (s->chans = calloc(KS_INVAL_BUCKETS, sizeof *s->chans)) == NULL)
        return ENOMEM;
    ks_inval_tags(prefix, n_of);
    for (int b = 0; b < KS_INVAL_BUCKETS; b++) {
        int len = ks_inval_channel(s->chans[b][0], sizeof s->chans[b][0], prefix, n_of[b], NULL);
        ks_inval_channel(s->chans[b][1], sizeof s->chans[b][1], prefix, n_of[b], node_id);
        s->bslot[b] = ks_slot(s->chans[b][0], (size_t)len);
    }
    return 0;
}

int sub_create(subscriber **out, const config *cfg, const config_redis_url *url,
               const char *prefix, const char *node_id, coh *c)
{
    subscriber *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ENOMEM;
    s->cfg = cfg;
    s->url = *url;
    ks_channel(s->channel, sizeof s->channel, prefix);
    ks_own_channel(s->own, sizeof s->own, prefix, node_id);
    s->coh = c;
    pthread_mutex_init(&s->mu, NULL);
    units_cond_init(&s->lost_cv);
    if (url->nseeds > 0) {
        int rv = setup_cluster(s, prefix, node_id);
        if (rv != 0) {
            sub_destroy(s);
            return rv;
        }
    }
    int rv = pthread_create(&s->reader, NULL, s->cl != NULL ? cluster_main : reader_main, s);
    s->reader_started = rv == 0;
    if (rv != 0) {
        sub_destroy(s);
        return rv;
    }
    *out = s;
    return 0;
}

void sub_destroy(subscriber *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stopping, 1);
    if (s->io != NULL)
        shutdown(l2io_fd(s->io), SHUT_RDWR); /* wakes the reader */
    for (int i = 0; i < s->nsrc; i++)
        if (s->src[i].io != NULL)
            shutdown(l2io_fd(s->src[i].io), SHUT_RDWR);
    pthread_cond_broadcast(&s->lost_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->reader_started)
        pthread_join(s->reader, NULL);
    l2cluster_destroy(s->cl);
    free(s->urls);
    free(s->chans);
    pthread_cond_destroy(&s->lost_cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
