/* One Redis connection with reconnect and backoff; see l2conn.h.
 * Invariant: c->ctx is NULL or a connection that has answered every command
 * sent on it (a timed-out or broken connection is freed at once, because a
 * blocking hiredis context cannot tell a late answer from the next one). */
#include "l2conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "units.h"

struct l2conn {
    config_redis_url url;
    char name[32];
    char where[300]; /* "host:port" or the socket path, for messages */
    int64_t connect_timeout_ms;
    redisContext *ctx;
    int64_t cur_timeout_ms;      /* what redisSetTimeout last set on ctx */
    int64_t retry_at;            /* no connect attempt before this time */
    int64_t down_since;          /* when the backoff began */
    _Atomic int64_t *peer_up_at; /* the sharer's (share_up): when any handle last connected */
    atomic_size_t *up_count;     /* the sharer's: how many handles are connected */
    int counted;                 /* this one is in *up_count */
    backoff backoff;
    int was_up;     /* -1 unknown, 0 down, 1 up: to log transitions only */
    int maybe_sent; /* the last command reached the socket: it may have run */
    l2conn_setup_fn setup;
    void *setup_arg;
    hist *rtt; /* each command's round trip, or NULL */
    char err[640];
};

static struct timeval ms_to_tv(int64_t ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

static void describe(const config_redis_url *url, char *where, size_t size)
{
    if (url->is_unix)
        snprintf(where, size, "%s", url->host);
    else
        snprintf(where, size, "%s:%d", url->host, url->port);
}

int l2conn_create(l2conn **out, const config_redis_url *url, int64_t connect_timeout_ms,
                  const char *name)
{
    l2conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ENOMEM;
    c->url = *url;
    snprintf(c->name, sizeof c->name, "%s", name);
    describe(url, c->where, sizeof c->where);
    c->connect_timeout_ms = connect_timeout_ms;
    c->backoff = backoff_make(BACKOFF_MAX_MS);
    c->was_up = -1;
    *out = c;
    return 0;
}

/* Drops the connection; the next command may reconnect at once when
 * `retry_now`, else after the backoff. */
static void drop(l2conn *c, int retry_now)
{
    if (c->ctx != NULL) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    if (c->counted && c->up_count != NULL)
        atomic_fetch_sub(c->up_count, 1);
    c->counted = 0;
    if (retry_now) {
        c->retry_at = 0;
        return;
    }
    c->down_since = units_now_ms();
    c->retry_at = c->down_since + backoff_fail(&c->backoff);
}

void l2conn_share_up(l2conn *c, _Atomic int64_t *up_at, atomic_size_t *up_count)
{
    c->peer_up_at = up_at;
    c->up_count = up_count;
}

void l2conn_set_setup(l2conn *c, l2conn_setup_fn fn, void *arg)
{
    c->setup = fn;
    c->setup_arg = arg;
}

void l2conn_destroy(l2conn *c)
{
    if (c == NULL)
        return;
    drop(c, 1);
    free(c);
}

void l2conn_set_timing(l2conn *c, hist *rtt)
{
    c->rtt = rtt;
}

void l2conn_retry_now(l2conn *c)
{
    c->retry_at = 0;
}

int l2conn_maybe_ran(const l2conn *c)
{
    return c->maybe_sent;
}

int l2conn_connected(const l2conn *c)
{
    return c->ctx != NULL;
}

const char *l2conn_error(const l2conn *c)
{
    return c->err;
}

l2_status l2conn_set_error(l2conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return L2_EREPLY;
}

/* Sends one command and reads its reply, honouring timeout_ms. On an I/O
 * error or a timeout the connection is dropped and NULL returned with
 * c->err set; *status says which. */
static redisReply *command(l2conn *c, int64_t timeout_ms, l2_status *status, int argc,
                           const char **argv, const size_t *lens)
{
    if (timeout_ms != c->cur_timeout_ms) {
        redisSetTimeout(c->ctx, ms_to_tv(timeout_ms));
        c->cur_timeout_ms = timeout_ms;
    }
    c->maybe_sent = 1;
    int64_t t0 = c->rtt != NULL ? hist_now_us() : 0;
    redisReply *r = redisCommandArgv(c->ctx, argc, argv, lens);
    if (c->rtt != NULL) {
        int64_t us = hist_now_us() - t0;
        hist_record(c->rtt, us > 0 ? (uint64_t)us : 0);
    }
    if (r != NULL) {
        c->maybe_sent = 0; /* Redis answered: the outcome is known */
        return r;
    }
    int timed_out = c->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    snprintf(c->err, sizeof c->err, "redis %s: %s", c->where,
             timed_out ? "timed out" : c->ctx->errstr);
    *status = timed_out ? L2_ETIMEOUT : L2_EDOWN;
    log_warn("%s: %s; reconnecting", c->name, c->err);
    drop(c, timed_out);
    return NULL;
}

redisReply *l2conn_call(l2conn *c, int64_t timeout_ms, l2_status *status, int argc,
                        const char **argv, const size_t *lens)
{
    if (c->ctx == NULL) {
        *status = L2_EDOWN;
        return NULL;
    }
    return command(c, timeout_ms > 0 ? timeout_ms : c->connect_timeout_ms, status, argc, argv,
                   lens);
}

/* Runs one command of a dial's handshake; returns 0 when Redis accepted it. */
static int dial_command(redisContext *ctx, const char *where, int argc, const char **argv,
                        char *err, size_t errlen)
{
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
    if (r == NULL)
        snprintf(err, errlen, "redis %s: %s: %s", where, argv[0], ctx->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, errlen, "redis %s: %s failed: %s", where, argv[0], r->str);
    int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    if (r != NULL)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

redisContext *l2conn_dial(const config_redis_url *url, int64_t timeout_ms, char *err,
                          size_t errlen)
{
    char where[300], db[16];
    describe(url, where, sizeof where);
    struct timeval tv = ms_to_tv(timeout_ms);
    redisContext *ctx = url->is_unix ? redisConnectUnixWithTimeout(url->host, tv)
                                     : redisConnectWithTimeout(url->host, url->port, tv);
    if (ctx == NULL || ctx->err != 0) {
        snprintf(err, errlen, "redis %s: connect: %s", where,
                 ctx != NULL ? ctx->errstr : "out of memory");
        if (ctx != NULL)
            redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    if (!url->is_unix)
        redisEnableKeepAlive(ctx);
    snprintf(db, sizeof db, "%d", url->db);
    const char *auth[] = {"AUTH", url->password};
    const char *sel[] = {"SELECT", db};
    if ((url->password[0] != '\0' && dial_command(ctx, where, 2, auth, err, errlen) != 0) ||
        (url->db != 0 && dial_command(ctx, where, 2, sel, err, errlen) != 0)) {
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

l2_status l2conn_connect(l2conn *c, int64_t now)
{
    if (c->ctx != NULL)
        return L2_OK;
    /* Inside the backoff, unless another handle got through since it began:
     * Redis is back, and this handle should not sit it out. */
    int peer_up = c->peer_up_at != NULL && atomic_load(c->peer_up_at) > c->down_since;
    if (now < c->retry_at && !peer_up) {
        snprintf(c->err, sizeof c->err, "redis %s is unreachable (retrying)", c->where);
        return L2_EDOWN;
    }
    c->ctx = l2conn_dial(&c->url, c->connect_timeout_ms, c->err, sizeof c->err);
    if (c->ctx == NULL) {
        if (c->was_up != 0)
            log_warn("%s: %s", c->name, c->err);
        c->was_up = 0;
        drop(c, 0);
        return L2_EDOWN;
    }
    c->cur_timeout_ms = c->connect_timeout_ms;
    if (c->setup != NULL && c->setup(c->setup_arg, c) != 0) {
        log_warn("%s: %s", c->name, c->err);
        if (c->ctx != NULL)
            drop(c, 0);
        c->was_up = 0;
        return L2_EDOWN;
    }
    c->maybe_sent = 0; /* the handshake's commands do not count */
    if (c->peer_up_at != NULL)
        atomic_store(c->peer_up_at, units_now_ms());
    if (c->up_count != NULL) /* before the command that needed it is answered */
        atomic_fetch_add(c->up_count, 1);
    c->counted = 1;
    if (c->was_up != 1)
        log_info("%s: connected to redis %s", c->name, c->where);
    c->was_up = 1;
    backoff_reset(&c->backoff);
    return L2_OK;
}

redisReply *l2conn_run(l2conn *c, int64_t timeout_ms, int once, l2_status *status, int argc,
                       const char **argv, const size_t *lens)
{
    int reused = c->ctx != NULL && !once;
    c->maybe_sent = 0;
    if ((*status = l2conn_connect(c, units_now_ms())) != L2_OK)
        return NULL;
    redisReply *r = command(c, timeout_ms, status, argc, argv, lens);
    if (r == NULL && *status == L2_EDOWN && reused) {
        c->retry_at = 0;
        if ((*status = l2conn_connect(c, units_now_ms())) != L2_OK)
            return NULL;
        r = command(c, timeout_ms, status, argc, argv, lens);
    }
    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        snprintf(c->err, sizeof c->err, "redis: %s", r->str);
        freeReplyObject(r);
        *status = L2_EREPLY;
        return NULL;
    }
    return r;
}

l2_status l2conn_ping(l2conn *c, int64_t timeout_ms)
{
    if (c->ctx == NULL)
        return l2conn_connect(c, units_now_ms());
    const char *argv[] = {"PING"};
    l2_status status;
    redisReply *r = command(c, timeout_ms, &status, 1, argv, NULL);
    if (r == NULL)
        return status;
    freeReplyObject(r);
    return L2_OK;
}
