/* Integration: Redis Cluster routing (daemon/l2cluster.c) on a real
 * 3-master cluster on loopback ports, started here and stopped by pid:
 * every key goes to its slot's master, a namespace spreads over all of
 * them, and a slot migrated under load (MIGRATING/IMPORTING, MIGRATE, then
 * SETSLOT NODE) is followed through ASK and MOVED without a wrong answer. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "keyspace.h"
#include "l2cluster.h"

#define MASTERS 3

/* the nodes: the masters first, then (failover test only) a replica each */
static h_redis node[2 * MASTERS];
static int nnodes;

static void cluster_make(int replicas)
{
    nnodes = h_cluster_start(node, MASTERS, replicas);
}

static void cluster_start(void)
{
    cluster_make(0);
}

static void cluster_start_replicated(void)
{
    cluster_make(1);
}

static void cluster_stop(void)
{
    h_cluster_stop(node, nnodes);
}

TestSuite(cluster, .init = cluster_start, .fini = cluster_stop, .timeout = 60);

static l2cluster *handle(void)
{
    config_redis_url u;
    char url[64], err[256];
    /* one seed: the map names the others */
    snprintf(url, sizeof url, "cluster://127.0.0.1:%d", node[1].port);
    cr_assert_eq(config_parse_redis_url(url, &u, err, sizeof err), 0, "%s", err);
    l2cluster *cl;
    cr_assert_eq(l2cluster_create(&cl, &u, 1000, "test"), 0);
    return cl;
}

static redisReply *run(l2cluster *cl, const char *key, int argc, const char **argv)
{
    l2_status st;
    redisReply *r = l2cluster_run(cl, ks_slot(key, strlen(key)), 2000, 0, &st, argc, argv, NULL);
    cr_assert_not_null(r, "%s %s: %s", argv[0], key, l2cluster_error(cl));
    return r;
}

static void set(l2cluster *cl, const char *key, const char *value)
{
    const char *argv[] = {"SET", key, value};
    freeReplyObject(run(cl, key, 3, argv));
}

/* GET key into buf; "" when missing. */
static char *get(l2cluster *cl, const char *key, char *buf, size_t size)
{
    const char *argv[] = {"GET", key};
    redisReply *r = run(cl, key, 2, argv);
    snprintf(buf, size, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return buf;
}

static long dbsize(const h_redis *r)
{
    char *n = h_redis_cmd(r, "DBSIZE", NULL);
    long v = atol(n);
    free(n);
    return v;
}

Test(cluster, every_key_goes_to_its_masters_and_a_namespace_lands_on_every_master)
{
    l2cluster *cl = handle();
    const char *masters[8];
    cr_assert_eq(l2cluster_reload(cl), L2_OK, "%s", l2cluster_error(cl));
    cr_assert_eq(l2cluster_masters(cl, masters, 8), MASTERS);
    char key[128], val[32], buf[64];
    for (int i = 0; i < 150; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "k%d", i);
        size_t n = ks_data_key(key, "nc:v1", "users", 5, 7, KS_DATA, k, (size_t)kl);
        key[n] = '\0';
        snprintf(val, sizeof val, "v%d", i);
        set(cl, key, val);
    }
    long total = 0;
    for (int i = 0; i < MASTERS; i++) {
        long n = dbsize(&node[i]);
        cr_expect_gt(n, 20, "master %d holds %ld of 150 keys", i, n);
        total += n;
    }
    cr_expect_eq(total, 150);
    for (int i = 0; i < 150; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "k%d", i);
        size_t n = ks_data_key(key, "nc:v1", "users", 5, 7, KS_DATA, k, (size_t)kl);
        key[n] = '\0';
        snprintf(val, sizeof val, "v%d", i);
        cr_expect_str_eq(get(cl, key, buf, sizeof buf), val);
    }
    l2cluster_counts c = l2cluster_counters(cl);
    cr_expect_eq(c.moved + c.asked, 0, "the map was right: no redirection");
    l2cluster_destroy(cl);
}

/* How many times master i ran WAIT since its start. */
static long wait_calls(int i)
{
    char *info = h_redis_cmd(&node[i], "INFO", "commandstats", NULL);
    const char *at = strstr(info, "cmdstat_wait:calls=");
    long calls = at != NULL ? atol(at + strlen("cmdstat_wait:calls=")) : 0;
    free(info);
    return calls;
}

/* How many times the masters ran CLUSTER `sub` since their start. */
static long cluster_calls(const char *sub)
{
    long calls = 0;
    char want[64];
    snprintf(want, sizeof want, "cmdstat_cluster|%s:calls=", sub);
    for (int i = 0; i < MASTERS; i++) {
        char *info = h_redis_cmd(&node[i], "INFO", "commandstats", NULL);
        const char *at = strstr(info, want);
        calls += at != NULL ? atol(at + strlen(want)) : 0;
        free(info);
    }
    return calls;
}

Test(cluster, the_slot_map_comes_from_cluster_shards_or_cluster_slots_where_that_is_refused)
{
    const char *masters[8];
    long slots = cluster_calls("slots");
    l2cluster *cl = handle();
    cr_assert_eq(l2cluster_reload(cl), L2_OK, "%s", l2cluster_error(cl));
    cr_expect_eq(l2cluster_masters(cl, masters, 8), MASTERS);
    cr_expect_gt(cluster_calls("shards"), 0);
    cr_expect_eq(cluster_calls("slots"), slots, "SHARDS answered: no SLOTS asked");
    l2cluster_destroy(cl);
    /* CLUSTER SHARDS refused, as on Redis before 7.0 */
    for (int i = 0; i < MASTERS; i++)
        free(h_redis_cmd(&node[i], "ACL", "SETUSER", "default", "-cluster|shards", NULL));
    char buf[16];
    cl = handle();
    cr_assert_eq(l2cluster_reload(cl), L2_OK, "%s", l2cluster_error(cl));
    cr_expect_eq(l2cluster_masters(cl, masters, 8), MASTERS);
    cr_expect_gt(cluster_calls("slots"), slots, "the map came from CLUSTER SLOTS");
    for (int k = 0; k < 20; k++) { /* and routes every key to its master */
        char key[16];
        snprintf(key, sizeof key, "s%d", k);
        set(cl, key, "v");
        cr_expect_str_eq(get(cl, key, buf, sizeof buf), "v");
    }
    cr_expect_eq(l2cluster_counters(cl).moved, 0);
    l2cluster_destroy(cl);
}

Test(cluster, an_unreachable_cluster_is_an_error_naming_it)
{
    config_redis_url u;
    char url[64], err[256];
    snprintf(url, sizeof url, "cluster://127.0.0.1:%d", h_free_port());
    cr_assert_eq(config_parse_redis_url(url, &u, err, sizeof err), 0, "%s", err);
    l2cluster *cl;
    cr_assert_eq(l2cluster_create(&cl, &u, 300, "test"), 0);
    const char *argv[] = {"GET", "k"};
    l2_status st;
    cr_assert_null(l2cluster_run(cl, ks_slot("k", 1), 300, 0, &st, 2, argv, NULL));
    cr_expect_eq(st, L2_EDOWN);
    cr_expect(strstr(l2cluster_error(cl), "no node gave the slot map") != NULL, "%s",
              l2cluster_error(cl));
    l2cluster_destroy(cl);
}

