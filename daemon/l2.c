/* One Redis connection with reconnect and backoff; see l2.h.
 * Invariant: c->ctx is NULL or a connection that has answered every command
 * sent on it (a timed-out or broken connection is freed at once, because a
 * blocking hiredis context cannot tell a late answer from the next one). */
#include "l2.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "units.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* GET and PTTL of KEYS[1] in one atomic step. */
static const char get_script[] = "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";

struct l2 {
    config_redis_url url;
    char name[32];
    char where[300]; /* "host:port" or the socket path, for messages */
    int64_t connect_timeout_ms;
    redisContext *ctx;
    int64_t cur_timeout_ms; /* what redisSetTimeout last set on ctx */
    int64_t retry_at;       /* no connect attempt before this time */
    int64_t backoff_ms;
    int was_up; /* -1 unknown, 0 down, 1 up: to log transitions only */
    char get_sha[41];
    char err[640];
};

static struct timeval ms_to_tv(int64_t ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

int l2_open(l2 **out, const config_redis_url *url, int64_t connect_timeout_ms, const char *name)
{
    l2 *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ENOMEM;
    c->url = *url;
    snprintf(c->name, sizeof c->name, "%s", name);
    if (url->is_unix)
        snprintf(c->where, sizeof c->where, "%s", url->host);
    else
        snprintf(c->where, sizeof c->where, "%s:%d", url->host, url->port);
    c->connect_timeout_ms = connect_timeout_ms;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->was_up = -1;
    *out = c;
    return 0;
}

/* Drops the connection; the next command may reconnect at once when
 * `retry_now`, else after the backoff. */
static void drop(l2 *c, int retry_now)
{
    if (c->ctx != NULL) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    if (retry_now) {
        c->retry_at = 0;
        return;
    }
    c->retry_at = units_now_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

void l2_close(l2 *c)
{
    if (c == NULL)
        return;
    if (c->ctx != NULL)
        redisFree(c->ctx);
    free(c);
}

void l2_retry_now(l2 *c)
{
    c->retry_at = 0;
}

int l2_connected(const l2 *c)
{
    return c->ctx != NULL;
}

const char *l2_error(const l2 *c)
{
    return c->err;
}

/* Sends one command and reads its reply, honouring timeout_ms. On an I/O
 * error or a timeout the connection is dropped and NULL returned with
 * c->err set; *status says which. */
static redisReply *command(l2 *c, int64_t timeout_ms, int *status, int argc, const char **argv,
                           const size_t *lens)
{
    if (timeout_ms != c->cur_timeout_ms) {
        redisSetTimeout(c->ctx, ms_to_tv(timeout_ms));
        c->cur_timeout_ms = timeout_ms;
    }
    redisReply *r = redisCommandArgv(c->ctx, argc, argv, lens);
    if (r != NULL)
        return r;
    int timed_out = c->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    snprintf(c->err, sizeof c->err, "redis %s: %s", c->where,
             timed_out ? "timed out" : c->ctx->errstr);
    *status = timed_out ? L2_ETIMEOUT : L2_EDOWN;
    log_warn("%s: %s; reconnecting", c->name, c->err);
    drop(c, timed_out);
    return NULL;
}

/* Runs a setup command on a fresh connection; returns 0 when it succeeded. */
static int setup_command(l2 *c, int argc, const char **argv, const size_t *lens, redisReply **keep)
{
    int status;
    redisReply *r = command(c, c->connect_timeout_ms, &status, argc, argv, lens);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(c->err, sizeof c->err, "redis %s: %s failed: %s", c->where, argv[0], r->str);
        freeReplyObject(r);
        drop(c, 0);
        return -1;
    }
    if (keep != NULL)
        *keep = r;
    else
        freeReplyObject(r);
    return 0;
}

/* AUTH, SELECT and SCRIPT LOAD on a new connection. Returns 0 or -1. */
static int handshake(l2 *c)
{
    char db[16];
    snprintf(db, sizeof db, "%d", c->url.db);
    const char *auth[] = {"AUTH", c->url.password};
    const char *sel[] = {"SELECT", db};
    const char *load[] = {"SCRIPT", "LOAD", get_script};
    redisReply *sha = NULL;
    if (c->url.password[0] != '\0' && setup_command(c, 2, auth, NULL, NULL) != 0)
        return -1;
    if (c->url.db != 0 && setup_command(c, 2, sel, NULL, NULL) != 0)
        return -1;
    if (setup_command(c, 3, load, NULL, &sha) != 0)
        return -1;
    snprintf(c->get_sha, sizeof c->get_sha, "%s", sha->type == REDIS_REPLY_STRING ? sha->str : "");
    freeReplyObject(sha);
    return 0;
}

int l2_connect(l2 *c, int64_t now)
{
    if (c->ctx != NULL)
        return L2_OK;
    if (now < c->retry_at) {
        snprintf(c->err, sizeof c->err, "redis %s is unreachable (retrying)", c->where);
        return L2_EDOWN;
    }
    struct timeval tv = ms_to_tv(c->connect_timeout_ms);
    c->ctx = c->url.is_unix ? redisConnectUnixWithTimeout(c->url.host, tv)
                            : redisConnectWithTimeout(c->url.host, c->url.port, tv);
    if (c->ctx == NULL || c->ctx->err != 0) {
        snprintf(c->err, sizeof c->err, "redis %s: connect: %s", c->where,
                 c->ctx != NULL ? c->ctx->errstr : "out of memory");
        if (c->was_up != 0)
            log_warn("%s: %s", c->name, c->err);
        c->was_up = 0;
        drop(c, 0);
        return L2_EDOWN;
    }
    c->cur_timeout_ms = -1;
    if (!c->url.is_unix)
        redisEnableKeepAlive(c->ctx);
    if (handshake(c) != 0) {
        log_warn("%s: %s", c->name, c->err);
        c->was_up = 0;
        return L2_EDOWN;
    }
    if (c->was_up != 1)
        log_info("%s: connected to redis %s", c->name, c->where);
    c->was_up = 1;
    c->backoff_ms = BACKOFF_MIN_MS;
    return L2_OK;
}

/* Connects if needed, then runs the command. A connection that was already
 * open may have died since its last use (Redis restarted): on an I/O error
 * there, it reconnects at once and tries once more; every command here is
 * idempotent. Returns the reply (caller frees) or NULL with *status set; an
 * error reply is NULL with L2_EREPLY. */
static redisReply *run(l2 *c, int64_t timeout_ms, int *status, int argc, const char **argv,
                       const size_t *lens)
{
    int reused = c->ctx != NULL;
    if ((*status = l2_connect(c, units_now_ms())) != L2_OK)
        return NULL;
    redisReply *r = command(c, timeout_ms, status, argc, argv, lens);
    if (r == NULL && *status == L2_EDOWN && reused) {
        c->retry_at = 0;
        if ((*status = l2_connect(c, units_now_ms())) != L2_OK)
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

int l2_ping(l2 *c, int64_t timeout_ms)
{
    if (c->ctx == NULL)
        return l2_connect(c, units_now_ms());
    const char *argv[] = {"PING"};
    int status;
    redisReply *r = command(c, timeout_ms, &status, 1, argv, NULL);
    if (r == NULL)
        return status;
    freeReplyObject(r);
    return L2_OK;
}

int l2_get(l2 *c, const void *key, size_t klen, int64_t timeout_ms, l2_value *out)
{
    const char *argv[] = {"EVALSHA", c->get_sha, "1", key};
    size_t lens[] = {7, strlen(c->get_sha), 1, klen};
    int status;
    redisReply *r = run(c, timeout_ms, &status, 4, argv, lens);
    if (r == NULL && status == L2_EREPLY && strncmp(c->err, "redis: NOSCRIPT", 15) == 0) {
        argv[0] = "EVAL", lens[0] = 4; /* script cache flushed: send the text */
        argv[1] = get_script, lens[1] = strlen(get_script);
        r = run(c, timeout_ms, &status, 4, argv, lens);
    }
    if (r == NULL)
        return status;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_INTEGER) {
        snprintf(c->err, sizeof c->err, "redis: unexpected reply to GET script");
        freeReplyObject(r);
        return L2_EREPLY;
    }
    if (r->element[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return L2_NIL;
    }
    out->data = r->element[0]->str;
    out->len = r->element[0]->len;
    out->pttl_ms = r->element[1]->integer;
    out->reply_ = r;
    return L2_OK;
}

int l2_set(l2 *c, const void *key, size_t klen, const void *value, size_t vlen, int64_t ttl_ms,
           int64_t timeout_ms)
{
    char px[24];
    int pxlen = snprintf(px, sizeof px, "%lld", (long long)ttl_ms);
    const char *argv[] = {"SET", key, value, "PX", px};
    size_t lens[] = {3, klen, vlen, 2, (size_t)pxlen};
    int status;
    redisReply *r = run(c, timeout_ms, &status, 5, argv, lens);
    if (r == NULL)
        return status;
    freeReplyObject(r);
    return L2_OK;
}

int l2_del(l2 *c, const void *key, size_t klen, int64_t timeout_ms, int *existed)
{
    const char *argv[] = {"DEL", key};
    size_t lens[] = {3, klen};
    int status;
    redisReply *r = run(c, timeout_ms, &status, 2, argv, lens);
    if (r == NULL)
        return status;
    *existed = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    return L2_OK;
}

void l2_value_free(l2_value *v)
{
    if (v->reply_ != NULL)
        freeReplyObject(v->reply_);
    memset(v, 0, sizeof *v);
}
