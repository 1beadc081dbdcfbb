/* nearcache-bench memory: fills a daemon's L1 with Sets of new keys until it
 * evicts, and on to fill_factor x the entries it held at the first eviction
 * (so every shard is full), then reports the daemon's RSS against its L1
 * budget and the bytes per entry beyond key and value, both as L1 charges
 * them (l1_bytes / l1_entries) and as the process really pays (RSS growth /
 * entries). Targets (issue 5): overhead <= 96 bytes per entry; RSS <= 1.1 x
 * l1_max_memory + 16 MiB when full. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "nearcache.h"

#define MEM_NS "mem"
#define MiB    (1024.0 * 1024.0)

typedef struct fill {
    const bench_opts *o;
    const char *value;
    atomic_ullong next, errors;
    atomic_int stop;
} fill;

/* VmRSS of `pid` in bytes, or 0. */
static uint64_t rss_of(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    unsigned long long kb = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return (uint64_t)kb * 1024;
}

/* Reads the named counters from the daemon. Returns 0, or -1. */
static int stats_of(nc_client *c, const char *const *names, int64_t *vals, size_t n)
{
    nc_stat *st;
    size_t ns;
    if (nc_stats(c, &st, &ns, 2000) != NC_OK)
        return -1;
    for (size_t i = 0; i < n; i++) {
        vals[i] = -1;
        for (size_t j = 0; j < ns; j++)
            if (strcmp(st[j].name, names[i]) == 0)
                vals[i] = st[j].value;
    }
    nc_stats_free(st, ns);
    return 0;
}

static size_t mem_key(char *buf, size_t cap, unsigned long long i)
{
    return (size_t)snprintf(buf, cap, "m%09llu", i);
}

static void *fill_main(void *arg)
{
    fill *f = arg;
    nc_client *c;
    if (nc_open(&c, f->o->url, 0) != NC_OK) {
        atomic_fetch_add(&f->errors, 1);
        return NULL;
    }
    nc_bytes v = {f->value, f->o->value_size};
    while (!atomic_load(&f->stop)) {
        char key[32];
        size_t klen = mem_key(key, sizeof key, atomic_fetch_add(&f->next, 1));
        if (nc_set(c, NC_STR(MEM_NS), (nc_bytes){key, klen}, v, 3600000, 0) != NC_OK)
            atomic_fetch_add(&f->errors, 1);
    }
    nc_close(c);
    return NULL;
}

typedef struct mem_figures {
    int64_t max, entries, bytes, evictions;
    uint64_t rss_empty, rss_full, at_first_eviction, sets;
    double seconds;
} mem_figures;

/* Fills until full; returns 0 with the figures, or 1 after printing why. */
static int fill_daemon(const bench_opts *o, nc_client *c, mem_figures *m)
{
    static const char *const names[] = {"l1_max_memory", "l1_entries", "l1_bytes", "l1_evictions"};
    int64_t v[4];
    fill f = {.o = o};
    char *value = malloc(o->value_size + 1);
    pthread_t th[64];
    int nth = o->threads < 64 ? o->threads : 64;
    if (value == NULL)
        return 1;
    memset(value, 'm', o->value_size);
    f.value = value;
    m->rss_empty = rss_of(o->pid);
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < nth; i++)
        pthread_create(&th[i], NULL, fill_main, &f);
    int rv = 0;
    for (;;) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
        if (stats_of(c, names, v, 4) != 0 || atomic_load(&f.errors) > 100) {
            fprintf(stderr, "nearcache-bench memory: %s\n",
                    atomic_load(&f.errors) ? "Sets failed" : nc_errmsg());
            rv = 1;
            break;
        }
        if (v[3] > 0 && m->at_first_eviction == 0)
            m->at_first_eviction = (uint64_t)v[1];
        if (m->at_first_eviction > 0 &&
            atomic_load(&f.next) >= (unsigned long long)(o->fill_factor * m->at_first_eviction))
            break;
        if (bench_now_ns() - t0 > 150 * 1000000000LL) {
            fprintf(stderr, "nearcache-bench memory: L1 not full after 150 s\n");
            rv = 1;
            break;
        }
    }
    atomic_store(&f.stop, 1);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    m->seconds = (double)(bench_now_ns() - t0) / 1e9;
    m->sets = atomic_load(&f.next);
    if (rv == 0 && stats_of(c, names, v, 4) == 0) {
        m->max = o->l1_max_memory ? (int64_t)o->l1_max_memory : v[0];
        m->entries = v[1];
        m->bytes = v[2];
        m->evictions = v[3];
        m->rss_full = rss_of(o->pid);
    }
    free(value);
    return rv;
}

