/* Integration: a real nearcached against a real redis-server, driven through
 * libnearcache: both tiers, TTLs, binary data and Redis going away. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static h_fleet fx; /* one daemon */

static void up(void)
{
    h_fleet_start(&fx, 1, NULL);
}

static void up_with(const char *flag, const char *value)
{
    h_fleet_start(&fx, 1, flag, value, NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
}

/* Gets a key that must exist; returns its value (caller frees). */
static char *must_get(nc_bytes ns, nc_bytes key, size_t *len, nc_get_info *info)
{
    void *v = NULL;
    int rv = nc_get_ex(fx.cl[0], ns, key, &v, len, info, NC_TIMEOUT_DEFAULT);
    cr_assert_eq(rv, NC_OK, "get: %s (%s)", nc_strerror(rv), nc_errmsg());
    return v;
}

TestSuite(daemon, .init = up, .fini = down, .timeout = 30);
/* Tests that start the daemon with their own flags. */
TestSuite(daemon_flags, .fini = down, .timeout = 30);

Test(daemon, get_of_missing_key_is_not_found)
{
    void *v;
    size_t len;
    cr_assert_eq(nc_get(fx.cl[0], NC_STR("users"), NC_STR("nobody"), &v, &len, 0), NC_ENOTFOUND);
    cr_assert_eq(nc_status(), CODE(NOT_FOUND));
    cr_assert_eq(h_stat(fx.cl[0], "l2_misses"), 1);
}

Test(daemon, value_in_redis_is_read_through_then_served_from_l1)
{
    char *ok = h_redis_cmd(&fx.redis, "SET", H_DATA_KEY(&fx.redis, "users", "42"), "alice", "PX",
                           "60000", NULL);
    cr_assert_str_eq(ok, "OK");
    free(ok);
    nc_get_info info;
    size_t len;
    char *v = must_get(NC_STR("users"), NC_STR("42"), &len, &info);
    cr_assert_str_eq(v, "alice");
    cr_assert_eq(info.source, NC_SOURCE_L2);
    cr_assert(info.ttl_ms > 50000 && info.ttl_ms <= 60000, "ttl %llu",
              (unsigned long long)info.ttl_ms);
    nc_free(v);
    v = must_get(NC_STR("users"), NC_STR("42"), &len, &info);
    cr_assert_str_eq(v, "alice");
    cr_assert_eq(info.source, NC_SOURCE_L1);
    nc_free(v);
    cr_assert_eq(h_stat(fx.cl[0], "l1_hits"), 1);
    cr_assert_eq(h_stat(fx.cl[0], "l1_misses"), 1);
    cr_assert_eq(h_stat(fx.cl[0], "l2_hits"), 1);
    cr_assert_eq(h_stat(fx.cl[0], "l1_entries"), 1);
}

Test(daemon, set_writes_redis_with_ttl_and_fills_l1)
{
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("v1"), 30000, 0), NC_OK);
    char *val = h_redis_cmd(&fx.redis, "GET", H_DATA_KEY(&fx.redis, "ns", "k"), NULL);
    cr_assert_str_eq(val, "v1");
    free(val);
    char *pttl = h_redis_cmd(&fx.redis, "PTTL", H_DATA_KEY(&fx.redis, "ns", "k"), NULL);
    long ms = atol(pttl);
    free(pttl);
    cr_assert(ms > 29000 && ms <= 30000, "PTTL %ld", ms);
    nc_get_info info;
    size_t len;
    char *v = must_get(NC_STR("ns"), NC_STR("k"), &len, &info);
    cr_assert_eq(info.source, NC_SOURCE_L1);
    nc_free(v);
}

Test(daemon_flags, set_without_ttl_uses_default_ttl)
{
    up_with("--default-ttl", "10s");
    int64_t t0 = h_now_ms();
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("v"), NC_TTL_DEFAULT, 0),
                 NC_OK);
    char *pttl = h_redis_cmd(&fx.redis, "PTTL", H_DATA_KEY(&fx.redis, "ns", "k"), NULL);
    long ms = atol(pttl), took = (long)(h_now_ms() - t0); /* the Set and PTTL's own time */
    free(pttl);
    cr_assert(ms >= 10000 - took && ms <= 10000, "PTTL %ld, %ld ms after the Set", ms, took);
}

