/* Integration: the L2 module against a real redis-server: the scripts (key
 * layout with namespace versions, writes that publish their invalidation),
 * TTLs, binary keys, timeouts, and reconnecting after Redis restarts. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "l2.h"

static h_redis redis;
static l2 *conn;
static const l2_msg msg = {"nc:v1:inval", "hello", 5};

static void up(void)
{
    h_redis_start(&redis);
    config_redis_url url = {.port = redis.port};
    snprintf(url.host, sizeof url.host, "127.0.0.1");
    cr_assert_eq(l2_create(&conn, &url, 500, "test", 3), 0);
}

static void down(void)
{
    l2_destroy(conn);
    h_redis_cleanup(&redis);
}

TestSuite(l2, .init = up, .fini = down, .timeout = 30);

static l2_key key_of(const char *ns, const void *key, size_t klen)
{
    l2_key k = {"nc:v1", ns, strlen(ns), key, klen, 0, 0};
    return k;
}

#define KEY(ns, key) key_of((ns), (key), strlen(key))

static int set(l2_key k, const char *value, int64_t ttl_ms)
{
    uint64_t version;
    int stored;
    return l2_set(conn, &k, value, strlen(value), ttl_ms, NULL, &msg, 500, &version, &stored);
}

/* Bumps as the daemon does: from the caller's floor, then from the version
 * Redis answers, until the compare-and-set takes. */
static l2_status bump(l2_key k, uint64_t *version)
{
    uint64_t from = k.floor;
    int bumped = 0;
    for (int i = 0; i < 3 && !bumped; i++, from = *version) {
        l2_status rv = l2_bump(conn, &k, from, &msg, 500, version, &bumped);
        if (rv != L2_OK)
            return rv;
    }
    return bumped ? L2_OK : L2_NIL;
}

Test(l2, set_then_get_returns_value_ttl_and_version)
{
    l2_key k = KEY("ns", "k");
    cr_assert_eq(set(k, "value", 10000), L2_OK);
    uint64_t ver = h_nsver(&redis, "ns");
    cr_assert_gt(ver, UINT64_C(1000000000000000), "a new version is Redis's clock in µs: %llu",
                 (unsigned long long)ver);
    char dkey[128];
    h_key_at(dkey, sizeof dkey, "nc:v1", "ns", ver, "k");
    char *raw = h_redis_cmd(&redis, "GET", dkey, NULL);
    cr_assert_str_eq(raw, "value", "the data key is keyspace's, under the version");
    free(raw);
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_OK);
    cr_assert_eq(v.len, 5);
    cr_assert_arr_eq(v.data, "value", 5);
    cr_assert(v.pttl_ms > 9000 && v.pttl_ms <= 10000, "pttl %lld", (long long)v.pttl_ms);
    cr_assert_eq(v.version, ver);
    l2_value_free(&v);
}

Test(l2, missing_key_is_nil)
{
    l2_key k = KEY("ns", "absent");
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_NIL);
    l2_value_free(&v);
}

Test(l2, key_without_expiry_reports_minus_one)
{
    char dkey[64];
    free(h_redis_cmd(&redis, "SET", h_data_key(&redis, dkey, sizeof dkey, "ns", "plain"), "x",
                     NULL));
    l2_key k = KEY("ns", "plain");
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_OK);
    cr_assert_eq(v.pttl_ms, -1);
    l2_value_free(&v);
}

Test(l2, binary_keys_are_distinct)
{
    l2_key ab = key_of("ns", "a\0b", 3), a = key_of("ns", "a", 1);
    cr_assert_eq(set(ab, "1", 10000), L2_OK);
    cr_assert_eq(set(a, "2", 10000), L2_OK);
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &ab, NULL, 500, &v), L2_OK);
    cr_assert_arr_eq(v.data, "1", 1);
    l2_value_free(&v);
}

Test(l2, del_reports_whether_the_key_existed)
{
    l2_key k = KEY("ns", "k");
    int existed = -1;
    uint64_t version;
    cr_assert_eq(set(k, "v", 10000), L2_OK);
    cr_assert_eq(l2_del(conn, &k, NULL, 0, &msg, 500, &existed, &version), L2_OK);
    cr_assert_eq(existed, 1);
    cr_assert_eq(l2_del(conn, &k, NULL, 0, &msg, 500, &existed, &version), L2_OK);
    cr_assert_eq(existed, 0);
}

