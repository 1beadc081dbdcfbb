/* nearcache-bench: shared options, latency histograms and report output.
 * Figures are printed as a table, or as one JSON object with --json. Every
 * comparison is made between paths measured in the same run, interleaved in
 * slices, so that a noisy machine moves both sides of a ratio alike. */
#ifndef NC_BENCH_H
#define NC_BENCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_opts {
    /* inval */
    const char *url_a, *url_b; /* daemons */
    int rounds;
    int json;
    /* load: suite, run, memory */
    const char *url;             /* nearcached over the local Redis: L1 hit, miss, Zipf */
    const char *url_l2;          /* nearcached with a tiny l1_max_ttl: L2 hits */
    const char *url_remote;      /* nearcached whose Redis is behind the delay link */
    const char *redis;           /* the Redis behind url and url_l2: redis://H:P or unix://PATH */
    const char *redis_remote;    /* the Redis behind url_remote, through the same link */
    const char *redis_near;      /* the remote Redis without the delay, to measure the link */
    const char *url_cluster;     /* nearcached on a Redis Cluster, tiny l1_max_ttl: L2 hits */
    const char *url_l2_tls;      /* as url_l2, its Redis (the same) over TLS */
    const char *url_l2_other;    /* as url_l2, a daemon of another build (before/after) */
    const char *redis_cluster;   /* a node of that cluster: redis://H:P */
    int pid_cluster;             /* its pid (0: unknown) */
    const char *echo_url;        /* an echo server already running; NULL: start one */
    const char *tmpdir;          /* where the bench's own echo socket goes */
    const char *link;            /* how the remote link is made, for the report */
    double link_rtt_us;          /* what the link is meant to add to a round trip (250) */
    const char *prefix;          /* Redis key prefix of the daemons (nc:v1) */
    int pid, pid_l2, pid_remote; /* daemons' pids, for server CPU per op (0: unknown) */
    size_t keys, value_size, batch; /* batch: keys per MGet */
    double read_ratio, zipf_s;
    int threads, many; /* client threads of `run`; the suite's "many clients" level */
    double duration_s, warmup_s;
    uint64_t ops;
    int slices;             /* each path is measured in this many interleaved slices */
    const char *md_out;     /* markdown report to write, or NULL */
    const char *plot_out;   /* gnuplot data to write, or NULL */
    double fill_factor;     /* memory: keep filling until this x the entries at first eviction */
    uint64_t l1_max_memory; /* memory: the daemon's budget (read from its stats when 0) */
    int load_ms;            /* stampede: how long a database load takes */
} bench_opts;

/* Latency samples in nanoseconds; the array grows as needed. */
typedef struct bench_hist {
    int64_t *ns;
    size_t n, cap;
} bench_hist;

int64_t bench_now_ns(void);
void bench_hist_init(bench_hist *h, size_t cap);
void bench_hist_add(bench_hist *h, int64_t ns);
/* Appends every sample of `from` to `to`. */
void bench_hist_merge(bench_hist *to, const bench_hist *from);
/* The q-quantile (0..1) in ns; sorts the samples. 0 when empty. */
int64_t bench_hist_quantile(bench_hist *h, double q);
void bench_hist_free(bench_hist *h);

/* A report: begin, one row per path (ops/s 0 to leave it out; `base` NULL
 * or the row the p50 ratio is against), end. */
void bench_report_begin(const bench_opts *o, const char *suite);
void bench_report_row(const bench_opts *o, const char *path, bench_hist *h, double ops,
                      bench_hist *base);
void bench_report_end(const bench_opts *o);

/* The measured figures of one path at one concurrency. */
typedef struct bench_result {
    char path[32];
    int threads;
    bench_hist hist;
    uint64_t ops, errors;
    uint64_t l1, l2, notfound; /* nearcache replies by source; misses */
    double seconds;            /* measured wall time, summed over slices */
    double server_cpu_s;       /* CPU time of the server process (daemon or echo) */
    double client_cpu_s;       /* CPU time of this process */
    double server_switches;    /* context switches of the server's threads */
    int64_t p50, p99, p999;    /* filled by bench_result_finish() */
} bench_result;

/* Sorts the samples and fills the quantiles. */
void bench_result_finish(bench_result *r);
double bench_result_ops(const bench_result *r);

/* A run: `specs` are PATH or PATH@THREADS. Measures them interleaved and
 * hands back an array of results, in order (the caller frees it with
 * bench_results_free()). Returns 0, or 1 after printing why. */
int bench_load(const bench_opts *o, const char *const *specs, size_t nspecs, bench_result **out);
void bench_results_free(bench_result *r, size_t n);

/* Writes a preloaded key set: key i of `keys` into the Redis at `url`.
 * Returns 0, or 1 after printing why. */
int bench_preload(const bench_opts *o, const char *url);

/* Subcommands. Each returns the process exit code. */
int bench_inval(const bench_opts *o);
int bench_run(const bench_opts *o, const char *const *specs, size_t nspecs);
int bench_suite(const bench_opts *o);
int bench_memory(const bench_opts *o);
int bench_stampede(const bench_opts *o);
int bench_echo_main(const char *url);

/* Starts an echo server on `url` in a child process (before this process
 * uses nng). Returns its pid, or -1. */
int bench_echo_fork(const char *url);
/* Stops the child started by bench_echo_fork(). */
void bench_echo_stop(int pid);

/* The reporters of load results: table (stdout), JSON (stdout), markdown
 * and gnuplot data (files). */
void bench_print_results(const bench_opts *o, bench_result *r, size_t n);
void bench_json_rows(bench_result *r, size_t n);
void bench_json_settings(const bench_opts *o);
int bench_write_md(const char *path, bench_result *r, size_t n);
int bench_write_plot(const char *path, bench_result *r, size_t n);
/* A one-line description of a path. Constant string. */
const char *bench_path_about(const char *name);
/* Finds the result of `path` at `threads` (0: any), or NULL. */
bench_result *bench_find(bench_result *r, size_t n, const char *path, int threads);

#endif
