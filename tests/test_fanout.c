/* Integration: batched invalidations (inval_batch = 1) when the writer
 * dies between a write's script and its batch. A writer whose batches are
 * held back (inval_batch_delay) writes, then is killed with SIGKILL: the
 * other nodes, which hold the old value in L1, must stop serving it within
 * coherence_window of the kill, by counting the writer silent. A writer
 * stopped cleanly says bye, and costs nobody their L1. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NODES 2

static h_fleet fx;

static void up(void)
{
    h_fleet_start(&fx, NODES, NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
}

TestSuite(fanout, .init = up, .fini = down, .timeout = 120);

static nc_bytes str(const char *s)
{
    return NC_STR(s);
}

/* Gets key on node n (a client); returns the value (caller frees) or NULL. */
static char *get_with(nc_client *c, const char *key, nc_get_info *info)
{
    void *v = NULL;
    size_t len;
    nc_get_info dummy;
    int rv = nc_get_ex(c, str("ns"), str(key), &v, &len, info ? info : &dummy, 0);
    cr_assert(rv == NC_OK || rv == NC_ENOTFOUND, "get: %s", nc_errmsg());
    return v;
}

/* Reads key through c until it is an L1 hit holding `value`. */
static void make_hot(nc_client *c, const char *key, const char *value)
{
    for (int i = 0; i < 300; i++) {
        nc_get_info info;
        char *v = get_with(c, key, &info);
        int hot = v != NULL && strcmp(v, value) == 0 && info.source == NC_SOURCE_L1;
        nc_free(v);
        if (hot)
            return;
        h_sleep_ms(10);
    }
    cr_assert_fail("never served %s=%s from L1", key, value);
}

/* Waits until Redis holds `value` under key (2 s at most). */
static void redis_holds(const char *key, const char *value)
{
    for (int i = 0; i < 200; i++) {
        char *v = h_redis_cmd(&fx.redis, "GET", H_DATA_KEY(&fx.redis, "ns", key), NULL);
        int ok = strcmp(v, value) == 0;
        free(v);
        if (ok)
            return;
        h_sleep_ms(10);
    }
    cr_assert_fail("redis never held %s=%s", key, value);
}

/* Polls node n until key reads as `want`; returns how long it took, in ms
 * (fails after 5 s). */
static int64_t time_to_see(int n, const char *key, const char *want, int64_t since)
{
    for (;;) {
        char *v = get_with(fx.cl[n], key, NULL);
        int ok = v != NULL && strcmp(v, want) == 0;
        nc_free(v);
        if (ok)
            return h_now_ms() - since;
        cr_assert_lt(h_now_ms() - since, 5000, "node %d still serves the old %s after 5 s", n,
                     key);
        h_sleep_ms(5);
    }
}

/* Polls nodes 0 and 1 in turn until both read key as `want` (fails after
 * 5 s). For each node n, old[n] is when the last read that got another
 * value began, and took[n] when the first that got `want` ended, in ms
 * after `since` (-1: none). A read's start bounds when it was served from
 * below, so old[] holds only the daemon's time, not the poll's nor a
 * loaded machine's round trip. */
static void until_both_see(const char *key, const char *want, int64_t since, int64_t old[NODES],
                           int64_t took[NODES])
{
    for (int n = 0; n < NODES; n++)
        old[n] = took[n] = -1;
    for (int seen = 0; seen < NODES;) {
        for (int n = 0; n < NODES; n++) {
            if (took[n] >= 0)
                continue;
            int64_t begun = h_now_ms();
            char *v = get_with(fx.cl[n], key, NULL);
            int ok = v != NULL && strcmp(v, want) == 0;
            nc_free(v);
            if (ok)
                took[n] = h_now_ms() - since, seen++;
            else
                old[n] = begun - since;
        }
        cr_assert_lt(h_now_ms() - since, 5000, "a node still serves the old %s after 5 s", key);
        h_sleep_ms(5);
    }
}

