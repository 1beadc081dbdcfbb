/* nearcache-bench on a Redis Cluster: the direct hiredis baselines route
 * each key to its slot's master as a cluster client does (the slot map from
 * CLUSTER SLOTS, asked once; no redirections are expected while the bench
 * runs), and an MGET of keys on several slots is a pipeline of GETs per
 * master (a node refuses an MGET across slots), all sent before any
 * answer is read. */
#include "bench_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyspace.h"

/* The index of the node at host:port in cl, connected if new; -1 on error. */
static int node_of(bench_cluster *cl, const char *host, int port, char *err, size_t errlen)
{
    for (int i = 0; i < cl->n; i++)
        if (cl->port[i] == port && strcmp(cl->host[i], host) == 0)
            return i;
    if (cl->n == BENCH_CLUSTER_NODES) {
        snprintf(err, errlen, "more than %d masters", BENCH_CLUSTER_NODES);
        return -1;
    }
    char url[300];
    snprintf(url, sizeof url, "redis://%s:%d", host, port);
    redisContext *rc = path_redis_connect(url, err, errlen);
    if (rc == NULL)
        return -1;
    int i = cl->n++;
    cl->rc[i] = rc;
    cl->port[i] = port;
    snprintf(cl->host[i], sizeof cl->host[i], "%s", host);
    return i;
}

int bench_cluster_open(bench_cluster *cl, const char *url, char *err, size_t errlen)
{
    memset(cl, 0, sizeof *cl);
    redisContext *seed = path_redis_connect(url, err, errlen);
    if (seed == NULL)
        return -1;
    redisReply *r = redisCommand(seed, "CLUSTER SLOTS");
    int rv = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? 0 : -1;
    if (rv != 0)
        snprintf(err, errlen, "CLUSTER SLOTS at %s: %s", url,
                 r && r->type == REDIS_REPLY_ERROR ? r->str : "no slot map");
    for (size_t i = 0; rv == 0 && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2) {
            snprintf(err, errlen, "CLUSTER SLOTS at %s: unexpected reply", url);
            rv = -1;
            break;
        }
        const redisReply *at = e->element[2];
        int n = node_of(cl, at->element[0]->str, (int)at->element[1]->integer, err, errlen);
        if (n < 0) {
            rv = -1;
            break;
        }
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
            cl->owner[s % KS_SLOTS] = (int8_t)n;
    }
    freeReplyObject(r);
    redisFree(seed);
    if (rv != 0)
        bench_cluster_close(cl);
    return rv;
}

void bench_cluster_close(bench_cluster *cl)
{
    for (int i = 0; i < cl->n; i++)
        redisFree(cl->rc[i]);
    memset(cl, 0, sizeof *cl);
}

redisContext *bench_cluster_at(const bench_cluster *cl, const void *key, size_t klen)
{
    return cl->rc[cl->owner[ks_slot(key, klen)]];
}

int bench_cluster_mget(bench_cluster *cl, const char *const *keys, const size_t *lens, size_t n,
                       char *err, size_t errlen)
{
    /* a node refuses an MGET across slots (CROSSSLOT): one GET per key,
     * every master's pipeline sent before the first answer is read */
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        redisAppendCommand(bench_cluster_at(cl, keys[i], lens[i]), "GET %b", keys[i], lens[i]);
    for (size_t i = 0; i < n; i++) {
        redisContext *rc = bench_cluster_at(cl, keys[i], lens[i]);
        redisReply *r = NULL;
        int got = redisGetReply(rc, (void **)&r) == REDIS_OK && r != NULL &&
                  r->type == REDIS_REPLY_STRING;
        if (!got && ok)
            snprintf(err, errlen, "redis GET: %s",
                     r == NULL                      ? rc->errstr
                     : r->type == REDIS_REPLY_ERROR ? r->str
                                                    : "a key is missing");
        ok &= got;
        freeReplyObject(r);
    }
    return ok ? 0 : -1;
}

int bench_cluster_preload(const bench_opts *o, const char *url)
{
    char err[300], key[200];
    bench_cluster cl;
    if (bench_cluster_open(&cl, url, err, sizeof err) != 0) {
        fprintf(stderr, "nearcache-bench: preload %s: %s\n", url, err);
        return 1;
    }
    char *value = malloc(o->value_size + 1);
    int failed = value == NULL;
    if (value != NULL)
        memset(value, 'v', o->value_size);
    /* the namespace's version, on its own master */
    char vkey[KS_NSVER_KEY_MAX];
    size_t vlen = ks_nsver_key(vkey, o->prefix, NS, strlen(NS));
    failed = failed || bench_preload_version(o, bench_cluster_at(&cl, vkey, vlen), url);
    /* pipelined, 1000 keys at a time: each master answers in its order */
    for (size_t i = 0; i < o->keys && !failed; i += 1000) {
        size_t end = i + 1000 < o->keys ? i + 1000 : o->keys;
        for (size_t k = i; k < end; k++) {
            size_t klen = path_redis_key(o, key, sizeof key, k);
            redisAppendCommand(bench_cluster_at(&cl, key, klen), "SET %b %b PX 3600000", key,
                               klen, value, o->value_size);
        }
        for (size_t k = i; k < end; k++) {
            size_t klen = path_redis_key(o, key, sizeof key, k);
            redisReply *r = NULL;
            if (redisGetReply(bench_cluster_at(&cl, key, klen), (void **)&r) != REDIS_OK ||
                r == NULL || r->type == REDIS_REPLY_ERROR) {
                if (!failed)
                    fprintf(stderr, "nearcache-bench: preload %s: %s\n", url,
                            r ? r->str : "no answer");
                failed = 1;
            }
            freeReplyObject(r);
        }
    }
    free(value);
    bench_cluster_close(&cl);
    return failed;
}
