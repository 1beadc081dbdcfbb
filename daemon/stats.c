/* The Stats rows, in STATS_TABLE's order; see stats.h. */
#include "stats.h"

void stats_rows(stats *st, const stats_gauges *g, stats_row rows[STATS_COUNT])
{
    size_t i = 0;
#define STATS_ROW_COUNTER_(name) rows[i++] = (stats_row){#name, (int64_t)stats_get(&st->name)};
#define STATS_ROW_GAUGE_(name)   rows[i++] = (stats_row){#name, g->name};
    STATS_TABLE(STATS_ROW_COUNTER_, STATS_ROW_GAUGE_)
#undef STATS_ROW_COUNTER_
#undef STATS_ROW_GAUGE_
}
