/* nearcache-bench paths: the table of paths, each thread's connection and
 * the operations themselves (see bench_paths.h). */
#include "bench_paths.h"
#include "bench_cluster.h"
#include "keyspace.h"

#include <math.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const path_def paths[] = {
    {"echo", ECHO, AT_ECHO, "raw nng REQ/REP echo over ipc (transport floor)", 0},
    {"echo-percall", ECHO_PERCALL, AT_ECHO,
     "echo with a context and aio per call (libnearcache before its pool)", 0},
    {"l1", NC_HOT, AT_LOCAL, "nearcache Get, L1 hit", 0},
    {"l1-raw", RAW_HOT, AT_LOCAL, "L1-hit Get encoded by hand on the echo client (no libnearcache)",
     0},
    {"l2", NC_HOT, AT_L2, "nearcache Get, L1 miss + Redis hit (fills L1)", 0},
    {"miss", NC_MISS, AT_LOCAL, "nearcache Get of an absent key (L1 + Redis miss)", 0},
    {"zipf", NC_ZIPF, AT_LOCAL, "nearcache Get/Set, Zipf keys, local Redis", 0},
    {"zipf-remote", NC_ZIPF, AT_REMOTE, "nearcache Get/Set, Zipf keys, Redis +250 us RTT", 0},
    {"near", NC_HOT, AT_LOCAL,
     "nearcache Get of 100 hot keys, near-tier hits (the ring checked per call)", 1},
    {"zipf-near", NC_ZIPF, AT_LOCAL, "nearcache Get/Set, Zipf keys, local Redis, near tier", 1},
    {"zipf-remote-near", NC_ZIPF, AT_REMOTE, "nearcache Get/Set, Zipf keys, +250 us RTT, near tier",
     1},
    {"redis-get", REDIS_GET, AT_LOCAL, "direct hiredis GET, hit", 0},
    {"redis-miss", REDIS_MISS, AT_LOCAL, "direct hiredis GET, absent key", 0},
    {"redis-zipf", REDIS_ZIPF, AT_LOCAL, "direct hiredis GET/SET, Zipf keys, local Redis", 0},
    {"redis-zipf-remote", REDIS_ZIPF, AT_REMOTE, "direct hiredis GET/SET, Zipf keys, +250 us RTT",
     0},
    {"redis-get-remote", REDIS_GET, AT_REMOTE, "direct hiredis GET through the delay link", 0},
    {"redis-get-near", REDIS_GET, AT_NEAR, "direct hiredis GET to the remote Redis, no delay", 0},
    {"mget", NC_MGET, AT_LOCAL, "nearcache MGet of 10 keys (--batch), L1 hits", 0},
    {"redis-mget", REDIS_MGET, AT_LOCAL, "direct hiredis MGET of 10 keys (--batch)", 0},
    {"set", NC_SET, AT_LOCAL, "nearcache Set (a Redis write)", 0},
    {"redis-set", REDIS_SET, AT_LOCAL, "direct hiredis SET", 0},
    {"mget-l2", NC_MGET, AT_L2, "nearcache MGet of 10 keys (--batch), L1 misses, one Redis", 0},
    {"l2-tls", NC_HOT, AT_L2_TLS, "nearcache Get, L1 miss + Redis hit, Redis over TLS", 0},
    {"l2-other", NC_HOT, AT_L2_OTHER, "nearcache Get, L1 miss + Redis hit, another build's daemon",
     0},
    {"l2-cluster", NC_HOT, AT_CLUSTER, "nearcache Get, L1 miss + Redis hit, 3-master cluster", 0},
    {"redis-get-cluster", REDIS_GET, AT_CLUSTER, "direct hiredis GET routed by slot, cluster", 0},
    {"set-cluster", NC_SET, AT_CLUSTER, "nearcache Set, 3-master cluster", 0},
    {"redis-set-cluster", REDIS_SET, AT_CLUSTER, "direct hiredis SET routed by slot, cluster", 0},
    {"mget-cluster", NC_MGET, AT_CLUSTER,
     "nearcache MGet of 10 keys over the slots, L1 misses, cluster", 0},
    {"redis-mget-cluster", REDIS_MGET, AT_CLUSTER,
     "direct hiredis GETs of the same 10 keys, pipelined per master", 0},
};