/* ---- a slot migrated under load ----------------------------------------- */

#define TAG "{mig}"
#define LOAD_KEYS 4

typedef struct load {
    atomic_int stop;
    atomic_long rounds, wrong, errors;
    char first_error[256];
} load;

/* One writer and reader of the slot's keys, on its own handle: every Get
 * must return the value this thread set last. */
static void *load_run(void *arg)
{
    load *ld = arg;
    l2cluster *cl = handle();
    char key[32], val[32], want[LOAD_KEYS][32] = {{0}};
    for (long i = 0; !atomic_load(&ld->stop); i++) {
        int k = (int)(i % LOAD_KEYS);
        snprintf(key, sizeof key, TAG "k%d", k);
        unsigned slot = ks_slot(key, strlen(key));
        l2_status st;
        const char *get_argv[] = {"GET", key};
        redisReply *r = l2cluster_run(cl, slot, 2000, 0, &st, 2, get_argv, NULL);
        if (r == NULL) {
            if (atomic_fetch_add(&ld->errors, 1) == 0)
                snprintf(ld->first_error, sizeof ld->first_error, "%s", l2cluster_error(cl));
            continue;
        }
        const char *got = r->type == REDIS_REPLY_STRING ? r->str : "";
        if (strcmp(got, want[k]) != 0)
            atomic_fetch_add(&ld->wrong, 1);
        freeReplyObject(r);
        snprintf(val, sizeof val, "%ld", i);
        const char *set_argv[] = {"SET", key, val};
        r = l2cluster_run(cl, slot, 2000, 0, &st, 3, set_argv, NULL);
        if (r == NULL) {
            if (atomic_fetch_add(&ld->errors, 1) == 0)
                snprintf(ld->first_error, sizeof ld->first_error, "%s", l2cluster_error(cl));
            want[k][0] = '?'; /* unknown outcome: accept whatever comes next */
            continue;
        }
        freeReplyObject(r);
        snprintf(want[k], sizeof want[k], "%s", val);
        atomic_fetch_add(&ld->rounds, 1);
    }
    l2cluster_counts c = l2cluster_counters(cl);
    l2cluster_destroy(cl);
    long *counts = malloc(2 * sizeof *counts);
    counts[0] = (long)c.asked;
    counts[1] = (long)c.moved;
    return counts;
}

static char *node_id(const h_redis *r)
{
    return h_redis_cmd(r, "CLUSTER", "MYID", NULL);
}

static int holds_slot(const h_redis *r, const char *slot)
{
    char *out = h_redis_cmd(r, "CLUSTER", "COUNTKEYSINSLOT", slot, NULL);
    int n = atoi(out);
    free(out);
    return n;
}

