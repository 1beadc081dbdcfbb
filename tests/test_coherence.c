/* Integration: three nearcached processes standing in for hosts, one real
 * redis-server. Once a write through any node is acknowledged, no node keeps
 * serving what it replaced: not after a Set, Delete or BumpNamespace, not
 * through a fill racing the write, not after the subscription is killed,
 * Redis restarts or a node is frozen while invalidations pile up. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define NODES 3

static h_fleet fx;

static void up(void)
{
    h_fleet_start(&fx, NODES, NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
}

TestSuite(coherence, .init = up, .fini = down, .timeout = 120);

static nc_bytes str(const char *s)
{
    return NC_STR(s);
}

static void set_on(int n, const char *key, const char *value)
{
    int rv = nc_set(fx.cl[n], str("ns"), str(key), str(value), 60000, 0);
    cr_assert_eq(rv, NC_OK, "set on node %d: %s", n, nc_errmsg());
}

/* Gets key on node n; returns the value (caller frees) or NULL if absent. */
static char *get_on(int n, const char *key, nc_get_info *info)
{
    void *v = NULL;
    size_t len;
    nc_get_info dummy;
    int rv = nc_get_ex(fx.cl[n], str("ns"), str(key), &v, &len, info ? info : &dummy, 0);
    cr_assert(rv == NC_OK || rv == NC_ENOTFOUND, "get on node %d: %s", n, nc_errmsg());
    return v;
}

/* Reads key on node n until it is an L1 hit holding `value`. */
static void make_hot(int n, const char *key, const char *value)
{
    for (int i = 0; i < 50; i++) {
        nc_get_info info;
        char *v = get_on(n, key, &info);
        int hot = v != NULL && strcmp(v, value) == 0 && info.source == NC_SOURCE_L1;
        nc_free(v);
        if (hot)
            return;
        h_sleep_ms(10);
    }
    cr_assert_fail("node %d never served %s=%s from L1", n, key, value);
}

/* Polls node n until key reads as `want` (NULL: absent); fails after 2 s.
 * Then reads it 50 more times: it must never go back. */
static void converges(int n, const char *key, const char *want)
{
    int64_t give_up = h_now_ms() + 2000, seen_at = -1;
    while (seen_at < 0) {
        char *v = get_on(n, key, NULL);
        int ok = want == NULL ? v == NULL : v != NULL && strcmp(v, want) == 0;
        nc_free(v);
        if (ok)
            seen_at = h_now_ms();
        else
            cr_assert_lt(h_now_ms(), give_up, "node %d still serves the old %s after 2 s", n, key);
    }
    for (int i = 0; i < 50; i++) {
        char *v = get_on(n, key, NULL);
        int ok = want == NULL ? v == NULL : v != NULL && strcmp(v, want) == 0;
        cr_assert(ok, "node %d went back to %s for %s", n, v ? v : "(absent)", key);
        nc_free(v);
    }
}

Test(coherence, set_through_one_node_reaches_hot_readers_on_the_others)
{
    set_on(0, "k", "v0");
    make_hot(1, "k", "v0");
    make_hot(2, "k", "v0");
    set_on(0, "k", "v1");
    converges(1, "k", "v1");
    converges(2, "k", "v1");
    cr_assert_geq(h_stat(fx.cl[1], "invalidations_received"), 1);
    cr_assert_geq(h_stat(fx.cl[0], "invalidations_sent"), 2);
}

Test(coherence, a_node_reads_its_own_write_at_once)
{
    set_on(0, "k", "v0");
    make_hot(0, "k", "v0");
    for (int i = 1; i <= 50; i++) {
        char want[16];
        snprintf(want, sizeof want, "v%d", i);
        set_on(0, "k", want);
        char *v = get_on(0, "k", NULL);
        cr_assert_str_eq(v, want);
        nc_free(v);
    }
}

Test(coherence, delete_through_one_node_reaches_hot_readers_on_the_others)
{
    set_on(1, "k", "v0");
    make_hot(0, "k", "v0");
    make_hot(2, "k", "v0");
    cr_assert_eq(nc_del(fx.cl[1], str("ns"), str("k"), NULL, 0), NC_OK);
    converges(0, "k", NULL);
    converges(2, "k", NULL);
}

