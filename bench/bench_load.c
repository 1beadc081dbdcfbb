/* nearcache-bench load runner: closed-loop client threads over one path.
 *
 * A path is one kind of operation against one target (bench_paths.c). Each
 * thread owns its connection (an nc_client, a hiredis context or an nng REQ
 * socket: like separate processes on the host) and loops: time one
 * operation, record it. A slice is: start the threads, warm up, measure for
 * a while, stop. Every path of a run is measured in o->slices slices, taken
 * in turn (A B C A B C ...), so drift on a shared machine hits every path
 * alike and ratios between paths of one run hold. Connections live across
 * slices; threads do not. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_cluster.h"
#include "bench_paths.h"
#include "keyspace.h"

/* One spec of a run: a path, its threads and its results. */
typedef struct spec {
    const path_def *p;
    int threads;
    worker *w;
    bench_result *r;
} spec;

static void *worker_main(void *arg)
{
    worker *w = arg;
    uint64_t done = 0;
    for (;;) {
        int ph = atomic_load_explicit(&w->sh->phase, memory_order_relaxed);
        if (ph == STOP)
            break;
        int64_t t0 = bench_now_ns();
        int rv = path_op(w);
        int64_t t1 = bench_now_ns();
        if (ph != MEASURE)
            continue;
        w->l1 += rv == FROM_L1;
        w->l2 += rv == FROM_L2;
        if (rv >= 0 && (w->want == 0 || rv == w->want)) {
            bench_hist_add(&w->hist, t1 - t0);
            w->ops++;
        } else if (rv < 0) {
            w->errors++;
            if (w->rc != NULL && w->rc->err) /* a broken hiredis context stays broken */
                break;
        }
        if (w->quota > 0 && ++done >= w->quota)
            break;
    }
    atomic_fetch_add(&w->sh->done, 1);
    return NULL;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* CPU time of process `pid` (0: none) in seconds, or -1. */
static double cpu_of(int pid)
{
    clockid_t id;
    struct timespec ts;
    if (pid > 0 ? clock_getcpuclockid(pid, &id) != 0 : 1)
        return -1;
    if (clock_gettime(id, &ts) != 0)
        return -1;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Context switches of every thread of `pid` so far, or -1. */
static double switches_of(int pid)
{
    char path[64], line[128];
    double total = 0;
    int found = 0;
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char status[400];
        snprintf(status, sizeof status, "%s/%s/status", path, e->d_name);
        FILE *f = fopen(status, "r");
        unsigned long long v;
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
                total += (double)v, found = 1;
        if (f != NULL)
            fclose(f);
    }
    if (d != NULL)
        closedir(d);
    return found ? total : -1;
}

static double self_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one slice of `sp`: warm-up, then `dur` seconds or the quota. */
static void run_slice(shared *sh, spec *sp, double warm, double dur, uint64_t quota)
{
    atomic_store(&sh->phase, WARM);
    atomic_store(&sh->done, 0);
    for (int t = 0; t < sp->threads; t++) {
        sp->w[t].quota = quota;
        pthread_create(&sp->w[t].thread, NULL, worker_main, &sp->w[t]);
    }
    sleep_s(warm);
    int pid = path_server_pid(sh, sp->p);
    double srv0 = cpu_of(pid), cli0 = self_cpu(), cs0 = switches_of(pid);
    int64_t t0 = bench_now_ns();
    atomic_store(&sh->phase, MEASURE);
    if (quota > 0) {
        while (atomic_load(&sh->done) < sp->threads)
            sleep_s(0.001);
    } else {
        sleep_s(dur);
    }
    int64_t t1 = bench_now_ns();
    double srv1 = cpu_of(pid), cli1 = self_cpu(), cs1 = switches_of(pid);
    atomic_store(&sh->phase, STOP);
    for (int t = 0; t < sp->threads; t++)
        pthread_join(sp->w[t].thread, NULL);
    sp->r->seconds += (double)(t1 - t0) / 1e9;
    if (srv0 >= 0 && srv1 >= 0)
        sp->r->server_cpu_s += srv1 - srv0;
    else
        sp->r->server_cpu_s = -1e9; /* unknown */
    sp->r->client_cpu_s += cli1 - cli0;
    if (cs0 >= 0 && cs1 >= 0)
        sp->r->server_switches += cs1 - cs0;
    else
        sp->r->server_switches = -1e18; /* unknown */
}

static void collect(spec *sp)
{
    bench_result *r = sp->r;
    nc_near_stats sum = {0};
    for (int t = 0; t < sp->threads; t++) {
        worker *w = &sp->w[t];
        nc_near_stats ns;
        if (sp->p->near && nc_stats_near(w->nc, &ns) == NC_OK) {
            sum.hits += ns.hits, sum.misses += ns.misses, sum.entries += ns.entries;
            sum.bytes += ns.bytes, sum.evictions += ns.evictions, sum.flushes += ns.flushes;
            sum.laps += ns.laps, sum.fills_refused += ns.fills_refused;
        }
        bench_hist_merge(&r->hist, &w->hist);
        r->ops += w->ops;
        r->errors += w->errors;
        r->l1 += w->l1;
        r->l2 += w->l2;
        r->notfound += w->notfound;
        if (w->errors > 0 && w->err[0] != '\0')
            fprintf(stderr, "nearcache-bench: %s@%d: %llu errors, e.g. %s\n", r->path, sp->threads,
                    (unsigned long long)w->errors, w->err);
    }
    if (sp->p->near)
        fprintf(stderr,
                "nearcache-bench: %s@%d near tier: %llu hits, %llu misses, %llu entries, "
                "%llu bytes, %llu evictions, %llu flushes, %llu laps, %llu fills refused\n",
                r->path, sp->threads, (unsigned long long)sum.hits, (unsigned long long)sum.misses,
                (unsigned long long)sum.entries, (unsigned long long)sum.bytes,
                (unsigned long long)sum.evictions, (unsigned long long)sum.flushes,
                (unsigned long long)sum.laps, (unsigned long long)sum.fills_refused);
}

/* Parses PATH[@THREADS]. Returns 0, or -1 after printing why. */
static int parse_spec(const bench_opts *o, const char *s, spec *sp)
{
    const char *at = strchr(s, '@');
    size_t len = at ? (size_t)(at - s) : strlen(s);
    sp->p = path_find(s, len);
    sp->threads = at ? atoi(at + 1) : o->threads;
    if (sp->p == NULL || sp->threads < 1 || sp->threads > 1024) {
        fprintf(stderr, "nearcache-bench: unknown path or bad thread count: %s\n", s);
        return -1;
    }
    return 0;
}

/* Opens every worker of every spec. Returns 0, or -1 after printing why. */
static int open_workers(shared *sh, spec *sp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sp[i].w = calloc((size_t)sp[i].threads, sizeof *sp[i].w);
        if (sp[i].w == NULL)
            return -1;
        for (int t = 0; t < sp[i].threads; t++) {
            worker *w = &sp[i].w[t];
            w->sh = sh;
            w->p = sp[i].p;
            w->id = t;
            w->rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i * 1024 + (size_t)t + 1);
            if (w->p->kind == NC_HOT || w->p->kind == RAW_HOT)
                w->want = w->p->near                                               ? FROM_NEAR
                          : w->p->where == AT_L2 || w->p->where == AT_CLUSTER ||
                                  w->p->where == AT_L2_TLS || w->p->where == AT_L2_OTHER
                              ? FROM_L2
                                                                               : FROM_L1;
            if (path_open(w) != 0) {
                fprintf(stderr, "nearcache-bench: %s: %s\n", sp[i].p->name, w->err);
                return -1;
            }
        }
    }
    return 0;
}

