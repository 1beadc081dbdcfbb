/* Integration: nearcached against a Redis user with exactly the rules of
 * docs/redis-acl.txt (h_redis_least_privilege()). Every path that sends
 * Redis a command runs once: L1 and lane reads, writes, deletes, leases,
 * negative and stale-while-revalidate entries, sliding TTLs, batches, a
 * bump, invalidation between two daemons, a script cache emptied under
 * the daemon (EVAL), a /DB URL (SELECT), WAIT after a write, and a Redis
 * restart (ROLE, sent only behind Sentinel, is not run here). Then Redis's
 * ACL LOG must be empty and no call may have failed: a command the rules
 * do not allow cannot slip in unnoticed. docs/operations.md quotes the
 * rules, which the last test checks. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static h_fleet fx;

TestSuite(redisacl, .timeout = 90);

#define T 3000 /* ms, every call */

static void get_is(nc_client *c, const char *ns, const char *key, const char *want)
{
    void *v;
    size_t len;
    int rv = nc_get(c, NC_STR(ns), NC_STR(key), &v, &len, T);
    cr_assert_eq(rv, NC_OK, "get %s %s: %s", ns, key, nc_errmsg());
    cr_assert_eq(len, strlen(want));
    cr_assert_eq(memcmp(v, want, len), 0);
    nc_free(v);
}

static void every_path(nc_client *a, nc_client *b)
{
    cr_assert_eq(nc_set(a, NC_STR("u"), NC_STR("k"), NC_STR("v1"), 60000, T), NC_OK, "%s",
                 nc_errmsg());
    get_is(a, "u", "k", "v1"); /* L1 */
    get_is(b, "u", "k", "v1"); /* the lane */
    cr_assert_eq(nc_set(a, NC_STR("u"), NC_STR("k"), NC_STR("v2"), 60000, T), NC_OK);
    for (int i = 0; i < 200; i++) { /* b hears the invalidation */
        void *v;
        size_t len;
        cr_assert_eq(nc_get(b, NC_STR("u"), NC_STR("k"), &v, &len, T), NC_OK, "%s", nc_errmsg());
        int now = len == 2 && memcmp(v, "v2", 2) == 0;
        nc_free(v);
        if (now)
            break;
        cr_assert_lt(i, 199, "the invalidation never reached the other daemon");
        h_sleep_ms(10);
    }
    int existed = 0;
    cr_assert_eq(nc_del(a, NC_STR("u"), NC_STR("k"), &existed, T), NC_OK, "%s", nc_errmsg());
    cr_assert(existed);
    /* a lease: granted on a miss, then a Set with its token */
    nc_get_opts lease = {.lease = 1};
    nc_get_info info;
    void *v;
    size_t len;
    cr_assert_eq(nc_get_opt(a, NC_STR("u"), NC_STR("l"), &lease, &v, &len, &info, T),
                 NC_ENOTFOUND, "%s", nc_errmsg());
    cr_assert_eq(info.lease, NC_LEASE_GRANTED);
    nc_set_opts with = {.lease_token = info.lease_token};
    cr_assert_eq(nc_set_opt(a, NC_STR("u"), NC_STR("l"), NC_STR("x"), 60000, &with, T), NC_OK,
                 "%s", nc_errmsg());
    nc_set_opts neg = {.negative = 1}, swr = {.stale_while_revalidate_ms = 5000};
    cr_assert_eq(nc_set_opt(a, NC_STR("u"), NC_STR("n"), NC_STR(""), 60000, &neg, T), NC_OK,
                 "%s", nc_errmsg());
    cr_assert_eq(nc_get(b, NC_STR("u"), NC_STR("n"), &v, &len, T), NC_ENOTFOUND);
    cr_assert_eq(nc_set_opt(a, NC_STR("u"), NC_STR("s"), NC_STR("y"), 60000, &swr, T), NC_OK,
                 "%s", nc_errmsg());
    cr_assert_eq(nc_get(b, NC_STR("u"), NC_STR("s"), &v, &len, T), NC_OK, "%s", nc_errmsg());
    nc_free(v);
    nc_get_opts slide = {.slide_ttl_ms = 60000}; /* a miss in b's L1: the script slides it */
    cr_assert_eq(nc_set(a, NC_STR("u"), NC_STR("t"), NC_STR("w"), 60000, T), NC_OK);
    cr_assert_eq(nc_get_opt(b, NC_STR("u"), NC_STR("t"), &slide, &v, &len, &info, T), NC_OK,
                 "%s", nc_errmsg());
    nc_free(v);
    nc_entry e[] = {{NC_STR("1"), NC_STR("a"), 60000}, {NC_STR("2"), NC_STR("b"), 0}};
    cr_assert_eq(nc_mset(a, NC_STR("m"), e, 2, T), NC_OK, "%s", nc_errmsg());
    nc_bytes keys[] = {NC_STR("1"), NC_STR("2"), NC_STR("3")};
    nc_item *items;
    cr_assert_eq(nc_mget(b, NC_STR("m"), keys, 3, &items, T), NC_OK, "%s", nc_errmsg());
    cr_assert(items[0].found && items[1].found && !items[2].found);
    nc_items_free(items, 3);
    uint64_t version;
    cr_assert_eq(nc_bump(a, NC_STR("m"), &version, T), NC_OK, "%s", nc_errmsg());
}

