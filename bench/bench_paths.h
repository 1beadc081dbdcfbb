/* nearcache-bench paths (private to the bench): what one client thread of
 * one path holds and does. A path is one kind of operation against one
 * target; bench_paths.c has the table, the connections and the operations,
 * bench_load.c runs them. */
#ifndef NC_BENCH_PATHS_H
#define NC_BENCH_PATHS_H

#include <hiredis/hiredis.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"
#include "nearcache.h"

#define NS            "bench"
#define MGET_MAX      256 /* most keys in one MGet */
#define NEAR_HOT_KEYS 100 /* the keys the `near` path reads */

enum kind {
    ECHO,
    ECHO_PERCALL,
    RAW_HOT,
    NC_HOT,
    NC_MISS,
    NC_ZIPF,
    REDIS_GET,
    REDIS_MISS,
    REDIS_ZIPF,
    NC_MGET,
    REDIS_MGET,
    NC_SET,
    REDIS_SET
};
enum where { AT_LOCAL, AT_L2, AT_REMOTE, AT_NEAR, AT_ECHO, AT_CLUSTER, AT_L2_TLS, AT_L2_OTHER, AT_COUNT };

typedef struct path_def {
    const char *name;
    enum kind kind;
    enum where where;
    const char *about;
    int near; /* the client keeps a near tier */
} path_def;

enum phase { WARM, MEASURE, STOP };

/* What an operation returns: -1 on failure, else where its answer came
 * from (0 when that does not apply). */
enum { FROM_L1 = 1, FROM_L2 = 2, FROM_NEAR = 3 };

/* What the threads of a run share. */
typedef struct shared {
    const bench_opts *o;
    const char *echo_url;
    int echo_pid;
    double *zipf_cdf; /* cumulative weights of ranks 0..keys-1, normalised */
    char *value;      /* value_size bytes */
    size_t echo_size; /* bytes of an echo request (and reply) */
    _Atomic int phase;
    atomic_int done;
} shared;

typedef struct worker {
    shared *sh;
    const path_def *p;
    int id;
    uint64_t rng, quota, ops_sent;
    int want; /* FROM_L1 or FROM_L2: time only the answers from there (0: all) */
    nc_client *nc;
    redisContext *rc;
    struct bench_cluster *cl; /* AT_CLUSTER's direct paths: a connection per master */
    nng_socket sock;
    nng_ctx ctx;
    nng_aio *aio;
    pthread_t thread;
    bench_hist hist;
    uint64_t ops, errors, l1, l2, notfound;
    char err[200];
} worker;

uint64_t path_rng_next(uint64_t *s);
/* A uniform double in [0, 1). */
double path_rng_unit(uint64_t *s);
/* The cumulative Zipf table of n ranks with exponent s (caller frees it),
 * and a draw from it for a uniform u. */
double *path_zipf_table(size_t n, double s);
size_t path_zipf_draw(const double *cdf, size_t n, double u);
/* Key i as the client names it, and as Redis holds it (keyspace.c; 0: no room). */
size_t path_key(char *buf, size_t cap, size_t i);
size_t path_redis_key(const bench_opts *o, char *buf, size_t cap, size_t i);
/* Sets the namespace version path_redis_key() uses; -1 when another was
 * set before (two Redis servers that disagree). */
int path_set_version(const char *version);
/* Bytes of an echo message: the larger of a Get request and its reply. */
size_t path_echo_size(const bench_opts *o);
/* The path called name[0..len), or NULL. */
const path_def *path_find(const char *name, size_t len);
/* The pid of the server a path talks to (daemon or echo server), or 0. */
int path_server_pid(const shared *sh, const path_def *p);
/* Connects to Redis at redis://HOST:PORT or unix://PATH. Returns the
 * context (caller frees it with redisFree()) or NULL, with err set. */
redisContext *path_redis_connect(const char *url, char *err, size_t errlen);
/* Makes the bench namespace's version "1" in Redis at rc unless it is
 * there, and sets path_set_version() to what Redis holds (bench_load.c).
 * Returns 0, or 1 after printing why (url names the Redis). */
int bench_preload_version(const bench_opts *o, redisContext *rc, const char *url);
/* Opens the worker's connection. Returns 0, or -1 with w->err set. */
int path_open(worker *w);
void path_close(worker *w);
/* Whether the path talks to Redis directly. */
int path_is_redis(const path_def *p);
/* One operation: -1 on failure, else FROM_L1, FROM_L2 or 0. */
int path_op(worker *w);

#endif
