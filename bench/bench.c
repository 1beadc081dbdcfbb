/* nearcache-bench: the driver, latency histograms and the inval report.
 * Subcommands: `inval` (invalidation delivery between two daemons, see
 * bench_inval.c), `run` and `suite` (paths against their baselines, see
 * bench_load.c and bench_suite.c), `memory` (bench_memory.c), `stampede`
 * (database loads of a cold hot key, bench_stampede.c) and `echo-server`
 * (bench_echo.c). */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_hist_init(bench_hist *h, size_t cap)
{
    h->ns = malloc(sizeof *h->ns * (cap ? cap : 1));
    h->n = 0;
    h->cap = h->ns != NULL ? cap : 0;
}

/* Grows the sample array to hold `need` samples. Returns 0, or -1 (the
 * samples that do not fit are dropped). */
static int hist_reserve(bench_hist *h, size_t need)
{
    if (need <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 1024;
    while (cap < need)
        cap *= 2;
    int64_t *ns = realloc(h->ns, sizeof *ns * cap);
    if (ns == NULL)
        return -1;
    h->ns = ns;
    h->cap = cap;
    return 0;
}

void bench_hist_add(bench_hist *h, int64_t ns)
{
    if (h->n < h->cap || hist_reserve(h, h->n + 1) == 0)
        h->ns[h->n++] = ns;
}

void bench_hist_merge(bench_hist *to, const bench_hist *from)
{
    if (from->n == 0 || hist_reserve(to, to->n + from->n) != 0)
        return;
    memcpy(to->ns + to->n, from->ns, sizeof *from->ns * from->n);
    to->n += from->n;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t bench_hist_quantile(bench_hist *h, double q)
{
    if (h->n == 0)
        return 0;
    qsort(h->ns, h->n, sizeof *h->ns, cmp64);
    size_t i = (size_t)(q * (double)(h->n - 1) + 0.5);
    return h->ns[i];
}

void bench_hist_free(bench_hist *h)
{
    free(h->ns);
    h->ns = NULL;
}

static int rows;

void bench_report_begin(const bench_opts *o, const char *suite)
{
    rows = 0;
    if (o->json)
        printf("{\"suite\": \"%s\", \"rows\": [", suite);
    else
        printf("%-32s %8s %10s %10s %10s %10s %10s\n", "path", "n", "p50 us", "p99 us", "p999 us",
               "max us", "p50 ratio");
}

void bench_report_row(const bench_opts *o, const char *path, bench_hist *h, double ops,
                      bench_hist *base)
{
    double p50 = (double)bench_hist_quantile(h, 0.5) / 1e3;
    double p99 = (double)bench_hist_quantile(h, 0.99) / 1e3;
    double p999 = (double)bench_hist_quantile(h, 0.999) / 1e3;
    double max = (double)bench_hist_quantile(h, 1.0) / 1e3;
    double ratio =
        base != NULL && base->n > 0 ? p50 / ((double)bench_hist_quantile(base, 0.5) / 1e3) : 0;
    if (o->json) {
        printf("%s{\"path\": \"%s\", \"n\": %zu, \"p50_us\": %.1f, \"p99_us\": %.1f, "
               "\"p999_us\": %.1f, \"max_us\": %.1f",
               rows ? ", " : "", path, h->n, p50, p99, p999, max);
        if (ops > 0)
            printf(", \"ops_per_s\": %.0f", ops);
        if (base != NULL)
            printf(", \"p50_ratio\": %.2f", ratio);
        printf("}");
    } else {
        printf("%-32s %8zu %10.1f %10.1f %10.1f %10.1f", path, h->n, p50, p99, p999, max);
        if (base != NULL)
            printf(" %9.2fx", ratio);
        printf("\n");
    }
    rows++;
}

void bench_report_end(const bench_opts *o)
{
    if (o->json)
        printf("]}\n");
}

/* Prints the usage to `out` and returns `code`: stdout and 0 for --help,
 * stderr and 2 for a usage error. */
static int usage(FILE *out, int code)
{
    fprintf(out,
            "usage: nearcache-bench -h | --help | --version\n"
            "       nearcache-bench inval --a URL --b URL [--rounds N] [--json]\n"
            "       nearcache-bench suite [LOAD OPTIONS]\n"
            "       nearcache-bench run PATH[@THREADS]... [LOAD OPTIONS]\n"
            "       nearcache-bench memory --url URL --pid PID [--value-size N] [--threads N]\n"
            "       nearcache-bench stampede --a URL [--b URL] --redis URL [--threads N (16)]\n"
            "                                [--rounds N] [--load-ms MS (5)] [--json]\n"
            "       nearcache-bench echo-server --listen URL\n"
            "paths: echo echo-percall l1 l1-raw l2 miss zipf redis-get redis-miss redis-zipf\n"
            "       zipf-remote redis-zipf-remote redis-get-remote redis-get-near mget redis-mget\n"
            "       near zipf-near zipf-remote-near (libnearcache with a near tier)\n"
            "       set redis-set mget-l2; on a Redis Cluster: l2-cluster redis-get-cluster\n"
            "       set-cluster redis-set-cluster mget-cluster redis-mget-cluster\n"
            "       l2-tls l2-other (L2 hits through --url-l2-tls, --url-l2-other)\n"
            "load options:\n"
            "  --url URL            nearcached (L1 hit, miss, Zipf)\n"
            "  --url-l2 URL         nearcached with a tiny --l1-max-ttl (L2 hits)\n"
            "  --url-remote URL     nearcached whose Redis is behind the delay link\n"
            "  --redis URL          the Redis of --url/--url-l2 (redis://H:P, unix://PATH)\n"
            "  --redis-remote URL   the remote Redis through the delay link\n"
            "  --redis-near URL     the remote Redis without the delay (link check)\n"
            "  --url-cluster URL    nearcached on a Redis Cluster, tiny --l1-max-ttl (L2 hits)\n"
            "  --url-l2-tls URL     as --url-l2, its Redis over TLS (path l2-tls)\n"
            "  --url-l2-other URL   as --url-l2, another build's daemon (path l2-other)\n"
            "  --redis-cluster URL  a node of that cluster (redis://H:P)\n"
            "  --echo-url URL       use a running echo server (default: start one)\n"
            "  --tmpdir DIR         where the bench's echo socket goes (default /tmp)\n"
            "  --link TEXT          how the remote link is made, for the report\n"
            "  --link-rtt-us N      what the link should add to a round trip (250)\n"
            "  --pid/--pid-l2/--pid-remote/--pid-cluster PID  daemons, for server CPU per op\n"
            "  --keys N (10000)  --value-size N (100)  --read-ratio R (0.9)  --zipf-s S (0.99)\n"
            "  --batch N (10, keys per MGet)\n"
            "  --threads N (1)  --many N (16, the suite's many-clients level)\n"
            "  --duration S (2) or --ops N;  --warmup S (0.5);  --slices N (3)\n"
            "  --prefix TEXT (nc:v1)  --md FILE  --plot FILE  --json\n"
            "memory: --fill-factor F (1.3)  --l1-max-memory BYTES (from the daemon)\n");
    return code;
}

/* Takes one option at argv[*i]. Returns 0, or -1 when it is unknown or
 * lacks its value. */
static int take_opt(bench_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--json") == 0) {
        o->json = 1;
        return 0;
    }
    if (*i + 1 >= argc)
        return -1;
    const char *v = argv[++*i];
    const struct {
        const char *name;
        const char **str;
    } strs[] = {{"--a", &o->url_a},
                {"--b", &o->url_b},
                {"--url", &o->url},
                {"--url-l2", &o->url_l2},
                {"--url-remote", &o->url_remote},
                {"--redis", &o->redis},
                {"--redis-remote", &o->redis_remote},
                {"--redis-near", &o->redis_near},
                {"--url-cluster", &o->url_cluster},
                {"--url-l2-tls", &o->url_l2_tls},
                {"--url-l2-other", &o->url_l2_other},
                {"--redis-cluster", &o->redis_cluster},
                {"--echo-url", &o->echo_url},
                {"--listen", &o->echo_url},
                {"--tmpdir", &o->tmpdir},
                {"--link", &o->link},
                {"--prefix", &o->prefix},
                {"--md", &o->md_out},
                {"--plot", &o->plot_out}};
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++)
        if (strcmp(a, strs[k].name) == 0) {
            *strs[k].str = v;
            return 0;
        }
    char *end;
    double d = strtod(v, &end);
    if (*end != '\0' || d < 0)
        return -1;
    if (strcmp(a, "--rounds") == 0)
        o->rounds = (int)d;
    else if (strcmp(a, "--pid") == 0)
        o->pid = (int)d;
    else if (strcmp(a, "--pid-l2") == 0)
        o->pid_l2 = (int)d;
    else if (strcmp(a, "--pid-remote") == 0)
        o->pid_remote = (int)d;
    else if (strcmp(a, "--pid-cluster") == 0)
        o->pid_cluster = (int)d;
    else if (strcmp(a, "--keys") == 0 && d >= 1)
        o->keys = (size_t)d;
    else if (strcmp(a, "--batch") == 0 && d >= 1 && d <= 256)
        o->batch = (size_t)d;
    else if (strcmp(a, "--value-size") == 0)
        o->value_size = (size_t)d;
    else if (strcmp(a, "--read-ratio") == 0 && d <= 1)
        o->read_ratio = d;
    else if (strcmp(a, "--zipf-s") == 0)
        o->zipf_s = d;
    else if (strcmp(a, "--threads") == 0 && d >= 1)
        o->threads = (int)d;
    else if (strcmp(a, "--many") == 0 && d >= 1)
        o->many = (int)d;
    else if (strcmp(a, "--duration") == 0 && d > 0)
        o->duration_s = d; /* --ops, when given, wins */
    else if (strcmp(a, "--ops") == 0 && d >= 1)
        o->ops = (uint64_t)d;
    else if (strcmp(a, "--warmup") == 0)
        o->warmup_s = d;
    else if (strcmp(a, "--slices") == 0 && d >= 1)
        o->slices = (int)d;
    else if (strcmp(a, "--link-rtt-us") == 0)
        o->link_rtt_us = d;
    else if (strcmp(a, "--fill-factor") == 0 && d >= 1)
        o->fill_factor = d;
    else if (strcmp(a, "--l1-max-memory") == 0)
        o->l1_max_memory = (uint64_t)d;
    else if (strcmp(a, "--load-ms") == 0)
        o->load_ms = (int)d;
    else
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    bench_opts o = {.rounds = 1000,
                    .keys = 10000,
                    .value_size = 100,
                    .batch = 10,
                    .read_ratio = 0.9,
                    .zipf_s = 0.99,
                    .threads = 1,
                    .many = 16,
                    .duration_s = 2,
                    .warmup_s = 0.5,
                    .slices = 3,
                    .prefix = "nc:v1",
                    .tmpdir = "/tmp",
                    .fill_factor = 1.3,
                    .link_rtt_us = 250,
                    .load_ms = 5};
    if (argc < 2)
        return usage(stderr, 2);
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0)
        return usage(stdout, 0);
    if (strcmp(cmd, "--version") == 0) {
        printf("nearcache-bench %s\n", NC_VERSION);
        return 0;
    }
    const char **specs = calloc((size_t)argc, sizeof *specs);
    size_t nspecs = 0;
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 && strcmp(cmd, "run") == 0)
            specs[nspecs++] = argv[i];
        else if (take_opt(&o, argc, argv, &i) != 0) {
            fprintf(stderr, "nearcache-bench: bad option or value: %s\n", argv[i]);
            free(specs);
            return usage(stderr, 2);
        }
    }
    int rv;
    if (strcmp(cmd, "inval") == 0 && o.url_a != NULL && o.url_b != NULL && o.rounds > 0)
        rv = bench_inval(&o);
    else if (strcmp(cmd, "run") == 0 && nspecs > 0)
        rv = bench_run(&o, specs, nspecs);
    else if (strcmp(cmd, "suite") == 0)
        rv = bench_suite(&o);
    else if (strcmp(cmd, "memory") == 0 && o.url != NULL)
        rv = bench_memory(&o);
    else if (strcmp(cmd, "stampede") == 0 && o.url_a != NULL && o.redis != NULL && o.rounds > 0)
        rv = bench_stampede(&o);
    else if (strcmp(cmd, "echo-server") == 0 && o.echo_url != NULL)
        rv = bench_echo_main(o.echo_url);
    else
        rv = usage(stderr, 2);
    free(specs);
    return rv;
}