/* Reads key through c until an answer comes from L1 (L1 serves only while
 * its own heartbeat is recent: a loaded machine can pause that); returns
 * its value (caller frees), or NULL after 3 s without an L1 answer. */
static char *from_l1(nc_client *c, const char *key)
{
    for (int i = 0; i < 300; i++) {
        nc_get_info info;
        char *v = get_with(c, key, &info);
        if (info.source == NC_SOURCE_L1)
            return v;
        nc_free(v);
        h_sleep_ms(10);
    }
    return NULL;
}

/* The node id a daemon logged at start ("(node ID, ..."), into id. */
static void node_id_of(const h_daemon *d, char id[17])
{
    char *log = h_read_file(d->log, NULL), *at = log != NULL ? strstr(log, "(node ") : NULL;
    cr_assert_not_null(at, "no node id in the daemon's log");
    snprintf(id, 17, "%.16s", at + 6);
    free(log);
}

/* How long daemon d's log is now. */
static size_t log_mark(const h_daemon *d)
{
    size_t len = 0;
    free(h_read_file(d->log, &len));
    return len;
}

/* Whether daemon d's log says, after byte `from`, that it counted node `id`
 * silent (before it, a loaded machine may have paused a live node). */
static int counted_silent(const h_daemon *d, const char *id, size_t from)
{
    size_t len = 0;
    char *log = h_read_file(d->log, &len), what[64];
    snprintf(what, sizeof what, "node %s silent", id);
    int found = log != NULL && from <= len && strstr(log + from, what) != NULL;
    free(log);
    return found;
}

/* Times node c emptied its L1 for any reason. */
static int64_t resets(nc_client *c)
{
    return h_stat(c, "origins_silent") + h_stat(c, "sequence_gaps") +
           h_stat(c, "subscription_losses");
}

/* Waits until node c has heard `n` byes in all. When a bye comes is
 * bounded by nothing but the machine (a clean stop's is its last message;
 * a quiet one's follows the silence bound, 650 ms): 10 s. */
static void wait_byes(nc_client *c, int64_t n, const char *what)
{
    for (int64_t until = h_now_ms() + 10000; h_stat(c, "origins_bye") < n; h_sleep_ms(10))
        cr_assert_lt(h_now_ms(), until, "%s in 10 s", what);
}

struct writer {
    nc_client *c;
    int rv;
};

/* A Set whose batch is held back: it is answered (an error) only when its
 * deadline passes or its daemon dies. */
static void *held_set(void *arg)
{
    struct writer *w = arg;
    w->rv = nc_set(w->c, str("ns"), str("k"), str("v1"), 60000, 2000);
    return NULL;
}

Test(fanout, a_writer_killed_before_its_batch_stops_the_old_value_within_the_window)
{
    h_daemon *wd = h_fleet_add(&fx, &fx.redis, "--inval-batch-delay", "30s", NULL);
    nc_client *wc = fx.cl[NODES];
    cr_assert_eq(nc_set(fx.cl[0], str("ns"), str("k"), str("v0"), 60000, 0), NC_OK, "%s",
                 nc_errmsg());
    make_hot(fx.cl[0], "k", "v0");
    make_hot(fx.cl[1], "k", "v0");
    /* the writer is heard by both before it writes */
    h_sleep_ms(300);
    int64_t resets_before = resets(fx.cl[1]);
    struct writer w = {wc, NC_OK};
    pthread_t t;
    pthread_create(&t, NULL, held_set, &w);
    redis_holds("k", "v1");
    /* the script ran, the batch is held: the others still serve v0 from L1
     * (unless a loaded machine made node 1 empty it meanwhile) */
    char *v = from_l1(fx.cl[1], "k");
    if (resets(fx.cl[1]) == resets_before)
        cr_assert(v != NULL && strcmp(v, "v0") == 0,
                  "before the kill node 1's L1 holds %s: the batch was not held",
                  v ? v : "nothing");
    nc_free(v);
    int64_t killed = h_now_ms();
    h_daemon_stop_with(wd, SIGKILL);
    int64_t old[NODES], took[NODES];
    until_both_see("k", "v1", killed, old, took);
    printf("fanout: after the writer's SIGKILL, node 0 served v1 after %lld ms (v0 to a read "
           "begun at %lld ms), node 1 after %lld ms (v0 at %lld ms)\n",
           (long long)took[0], (long long)old[0], (long long)took[1], (long long)old[1]);
    for (int n = 0; n < NODES; n++)
        cr_assert_leq(old[n], 1000, "node %d served the old value to a read begun %lld ms after "
                      "the kill", n, (long long)old[n]);
    cr_assert_geq(h_stat(fx.cl[0], "origins_silent"), 1);
    cr_assert_geq(h_stat(fx.cl[1], "origins_silent"), 1);
    pthread_join(t, NULL);
    cr_assert_neq(w.rv, NC_OK, "the write was acknowledged without its batch");
}

