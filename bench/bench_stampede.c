/* nearcache-bench stampede: how many database loads a cold hot key costs.
 *
 * Each round, every client thread (half on daemon A, half on daemon B when
 * --b is given: two hosts sharing Redis) asks for the same key, one that
 * no one has cached, at the same moment, and loads it from "the database"
 * (a loader that sleeps --load-ms and counts its calls) when it has to.
 * Three ways to do that, each with fresh keys:
 *   direct  - cache-aside on Redis itself: GET, and on a miss load and SET;
 *   nc-get  - cache-aside through nearcache: nc_get, and on a miss load
 *             and nc_set (single flight shares the Redis read, not the load);
 *   nc-fetch - nc_fetch(): one lease holder loads, the others wait for it.
 * The report: loads per round (the database's cost of one cold key) and
 * the latency of a client's read, load included. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "bench_paths.h"
#include "nearcache.h"

enum way { DIRECT, NC_GET, NC_FETCH, NWAYS };
static const char *const way_name[NWAYS] = {"direct", "nc-get", "nc-fetch"};
static const char *const way_about[NWAYS] = {
    "cache-aside on Redis: GET, on a miss load and SET",
    "cache-aside through nearcache: nc_get, on a miss load and nc_set",
    "read-through with a lease: nc_fetch",
};

typedef struct stampede stampede;

typedef struct client {
    stampede *st;
    int index;
    pthread_t thread;
    nc_client *nc;
    redisContext *rc;
    bench_hist hist[NWAYS];
    int errors;
    char err[256];
} client;

struct stampede {
    const bench_opts *o;
    int nclients;
    client *clients;
    pthread_barrier_t start, done;
    enum way way; /* this round's, set before the start barrier */
    int round;
    long nonce; /* makes this run's keys new */
    int stop;
    atomic_int loads;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* nc_loader and the direct path's load: "the database". */
static int load(void *arg, nc_bytes ns, nc_bytes key, void **value, size_t *len)
{
    stampede *st = arg;
    (void)ns, (void)key;
    atomic_fetch_add(&st->loads, 1);
    sleep_ms(st->o->load_ms);
    *value = strdup("loaded from the database");
    *len = strlen(*value);
    return *value != NULL ? 0 : -1;
}

/* One client's read of the round's key, by the round's way. */
static int read_once(client *c, const char *key)
{
    stampede *st = c->st;
    nc_bytes k = {key, strlen(key)};
    void *v = NULL;
    size_t len;
    int rv = 0;
    switch (st->way) {
    case DIRECT: {
        char full[128];
        snprintf(full, sizeof full, "bench:stampede:%s", key);
        redisReply *r = redisCommand(c->rc, "GET %s", full);
        if (r != NULL && r->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            if (load(st, NC_STR("bench"), k, &v, &len) != 0)
                return -1;
            r = redisCommand(c->rc, "SET %s %b PX 60000", full, v, len);
        }
        rv = r != NULL && r->type != REDIS_REPLY_ERROR ? 0 : -1;
        if (r != NULL)
            freeReplyObject(r);
        free(v);
        return rv;
    }
    case NC_GET:
        rv = nc_get(c->nc, NC_STR("bench"), k, &v, &len, 0);
        if (rv == NC_ENOTFOUND) {
            if (load(st, NC_STR("bench"), k, &v, &len) != 0)
                return -1;
            rv = nc_set(c->nc, NC_STR("bench"), k, (nc_bytes){v, len}, 60000, 0);
            free(v);
            return rv == NC_OK ? 0 : -1;
        }
        nc_free(v);
        return rv == NC_OK ? 0 : -1;
    case NC_FETCH:
        rv = nc_fetch(c->nc, NC_STR("bench"), k, 60000, load, st, &v, &len, 0);
        nc_free(v);
        return rv == NC_OK ? 0 : -1;
    default:
        return -1;
    }
}

static void *client_main(void *arg)
{
    client *c = arg;
    stampede *st = c->st;
    char key[64];
    for (;;) {
        pthread_barrier_wait(&st->start);
        if (st->stop)
            return NULL;
        snprintf(key, sizeof key, "%s-%ld-%d", way_name[st->way], st->nonce, st->round);
        int64_t t0 = bench_now_ns();
        if (read_once(c, key) != 0) {
            c->errors++;
            snprintf(c->err, sizeof c->err, "%s", st->way == DIRECT ? "redis" : nc_errmsg());
        } else {
            bench_hist_add(&c->hist[st->way], bench_now_ns() - t0);
        }
        pthread_barrier_wait(&st->done);
    }
}