/* Reads every key once through the daemon at `url`, so that its L1 holds
 * them, and checks that the last key is then an L1 hit (or, for the daemon
 * with a tiny l1_max_ttl, that it is found in Redis under the layout the
 * bench wrote). Returns 0, or -1 after printing why. */
static int warm_daemon(const bench_opts *o, const char *url, int want_l1)
{
    nc_client *c;
    if (nc_open(&c, url, 0) != NC_OK) {
        fprintf(stderr, "nearcache-bench: %s: %s\n", url, nc_errmsg());
        return -1;
    }
    int rv = NC_OK, bad = 0;
    nc_get_info info = {0};
    for (size_t i = 0; i < o->keys && rv == NC_OK; i++) {
        char key[40];
        void *v = NULL;
        size_t len, klen = path_key(key, sizeof key, i);
        rv = nc_get_ex(c, NC_STR(NS), (nc_bytes){key, klen}, &v, &len, &info, 5000);
        bad = rv == NC_OK && len != o->value_size;
        nc_free(v);
        if (!want_l1 && i >= 10)
            break;
        if (rv == NC_OK && i + 1 == o->keys) { /* read it again: now from L1 */
            rv = nc_get_ex(c, NC_STR(NS), (nc_bytes){key, klen}, &v, &len, &info, 5000);
            nc_free(v);
        }
    }
    nc_close(c);
    if (rv != NC_OK || bad) {
        fprintf(stderr,
                "nearcache-bench: %s: a preloaded key does not read back (%s): is the daemon's "
                "prefix %s, and its Redis the one the bench wrote?\n",
                url, rv != NC_OK ? nc_strerror(rv) : "wrong length", o->prefix);
        return -1;
    }
    if (want_l1 && info.source != NC_SOURCE_L1)
        fprintf(stderr,
                "nearcache-bench: %s: warning: a warmed key is not an L1 hit (is L1 "
                "serving? is it big enough?)\n",
                url);
    return 0;
}