Test(cluster, a_slot_migrated_under_load_is_followed_through_ask_and_moved)
{
    char slot[16];
    snprintf(slot, sizeof slot, "%u", ks_slot(TAG, strlen(TAG)));
    /* the keys exist first, so that the source is found by its keys */
    l2cluster *cl = handle();
    char key[32], buf[64];
    for (int k = 0; k < LOAD_KEYS; k++) {
        snprintf(key, sizeof key, TAG "k%d", k);
        set(cl, key, "");
    }
    int src = -1;
    for (int i = 0; i < MASTERS; i++)
        if (holds_slot(&node[i], slot) == LOAD_KEYS)
            src = i;
    cr_assert_geq(src, 0, "no master holds slot %s", slot);
    int dst = (src + 1) % MASTERS;
    char *src_id = node_id(&node[src]), *dst_id = node_id(&node[dst]);
    char dst_port[16];
    snprintf(dst_port, sizeof dst_port, "%d", node[dst].port);

    load ld = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, load_run, &ld), 0);
    h_sleep_ms(200);
    free(h_redis_cmd(&node[dst], "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id, NULL));
    free(h_redis_cmd(&node[src], "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id, NULL));
    /* one key at a time, with the load running between: the moved ones are
     * reached through ASK, the others still on the source */
    for (int k = 0; k < LOAD_KEYS; k++) {
        snprintf(key, sizeof key, TAG "k%d", k);
        char *out = h_redis_cmd(&node[src], "MIGRATE", "127.0.0.1", dst_port, key, "0", "5000",
                                NULL);
        cr_expect(strcmp(out, "OK") == 0 || strcmp(out, "NOKEY") == 0, "MIGRATE %s: %s", key,
                  out);
        free(out);
        h_sleep_ms(150);
    }
    for (int i = 0; i < MASTERS; i++)
        free(h_redis_cmd(&node[i], "CLUSTER", "SETSLOT", slot, "NODE", dst_id, NULL));
    h_sleep_ms(300);
    atomic_store(&ld.stop, 1);
    long *counts;
    pthread_join(t, (void **)&counts);

    cr_log_info("migration under load: %ld rounds, %ld ASK and %ld MOVED followed",
                atomic_load(&ld.rounds), counts[0], counts[1]);
    cr_expect_gt(atomic_load(&ld.rounds), 100, "the load ran %ld rounds", atomic_load(&ld.rounds));
    cr_expect_eq(atomic_load(&ld.wrong), 0, "%ld reads did not return the last write",
                 atomic_load(&ld.wrong));
    cr_expect_eq(atomic_load(&ld.errors), 0, "%ld errors, the first: %s",
                 atomic_load(&ld.errors), ld.first_error);
    cr_expect_gt(counts[0], 0, "no ASK was followed");
    cr_expect_gt(counts[1], 0, "no MOVED was followed");
    cr_expect_eq(holds_slot(&node[dst], slot), LOAD_KEYS, "the slot's keys are on the target");
    cr_expect_eq(holds_slot(&node[src], slot), 0);
    /* the handle made before the move follows MOVED once, then knows */
    snprintf(key, sizeof key, TAG "k0");
    get(cl, key, buf, sizeof buf);
    cr_expect_eq(l2cluster_counters(cl).moved, 1);
    get(cl, key, buf, sizeof buf);
    cr_expect_eq(l2cluster_counters(cl).moved, 1, "the map was reloaded");
    free(counts);
    free(src_id);
    free(dst_id);
    l2cluster_destroy(cl);
}

/* ---- pub/sub --------------------------------------------------------------- */

Test(cluster, a_subscriber_dials_the_first_live_node_and_hears_a_publish_made_on_another)
{
    config_redis_url u;
    char url[96], err[512];
    int dead = h_free_port();
    snprintf(url, sizeof url, "cluster://127.0.0.1:%d,127.0.0.1:%d", dead, node[0].port);
    cr_assert_eq(config_parse_redis_url(url, &u, err, sizeof err), 0, "%s", err);
    l2io *sub = l2conn_dial(&u, 500, err, sizeof err);
    cr_assert_not_null(sub, "%s", err);
    cr_expect_eq(u.seeds[0].port, node[0].port, "the node that answered moves to the front");
    cr_expect_eq(u.seeds[1].port, dead);
    const char *subscribe[] = {"SUBSCRIBE", "nc:v1:inval"};
    redisReply *r = l2io_command(sub, 2, subscribe, NULL);
    cr_assert_not_null(r);
    freeReplyObject(r);
    /* published on the node the subscriber is not on: the cluster bus
     * carries it (classic pub/sub) */
    char *n = h_redis_cmd(&node[2], "PUBLISH", "nc:v1:inval", "hello", NULL);
    free(n);
    cr_assert_eq(l2io_get_reply(sub, &r), 0, "%s", l2io_errstr(sub));
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 3);
    cr_expect_str_eq(r->element[2]->str, "hello");
    freeReplyObject(r);
    l2io_free(sub);

    snprintf(url, sizeof url, "cluster://127.0.0.1:%d", dead);
    cr_assert_eq(config_parse_redis_url(url, &u, err, sizeof err), 0, "%s", err);
    cr_assert_null(l2conn_dial(&u, 300, err, sizeof err));
    cr_expect(strstr(err, "redis cluster: no node answers (redis 127.0.0.1:") != NULL, "%s", err);
}

/* ---- the scripts on a Cluster (daemon/l2.c) ------------------------------ */

#include "l2.h"

static l2_key key_of(const char *ns, const char *key, uint64_t floor)
{
    return (l2_key){.prefix = "nc:v1", .ns = ns, .nslen = strlen(ns), .key = key,
                    .klen = strlen(key), .floor = floor};
}

static const l2_msg msg = {.channel = "nc:v1:inval", .data = "x", .len = 1};

static uint64_t l2set(l2 *c, const char *ns, const char *key, const char *val, uint64_t floor)
{
    l2_key k = key_of(ns, key, floor);
    uint64_t version = 0;
    int stored = 0;
    cr_assert_eq(l2_set(c, &k, val, strlen(val), 60000, NULL, &msg, 2000, &version, &stored),
                 L2_OK, "Set %s: %s", key, l2_error(c));
    cr_assert(stored);
    return version;
}

/* Get under floor: the value into buf ("" when not found); returns the
 * version it was read under. */
static uint64_t l2get(l2 *c, const char *ns, const char *key, uint64_t floor, char *buf,
                      size_t size)
{
    l2_key k = key_of(ns, key, floor);
    l2_value v = {0};
    l2_status st = l2_get(c, &k, NULL, 2000, &v);
    cr_assert(st == L2_OK || st == L2_NIL, "Get %s: %s", key, l2_error(c));
    snprintf(buf, size, "%.*s", st == L2_OK ? (int)v.len : 0, st == L2_OK ? (char *)v.data : "");
    uint64_t version = v.version;
    l2_value_free(&v);
    return version;
}

Test(cluster, the_scripts_run_on_every_master_split_by_slot_under_one_version)
{
    config_redis_url u;
    char url[64], err[256], key[16], val[16], buf[64];
    snprintf(url, sizeof url, "cluster://127.0.0.1:%d", node[2].port);
    cr_assert_eq(config_parse_redis_url(url, &u, err, sizeof err), 0, "%s", err);
    l2 *c;
    cr_assert_eq(l2_create(&c, &u, 1000, "test", 0), 0);

    int acked = -1;
    cr_expect_eq(l2_wait(c, 0, 10, 1000, &acked), L2_EDOWN, "no write yet to WAIT for");
    /* a node that knows no version reads it from the version's master */
    uint64_t v = l2set(c, "users", "k0", "v0", 0);
    cr_assert_gt(v, 0);
    /* WAIT goes to the master the write ran on (no replicas here: 0) */
    cr_expect_eq(l2_wait(c, 0, 10, 1000, &acked), L2_OK, "%s", l2_error(c));
    cr_expect_eq(acked, 0);
    for (int i = 1; i < 150; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "v%d", i);
        cr_assert_eq(l2set(c, "users", key, val, v), v);
    }
    for (int i = 0; i < MASTERS; i++)
        cr_expect_gt(dbsize(&node[i]), 20, "master %d holds %ld keys", i, dbsize(&node[i]));
    for (int i = 0; i < 150; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "v%d", i);
        cr_expect_eq(l2get(c, "users", key, v, buf, sizeof buf), v);
        cr_expect_str_eq(buf, val);
    }
    cr_expect_eq(l2get(c, "users", "k7", 0, buf, sizeof buf), v, "the version read first");
    cr_expect_str_eq(buf, "v7");

    /* MGet across slots, answered in the caller's order */
    const char *want[] = {"k3", "k140", "nope", "k9", "k77", "k3", "k101", "k55", "k12", "k0"};
    l2_key keys[10];
    for (int i = 0; i < 10; i++)
        keys[i] = key_of("users", want[i], v);
    l2_key ns = key_of("users", "", v);
    l2_batch b = {0};
    cr_assert_eq(l2_mget(c, &ns, keys, 10, 2000, &b), L2_OK, "%s", l2_error(c));
    cr_expect_eq(b.version, v);
    for (size_t i = 0; i < 10; i++) {
        l2_value item;
        l2_status st = l2_batch_item(&b, i, &item);
        if (strcmp(want[i], "nope") == 0) {
            cr_expect_eq(st, L2_NIL);
            continue;
        }
        cr_assert_eq(st, L2_OK, "item %zu", i);
        char expect[16];
        snprintf(expect, sizeof expect, "v%s", want[i] + 1);
        snprintf(buf, sizeof buf, "%.*s", (int)item.len, (const char *)item.data);
        cr_expect_str_eq(buf, expect, "item %zu is %s's", i, want[i]);
    }
    l2_batch_free(&b);

    /* a bump on the version's master; a node that has not heard of it
     * writes under the new version all the same (checked after) */
    l2_key nsk = key_of("users", "", v);
    uint64_t now = 0;
    int bumped = 0;
    cr_assert_eq(l2_bump(c, &nsk, v, &msg, 2000, &now, &bumped), L2_OK, "%s", l2_error(c));
    cr_assert(bumped);
    cr_assert_eq(now, v + 1);
    cr_expect_eq(l2get(c, "users", "k5", v + 1, buf, sizeof buf), v + 1);
    cr_expect_str_eq(buf, "", "the bump retired the entry on its master");
    cr_expect_eq(l2set(c, "users", "k5", "late", v), v + 1, "the write learned the bump");
    cr_expect_eq(l2get(c, "users", "k5", v + 1, buf, sizeof buf), v + 1);
    cr_expect_str_eq(buf, "late");

    /* MSet across slots: every slot's entries stored, under the new version */
    l2_entry e[20];
    char names[20][8], vals[20][8];
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        snprintf(vals[i], sizeof vals[i], "w%d", i);
        e[i] = (l2_entry){names[i], strlen(names[i]), vals[i], strlen(vals[i]), 60000};
    }
    uint64_t mv = 0;
    l2_mset_result res;
    cr_assert_eq(l2_mset(c, &nsk, e, 20, &msg, 2000, &mv, &res), L2_OK, "%s", l2_error(c));
    cr_expect_eq(res.stored, 20);
    cr_expect_eq(res.nfails, 0);
    l2_mset_result_free(&res);
    cr_expect_eq(mv, v + 1);
    /* its WAIT goes to every master a slot's script ran on (the 20 keys
     * span all three), once each */
    long before[MASTERS];
    for (int i = 0; i < MASTERS; i++)
        before[i] = wait_calls(i);
    cr_expect_eq(l2_wait(c, 0, 10, 1000, &acked), L2_OK, "%s", l2_error(c));
    for (int i = 0; i < MASTERS; i++)
        cr_expect_eq(wait_calls(i) - before[i], 1, "master %d ran %ld WAITs", i,
                     wait_calls(i) - before[i]);
    /* a Set's only on its entry's master */
    cr_assert_eq(l2set(c, "users", "m0", "again", v + 1), v + 1);
    for (int i = 0; i < MASTERS; i++)
        before[i] = wait_calls(i);
    cr_expect_eq(l2_wait(c, 0, 10, 1000, &acked), L2_OK, "%s", l2_error(c));
    long waited = 0;
    for (int i = 0; i < MASTERS; i++)
        waited += wait_calls(i) - before[i];
    cr_expect_eq(waited, 1, "a Set's WAIT went to %ld masters", waited);
    for (int i = 1; i < 20; i++) {
        cr_expect_eq(l2get(c, "users", names[i], v + 1, buf, sizeof buf), v + 1);
        cr_expect_str_eq(buf, vals[i]);
    }
    l2_destroy(c);
}