Test(fanout, a_writer_stopped_cleanly_says_bye_and_the_others_keep_their_l1)
{
    h_daemon *wd = h_fleet_add(&fx, &fx.redis, NULL);
    nc_client *wc = fx.cl[NODES];
    char id[17];
    node_id_of(wd, id);
    cr_assert_eq(nc_set(wc, str("ns"), str("k"), str("v0"), 60000, 0), NC_OK, "%s", nc_errmsg());
    make_hot(fx.cl[0], "k", "v0");
    make_hot(fx.cl[1], "k", "v0");
    h_sleep_ms(300);
    cr_assert_eq(nc_set(wc, str("ns"), str("k"), str("v1"), 60000, 0), NC_OK, "%s", nc_errmsg());
    make_hot(fx.cl[1], "k", "v1");
    nc_close(wc);
    fx.cl[NODES] = NULL;
    size_t mark[NODES];
    for (int i = 0; i < NODES; i++)
        mark[i] = log_mark(&fx.node[i]);
    cr_assert_eq(h_daemon_stop(wd), 0);
    wait_byes(fx.cl[1], 1, "no bye heard");
    h_sleep_ms(1500); /* longer than any silence bound */
    for (int i = 0; i < NODES; i++)
        cr_assert_not(counted_silent(&fx.node[i], id, mark[i]),
                      "node %d counted a clean stop silent", i);
    if (h_stat(fx.cl[1], "origins_silent") == 0) { /* else a loaded machine paused someone */
        char *v = from_l1(fx.cl[1], "k");
        cr_assert(v != NULL && strcmp(v, "v1") == 0, "node 1 lost its L1 entry after a clean stop");
        nc_free(v);
    }
}

struct burst {
    int id, failed;
};

static void *burst(void *arg)
{
    struct burst *b = arg;
    for (int i = 0; i < 50; i++) {
        char key[32];
        snprintf(key, sizeof key, "b%d-%d", b->id, i);
        b->failed += nc_set(fx.cl[0], str("ns"), str(key), str("v"), 60000, 0) != NC_OK;
    }
    return NULL;
}