Test(daemon_flags, ttl_above_max_ttl_is_capped)
{
    h_fleet_start(&fx, 1, "--max-ttl", "20s", "--default-ttl", "5s", NULL);
    int64_t t0 = h_now_ms();
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("v"), 3600000, 0), NC_OK);
    char *pttl = h_redis_cmd(&fx.redis, "PTTL", H_DATA_KEY(&fx.redis, "ns", "k"), NULL);
    long ms = atol(pttl), took = (long)(h_now_ms() - t0);
    free(pttl);
    cr_assert(ms >= 20000 - took && ms <= 20000, "PTTL %ld, %ld ms after the Set", ms, took);
}

Test(daemon, value_expires_in_both_tiers)
{
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("short"), NC_STR("v"), 300, 0), NC_OK);
    size_t len;
    nc_free(must_get(NC_STR("ns"), NC_STR("short"), &len, NULL));
    h_sleep_ms(450);
    void *v;
    cr_assert_eq(nc_get(fx.cl[0], NC_STR("ns"), NC_STR("short"), &v, &len, 0), NC_ENOTFOUND);
    char *exists = h_redis_cmd(&fx.redis, "EXISTS", H_DATA_KEY(&fx.redis, "ns", "short"), NULL);
    cr_assert_str_eq(exists, "0");
    free(exists);
}

Test(daemon_flags, l1_keeps_an_entry_no_longer_than_l1_max_ttl)
{
    up_with("--l1-max-ttl", "1s"); /* long enough that a loaded machine still reads "old" first */
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("old"), 60000, 0), NC_OK);
    /* A write that bypasses nearcache: only l1_max_ttl bounds how long the
     * old value is served. */
    free(h_redis_cmd(&fx.redis, "SET", H_DATA_KEY(&fx.redis, "ns", "k"), "new", "PX", "60000",
                     NULL));
    size_t len;
    char *v = must_get(NC_STR("ns"), NC_STR("k"), &len, NULL);
    cr_assert_str_eq(v, "old");
    nc_free(v);
    h_sleep_ms(1100);
    v = must_get(NC_STR("ns"), NC_STR("k"), &len, NULL);
    cr_assert_str_eq(v, "new");
    nc_free(v);
}

/* L1 misses of a namespace whose version the daemon knows are read on the
 * read lane; a version that moved without the daemon hearing of it is read
 * again by the workers' script, never served from the old version. */
Test(daemon_flags, the_read_lane_reads_l1_misses_and_never_an_old_version)
{
    up_with("--l1-max-ttl", "1ms");
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("v0"), 60000, 0), NC_OK);
    h_sleep_ms(5); /* past l1_max_ttl: the next Get misses L1 */
    size_t len;
    nc_get_info info;
    char *v = must_get(NC_STR("ns"), NC_STR("k"), &len, &info);
    cr_assert_str_eq(v, "v0");
    nc_free(v);
    cr_assert_eq(info.source, NC_SOURCE_L2);
    cr_assert_eq(h_stat(fx.cl[0], "redis_lane_reads"), 1);
    cr_assert_eq(h_stat(fx.cl[0], "redis_lane_up"), 1);
    /* A bump this daemon never hears of: version 1 has no "k". */
    free(h_redis_cmd(&fx.redis, "INCR", "nc:v1:nsver:ns", NULL));
    h_sleep_ms(5);
    void *raw = NULL;
    int rv = nc_get(fx.cl[0], NC_STR("ns"), NC_STR("k"), &raw, &len, 0);
    cr_assert_eq(rv, NC_ENOTFOUND, "read under the old version: %s", nc_strerror(rv));
    cr_assert_eq(h_stat(fx.cl[0], "redis_lane_retries"), 1);
    /* The script told the daemon of version 1: the lane reads under it. */
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("v1"), 60000, 0), NC_OK);
    h_sleep_ms(5);
    v = must_get(NC_STR("ns"), NC_STR("k"), &len, NULL);
    cr_assert_str_eq(v, "v1");
    nc_free(v);
    cr_assert_eq(h_stat(fx.cl[0], "redis_lane_reads"), 3);
    cr_assert_eq(h_stat(fx.cl[0], "redis_lane_retries"), 1);
}

/* Every connection (workers, subscription, heartbeat, read lane) logs in
 * and selects the database the URL names. */