int bench_preload_version(const bench_opts *o, redisContext *rc, const char *url)
{
    char vkey[KS_NSVER_KEY_MAX];
    size_t vlen = ks_nsver_key(vkey, o->prefix, NS, strlen(NS));
    freeReplyObject(redisCommand(rc, "SET %b 1 NX", vkey, vlen));
    redisReply *ver = redisCommand(rc, "GET %b", vkey, vlen);
    int failed = ver == NULL || ver->type != REDIS_REPLY_STRING || path_set_version(ver->str) != 0;
    if (failed)
        fprintf(stderr,
                "nearcache-bench: preload %s: no version of namespace " NS
                ", or another than the other Redis's\n",
                url);
    freeReplyObject(ver);
    return failed;
}

int bench_preload(const bench_opts *o, const char *url)
{
    char err[300], key[200];
    redisContext *rc = path_redis_connect(url, err, sizeof err);
    char *value = malloc(o->value_size + 1);
    if (rc == NULL || value == NULL) {
        fprintf(stderr, "nearcache-bench: preload: %s\n", rc ? "out of memory" : err);
        redisFree(rc);
        free(value);
        return 1;
    }
    memset(value, 'v', o->value_size);
    /* The daemons read a namespace only under the version Redis holds
     * (PREFIX:nsver:NS), which a first write makes: make it, as "1", unless
     * it is there, and write under it. */
    int failed = bench_preload_version(o, rc, url);
    for (size_t i = 0; i < o->keys && !failed; i += 1000) {
        size_t end = i + 1000 < o->keys ? i + 1000 : o->keys;
        for (size_t k = i; k < end; k++) {
            size_t klen = path_redis_key(o, key, sizeof key, k);
            redisAppendCommand(rc, "SET %b %b PX 3600000", key, klen, value, o->value_size);
        }
        for (size_t k = i; k < end; k++) {
            redisReply *r;
            if (redisGetReply(rc, (void **)&r) != REDIS_OK || r->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "nearcache-bench: preload %s: %s\n", url, r ? r->str : rc->errstr);
                failed = 1;
            }
            freeReplyObject(r);
            if (failed)
                break;
        }
    }
    redisFree(rc);
    free(value);
    return failed;
}

/* Preloads the Redis servers and warms the daemons the specs need. */
static int prepare(const bench_opts *o, spec *sp, size_t n)
{
    int need[AT_COUNT] = {0}, redis_local = 0, redis_remote = 0;
    for (size_t i = 0; i < n; i++) {
        need[sp[i].p->where] = 1;
        if (sp[i].p->where != AT_ECHO)
            redis_local |= sp[i].p->where == AT_LOCAL || sp[i].p->where == AT_L2 ||
                           sp[i].p->where == AT_L2_TLS || sp[i].p->where == AT_L2_OTHER;
        redis_remote |= sp[i].p->where == AT_REMOTE || sp[i].p->where == AT_NEAR;
    }
    if (redis_local && (o->redis == NULL || bench_preload(o, o->redis) != 0)) {
        fprintf(stderr, "nearcache-bench: these paths need --redis (the daemons' Redis)\n");
        return -1;
    }
    if (redis_remote && (o->redis_remote == NULL || bench_preload(o, o->redis_remote) != 0)) {
        fprintf(stderr, "nearcache-bench: remote paths need --redis-remote\n");
        return -1;
    }
    if (need[AT_CLUSTER] &&
        (o->redis_cluster == NULL || bench_cluster_preload(o, o->redis_cluster) != 0)) {
        fprintf(stderr, "nearcache-bench: cluster paths need --redis-cluster\n");
        return -1;
    }
    if ((need[AT_LOCAL] && o->url && warm_daemon(o, o->url, 1) != 0) ||
        (need[AT_L2] && o->url_l2 && warm_daemon(o, o->url_l2, 0) != 0) ||
        (need[AT_REMOTE] && o->url_remote && warm_daemon(o, o->url_remote, 1) != 0) ||
        (need[AT_CLUSTER] && o->url_cluster && warm_daemon(o, o->url_cluster, 0) != 0) ||
        (need[AT_L2_TLS] && o->url_l2_tls && warm_daemon(o, o->url_l2_tls, 0) != 0) ||
        (need[AT_L2_OTHER] && o->url_l2_other && warm_daemon(o, o->url_l2_other, 0) != 0))
        return -1;
    return 0;
}

