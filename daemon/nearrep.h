/* nearrep: the clients' near-tier reports (the NearReport method), summed
 * for the host. Each reporter (one client instance) sends its counters
 * cumulative since it started; the table keeps its last report and adds
 * only the increase to the host's totals, so the totals never go down
 * (a process that exits keeps what it reported), and a report that would
 * make them go down is refused. No I/O and no clock of its own: `now` is
 * passed in. */
#ifndef NC_NEARREP_H
#define NC_NEARREP_H

#include <stddef.h>
#include <stdint.h>

#include "nstop.h"

#define NEARREP_INTERVAL_MS 1000    /* how often clients report (NearReportReply.interval_ms) */
#define NEARREP_LIVE_INTERVALS 3    /* a reporter heard within this many intervals is a client */
#define NEARREP_MAX_NAMESPACES 256  /* namespaces in one report */
#define NEARREP_MAX_REPORTERS 4096  /* reporters kept; the least recently heard go first */
#define NEARREP_MAX_COUNT (1ULL << 62) /* a larger counter is not a real count */

typedef struct nearrep nearrep;

/* One namespace of a report (ns points into the caller's request). */
typedef struct nearrep_ns {
    const void *ns;
    size_t len;
    uint64_t hits, misses;
} nearrep_ns;

/* One report, as NearReportRequest carries it. */
typedef struct nearrep_report {
    uint64_t reporter;
    uint32_t pid;
    uint64_t hits, misses, fills_refused;
    int reported_before; /* a daemon took a report of it before: if this one does
                            not know it, the report is its starting point */
    const nearrep_ns *ns;
    size_t n_ns;
} nearrep_report;

/* The host's totals, and how many reporters were heard lately. */
typedef struct nearrep_totals {
    uint64_t hits, misses, fills_refused;
    uint64_t clients;
} nearrep_totals;

/* Makes an empty table. namespaces (may be NULL; not owned, must outlive
 * the table) gets the per-namespace increases. Returns 0 and hands it to *out (the caller
 * owns it; free with nearrep_destroy()), or ENOMEM. */
int nearrep_create(nearrep **out, nstop *namespaces);

/* Frees the table. Accepts NULL. */
void nearrep_destroy(nearrep *t);

/* Takes one report heard at now_ms; max_ns_len is the longest namespace
 * it may name (max_namespace_size). Returns 0 when its increase was added,
 * or a gRPC status code with why in err (nothing added):
 * INVALID_ARGUMENT for a report that breaks a rule (reporter 0, a counter
 * past NEARREP_MAX_COUNT, too many, empty, long or repeated namespaces,
 * namespaces adding up to more than the totals, a counter lower than in
 * the reporter's last report: the report is then kept as the reporter's
 * new starting point), FAILED_PRECONDITION when another live process
 * reports under the same id, RESOURCE_EXHAUSTED when the table is full of
 * live reporters. Any thread (takes the table's lock). */
int nearrep_take(nearrep *t, const nearrep_report *r, size_t max_ns_len, int64_t now_ms, char *err,
                 size_t errlen);

/* Reads the totals; clients counts the reporters heard within
 * NEARREP_LIVE_INTERVALS intervals before now_ms. Any thread. */
void nearrep_read(nearrep *t, int64_t now_ms, nearrep_totals *out);

#endif