int path_is_redis(const path_def *p)
{
    return p->kind == REDIS_GET || p->kind == REDIS_MISS || p->kind == REDIS_ZIPF ||
           p->kind == REDIS_MGET || p->kind == REDIS_SET;
}

const char *bench_path_about(const char *name)
{
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (strcmp(paths[i].name, name) == 0)
            return paths[i].about;
    return "";
}

uint64_t path_rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

double path_rng_unit(uint64_t *s)
{
    return (double)(path_rng_next(s) >> 11) / 9007199254740992.0;
}

/* Zipf over ranks 0..n-1 with exponent s: weight of rank i is 1/(i+1)^s.
 * A draw is a binary search of a uniform number in the cumulative table. */
double *path_zipf_table(size_t n, double s)
{
    double *cdf = malloc(sizeof *cdf * n), sum = 0;
    if (cdf == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        cdf[i] = sum += 1.0 / pow((double)(i + 1), s);
    for (size_t i = 0; i < n; i++)
        cdf[i] /= sum;
    return cdf;
}

size_t path_zipf_draw(const double *cdf, size_t n, double u)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t path_key(char *buf, size_t cap, size_t i)
{
    return (size_t)snprintf(buf, cap, "k%07zu", i);
}

/* The namespace's version in Redis, as bench_preload() found or made it. */
static char ns_version[24] = "1";

int path_set_version(const char *version)
{
    static int set;
    if (set && strcmp(version, ns_version) != 0)
        return -1;
    snprintf(ns_version, sizeof ns_version, "%s", version);
    set = 1;
    return 0;
}

/* The Redis key the daemons use for `key` (klen bytes), as keyspace.c
 * names it; 0 when it does not fit in cap. */
static size_t redis_key_of(const bench_opts *o, char *buf, size_t cap, const char *key,
                           size_t klen)
{
    uint64_t version = strtoull(ns_version, NULL, 10);
    if (ks_data_key_max(o->prefix, strlen(NS), version, klen) > cap)
        return 0;
    return ks_data_key(buf, o->prefix, NS, strlen(NS), version, KS_DATA, key, klen);
}

size_t path_redis_key(const bench_opts *o, char *buf, size_t cap, size_t i)
{
    char key[32];
    return redis_key_of(o, buf, cap, key, path_key(key, sizeof key, i));
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 128)
        v >>= 7, n++;
    return n;
}

/* The encoded sizes of a Get request and an L1-hit Get reply for this key
 * and value size (field by field, as protobuf-c packs them); an echo
 * message is the larger of the two, both ways. */
size_t path_echo_size(const bench_opts *o)
{
    size_t ns = strlen(NS), key = 8, id = 3000000, ttl = 60000;
    size_t get = 1 + varint_len(ns) + ns + 1 + varint_len(key) + key;
    size_t req = 1 + varint_len(id) + 1 + varint_len(1000) + 1 + varint_len(get) + get;
    size_t gr = 1 + varint_len(o->value_size) + o->value_size + 2 + 1 + varint_len(ttl);
    size_t rep = 1 + varint_len(id) + 1 + varint_len(gr) + gr;
    return req > rep ? req : rep;
}

const path_def *path_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (strlen(paths[i].name) == len && strncmp(paths[i].name, name, len) == 0)
            return &paths[i];
    return NULL;
}

static const char *path_url(const shared *sh, enum where w)
{
    const bench_opts *o = sh->o;
    switch (w) {
    case AT_LOCAL:
        return o->url;
    case AT_L2:
        return o->url_l2;
    case AT_REMOTE:
        return o->url_remote;
    case AT_NEAR:
        return NULL;
    case AT_ECHO:
        return sh->echo_url;
    case AT_CLUSTER:
        return o->url_cluster;
    case AT_L2_TLS:
        return o->url_l2_tls;
    case AT_L2_OTHER:
        return o->url_l2_other;
    default:
        return NULL;
    }
}

