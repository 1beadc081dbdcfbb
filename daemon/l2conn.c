/* One Redis connection with reconnect and backoff, found through Sentinel
 * when the URL says so; see l2conn.h.
 * Invariant: c->io is NULL or a connection that has answered every command
 * sent on it (a timed-out or broken connection is freed at once, because a
 * blocking connection cannot tell a late answer from the next one). */
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
    char where[420]; /* "host:port", the socket path or the master, for messages */
    int64_t connect_timeout_ms;
    l2io *io;
    int64_t cur_timeout_ms;      /* what l2io_set_timeout last set on io */
    int64_t retry_at;            /* no connect attempt before this time */
    int64_t down_since;          /* when the backoff began */
    l2conn_shared *shared; /* the pool's, or NULL */
    int counted;           /* this one is in shared->up_count */
    backoff backoff;
    int was_up;     /* -1 unknown, 0 down, 1 up: to log transitions only */
    int maybe_sent; /* the last command reached the socket: it may have run */
    l2conn_setup_fn setup;
    void *setup_arg;
    hist *rtt; /* each command's round trip, or NULL */
    char err[640];
};

static void describe(const config_redis_url *url, char *where, size_t size)
{
    if (url->is_unix)
        snprintf(where, size, "%s", url->host);
    else if (url->nsentinels > 0 && url->host[0] == '\0')
        snprintf(where, size, "master %s", url->master);
    else if (url->nsentinels > 0)
        snprintf(where, size, "%s:%d (master %s)", url->host, url->port, url->master);
    else
        snprintf(where, size, "%s:%d", url->host, url->port);
}

void l2conn_shared_init(l2conn_shared *sh)
{
    memset(sh, 0, sizeof *sh);
    pthread_mutex_init(&sh->mu, NULL);
}

void l2conn_shared_destroy(l2conn_shared *sh)
{
    pthread_mutex_destroy(&sh->mu);
}

size_t l2conn_shared_up(l2conn_shared *sh)
{
    return atomic_load(&sh->up_count);
}

void l2conn_shared_error(l2conn_shared *sh, char *buf, size_t size)
{
    pthread_mutex_lock(&sh->mu);
    snprintf(buf, size, "%s", sh->last_error);
    pthread_mutex_unlock(&sh->mu);
}

static void shared_set_error(l2conn_shared *sh, const char *text)
{
    if (sh == NULL)
        return;
    pthread_mutex_lock(&sh->mu);
    snprintf(sh->last_error, sizeof sh->last_error, "%s", text);
    pthread_mutex_unlock(&sh->mu);
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
    l2io_free(c->io);
    c->io = NULL;
    if (c->counted && c->shared != NULL)
        atomic_fetch_sub(&c->shared->up_count, 1);
    c->counted = 0;
    if (retry_now) {
        c->retry_at = 0;
        return;
    }
    c->down_since = units_now_ms();
    c->retry_at = c->down_since + backoff_fail(&c->backoff);
}

void l2conn_share(l2conn *c, l2conn_shared *sh)
{
    c->shared = sh;
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
    return c->io != NULL;
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
        l2io_set_timeout(c->io, timeout_ms);
        c->cur_timeout_ms = timeout_ms;
    }
    c->maybe_sent = 1;
    int64_t t0 = c->rtt != NULL ? hist_now_us() : 0;
    redisReply *r = l2io_command(c->io, argc, argv, lens);
    if (c->rtt != NULL) {
        int64_t us = hist_now_us() - t0;
        hist_record(c->rtt, us > 0 ? (uint64_t)us : 0);
    }
    if (r != NULL) {
        c->maybe_sent = 0; /* Redis answered: the outcome is known */
        return r;
    }
    int timed_out = l2io_timed_out(c->io);
    snprintf(c->err, sizeof c->err, "redis %s: %s", c->where,
             timed_out ? "timed out" : l2io_errstr(c->io));
    *status = timed_out ? L2_ETIMEOUT : L2_EDOWN;
    log_warn("%s: %s; reconnecting", c->name, c->err);
    drop(c, timed_out);
    return NULL;
}

