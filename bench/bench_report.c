/* nearcache-bench reporters for load results: a table or JSON rows on
 * stdout, a markdown table and gnuplot data in files. Latencies are printed
 * in microseconds; CPU per operation is the server process's (daemon or
 * echo server) and this process's, over the measured time. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

static double us(int64_t ns)
{
    return (double)ns / 1e3;
}

/* CPU µs per op, or -1 when unknown. */
static double cpu_per_op(double cpu_s, uint64_t ops)
{
    return cpu_s >= 0 && ops > 0 ? cpu_s * 1e6 / (double)ops : -1;
}

/* The share of nearcache Gets answered from L1, or -1 for other paths. */
static double l1_share(const bench_result *r)
{
    uint64_t n = r->l1 + r->l2;
    return n > 0 ? (double)r->l1 / (double)n : -1;
}

static void print_table(bench_result *r, size_t n)
{
    printf("%-18s %4s %9s %9s %9s %9s %9s %6s %9s %6s %6s\n", "path", "thr", "ops/s", "p50 us",
           "p99 us", "p999 us", "srv us/op", "srv cs", "cli us/op", "L1%", "errors");
    for (size_t i = 0; i < n; i++) {
        double srv = cpu_per_op(r[i].server_cpu_s, r[i].ops);
        double cs = cpu_per_op(r[i].server_switches / 1e6, r[i].ops);
        double cli = cpu_per_op(r[i].client_cpu_s, r[i].ops);
        double l1 = l1_share(&r[i]);
        printf("%-18s %4d %9.0f %9.1f %9.1f %9.1f ", r[i].path, r[i].threads,
               bench_result_ops(&r[i]), us(r[i].p50), us(r[i].p99), us(r[i].p999));
        if (srv >= 0)
            printf("%9.1f ", srv);
        else
            printf("%9s ", "-");
        if (cs >= 0)
            printf("%6.1f ", cs);
        else
            printf("%6s ", "-");
        printf("%9.1f ", cli);
        if (l1 >= 0)
            printf("%5.1f%% ", l1 * 100);
        else
            printf("%6s ", "-");
        printf("%6llu\n", (unsigned long long)r[i].errors);
    }
}

void bench_json_rows(bench_result *r, size_t n)
{
    printf("\"rows\": [");
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"path\": \"%s\", \"clients\": %d, \"n\": %llu, \"ops_per_s\": %.0f, "
               "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"errors\": %llu",
               i ? ", " : "", r[i].path, r[i].threads, (unsigned long long)r[i].ops,
               bench_result_ops(&r[i]), us(r[i].p50), us(r[i].p99), us(r[i].p999),
               (unsigned long long)r[i].errors);
        double srv = cpu_per_op(r[i].server_cpu_s, r[i].ops);
        if (srv >= 0)
            printf(", \"server_cpu_us_per_op\": %.2f", srv);
        double cs = cpu_per_op(r[i].server_switches / 1e6, r[i].ops);
        if (cs >= 0)
            printf(", \"server_switches_per_op\": %.2f", cs);
        printf(", \"client_cpu_us_per_op\": %.2f", cpu_per_op(r[i].client_cpu_s, r[i].ops));
        if (l1_share(&r[i]) >= 0)
            printf(", \"l1_share\": %.4f", l1_share(&r[i]));
        printf("}");
    }
    printf("]");
}

void bench_json_settings(const bench_opts *o)
{
    printf("\"settings\": {\"keys\": %zu, \"value_size\": %zu, \"batch\": %zu, "
           "\"read_ratio\": %.2f, "
           "\"zipf_s\": %.2f, \"duration_s\": %.1f, \"ops\": %llu, \"warmup_s\": %.2f, "
           "\"slices\": %d, \"link\": \"%s\"}",
           o->keys, o->value_size, o->batch, o->read_ratio, o->zipf_s, o->duration_s,
           (unsigned long long)o->ops, o->warmup_s, o->slices, o->link ? o->link : "");
}

void bench_print_results(const bench_opts *o, bench_result *r, size_t n)
{
    if (!o->json) {
        print_table(r, n);
        return;
    }
    printf("{\"suite\": \"run\", ");
    bench_json_settings(o);
    printf(", ");
    bench_json_rows(r, n);
    printf("}\n");
}

int bench_write_md(const char *path, bench_result *r, size_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    fprintf(f, "| path | what | clients | ops/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/op "
               "| server switches/op | L1 share |\n");
    fprintf(f, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (size_t i = 0; i < n; i++) {
        double srv = cpu_per_op(r[i].server_cpu_s, r[i].ops);
        double cs = cpu_per_op(r[i].server_switches / 1e6, r[i].ops);
        double l1 = l1_share(&r[i]);
        fprintf(f, "| %s | %s | %d | %.0f | %.1f | %.1f | %.1f | ", r[i].path,
                bench_path_about(r[i].path), r[i].threads, bench_result_ops(&r[i]), us(r[i].p50),
                us(r[i].p99), us(r[i].p999));
        if (srv >= 0)
            fprintf(f, "%.1f | ", srv);
        else
            fprintf(f, "— | ");
        if (cs >= 0)
            fprintf(f, "%.1f | ", cs);
        else
            fprintf(f, "— | ");
        if (l1 >= 0)
            fprintf(f, "%.1f%% |\n", l1 * 100);
        else
            fprintf(f, "— |\n");
    }
    return fclose(f) != 0;
}

int bench_write_plot(const char *path, bench_result *r, size_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    fprintf(f, "# label p50_us p99_us p999_us\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "\"%s x%d\" %.1f %.1f %.1f\n", r[i].path, r[i].threads, us(r[i].p50),
                us(r[i].p99), us(r[i].p999));
    return fclose(f) != 0;
}