Test(coherence, bump_namespace_drops_it_on_every_node)
{
    set_on(0, "a", "1");
    set_on(0, "b", "2");
    for (int n = 1; n < NODES; n++) {
        make_hot(n, "a", "1");
        make_hot(n, "b", "2");
    }
    uint64_t version = 0, before = h_nsver(&fx.redis, "ns");
    cr_assert_eq(nc_bump(fx.cl[0], str("ns"), &version, 0), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(version, before + 1);
    for (int n = 0; n < NODES; n++) {
        converges(n, "a", NULL);
        converges(n, "b", NULL);
    }
    cr_assert_geq(h_stat(fx.cl[2], "namespace_bumps"), 1);
    set_on(2, "a", "new"); /* written under the new version */
    converges(1, "a", "new");
    char dkey[128];
    h_key_at(dkey, sizeof dkey, "nc:v1", "ns", version, "a");
    char *raw = h_redis_cmd(&fx.redis, "GET", dkey, NULL);
    cr_assert_str_eq(raw, "new");
    free(raw);
}

Test(coherence, bump_through_the_cli_prints_the_new_version)
{
    char *out = NULL;
    size_t len;
    char want[32];
    cr_assert_eq(h_cli(&fx.node[0], NULL, 0, &out, &len, NULL, "bump", "ns", NULL), 0);
    uint64_t first = h_nsver(&fx.redis, "ns");
    snprintf(want, sizeof want, "%llu\n", (unsigned long long)first);
    cr_assert_str_eq(out, want);
    free(out);
    cr_assert_eq(h_cli(&fx.node[1], NULL, 0, &out, &len, NULL, "bump", "ns", NULL), 0);
    snprintf(want, sizeof want, "%llu\n", (unsigned long long)first + 1);
    cr_assert_str_eq(out, want);
    free(out);
}

Test(coherence, subscription_killed_by_redis_is_noticed_and_made_again)
{
    set_on(0, "k", "v0");
    make_hot(1, "k", "v0");
    free(h_redis_cmd(&fx.redis, "CLIENT", "KILL", "TYPE", "pubsub", NULL));
    set_on(0, "k", "v1"); /* may be published while node 1 is not listening */
    converges(1, "k", "v1");
    int64_t give_up = h_now_ms() + 3000;
    while (h_stat(fx.cl[1], "subscription_up") != 1 || h_stat(fx.cl[1], "l1_serving") != 1)
        cr_assert_lt(h_now_ms(), give_up, "node 1 did not subscribe again");
    cr_assert_geq(h_stat(fx.cl[1], "subscription_losses"), 1);
    make_hot(1, "k", "v1"); /* and it serves from L1 again */
}

Test(coherence, redis_killed_and_restarted_leaves_no_stale_l1)
{
    set_on(0, "k", "v0");
    make_hot(1, "k", "v0");
    make_hot(2, "k", "v0");
    h_redis_stop(&fx.redis, 1);
    h_redis_restart(&fx.redis); /* empty: no persistence */
    int64_t give_up = h_now_ms() + 10000;
    while (nc_set(fx.cl[0], str("ns"), str("k"), str("v1"), 60000, 0) != NC_OK)
        cr_assert_lt(h_now_ms(), give_up, "node 0 never wrote after the restart");
    converges(1, "k", "v1");
    converges(2, "k", "v1");
    cr_assert_geq(h_stat(fx.cl[1], "subscription_losses"), 1);
}

/* Restarts node 1 reaching Redis through a proxy that holds its command
 * replies for 400 ms (its subscription passes straight through). */
static void node1_through_proxy(h_proxy *proxy)
{
    nc_close(fx.cl[1]);
    fx.cl[1] = NULL;
    h_daemon_stop(&fx.node[1]);
    h_proxy_start(proxy, &fx.redis, 400000);
    h_daemon_start(&fx.node[1], &proxy->via, "--request-timeout", "3s", "--redis-timeout", "2s",
                   NULL);
    fx.cl[1] = h_client(&fx.node[1]);
    /* L1 serves once the heartbeat is back; the workers, which load their
     * scripts through the slow proxy, take longer. */
    for (int i = 0; i < 100 && h_stat(fx.cl[1], "redis_connections_up") < 4; i++)
        h_sleep_ms(100);
    cr_assert_eq(h_stat(fx.cl[1], "redis_connections_up"), 4, "node 1's workers did not connect");
}

/* Puts node 1 back on Redis directly (for down()). */
static void node1_direct(h_proxy *proxy)
{
    h_proxy_stop(proxy);
    nc_close(fx.cl[1]);
    fx.cl[1] = NULL;
    h_daemon_stop(&fx.node[1]);
    h_daemon_start(&fx.node[1], &fx.redis, NULL);
    fx.cl[1] = h_client(&fx.node[1]);
}

struct slow_read {
    int rv;
    char value[16];
    char err[200];
};

static void *slow_read_main(void *arg)
{
    struct slow_read *r = arg;
    nc_client *c = NULL;
    void *v = NULL;
    size_t len;
    if ((r->rv = nc_open(&c, fx.node[1].url, 0)) == NC_OK)
        r->rv = nc_get(c, str("ns"), str("k"), &v, &len, 3000);
    if (r->rv == NC_OK)
        snprintf(r->value, sizeof r->value, "%s", (char *)v);
    else
        snprintf(r->err, sizeof r->err, "%s", nc_errmsg());
    nc_free(v);
    nc_close(c);
    return NULL;
}

Test(coherence, a_fill_racing_a_write_is_not_kept)
{
    /* Node 1 reaches Redis through a proxy that holds its command replies
     * for 400 ms; its subscription is direct. Its read of the old value is
     * still on the way when node 0's write is acknowledged and announced. */
    h_proxy proxy;
    node1_through_proxy(&proxy);
    set_on(0, "k", "old");
    free(get_on(1, "warm", NULL)); /* node 1 learns ns's version: one round trip per read */
    /* The slow read runs on its own thread while this one writes. */
    pthread_t reader;
    struct slow_read r = {.rv = -1};
    pthread_create(&reader, NULL, slow_read_main, &r);
    h_sleep_ms(150);
    set_on(0, "k", "new");
    pthread_join(reader, NULL);
    cr_assert_eq(r.rv, NC_OK, "the racing read failed: %s", r.err);
    cr_assert_str_eq(r.value, "old", "the racing read started before the write");
    cr_assert_geq(h_stat(fx.cl[1], "fills_voided"), 1, "the racing fill was kept");
    nc_get_info info;
    char *v = get_on(1, "k", &info);
    cr_assert_str_eq(v, "new", "node 1 cached the value the write replaced");
    nc_free(v);
    node1_direct(&proxy);
}

Test(coherence, a_get_after_a_write_never_joins_a_read_that_began_before_it)
{
    /* Regression: single flight let a Get that started after an
     * acknowledged write join a Redis read begun before it, and return the
     * replaced value. Node 1 reads through a proxy that holds replies for
     * 400 ms; node 0 writes directly. */
    h_proxy proxy;
    node1_through_proxy(&proxy);
    set_on(0, "k", "old");
    pthread_t first;
    struct slow_read r1 = {.rv = -1};
    pthread_create(&first, NULL, slow_read_main, &r1); /* leads a flight reading "old" */
    h_sleep_ms(100);
    set_on(0, "k", "new");    /* acknowledged */
    converges(2, "k", "new"); /* the invalidation is out */
    int64_t give_up = h_now_ms() + 2000;
    while (h_stat(fx.cl[1], "invalidations_received") < 2) /* and reached node 1 */
        cr_assert_lt(h_now_ms(), give_up, "node 1 never heard the write");
    struct slow_read r2 = {.rv = -1};
    slow_read_main(&r2); /* starts after the write: must not join the first read */
    pthread_join(first, NULL);
    cr_assert_eq(r2.rv, NC_OK, "%s", r2.err);
    cr_assert_str_eq(r2.value, "new", "a Get after the write got the value it replaced");
    node1_direct(&proxy);
}

Test(coherence, frozen_node_dropped_by_redis_serves_nothing_stale_when_it_thaws)
{
    /* Node 1 is stopped while far more than 32 MB of invalidations flow
     * (socket buffers absorb several MB): Redis drops it at the default
     * pub/sub output-buffer limit, 32 MB. */
    nc_close(fx.cl[0]);
    h_daemon_stop(&fx.node[0]);
    h_daemon_start(&fx.node[0], &fx.redis, "--max-key-size", "64KB", "--redis-timeout", "3s",
                   "--request-timeout", "5s", NULL);
    fx.cl[0] = h_client(&fx.node[0]);
    set_on(0, "k", "v0");
    make_hot(1, "k", "v0");
    kill(fx.node[1].pid, SIGSTOP);
    set_on(0, "k", "v1");
    size_t klen = 60 * 1024;
    char *big = malloc(klen + 1);
    for (int i = 0; i < 1200; i++) { /* 1200 messages of 60 KiB: 72 MB */
        memset(big, 'a' + i % 26, klen);
        snprintf(big, 16, "%d-", i);
        int rv = nc_set(fx.cl[0], str("ns"), (nc_bytes){big, klen}, str("x"), 60000, 5000);
        cr_assert_eq(rv, NC_OK, "%s", nc_errmsg());
    }
    free(big);
    h_sleep_ms(1200); /* frozen for longer than coherence_window in all */
    kill(fx.node[1].pid, SIGCONT);
    char *v = get_on(1, "k", NULL);
    cr_assert_str_eq(v, "v1", "the thawed node served the value it missed the write of");
    nc_free(v);
    converges(1, "k", "v1");
    int64_t give_up = h_now_ms() + 10000;
    while (h_stat(fx.cl[1], "subscription_losses") < 1)
        cr_assert_lt(h_now_ms(), give_up, "Redis never dropped the frozen subscriber");
    while (h_stat(fx.cl[1], "subscription_up") != 1 || h_stat(fx.cl[1], "l1_serving") != 1)
        cr_assert_lt(h_now_ms(), give_up, "node 1 did not subscribe again");
    make_hot(1, "k", "v1");
}

/* Publishes a hand-made message on the channel, as another node would. */
static void publish(const char *origin, uint64_t seq, const char *key, uint64_t hb_seq)
{
    pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
    pb_key_ref ref = NEARCACHE__V1__KEY_REF__INIT, *refs[1] = {&ref};
    pb_heartbeat hb = NEARCACHE__V1__HEARTBEAT__INIT;
    uint64_t seqs[1] = {hb_seq};
    m.origin = (char *)origin;
    m.seq = seq;
    if (key != NULL) {
        ref.ns = (ProtobufCBinaryData){2, (uint8_t *)"ns"};
        ref.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
        m.n_keys = 1;
        m.keys = refs;
    } else {
        hb.sent_ms = 1;
        hb.n_stream_seqs = 1;
        hb.stream_seqs = seqs;
        m.heartbeat = &hb;
    }
    uint8_t buf[256];
    size_t n = codec_inval_pack(&m, buf);
    redisContext *ctx = redisConnect("127.0.0.1", fx.redis.port);
    cr_assert(ctx != NULL && ctx->err == 0);
    redisReply *r = redisCommand(ctx, "PUBLISH nc:v1:inval %b", buf, n);
    cr_assert(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= NODES);
    freeReplyObject(r);
    redisFree(ctx);
}

static int served_from_l1(int n, const char *key)
{
    nc_get_info info;
    char *v = get_on(n, key, &info);
    nc_free(v);
    return info.source == NC_SOURCE_L1;
}

Test(coherence, a_gap_in_another_nodes_sequence_empties_l1)
{
    set_on(0, "hot", "v");
    make_hot(1, "hot", "v");
    publish("peer", 1, "other", 0);
    h_sleep_ms(100);
    cr_assert(served_from_l1(1, "hot"), "an unrelated key's message dropped the hot key");
    publish("peer", 3, "other", 0); /* seq 2 never came */
    int64_t give_up = h_now_ms() + 2000;
    while (h_stat(fx.cl[1], "sequence_gaps") < 1)
        cr_assert_lt(h_now_ms(), give_up, "the gap went unnoticed");
    cr_assert_not(served_from_l1(1, "hot"), "L1 was not emptied after a gap");
}

Test(coherence, a_heartbeat_ahead_of_what_arrived_is_a_gap)
{
    set_on(0, "hot", "v");
    publish("peer", 1, "other", 0);
    make_hot(1, "hot", "v");
    publish("peer", 0, NULL, 2); /* says stream 0 sent seq 2, which never came */
    int64_t give_up = h_now_ms() + 2000;
    while (h_stat(fx.cl[1], "sequence_gaps") < 1)
        cr_assert_lt(h_now_ms(), give_up, "the heartbeat's gap went unnoticed");
    cr_assert_not(served_from_l1(1, "hot"));
}