redisReply *l2conn_call(l2conn *c, int64_t timeout_ms, l2_status *status, int argc,
                        const char **argv, const size_t *lens)
{
    if (c->io == NULL) {
        *status = L2_EDOWN;
        return NULL;
    }
    return command(c, timeout_ms > 0 ? timeout_ms : c->connect_timeout_ms, status, argc, argv,
                   lens);
}

/* Runs one command of a dial's handshake; returns 0 when Redis accepted it. */
static int dial_command(l2io *io, const char *where, int argc, const char **argv, char *err,
                        size_t errlen)
{
    redisReply *r = l2io_command(io, argc, argv, NULL);
    if (r == NULL)
        snprintf(err, errlen, "redis %s: %s: %s", where, argv[0], l2io_errstr(io));
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, errlen, "redis %s: %s failed: %s", where, argv[0], r->str);
    int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    if (r != NULL)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

/* Connects to host:port as url says (plain or TLS), or says why in err,
 * after "redis WHERE: " unless `where` is NULL. */
static l2io *dial_one(const config_redis_url *url, const char *host, int port, const char *where,
                      int64_t timeout_ms, char *err, size_t errlen)
{
    char why[400];
    l2io *io = NULL;
    if (url->tls && url->tls_ctx == NULL)
        snprintf(why, sizeof why, "TLS is not set up");
    else if (l2io_connect(&io, host, port, url->is_unix, url->tls ? url->tls_ctx : NULL,
                          timeout_ms, why, sizeof why) == 0)
        return io;
    if (where != NULL)
        snprintf(err, errlen, "redis %s: %s", where, why);
    else
        snprintf(err, errlen, "%s", why);
    return NULL;
}

/* AUTH as url says: "AUTH password", or "AUTH user password" with a user. */
static int dial_auth(l2io *io, const char *where, const char *user, const char *password,
                     char *err, size_t errlen)
{
    if (password[0] == '\0')
        return 0;
    const char *argv[] = {"AUTH", user, password};
    if (user[0] == '\0')
        argv[1] = password;
    return dial_command(io, where, user[0] != '\0' ? 3 : 2, argv, err, errlen);
}

/* Connects to one server and runs AUTH and SELECT as url asks. */
static l2io *dial_server(const config_redis_url *url, int64_t timeout_ms, char *err,
                         size_t errlen)
{
    char where[400], db[16];
    describe(url, where, sizeof where);
    l2io *io = dial_one(url, url->host, url->port, where, timeout_ms, err, errlen);
    if (io == NULL)
        return NULL;
    snprintf(db, sizeof db, "%d", url->db);
    const char *sel[] = {"SELECT", db}, *ping[] = {"PING"};
    /* In TLS 1.3 a server that refuses our certificate says so after the
     * handshake: one round trip on every new connection finds out. */
    int checked = url->password[0] != '\0' || url->db != 0;
    if (dial_auth(io, where, url->user, url->password, err, errlen) != 0 ||
        (url->db != 0 && dial_command(io, where, 2, sel, err, errlen) != 0) ||
        (url->tls && !checked && dial_command(io, where, 1, ping, err, errlen) != 0)) {
        l2io_free(io);
        return NULL;
    }
    return io;
}

/* Sentinel resolution, after the Redis "Sentinel clients" guidelines. */
#define SENTINEL_TIMEOUT_MS 300

/* Asks one Sentinel for url->master. Returns 1 with the address in *out, 0
 * when it answered that it knows no such master, -1 when it did not answer
 * (the reason in why). */