/* ---- three daemons on the cluster ---------------------------------------- */

/* Starts n daemons on the cluster, the first `seeds` masters named in
 * their URL, each with a client into c[i]. */
static void daemons_start(h_daemon *d, nc_client **c, int n, int seeds)
{
    h_redis via = node[0];
    int at = snprintf(via.url, sizeof via.url, "cluster://");
    for (int m = 0; m < seeds; m++)
        at += snprintf(via.url + at, sizeof via.url - (size_t)at, "%s127.0.0.1:%d",
                       m > 0 ? "," : "", node[m].port);
    for (int i = 0; i < n; i++) {
        h_daemon_start(&d[i], &via, NULL);
        c[i] = h_client(&d[i]);
    }
}

/* Closes the clients and stops the daemons of daemons_start(). */
static void daemons_stop(h_daemon *d, nc_client **c, int n)
{
    for (int i = 0; i < n; i++) {
        nc_close(c[i]);
        cr_expect_eq(h_daemon_stop(&d[i]), 0);
    }
}


/* A Get on c, polled until it answers `want` ("" for not found) or 3 s
 * pass; returns whether it did. */
static int get_becomes(nc_client *c, const char *key, const char *want)
{
    for (int i = 0; i < 300; i++) {
        void *v = NULL;
        size_t len = 0;
        int rc = nc_get(c, NC_STR("users"), NC_STR(key), &v, &len, 2000);
        int ok = rc == NC_OK ? strlen(want) == len && memcmp(v, want, len) == 0
                             : rc == NC_ENOTFOUND && want[0] == '\0';
        nc_free(v);
        if (ok)
            return 1;
        h_sleep_ms(10);
    }
    return 0;
}

Test(cluster, three_daemons_share_the_cluster_coherently, .timeout = 90)
{
    h_daemon d[3];
    nc_client *c[3];
    daemons_start(d, c, 3, 2);
    /* a write on one is read on the others, and an overwrite reaches the
     * L1 that held the old value */
    cr_assert_eq(nc_set(c[0], NC_STR("users"), NC_STR("a"), NC_STR("1"), 60000, 2000), NC_OK);
    cr_assert(get_becomes(c[1], "a", "1"));
    cr_assert(get_becomes(c[2], "a", "1"));
    cr_assert_eq(nc_set(c[0], NC_STR("users"), NC_STR("a"), NC_STR("2"), 60000, 2000), NC_OK);
    cr_expect(get_becomes(c[2], "a", "2"), "the invalidation crossed the cluster");
    /* 150 keys of one namespace on every master */
    for (int i = 0; i < 150; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_eq(nc_set(c[i % 3], NC_STR("users"), NC_STR(key), NC_STR("x"),
                            60000, 2000),
                     NC_OK, "Set %s", key);
    }
    for (int i = 0; i < MASTERS; i++)
        cr_expect_gt(dbsize(&node[i]), 20, "master %d holds %ld keys", i, dbsize(&node[i]));
    /* the keys the others wrote miss node 0's L1: read on the lane of
     * their master, under the version node 0 learned from its own writes */
    for (int i = 1; i < 150; i += 3) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        cr_expect(get_becomes(c[0], key, "x"), "%s", key);
    }
    cr_expect_gt(h_stat(c[0], "redis_lane_reads"), 20, "a read lane per master");
    cr_expect_eq(h_stat(c[0], "redis_lane_up"), 1);
    /* MGet across slots, in the caller's order */
    nc_bytes keys[] = {NC_STR("k3"), NC_STR("a"), NC_STR("nope"), NC_STR("k140"), NC_STR("k9")};
    nc_item *items = NULL;
    int64_t lane_reads = h_stat(c[2], "redis_lane_reads");
    cr_assert_eq(nc_mget(c[2], NC_STR("users"), keys, 5, &items, 2000), NC_OK);
    /* k3, nope and k9 miss node 2's L1: read on their masters' lanes at once */
    cr_expect_geq(h_stat(c[2], "redis_lane_reads") - lane_reads, 3);
    const char *want[] = {"x", "2", NULL, "x", "x"};
    for (int i = 0; i < 5; i++) {
        cr_expect_eq(items[i].found, want[i] != NULL, "item %d", i);
        if (want[i] != NULL && items[i].found)
            cr_expect(items[i].len == strlen(want[i]) &&
                          memcmp(items[i].value, want[i], items[i].len) == 0,
                      "item %d", i);
    }
    nc_items_free(items, 5);
    /* a bump on one node empties the namespace everywhere */
    uint64_t version = 0;
    cr_assert_eq(nc_bump(c[1], NC_STR("users"), &version, 2000), NC_OK);
    for (int i = 0; i < 3; i++)
        cr_expect(get_becomes(c[i], "a", ""), "node %d still serves the old version", i);
    cr_assert_eq(nc_set(c[2], NC_STR("users"), NC_STR("a"), NC_STR("3"), 60000, 2000), NC_OK);
    cr_expect(get_becomes(c[0], "a", "3"));
    daemons_stop(d, c, 3);
}

/* A daemon's read lanes follow a slot moved to another master: the first
 * Gets of the slot after the move fail on the old master's lane and go to
 * the workers, which follow MOVED; the lanes then reload the slot map, and
 * the slot's Gets are read on the new master's lane again. */