static int open_clients(stampede *st)
{
    const bench_opts *o = st->o;
    for (int i = 0; i < st->nclients; i++) {
        client *c = &st->clients[i];
        c->st = st;
        c->index = i;
        const char *url = o->url_b != NULL && i % 2 == 1 ? o->url_b : o->url_a;
        if (nc_open(&c->nc, url, 0) != NC_OK) {
            fprintf(stderr, "nearcache-bench: %s: %s\n", url, nc_errmsg());
            return -1;
        }
        char err[256];
        if ((c->rc = path_redis_connect(o->redis, err, sizeof err)) == NULL) {
            fprintf(stderr, "nearcache-bench: %s\n", err);
            return -1;
        }
        for (int w = 0; w < NWAYS; w++)
            bench_hist_init(&c->hist[w], (size_t)o->rounds);
    }
    return 0;
}

int bench_stampede(const bench_opts *o)
{
    stampede st = {.o = o, .nclients = o->threads > 1 ? o->threads : 16, .nonce = (long)time(NULL)};
    st.clients = calloc((size_t)st.nclients, sizeof *st.clients);
    if (st.clients == NULL || open_clients(&st) != 0)
        return 1;
    pthread_barrier_init(&st.start, NULL, (unsigned)st.nclients + 1);
    pthread_barrier_init(&st.done, NULL, (unsigned)st.nclients + 1);
    for (int i = 0; i < st.nclients; i++)
        pthread_create(&st.clients[i].thread, NULL, client_main, &st.clients[i]);
    int loads[NWAYS] = {0}, most[NWAYS] = {0};
    for (int round = 0; round < o->rounds; round++) {
        for (int w = 0; w < NWAYS; w++) { /* interleaved, as the other paths */
            st.way = (enum way)w;
            st.round = round;
            atomic_store(&st.loads, 0);
            pthread_barrier_wait(&st.start);
            pthread_barrier_wait(&st.done);
            int n = atomic_load(&st.loads);
            loads[w] += n;
            most[w] = n > most[w] ? n : most[w];
        }
    }
    st.stop = 1;
    pthread_barrier_wait(&st.start);
    int errors = 0;
    for (int i = 0; i < st.nclients; i++) {
        pthread_join(st.clients[i].thread, NULL);
        if (st.clients[i].errors > 0)
            fprintf(stderr, "nearcache-bench: client %d: %d errors, last: %s\n", i,
                    st.clients[i].errors, st.clients[i].err);
        errors += st.clients[i].errors;
    }

    if (o->json)
        printf("{\"stampede\": {\"clients\": %d, \"daemons\": %d, \"rounds\": %d, "
               "\"load_ms\": %d, \"ways\": [",
               st.nclients, o->url_b != NULL ? 2 : 1, o->rounds, o->load_ms);
    else
        printf("%d clients on %d daemon(s), %d rounds, a load takes %d ms\n"
               "%-10s %14s %10s %10s %10s  %s\n",
               st.nclients, o->url_b != NULL ? 2 : 1, o->rounds, o->load_ms, "way", "loads/round",
               "most", "p50 us", "p99 us", "what");
    for (int w = 0; w < NWAYS; w++) {
        bench_hist all;
        bench_hist_init(&all, (size_t)(o->rounds * st.nclients));
        for (int i = 0; i < st.nclients; i++)
            bench_hist_merge(&all, &st.clients[i].hist[w]);
        double per = o->rounds > 0 ? (double)loads[w] / o->rounds : 0;
        double p50 = (double)bench_hist_quantile(&all, 0.5) / 1e3;
        double p99 = (double)bench_hist_quantile(&all, 0.99) / 1e3;
        if (o->json)
            printf("%s{\"way\": \"%s\", \"loads_per_round\": %.2f, \"most_loads\": %d, "
                   "\"p50_us\": %.1f, \"p99_us\": %.1f}",
                   w ? ", " : "", way_name[w], per, most[w], p50, p99);
        else
            printf("%-10s %14.2f %10d %10.1f %10.1f  %s\n", way_name[w], per, most[w], p50, p99,
                   way_about[w]);
        bench_hist_free(&all);
    }
    if (o->json)
        printf("], \"errors\": %d}}\n", errors);
    for (int i = 0; i < st.nclients; i++) {
        for (int w = 0; w < NWAYS; w++)
            bench_hist_free(&st.clients[i].hist[w]);
        nc_close(st.clients[i].nc);
        redisFree(st.clients[i].rc);
    }
    pthread_barrier_destroy(&st.start);
    pthread_barrier_destroy(&st.done);
    free(st.clients);
    return errors > 0 ? 1 : 0;
}