static int ask_sentinel(const config_redis_url *url, const config_redis_addr *s,
                        int64_t timeout_ms, config_redis_addr *out, char *why, size_t whylen)
{
    int rv = -1;
    config_redis_url one = *url;
    one.is_unix = 0;
    l2io *io = dial_one(&one, s->host, s->port, NULL, timeout_ms, why, whylen);
    if (io == NULL)
        goto done;
    if (dial_auth(io, "Sentinel", "", url->sentinel_password, why, whylen) != 0)
        goto done;
    const char *ask[] = {"SENTINEL", "get-master-addr-by-name", url->master};
    redisReply *r = l2io_command(io, 3, ask, NULL);
    if (r == NULL) {
        snprintf(why, whylen, "%s", l2io_errstr(io));
    } else if (r->type == REDIS_REPLY_NIL) {
        snprintf(why, whylen, "knows no such master");
        rv = 0;
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "%s", r->str);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[1]->type != REDIS_REPLY_STRING ||
               r->element[0]->len >= sizeof out->host || atoi(r->element[1]->str) <= 0) {
        snprintf(why, whylen, "unexpected reply to SENTINEL get-master-addr-by-name");
    } else {
        snprintf(out->host, sizeof out->host, "%s", r->element[0]->str);
        out->port = atoi(r->element[1]->str);
        rv = 1;
    }
    if (r != NULL)
        freeReplyObject(r);
done:
    l2io_free(io);
    return rv;
}

/* Asks url's Sentinels in turn; the first to give an address moves to the
 * front. Returns 0 with it in *out, or -1 with err saying whether no
 * Sentinel answered or those that did know no such master. */
static int resolve(config_redis_url *url, int64_t timeout_ms, config_redis_addr *out, char *err,
                   size_t errlen)
{
    char tried[600] = "", why[200];
    size_t used = 0;
    int unknown = 0;
    int64_t t = timeout_ms < SENTINEL_TIMEOUT_MS ? timeout_ms : SENTINEL_TIMEOUT_MS;
    for (int i = 0; i < url->nsentinels; i++) {
        config_redis_addr s = url->sentinels[i];
        int rv = ask_sentinel(url, &s, t, out, why, sizeof why);
        if (rv == 1) {
            memmove(&url->sentinels[1], &url->sentinels[0], sizeof s * (size_t)i);
            url->sentinels[0] = s;
            return 0;
        }
        unknown += rv == 0;
        if (used < sizeof tried)
            used += (size_t)snprintf(tried + used, sizeof tried - used, "%s%s:%d: %s",
                                     i > 0 ? "; " : "", s.host, s.port, why);
    }
    if (unknown > 0)
        snprintf(err, errlen, "redis master %s: no Sentinel knows a master named \"%s\" (%s)",
                 url->master, url->master, tried);
    else
        snprintf(err, errlen, "redis master %s: no Sentinel answers (%s)", url->master, tried);
    return -1;
}

/* Whether io's server says it is a master (ROLE). Returns 0, or -1 with
 * err set. */
