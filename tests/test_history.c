/* Integration: a randomized history. Two writers (on nodes 0 and 1) and six
 * readers (two per node: one plain, one with a near tier) hammer a few keys
 * for about 20 s ($NC_HISTORY_SECONDS). Every read is then checked against the log of
 * writes: it may return the latest acknowledged write, or one in flight,
 * never one that another write had replaced, and acknowledged, more than the
 * allowed window before the read began. The worst staleness is reported. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define NODES 3
#define READERS                                                                                    \
    (2 * NODES) /* reader r reads through node r % NODES; r >= NODES with a near tier              \
                 */
#define WRITERS 2
#define KEYS    8
#define MAX_OPS 400000
/* coherence_window: the daemon serves no L1 entry while it is further behind
 * than this, so no read may be staler. */
#define WINDOW_US 1000000

struct write {
    int key;
    int64_t start, ack; /* µs; ack 0 while unacknowledged (failed) */
};

struct read {
    int key, writer, n; /* the write it saw: writer -1 is the initial value */
    int64_t start;
};

static h_fleet fx;
static struct write *writes[WRITERS];
static int nwrites[WRITERS];
static struct read *reads[READERS];
static int nreads[READERS], errors;
static nc_near_stats near_total;
static int64_t stop_at;
static pthread_mutex_t errors_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void count_error(const char *what)
{
    pthread_mutex_lock(&errors_mu);
    if (errors++ < 5)
        fprintf(stderr, "history: %s: %s\n", what, nc_errmsg());
    pthread_mutex_unlock(&errors_mu);
}

static void *writer_main(void *arg)
{
    int w = (int)(intptr_t)arg;
    nc_client *c = h_client(&fx.node[w]);
    unsigned seed = (unsigned)w * 7919u + 1;
    char key[8], value[32];
    while (now_us() < stop_at && nwrites[w] < MAX_OPS) {
        int n = nwrites[w], k = rand_r(&seed) % KEYS;
        snprintf(key, sizeof key, "h%d", k);
        snprintf(value, sizeof value, "%d-%d", w, n);
        struct write *wr = &writes[w][n];
        wr->key = k;
        wr->start = now_us();
        if (nc_set(c, NC_STR("hist"), NC_STR(key), NC_STR(value), 60000, 0) == NC_OK)
            wr->ack = now_us();
        else
            count_error("set");
        nwrites[w] = n + 1;
    }
    nc_close(c);
    return NULL;
}

static void *reader_main(void *arg)
{
    int r = (int)(intptr_t)arg, near = r >= NODES;
    nc_client *c;
    nc_open_opts o = {.near_bytes = near ? 1u << 20 : 0};
    cr_assert_eq(nc_open_ex(&c, fx.node[r % NODES].url, &o), NC_OK, "%s", nc_errmsg());
    unsigned seed = (unsigned)r * 104729u + 3;
    char key[8];
    while (now_us() < stop_at && nreads[r] < MAX_OPS) {
        int k = rand_r(&seed) % KEYS;
        snprintf(key, sizeof key, "h%d", k);
        struct read *rd = &reads[r][nreads[r]];
        rd->key = k;
        rd->start = now_us();
        void *v = NULL;
        size_t len;
        if (nc_get(c, NC_STR("hist"), NC_STR(key), &v, &len, 0) != NC_OK) {
            count_error("get");
            continue;
        }
        if (strcmp(v, "init") == 0)
            rd->writer = -1, rd->n = 0;
        else if (sscanf(v, "%d-%d", &rd->writer, &rd->n) != 2)
            cr_assert_fail("unexpected value %s", (char *)v);
        nc_free(v);
        nreads[r]++;
        if (near)
            usleep(50); /* a near hit takes a microsecond: keep within MAX_OPS */
    }
    nc_near_stats ns;
    if (near && nc_stats_near(c, &ns) == NC_OK) {
        pthread_mutex_lock(&errors_mu);
        near_total.hits += ns.hits;
        near_total.fills_refused += ns.fills_refused;
        pthread_mutex_unlock(&errors_mu);
    }
    nc_close(c);
    return NULL;
}

/* When the write a read saw was superseded: the earliest acknowledgement of
 * a write to the same key that began after it was acknowledged (INT64_MAX:
 * never). Per key, the writes sorted by start and the suffix minimum of
 * their acks answer that with one binary search per read. */
struct keylog {
    int64_t *start, *min_ack_from; /* sorted by start; suffix minimum of ack */
    int n;
};

