/* Integration: MGet and MSet, many keys of one namespace in one request,
 * on two nodes over one Redis: hits and misses in one answer, one
 * invalidation for a whole MSet, and the batch limits. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NODES 2

static h_fleet fx;

static void up(void)
{
    h_fleet_start(&fx, NODES, "--lease-ttl", "1s", "--log-level", "debug", NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
}

TestSuite(batch, .init = up, .fini = down, .timeout = 60);

Test(batch, mget_answers_hits_and_misses_in_one_request)
{
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("a"), NC_STR("1"), 60000, 0), NC_OK);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("b"), NC_STR("2"), 60000, 0), NC_OK);
    nc_set_opts neg = {.negative = 1};
    cr_assert_eq(nc_set_opt(fx.cl[0], NC_STR("ns"), NC_STR("gone"), NC_STR(""), 60000, &neg, 0),
                 NC_OK);
    void *v;
    size_t len;
    cr_assert_eq(nc_get(fx.cl[1], NC_STR("ns"), NC_STR("a"), &v, &len, 0), NC_OK); /* a: L1 */
    nc_free(v);
    cr_assert_eq(nc_get(fx.cl[1], NC_STR("ns"), NC_STR("a"), &v, &len, 0), NC_OK);
    nc_free(v);
    nc_bytes keys[] = {NC_STR("a"), NC_STR("missing"), NC_STR("b"), NC_STR("gone")};
    nc_item *items;
    cr_assert_eq(nc_mget(fx.cl[1], NC_STR("ns"), keys, 4, &items, 0), NC_OK, "%s", nc_errmsg());
    cr_assert(items[0].found && strcmp(items[0].value, "1") == 0);
    cr_assert_eq(items[0].source, NC_SOURCE_L1);
    cr_assert_not(items[1].found);
    cr_assert_not(items[1].negative);
    cr_assert(items[2].found && strcmp(items[2].value, "2") == 0);
    cr_assert_eq(items[2].source, NC_SOURCE_L2);
    cr_assert_not(items[3].found);
    cr_assert(items[3].negative);
    nc_items_free(items, 4);
    /* b is in L1 now too */
    nc_get_info info;
    cr_assert_eq(nc_get_ex(fx.cl[1], NC_STR("ns"), NC_STR("b"), &v, &len, &info, 0), NC_OK);
    nc_free(v);
    cr_assert_eq(info.source, NC_SOURCE_L1);
}

Test(batch, mset_writes_all_and_other_nodes_drop_them)
{
    nc_entry first[] = {{NC_STR("x"), NC_STR("x1"), 60000}, {NC_STR("y"), NC_STR("y1"), 0}};
    cr_assert_eq(nc_mset(fx.cl[0], NC_STR("ns"), first, 2, 0), NC_OK, "%s", nc_errmsg());
    void *v;
    size_t len;
    nc_get_info info;
    for (int i = 0; i < 3; i++) { /* hot on node 1 */
        cr_assert_eq(nc_get_ex(fx.cl[1], NC_STR("ns"), NC_STR("x"), &v, &len, &info, 0), NC_OK);
        nc_free(v);
        cr_assert_eq(nc_get_ex(fx.cl[1], NC_STR("ns"), NC_STR("y"), &v, &len, &info, 0), NC_OK);
        nc_free(v);
    }
    cr_assert_eq(info.source, NC_SOURCE_L1);
    int64_t sent = h_stat(fx.cl[0], "invalidations_sent");
    nc_entry second[] = {{NC_STR("x"), NC_STR("x2"), 60000}, {NC_STR("y"), NC_STR("y2"), 60000}};
    cr_assert_eq(nc_mset(fx.cl[0], NC_STR("ns"), second, 2, 0), NC_OK);
    cr_assert_eq(h_stat(fx.cl[0], "invalidations_sent"), sent + 1, "one message for the batch");
    int64_t give_up = h_now_ms() + 2000;
    for (;;) {
        nc_bytes keys[] = {NC_STR("x"), NC_STR("y")};
        nc_item *items;
        cr_assert_eq(nc_mget(fx.cl[1], NC_STR("ns"), keys, 2, &items, 0), NC_OK);
        int fresh = strcmp(items[0].value, "x2") == 0 && strcmp(items[1].value, "y2") == 0;
        nc_items_free(items, 2);
        if (fresh)
            break;
        cr_assert_lt(h_now_ms(), give_up, "node 1 kept the old values");
    }
    char *ttl = h_redis_cmd(&fx.redis, "PTTL", H_DATA_KEY(&fx.redis, "ns", "y"), NULL);
    cr_assert_gt(atol(ttl), 50000);
    free(ttl);
}

Test(batch, batches_over_max_batch_are_refused)
{
    nc_bytes keys[1001];
    for (int i = 0; i < 1001; i++)
        keys[i] = NC_STR("k");
    nc_item *items;
    cr_assert_eq(nc_mget(fx.cl[0], NC_STR("ns"), keys, 1001, &items, 0), NC_EINVAL);
    cr_assert_not_null(strstr(nc_errmsg(), "max_batch"), "%s", nc_errmsg());
    cr_assert_eq(nc_mget(fx.cl[0], NC_STR("ns"), keys, 0, &items, 0), NC_EINVAL);
}