Test(cluster, a_daemons_read_lanes_follow_a_slot_moved_to_another_master, .timeout = 60)
{
    h_redis via = node[0];
    snprintf(via.url, sizeof via.url, "cluster://127.0.0.1:%d", node[0].port);
    h_daemon d;
    h_daemon_start(&d, &via, "--l1-max-ttl", "1ms", NULL);
    nc_client *c = h_client(&d);
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("mv"), NC_STR("1"), 60000, 2000), NC_OK);
    cr_assert(get_becomes(c, "mv", "1"));
    int64_t reads = h_stat(c, "redis_lane_reads");
    cr_assert_gt(reads, 0, "the Get was read on a lane");

    /* the entry's slot, moved whole to the next master */
    char tag[KS_TAG_LEN], slot[16];
    ks_tag(tag, "users", 5, "mv", 2);
    snprintf(slot, sizeof slot, "%u", ks_slot(tag, sizeof tag));
    int src;
    h_cluster_move_slot(node, MASTERS, ks_slot(tag, sizeof tag), 0, &src);
    cr_assert_eq(holds_slot(&node[src], slot), 0);

    /* every Get answers the value; within a few seconds they are read on
     * a lane again, with no retry */
    int64_t t0 = h_now_ms(), settled = -1;
    while (settled < 0 && h_now_ms() - t0 < 5000) {
        int64_t retries = h_stat(c, "redis_lane_retries");
        reads = h_stat(c, "redis_lane_reads");
        h_sleep_ms(5); /* past l1_max_ttl */
        cr_assert(get_becomes(c, "mv", "1"));
        if (h_stat(c, "redis_lane_retries") == retries && h_stat(c, "redis_lane_reads") > reads)
            settled = h_now_ms();
    }
    cr_assert_geq(settled, 0, "the slot's Gets still go to the old master's lane 5 s on");
    cr_assert_gt(h_stat(c, "redis_lane_retries"), 0, "the move was seen");
    cr_log_info("read lanes: the moved slot read on its new master's lane %lld ms after the move",
                (long long)(settled - t0));
    cr_expect_eq(h_stat(c, "redis_lane_up"), 1);
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);
}

/* ---- a master killed, its replica promoted -------------------------------- */

/* The role of a node ("master", "slave"), as ROLE says. */
static char *role(const h_redis *r)
{
    char *out = h_redis_cmd(r, "ROLE", NULL);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

TestSuite(cluster_failover, .init = cluster_start_replicated, .fini = cluster_stop,
          .timeout = 90);

Test(cluster_failover, a_master_killed_is_replaced_by_its_replica_after_bounded_errors)
{
    l2cluster *cl = handle();
    char key[32] = "{fo}k", buf[64], val[32];
    set(cl, key, "0");
    /* the master of the key's slot */
    int victim = -1;
    for (int i = 0; i < nnodes; i++) {
        char *r = role(&node[i]);
        char slot[16];
        snprintf(slot, sizeof slot, "%u", ks_slot(key, strlen(key)));
        char *n = h_redis_cmd(&node[i], "CLUSTER", "COUNTKEYSINSLOT", slot, NULL);
        if (strcmp(r, "master") == 0 && atoi(n) == 1)
            victim = i;
        free(n);
        free(r);
    }
    cr_assert_geq(victim, 0, "no master holds %s", key);
    /* the write reaches the replica before the kill (once it has synced) */
    int synced = 0;
    for (int i = 0; i < 40 && !synced; i++) {
        char *w = h_redis_cmd(&node[victim], "WAIT", "1", "250", NULL);
        synced = strcmp(w, "1") == 0;
        free(w);
    }
    cr_assert(synced, "the replica did not sync within 10 s");
    h_redis_stop(&node[victim], 1);
    int64_t t0 = h_now_ms(), first_ok = -1;
    long errors = 0;
    for (int i = 1; h_now_ms() - t0 < 30000; i++) {
        l2_status st;
        snprintf(val, sizeof val, "%d", i);
        const char *argv[] = {"SET", key, val};
        redisReply *r = l2cluster_run(cl, ks_slot(key, strlen(key)), 500, 0, &st, 3, argv, NULL);
        if (r == NULL) {
            errors++;
            h_sleep_ms(50);
            continue;
        }
        freeReplyObject(r);
        first_ok = h_now_ms();
        cr_expect_str_eq(get(cl, key, buf, sizeof buf), val, "the new master serves the write");
        break;
    }
    cr_assert_geq(first_ok, 0, "no write succeeded within 30 s of the kill (%s)",
                  l2cluster_error(cl));
    cr_log_info("failover: %ld errors, writes back %lld ms after the kill", errors,
                (long long)(first_ok - t0));
    cr_expect_gt(errors, 0, "the kill was seen");
    cr_expect_lt(first_ok - t0, 15000);
    l2cluster_destroy(cl);
}

/* The index of the live master (node[0..MASTERS)) that serves key: the one
 * that does not answer MOVED. */
static int master_of(const char *key, size_t len)
{
    char k[600];
    snprintf(k, sizeof k, "%.*s", (int)len, key);
    for (int i = 0; i < MASTERS; i++) {
        char *r = h_redis_cmd(&node[i], "EXISTS", k, NULL);
        int moved = strncmp(r, "MOVED", 5) == 0;
        free(r);
        if (!moved)
            return i;
    }
    return -1;
}

Test(cluster, an_mset_across_slots_with_a_master_down_names_exactly_the_entries_not_stored)
{
    config_redis_url u;
    char url[64], err[256];
    snprintf(url, sizeof url, "cluster://127.0.0.1:%d", node[0].port);
    cr_assert_eq(config_parse_redis_url(url, &u, err, sizeof err), 0, "%s", err);
    l2 *c;
    cr_assert_eq(l2_create(&c, &u, 300, "test", 0), 0);
    uint64_t v = l2set(c, "users", "first", "1", 0);
    /* the master down is not the version's, so every slot reads it */
    char vkey[KS_NSVER_KEY_MAX];
    size_t vlen = ks_nsver_key(vkey, "nc:v1", "users", 5);
    int down = (master_of(vkey, vlen) + 1) % MASTERS;
    l2_entry e[30];
    char names[30][8];
    int on_down[30];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        e[i] = (l2_entry){names[i], strlen(names[i]), "w", 1, 60000};
        char tag[KS_TAG_LEN];
        ks_tag(tag, "users", 5, names[i], strlen(names[i]));
        on_down[i] = master_of(tag, sizeof tag) == down;
    }
    h_redis_stop(&node[down], 1);
    l2_key nsk = key_of("users", "", v);
    nsk.known = 1;
    uint64_t mv = 0;
    l2_mset_result res;
    l2_status st = l2_mset(c, &nsk, e, 30, &msg, 2000, &mv, &res);
    cr_assert_eq(st, L2_EDOWN, "a third of the slots are on the dead master: %s", l2_error(c));
    cr_expect(strstr(l2_error(c), "of 30 entries stored, one hash slot at a time") != NULL, "%s",
              l2_error(c));
    cr_expect_gt(res.stored, 0);
    cr_expect_lt(res.stored, 30);
    cr_expect_eq(mv, v);
    size_t failed = 0, maybe = 0;
    for (int i = 0; i < 30; i++) {
        l2_key k = key_of("users", names[i], v);
        k.known = 1;
        l2_value val = {0};
        l2_status got = l2_get(c, &k, NULL, 300, &val);
        l2_value_free(&val);
        cr_expect_eq(res.fail[i] >= 0, on_down[i], "%s: failed exactly when on the dead master",
                      names[i]);
        if (res.fail[i] < 0) {
            cr_expect_eq(got, L2_OK, "%s was said stored", names[i]);
            continue;
        }
        failed++;
        /* the first command to the killed node may have been sent (its
         * connection was open): maybe ran; the next are refused */
        cr_expect_eq(res.fails[res.fail[i]].status, L2_EDOWN);
        maybe += res.fails[res.fail[i]].maybe_ran;
    }
    cr_expect_eq(failed + res.stored, 30);
    cr_expect_lt(maybe, failed, "the slots after the first on the dead node were refused");
    l2_mset_result_free(&res);
    l2_destroy(c);
}

