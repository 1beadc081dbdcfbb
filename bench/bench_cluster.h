/* nearcache-bench on a Redis Cluster: routing of the direct hiredis
 * baselines (see bench_cluster.c). A handle is one client thread's. */
#ifndef NC_BENCH_CLUSTER_H
#define NC_BENCH_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "bench_paths.h"
#include "keyspace.h"

#define BENCH_CLUSTER_NODES 16

typedef struct bench_cluster {
    redisContext *rc[BENCH_CLUSTER_NODES]; /* one per master */
    char host[BENCH_CLUSTER_NODES][256];
    int port[BENCH_CLUSTER_NODES];
    int n;
    int8_t owner[KS_SLOTS]; /* slot -> index into rc */
} bench_cluster;

/* Connects to every master of the cluster that redis://HOST:PORT is a node
 * of, with the slot map it gives. Returns 0, or -1 with err set. Close
 * with bench_cluster_close(). */
int bench_cluster_open(bench_cluster *cl, const char *url, char *err, size_t errlen);
void bench_cluster_close(bench_cluster *cl);

/* The connection to the master of key's slot (owned by cl). */
redisContext *bench_cluster_at(const bench_cluster *cl, const void *key, size_t klen);

/* The values of keys[0..n) as a cluster client reads them: a pipeline of
 * GETs per master, all sent before any answer is read. Returns 0 when
 * every key was found, else -1 with err set. */
int bench_cluster_mget(bench_cluster *cl, const char *const *keys, const size_t *lens, size_t n,
                       char *err, size_t errlen);

/* bench_preload() on a cluster: the namespace's version and every key,
 * each on its master. Returns 0, or 1 after printing why. */
int bench_cluster_preload(const bench_opts *o, const char *url);

#endif