static const char *path_redis_url(const bench_opts *o, enum where w)
{
    return w == AT_REMOTE ? o->redis_remote : w == AT_NEAR ? o->redis_near : o->redis;
}

int path_server_pid(const shared *sh, const path_def *p)
{
    const bench_opts *o = sh->o;
    if (path_is_redis(p))
        return 0;
    switch (p->where) {
    case AT_LOCAL:
        return o->pid;
    case AT_L2:
        return o->pid_l2;
    case AT_REMOTE:
        return o->pid_remote;
    case AT_ECHO:
        return sh->echo_pid;
    case AT_CLUSTER:
        return o->pid_cluster;
    default:
        return 0;
    }
}

/* Connects to Redis at redis://HOST:PORT or unix://PATH. Returns the
 * context (caller frees it with redisFree()) or NULL, with err set. */
redisContext *path_redis_connect(const char *url, char *err, size_t errlen)
{
    struct timeval tv = {2, 0};
    redisContext *rc = NULL;
    char host[256];
    int port = 6379;
    if (url == NULL) {
        snprintf(err, errlen, "no Redis URL given for this path");
        return NULL;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        rc = redisConnectUnixWithTimeout(url + 7, tv);
    } else if (sscanf(url, "redis://%255[^:/]:%d", host, &port) >= 1) {
        rc = redisConnectWithTimeout(host, port, tv);
    } else {
        snprintf(err, errlen, "bad Redis URL %s", url);
        return NULL;
    }
    if (rc == NULL || rc->err) {
        snprintf(err, errlen, "redis %s: %s", url, rc ? rc->errstr : "out of memory");
        redisFree(rc);
        return NULL;
    }
    redisSetTimeout(rc, tv);
    return rc;
}

static int path_echo_open(worker *w, const char *url)
{
    int rv = nng_req0_open(&w->sock);
    for (int i = 0; rv == 0 && i < 200; i++) { /* the server may be starting */
        if ((rv = nng_dial(w->sock, url, NULL, 0)) != NNG_ECONNREFUSED && rv != NNG_ENOENT)
            break;
        nng_msleep(10);
    }
    if (rv == 0 && w->p->kind != ECHO_PERCALL && (rv = nng_ctx_open(&w->ctx, w->sock)) == 0 &&
        (rv = nng_aio_alloc(&w->aio, NULL, NULL)) == 0)
        nng_aio_set_timeout(w->aio, 1000);
    if (rv != 0)
        snprintf(w->err, sizeof w->err, "echo %s: %s", url, nng_strerror(rv));
    return rv == 0 ? 0 : -1;
}

/* Opens the worker's connection. Returns 0, or -1 with w->err set. */
int path_open(worker *w)
{
    const path_def *p = w->p;
    bench_hist_init(&w->hist, 4096);
    switch (p->kind) {
    case ECHO:
    case ECHO_PERCALL:
    case RAW_HOT:
        return path_echo_open(w, path_url(w->sh, p->where));
    case REDIS_GET:
    case REDIS_MISS:
    case REDIS_ZIPF:
    case REDIS_MGET:
    case REDIS_SET:
        if (p->where == AT_CLUSTER) {
            w->cl = malloc(sizeof *w->cl);
            if (w->cl != NULL && w->sh->o->redis_cluster != NULL &&
                bench_cluster_open(w->cl, w->sh->o->redis_cluster, w->err, sizeof w->err) == 0)
                return 0;
            if (w->err[0] == '\0')
                snprintf(w->err, sizeof w->err, "needs --redis-cluster");
            free(w->cl);
            w->cl = NULL;
            return -1;
        }
        w->rc = path_redis_connect(path_redis_url(w->sh->o, p->where), w->err, sizeof w->err);
        return w->rc != NULL ? 0 : -1;
    default: {
        const char *url = path_url(w->sh, p->where);
        nc_open_opts no = {.near_bytes = p->near ? 64u << 20 : 0};
        if (url == NULL || nc_open_ex(&w->nc, url, &no) != NC_OK) {
            snprintf(w->err, sizeof w->err, "%s: %s", url ? url : "no daemon URL for this path",
                     url ? nc_errmsg() : "");
            return -1;
        }
        return 0;
    }
    }
}

