/* Integration: a randomized history. Two writers (on nodes 0 and 1) and six
 * readers (two per node: one plain, one with a near tier) hammer a few keys
 * for about 20 s ($NC_HISTORY_SECONDS). Every read is then checked against the log of
 * writes: it may return the latest acknowledged write, or one in flight,
 * never one that another write had replaced, and acknowledged, more than the
 * allowed window before the read began. The worst staleness is reported.
 * Every request has BUDGET_MS; one that times out after waiting all of it is
 * the loaded machine's (reported, not a failure) as long as its client is
 * answered again afterwards; any other failed request is a failure. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "keyspace.h"

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
/* Every client's budget, as the harness's: a loaded 2-core machine can stall
 * a process for a second. */
#define BUDGET_MS 5000

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
static int nreads[READERS], errors, timeouts;
static nc_near_stats near_total;
static int64_t stop_at;
static pthread_mutex_t errors_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Counts the failure `rv` of a request begun at `start` (µs): a timeout
 * after the whole budget (less the daemon's margin for a read's answer, at
 * most 50 ms) in `timeouts`, any other in `errors`. */
static void count_error(const char *what, int rv, int64_t start)
{
    int64_t waited = now_us() - start;
    int timed_out = rv == NC_ETIMEDOUT && waited >= (BUDGET_MS - 50) * 1000;
    pthread_mutex_lock(&errors_mu);
    int n = timed_out ? ++timeouts : ++errors;
    if (n <= 5 || n % 500 == 0)
        fprintf(stderr, "history: %s%s after %.3f ms: %s\n", what,
                timed_out ? " timed out" : " failed", (double)waited / 1000.0, nc_errmsg());
    pthread_mutex_unlock(&errors_mu);
}

/* After the run: c still answers a Get (a timeout was the machine's only if
 * the connection went on). */
static void still_answers(nc_client *c, const char *who)
{
    void *v = NULL;
    size_t len;
    int rv = nc_get(c, NC_STR("hist"), NC_STR("h0"), &v, &len, 0);
    cr_expect_eq(rv, NC_OK, "%s: a Get after the run: %s", who, nc_errmsg());
    nc_free(v);
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
        int rv = nc_set(c, NC_STR("hist"), NC_STR(key), NC_STR(value), 60000, 0);
        if (rv == NC_OK)
            wr->ack = now_us();
        else
            count_error("set", rv, wr->start);
        nwrites[w] = n + 1;
    }
    still_answers(c, "a writer");
    nc_close(c);
    return NULL;
}

static void *reader_main(void *arg)
{
    int r = (int)(intptr_t)arg, near = r >= NODES;
    nc_client *c;
    nc_open_opts o = {.near_bytes = near ? 1u << 20 : 0};
    cr_assert_eq(nc_open_ex(&c, fx.node[r % NODES].url, &o), NC_OK, "%s", nc_errmsg());
    nc_set_timeout(c, BUDGET_MS);
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
        int rv = nc_get(c, NC_STR("hist"), NC_STR(key), &v, &len, 0);
        if (rv != NC_OK) {
            count_error("get", rv, rd->start);
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
    still_answers(c, "a reader");
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

/* Sets every key to "init" through fx's first node and makes the logs. */
static void history_prepare(void)
{
    nc_client *c = fx.cl[0];
    char key[8];
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "h%d", k);
        cr_assert_eq(nc_set(c, NC_STR("hist"), NC_STR(key), NC_STR("init"), 60000, 0), NC_OK,
                     "%s", nc_errmsg());
    }
    for (int w = 0; w < WRITERS; w++)
        writes[w] = calloc(MAX_OPS, sizeof *writes[w]);
    for (int r = 0; r < READERS; r++)
        reads[r] = calloc(MAX_OPS, sizeof *reads[r]);
}

typedef void (*history_event_fn)(int i);

/* Runs the writers and readers for `seconds`, calling event(i) after
 * (i + 1) / (nevents + 1) of the run for each of nevents events; then
 * checks every read against the log: none older than the window, at most
 * max_errors per thousand requests failed, and at most one per thousand
 * timed out (each after its whole budget, its client answered afterwards).
 * Stops the fleet. */
