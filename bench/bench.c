/* nearcache-bench: the driver. `nearcache-bench inval --a URL --b URL`
 * measures invalidation delivery between two daemons; see bench_inval.c. */
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

void bench_hist_add(bench_hist *h, int64_t ns)
{
    if (h->n < h->cap)
        h->ns[h->n++] = ns;
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

static int usage(void)
{
    fprintf(stderr, "usage: nearcache-bench inval --a URL --b URL [--rounds N] [--json]\n");
    return 2;
}

int main(int argc, char **argv)
{
    bench_opts o = {.rounds = 1000};
    if (argc < 2)
        return usage();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o.json = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--a") == 0)
            o.url_a = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--b") == 0)
            o.url_b = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0)
            o.rounds = atoi(argv[++i]);
        else
            return usage();
    }
    if (strcmp(argv[1], "inval") == 0 && o.url_a != NULL && o.url_b != NULL && o.rounds > 0)
        return bench_inval(&o);
    return usage();
}