void path_close(worker *w)
{
    nc_close(w->nc);
    if (w->cl != NULL)
        bench_cluster_close(w->cl); /* w->rc is one of its connections */
    else if (w->rc != NULL)
        redisFree(w->rc);
    free(w->cl);
    if (w->aio != NULL)
        nng_aio_free(w->aio);
    if (w->p->kind == ECHO || w->p->kind == ECHO_PERCALL || w->p->kind == RAW_HOT)
        nng_close(w->sock);
    bench_hist_free(&w->hist);
}

/* One echo round trip: on the worker's own context and aio (the floor), or
 * like libnearcache does it, with a context and an aio made for the call. */
static int op_echo(worker *w)
{
    nng_msg *m;
    nng_ctx ctx = w->ctx;
    nng_aio *aio = w->aio;
    int percall = w->p->kind == ECHO_PERCALL, rv;
    if (nng_msg_alloc(&m, w->sh->echo_size) != 0)
        return -1;
    memset(nng_msg_body(m), 'e', w->sh->echo_size);
    if (percall) {
        if ((rv = nng_ctx_open(&ctx, w->sock)) != 0 ||
            (rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
            nng_msg_free(m);
            return -1;
        }
        nng_aio_set_timeout(aio, 1000);
    }
    nng_aio_set_msg(aio, m);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        nng_msg_free(nng_aio_get_msg(aio));
    } else {
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        if ((rv = nng_aio_result(aio)) == 0) {
            m = nng_aio_get_msg(aio);
            rv = nng_msg_len(m) == w->sh->echo_size ? 0 : -1;
            nng_msg_free(m);
        }
    }
    if (percall) {
        nng_aio_free(aio);
        nng_ctx_close(ctx);
    }
    if (rv != 0 && w->err[0] == '\0')
        snprintf(w->err, sizeof w->err, "echo: %s", rv > 0 ? nng_strerror(rv) : "short reply");
    return rv == 0 ? 0 : -1;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    for (; v >= 128; v >>= 7)
        *p++ = (uint8_t)(v | 128);
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_bytes(uint8_t *p, uint8_t tag, const void *data, size_t len)
{
    *p++ = tag;
    p = put_varint(p, len);
    memcpy(p, data, len);
    return p + len;
}

static const uint8_t *get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; p < end && shift < 64; shift += 7) {
        *v |= (uint64_t)(*p & 127) << shift;
        if (!(*p++ & 128))
            return p;
    }
    return NULL;
}

/* Finds top-level field `field` of a protobuf message: its varint value or
 * its bytes. Returns 1 when found. */
static int pb_field(const uint8_t *p, size_t len, unsigned field, uint64_t *val,
                    const uint8_t **data, size_t *dlen)
{
    const uint8_t *end = p + len;
    while (p != NULL && p < end) {
        uint64_t tag, v;
        if ((p = get_varint(p, end, &tag)) == NULL || (p = get_varint(p, end, &v)) == NULL)
            return 0;
        if ((tag & 7) == 2) {
            if (v > (uint64_t)(end - p))
                return 0;
            if (tag >> 3 == field) {
                *data = p;
                *dlen = (size_t)v;
                return 1;
            }
            p += v;
        } else if ((tag & 7) != 0) {
            return 0; /* nearcache.proto uses no fixed-width fields */
        } else if (tag >> 3 == field) {
            *val = v;
            return 1;
        }
    }
    return 0;
}

/* One L1-hit Get without libnearcache: the Request encoded here, sent on
 * the worker's own context like an echo, the Reply checked for status OK
 * and a GetReply. Splits the cost of a Get between daemon and client. */
