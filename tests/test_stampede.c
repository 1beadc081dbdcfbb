/* Integration: protecting Redis and the database behind it. Concurrent
 * misses of one key on one node share one Redis read (single flight). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static h_fleet fx;
static h_proxy proxy;

static void down(void)
{
    h_fleet_stop(&fx);
    h_proxy_stop(&proxy);
}

TestSuite(stampede, .fini = down, .timeout = 60);

/* How many times Redis ran EVALSHA (every script call) so far. */
static long evalsha_calls(void)
{
    char *info = h_redis_cmd(&fx.redis, "INFO", "commandstats", NULL);
    const char *p = strstr(info, "cmdstat_evalsha:calls=");
    long n = p != NULL ? atol(p + strlen("cmdstat_evalsha:calls=")) : 0;
    free(info);
    return n;
}

#define READERS 50

struct reader {
    int rv;
    char value[16];
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    nc_client *c = NULL;
    void *v = NULL;
    size_t len;
    if ((r->rv = nc_open(&c, fx.node[0].url, 0)) == NC_OK)
        r->rv = nc_get(c, NC_STR("ns"), NC_STR("cold"), &v, &len, 3000);
    if (r->rv == NC_OK)
        snprintf(r->value, sizeof r->value, "%s", (char *)v);
    nc_free(v);
    nc_close(c);
    return NULL;
}

Test(stampede, concurrent_misses_of_one_key_share_one_redis_read)
{
    /* Redis answers commands 300 ms late, so every reader arrives while the
     * first read is still in flight. */
    h_fleet_start(&fx, 0, NULL);
    h_proxy_start(&proxy, &fx.redis, 300000);
    h_fleet_add(&fx, &proxy.via, "--request-timeout", "3s", "--redis-timeout", "2s", NULL);
    free(h_redis_cmd(&fx.redis, "SET", H_DATA_KEY(&fx.redis, "ns", "cold"), "value", "PX", "60000",
                     NULL));
    long before = evalsha_calls();
    pthread_t t[READERS];
    struct reader r[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct reader){.rv = -1};
        pthread_create(&t[i], NULL, reader_main, &r[i]);
    }
    for (int i = 0; i < READERS; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(r[i].rv, NC_OK, "reader %d: %s", i, nc_strerror(r[i].rv));
        cr_expect_str_eq(r[i].value, "value");
    }
    nc_client *c = h_client(&fx.node[0]);
    int64_t reads = h_stat(c, "l2_hits") + h_stat(c, "l2_misses");
    int64_t joins = h_stat(c, "single_flight_joins");
    nc_close(c);
    /* Readers that came after the value landed in L1 are hits, not joins. */
    cr_assert_eq(reads, 1, "%lld Redis reads for one key", (long long)reads);
    /* One read, whose script runs twice: this node has not seen ns's version,
     * so it assumes none and the script answers which one Redis holds. */
    cr_assert_eq(evalsha_calls() - before, 2, "Redis ran %ld scripts", evalsha_calls() - before);
    cr_assert_geq(joins, READERS / 2, "only %lld joined the flight", (long long)joins);
}

/* ---- leases, read-through and TTL policies, across three nodes ---------- */

#define NODES 3

static void nodes_up(const char *flag, const char *value)
{
    h_fleet_start(&fx, NODES, "--lease-ttl", "1s", flag, value, NULL);
}

static void up3(void)
{
    nodes_up("--log-level", "debug");
}

TestSuite(leases, .init = up3, .fini = down, .timeout = 60);
TestSuite(ttl, .fini = down, .timeout = 60);

static atomic_int loads;

static int slow_loader(void *arg, nc_bytes ns, nc_bytes key, void **value, size_t *len)
{
    (void)arg, (void)ns, (void)key;
    atomic_fetch_add(&loads, 1);
    h_sleep_ms(300); /* the database is slow */
    *value = strdup("loaded");
    *len = 6;
    return 0;
}

static int failing_loader(void *arg, nc_bytes ns, nc_bytes key, void **value, size_t *len)
{
    (void)arg, (void)ns, (void)key, (void)value, (void)len;
    atomic_fetch_add(&loads, 1);
    return -1;
}

