/* cli_stats: how nearcache-cli shows the daemon's stats: all of them with
 * the hit ratios and the namespaces' table, as text or JSON, or one line of
 * rates per interval (`stats --watch`). Output only; the caller reads. */
#ifndef NC_CLI_STATS_H
#define NC_CLI_STATS_H

#include <stdint.h>
#include <stdio.h>

#include "nearcache.h"

/* Prints the stats st[0..n) and the namespaces' rows ns[0..nns) to out:
 * text (name and value a line, then the ratios and the table) or JSON (one
 * object). None of it is kept. */
void cli_stats_print(FILE *out, const nc_stat *st, size_t n, const nc_ns_stat *ns, size_t nns,
                     int json);

/* Reads the stats every interval_ms and prints one line of rates for each
 * interval (a header first), `count` lines (0: until interrupted). Returns
 * 0, or the nc_* error of a Stats call that failed. */
int cli_stats_watch(FILE *out, nc_client *c, int64_t interval_ms, long count, int timeout_ms);

#endif