Test(l2, bump_moves_the_namespace_to_a_new_version)
{
    l2_key k = KEY("ns", "k");
    uint64_t version = 0;
    cr_assert_eq(set(k, "old", 10000), L2_OK);
    uint64_t before = h_nsver(&redis, "ns");
    cr_assert_eq(bump(k, &version), L2_OK);
    cr_assert_eq(version, before + 1);
    cr_assert_eq(h_nsver(&redis, "ns"), before + 1);
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_NIL,
                 "the old version's key is never read again");
    cr_assert_eq(v.version, before + 1);
    cr_assert_eq(set(k, "new", 10000), L2_OK);
    char dkey[128];
    h_key_at(dkey, sizeof dkey, "nc:v1", "ns", before + 1, "k");
    char *raw = h_redis_cmd(&redis, "GET", dkey, NULL);
    cr_assert_str_eq(raw, "new");
    free(raw);
}

/* A node that has not heard of a bump assumes the old version (its floor):
 * the script finds the new one and runs again under it, so the write never
 * lands under the retired version. */
Test(l2, a_write_under_a_version_bumped_meanwhile_lands_under_the_new_one)
{
    l2_key k = KEY("ns", "k");
    cr_assert_eq(set(k, "old", 10000), L2_OK);
    uint64_t old = h_nsver(&redis, "ns");
    free(h_redis_cmd(&redis, "INCR", "nc:v1:nsver:ns", NULL)); /* another node's bump */
    k.floor = old;
    uint64_t version = 0;
    int stored = 0;
    cr_assert_eq(l2_set(conn, &k, "new", 3, 10000, NULL, &msg, 500, &version, &stored), L2_OK);
    cr_assert_eq(version, old + 1);
    char *raw = h_redis_cmd(&redis, "GET", h_key_at((char[128]){0}, 128, "nc:v1", "ns", old, "k"),
                            NULL);
    cr_assert_str_eq(raw, "old", "the write landed under the retired version");
    free(raw);
    raw = h_redis_cmd(&redis, "GET", h_key_at((char[128]){0}, 128, "nc:v1", "ns", old + 1, "k"),
                      NULL);
    cr_assert_str_eq(raw, "new");
    free(raw);
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_OK);
    cr_assert_eq(v.version, old + 1, "a read assuming the old version reads the new one");
    cr_assert_eq(v.len, 3);
    l2_value_free(&v);
}

/* Issue 9: Redis loses PREFIX:nsver:NS (eviction, FLUSHALL, a failover).
 * A plain read then finds nothing and makes no version; every other script
 * recreates it above every version handed out before. Either way the values
 * written before a bump never come back. */
Test(l2, a_lost_version_comes_back_above_every_earlier_one_in_every_script)
{
    l2_key k = KEY("ns", "k");
    uint64_t version = 0, last = 0;
    int existed, stored;
    cr_assert_eq(set(k, "OLD", 60000), L2_OK);
    cr_assert_eq(bump(k, &version), L2_OK);
    cr_assert_eq(set(k, "NEW", 60000), L2_OK);
    last = version;
    for (int script = 0; script < 6; script++) {
        free(h_redis_cmd(&redis, "DEL", "nc:v1:nsver:ns", NULL));
        l2_value v = {0};
        l2_batch b = {0};
        l2_mset_result res;
        l2_entry e = {"other", 5, "x", 1, 60000};
        switch (script) {
        case 0:
            cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_NIL, "OLD or NEW came back");
            version = v.version;
            break;
        case 1: /* a lease Get */
            cr_assert_eq(l2_get(conn, &k, &(l2_get_opts){1, "t", 3000, 0}, 500, &v), L2_NIL);
            cr_assert_eq(v.lease, 1, "granted on the new, empty version");
            version = v.version;
            break;
        case 2:
            cr_assert_eq(l2_mget(conn, &k, &k, 1, 500, &b), L2_OK);
            cr_assert_eq(l2_batch_item(&b, 0, &v), L2_NIL, "OLD or NEW came back");
            version = b.version;
            l2_batch_free(&b);
            break;
        case 3:
            cr_assert_eq(l2_mset(conn, &k, &e, 1, &msg, 500, &version, &res), L2_OK);
            l2_mset_result_free(&res);
            break;
        case 4:
            cr_assert_eq(l2_del(conn, &k, NULL, 0, &msg, 500, &existed, &version), L2_OK);
            cr_assert_eq(existed, 0);
            break;
        case 5:
            cr_assert_eq(l2_set(conn, &k, "v", 1, 60000, NULL, &msg, 500, &version, &stored),
                         L2_OK);
            break;
        }
        l2_value_free(&v);
        if (script == 0 || script == 2) { /* plain reads */
            cr_assert_eq(version, 0, "script %d: a read without a version answers 0", script);
            cr_assert_eq(h_nsver(&redis, "ns"), 0, "script %d: a read made a version", script);
            continue;
        }
        cr_assert_gt(version, last, "script %d: version %llu after %llu", script,
                     (unsigned long long)version, (unsigned long long)last);
        cr_assert_eq(h_nsver(&redis, "ns"), version, "script %d kept the version", script);
        last = version;
    }
    free(h_redis_cmd(&redis, "DEL", "nc:v1:nsver:ns", NULL));
    cr_assert_eq(bump(k, &version), L2_OK);
    cr_assert_gt(version, last, "a bump of a lost version");
}

