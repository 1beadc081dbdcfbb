/* The invalidation channel's reader; see subscriber.h. It blocks in
 * l2io_get_reply() with a read timeout of coherence_window; sub_destroy()
 * wakes it by shutting its socket down. */
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
#include "l2conn.h"
#include "log.h"
#include "units.h"

#define RETRY_MAX_MS 2000 /* a lost subscription is missed L1: retry sooner */

struct subscriber {
    const config *cfg;
    config_redis_url url;
    char channel[KS_CHANNEL_SIZE];
    char own[KS_OWN_CHANNEL_SIZE]; /* this node's heartbeats to itself */
    coh *coh;
    atomic_int stopping;
    pthread_mutex_t mu; /* guards io (for sub_destroy) */
    l2io *io;
    pthread_t reader;
    int reader_started;
    int failing; /* subscribe attempts failed in a row (reader thread only) */
};

/* On a Cluster, a refusal "MOVED SLOT HOST:PORT": the channels' master is
 * HOST:PORT. Dials it instead (as a one-node cluster URL). Returns the new
 * connection or NULL (err set). */
static l2io *dial_moved(subscriber *s, const char *moved, char *err, size_t errlen)
{
    const char *addr = strchr(moved + 6, ' '), *colon = addr ? strrchr(addr, ':') : NULL;
    if (colon == NULL) {
        snprintf(err, errlen, "unreadable redirection: %s", moved);
        return NULL;
    }
    config_redis_url at = s->url;
    at.nseeds = 1;
    snprintf(at.seeds[0].host, sizeof at.seeds[0].host, "%.*s", (int)(colon - addr - 1), addr + 1);
    at.seeds[0].port = atoi(colon + 1);
    return l2conn_dial(&at, s->cfg->redis_timeout_ms, err, errlen);
}

/* Connects as every connection does (l2conn_dial: AUTH and SELECT as the URL
 * asks; pub/sub ignores the database) and subscribes: on a Cluster with
 * SSUBSCRIBE, on the master of the channels' slot (every message of them is
 * then ordered by that one server). Returns the connection, or NULL with
 * the reason logged. */
static l2io *subscribe(subscriber *s)
{
    char err[600];
    int sharded = s->url.nseeds > 0;
    const char *argv[] = {sharded ? "SSUBSCRIBE" : "SUBSCRIBE", s->channel, s->own};
    l2io *io = l2conn_dial(&s->url, s->cfg->redis_timeout_ms, err, sizeof err);
    const char *why = io == NULL ? err : NULL;
    if (why == NULL) {
        redisReply *r = l2io_command(io, 3, argv, NULL);
        if (sharded && r != NULL && r->type == REDIS_REPLY_ERROR &&
            strncmp(r->str, "MOVED ", 6) == 0) {
            l2io_free(io);
            io = dial_moved(s, r->str, err, sizeof err);
            freeReplyObject(r);
            r = io != NULL ? l2io_command(io, 3, argv, NULL) : NULL;
            why = io == NULL ? err : NULL;
        }
        if (why == NULL)
            why = r == NULL ? l2io_errstr(io)
                  : r->type != REDIS_REPLY_ARRAY ? sharded ? "SSUBSCRIBE refused" : "SUBSCRIBE refused"
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
static int deliver(subscriber *s, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
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
        int bad = deliver(s, r);
        freeReplyObject(r);
        if (bad) {
            log_warn("subscription to %s: unexpected reply; subscribing again", s->channel);
            return;
        }
    }
}

static void *reader_main(void *arg)
{
    subscriber *s = arg;
    backoff bo = backoff_make(RETRY_MAX_MS);
    while (!atomic_load(&s->stopping)) {
        l2io *io = subscribe(s);
        if (io == NULL) {
            int64_t retry_ms = backoff_fail(&bo);
            struct timespec ts = {.tv_sec = retry_ms / 1000,
                                  .tv_nsec = (retry_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
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

int sub_create(subscriber **out, const config *cfg, const config_redis_url *url,
               const char *channel, const char *own_channel, coh *c)
{
    subscriber *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ENOMEM;
    s->cfg = cfg;
    s->url = *url;
    snprintf(s->channel, sizeof s->channel, "%s", channel);
    snprintf(s->own, sizeof s->own, "%s", own_channel);
    s->coh = c;
    pthread_mutex_init(&s->mu, NULL);
    int rv = pthread_create(&s->reader, NULL, reader_main, s);
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
    pthread_mutex_unlock(&s->mu);
    if (s->reader_started)
        pthread_join(s->reader, NULL);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
