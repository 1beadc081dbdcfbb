/* One Redis connection with reconnect and backoff; see l2.h.
 * Invariant: c->ctx is NULL or a connection that has answered every command
 * sent on it (a timed-out or broken connection is freed at once, because a
 * blocking hiredis context cannot tell a late answer from the next one). */
#include "l2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "backoff.h"
#include "log.h"
#include "units.h"

/* The scripts. Each builds the data key PREFIX:NS:VER:KEY inside Redis from
 * the namespace's current version (KEYS[1] = PREFIX:nsver:NS), so a write
 * can never land under a version that a bump has retired, and returns the
 * version it used. A write and its invalidation message are one script, so
 * the message is published if and only if the write happened. The keys'
 * layout is keyspace.h's (KS_LUA_BASE, KS_LUA_KEYS_OF).
 *
 * A namespace version never goes back. Redis can lose the version key
 * (eviction under an allkeys-* policy, FLUSHALL, a failover to a replica
 * that never got it), and reading that as an older version would make the
 * values written before a bump live again. So the last argument of every
 * script is a floor, the highest version the calling node has seen, and
 * VERSION recreates a version that is missing or below it as the larger of
 * the floor + 1 and Redis's clock in microseconds: above every version
 * handed out before, since versions start from that clock and a bump adds
 * one in a script that takes longer than a microsecond. Losing the key
 * costs misses (the namespace starts empty), never old data.
 *
 * A plain read (GET without a lease, MGET) of a namespace without a version
 * makes none: whatever Redis holds of it is under a lost version, so it
 * answers "not found" with version 0, which is never a namespace's, and a
 * read leaves no key behind. */
#define VERSION_READ                                                                               \
    "local floor = tonumber(ARGV[#ARGV]) "                                                         \
    "local v = redis.call('GET', KEYS[1]) "                                                        \
    "local function fresh_version() local t = redis.call('TIME') "                                 \
    "  v = string.format('%d', math.max(t[1] * 1000000 + t[2], floor + 1)) "                       \
    "  redis.call('SET', KEYS[1], v) end "                                                         \
    "if v and tonumber(v) < floor then fresh_version() end "
#define VERSION_MAKE "if not v then fresh_version() end "
#define VERSION      VERSION_READ VERSION_MAKE
#define BASE         KS_LUA_BASE
#define KEYS_OF      KS_LUA_KEYS_OF
#define NOW_MS                                                                                     \
    "local function now_ms() local t = redis.call('TIME') "                                        \
    "return t[1] * 1000 + math.floor(t[2] / 1000) end "

enum script { SCRIPT_GET, SCRIPT_SET, SCRIPT_DEL, SCRIPT_BUMP, SCRIPT_MGET, SCRIPT_MSET, NSCRIPTS };