#define FETCHERS 500

struct fetcher {
    int node, rv;
    char value[16];
};

static void *fetcher_main(void *arg)
{
    struct fetcher *f = arg;
    void *v = NULL;
    size_t len;
    f->rv = nc_fetch(fx.cl[f->node], NC_STR("ns"), NC_STR("cold"), 60000, slow_loader, NULL, &v,
                     &len, 5000);
    if (f->rv == NC_OK)
        snprintf(f->value, sizeof f->value, "%s", (char *)v);
    nc_free(v);
    return NULL;
}

Test(leases, five_hundred_fetches_of_a_cold_key_on_three_nodes_load_it_once)
{
    static pthread_t t[FETCHERS];
    static struct fetcher f[FETCHERS];
    atomic_store(&loads, 0);
    for (int i = 0; i < FETCHERS; i++) {
        f[i] = (struct fetcher){.node = i % NODES, .rv = -1};
        cr_assert_eq(pthread_create(&t[i], NULL, fetcher_main, &f[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < FETCHERS; i++) {
        pthread_join(t[i], NULL);
        ok += f[i].rv == NC_OK && strcmp(f[i].value, "loaded") == 0;
    }
    cr_assert_eq(atomic_load(&loads), 1, "the loader ran %d times", atomic_load(&loads));
    cr_assert_eq(ok, FETCHERS, "only %d of %d fetches got the value", ok, FETCHERS);
    int64_t granted = 0;
    for (int i = 0; i < NODES; i++)
        granted += h_stat(fx.cl[i], "leases_granted");
    cr_assert_eq(granted, 1);
}

static void take_lease(int n, const char *key, nc_get_info *info)
{
    nc_get_opts o = {.lease = 1};
    void *v = NULL;
    size_t len;
    int rv = nc_get_opt(fx.cl[n], NC_STR("ns"), NC_STR(key), &o, &v, &len, info, 2000);
    cr_assert_eq(rv, NC_ENOTFOUND, "%s: %s", nc_strerror(rv), nc_errmsg());
    cr_assert_eq(info->lease, NC_LEASE_GRANTED);
    cr_assert_neq(info->lease_token[0], '\0');
}

Test(leases, a_set_after_a_delete_is_rejected_and_caches_nothing)
{
    nc_get_info info;
    take_lease(0, "k", &info);
    /* The loader reads the database; meanwhile the row changes and the key
     * is deleted through another node. */
    cr_assert_eq(nc_del(fx.cl[1], NC_STR("ns"), NC_STR("k"), NULL, 0), NC_OK);
    nc_set_opts so = {.lease_token = info.lease_token};
    int rv = nc_set_opt(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("old"), 60000, &so, 0);
    cr_assert_eq(rv, NC_ELEASE, "%s", nc_strerror(rv));
    cr_assert_eq(nc_status(), CODE(ABORTED));
    void *v;
    size_t len;
    for (int n = 0; n < NODES; n++)
        cr_assert_eq(nc_get(fx.cl[n], NC_STR("ns"), NC_STR("k"), &v, &len, 0), NC_ENOTFOUND);
    cr_assert_eq(h_stat(fx.cl[0], "lease_sets_rejected"), 1);
}

Test(leases, a_dead_holder_blocks_no_one_past_its_lease)
{
    nc_get_info held, info;
    take_lease(0, "k", &held); /* ...and never Sets */
    nc_get_opts o = {.lease = 1};
    void *v = NULL;
    size_t len;
    int64_t t0 = h_now_ms();
    int rv = nc_get_opt(fx.cl[1], NC_STR("ns"), NC_STR("k"), &o, &v, &len, &info, 300);
    cr_assert_eq(rv, NC_ETIMEDOUT, "%s", nc_strerror(rv));
    cr_assert_eq(info.lease, NC_LEASE_BUSY);
    /* BUSY within its budget; not when the lease ran out (1 s) */
    cr_assert_lt(h_now_ms() - t0, 1000, "the waiter was not answered in time");
    h_sleep_ms(1100); /* the lease's 1 s runs out */
    take_lease(2, "k", &info);
    cr_assert_str_neq(info.lease_token, held.lease_token);
}

struct waiter {
    int rv;
    nc_get_info info;
    char value[16];
    int64_t took;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    nc_get_opts o = {.lease = 1};
    void *v = NULL;
    size_t len;
    int64_t t0 = h_now_ms();
    w->rv = nc_get_opt(fx.cl[1], NC_STR("ns"), NC_STR("k"), &o, &v, &len, &w->info, 3000);
    w->took = h_now_ms() - t0;
    if (w->rv == NC_OK)
        snprintf(w->value, sizeof w->value, "%s", (char *)v);
    nc_free(v);
    return NULL;
}

Test(leases, a_waiter_is_woken_by_the_holders_set)
{
    nc_get_info held;
    take_lease(0, "k", &held);
    pthread_t t;
    struct waiter w = {.rv = -1};
    pthread_create(&t, NULL, waiter_main, &w);
    h_sleep_ms(200);
    nc_set_opts so = {.lease_token = held.lease_token};
    cr_assert_eq(nc_set_opt(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("fresh"), 60000, &so, 0),
                 NC_OK, "%s", nc_errmsg());
    pthread_join(t, NULL);
    cr_assert_eq(w.rv, NC_OK, "%s", nc_strerror(w.rv));
    cr_assert_str_eq(w.value, "fresh");
    cr_assert_eq(w.info.lease, NC_LEASE_WAITED);
    cr_assert_lt(w.took, 1000, "woken after %lld ms", (long long)w.took);
    cr_assert_geq(h_stat(fx.cl[1], "lease_waits"), 1);
}

Test(leases, a_failed_loader_caches_nothing_and_hands_the_lease_on)
{
    atomic_store(&loads, 0);
    void *v = NULL;
    size_t len;
    int rv =
        nc_fetch(fx.cl[0], NC_STR("ns"), NC_STR("k"), 60000, failing_loader, NULL, &v, &len, 0);
    cr_assert_eq(rv, NC_ELOADER, "%s", nc_strerror(rv));
    cr_assert_eq(nc_get(fx.cl[1], NC_STR("ns"), NC_STR("k"), &v, &len, 0), NC_ENOTFOUND);
    /* The lease was released: the next caller loads at once, not after 1 s. */
    int64_t t0 = h_now_ms();
    rv = nc_fetch(fx.cl[2], NC_STR("ns"), NC_STR("k"), 60000, slow_loader, NULL, &v, &len, 0);
    cr_assert_eq(rv, NC_OK, "%s: %s", nc_strerror(rv), nc_errmsg());
    cr_assert_str_eq(v, "loaded");
    nc_free(v);
    /* the loader's 300 ms and two round trips; a lease still held would add
     * its 1 s */
    cr_assert_lt(h_now_ms() - t0, 1200, "loaded after %lld ms", (long long)(h_now_ms() - t0));
    cr_assert_eq(atomic_load(&loads), 2);
}

Test(leases, fetch_fails_open_only_when_asked)
{
    nc_client *c = NULL;
    cr_assert_eq(nc_open(&c, "ipc:///tmp/nc-no-daemon-here.sock", NC_OPEN_BACKGROUND), NC_OK);
    void *v = NULL;
    size_t len;
    atomic_store(&loads, 0);
    int rv = nc_fetch(c, NC_STR("ns"), NC_STR("k"), 60000, slow_loader, NULL, &v, &len, 200);
    cr_assert_eq(rv, NC_ECONNECT, "%s", nc_strerror(rv));
    cr_assert_eq(atomic_load(&loads), 0);
    nc_set_fail_open(c, 1);
    rv = nc_fetch(c, NC_STR("ns"), NC_STR("k"), 60000, slow_loader, NULL, &v, &len, 200);
    cr_assert_eq(rv, NC_OK, "%s", nc_strerror(rv));
    cr_assert_str_eq(v, "loaded");
    nc_free(v);
    nc_close(c);
}

Test(leases, negative_entries_are_told_apart_from_misses)
{
    nc_set_opts neg = {.negative = 1};
    cr_assert_eq(nc_set_opt(fx.cl[0], NC_STR("ns"), NC_STR("gone"), NC_STR(""), 500, &neg, 0),
                 NC_OK);
    void *v = NULL;
    size_t len;
    nc_get_info info;
    cr_assert_eq(nc_get_ex(fx.cl[1], NC_STR("ns"), NC_STR("gone"), &v, &len, &info, 0),
                 NC_ENOTFOUND);
    cr_assert(info.negative, "a negative entry read as a plain miss");
    cr_assert(info.ttl_ms > 0 && info.ttl_ms <= 500, "its time left: %llu",
              (unsigned long long)info.ttl_ms);
    cr_assert_eq(nc_get_ex(fx.cl[1], NC_STR("ns"), NC_STR("never"), &v, &len, &info, 0),
                 NC_ENOTFOUND);
    cr_assert_not(info.negative);
    cr_assert_eq(h_stat(fx.cl[1], "negative_hits"), 1);
    h_sleep_ms(600); /* its own TTL */
    cr_assert_eq(nc_get_ex(fx.cl[1], NC_STR("ns"), NC_STR("gone"), &v, &len, &info, 0),
                 NC_ENOTFOUND);
    cr_assert_not(info.negative);
    cr_assert_eq(nc_set_opt(fx.cl[0], NC_STR("ns"), NC_STR("gone"), NC_STR(""), 60000, &neg, 0),
                 NC_OK);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("gone"), NC_STR("back"), 60000, 0), NC_OK);
    cr_assert_eq(nc_get(fx.cl[2], NC_STR("ns"), NC_STR("gone"), &v, &len, 0), NC_OK);
    cr_assert_str_eq(v, "back");
    nc_free(v);
}

Test(leases, stale_while_revalidate_serves_stale_to_all_but_one_caller)
{
    nc_set_opts swr = {.stale_while_revalidate_ms = 5000};
    cr_assert_eq(nc_set_opt(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("v1"), 300, &swr, 0),
                 NC_OK);
    for (int i = 0; i < 2; i++) { /* fresh in node 2's L1: but only for its TTL */
        void *hot;
        size_t n;
        cr_assert_eq(nc_get(fx.cl[2], NC_STR("ns"), NC_STR("k"), &hot, &n, 0), NC_OK);
        nc_free(hot);
    }
    h_sleep_ms(400); /* past its TTL, inside the stale window */
    nc_get_opts lease = {.lease = 1};
    void *v = NULL;
    size_t len;
    nc_get_info refresher, other;
    cr_assert_eq(nc_get_opt(fx.cl[1], NC_STR("ns"), NC_STR("k"), &lease, &v, &len, &refresher, 0),
                 NC_OK);
    cr_assert_str_eq(v, "v1");
    nc_free(v);
    cr_assert(refresher.stale);
    cr_assert_eq(refresher.lease, NC_LEASE_GRANTED, "nobody was asked to refresh");
    for (int n = 0; n < NODES; n++) {
        cr_assert_eq(nc_get_opt(fx.cl[n], NC_STR("ns"), NC_STR("k"), &lease, &v, &len, &other, 0),
                     NC_OK);
        cr_assert_str_eq(v, "v1");
        nc_free(v);
        cr_assert(other.stale);
        cr_assert_eq(other.lease, NC_LEASE_NONE, "node %d was asked to refresh too", n);
    }
    nc_set_opts so = {.lease_token = refresher.lease_token, .stale_while_revalidate_ms = 5000};
    cr_assert_eq(nc_set_opt(fx.cl[1], NC_STR("ns"), NC_STR("k"), NC_STR("v2"), 60000, &so, 0),
                 NC_OK);
    cr_assert_eq(nc_get_ex(fx.cl[2], NC_STR("ns"), NC_STR("k"), &v, &len, &other, 0), NC_OK);
    cr_assert_str_eq(v, "v2");
    nc_free(v);
    cr_assert_not(other.stale);
}

Test(ttl, jitter_spreads_expiries_within_its_bounds)
{
    nodes_up("--ttl-jitter", "20");
    char key[16];
    long lo = 1L << 40, hi = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "k%d", i);
        int64_t t0 = h_now_ms();
        cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR(key), NC_STR("v"), 10000, 0), NC_OK);
        char *pttl = h_redis_cmd(&fx.redis, "PTTL", H_DATA_KEY(&fx.redis, "ns", key), NULL);
        long ms = atol(pttl), took = (long)(h_now_ms() - t0); /* the TTL ran meanwhile */
        free(pttl);
        cr_assert(ms >= 8000 - took && ms <= 12000,
                  "PTTL %ld (%ld ms after the Set) is outside 10 s +-20%%", ms, took);
        lo = ms < lo ? ms : lo;
        hi = ms > hi ? ms : hi;
    }
    cr_assert_gt(hi - lo, 1000, "50 TTLs spread over only %ld ms", hi - lo);
}

