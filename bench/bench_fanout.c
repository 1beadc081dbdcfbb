/* nc-fanout-bench: Redis's cost of invalidation fan-out, one phase.
 *
 * Holds N connections subscribed to the invalidation channel (standing in
 * for N hosts' daemons; one thread drains them all), then runs W writer
 * threads doing Sets through a daemon for a while, and prints Redis's CPU
 * time (INFO cpu: used_cpu_user + used_cpu_sys, before and after) per
 * write, the writes' latency, and Redis's CPU per second while idle with
 * the same subscribers (heartbeats only). bench/fanout.sh runs it once per
 * inval_batch setting, against the same Redis.
 *
 * With --cluster P1,P2,...: the masters of a Redis Cluster on 127.0.0.1;
 * each subscriber is then one connection per master, SSUBSCRIBEd there to
 * the invalidation channels (keyspace.h) of the buckets it serves, as a
 * daemon's subscriber is, and Redis's CPU is given per master. With
 * --one-channel too, each subscriber SSUBSCRIBEs --channel alone, on its
 * master: the one sharded channel of nearcached before channels per master. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "keyspace.h"
#include "nearcache.h"

#define MAX_MASTERS 16

typedef struct opts {
    const char *host, *daemon, *channel, *label;
    int port, subs, writers, raw;
    double seconds, idle;
    int masters, ports[MAX_MASTERS]; /* --cluster */
    char (*chan)[KS_CHANNEL_SIZE];   /* per bucket: its channel */
    int at[KS_INVAL_BUCKETS];        /* per bucket: the master serving it */
    int one;                         /* --one-channel: --channel on its master alone */
} opts;