static const char *const script_text[NSCRIPTS] = {
    /* ARGV: prefix ns key lease(0/1) token lease_ttl_ms slide_ms floor
     * -> {version, value or nil, pttl, lease state, swr mark or nil, now,
     * negative, pttl of the neg mark}: what Redis holds, decoded by
     * answer_decode(); the script itself only decides the lease (taken on
     * a miss, or on a stale value) and the slide (of a value without a swr
     * mark) */
    [SCRIPT_GET] = VERSION_READ
    "if not v and ARGV[4] ~= '1' then return {'0', false, -2, 0, false, 0, 0, 0} end " VERSION_MAKE
        BASE KEYS_OF NOW_MS
    "local function lease() return redis.call('SET', side('lease'), ARGV[5], 'NX', 'PX', "
    "ARGV[6]) end "
    "local val = redis.call('GET', k) "
    "if val then "
    "  local state, now = 0, 0 "
    "  local fresh = redis.call('GET', side('swr')) "
    "  local pttl = redis.call('PTTL', k) "
    "  if fresh then "
    "    now = now_ms() "
    "    if now >= tonumber(fresh) and ARGV[4] == '1' and lease() then state = 1 end "
    "  elseif ARGV[7] ~= '0' then redis.call('PEXPIRE', k, ARGV[7]) pttl = tonumber(ARGV[7]) end "
    "  return {v, val, pttl, state, fresh, now, 0, 0} "
    "end "
    "if redis.call('EXISTS', side('neg')) == 1 then "
    "  return {v, false, -2, 0, false, 0, 1, redis.call('PTTL', side('neg'))} end "
    "if ARGV[4] == '1' then "
    "  if lease() then return {v, false, -2, 1, false, 0, 0, 0} end "
    "  return {v, false, -2, 3, false, 0, 0, 0} "
    "end "
    "return {v, false, -2, 0, false, 0, 0, 0}",
    /* ARGV: prefix ns key value ttl_ms channel message token negative(0/1)
     * swr_ms floor -> {version, stored (0: the lease was no longer valid)} */
    [SCRIPT_SET] = VERSION BASE KEYS_OF NOW_MS
    "if ARGV[8] ~= '' and redis.call('GET', side('lease')) ~= ARGV[8] then return {v, 0} end "
    "redis.call('DEL', side('lease')) "
    "local ttl = tonumber(ARGV[5]) local swr = tonumber(ARGV[10]) "
    "if ARGV[9] == '1' then "
    "  redis.call('DEL', k, side('swr')) "
    "  redis.call('SET', side('neg'), '1', 'PX', ARGV[5]) "
    "else "
    "  redis.call('DEL', side('neg')) "
    "  redis.call('SET', k, ARGV[4], 'PX', string.format('%d', ttl + swr)) "
    "  if swr > 0 then "
    "    redis.call('SET', side('swr'), string.format('%d', now_ms() + ttl), 'PX', "
    "               string.format('%d', ttl + swr)) "
    "  else redis.call('DEL', side('swr')) end "
    "end "
    "redis.call('PUBLISH', ARGV[6], ARGV[7]) return {v, 1}",
    /* ARGV: prefix ns key channel message token floor -> {version, deleted}. With a
     * token, only that lease is released (deleted = whether it was). */
    [SCRIPT_DEL] = VERSION BASE KEYS_OF
    "if ARGV[6] ~= '' then "
    "  if redis.call('GET', side('lease')) ~= ARGV[6] then return {v, 0} end "
    "  redis.call('DEL', side('lease')) redis.call('PUBLISH', ARGV[4], ARGV[5]) return {v, 1} "
    "end "
    "local n = redis.call('DEL', k) redis.call('DEL', side('lease'), side('neg'), side('swr')) "
    "redis.call('PUBLISH', ARGV[4], ARGV[5]) return {v, n}",
    /* ARGV: channel message floor -> new version. The message gets the
     * version appended as protobuf field 6 (bump_version, a varint). */
    [SCRIPT_BUMP] =
        VERSION "v = string.format('%d', tonumber(v) + 1) redis.call('SET', KEYS[1], v) "
                "local n = tonumber(v) local s = string.char(48) "
                "while n >= 128 do s = s .. string.char(n % 128 + 128) n = math.floor(n / 128) end "
                "redis.call('PUBLISH', ARGV[1], ARGV[2] .. s .. string.char(n)) return tonumber(v)",
    /* ARGV: prefix ns key... floor -> {version, now, then per key: value or
     * nil, pttl (of the neg mark when negative), swr mark or nil, negative
     * (0/1)}, decoded by answer_decode() */
    [SCRIPT_MGET] = VERSION_READ
    "if not v then local out = {'0', 0} "
    "  for i = 3, #ARGV - 1 do "
    "    out[#out + 1] = false out[#out + 1] = -2 out[#out + 1] = false out[#out + 1] = 0 "
    "  end "
    "  return out "
    "end " BASE NOW_MS "local out = {v, now_ms()} "
    "for i = 3, #ARGV - 1 do "
    "  local k = key_of('', ARGV[i]) "
    "  local val = redis.call('GET', k) "
    "  local fresh, neg = false, 0 "
    "  local pttl = redis.call('PTTL', k) "
    "  if val then fresh = redis.call('GET', key_of('swr', ARGV[i])) "
    "  else neg = redis.call('EXISTS', key_of('neg', ARGV[i])) "
    "    if neg == 1 then pttl = redis.call('PTTL', key_of('neg', ARGV[i])) end end "
    "  out[#out + 1] = val out[#out + 1] = pttl out[#out + 1] = fresh out[#out + 1] = neg "
    "end "
    "return out",
    /* ARGV: prefix ns channel message, then key value ttl_ms per entry, then
     * floor -> version. One message names every key. */
    [SCRIPT_MSET] = VERSION BASE
    "for i = 5, #ARGV - 1, 3 do "
    "  local key = ARGV[i] "
    "  redis.call('SET', key_of('', key), ARGV[i + 1], 'PX', ARGV[i + 2]) "
    "  redis.call('DEL', key_of('lease', key), key_of('neg', key), key_of('swr', key)) "
    "end "
    "redis.call('PUBLISH', ARGV[3], ARGV[4]) return v",
};