/* Redis's ACL LOG: "" when nothing was refused. */
static void no_refusals(void)
{
    char *log = h_redis_cmd(&fx.redis, "ACL", "LOG", NULL);
    cr_assert_str_eq(log, "", "Redis refused the daemon a command:\n%s", log);
    free(log);
    for (int i = 0; i < fx.n; i++)
        cr_assert_eq(h_stat(fx.cl[i], "redis_errors"), 0, "daemon %d had Redis errors", i);
}

Test(redisacl, every_redis_path_runs_as_the_least_privileged_user)
{
    h_fleet_start(&fx, 0, NULL);
    h_redis_least_privilege(&fx.redis, "nc-acl-pw");
    h_fleet_add(&fx, &fx.redis, NULL);
    h_fleet_add(&fx, &fx.redis, NULL);
    every_path(fx.cl[0], fx.cl[1]);
    free(h_redis_cmd(&fx.redis, "SCRIPT", "FLUSH", NULL)); /* the next write sends EVAL */
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("u"), NC_STR("e"), NC_STR("z"), 60000, T), NC_OK, "%s",
                 nc_errmsg());
    h_redis db1 = fx.redis; /* SELECT 1 */
    snprintf(db1.url, sizeof db1.url, "redis://:nc-acl-pw@127.0.0.1:%d/1", fx.redis.port);
    h_daemon *d = h_fleet_add(&fx, &db1, NULL);
    (void)d;
    every_path(fx.cl[2], fx.cl[2]);
    no_refusals();
    /* WAIT after a write: no replica acknowledges, so the write is
     * UNAVAILABLE, but for that reason, not for a refused command. */
    h_fleet_add(&fx, &fx.redis, "--redis-wait-replicas", "1", "--redis-wait-timeout", "10ms", NULL);
    nc_client *w = fx.cl[3];
    cr_assert_eq(nc_set(w, NC_STR("u"), NC_STR("w"), NC_STR("x"), 60000, T), NC_EUNAVAILABLE);
    cr_assert(strstr(nc_errmsg(), "0 of the 1 replicas") != NULL, "%s", nc_errmsg());
    /* Each write answers only once done with its request (a Set read it
     * after the answer had freed it: ASan's heap-use-after-free). */
    nc_entry e[] = {{NC_STR("1"), NC_STR("a"), 60000}};
    cr_assert_eq(nc_mset(w, NC_STR("m"), e, 1, T), NC_EUNAVAILABLE);
    cr_assert(strstr(nc_errmsg(), "the MSet is done") != NULL, "%s", nc_errmsg());
    cr_assert_eq(nc_del(w, NC_STR("u"), NC_STR("w"), NULL, T), NC_EUNAVAILABLE);
    cr_assert(strstr(nc_errmsg(), "the delete is done") != NULL, "%s", nc_errmsg());
    cr_assert_eq(nc_bump(w, NC_STR("m"), NULL, T), NC_EUNAVAILABLE);
    cr_assert(strstr(nc_errmsg(), "the bump is done") != NULL, "%s", nc_errmsg());
    char *log = h_redis_cmd(&fx.redis, "ACL", "LOG", NULL);
    cr_assert_str_eq(log, "", "Redis refused the daemon a command:\n%s", log);
    free(log);
    h_fleet_stop(&fx);
}

Test(redisacl, a_redis_restart_reconnects_as_that_user)
{
    h_fleet_start(&fx, 0, NULL);
    h_redis_least_privilege(&fx.redis, "nc-acl-pw");
    h_fleet_add(&fx, &fx.redis, NULL);
    h_fleet_add(&fx, &fx.redis, NULL);
    h_redis_stop(&fx.redis, 1);
    h_redis_restart(&fx.redis); /* the rules again, on an empty Redis */
    for (int i = 0; i < 500; i++) { /* both reconnect and subscribe */
        int up0 = 0, up1 = 0;
        nc_ping(fx.cl[0], &up0, T), nc_ping(fx.cl[1], &up1, T);
        if (up0 && up1 && h_stat(fx.cl[0], "l1_serving") && h_stat(fx.cl[1], "l1_serving"))
            break;
        cr_assert_lt(i, 499, "the daemons did not come back");
        h_sleep_ms(20);
    }
    every_path(fx.cl[0], fx.cl[1]);
    no_refusals();
    h_fleet_stop(&fx);
}

Test(redisacl, the_operations_docs_quote_the_rules)
{
    char *rules = h_read_file(NC_REDIS_ACL, NULL), *ops = h_read_file(NC_OPERATIONS_MD, NULL);
    for (char *line = strtok(rules, "\n"); line != NULL; line = strtok(NULL, "\n"))
        if (line[0] != '#')
            cr_expect(strstr(ops, line) != NULL, "docs/operations.md does not quote \"%s\"", line);
    free(rules);
    free(ops);
}