Test(ttl, a_sliding_key_lives_while_read_and_expires_when_not)
{
    nodes_up("--log-level", "debug");
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("s"), NC_STR("v"), 1000, 0), NC_OK);
    nc_get_opts slide = {.slide_ttl_ms = 1000};
    void *v = NULL;
    size_t len;
    nc_get_info info;
    for (int64_t end = h_now_ms() + 2500; h_now_ms() < end; h_sleep_ms(100)) {
        cr_assert_eq(nc_get_opt(fx.cl[1], NC_STR("ns"), NC_STR("s"), &slide, &v, &len, &info, 0),
                     NC_OK, "the key expired while read");
        nc_free(v);
    }
    cr_assert_geq(h_stat(fx.cl[1], "slides"), 1);
    cr_assert_lt(h_stat(fx.cl[1], "slides"), 10, "a refresh per read, not coalesced");
    h_sleep_ms(1300);
    char *exists = h_redis_cmd(&fx.redis, "EXISTS", H_DATA_KEY(&fx.redis, "ns", "s"), NULL);
    cr_assert_str_eq(exists, "0", "the key outlived its sliding TTL");
    free(exists);
    cr_assert_eq(nc_get(fx.cl[1], NC_STR("ns"), NC_STR("s"), &v, &len, 0), NC_ENOTFOUND);
}