/* A Redis that went back (a lagging replica made master, an old snapshot)
 * holds a version below one this node saw: the floor raises it. */
Test(l2, a_version_below_the_callers_floor_is_raised_above_it)
{
    l2_key k = KEY("ns", "k");
    free(h_redis_cmd(&redis, "SET", "nc:v1:nsver:ns", "5", NULL));
    free(h_redis_cmd(&redis, "SET", H_DATA_KEY(&redis, "ns", "k"), "OLD", NULL));
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_OK, "no floor: version 5 is current");
    l2_value_free(&v);
    k.floor = 9;
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_NIL, "version 5 is below the floor");
    cr_assert_gt(v.version, 9);
    cr_assert_eq(h_nsver(&redis, "ns"), v.version);
    uint64_t raised = v.version;
    l2_value_free(&v);
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_NIL);
    cr_assert_eq(v.version, raised, "a version at or above the floor stays");
    l2_value_free(&v);
}

/* Subscribes a plain hiredis connection to the channel. */
static redisContext *listener(void)
{
    redisContext *ctx = redisConnect("127.0.0.1", redis.port);
    cr_assert(ctx != NULL && ctx->err == 0);
    redisReply *r = redisCommand(ctx, "SUBSCRIBE %s", msg.channel);
    cr_assert_not_null(r);
    freeReplyObject(r);
    struct timeval tv = {2, 0};
    redisSetTimeout(ctx, tv);
    return ctx;
}

/* Reads the next message's payload (caller frees). */
static char *next_message(redisContext *ctx, size_t *len)
{
    redisReply *r = NULL;
    cr_assert_eq(redisGetReply(ctx, (void **)&r), REDIS_OK, "no message: %s", ctx->errstr);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    char *out = malloc(r->element[2]->len + 1);
    memcpy(out, r->element[2]->str, r->element[2]->len + 1);
    *len = r->element[2]->len;
    freeReplyObject(r);
    return out;
}

Test(l2, writes_publish_their_message)
{
    redisContext *sub = listener();
    l2_key k = KEY("ns", "k");
    uint64_t version;
    int existed;
    size_t len;
    cr_assert_eq(set(k, "v", 10000), L2_OK);
    char *m = next_message(sub, &len);
    cr_assert_eq(len, 5);
    cr_assert_str_eq(m, "hello");
    free(m);
    cr_assert_eq(l2_del(conn, &k, NULL, 0, &msg, 500, &existed, &version), L2_OK);
    free(next_message(sub, &len));
    cr_assert_eq(bump(k, &version), L2_OK);
    m = next_message(sub, &len);
    cr_assert_eq(len, 5, "the bump publishes the daemon's message as it is");
    cr_assert_str_eq(m, "hello");
    free(m);
    redisFree(sub);
}

/* Bumps of one namespace from several connections at once: each is a
 * compare-and-set, so each success makes its own version, one above the
 * one it replaced, and none is lost. */
struct bumper {
    l2 *conn;
    uint64_t got[40];
    int n, off;   /* off: bumps whose version was not the one their message named */
    int errors;   /* calls that did not answer L2_OK */
};

/* Each bump retries from the version Redis answered until it takes: on a
 * loaded machine one thread can lose the race many times in a row, which
 * is the compare-and-set working, not a lost bump. */
static void *bumper_main(void *arg)
{
    struct bumper *b = arg;
    l2_key k = KEY("ns", "k");
    for (int i = 0; i < 40; i++) {
        uint64_t from = k.floor, version = 0;
        int bumped = 0;
        while (!bumped) {
            if (l2_bump(b->conn, &k, from, &msg, 2000, &version, &bumped) != L2_OK) {
                b->errors++;
                return NULL;
            }
            b->off += bumped && version != from + 1; /* the message was built for from + 1 */
            from = version;
        }
        b->got[b->n++] = version;
        k.floor = version;
    }
    return NULL;
}