Test(cluster, a_daemons_mset_with_a_master_down_answers_which_keys_it_stored, .timeout = 60)
{
    h_redis via = node[0];
    char vkey[KS_NSVER_KEY_MAX];
    int down = (master_of(vkey, ks_nsver_key(vkey, "nc:v1", "users", 5)) + 1) % MASTERS;
    int up = (down + 1) % MASTERS;
    snprintf(via.url, sizeof via.url, "cluster://127.0.0.1:%d", node[up].port);
    h_daemon d;
    h_daemon_start(&d, &via, NULL);
    nc_client *c = h_client(&d);
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("first"), NC_STR("1"), 60000, 2000), NC_OK,
                 "%s", nc_errmsg());
    enum { N = 30 };
    nc_entry e[N];
    char names[N][8];
    int on_down[N], stored[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "d%d", i);
        e[i] = (nc_entry){NC_STR(names[i]), NC_STR("new"), 60000};
        char tag[KS_TAG_LEN];
        ks_tag(tag, "users", 5, names[i], strlen(names[i]));
        on_down[i] = master_of(tag, sizeof tag) == down;
    }
    /* every entry held before, so that a Get after tells new from old */
    for (int i = 0; i < N; i++)
        stored[i] = -2, e[i].value = NC_STR("old");
    cr_assert_eq(nc_mset_stored(c, NC_STR("users"), e, N, stored, 2000), NC_OK, "%s",
                 nc_errmsg());
    for (int i = 0; i < N; i++) {
        cr_expect_eq(stored[i], NC_STORED);
        e[i].value = NC_STR("new");
    }
    h_redis_stop(&node[down], 1);
    int rv = nc_mset_stored(c, NC_STR("users"), e, N, stored, 2000);
    cr_assert_eq(rv, NC_EUNAVAILABLE, "%s", nc_errmsg());
    cr_expect(strstr(nc_errmsg(), "entries stored, one hash slot at a time") != NULL, "%s",
              nc_errmsg());
    int nstored = 0, nfailed = 0;
    for (int i = 0; i < N; i++) {
        cr_expect_eq(stored[i] != NC_STORED, on_down[i], "%s: %d", names[i], stored[i]);
        nstored += stored[i] == NC_STORED;
        nfailed += stored[i] == NC_NOT_STORED;
        /* the Gets agree: a stored key reads new, the others never do */
        void *v = NULL;
        size_t len = 0;
        int got = nc_get(c, NC_STR("users"), NC_STR(names[i]), &v, &len, 2000);
        if (stored[i] == NC_STORED)
            cr_expect(got == NC_OK && len == 3 && memcmp(v, "new", 3) == 0, "%s: %d", names[i],
                      got);
        else
            cr_expect(got != NC_OK || memcmp(v, "new", 3) != 0, "%s reads new", names[i]);
        nc_free(v);
    }
    cr_expect_gt(nstored, 0);
    cr_expect_gt(nfailed, 0, "the dead master's slots are refused, not maybe stored");
    /* nearcache-cli names the keys not stored */
    char *out = NULL, *err = NULL;
    size_t olen = 0;
    const char *cli = getenv("NC_CLI");
    char *argv[] = {(char *)(cli != NULL ? cli : "nearcache-cli"), "-s", d.url, "mset", "users",
                    names[0], "x", names[1], "y", names[2], "z", names[3], "w", NULL};
    int code = h_run(argv, NULL, 0, &out, &olen, &err);
    int want_fail = on_down[0] || on_down[1] || on_down[2] || on_down[3];
    cr_expect_eq(code, want_fail ? 3 : 0, "%s %s", out, err);
    for (int i = 0; i < 4; i++) {
        char no[256], maybe[256];
        snprintf(no, sizeof no, "%s not stored\n", names[i]);
        snprintf(maybe, sizeof maybe, "%s maybe stored\n", names[i]);
        cr_expect_eq(strstr(out, no) != NULL || strstr(out, maybe) != NULL, on_down[i], "%s%s",
                     out, err);
    }
    free(out);
    free(err);
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);
}

/* ---- the invalidation channels, one per master ---------------------------- */

/* Reads users/key through c until it comes from L1 with `want`. */
static int hot_in_l1(nc_client *c, const char *key, const char *want)
{
    for (int i = 0; i < 300; i++) {
        void *v = NULL;
        size_t len = 0;
        nc_get_info info;
        int rc = nc_get_ex(c, NC_STR("users"), NC_STR(key), &v, &len, &info, 2000);
        int ok = rc == NC_OK && strlen(want) == len && memcmp(v, want, len) == 0 &&
                 info.source == NC_SOURCE_L1;
        nc_free(v);
        if (ok)
            return 1;
        h_sleep_ms(10);
    }
    return 0;
}

/* A key of namespace users whose entry lives on master m, into key. */
static void key_on(int m, char *key, size_t size)
{
    for (int i = 0; i < 200; i++) {
        snprintf(key, size, "m%d-%d", m, i);
        char tag[KS_TAG_LEN];
        ks_tag(tag, "users", 5, key, strlen(key));
        if (master_of(tag, sizeof tag) == m)
            return;
    }
    cr_assert_fail("no key of 200 on master %d", m);
}

/* The channel of the lowest bucket master m (of node[0..MASTERS)) serves,
 * where the daemons publish the invalidations of its keys, into ch. */
static void head_channel(int m, char *ch, size_t size)
{
    unsigned n_of[KS_INVAL_BUCKETS];
    ks_inval_tags("nc:v1", n_of);
    for (int b = 0; b < KS_INVAL_BUCKETS; b++) {
        int len = ks_inval_channel(ch, size, "nc:v1", n_of[b], NULL);
        if (master_of(ch, (size_t)len) == m)
            return;
    }
    cr_assert_fail("master %d serves no bucket", m);
}