struct l2 {
    config_redis_url url;
    char name[32];
    char where[300]; /* "host:port" or the socket path, for messages */
    int64_t connect_timeout_ms;
    redisContext *ctx;
    int64_t cur_timeout_ms;      /* what redisSetTimeout last set on ctx */
    int64_t retry_at;            /* no connect attempt before this time */
    int64_t down_since;          /* when the backoff began */
    _Atomic int64_t *peer_up_at; /* the sharer's (l2_share_up): when any handle last connected */
    atomic_size_t *up_count;     /* the sharer's: how many handles are connected */
    int counted;                 /* this one is in *up_count */
    backoff backoff;
    int was_up; /* -1 unknown, 0 down, 1 up: to log transitions only */
    char sha[NSCRIPTS][41];
    uint32_t stream;
    int once;                       /* the command is not idempotent: never send it twice */
    int maybe_sent;                 /* the last command reached the socket: it may have run */
    uint64_t next_seq;              /* the seq of this stream's next message */
    _Atomic uint64_t confirmed_seq; /* the last one known to be published */
    hist *rtt;                      /* each command's round trip, or NULL */
    char err[640];
};

static struct timeval ms_to_tv(int64_t ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

int l2_create(l2 **out, const config_redis_url *url, int64_t connect_timeout_ms, const char *name,
              uint32_t stream)
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
    c->backoff = backoff_make(BACKOFF_MAX_MS);
    c->was_up = -1;
    c->stream = stream;
    c->next_seq = 1;
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

void l2_share_up(l2 *c, _Atomic int64_t *up_at, atomic_size_t *up_count)
{
    c->peer_up_at = up_at;
    c->up_count = up_count;
}

void l2_destroy(l2 *c)
{
    if (c == NULL)
        return;
    drop(c, 1);
    free(c);
}

void l2_set_timing(l2 *c, hist *rtt)
{
    c->rtt = rtt;
}

void l2_retry_now(l2 *c)
{
    c->retry_at = 0;
}

int l2_maybe_ran(const l2 *c)
{
    return c->maybe_sent;
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
static redisReply *command(l2 *c, int64_t timeout_ms, l2_status *status, int argc,
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

/* Runs a setup command on a fresh connection; returns 0 when it succeeded. */
static int setup_command(l2 *c, int argc, const char **argv, const size_t *lens, redisReply **keep)
{
    l2_status status;
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

/* SCRIPT LOAD of every script on a new connection. Returns 0 or -1. */
static int load_scripts(l2 *c)
{
    for (int i = 0; i < NSCRIPTS; i++) {
        const char *load[] = {"SCRIPT", "LOAD", script_text[i]};
        redisReply *sha = NULL;
        if (setup_command(c, 3, load, NULL, &sha) != 0)
            return -1;
        snprintf(c->sha[i], sizeof c->sha[i], "%s",
                 sha->type == REDIS_REPLY_STRING ? sha->str : "");
        freeReplyObject(sha);
    }
    return 0;
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

redisContext *l2_dial(const config_redis_url *url, int64_t timeout_ms, char *err, size_t errlen)
{
    char where[300], db[16];
    if (url->is_unix)
        snprintf(where, sizeof where, "%s", url->host);
    else
        snprintf(where, sizeof where, "%s:%d", url->host, url->port);
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

l2_status l2_connect(l2 *c, int64_t now)
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
    c->ctx = l2_dial(&c->url, c->connect_timeout_ms, c->err, sizeof c->err);
    if (c->ctx == NULL) {
        if (c->was_up != 0)
            log_warn("%s: %s", c->name, c->err);
        c->was_up = 0;
        drop(c, 0);
        return L2_EDOWN;
    }
    c->cur_timeout_ms = c->connect_timeout_ms;
    if (load_scripts(c) != 0) {
        log_warn("%s: %s", c->name, c->err);
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

/* Connects if needed, then runs the command. A connection that was already
 * open may have died since its last use (Redis restarted): on an I/O error
 * there, it reconnects at once and tries once more; every command here is
 * idempotent, except the bump, which sets c->once. Returns the reply (caller frees) or NULL with
 * *status set; an error reply is NULL with L2_EREPLY. */
static redisReply *run(l2 *c, int64_t timeout_ms, l2_status *status, int argc, const char **argv,
                       const size_t *lens)
{
    int reused = c->ctx != NULL && !c->once;
    c->maybe_sent = 0;
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

l2_status l2_ping(l2 *c, int64_t timeout_ms)
{
    if (c->ctx == NULL)
        return l2_connect(c, units_now_ms());
    const char *argv[] = {"PING"};
    l2_status status;
    redisReply *r = command(c, timeout_ms, &status, 1, argv, NULL);
    if (r == NULL)
        return status;
    freeReplyObject(r);
    return L2_OK;
}

/* Runs script `id` on k's namespace by EVALSHA, or by EVAL when Redis has
 * lost its script cache: one key, PREFIX:nsver:NS, then the `nargs`
 * arguments and k->floor. Returns the reply or NULL with *status set, as
 * run(). */
static redisReply *eval(l2 *c, enum script id, const l2_key *k, int64_t timeout_ms,
                        l2_status *status, int nargs, const char **args, const size_t *lens)
{
    const char *small_argv[16];
    size_t small_argl[16];
    char vkey[KS_NSVER_KEY_MAX], floor[24];
    int argc = 5 + nargs;
    const char **argv = argc <= 16 ? small_argv : malloc(sizeof *argv * (size_t)argc);
    size_t *argl = argc <= 16 ? small_argl : malloc(sizeof *argl * (size_t)argc);
    redisReply *r = NULL;
    *status = L2_EREPLY;
    snprintf(c->err, sizeof c->err, "out of memory");
    if (argv != NULL && argl != NULL) {
        argv[0] = "EVALSHA", argl[0] = 7;
        argv[1] = c->sha[id], argl[1] = strlen(c->sha[id]);
        argv[2] = "1", argl[2] = 1;
        argv[3] = vkey, argl[3] = ks_nsver_key(vkey, k->prefix, k->ns, k->nslen);
        memcpy(argv + 4, args, sizeof *args * (size_t)nargs);
        memcpy(argl + 4, lens, sizeof *lens * (size_t)nargs);
        argv[argc - 1] = floor;
        argl[argc - 1] = (size_t)snprintf(floor, sizeof floor, "%" PRIu64, k->floor);
        r = run(c, timeout_ms, status, argc, argv, argl);
        if (r == NULL && *status == L2_EREPLY && strncmp(c->err, "redis: NOSCRIPT", 15) == 0) {
            argv[0] = "EVAL", argl[0] = 4;
            argv[1] = script_text[id], argl[1] = strlen(script_text[id]);
            r = run(c, timeout_ms, status, argc, argv, argl);
        }
    }
    if (argv != small_argv)
        free(argv);
    if (argl != small_argl)
        free(argl);
    return r;
}

static l2_status unexpected(l2 *c, redisReply *r, const char *what)
{
    snprintf(c->err, sizeof c->err, "redis: unexpected reply to %s", what);
    freeReplyObject(r);
    return L2_EREPLY;
}

l2_status l2_get(l2 *c, const l2_key *k, const l2_get_opts *o, int64_t timeout_ms, l2_value *out)
{
    static const l2_get_opts plain = {0};
    char ttl[24], slide[24];
    if (o == NULL)
        o = &plain;
    int tl = snprintf(ttl, sizeof ttl, "%lld", (long long)o->lease_ttl_ms);
    int sl = snprintf(slide, sizeof slide, "%lld", (long long)o->slide_ms);
    const char *token = o->token != NULL ? o->token : "";
    const char *args[] = {k->prefix, k->ns, k->key, o->lease ? "1" : "0", token, ttl, slide};
    size_t lens[] = {strlen(k->prefix), k->nslen,   k->klen,   1,
                     strlen(token),     (size_t)tl, (size_t)sl};
    l2_status status;
    redisReply *r = eval(c, SCRIPT_GET, k, timeout_ms, &status, 7, args, lens);
    if (r == NULL)
        return status;
    l2_status st = answer_get_script(r, out);
    if (st == L2_EREPLY)
        return unexpected(c, r, "the GET script");
    if (st != L2_OK) {
        freeReplyObject(r);
        return st;
    }
    out->reply_ = r;
    return L2_OK;
}

l2_status l2_set(l2 *c, const l2_key *k, const void *value, size_t vlen, int64_t ttl_ms,
                 const l2_set_opts *o, const l2_msg *m, int64_t timeout_ms, uint64_t *version,
                 int *stored)
{
    static const l2_set_opts plain = {0};
    char px[24], swr[24];
    if (o == NULL)
        o = &plain;
    int pxlen = snprintf(px, sizeof px, "%lld", (long long)ttl_ms);
    int swrlen = snprintf(swr, sizeof swr, "%lld", (long long)o->swr_ms);
    const char *args[] = {
        k->prefix, k->ns, k->key, value, px, m->channel, m->data, o->token, o->negative ? "1" : "0",
        swr};
    size_t lens[] = {strlen(k->prefix),  k->nslen, k->klen,      vlen, (size_t)pxlen,
                     strlen(m->channel), m->len,   o->token_len, 1,    (size_t)swrlen};
    if (o->token == NULL)
        args[7] = "", lens[7] = 0;
    l2_status status;
    redisReply *r = eval(c, SCRIPT_SET, k, timeout_ms, &status, 10, args, lens);
    if (r == NULL)
        return status;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return unexpected(c, r, "the SET script");
    *version = (uint64_t)answer_int(r->element[0]);
    *stored = answer_int(r->element[1]) == 1;
    freeReplyObject(r);
    return L2_OK;
}

l2_status l2_del(l2 *c, const l2_key *k, const void *token, size_t token_len, const l2_msg *m,
                 int64_t timeout_ms, int *existed, uint64_t *version)
{
    const char *args[] = {k->prefix,  k->ns,   k->key,
                          m->channel, m->data, token != NULL ? token : ""};
    size_t lens[] = {strlen(k->prefix),  k->nslen, k->klen,
                     strlen(m->channel), m->len,   token != NULL ? token_len : 0};
    l2_status status;
    redisReply *r = eval(c, SCRIPT_DEL, k, timeout_ms, &status, 6, args, lens);
    if (r == NULL)
        return status;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return unexpected(c, r, "the DEL script");
    *version = (uint64_t)answer_int(r->element[0]);
    *existed = answer_int(r->element[1]) > 0;
    freeReplyObject(r);
    return L2_OK;
}

l2_status l2_bump(l2 *c, const l2_key *k, const l2_msg *m, int64_t timeout_ms, uint64_t *version)
{
    const char *args[] = {m->channel, m->data};
    size_t lens[] = {strlen(m->channel), m->len};
    l2_status status;
    c->once = 1; /* a retry after a lost answer would bump twice */
    redisReply *r = eval(c, SCRIPT_BUMP, k, timeout_ms, &status, 2, args, lens);
    c->once = 0;
    if (r == NULL)
        return status;
    *version = (uint64_t)answer_int(r);
    freeReplyObject(r);
    return L2_OK;
}

l2_status l2_mget(l2 *c, const l2_key *k, const l2_key *keys, size_t n, int64_t timeout_ms,
                  l2_batch *out)
{
    const char **args = malloc(sizeof *args * (n + 2));
    size_t *lens = malloc(sizeof *lens * (n + 2));
    l2_status status = L2_EREPLY;
    redisReply *r = NULL;
    if (args != NULL && lens != NULL) {
        args[0] = k->prefix, lens[0] = strlen(k->prefix);
        args[1] = k->ns, lens[1] = k->nslen;
        for (size_t i = 0; i < n; i++)
            args[2 + i] = keys[i].key, lens[2 + i] = keys[i].klen;
        r = eval(c, SCRIPT_MGET, k, timeout_ms, &status, (int)n + 2, args, lens);
    } else {
        snprintf(c->err, sizeof c->err, "out of memory");
    }
    free(args);
    free(lens);
    if (r == NULL)
        return status;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 + 4 * n)
        return unexpected(c, r, "the MGET script");
    out->version = (uint64_t)answer_int(r->element[0]);
    out->n = n;
    out->reply_ = r;
    return L2_OK;
}

l2_status l2_batch_item(const l2_batch *b, size_t i, l2_value *v)
{
    l2_status st = answer_mget_item(b->reply_, i, v);
    v->version = b->version;
    return st;
}

void l2_batch_free(l2_batch *b)
{
    if (b->reply_ != NULL)
        freeReplyObject(b->reply_);
    memset(b, 0, sizeof *b);
}

l2_status l2_mset(l2 *c, const l2_key *k, const l2_entry *e, size_t n, const l2_msg *m,
                  int64_t timeout_ms, uint64_t *version)
{
    size_t nargs = 4 + 3 * n;
    const char **args = malloc(sizeof *args * nargs);
    size_t *lens = malloc(sizeof *lens * nargs);
    char(*ttl)[24] = malloc(sizeof *ttl * (n ? n : 1));
    l2_status status = L2_EREPLY;
    redisReply *r = NULL;
    if (args != NULL && lens != NULL && ttl != NULL) {
        args[0] = k->prefix, lens[0] = strlen(k->prefix);
        args[1] = k->ns, lens[1] = k->nslen;
        args[2] = m->channel, lens[2] = strlen(m->channel);
        args[3] = m->data, lens[3] = m->len;
        for (size_t i = 0; i < n; i++) {
            int tl = snprintf(ttl[i], sizeof ttl[i], "%lld", (long long)e[i].ttl_ms);
            args[4 + 3 * i] = e[i].key, lens[4 + 3 * i] = e[i].klen;
            args[5 + 3 * i] = e[i].value, lens[5 + 3 * i] = e[i].vlen;
            args[6 + 3 * i] = ttl[i], lens[6 + 3 * i] = (size_t)tl;
        }
        r = eval(c, SCRIPT_MSET, k, timeout_ms, &status, (int)nargs, args, lens);
    } else {
        snprintf(c->err, sizeof c->err, "out of memory");
    }
    free(args);
    free(lens);
    free(ttl);
    if (r == NULL)
        return status;
    *version = (uint64_t)answer_int(r);
    freeReplyObject(r);
    return L2_OK;
}

l2_status l2_publish(l2 *c, const l2_msg *m, int64_t timeout_ms)
{
    const char *argv[] = {"PUBLISH", m->channel, m->data};
    size_t lens[] = {7, strlen(m->channel), m->len};
    l2_status status;
    redisReply *r = run(c, timeout_ms, &status, 3, argv, lens);
    if (r == NULL)
        return status;
    freeReplyObject(r);
    return L2_OK;
}

uint32_t l2_stream(const l2 *c)
{
    return c->stream;
}

uint64_t l2_next_seq(const l2 *c)
{
    return c->next_seq;
}

void l2_confirm_seq(l2 *c, uint64_t seq)
{
    c->next_seq = seq + 1;
    atomic_store(&c->confirmed_seq, seq);
}

uint64_t l2_confirmed_seq(const l2 *c)
{
    return atomic_load((_Atomic uint64_t *)&c->confirmed_seq);
}

void l2_value_free(l2_value *v)
{
    if (v->reply_ != NULL)
        freeReplyObject(v->reply_);
    memset(v, 0, sizeof *v);
}