struct parked {
    int rv;
};

static void *parked_main(void *arg)
{
    struct parked *p = arg;
    nc_get_opts o = {.lease = 1};
    void *v = NULL;
    size_t len;
    nc_get_info info;
    p->rv = nc_get_opt(fx.cl[1], NC_STR("ns"), NC_STR("k"), &o, &v, &len, &info, 3000);
    nc_free(v);
    return NULL;
}

Test(ttl, waiters_never_take_the_last_contexts)
{
    /* Regression: Gets parked for a lease kept their contexts without a
     * cap, until Pings and Stats found none. */
    h_fleet_start(&fx, NODES, "--lease-ttl", "10s", "--contexts", "40", NULL);
    nc_get_info held;
    take_lease(0, "k", &held); /* the waiters park until their 3 s run out */
    pthread_t t[40];
    struct parked p[40];
    for (int i = 0; i < 40; i++) {
        p[i].rv = -1;
        pthread_create(&t[i], NULL, parked_main, &p[i]);
    }
    h_sleep_ms(300);
    int64_t t0 = h_now_ms();
    cr_assert_eq(nc_ping(fx.cl[1], NULL, 5000), NC_OK, "no context left for a Ping");
    /* not after the parked Gets' 3 s */
    cr_assert_lt(h_now_ms() - t0, 1000, "a Ping answered after %lld ms",
                 (long long)(h_now_ms() - t0));
    for (int i = 0; i < 40; i++) {
        pthread_join(t[i], NULL);
        /* the holder never Sets: each waiter ends BUSY, or is turned away */
        cr_expect(p[i].rv == NC_ETIMEDOUT || p[i].rv == NC_ETOOBIG, "waiter %d: %s", i,
                  nc_strerror(p[i].rv));
    }
}