/* How many sharded subscribers node r has on channel ch. */
static long shard_subscribers(const h_redis *r, const char *ch)
{
    char *out = h_redis_cmd(r, "PUBSUB", "SHARDNUMSUB", ch, NULL);
    char *nl = strchr(out, '\n');
    long n = nl != NULL ? atol(nl + 1) : 0;
    free(out);
    return n;
}

/* A connection SSUBSCRIBEd to ch on node r. */
static l2io *listen_on(const h_redis *r, const char *ch)
{
    l2io *io;
    char err[256];
    cr_assert_eq(l2io_connect(&io, "127.0.0.1", r->port, 0, NULL, 1000, err, sizeof err), 0, "%s",
                 err);
    const char *argv[] = {"SSUBSCRIBE", ch};
    redisReply *rep = l2io_command(io, 2, argv, NULL);
    cr_assert(rep != NULL && rep->type == REDIS_REPLY_ARRAY, "SSUBSCRIBE %s refused", ch);
    freeReplyObject(rep);
    return io;
}

/* Whether a message naming one of keys[0..n) arrives on io within 3 s. */
static int heard_one(l2io *io, char (*keys)[32], int n)
{
    int64_t until = h_now_ms() + 3000;
    while (h_now_ms() < until) {
        redisReply *r = NULL;
        if (l2io_get_reply(io, &r) != 0)
            return 0;
        int found = 0;
        for (int i = 0; i < n && r->type == REDIS_REPLY_ARRAY && r->elements == 3; i++)
            found |= memmem(r->element[2]->str, r->element[2]->len, keys[i], strlen(keys[i])) !=
                     NULL;
        freeReplyObject(r);
        if (found)
            return 1;
    }
    return 0;
}

Test(cluster, daemons_listen_on_every_master_and_batches_take_the_masters_in_turn,
     .timeout = 90)
{
    h_daemon d[2];
    nc_client *c[2];
    daemons_start(d, c, 2, 2);
    /* each daemon SSUBSCRIBEs on every master */
    l2io *io[MASTERS];
    for (int m = 0; m < MASTERS; m++) {
        char ch[KS_CHANNEL_SIZE];
        head_channel(m, ch, sizeof ch);
        while (shard_subscribers(&node[m], ch) < 2)
            h_sleep_ms(20); /* the test's timeout bounds it */
        cr_expect_eq(shard_subscribers(&node[m], ch), 2, "master %d: %s", m, ch);
        io[m] = listen_on(&node[m], ch);
    }
    /* a daemon's batches go to each master in turn: 6 writes one after the
     * other, each its own batch, reach every master's channel */
    char keys[6][32];
    for (int i = 0; i < 6; i++) {
        snprintf(keys[i], sizeof keys[i], "turn%d", i);
        cr_assert_eq(nc_set(c[0], NC_STR("users"), NC_STR(keys[i]), NC_STR("1"), 60000, 2000),
                     NC_OK);
    }
    for (int m = 0; m < MASTERS; m++) {
        cr_expect(heard_one(io[m], keys, 6), "no batch on master %d's channel", m);
        l2io_free(io[m]);
    }
    /* a write's invalidation reaches the other daemon's L1, for keys on
     * every master */
    for (int m = 0; m < MASTERS; m++) {
        char key[32];
        key_on(m, key, sizeof key);
        cr_assert_eq(nc_set(c[0], NC_STR("users"), NC_STR(key), NC_STR("1"), 60000, 2000), NC_OK);
        cr_assert(hot_in_l1(c[1], key, "1"), "node 1 never served %s from L1", key);
        cr_assert_eq(nc_set(c[0], NC_STR("users"), NC_STR(key), NC_STR("2"), 60000, 2000), NC_OK);
        cr_assert(get_becomes(c[1], key, "2"), "the batch never reached node 1's L1 (master %d)",
                  m);
        cr_assert(hot_in_l1(c[1], key, "2"));
    }
    char key[32];
    key_on(2, key, sizeof key);
    uint64_t version = 0;
    cr_assert_eq(nc_bump(c[0], NC_STR("users"), &version, 2000), NC_OK);
    cr_assert(get_becomes(c[1], key, ""), "the bump's message never reached node 1");
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(h_stat(c[i], "sequence_gaps"), 0);
        cr_expect_eq(h_stat(c[i], "subscription_losses"), 0);
    }
    cr_expect_gt(h_stat(c[0], "invalidation_batches"), 0);
    daemons_stop(d, c, 2);
}

Test(cluster, a_channels_slot_moved_makes_every_daemon_subscribe_again_and_stay_coherent,
     .timeout = 90)
{
    h_daemon d[2];
    nc_client *c[2];
    daemons_start(d, c, 2, 2);
    char keys[MASTERS][32];
    for (int m = 0; m < MASTERS; m++) {
        key_on(m, keys[m], sizeof keys[m]);
        cr_assert_eq(nc_set(c[0], NC_STR("users"), NC_STR(keys[m]), NC_STR("1"), 60000, 2000),
                     NC_OK);
        cr_assert(hot_in_l1(c[1], keys[m], "1"));
    }
    /* master 0's channel (where its batches go) moves to master 1, as a
     * reshard moves it: a key of its slot first, for the move to carry */
    char ch[KS_CHANNEL_SIZE], key[KS_CHANNEL_SIZE + 8];
    head_channel(0, ch, sizeof ch);
    snprintf(key, sizeof key, "%sx", ch);
    free(h_redis_cmd(&node[0], "SET", key, "1", NULL));
    int64_t losses[2];
    for (int i = 0; i < 2; i++)
        losses[i] = h_stat(c[i], "subscription_losses");
    int src, dst = h_cluster_move_slot(node, MASTERS, ks_slot(ch, strlen(ch)), 0, &src);
    cr_assert_eq(src, 0);
    /* Redis unsubscribes the channel's subscribers on master 0: each daemon
     * subscribes again, on the new map, and serves again */
    int64_t t0 = h_now_ms();
    for (int i = 0; i < 2; i++)
        while (h_stat(c[i], "subscription_losses") == losses[i] ||
               h_stat(c[i], "l1_serving") != 1) {
            cr_assert_lt(h_now_ms() - t0, 30000, "daemon %d did not subscribe again", i);
            h_sleep_ms(50);
        }
    cr_expect_eq(shard_subscribers(&node[dst], ch), 2, "%s on its new master", ch);
    cr_expect_eq(shard_subscribers(&node[0], ch), 0, "%s on its old master", ch);
    for (int m = 0; m < MASTERS; m++) {
        cr_assert(get_becomes(c[1], keys[m], "1"));
        cr_assert_eq(nc_set(c[0], NC_STR("users"), NC_STR(keys[m]), NC_STR("2"), 60000, 2000),
                     NC_OK, "%s", nc_errmsg());
        cr_assert(get_becomes(c[1], keys[m], "2"), "%s", keys[m]);
        cr_assert(hot_in_l1(c[1], keys[m], "2"), "%s", keys[m]);
    }
    for (int i = 0; i < 2; i++)
        cr_expect_eq(h_stat(c[i], "sequence_gaps"), 0);
    daemons_stop(d, c, 2);
}