static int op_raw_get(worker *w)
{
    uint8_t get[64], req[96], *q = get, *r = req;
    char key[40];
    size_t klen = path_key(key, sizeof key, path_rng_next(&w->rng) % w->sh->o->keys);
    q = put_bytes(q, 0x0a, NS, strlen(NS)); /* GetRequest.ns = 1 */
    q = put_bytes(q, 0x12, key, klen);      /* GetRequest.key = 2 */
    *r++ = 0x08;                            /* Request.id = 1 */
    r = put_varint(r, ++w->ops_sent);
    *r++ = 0x10; /* Request.timeout_ms = 2 */
    r = put_varint(r, 1000);
    r = put_bytes(r, 0x52, get, (size_t)(q - get)); /* Request.get = 10 */
    nng_msg *m;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, req, (size_t)(r - req)) != 0)
        return -1;
    nng_aio_set_msg(w->aio, m);
    nng_ctx_send(w->ctx, w->aio);
    nng_aio_wait(w->aio);
    int rv = nng_aio_result(w->aio);
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(w->aio));
    } else {
        nng_ctx_recv(w->ctx, w->aio);
        nng_aio_wait(w->aio);
        rv = nng_aio_result(w->aio);
    }
    if (rv != 0) {
        snprintf(w->err, sizeof w->err, "raw get: %s", nng_strerror(rv));
        return -1;
    }
    m = nng_aio_get_msg(w->aio);
    uint64_t code = 0, source = 0;
    const uint8_t *g;
    size_t glen;
    pb_field(nng_msg_body(m), nng_msg_len(m), 2, &code, &g, &glen);
    int ok = code == 0 && pb_field(nng_msg_body(m), nng_msg_len(m), 10, &code, &g, &glen);
    if (ok)
        pb_field(g, glen, 2, &source, &g, &glen);
    nng_msg_free(m);
    if (!ok && w->err[0] == '\0')
        snprintf(w->err, sizeof w->err, "raw get: the reply is not an OK GetReply");
    return ok ? (source == NC_SOURCE_L1 ? FROM_L1 : FROM_L2) : -1;
}

static int nc_failed(worker *w, const char *what, int rv)
{
    if (w->err[0] == '\0')
        snprintf(w->err, sizeof w->err, "%s: %s: %s", what, nc_strerror(rv), nc_errmsg());
    return -1;
}

static int op_nc(worker *w)
{
    const bench_opts *o = w->sh->o;
    char key[40];
    size_t klen, i;
    if (w->p->kind == NC_MISS) {
        klen = (size_t)snprintf(key, sizeof key, "absent%016llx",
                                (unsigned long long)path_rng_next(&w->rng));
    } else {
        /* near: a set of hot keys each client's near tier holds after warming */
        size_t range = w->p->near && o->keys > NEAR_HOT_KEYS ? NEAR_HOT_KEYS : o->keys;
        i = w->p->kind == NC_ZIPF ? path_zipf_draw(w->sh->zipf_cdf, o->keys, path_rng_unit(&w->rng))
                                  : path_rng_next(&w->rng) % range;
        klen = path_key(key, sizeof key, i);
        if (w->p->kind == NC_SET ||
            (w->p->kind == NC_ZIPF && path_rng_unit(&w->rng) >= o->read_ratio)) {
            nc_bytes v = {w->sh->value, o->value_size};
            int rv = nc_set(w->nc, NC_STR(NS), (nc_bytes){key, klen}, v, 3600000, 0);
            return rv == NC_OK ? 0 : nc_failed(w, "set", rv);
        }
    }
    void *v = NULL;
    size_t len;
    nc_get_info info = {0};
    int rv = nc_get_ex(w->nc, NC_STR(NS), (nc_bytes){key, klen}, &v, &len, &info, 0);
    nc_free(v);
    if (rv == NC_ENOTFOUND) {
        w->notfound++;
        return w->p->kind == NC_MISS ? 0 : nc_failed(w, "get", rv);
    }
    if (rv != NC_OK)
        return nc_failed(w, "get", rv);
    return info.source == NC_SOURCE_L1     ? FROM_L1
           : info.source == NC_SOURCE_L2   ? FROM_L2
           : info.source == NC_SOURCE_NEAR ? FROM_NEAR
                                           : 0;
}