static int check_master(l2io *io, const char *where, char *err, size_t errlen)
{
    const char *role[] = {"ROLE"};
    redisReply *r = l2io_command(io, 1, role, NULL);
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
    if (r == NULL)
        snprintf(err, errlen, "redis %s: ROLE: %s", where, l2io_errstr(io));
    else if (!ok)
        snprintf(err, errlen,
                 "redis %s: the Sentinels name it, but ROLE says it is %s, not a master "
                 "(a failover under way?)",
                 where,
                 r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                         r->element[0]->type == REDIS_REPLY_STRING
                     ? r->element[0]->str
                     : r->type == REDIS_REPLY_ERROR ? r->str : "something else");
    if (r != NULL)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

/* Dials the nodes of a cluster:// URL in turn; the first that answers
 * moves to the front of url->seeds. Any node serves pub/sub (classic
 * PUBLISH reaches every node's subscribers over the cluster bus). */
static l2io *dial_any_node(config_redis_url *url, int64_t timeout_ms, char *err, size_t errlen)
{
    char tried[600] = "", why[300];
    size_t used = 0;
    for (int i = 0; i < url->nseeds; i++) {
        config_redis_url one = *url;
        config_redis_addr s = url->seeds[i];
        memcpy(one.host, s.host, sizeof one.host);
        one.port = s.port;
        l2io *io = dial_server(&one, timeout_ms, why, sizeof why);
        if (io != NULL) {
            memmove(&url->seeds[1], &url->seeds[0], sizeof s * (size_t)i);
            url->seeds[0] = s;
            memcpy(url->host, s.host, sizeof url->host);
            url->port = s.port;
            return io;
        }
        if (used < sizeof tried)
            used += (size_t)snprintf(tried + used, sizeof tried - used, "%s%s", i > 0 ? "; " : "",
                                     why);
    }
    snprintf(err, errlen, "redis cluster: no node answers (%s)", tried);
    return NULL;
}

l2io *l2conn_dial(config_redis_url *url, int64_t timeout_ms, char *err, size_t errlen)
{
    if (url->nseeds > 0)
        return dial_any_node(url, timeout_ms, err, errlen);
    if (url->nsentinels == 0)
        return dial_server(url, timeout_ms, err, errlen);
    config_redis_addr addr;
    if (resolve(url, timeout_ms, &addr, err, errlen) != 0)
        return NULL;
    config_redis_url master = *url;
    memcpy(master.host, addr.host, sizeof master.host);
    master.port = addr.port;
    l2io *io = dial_server(&master, timeout_ms, err, errlen);
    char where[400];
    describe(&master, where, sizeof where);
    if (io != NULL && check_master(io, where, err, errlen) != 0) {
        l2io_free(io);
        return NULL;
    }
    return io;
}

l2_status l2conn_connect(l2conn *c, int64_t now)
{
    if (c->io != NULL)
        return L2_OK;
    /* Inside the backoff, unless another handle got through since it began:
     * Redis is back, and this handle should not sit it out. */
    int peer_up = c->shared != NULL && atomic_load(&c->shared->up_at) > c->down_since;
    if (now < c->retry_at && !peer_up) {
        snprintf(c->err, sizeof c->err, "redis %s is unreachable (retrying)", c->where);
        return L2_EDOWN;
    }
    c->io = l2conn_dial(&c->url, c->connect_timeout_ms, c->err, sizeof c->err);
    if (c->io == NULL) {
        if (c->was_up != 0)
            log_warn("%s: %s", c->name, c->err);
        shared_set_error(c->shared, c->err);
        c->was_up = 0;
        drop(c, 0);
        return L2_EDOWN;
    }
    if (c->url.nsentinels > 0 || c->url.nseeds > 0) { /* the server found this time */
        config_redis_url at = c->url;
        snprintf(at.host, sizeof at.host, "%s", l2io_host(c->io));
        at.port = l2io_port(c->io);
        describe(&at, c->where, sizeof c->where);
    }
    c->cur_timeout_ms = c->connect_timeout_ms;
    if (c->setup != NULL && c->setup(c->setup_arg, c) != 0) {
        log_warn("%s: %s", c->name, c->err);
        shared_set_error(c->shared, c->err);
        if (c->io != NULL)
            drop(c, 0);
        c->was_up = 0;
        return L2_EDOWN;
    }
    c->maybe_sent = 0; /* the handshake's commands do not count */
    if (c->shared != NULL) { /* before the command that needed it is answered */
        atomic_store(&c->shared->up_at, units_now_ms());
        atomic_fetch_add(&c->shared->up_count, 1);
        shared_set_error(c->shared, "");
    }
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
    int reused = c->io != NULL && !once;
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
        if (strncmp(r->str, "READONLY", 8) == 0) { /* a replica now: find the master again */
            log_warn("%s: redis %s is read-only (a failover?); reconnecting", c->name, c->where);
            drop(c, 1);
        }
        freeReplyObject(r);
        *status = L2_EREPLY;
        return NULL;
    }
    return r;
}

l2_status l2conn_ping(l2conn *c, int64_t timeout_ms)
{
    if (c->io == NULL)
        return l2conn_connect(c, units_now_ms());
    const char *argv[] = {"PING"};
    l2_status status;
    redisReply *r = command(c, timeout_ms, &status, 1, argv, NULL);
    if (r == NULL)
        return status;
    freeReplyObject(r);
    return L2_OK;
}