Test(fanout, concurrent_writes_through_one_daemon_share_messages)
{
    enum { THREADS = 16 };
    pthread_t t[THREADS];
    struct burst b[THREADS];
    int64_t sent = h_stat(fx.cl[0], "invalidations_sent");
    int64_t batches = h_stat(fx.cl[0], "invalidation_batches");
    for (int i = 0; i < THREADS; i++) {
        b[i] = (struct burst){i, 0};
        pthread_create(&t[i], NULL, burst, &b[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(b[i].failed, 0);
    }
    sent = h_stat(fx.cl[0], "invalidations_sent") - sent;
    batches = h_stat(fx.cl[0], "invalidation_batches") - batches;
    printf("fanout: %lld writes from 16 threads went out in %lld messages\n", (long long)sent,
           (long long)batches);
    cr_assert_eq(sent, THREADS * 50, "%lld invalidations sent for %d writes (%lld messages)",
                 (long long)sent, THREADS * 50, (long long)batches);
    cr_assert_lt(batches * 10, sent * 9, "%lld writes in %lld messages: no batching",
                 (long long)sent, (long long)batches);
    cr_assert_eq(h_stat(fx.cl[1], "sequence_gaps"), 0);
}

Test(fanout, an_idle_daemon_goes_quiet_and_its_death_costs_nothing)
{
    cr_assert_eq(nc_set(fx.cl[1], str("ns"), str("k"), str("v0"), 60000, 0), NC_OK, "%s",
                 nc_errmsg());
    make_hot(fx.cl[0], "k", "v0");
    /* no write for longer than the silence bound: node 1 says bye for now */
    wait_byes(fx.cl[0], 1, "node 1 never went quiet");
    /* it writes again: heard again first, and its write reaches node 0 */
    cr_assert_eq(nc_set(fx.cl[1], str("ns"), str("k"), str("v1"), 60000, 0), NC_OK, "%s",
                 nc_errmsg());
    time_to_see(0, "k", "v1", h_now_ms());
    make_hot(fx.cl[0], "k", "v1");
    int64_t byes = h_stat(fx.cl[0], "origins_bye");
    wait_byes(fx.cl[0], byes + 1, "node 1 never went quiet again");
    char id[17];
    node_id_of(&fx.node[1], id);
    size_t mark = log_mark(&fx.node[0]);
    h_daemon_stop_with(&fx.node[1], SIGKILL);
    h_sleep_ms(1500);
    cr_assert_not(counted_silent(&fx.node[0], id, mark), "a quiet daemon's death emptied L1");
    if (h_stat(fx.cl[0], "origins_silent") == 0) {
        char *v = from_l1(fx.cl[0], "k");
        cr_assert(v != NULL && strcmp(v, "v1") == 0, "node 0 lost its L1 entry");
        nc_free(v);
    }
}

/* Regression: with inval_batch = 0 a daemon's writes publish in their
 * scripts, and the publisher did not know of them: it said bye for now
 * while writing, and the others, watching it again from its numbered
 * messages, counted it silent and emptied their L1. */
Test(fanout, a_daemon_that_writes_with_scripts_publishing_is_not_counted_silent)
{
    h_daemon *wd = h_fleet_add(&fx, &fx.redis, "--inval-batch", "0", NULL);
    nc_client *wc = fx.cl[NODES];
    cr_assert_eq(nc_set(fx.cl[0], str("ns"), str("k"), str("v0"), 60000, 0), NC_OK);
    make_hot(fx.cl[0], "k", "v0");
    h_sleep_ms(1200); /* the writer is idle: quiet */
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "w%d", i);
        cr_assert_eq(nc_set(wc, str("ns"), str(key), str("x"), 60000, 0), NC_OK, "%s",
                     nc_errmsg());
        h_sleep_ms(50);
    }
    h_sleep_ms(2000);
    char id[17];
    node_id_of(wd, id);
    cr_assert_not(counted_silent(&fx.node[0], id, 0), "a live writer was counted silent");
}

/* With Redis gone, a write fails at once: the publisher's last attempt
 * failed, so the gate does not wait for a heartbeat that cannot go out
 * (it used to hold each write until redis_timeout, the harness's 2 s: what
 * the bound tells apart; a loaded machine's round trip is below it). */
Test(fanout, with_redis_gone_a_write_fails_at_once)
{
    h_redis_stop(&fx.redis, 1);
    h_sleep_ms(1500); /* the publisher has tried and failed; the daemon went quiet */
    for (int i = 0; i < 3; i++) {
        int64_t t0 = h_now_ms();
        int rv = nc_set(fx.cl[0], str("ns"), str("k"), str("v"), 60000, 0);
        int64_t took = h_now_ms() - t0;
        cr_assert_eq(rv, NC_EUNAVAILABLE, "%s", nc_errmsg());
        cr_assert_lt(took, 2000, "a write took %lld ms to fail: it waited redis_timeout",
                     (long long)took);
    }
}
