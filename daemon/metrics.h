/* metrics: the daemon's HTTP endpoint (nng's HTTP server) for Prometheus and
 * for health checks. /metrics renders STATS_TABLE and the latency histograms
 * in the Prometheus text format at each scrape; /healthz answers 200 while
 * the process runs; /readyz answers 200 only while the source says ready.
 * Nothing is kept between scrapes: every number is read when asked for. */
#ifndef NC_METRICS_H
#define NC_METRICS_H

#include <stddef.h>

#include "stats.h"

typedef struct metrics metrics;

/* Where the numbers come from; none of it owned. gauges() and ready() are
 * called on nng's threads, concurrently with requests. */
typedef struct metrics_source {
    stats *st;
    void (*gauges)(void *arg, stats_gauges *g);
    /* 1 when ready to serve; else 0 with a one-line reason in why. */
    int (*ready)(void *arg, char *why, size_t len);
    void *arg;
} metrics_source;

/* A growing text buffer; oom is set when a write could not grow it. */
typedef struct metrics_text {
    char *p;
    size_t len, cap;
    int oom;
} metrics_text;

/* Appends the Prometheus text of everything in src to out (free out->p). */
void metrics_render(const metrics_source *src, metrics_text *out);

/* Serves HTTP on `listen` (HOST:PORT). Returns 0 and hands the endpoint to
 * *out (the caller owns it; free with metrics_destroy()), or an nng error
 * with a message in err. src is copied; what it points to must outlive the
 * endpoint. */
int metrics_create(metrics **out, const char *listen, const metrics_source *src, char *err,
                   size_t errlen);

/* From now on /readyz answers 503 "stopping". Any thread; accepts NULL. */
void metrics_stopping(metrics *m);

/* Stops serving and frees the endpoint. Accepts NULL. */
void metrics_destroy(metrics *m);

#endif
