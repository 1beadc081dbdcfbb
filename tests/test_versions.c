/* Integration: a namespace version never goes back (issue 9). Redis loses
 * PREFIX:nsver:NS when it evicts it, is flushed, or fails over to a replica
 * that never got a bump; no read may then return a value written before the
 * bump, on any path (read lane, workers, MGet, lease Get), nor after a daemon
 * restart. Real redis-server and real daemons; L1 keeps nothing (l1_max_ttl
 * 1 ms), so every read is a Redis read, except where Redis restarts empty
 * under L1s and near tiers that hold values. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define OLD "OLD"

static h_fleet fx; /* daemons A (node 0) and B (node 1), started by the tests */

static void up(void)
{
    h_fleet_start(&fx, 0, NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
}

TestSuite(versions, .init = up, .fini = down, .timeout = 120);

/* Starts daemons A and B on `r` with the extra flag pair (may be NULL). */
static void daemons_up(const h_redis *r, const char *flag, const char *value)
{
    h_fleet_add(&fx, r, "--l1-max-ttl", "1ms", flag, value, NULL);
    h_fleet_add(&fx, r, "--l1-max-ttl", "1ms", flag, value, NULL);
}

static nc_bytes str(const char *s)
{
    return (nc_bytes){s, strlen(s)};
}

/* Writes p/KEY = OLD for keys 1..n, bumps p, writes p/1 = NEW: what the
 * issue's reproduction does. Returns the version after the bump. */
static uint64_t old_then_bump(nc_client *c, int n)
{
    char key[16];
    for (int i = 1; i <= n; i++) {
        snprintf(key, sizeof key, "%d", i);
        cr_assert_eq(nc_set(c, str("p"), str(key), str(OLD), 3600000, 0), NC_OK, "%s", nc_errmsg());
    }
    uint64_t version = 0;
    cr_assert_eq(nc_bump(c, str("p"), &version, 0), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(nc_set(c, str("p"), str("1"), str("NEW"), 3600000, 0), NC_OK);
    return version;
}

/* Gets p/KEY through c: fails the test when it returns the value from
 * before the bump. Returns 1 when found. */
static int never_old(nc_client *c, const char *key, const char *path)
{
    void *v = NULL;
    size_t len;
    int rv = nc_get(c, str("p"), str(key), &v, &len, 2000);
    cr_assert(rv == NC_OK || rv == NC_ENOTFOUND, "%s: get p/%s: %s (%s)", path, key,
              nc_strerror(rv), nc_errmsg());
    int old = rv == NC_OK && len == 3 && memcmp(v, OLD, 3) == 0;
    nc_free(v);
    cr_assert_not(old, "%s: p/%s returned the value from before the bump", path, key);
    return rv == NC_OK;
}

/* Redis holds no version of p (plain reads make none) or one above `v`. */
static void never_below(uint64_t v, const char *path)
{
    uint64_t now = h_nsver(&fx.redis, "p");
    cr_assert(now == 0 || now > v, "%s: the version came back as %llu, not above %llu", path,
              (unsigned long long)now, (unsigned long long)v);
}

static void lose_version(void)
{
    free(h_redis_cmd(&fx.redis, "DEL", "nc:v1:nsver:p", NULL));
}

/* The reproduction: the version key deleted, then a read of another
 * key of p, then p/1, on both daemons. */
static void reproduce(const char *path)
{
    uint64_t bumped = old_then_bump(fx.cl[0], 1);
    lose_version();
    never_old(fx.cl[0], "2", path);
    never_old(fx.cl[0], "1", path);
    never_old(fx.cl[1], "1", path);
    never_below(bumped, path);
}

Test(versions, a_lost_version_key_brings_back_nothing_through_the_read_lane)
{
    daemons_up(&fx.redis, NULL, NULL);
    reproduce("lane");
    cr_assert_geq(h_stat(fx.cl[0], "redis_lane_retries"), 1, "the lane saw the lost version");
}

Test(versions, a_lost_version_key_brings_back_nothing_through_the_workers)
{
    daemons_up(&fx.redis, "--redis-lane", "0");
    reproduce("workers");
}

Test(versions, a_lost_version_key_brings_back_nothing_through_mget)
{
    daemons_up(&fx.redis, NULL, NULL);
    old_then_bump(fx.cl[0], 3);
    lose_version();
    nc_bytes keys[3] = {str("1"), str("2"), str("3")};
    for (nc_client **c = (nc_client *[]){fx.cl[0], fx.cl[1], NULL}; *c != NULL; c++) {
        nc_item *items = NULL;
        cr_assert_eq(nc_mget(*c, str("p"), keys, 3, &items, 2000), NC_OK, "%s", nc_errmsg());
        for (int i = 0; i < 3; i++)
            cr_assert_not(items[i].found && items[i].len == 3 &&
                              memcmp(items[i].value, OLD, 3) == 0,
                          "mget: key %d returned the value from before the bump", i + 1);
        nc_items_free(items, 3);
    }
}

Test(versions, a_lost_version_key_brings_back_nothing_through_a_lease_get)
{
    daemons_up(&fx.redis, NULL, NULL);
    old_then_bump(fx.cl[0], 2);
    lose_version();
    nc_get_opts o = {.lease = 1};
    nc_get_info info;
    void *v = NULL;
    size_t len;
    int rv = nc_get_opt(fx.cl[1], str("p"), str("2"), &o, &v, &len, &info, 2000);
    cr_assert_eq(rv, NC_ENOTFOUND, "lease get: %s", nc_strerror(rv));
    cr_assert_eq(info.lease, NC_LEASE_GRANTED, "a miss on the new version grants the lease");
    never_old(fx.cl[0], "2", "after the lease get");
}

Test(versions, a_restarted_daemon_with_no_memory_of_the_version_reads_nothing_old)
{
    daemons_up(&fx.redis, NULL, NULL);
    uint64_t bumped = old_then_bump(fx.cl[0], 2);
    nc_close(fx.cl[0]);
    fx.cl[0] = NULL;
    cr_assert_eq(h_daemon_stop(&fx.node[0]), 0);
    lose_version();
    h_daemon_start(&fx.node[0], &fx.redis, "--l1-max-ttl", "1ms", NULL);
    fx.cl[0] = h_client(&fx.node[0]);
    never_old(fx.cl[0], "2", "restarted");
    never_old(fx.cl[0], "1", "restarted");
    never_below(bumped, "restarted");
    cr_assert_eq(nc_set(fx.cl[0], str("p"), str("3"), str("x"), 60000, 0), NC_OK);
    cr_assert_gt(h_nsver(&fx.redis, "p"), bumped, "a write made the version again, above");
}

/* Fills Redis through A with 1 KiB values under namespace `fill` until
 * Redis has lost the version key of p (or `batches` run out); returns
 * whether it did. Nothing touches p meanwhile, so a lost version stays
 * lost; EXISTS looks without touching the key's LRU clock (GET would). */
static int fill_until_p_loses_its_version(int batches)
{
    static char value[1024];
    memset(value, 'x', sizeof value);
    char key[32];
    for (int batch = 0; batch < batches; batch++) {
        for (int i = 0; i < 100; i++) {
            snprintf(key, sizeof key, "%d-%d", batch, i);
            int rv = nc_set(fx.cl[0], str("fill"), str(key), (nc_bytes){value, sizeof value},
                            3600000, 0);
            cr_assert_eq(rv, NC_OK, "fill: %s (%s)", nc_strerror(rv), nc_errmsg());
        }
        char *exists = h_redis_cmd(&fx.redis, "EXISTS", "nc:v1:nsver:p", NULL);
        int lost = strcmp(exists, "0") == 0;
        free(exists);
        if (lost)
            return 1;
    }
    return 0;
}

/* How many of p's keys Redis still holds under `version`. */
static int held_under(uint64_t version, int n)
{
    int held = 0;
    for (int i = 1; i <= n; i++) {
        char key[128], name[16];
        snprintf(name, sizeof name, "%d", i);
        h_key_at(key, sizeof key, "nc:v1", "p", version, name);
        char *out = h_redis_cmd(&fx.redis, "EXISTS", key, NULL);
        held += strcmp(out, "1") == 0;
        free(out);
    }
    return held;
}

/* GETs p's keys 1..n under `version`, as another program would, in a few
 * scripts (so that they run within one second of LRU's clock). */
static void read_old_values(uint64_t version, int n)
{
    char port[16], names[50][128], count[16];
    snprintf(port, sizeof port, "%d", fx.redis.port);
    for (int first = 1; first <= n; first += 50) {
        char *argv[64] = {"redis-cli", "-p", port, "EVAL",
                          "for i = 1, #KEYS do redis.call('GET', KEYS[i]) end", count};
        int k = 0;
        for (; k < 50 && first + k <= n; k++) {
            char name[16];
            snprintf(name, sizeof name, "%d", first + k);
            argv[6 + k] = h_key_at(names[k], sizeof names[k], "nc:v1", "p", version, name);
        }
        snprintf(count, sizeof count, "%d", k);
        argv[6 + k] = NULL;
        char *out = NULL;
        size_t len;
        h_run(argv, NULL, 0, &out, &len, NULL);
        free(out);
    }
}

/* Redis under real memory pressure with an allkeys-* policy evicts what it
 * likes, the version keys included: fill it until p's version is evicted
 * while values from before the bump are still there, then read p. */
static void evict_under(const char *policy)
{
    free(h_redis_cmd(&fx.redis, "CONFIG", "SET", "maxmemory-policy", policy, NULL));
    free(h_redis_cmd(&fx.redis, "CONFIG", "SET", "maxmemory-samples", "64", NULL));
    daemons_up(&fx.redis, NULL, NULL);
    enum { KEYS = 200, ATTEMPTS = 3 };
    uint64_t before = 0; /* the version the OLD values live under */
    int attempt = 0;
    for (; attempt < ATTEMPTS; attempt++) {
        before = old_then_bump(fx.cl[0], KEYS) - 1;
        /* LRU evicts the idlest keys first, and the version key of a
         * namespace in use is never idle. It goes first when the
         * namespace's old values are read by something else (another
         * program on the same Redis; here a script), a second after the
         * bump: LRU's clock counts seconds. */
        h_sleep_ms(1100);
        read_old_values(before, KEYS);
        char *used = h_redis_cmd(&fx.redis, "INFO", "memory", NULL);
        long long bytes = atoll(strstr(used, "used_memory:") + strlen("used_memory:"));
        free(used);
        char limit[32];
        snprintf(limit, sizeof limit, "%lld", bytes + 1024 * 1024);
        free(h_redis_cmd(&fx.redis, "CONFIG", "SET", "maxmemory", limit, NULL));
        cr_assert(fill_until_p_loses_its_version(200), "%s: p's version was never evicted", policy);
        if (held_under(before, KEYS) > 0)
            break;
        /* LRU is sampled: now and then every OLD value goes before the
         * version key, and there is nothing to prove. Start again. */
        free(h_redis_cmd(&fx.redis, "CONFIG", "SET", "maxmemory", "0", NULL));
        free(h_redis_cmd(&fx.redis, "FLUSHALL", NULL));
    }
    cr_assert_lt(attempt, ATTEMPTS, "%s: every OLD value went before the version key, %d times",
                 policy, ATTEMPTS);
    char *info = h_redis_cmd(&fx.redis, "INFO", "stats", NULL);
    cr_assert_gt(atoll(strstr(info, "evicted_keys:") + strlen("evicted_keys:")), 0);
    free(info);
    for (int i = 1; i <= KEYS; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        never_old(i % 2 ? fx.cl[0] : fx.cl[1], key, policy);
    }
}

Test(versions, allkeys_lru_evicting_the_version_brings_back_nothing)
{
    evict_under("allkeys-lru");
}

Test(versions, allkeys_random_evicting_the_version_brings_back_nothing)
{
    evict_under("allkeys-random");
}

/* Polls `r` until its replication link to its master is up. */
static void wait_link_up(const h_redis *r)
{
    for (int i = 0; i < 500; i++) {
        char *info = h_redis_cmd(r, "INFO", "replication", NULL);
        int linked = strstr(info, "master_link_status:up") != NULL;
        free(info);
        if (linked)
            return;
        h_sleep_ms(10);
    }
    cr_assert_fail("replication link never came up");
}

/* A failover to a replica that lagged: R2 got the OLD values and their
 * version but not the bump. The daemons' Redis then holds R2's data (it
 * resyncs from R2 and is promoted again), an older version than the
 * daemons saw: their floor raises it, and nothing old is served. */
Test(versions, a_failover_to_a_replica_without_the_bump_brings_back_nothing)
{
    h_redis r2;
    h_redis_start(&r2);
    char port[16], port2[16];
    snprintf(port, sizeof port, "%d", fx.redis.port);
    snprintf(port2, sizeof port2, "%d", r2.port);
    free(h_redis_cmd(&r2, "REPLICAOF", "127.0.0.1", port, NULL));
    wait_link_up(&r2);
    daemons_up(&fx.redis, NULL, NULL);
    cr_assert_eq(nc_set(fx.cl[0], str("p"), str("1"), str(OLD), 3600000, 0), NC_OK);
    cr_assert_eq(nc_set(fx.cl[0], str("p"), str("2"), str(OLD), 3600000, 0), NC_OK);
    /* R2 has the OLD values and their version before it stops following. */
    uint64_t v0 = h_nsver(&fx.redis, "p");
    char *second = NULL;
    for (int i = 0; i < 500; i++) {
        free(second);
        second = h_redis_cmd(&r2, "GET", H_DATA_KEY(&fx.redis, "p", "2"), NULL);
        if (h_nsver(&r2, "p") == v0 && strcmp(second, OLD) == 0)
            break;
        h_sleep_ms(10);
    }
    cr_assert_str_eq(second, OLD, "the replica never got the values from before the bump");
    free(second);
    free(h_redis_cmd(&r2, "REPLICAOF", "NO", "ONE", NULL)); /* R2 stops following: it lags */
    uint64_t version = 0;
    cr_assert_eq(nc_bump(fx.cl[0], str("p"), &version, 0), NC_OK);
    cr_assert_eq(nc_set(fx.cl[0], str("p"), str("1"), str("NEW"), 3600000, 0), NC_OK);
    cr_assert_eq(h_nsver(&r2, "p"), version - 1, "the replica holds the version before the bump");
    /* Fail over: the daemons' Redis takes R2's data set, then is master again. */
    free(h_redis_cmd(&fx.redis, "REPLICAOF", "127.0.0.1", port2, NULL));
    wait_link_up(&fx.redis);
    free(h_redis_cmd(&fx.redis, "REPLICAOF", "NO", "ONE", NULL));
    cr_assert_eq(h_nsver(&fx.redis, "p"), version - 1, "the failover brought the old version back");
    for (int i = 0; i < 20; i++) {
        never_old(fx.cl[0], i % 2 ? "1" : "2", "failover A");
        never_old(fx.cl[1], i % 2 ? "2" : "1", "failover B");
    }
    cr_assert_gt(h_nsver(&fx.redis, "p"), version);
    h_redis_cleanup(&r2);
}

/* Redis restarted empty (no persistence) under daemons whose L1 and near
 * tiers hold values, some from before a bump: from the restart on, no
 * reader gets any of them (Redis holds none), the version comes back above
 * the bump, and a write after the restart reaches every reader. */
Test(versions, redis_restarted_empty_brings_back_nothing_from_l1_or_the_near_tiers)
{
    h_fleet_add(&fx, &fx.redis, NULL);
    h_fleet_add(&fx, &fx.redis, NULL);
    nc_client *cl[4] = {fx.cl[0], fx.cl[1], NULL, NULL};
    for (int i = 0; i < 2; i++) {
        nc_open_opts o = {.near_bytes = 1 << 20};
        cr_assert_eq(nc_open_ex(&cl[2 + i], fx.node[i].url, &o), NC_OK, "%s", nc_errmsg());
    }
    uint64_t bumped = old_then_bump(fx.cl[0], 3);
    for (int c = 0; c < 4; c++) /* NEW into L1 and the near tiers; OLD into L1 */
        for (const char **k = (const char *[]){"1", "1", "2", NULL}; *k != NULL; k++)
            never_old(cl[c], *k, "before the restart");
    h_redis_stop(&fx.redis, 1);
    h_redis_restart(&fx.redis);
    cr_assert_eq(h_nsver(&fx.redis, "p"), 0, "Redis came back with data");
    int found = 0;
    int64_t end = h_now_ms() + 2000;
    for (int round = 0; h_now_ms() < end || round < 5; round++)
        for (int c = 0; c < 4; c++)
            for (const char **k = (const char *[]){"1", "2", "3", NULL}; *k != NULL; k++) {
                void *v = NULL;
                size_t len;
                int rv = nc_get(cl[c], str("p"), str(*k), &v, &len, 2000);
                nc_free(v);
                found += rv == NC_OK;
                cr_assert(rv == NC_ENOTFOUND || rv == NC_EUNAVAILABLE,
                          "reader %d: p/%s after the restart: %s (Redis holds nothing)", c, *k,
                          rv == NC_OK ? "a value from before it" : nc_strerror(rv));
            }
    int rv = NC_EUNAVAILABLE;
    for (int64_t give_up = h_now_ms() + 10000; rv != NC_OK && h_now_ms() < give_up;)
        if ((rv = nc_set(cl[1], str("p"), str("2"), str("AFTER"), 3600000, 2000)) != NC_OK)
            h_sleep_ms(50);
    cr_assert_eq(rv, NC_OK, "no write after the restart: %s", nc_errmsg());
    cr_assert_gt(h_nsver(&fx.redis, "p"), bumped, "the version came back above the bump");
    h_sleep_ms(1000); /* the coherence window */
    for (int c = 0; c < 4; c++) {
        void *v = NULL;
        size_t len = 0;
        cr_assert_eq(nc_get(cl[c], str("p"), str("2"), &v, &len, 2000), NC_OK, "reader %d", c);
        cr_assert(len == 5 && memcmp(v, "AFTER", 5) == 0, "reader %d: p/2 is not AFTER", c);
        nc_free(v);
    }
    cr_assert_eq(found, 0);
    nc_close(cl[2]);
    nc_close(cl[3]);
}
