/* Tests of daemon/stats.c: the Stats rows come from the one table, in its
 * order, counters from struct stats and gauges from stats_gauges; the
 * docs' list follows the table. */
#include <criterion/criterion.h>

#include <stdio.h>
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

Test(stats, rows_say_whether_they_count_or_gauge_and_carry_help)
{
    stats st = {0};
    stats_gauges g = {0};
    stats_row rows[STATS_COUNT];
    stats_rows(&st, &g, rows);
    for (size_t i = 0; i < STATS_COUNT; i++)
        cr_assert(rows[i].help != NULL && rows[i].help[0] != '\0', "%s has no help", rows[i].name);
    cr_assert_eq(rows[0].counts, 1); /* requests: a counter of struct stats */
    for (size_t i = 0; i < STATS_COUNT; i++) {
        if (strcmp(rows[i].name, "l1_evictions") == 0)
            cr_assert_eq(rows[i].counts, 1, "a module's count only grows");
        if (strcmp(rows[i].name, "l1_entries") == 0)
            cr_assert_eq(rows[i].counts, 0);
    }
}

Test(stats, names_every_method_of_the_histograms)
{
    for (int m = 0; m < STATS_METHODS; m++)
        cr_assert_str_neq(stats_method_name(m), "unknown");
    cr_assert_str_eq(stats_method_name(STATS_BUMP), "bump");
}

/* The docs' list (docs/protocol.md, "### Stats") names the table's stats in
 * its order, so the docs' list comes from the table too. */
Test(stats, the_protocol_docs_list_every_stat_in_table_order)
{
    FILE *f = fopen(NC_PROTOCOL_MD, "r");
    cr_assert_not_null(f, "cannot open %s", NC_PROTOCOL_MD);
    stats st = {0};
    stats_gauges g = {0};
    stats_row rows[STATS_COUNT];
    stats_rows(&st, &g, rows);
    char line[1024];
    size_t n = 0;
    int in_stats = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "### ", 4) == 0)
            in_stats = strcmp(line, "### Stats\n") == 0;
        if (!in_stats || strncmp(line, "| `", 3) != 0)
            continue;
        char *end = strchr(line + 3, '`');
        cr_assert_not_null(end);
        *end = '\0';
        cr_assert_lt(n, STATS_COUNT, "docs list %s beyond the table", line + 3);
        cr_assert_str_eq(line + 3, rows[n].name, "docs row %zu", n);
        const char *type = rows[n].counts ? "| counter |" : "| gauge |";
        cr_assert(strncmp(end + 2, type, strlen(type)) == 0, "docs give %s another type than %s",
                  rows[n].name, type);
        n++;
    }
    fclose(f);
    cr_assert_eq(n, STATS_COUNT, "docs list %zu of %d stats", n, STATS_COUNT);
}