Test(daemon_flags, a_password_and_a_database_reach_every_connection)
{
    h_fleet_start(&fx, 0, NULL);
    h_redis_protect(&fx.redis, "s3cret", 3);
    h_fleet_add(&fx, &fx.redis, "--l1-max-ttl", "1ms", NULL); /* ready: L1 serves */
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("v"), 60000, 0), NC_OK, "%s",
                 nc_errmsg());
    char *ver = h_redis_cmd(&fx.redis, "-n", "3", "GET", "nc:v1:nsver:ns", NULL), dkey[128];
    h_key_at(dkey, sizeof dkey, "nc:v1", "ns", strtoull(ver, NULL, 10), "k");
    free(ver);
    char *raw = h_redis_cmd(&fx.redis, "-n", "3", "GET", dkey, NULL);
    cr_assert_str_eq(raw, "v", "the value is in database 3");
    free(raw);
    raw = h_redis_cmd(&fx.redis, "-n", "0", "EXISTS", dkey, NULL);
    cr_assert_str_eq(raw, "0", "and not in database 0");
    free(raw);
    h_sleep_ms(5);
    size_t len;
    char *v = must_get(NC_STR("ns"), NC_STR("k"), &len, NULL);
    cr_assert_str_eq(v, "v");
    nc_free(v);
    cr_assert_eq(h_stat(fx.cl[0], "redis_lane_up"), 1);
    cr_assert_eq(h_stat(fx.cl[0], "redis_lane_reads"), 1);
    cr_assert_eq(h_stat(fx.cl[0], "redis_connections_up"), 4);
    cr_assert_eq(h_stat(fx.cl[0], "subscription_up"), 1);
}

Test(daemon_flags, a_wrong_password_is_logged_and_nothing_is_served)
{
    h_fleet_start(&fx, 0, NULL);
    h_redis_protect(&fx.redis, "s3cret", 0);
    h_redis wrong = fx.redis;
    wrong.pid = 0; /* not "running": the daemon cannot get ready */
    snprintf(wrong.url, sizeof wrong.url, "redis://:wrong@127.0.0.1:%d", fx.redis.port);
    h_fleet_add(&fx, &wrong, NULL);
    void *v;
    size_t len;
    cr_assert_eq(nc_get(fx.cl[0], NC_STR("ns"), NC_STR("k"), &v, &len, 0), NC_EUNAVAILABLE);
    int up = -1;
    cr_assert_eq(nc_ping(fx.cl[0], &up, 0), NC_OK);
    cr_assert_eq(up, 0);
    cr_assert_eq(h_stat(fx.cl[0], "redis_lane_up"), 0);
    char *log = h_read_file(fx.node[0].log, NULL);
    cr_assert_not_null(strstr(log, "AUTH failed"), "log:\n%s", log);
    free(log);
}

Test(daemon_flags, redis_lane_0_reads_every_miss_through_the_workers)
{
    up_with("--redis-lane", "0");
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("v"), 60000, 0), NC_OK);
    void *raw = NULL;
    size_t len;
    cr_assert_eq(nc_get(fx.cl[0], NC_STR("ns"), NC_STR("other"), &raw, &len, 0), NC_ENOTFOUND);
    cr_assert_eq(h_stat(fx.cl[0], "redis_lane_reads"), 0);
    cr_assert_eq(h_stat(fx.cl[0], "redis_lane_up"), 0);
}

Test(daemon, binary_keys_and_values_round_trip)
{
    char key[] = {'a', 0, 'b', (char)0xff, 0};
    char value[256];
    for (int i = 0; i < 256; i++)
        value[i] = (char)i;
    nc_bytes k = {key, sizeof key}, k2 = {key, 3}; /* a prefix up to the NUL is another key */
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("bin"), k, (nc_bytes){value, sizeof value}, 60000, 0),
                 NC_OK);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("bin"), k2, NC_STR("other"), 60000, 0), NC_OK);
    size_t len;
    char *v = must_get(NC_STR("bin"), k, &len, NULL);
    cr_assert_eq(len, sizeof value);
    cr_assert_arr_eq(v, value, sizeof value);
    nc_free(v);
    v = must_get(NC_STR("bin"), k2, &len, NULL);
    cr_assert_str_eq(v, "other");
    nc_free(v);
}