static int setup_shared(shared *sh, const bench_opts *o, spec *sp, size_t n, char *echo_buf,
                        size_t echo_cap)
{
    sh->o = o;
    sh->echo_url = o->echo_url;
    sh->echo_size = path_echo_size(o);
    int echo = 0;
    for (size_t i = 0; i < n; i++)
        echo |= sp[i].p->where == AT_ECHO;
    if (echo && sh->echo_url == NULL) { /* before this process touches nng */
        snprintf(echo_buf, echo_cap, "ipc://%s/nc-bench-echo-%d.sock", o->tmpdir, (int)getpid());
        sh->echo_url = echo_buf;
        if ((sh->echo_pid = bench_echo_fork(echo_buf)) < 0) {
            fprintf(stderr, "nearcache-bench: cannot start the echo server\n");
            return -1;
        }
    }
    sh->zipf_cdf = path_zipf_table(o->keys, o->zipf_s);
    sh->value = malloc(o->value_size + 1);
    if (sh->zipf_cdf == NULL || sh->value == NULL)
        return -1;
    memset(sh->value, 'v', o->value_size);
    return 0;
}

int bench_load(const bench_opts *o, const char *const *specs, size_t nspecs, bench_result **out)
{
    shared sh = {0};
    char echo_url[600];
    spec *sp = calloc(nspecs, sizeof *sp);
    bench_result *res = calloc(nspecs, sizeof *res);
    int rv = -1;
    if (sp == NULL || res == NULL)
        goto out;
    for (size_t i = 0; i < nspecs; i++) {
        if (parse_spec(o, specs[i], &sp[i]) != 0)
            goto out;
        sp[i].r = &res[i];
        snprintf(res[i].path, sizeof res[i].path, "%s", sp[i].p->name);
        res[i].threads = sp[i].threads;
        bench_hist_init(&res[i].hist, 0);
    }
    if (setup_shared(&sh, o, sp, nspecs, echo_url, sizeof echo_url) != 0 ||
        prepare(o, sp, nspecs) != 0 || open_workers(&sh, sp, nspecs) != 0)
        goto out;
    for (int s = 0; s < o->slices; s++) {
        for (size_t i = 0; i < nspecs; i++) {
            uint64_t quota = 0;
            if (o->ops > 0) {
                quota = o->ops / ((uint64_t)o->slices * (uint64_t)sp[i].threads);
                quota = quota > 0 ? quota : 1;
            }
            double warm = s == 0 ? o->warmup_s : fmin(o->warmup_s, 0.1);
            run_slice(&sh, &sp[i], warm, o->duration_s / o->slices, quota);
        }
    }
    for (size_t i = 0; i < nspecs; i++) {
        collect(&sp[i]);
        bench_result_finish(&res[i]);
    }
    rv = 0;
out:
    for (size_t i = 0; sp != NULL && i < nspecs; i++) {
        for (int t = 0; sp[i].w != NULL && t < sp[i].threads; t++)
            if (sp[i].w[t].p != NULL)
                path_close(&sp[i].w[t]);
        free(sp[i].w);
    }
    free(sp);
    bench_echo_stop(sh.echo_pid);
    free(sh.zipf_cdf);
    free(sh.value);
    if (rv != 0) {
        bench_results_free(res, res ? nspecs : 0);
        return 1;
    }
    *out = res;
    return 0;
}

void bench_results_free(bench_result *r, size_t n)
{
    for (size_t i = 0; r != NULL && i < n; i++)
        bench_hist_free(&r[i].hist);
    free(r);
}

void bench_result_finish(bench_result *r)
{
    r->p50 = bench_hist_quantile(&r->hist, 0.5);
    r->p99 = bench_hist_quantile(&r->hist, 0.99);
    r->p999 = bench_hist_quantile(&r->hist, 0.999);
}

double bench_result_ops(const bench_result *r)
{
    return r->seconds > 0 ? (double)r->ops / r->seconds : 0;
}

bench_result *bench_find(bench_result *r, size_t n, const char *path, int threads)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].path, path) == 0 && (threads == 0 || r[i].threads == threads))
            return &r[i];
    return NULL;
}

int bench_run(const bench_opts *o, const char *const *specs, size_t nspecs)
{
    bench_result *r;
    if (bench_load(o, specs, nspecs, &r) != 0)
        return 1;
    bench_print_results(o, r, nspecs);
    int rv = (o->md_out && bench_write_md(o->md_out, r, nspecs) != 0) ||
             (o->plot_out && bench_write_plot(o->plot_out, r, nspecs) != 0);
    bench_results_free(r, nspecs);
    return rv;
}
