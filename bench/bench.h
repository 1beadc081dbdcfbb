/* nearcache-bench: shared options, latency histograms and report output.
 * Figures are printed as a table, or as one JSON object with --json. */
#ifndef NC_BENCH_H
#define NC_BENCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_opts {
    const char *url_a, *url_b; /* daemons */
    int rounds;
    int json;
} bench_opts;

/* Latency samples in nanoseconds. */
typedef struct bench_hist {
    int64_t *ns;
    size_t n, cap;
} bench_hist;

int64_t bench_now_ns(void);
void bench_hist_init(bench_hist *h, size_t cap);
void bench_hist_add(bench_hist *h, int64_t ns);
/* The q-quantile (0..1) in ns; sorts the samples. 0 when empty. */
int64_t bench_hist_quantile(bench_hist *h, double q);
void bench_hist_free(bench_hist *h);

/* A report: begin, one row per path (ops/s 0 to leave it out; `base` NULL
 * or the row the p50 ratio is against), end. */
void bench_report_begin(const bench_opts *o, const char *suite);
void bench_report_row(const bench_opts *o, const char *path, bench_hist *h, double ops,
                      bench_hist *base);
void bench_report_end(const bench_opts *o);

int bench_inval(const bench_opts *o);

#endif