static void report(const bench_opts *o, const mem_figures *m)
{
    char key[32];
    double kv = (double)(strlen(MEM_NS) + 1 + mem_key(key, sizeof key, 0)) + (double)o->value_size;
    double per = m->entries > 0 ? (double)m->bytes / (double)m->entries : 0;
    double charged = per - kv;
    double real = m->entries > 0 && m->rss_full > m->rss_empty
                      ? (double)(m->rss_full - m->rss_empty) / (double)m->entries - kv
                      : 0;
    double limit = 1.1 * (double)m->max + 16 * MiB;
    int over_ok = charged <= 96, real_ok = real <= 96, rss_ok = (double)m->rss_full <= limit;
    if (o->json) {
        printf("{\"suite\": \"memory\", \"l1_max_memory\": %lld, \"value_size\": %zu, "
               "\"key_plus_value\": %.0f, \"sets\": %llu, \"seconds\": %.1f, "
               "\"entries_at_first_eviction\": %llu, \"entries\": %lld, \"l1_bytes\": %lld, "
               "\"evictions\": %lld, \"rss_empty\": %llu, \"rss_full\": %llu, "
               "\"rss_limit\": %.0f, \"overhead_charged\": %.1f, \"overhead_rss\": %.1f, "
               "\"overhead_met\": %s, \"overhead_rss_met\": %s, \"rss_met\": %s}\n",
               (long long)m->max, o->value_size, kv, (unsigned long long)m->sets, m->seconds,
               (unsigned long long)m->at_first_eviction, (long long)m->entries, (long long)m->bytes,
               (long long)m->evictions, (unsigned long long)m->rss_empty,
               (unsigned long long)m->rss_full, limit, charged, real, over_ok ? "true" : "false",
               real_ok ? "true" : "false", rss_ok ? "true" : "false");
    } else {
        printf("l1_max_memory %.1f MiB, %zu-byte values, L1 key + value %.0f bytes\n",
               (double)m->max / MiB, o->value_size, kv);
        printf("filled with %llu Sets in %.1f s; first eviction at %llu entries\n",
               (unsigned long long)m->sets, m->seconds, (unsigned long long)m->at_first_eviction);
        printf("entries %lld, l1_bytes %.1f MiB, evictions %lld\n", (long long)m->entries,
               (double)m->bytes / MiB, (long long)m->evictions);
        printf("RSS empty %.1f MiB, full %.1f MiB (target <= %.1f MiB): %s\n",
               (double)m->rss_empty / MiB, (double)m->rss_full / MiB, limit / MiB,
               rss_ok ? "met" : "missed");
        printf("bytes per entry beyond key and value: charged %.1f, from RSS %.1f "
               "(target <= 96): %s / %s\n",
               charged, real, over_ok ? "met" : "missed", real_ok ? "met" : "missed");
    }
    FILE *f = o->md_out ? fopen(o->md_out, "w") : NULL;
    if (f == NULL)
        return;
    fprintf(f, "| memory (full L1) | measured | target | |\n| --- | ---: | ---: | --- |\n");
    fprintf(f, "| entries held (%zu-byte values, %.0f bytes key + value) | %lld | | |\n",
            o->value_size, kv, (long long)m->entries);
    fprintf(f,
            "| bytes per entry beyond key and value, as L1 charges it | %.1f | ≤ 96 | **%s** |\n",
            charged, over_ok ? "met" : "missed");
    fprintf(f, "| bytes per entry beyond key and value, from RSS growth | %.1f | ≤ 96 | **%s** |\n",
            real, real_ok ? "met" : "missed");
    fprintf(f, "| daemon RSS, empty → full (MiB) | %.1f → %.1f | ≤ %.1f | **%s** |\n",
            (double)m->rss_empty / MiB, (double)m->rss_full / MiB, limit / MiB,
            rss_ok ? "met" : "missed");
    fprintf(f, "| l1_max_memory / l1_bytes (MiB) | %.1f / %.1f | | |\n", (double)m->max / MiB,
            (double)m->bytes / MiB);
    fclose(f);
}

int bench_memory(const bench_opts *o)
{
    nc_client *c;
    if (o->pid <= 0) {
        fprintf(stderr, "nearcache-bench memory: needs --pid of the daemon\n");
        return 2;
    }
    if (nc_open(&c, o->url, 0) != NC_OK) {
        fprintf(stderr, "nearcache-bench memory: %s: %s\n", o->url, nc_errmsg());
        return 1;
    }
    mem_figures m = {0};
    int rv = fill_daemon(o, c, &m);
    nc_close(c);
    if (rv == 0)
        report(o, &m);
    return rv;
}
