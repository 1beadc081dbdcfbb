/* The Stats rows, in STATS_TABLE's order; see stats.h. */
#include "stats.h"

enum { STATS_COUNTS_counter = 1, STATS_COUNTS_gauge = 0 };

const char *stats_method_name(enum stats_method m)
{
    static const char *const names[STATS_METHODS] = {
        [STATS_GET] = "get",     [STATS_SET] = "set",   [STATS_DELETE] = "delete",
        [STATS_MGET] = "mget",   [STATS_MSET] = "mset", [STATS_BUMP] = "bump",
        [STATS_ADMIN] = "admin",
    };
    return (unsigned)m < STATS_METHODS ? names[m] : "unknown";
}

void stats_rows(stats *st, const stats_gauges *g, stats_row rows[STATS_COUNT])
{
    size_t i = 0;
#define STATS_ROW_COUNTER_(name, help)                                                             \
    rows[i++] = (stats_row){#name, help, 1, (int64_t)stats_get(&st->name)};
#define STATS_ROW_GAUGE_(name, type, help)                                                         \
    rows[i++] = (stats_row){#name, help, STATS_COUNTS_##type, g->name};
    STATS_TABLE(STATS_ROW_COUNTER_, STATS_ROW_GAUGE_)
#undef STATS_ROW_COUNTER_
#undef STATS_ROW_GAUGE_
}
