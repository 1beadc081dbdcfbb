/* Integration: L1 at its limit while 1 MiB values churn (issue 18, fault
 * matrix). A real daemon with a small L1 takes a few thousand Sets and Gets
 * of 1 MiB values from four threads, over more keys than L1 holds; its RSS,
 * sampled from /proc all along, stays within 1.1 x l1_max_memory + 16 MiB,
 * the bound bench/bench_memory.c holds small values to. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MiB     (1024u * 1024u)
#define L1_MAX  (32u * MiB)
#define KEYS    64
#define THREADS 4
#define OPS     1000 /* per thread */

static h_fleet fx;

static void up(void)
{
    h_fleet_start(&fx, 1, "--l1-max-memory", "32MB", NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
}

TestSuite(churn, .init = up, .fini = down, .timeout = 240);

/* VmRSS of `pid` in bytes (0 when it cannot be read). */
static uint64_t rss_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long long kb = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return (uint64_t)kb * 1024;
}

typedef struct churn {
    atomic_int done;     /* threads finished */
    atomic_long errors;  /* calls that failed */
    atomic_long gets_ok; /* Gets that found a whole value */
    uint64_t rss_max;    /* the sampler's */
    int samples;
} churn;

static churn run;

/* One thread: OPS calls, half Sets of a fresh 1 MiB value under a random
 * key, half Gets, each checked for the value's length and first byte. */
static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
    char *value = malloc(MiB);
    cr_assert_not_null(value);
    for (int i = 0; i < OPS; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", rand_r(&seed) % KEYS);
        if (rand_r(&seed) % 2 == 0) {
            memset(value, 'a' + i % 26, MiB);
            if (nc_set(fx.cl[0], NC_STR("big"), (nc_bytes){key, strlen(key)},
                       (nc_bytes){value, MiB}, 600000, 10000) != NC_OK)
                run.errors++;
            continue;
        }
        void *got = NULL;
        size_t len = 0;
        int rv = nc_get(fx.cl[0], NC_STR("big"), (nc_bytes){key, strlen(key)}, &got, &len, 10000);
        if (rv == NC_OK && len == MiB && ((char *)got)[0] >= 'a' && ((char *)got)[0] <= 'z')
            run.gets_ok++;
        else if (rv != NC_ENOTFOUND)
            run.errors++;
        nc_free(got);
    }
    free(value);
    run.done++;
    return NULL;
}

Test(churn, rss_stays_within_l1_max_memory_while_1_mib_values_churn)
{
    pid_t daemon = fx.node[0].pid;
    uint64_t rss_empty = rss_of(daemon);
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    int64_t start = h_now_ms();
    while (run.done < THREADS) {
        uint64_t rss = rss_of(daemon);
        if (rss > run.rss_max)
            run.rss_max = rss;
        run.samples++;
        h_sleep_ms(50);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    int64_t took = h_now_ms() - start;
    uint64_t rss_end = rss_of(daemon);
    int64_t l1_bytes = h_stat(fx.cl[0], "l1_bytes");
    int64_t evictions = h_stat(fx.cl[0], "l1_evictions");
    uint64_t bound = L1_MAX + L1_MAX / 10 + 16 * MiB;
    cr_log_info("churn: %d ops of 1 MiB in %lld ms; daemon RSS %.1f MiB empty, %.1f MiB at most "
                "(%d samples), %.1f MiB at the end; bound %.1f MiB; l1_bytes %.1f MiB, %lld "
                "evictions, %ld Gets found",
                THREADS * OPS, (long long)took, rss_empty / (double)MiB, run.rss_max / (double)MiB,
                run.samples, rss_end / (double)MiB, bound / (double)MiB, l1_bytes / (double)MiB,
                (long long)evictions, (long)run.gets_ok);
    cr_assert_eq(run.errors, 0, "%ld calls failed", (long)run.errors);
    cr_assert_gt(run.gets_ok, THREADS * OPS / 8, "too few Gets found a value to exercise L1");
    cr_assert_gt(evictions, 0, "L1 never reached its limit");
    cr_assert_leq(l1_bytes, (int64_t)L1_MAX);
    cr_assert_leq(run.rss_max, bound, "daemon RSS reached %.1f MiB, above %.1f MiB",
                  run.rss_max / (double)MiB, bound / (double)MiB);
    cr_assert(h_daemon_alive(&fx.node[0]));
}