static void history_run(int seconds, int nevents, history_event_fn event, int max_errors)
{
    int64_t t0 = now_us();
    stop_at = t0 + (int64_t)seconds * 1000000;
    pthread_t t[WRITERS + READERS];
    for (int w = 0; w < WRITERS; w++)
        pthread_create(&t[w], NULL, writer_main, (void *)(intptr_t)w);
    for (int r = 0; r < READERS; r++)
        pthread_create(&t[WRITERS + r], NULL, reader_main, (void *)(intptr_t)r);
    for (int i = 0; i < nevents; i++) {
        int64_t at = t0 + (stop_at - t0) * (i + 1) / (nevents + 1);
        while (now_us() < at)
            usleep(10000);
        event(i);
    }
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
           "worst by %.3f ms; %ld older than the %d ms window; %d requests failed, %d timed "
           "out after %d ms\n",
           seconds, total_writes, total_reads, l1_reads, near_reads,
           (unsigned long long)near_total.hits, (unsigned long long)near_total.fills_refused,
           stale_reads, (double)worst / 1000.0, too_old, WINDOW_US / 1000, errors, timeouts,
           BUDGET_MS);
    fflush(stdout);
    cr_expect_leq(errors, (total_reads + total_writes) * max_errors / 1000,
                  "%d requests failed", errors);
    cr_expect_leq(timeouts, (total_reads + total_writes) / 1000, "%d requests timed out",
                  timeouts);
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

Test(history, no_read_is_older_than_the_coherence_window, .timeout = 240)
{
    const char *secs = getenv("NC_HISTORY_SECONDS");
    h_fleet_start(&fx, NODES, NULL);
    history_prepare();
    history_run(secs != NULL ? atoi(secs) : 20, 0, NULL, 0);
}

/* ---- on a Redis Cluster ---------------------------------------------------
 * Three masters with a replica each and the three daemons on them. Midway
 * the slot of key h0 is migrated to another master, key by key (ASK, then
 * MOVED), and later a replica takes over its master (CLUSTER FAILOVER, the
 * coordinated kind: Redis loses no acknowledged write, so the history may
 * not show one lost). Requests may fail around these, a few; no read may be
 * older than the window. */

#define MASTERS 3
static h_redis cnode[2 * MASTERS];
static int ncnodes;

static int role_is_master(const h_redis *r)
{
    char *out = h_redis_cmd(r, "ROLE", NULL);
    int m = strncmp(out, "master", 6) == 0;
    free(out);
    return m;
}

/* Moves the slot of h0's entry from its master to the next, with the load
 * running between its keys. */
static void migrate_h0(void)
{
    char tag[KS_TAG_LEN];
    ks_tag(tag, "hist", 4, "h0", 2);
    int src, dst = h_cluster_move_slot(cnode, MASTERS, ks_slot(tag, sizeof tag), 50, &src);
    fprintf(stderr, "history: slot %u of h0 migrated from node %d to %d\n",
            ks_slot(tag, sizeof tag), src, dst);
}

/* CLUSTER FAILOVER on a replica: it becomes master once it has every write
 * of its master, which becomes its replica. */
static void failover_one(void)
{
    for (int i = MASTERS; i < ncnodes; i++) {
        if (role_is_master(&cnode[i]))
            continue;
        char *out = h_redis_cmd(&cnode[i], "CLUSTER", "FAILOVER", NULL);
        cr_expect_str_eq(out, "OK");
        free(out);
        for (int j = 0; j < 250 && !role_is_master(&cnode[i]); j++)
            usleep(20000);
        cr_expect(role_is_master(&cnode[i]), "replica %d was not promoted", i);
        fprintf(stderr, "history: replica %d took over its master\n", i);
        return;
    }
    cr_expect_fail("no replica to promote");
}

static void cluster_event(int i)
{
    if (i == 0)
        migrate_h0();
    else
        failover_one();
}

static void cluster_stop(void)
{
    h_cluster_stop(cnode, ncnodes);
}

TestSuite(history_cluster, .fini = cluster_stop);

Test(history_cluster, no_read_is_older_than_the_window_through_a_migration_and_a_failover,
     .timeout = 240)
{
    const char *secs = getenv("NC_HISTORY_SECONDS");
    ncnodes = h_cluster_start(cnode, MASTERS, 1);
    h_redis via = cnode[0];
    snprintf(via.url, sizeof via.url, "cluster://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             cnode[0].port, cnode[1].port, cnode[2].port);
    memset(&fx, 0, sizeof fx);
    for (int i = 0; i < NODES; i++)
        h_fleet_add(&fx, &via, NULL);
    history_prepare();
    /* a few requests may fail in the failover's window (1 in 1000); none
     * may be wrong */
    history_run(secs != NULL ? atoi(secs) : 20, 2, cluster_event, 1);
}
