/* Tests of daemon/stats.c: the Stats rows come from the one table, in its
 * order, counters from struct stats and gauges from stats_gauges. */
#include <criterion/criterion.h>

#include <string.h>

#include "stats.h"

Test(stats, rows_list_every_name_once)
{
    stats st = {0};
    stats_gauges g = {0};
    stats_row rows[STATS_COUNT];
    stats_rows(&st, &g, rows);
    for (size_t i = 0; i < STATS_COUNT; i++) {
        cr_assert(rows[i].name != NULL && rows[i].name[0] != '\0');
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(rows[i].name, rows[j].name);
    }
    cr_assert_str_eq(rows[0].name, "requests");
    cr_assert_str_eq(rows[STATS_COUNT - 1].name, "uptime_ms");
}

static int64_t row(const stats_row *rows, const char *name)
{
    for (size_t i = 0; i < STATS_COUNT; i++)
        if (strcmp(rows[i].name, name) == 0)
            return rows[i].value;
    cr_assert_fail("no stat %s", name);
    return -1;
}

Test(stats, rows_read_counters_and_gauges)
{
    stats st = {0};
    stats_gauges g = {.l1_entries = 7, .uptime_ms = 1234};
    stats_inc(&st.l1_hits);
    stats_inc(&st.l1_hits);
    stats_inc(&st.redis_lane_retries);
    stats_row rows[STATS_COUNT];
    stats_rows(&st, &g, rows);
    cr_assert_eq(row(rows, "l1_hits"), 2);
    cr_assert_eq(row(rows, "redis_lane_retries"), 1);
    cr_assert_eq(row(rows, "l1_entries"), 7);
    cr_assert_eq(row(rows, "uptime_ms"), 1234);
    cr_assert_eq(row(rows, "gets"), 0);
}