Test(daemon, one_mebibyte_value_round_trips_through_both_tiers)
{
    size_t n = 1024 * 1024;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7 + i / 4096);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("big"), NC_STR("k"), (nc_bytes){big, n}, 60000, 0), NC_OK,
                 "%s", nc_errmsg());
    size_t len;
    nc_get_info info;
    char *v = must_get(NC_STR("big"), NC_STR("k"), &len, &info);
    cr_assert_eq(len, n);
    cr_assert_eq(memcmp(v, big, n), 0);
    cr_assert_eq(info.source, NC_SOURCE_L1);
    nc_free(v);
    char *out = h_redis_cmd(&fx.redis, "STRLEN", H_DATA_KEY(&fx.redis, "big", "k"), NULL);
    cr_assert_str_eq(out, "1048576");
    free(out);
    free(h_redis_cmd(&fx.redis, "SET", H_DATA_KEY(&fx.redis, "big", "k2"), "x",
                     NULL)); /* then read a big one from L2 */
    cr_assert_eq(nc_del(fx.cl[0], NC_STR("big"), NC_STR("k"), NULL, 0), NC_OK);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("big"), NC_STR("k"), (nc_bytes){big, n}, 60000, 0), NC_OK);
    nc_close(fx.cl[0]);
    h_daemon_stop(&fx.node[0]);
    h_daemon_start(&fx.node[0], &fx.redis, NULL); /* empty L1 */
    fx.cl[0] = h_client(&fx.node[0]);
    v = must_get(NC_STR("big"), NC_STR("k"), &len, &info);
    cr_assert_eq(info.source, NC_SOURCE_L2);
    cr_assert_eq(len, n);
    cr_assert_eq(memcmp(v, big, n), 0);
    nc_free(v);
    free(big);
}

Test(daemon, delete_removes_the_key_from_both_tiers)
{
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("v"), 60000, 0), NC_OK);
    int existed = 0;
    cr_assert_eq(nc_del(fx.cl[0], NC_STR("ns"), NC_STR("k"), &existed, 0), NC_OK);
    cr_assert_eq(existed, 1);
    void *v;
    size_t len;
    cr_assert_eq(nc_get(fx.cl[0], NC_STR("ns"), NC_STR("k"), &v, &len, 0), NC_ENOTFOUND);
    cr_assert_eq(nc_del(fx.cl[0], NC_STR("ns"), NC_STR("k"), &existed, 0), NC_OK);
    cr_assert_eq(existed, 0);
    char *exists = h_redis_cmd(&fx.redis, "EXISTS", H_DATA_KEY(&fx.redis, "ns", "k"), NULL);
    cr_assert_str_eq(exists, "0");
    free(exists);
}

Test(daemon_flags, prefix_setting_changes_the_redis_key)
{
    up_with("--prefix", "app:v7");
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), NC_STR("v"), 60000, 0), NC_OK);
    char *ver = h_redis_cmd(&fx.redis, "GET", "app:v7:nsver:ns", NULL), dkey[128];
    h_key_at(dkey, sizeof dkey, "app:v7", "ns", strtoull(ver, NULL, 10), "k");
    free(ver);
    char *val = h_redis_cmd(&fx.redis, "GET", dkey, NULL);
    cr_assert_str_eq(val, "v");
    free(val);
}

struct hammer {
    int id;
    int errors;
    char last_error[200];
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    char key[32], val[64];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "t%d-k%d", h->id, i % 20);
        snprintf(val, sizeof val, "t%d-v%d", h->id, i);
        int rv = nc_set(fx.cl[0], NC_STR("hammer"), NC_STR(key), NC_STR(val), 60000, 0);
        if (rv != NC_OK) {
            snprintf(h->last_error, sizeof h->last_error, "set %s: %s", key, nc_errmsg());
            h->errors++;
            continue;
        }
        void *v = NULL;
        size_t len;
        nc_get_info info;
        rv = nc_get_ex(fx.cl[0], NC_STR("hammer"), NC_STR(key), &v, &len, &info, 0);
        if (rv != NC_OK || strcmp(v, val) != 0) {
            snprintf(h->last_error, sizeof h->last_error, "get %s: %s (got %s from L%d, want %s)",
                     key, rv != NC_OK ? nc_errmsg() : "wrong value", rv == NC_OK ? (char *)v : "",
                     rv == NC_OK ? (int)info.source : 0, val);
            h->errors++;
        }
        nc_free(v);
    }
    return NULL;
}

Test(daemon, one_client_shared_by_threads_reads_its_own_writes)
{
    pthread_t t[8];
    struct hammer h[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (struct hammer){.id = i};
        pthread_create(&t[i], NULL, hammer_main, &h[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(h[i].errors, 0, "thread %d: %d errors, the last: %s", i, h[i].errors,
                     h[i].last_error);
    }
    cr_assert_eq(h_stat(fx.cl[0], "sets"), 1600);
}