Test(l2, concurrent_bumps_each_make_their_own_version)
{
    l2_key k = KEY("ns", "k");
    cr_assert_eq(set(k, "v", 10000), L2_OK);
    uint64_t start = h_nsver(&redis, "ns");
    config_redis_url url = {.port = redis.port};
    snprintf(url.host, sizeof url.host, "127.0.0.1");
    struct bumper b[3] = {{0}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(l2_create(&b[i].conn, &url, 2000, "bumper", (uint32_t)i), 0);
        pthread_create(&t[i], NULL, bumper_main, &b[i]);
    }
    int total = 0;
    static char seen[121];
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        l2_destroy(b[i].conn);
        for (int j = 0; j < b[i].n; j++) {
            uint64_t d = b[i].got[j] - start;
            cr_assert(d >= 1 && d <= 120, "version %llu after %llu", (unsigned long long)b[i].got[j],
                      (unsigned long long)start);
            cr_assert_not(seen[d]++, "two bumps made version start + %llu", (unsigned long long)d);
        }
        total += b[i].n;
        cr_assert_eq(b[i].errors, 0, "bumper %d: a bump failed", i);
        cr_assert_eq(b[i].off, 0, "a bump published a version it did not make");
    }
    cr_assert_eq(total, 120, "only %d of 120 bumps took", total);
    cr_assert_eq(h_nsver(&redis, "ns"), start + 120);
}

/* The bump is a compare-and-set: from a version Redis does not hold, it
 * writes and publishes nothing and answers the version Redis holds. */
Test(l2, a_bump_from_a_version_redis_does_not_hold_changes_nothing)
{
    l2_key k = KEY("ns", "k");
    cr_assert_eq(set(k, "v", 10000), L2_OK);
    uint64_t held = h_nsver(&redis, "ns"), version = 0;
    redisContext *sub = listener();
    int bumped = 1;
    cr_assert_eq(l2_bump(conn, &k, held - 1, &msg, 500, &version, &bumped), L2_OK);
    cr_assert_eq(bumped, 0);
    cr_assert_eq(version, held);
    cr_assert_eq(h_nsver(&redis, "ns"), held);
    free(h_redis_cmd(&redis, "PUBLISH", msg.channel, "after", NULL));
    size_t len;
    char *m = next_message(sub, &len);
    cr_assert_str_eq(m, "after", "the refused bump published its message");
    free(m);
    cr_assert_eq(l2_bump(conn, &k, held, &msg, 500, &version, &bumped), L2_OK);
    cr_assert_eq(bumped, 1);
    cr_assert_eq(version, held + 1);
    m = next_message(sub, &len);
    cr_assert_str_eq(m, "hello");
    free(m);
    redisFree(sub);
}

Test(l2, a_failed_write_publishes_nothing)
{
    redisContext *sub = listener();
    free(h_redis_cmd(&redis, "HSET", "nc:v1:nsver:ns", "f", "v", NULL)); /* a broken version */
    l2_key k = KEY("ns", "k");
    cr_assert_eq(set(k, "v", 10000), L2_EREPLY);
    free(h_redis_cmd(&redis, "PUBLISH", msg.channel, "after", NULL));
    size_t len;
    char *m = next_message(sub, &len);
    cr_assert_str_eq(m, "after", "the failed write's message went out");
    free(m);
    redisFree(sub);
}

/* An MSet of n entries "m0".. in ns; returns its status, res filled. */
static l2_status mset(const char *ns, size_t n, int64_t timeout_ms, l2_mset_result *res)
{
    char names[8][8];
    l2_entry e[8];
    for (size_t i = 0; i < n && i < 8; i++) {
        snprintf(names[i], sizeof names[i], "m%zu", i);
        e[i] = (l2_entry){names[i], strlen(names[i]), "w", 1, 60000};
    }
    l2_key k = KEY(ns, "");
    uint64_t version = 0;
    return l2_mset(conn, &k, e, n, &msg, timeout_ms, &version, res);
}