static int op_redis(worker *w)
{
    const bench_opts *o = w->sh->o;
    char key[200];
    size_t klen, i;
    redisReply *r;
    if (w->p->kind == REDIS_MISS) {
        char absent[32];
        int alen = snprintf(absent, sizeof absent, "absent%016llx",
                            (unsigned long long)path_rng_next(&w->rng));
        klen = redis_key_of(o, key, sizeof key, absent, (size_t)alen);
        r = redisCommand(w->rc, "GET %b", key, klen);
    } else {
        i = w->p->kind == REDIS_ZIPF
                ? path_zipf_draw(w->sh->zipf_cdf, o->keys, path_rng_unit(&w->rng))
                : path_rng_next(&w->rng) % o->keys;
        klen = path_redis_key(o, key, sizeof key, i);
        if (w->cl != NULL)
            w->rc = bench_cluster_at(w->cl, key, klen);
        if (w->p->kind == REDIS_SET ||
            (w->p->kind == REDIS_ZIPF && path_rng_unit(&w->rng) >= o->read_ratio))
            r = redisCommand(w->rc, "SET %b %b PX 3600000", key, klen, w->sh->value, o->value_size);
        else
            r = redisCommand(w->rc, "GET %b", key, klen);
    }
    int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    if (ok && r->type == REDIS_REPLY_NIL) {
        w->notfound++;
        ok = w->p->kind == REDIS_MISS;
    }
    if (!ok && w->err[0] == '\0')
        snprintf(w->err, sizeof w->err, "redis: %s",
                 r ? (r->type == REDIS_REPLY_NIL ? "key not found" : r->str) : w->rc->errstr);
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* One MGet of o->batch random keys, through nearcache or straight to Redis.
 * Returns FROM_L1 when every key came from L1, else FROM_L2 (nearcache), 0
 * (Redis), or -1 when a key was missing or the call failed. */
static int op_mget(worker *w)
{
    const bench_opts *o = w->sh->o;
    size_t n = o->batch;
    char keys[MGET_MAX][48];
    nc_bytes kb[MGET_MAX];
    const char *argv[MGET_MAX + 1] = {"MGET"};
    size_t lens[MGET_MAX + 1] = {4};
    for (size_t i = 0; i < n; i++) {
        size_t k = path_rng_next(&w->rng) % o->keys;
        kb[i].data = keys[i];
        kb[i].len = w->p->kind == NC_MGET ? path_key(keys[i], sizeof keys[i], k)
                                          : path_redis_key(o, keys[i], sizeof keys[i], k);
        argv[i + 1] = keys[i];
        lens[i + 1] = kb[i].len;
    }
    if (w->p->kind == REDIS_MGET && w->cl != NULL)
        return bench_cluster_mget(w->cl, argv + 1, lens + 1, n, w->err, sizeof w->err);
    if (w->p->kind == REDIS_MGET) {
        redisReply *r = redisCommandArgv(w->rc, (int)n + 1, argv, lens);
        int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == n;
        for (size_t i = 0; ok && i < n; i++)
            ok = r->element[i]->type == REDIS_REPLY_STRING;
        if (!ok && w->err[0] == '\0')
            snprintf(w->err, sizeof w->err, "redis MGET: %s",
                     r ? "a key is missing" : w->rc->errstr);
        freeReplyObject(r);
        return ok ? 0 : -1;
    }
    nc_item *items;
    int rv = nc_mget(w->nc, NC_STR(NS), kb, n, &items, 0);
    if (rv != NC_OK)
        return nc_failed(w, "mget", rv);
    int all_l1 = 1, ok = 1;
    for (size_t i = 0; i < n; i++) {
        ok &= items[i].found;
        all_l1 &= items[i].source == NC_SOURCE_L1;
    }
    nc_items_free(items, n);
    if (!ok && w->err[0] == '\0')
        snprintf(w->err, sizeof w->err, "mget: a key is missing");
    return ok ? (all_l1 ? FROM_L1 : FROM_L2) : -1;
}

int path_op(worker *w)
{
    switch (w->p->kind) {
    case NC_MGET:
    case REDIS_MGET:
        return op_mget(w);
    case ECHO:
    case ECHO_PERCALL:
        return op_echo(w);
    case RAW_HOT:
        return op_raw_get(w);
    case REDIS_GET:
    case REDIS_MISS:
    case REDIS_ZIPF:
    case REDIS_SET:
        return op_redis(w);
    default:
        return op_nc(w);
    }
}