static atomic_int stop_drain, stop_write;
static atomic_uint_fast64_t drained;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A connected socket to port; -1 on failure. */
static int dial(const opts *o, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, o->host, &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* A Cluster subscriber's connection to master m, SSUBSCRIBEd to the
 * channels of its buckets; -1 on failure. */
static int shard_subscriber(const opts *o, int m)
{
    int fd = dial(o, o->ports[m]);
    for (int b = 0; fd >= 0 && b < KS_INVAL_BUCKETS; b++) {
        if (o->at[b] != m)
            continue;
        char cmd[256];
        int n = snprintf(cmd, sizeof cmd, "*2\r\n$10\r\nSSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                         strlen(o->chan[b]), o->chan[b]);
        if (write(fd, cmd, (size_t)n) != n) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* One subscribing connection, as a raw socket; -1 on failure. */
static int subscriber(const opts *o)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    inet_pton(AF_INET, o->host, &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char cmd[256];
    int n = snprintf(cmd, sizeof cmd, "*3\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n$%zu\r\n%s:raw\r\n",
                     strlen(o->channel), o->channel, strlen(o->channel) + 4, o->channel);
    if (write(fd, cmd, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads every subscriber's bytes and drops them. */
static void *drain(void *arg)
{
    int ep = *(int *)arg;
    struct epoll_event ev[64];
    char buf[65536];
    while (!atomic_load(&stop_drain)) {
        int n = epoll_wait(ep, ev, 64, 100);
        for (int i = 0; i < n; i++) {
            ssize_t r;
            while ((r = recv(ev[i].data.fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
                atomic_fetch_add(&drained, (uint64_t)r);
        }
    }
    return NULL;
}

/* Redis's CPU seconds so far (user + sys). */
static double redis_cpu(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO cpu");
    double user = 0, sys = 0;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        const char *u = strstr(r->str, "used_cpu_user:"), *s = strstr(r->str, "used_cpu_sys:");
        if (u != NULL)
            user = atof(u + 14);
        if (s != NULL)
            sys = atof(s + 13);
    }
    freeReplyObject(r);
    return user + sys;
}

static int sharded; /* --cluster: channels are sharded */

static long long numsub(redisContext *c, const char *channel)
{
    redisReply *r = redisCommand(c, "PUBSUB %s %s", sharded ? "SHARDNUMSUB" : "NUMSUB", channel);
    long long n = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2
                      ? r->element[1]->integer
                      : -1;
    freeReplyObject(r);
    return n;
}

typedef struct writer {
    const opts *o;
    int id;
    uint32_t *lat_us; /* one per write, up to cap */
    size_t n, cap;
    long failed;
} writer;

static void *write_loop(void *arg)
{
    writer *w = arg;
    nc_client *c;
    if (nc_open(&c, w->o->daemon, 0) != NC_OK) {
        fprintf(stderr, "nc-fanout-bench: %s\n", nc_errmsg());
        w->failed = -1;
        return NULL;
    }
    unsigned seed = (unsigned)w->id * 2654435761u;
    char key[32], value[33];
    memset(value, 'x', 32);
    value[32] = 0;
    while (!atomic_load(&stop_write)) {
        snprintf(key, sizeof key, "k%u", rand_r(&seed) % 10000);
        double t0 = now_s();
        int rv = nc_set(c, NC_STR("fanout"), NC_STR(key), NC_STR(value), 60000, 2000);
        double us = (now_s() - t0) * 1e6;
        if (rv != NC_OK) {
            w->failed++;
            continue;
        }
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 65536;
            uint32_t *l = realloc(w->lat_us, cap * sizeof *l);
            if (l == NULL)
                break;
            w->lat_us = l, w->cap = cap;
        }
        w->lat_us[w->n++] = (uint32_t)us;
    }
    nc_close(c);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: nc-fanout-bench --port N --daemon URL [--host 127.0.0.1] [--subs 500] "
                    "[--writers 16] [--seconds 5] [--idle 2] [--channel nc:v1:inval] "
                    "[--label NAME] [--cluster P1,P2,P3 [--prefix nc:v1]]\n");
    exit(2);
}

/* Redis's CPU seconds so far on each of n servers into per[], and their sum. */
static double cpu_all(redisContext **ctl, int n, double *per)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += per[i] = redis_cpu(ctl[i]);
    return sum;
}

/* --cluster: which master serves each bucket's channel (the one that does
 * not answer MOVED); with --one-channel, bucket 0 stands for --channel and
 * the others are none. Returns 0, or -1 when one is served by none. */
static int locate_buckets(opts *o, redisContext **ctl, const char *prefix)
{
    unsigned n_of[KS_INVAL_BUCKETS];
    ks_inval_tags(prefix, n_of);
    o->chan = calloc(KS_INVAL_BUCKETS, sizeof *o->chan);
    for (int b = 0; b < KS_INVAL_BUCKETS; b++) {
        ks_inval_channel(o->chan[b], sizeof o->chan[b], prefix, n_of[b], NULL);
        if (o->one)
            snprintf(o->chan[b], sizeof o->chan[b], "%s", o->channel);
        o->at[b] = -1;
        if (o->one && b > 0) {
            o->at[b] = -2; /* none: every subscriber has its one channel in bucket 0 */
            continue;
        }
        for (int m = 0; m < o->masters && o->at[b] < 0; m++) {
            redisReply *r = redisCommand(ctl[m], "EXISTS %s", o->chan[b]);
            if (r != NULL && r->type == REDIS_REPLY_INTEGER)
                o->at[b] = m;
            freeReplyObject(r);
        }
        if (o->at[b] < 0)
            return -1;
    }
    return 0;
}

/* The channel of master m's lowest bucket, to count its subscribers. */
static const char *head_of(const opts *o, int m)
{
    for (int b = 0; b < KS_INVAL_BUCKETS; b++)
        if (o->at[b] == m)
            return o->chan[b];
    return o->channel;
}

int main(int argc, char **argv)
{
    opts o = {"127.0.0.1", NULL, "nc:v1:inval", "run", 0, 500, 16, 0, 5, 2, 0, {0}, NULL, {0}, 0};
    const char *prefix = "nc:v1";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--port") == 0)
            o.port = atoi(v);
        else if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--daemon") == 0)
            o.daemon = v;
        else if (strcmp(a, "--subs") == 0)
            o.subs = atoi(v);
        else if (strcmp(a, "--writers") == 0)
            o.writers = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            o.seconds = atof(v);
        else if (strcmp(a, "--idle") == 0)
            o.idle = atof(v);
        else if (strcmp(a, "--channel") == 0)
            o.channel = v;
        else if (strcmp(a, "--label") == 0)
            o.label = v;
        else if (strcmp(a, "--raw") == 0)
            o.raw = atoi(v);
        else if (strcmp(a, "--prefix") == 0)
            prefix = v;
        else if (strcmp(a, "--one-channel") == 0)
            o.one = atoi(v);
        else if (strcmp(a, "--cluster") == 0)
            for (const char *p = v; *p && o.masters < MAX_MASTERS;
                 p = strchr(p, ',') ? strchr(p, ',') + 1 : "")
                o.ports[o.masters++] = atoi(p);
        else
            usage();
    }
    if (o.masters > 0)
        o.port = o.ports[0], sharded = 1;
    if (o.port <= 0 || o.daemon == NULL || o.subs < 0 || o.writers < 1 || o.seconds <= 0)
        usage();
    int nctl = o.masters > 0 ? o.masters : 1;
    redisContext *ctl[MAX_MASTERS];
    for (int m = 0; m < nctl; m++) {
        ctl[m] = redisConnect(o.host, o.masters > 0 ? o.ports[m] : o.port);
        if (ctl[m] == NULL || ctl[m]->err) {
            fprintf(stderr, "nc-fanout-bench: redis: %s\n",
                    ctl[m] ? ctl[m]->errstr : "out of memory");
            return 1;
        }
    }
    if (o.masters > 0 && locate_buckets(&o, ctl, prefix) != 0) {
        fprintf(stderr, "nc-fanout-bench: a bucket's channel is on none of the masters given\n");
        return 1;
    }
    long long before[MAX_MASTERS]; /* the daemons' own subscriptions */
    for (int m = 0; m < nctl; m++)
        before[m] = o.one && m != o.at[0]
                        ? 0
                        : numsub(ctl[m], o.masters > 0 ? head_of(&o, m) : o.channel);
    int ep = epoll_create1(0);
    int nsub = o.one ? 1 : nctl; /* connections per subscriber */
    int nfds = o.subs * nsub;
    int *fds = calloc((size_t)nfds + 1, sizeof *fds);
    for (int i = 0; i < nfds; i++) {
        fds[i] = o.masters == 0 ? subscriber(&o)
                 : o.one        ? shard_subscriber(&o, o.at[0])
                                : shard_subscriber(&o, i % nctl);
        if (fds[i] < 0) {
            fprintf(stderr, "nc-fanout-bench: subscriber %d: %s (ulimit -n?)\n", i,
                    strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    pthread_t drainer;
    pthread_create(&drainer, NULL, drain, &ep);
    for (int m = 0; m < nctl; m++) {
        const char *ch = o.masters > 0 ? head_of(&o, m) : o.channel;
        if (o.one && m != o.at[0])
            continue;
        for (int i = 0; i < 500 && numsub(ctl[m], ch) < before[m] + o.subs; i++)
            usleep(10000);
        if (numsub(ctl[m], ch) < before[m] + o.subs) {
            fprintf(stderr, "nc-fanout-bench: only %lld of %d subscribed to %s\n",
                    numsub(ctl[m], ch) - before[m], o.subs, ch);
            return 1;
        }
    }
    if (o.raw > 0 && o.masters == 0) { /* PUBLISH alone, pipelined by 100: cost per delivery */
        char msg[200];
        memset(msg, 'm', sizeof msg);
        double r0 = redis_cpu(ctl[0]);
        for (int i = 0; i < o.raw; i += 100) {
            for (int j = 0; j < 100; j++)
                redisAppendCommand(ctl[0], "PUBLISH %s:raw %b", o.channel, msg, sizeof msg);
            for (int j = 0; j < 100; j++) {
                redisReply *r = NULL;
                if (redisGetReply(ctl[0], (void **)&r) != REDIS_OK)
                    return 1;
                freeReplyObject(r);
            }
        }
        double per = (redis_cpu(ctl[0]) - r0) * 1e6 / ((o.raw + 99) / 100 * 100);
        printf("%s: %d PUBLISHes of 200 bytes pipelined by 100 to %d subscribers: %.1f us each "
               "(%.3f us per subscriber)\n",
               o.label, (o.raw + 99) / 100 * 100, o.subs, per, o.subs ? per / o.subs : 0.0);
    }
    /* idle: the daemons' heartbeats alone */
    double per0[MAX_MASTERS], per1[MAX_MASTERS];
    double c0 = cpu_all(ctl, nctl, per0), t0 = now_s();
    usleep((useconds_t)(o.idle * 1e6));
    double idle_cpu_per_s = (cpu_all(ctl, nctl, per1) - c0) / (now_s() - t0);
    /* load */
    writer *w = calloc((size_t)o.writers, sizeof *w);
    pthread_t *t = calloc((size_t)o.writers, sizeof *t);
    c0 = cpu_all(ctl, nctl, per0), t0 = now_s();
    for (int i = 0; i < o.writers; i++) {
        w[i] = (writer){.o = &o, .id = i + 1};
        pthread_create(&t[i], NULL, write_loop, &w[i]);
    }
    usleep((useconds_t)(o.seconds * 1e6));
    atomic_store(&stop_write, 1);
    size_t total = 0;
    long failed = 0;
    for (int i = 0; i < o.writers; i++) {
        pthread_join(t[i], NULL);
        total += w[i].n;
        failed += w[i].failed;
    }
    double elapsed = now_s() - t0, cpu = cpu_all(ctl, nctl, per1) - c0;
    uint32_t *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < o.writers; i++) {
        memcpy(all + k, w[i].lat_us, w[i].n * sizeof *all);
        k += w[i].n;
        free(w[i].lat_us);
    }
    qsort(all, total, sizeof *all, cmp_u32);
    uint32_t p50 = total ? all[total / 2] : 0, p99 = total ? all[total * 99 / 100] : 0;
    printf("%s: %d subscribers, %d writers, %.1f s: %zu writes (%.0f/s, %ld failed), redis cpu "
           "%.2f us per write (%.0f%% of a core), write p50 %u us p99 %u us; idle redis cpu "
           "%.0f us/s\n",
           o.label, o.subs, o.writers, elapsed, total, (double)total / elapsed, failed,
           total ? cpu * 1e6 / (double)total : 0.0, cpu / elapsed * 100, p50, p99,
           idle_cpu_per_s * 1e6);
    if (o.masters > 0) {
        double busiest = 0;
        printf("%s: redis cpu per write on each master:", o.label);
        for (int m = 0; m < nctl; m++) {
            double us = total ? (per1[m] - per0[m]) * 1e6 / (double)total : 0.0;
            busiest = us > busiest ? us : busiest;
            printf(" %d: %.2f us (%.0f%% of a core);", o.ports[m], us,
                   (per1[m] - per0[m]) / elapsed * 100);
        }
        printf(" busiest %.2f us\n", busiest);
    }
    atomic_store(&stop_drain, 1);
    pthread_join(drainer, NULL);
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    free(fds);
    free(all);
    free(w);
    free(t);
    free(o.chan);
    for (int m = 0; m < nctl; m++)
        redisFree(ctl[m]);
    return failed > 0 || total == 0 ? 1 : 0;
}