/* Sets cluster-node-timeout on every master (ms, as text). */
static void node_timeout(const char *ms)
{
    for (int m = 0; m < MASTERS; m++) {
        char *out = h_redis_cmd(&node[m], "CONFIG", "SET", "cluster-node-timeout", ms, NULL);
        cr_assert_str_eq(out, "OK", "master %d: %s", m, out);
        free(out);
    }
}

Test(cluster, a_master_that_falls_silent_stops_every_l1_until_it_answers_again, .timeout = 90)
{
    node_timeout("30000"); /* the frozen master must not be failed */
    h_daemon d[2];
    nc_client *c[2];
    daemons_start(d, c, 2, 2);
    int victim = 2, live = 0;
    char key[32];
    key_on(live, key, sizeof key);
    cr_assert_eq(nc_set(c[0], NC_STR("users"), NC_STR(key), NC_STR("1"), 60000, 2000), NC_OK);
    cr_assert(hot_in_l1(c[1], key, "1"));
    /* frozen, the master holds the connections open but returns no
     * heartbeat: L1 stops within the window, for a live master's key too */
    kill(node[victim].pid, SIGSTOP);
    int64_t t0 = h_now_ms();
    for (int i = 0; i < 2; i++)
        while (h_stat(c[i], "l1_serving") != 0) {
            cr_assert_lt(h_now_ms() - t0, 10000, "daemon %d still serves L1", i);
            h_sleep_ms(20);
        }
    int64_t stopped = h_now_ms() - t0;
    /* the window is 1 s; the rest is room for a loaded machine's polls */
    cr_expect_lt(stopped, 3000, "L1 served %lld ms after the master froze", (long long)stopped);
    nc_get_info info;
    void *v = NULL;
    size_t len = 0;
    int rc = nc_get_ex(c[1], NC_STR("users"), NC_STR(key), &v, &len, &info, 2000);
    nc_free(v);
    cr_expect(rc != NC_OK || info.source != NC_SOURCE_L1, "served from L1 without master %d",
              victim);
    kill(node[victim].pid, SIGCONT);
    for (int i = 0; i < 2; i++)
        while (h_stat(c[i], "l1_serving") != 1) {
            cr_assert_lt(h_now_ms() - t0, 40000, "daemon %d: no L1 after the master thawed", i);
            h_sleep_ms(50);
        }
    cr_log_info("a master frozen: L1 stopped after %lld ms", (long long)stopped);
    cr_assert_eq(nc_set(c[0], NC_STR("users"), NC_STR(key), NC_STR("2"), 60000, 2000), NC_OK,
                 "%s", nc_errmsg());
    cr_assert(get_becomes(c[1], key, "2"));
    cr_assert(hot_in_l1(c[1], key, "2"));
    daemons_stop(d, c, 2);
    node_timeout("2000");
}

/* Sets users/key to value through c, again while it fails, for up to 30 s. */
static void set_until_ok(nc_client *c, const char *key, const char *value)
{
    int64_t until = h_now_ms() + 30000;
    while (nc_set(c, NC_STR("users"), NC_STR(key), NC_STR(value), 60000, 2000) != NC_OK)
        cr_assert_lt(h_now_ms(), until, "no write of %s went through after the failover: %s",
                     key, nc_errmsg());
}

Test(cluster_failover, a_master_killed_stops_every_l1_until_it_is_replaced_then_coherence_resumes,
     .timeout = 120)
{
    h_daemon d[2];
    nc_client *c[2];
    daemons_start(d, c, 2, 3);
    /* not the master of the one channel of before (nc:v1:inval's slot) */
    int victim = (master_of("nc:v1:inval", 11) + 1) % MASTERS;
    char keys[MASTERS][32];
    for (int m = 0; m < MASTERS; m++) {
        key_on(m, keys[m], sizeof keys[m]);
        cr_assert_eq(nc_set(c[0], NC_STR("users"), NC_STR(keys[m]), NC_STR("1"), 60000, 2000),
                     NC_OK);
        cr_assert(hot_in_l1(c[1], keys[m], "1"));
    }
    int synced = 0;
    for (int i = 0; i < 40 && !synced; i++) {
        char *w = h_redis_cmd(&node[victim], "WAIT", "1", "250", NULL);
        synced = strcmp(w, "1") == 0;
        free(w);
    }
    cr_assert(synced, "the replica did not sync within 10 s");
    int64_t t0 = h_now_ms();
    h_redis_stop(&node[victim], 1);
    /* both daemons stop serving L1 at once (a key on a live master too)... */
    int live = (victim + 1) % MASTERS;
    for (int i = 0; i < 2; i++) {
        while (h_stat(c[i], "l1_serving") != 0) {
            cr_assert_lt(h_now_ms() - t0, 2000, "daemon %d still serves L1 after the kill", i);
            h_sleep_ms(10);
        }
        nc_get_info info;
        void *v = NULL;
        size_t len = 0;
        int rc = nc_get_ex(c[i], NC_STR("users"), NC_STR(keys[live]), &v, &len, &info, 2000);
        nc_free(v);
        cr_expect(rc != NC_OK || info.source != NC_SOURCE_L1,
                  "daemon %d served %s from L1 without master %d", i, keys[live], victim);
    }
    /* ...lose the subscription, subscribe again on the promoted replica and
     * serve from L1 again */
    for (int i = 0; i < 2; i++) {
        while (h_stat(c[i], "subscription_losses") < 1 || h_stat(c[i], "l1_serving") != 1) {
            cr_assert_lt(h_now_ms() - t0, 60000, "daemon %d: no L1 60 s after the kill", i);
            h_sleep_ms(100);
        }
    }
    cr_log_info("a master killed: both daemons serve L1 again after %lld ms",
                (long long)(h_now_ms() - t0));
    /* and invalidations flow again, for keys on every master: a write on one
     * reaches the other's L1 (a worker whose map still names the dead master
     * fails once, then loads the new one) */
    for (int m = 0; m < MASTERS; m++) {
        set_until_ok(c[0], keys[m], "2");
        cr_assert(hot_in_l1(c[1], keys[m], "2"), "%s", keys[m]);
        set_until_ok(c[0], keys[m], "3");
        cr_assert(get_becomes(c[1], keys[m], "3"), "the batch never reached node 1's L1 (%s)",
                  keys[m]);
    }
    /* the read lanes find the promoted replica too: L1 misses on the lost
     * master's slots find its lane down and have the map loaded again */
    for (int i = 0; i < 2; i++) {
        int64_t t1 = h_now_ms();
        for (int k = 0; h_stat(c[i], "redis_lane_up") != 1; k++) {
            cr_assert_lt(h_now_ms() - t1, 10000, "daemon %d: a read lane still down", i);
            char miss[32];
            snprintf(miss, sizeof miss, "miss%d", k);
            void *v = NULL;
            size_t len;
            nc_get(c[i], NC_STR("users"), NC_STR(miss), &v, &len, 2000);
            nc_free(v);
            h_sleep_ms(20);
        }
    }
    daemons_stop(d, c, 2);
}