static int by_start(const void *a, const void *b)
{
    const struct write *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

static void build(struct keylog *log)
{
    for (int k = 0; k < KEYS; k++) {
        int total = 0;
        for (int w = 0; w < WRITERS; w++)
            total += nwrites[w];
        struct write *all = malloc(sizeof *all * (size_t)(total + 1));
        int n = 0;
        for (int w = 0; w < WRITERS; w++)
            for (int i = 0; i < nwrites[w]; i++)
                if (writes[w][i].key == k)
                    all[n++] = writes[w][i];
        qsort(all, (size_t)n, sizeof *all, by_start);
        log[k].n = n;
        log[k].start = malloc(sizeof(int64_t) * (size_t)(n + 1));
        log[k].min_ack_from = malloc(sizeof(int64_t) * (size_t)(n + 1));
        log[k].min_ack_from[n] = INT64_MAX;
        for (int i = n - 1; i >= 0; i--) {
            int64_t ack = all[i].ack != 0 ? all[i].ack : INT64_MAX;
            log[k].start[i] = all[i].start;
            log[k].min_ack_from[i] =
                ack < log[k].min_ack_from[i + 1] ? ack : log[k].min_ack_from[i + 1];
        }
        free(all);
    }
}

static int64_t superseded_at(const struct keylog *log, int64_t acked)
{
    int lo = 0, hi = log->n; /* first write starting after `acked` */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (log->start[mid] > acked)
            hi = mid;
        else
            lo = mid + 1;
    }
    return log->min_ack_from[lo];
}

Test(history, no_read_is_older_than_the_coherence_window, .timeout = 240)
{
    const char *secs = getenv("NC_HISTORY_SECONDS");
    int seconds = secs != NULL ? atoi(secs) : 20;
    h_fleet_start(&fx, NODES, NULL);
    nc_client *c = fx.cl[0];
    char key[8];
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "h%d", k);
        cr_assert_eq(nc_set(c, NC_STR("hist"), NC_STR(key), NC_STR("init"), 60000, 0), NC_OK);
    }
    for (int w = 0; w < WRITERS; w++)
        writes[w] = calloc(MAX_OPS, sizeof *writes[w]);
    for (int r = 0; r < READERS; r++)
        reads[r] = calloc(MAX_OPS, sizeof *reads[r]);

    stop_at = now_us() + (int64_t)seconds * 1000000;
    pthread_t t[WRITERS + READERS];
    for (int w = 0; w < WRITERS; w++)
        pthread_create(&t[w], NULL, writer_main, (void *)(intptr_t)w);
    for (int r = 0; r < READERS; r++)
        pthread_create(&t[WRITERS + r], NULL, reader_main, (void *)(intptr_t)r);
    for (int i = 0; i < WRITERS + READERS; i++)
        pthread_join(t[i], NULL);

    struct keylog log[KEYS];
    build(log);
    long total_reads = 0, stale_reads = 0, too_old = 0, l1_reads = 0, near_reads = 0;
    int64_t worst = 0;
    for (int r = NODES; r < READERS; r++)
        near_reads += nreads[r];
    for (int r = 0; r < READERS; r++) {
        for (int i = 0; i < nreads[r]; i++) {
            const struct read *rd = &reads[r][i];
            int64_t acked = rd->writer < 0 ? 0 : writes[rd->writer][rd->n].ack;
            if (rd->writer >= 0 && acked == 0)
                acked = writes[rd->writer][rd->n].start; /* a failed write that landed */
            int64_t gone = superseded_at(&log[rd->key], acked);
            total_reads++;
            if (gone < rd->start) {
                stale_reads++;
                worst = rd->start - gone > worst ? rd->start - gone : worst;
                too_old += rd->start - gone > WINDOW_US;
            }
        }
    }
    long total_writes = 0;
    for (int w = 0; w < WRITERS; w++)
        total_writes += nwrites[w];
    for (int n = 0; n < NODES; n++) {
        nc_client *s = h_client(&fx.node[n]);
        l1_reads += (long)h_stat(s, "l1_hits");
        nc_close(s);
    }
    printf("history: %ds, %ld writes, %ld reads (%ld from L1; %ld by near-tier readers, %llu "
           "of them from the near tier, %llu fills refused), %ld saw a value already replaced, "
           "worst by %.3f ms; %ld older than the %d ms window\n",
           seconds, total_writes, total_reads, l1_reads, near_reads,
           (unsigned long long)near_total.hits, (unsigned long long)near_total.fills_refused,
           stale_reads, (double)worst / 1000.0, too_old, WINDOW_US / 1000);
    fflush(stdout);
    cr_expect_eq(errors, 0, "%d requests failed", errors);
    cr_expect_gt(l1_reads, (total_reads - near_reads) / 10,
                 "too few L1 hits to test coherence: %ld", l1_reads);
    cr_expect_gt((long)near_total.hits, near_reads / 10,
                 "too few near-tier hits to test coherence: %llu",
                 (unsigned long long)near_total.hits);
    cr_assert_eq(too_old, 0, "%ld reads were older than the window (worst %.3f ms)", too_old,
                 (double)worst / 1000.0);
    for (int k = 0; k < KEYS; k++)
        free(log[k].start), free(log[k].min_ack_from);
    h_fleet_stop(&fx);
    for (int w = 0; w < WRITERS; w++)
        free(writes[w]);
    for (int r = 0; r < READERS; r++)
        free(reads[r]);
}