Test(l2, an_mset_on_one_server_is_stored_whole_or_fails_whole)
{
    l2_mset_result res;
    cr_assert_eq(mset("ns", 8, 500, &res), L2_OK, "%s", l2_error(conn));
    cr_expect_eq(res.stored, 8);
    cr_expect_eq(res.nfails, 0);
    for (int i = 0; i < 8; i++)
        cr_expect_eq(res.fail[i], -1);
    l2_mset_result_free(&res);
    /* a script refused: one failure naming every entry, nothing stored */
    free(h_redis_cmd(&redis, "HSET", "nc:v1:nsver:bad", "f", "v", NULL));
    cr_assert_eq(mset("bad", 8, 500, &res), L2_EREPLY);
    cr_expect_eq(res.stored, 0);
    cr_assert_eq(res.nfails, 1);
    cr_expect_not(res.fails[0].maybe_ran);
    cr_expect(strstr(res.fails[0].message, "WRONGTYPE") != NULL, "%s", res.fails[0].message);
    for (int i = 0; i < 8; i++)
        cr_expect_eq(res.fail[i], 0);
    l2_mset_result_free(&res);
    char *n = h_redis_cmd(&redis, "DBSIZE", NULL);
    cr_expect_str_eq(n, "10", "the 8 entries and the two versions: no entry of bad");
    free(n);
    /* an answer lost: every entry may be stored */
    cr_assert_eq(l2conn_ping(l2_conn(conn), 500), L2_OK);
    pid_t pid = h_redis_sleep(&redis, "0.5", 200);
    cr_assert_eq(mset("ns", 8, 100, &res), L2_ETIMEOUT);
    cr_assert_eq(res.nfails, 1);
    cr_expect(res.fails[0].maybe_ran);
    l2_mset_result_free(&res);
    waitpid(pid, NULL, 0);
}

Test(l2, wrong_type_is_an_error_reply)
{
    char dkey[64];
    free(h_redis_cmd(&redis, "HSET", h_data_key(&redis, dkey, sizeof dkey, "ns", "h"), "f", "v",
                     NULL));
    l2_key k = KEY("ns", "h");
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_EREPLY);
    cr_assert_not_null(strstr(l2_error(conn), "WRONGTYPE"), "%s", l2_error(conn));
    cr_assert(l2conn_connected(l2_conn(conn)), "an error reply must not drop the connection");
}

Test(l2, script_cache_flush_is_survived)
{
    l2_key k = KEY("ns", "k");
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_NIL);
    free(h_redis_cmd(&redis, "SCRIPT", "FLUSH", NULL));
    cr_assert_eq(set(k, "v", 10000), L2_OK, "%s", l2_error(conn));
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_OK, "%s", l2_error(conn));
    l2_value_free(&v);
}

Test(l2, slow_redis_times_out_and_the_next_command_reconnects)
{
    cr_assert_eq(l2conn_ping(l2_conn(conn), 500), L2_OK); /* connected before Redis stalls */
    pid_t pid = h_redis_sleep(&redis, "1.5", 300);
    l2_key k = KEY("ns", "k");
    l2_value v = {0};
    int64_t t0 = h_now_ms();
    cr_assert_eq(l2_get(conn, &k, NULL, 150, &v), L2_ETIMEOUT);
    /* at its 150 ms timeout, not when Redis wakes (1.2 s after t0 at the
     * earliest: it fell asleep for 1.5 s 300 ms before); the rest is the
     * machine's */
    cr_assert_lt(h_now_ms() - t0, 1000, "a 150 ms timeout after %lld ms",
                 (long long)(h_now_ms() - t0));
    cr_assert_not(l2conn_connected(l2_conn(conn)), "a timed-out connection must be dropped");
    waitpid(pid, NULL, 0);
    cr_assert_eq(set(k, "v", 10000), L2_OK, "%s", l2_error(conn));
}

Test(l2, restart_is_survived_and_down_redis_fails_fast_with_backoff)
{
    l2_key k = KEY("ns", "k");
    cr_assert_eq(set(k, "v", 10000), L2_OK);
    h_redis_stop(&redis, 1);
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_EDOWN);
    int64_t t0 = h_now_ms();
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_EDOWN); /* inside the backoff */
    cr_assert_lt(h_now_ms() - t0, 500, "it waited for its 500 ms timeout");
    cr_assert_not_null(strstr(l2_error(conn), "unreachable"), "%s", l2_error(conn));
    h_redis_restart(&redis);
    l2conn_retry_now(l2_conn(conn));
    cr_assert_eq(set(k, "w", 10000), L2_OK, "%s", l2_error(conn));
}

Test(l2, connection_killed_by_redis_is_replaced_transparently)
{
    l2_key k = KEY("ns", "k");
    cr_assert_eq(set(k, "v", 10000), L2_OK);
    free(h_redis_cmd(&redis, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes", NULL));
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_OK, "%s", l2_error(conn));
    l2_value_free(&v);
}
