/* nearcache-bench suite: the standard set of paths, measured interleaved in
 * one run, and the ratios that issue 5 sets targets for:
 *   L1-hit p50 <= 1.2 x nng echo p50 (one client);
 *   L1-hit ops/s >= 0.9 x echo ops/s (o->many clients);
 *   Zipf with Redis +250 us away: nearcache p50 <= 0.5 x direct Redis p50;
 *   L2-hit p50 <= 1.15 x (echo p50 + direct Redis GET p50).
 * The memory targets are bench_memory.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct ratio {
    const char *name;
    double value, target;
    int at_most; /* 1: met when value <= target; 0: when value >= target */
    int known;
} ratio;

static double p50(bench_result *r)
{
    return r != NULL ? (double)r->p50 / 1e3 : 0;
}

static void add(ratio *out, size_t *n, const char *name, double num, double den, double target,
                int at_most)
{
    ratio *q = &out[(*n)++];
    q->name = name;
    q->known = num > 0 && den > 0;
    q->value = q->known ? num / den : 0;
    q->target = target;
    q->at_most = at_most;
}

/* The delay the link adds to a round trip, in µs (0 when not measured). */
static double link_rtt(bench_result *r, size_t n)
{
    double far = p50(bench_find(r, n, "redis-get-remote", 1));
    double near = p50(bench_find(r, n, "redis-get-near", 1));
    return far > 0 && near > 0 ? far - near : 0;
}

/* Fills out[] with the ratios the results allow. Returns how many.
 *
 * The delay proxy's own hops make the link's added round trip vary with the
 * machine's load, so the Zipf target is judged with the direct Redis p50
 * moved to exactly o->link_rtt_us: measured p50 - (measured link - target).
 * Nearcache's p50 is an L1 hit and does not cross the link. The ratio as
 * measured is reported too. */
static size_t ratios(const bench_opts *o, bench_result *r, size_t n, ratio *out)
{
    size_t k = 0;
    double rtt = link_rtt(r, n), zn = p50(bench_find(r, n, "zipf-remote", 1));
    double zr = p50(bench_find(r, n, "redis-zipf-remote", 1));
    double near = p50(bench_find(r, n, "redis-get-near", 1));
    double zr_fixed = zr > 0 && rtt > 0 ? zr - (rtt - o->link_rtt_us) : zr;
    bench_result *echo1 = bench_find(r, n, "echo", 1), *echom = bench_find(r, n, "echo", o->many);
    bench_result *l1 = bench_find(r, n, "l1", 1), *l1m = bench_find(r, n, "l1", o->many);
    bench_result *rg = bench_find(r, n, "redis-get", 1);
    add(out, &k, "L1-hit p50 / nng echo p50 (1 client)", p50(l1), p50(echo1), 1.2, 1);
    add(out, &k, "L1-hit ops/s / nng echo ops/s (many clients)", l1m ? bench_result_ops(l1m) : 0,
        echom ? bench_result_ops(echom) : 0, 0.9, 0);
    add(out, &k, "Zipf +250 us: nearcache p50 / direct Redis p50 (1 client, link at +250 us)", zn,
        zr_fixed, 0.5, 1);
    add(out, &k, "L2-hit p50 / (echo p50 + Redis GET p50) (1 client)",
        p50(bench_find(r, n, "l2", 1)), p50(echo1) + p50(rg), 1.15, 1);
    bench_result *nearm = bench_find(r, n, "near", o->many),
                 *rgm = bench_find(r, n, "redis-get", o->many);
    add(out, &k, "near-tier hit p50 / direct Redis GET p50 (1 client)",
        p50(bench_find(r, n, "near", 1)), p50(rg), 0.1, 1);
    add(out, &k, "near-tier hit ops/s / direct Redis GET ops/s (many clients)",
        nearm ? bench_result_ops(nearm) : 0, rgm ? bench_result_ops(rgm) : 0, 10, 0);
    add(out, &k, "Zipf with the near tier: p50 / direct Redis Zipf p50 (1 client)",
        p50(bench_find(r, n, "zipf-near", 1)), p50(bench_find(r, n, "redis-zipf", 1)), 0.2, 1);
    double zrn = p50(bench_find(r, n, "zipf-remote-near", 1));
    add(out, &k,
        "Zipf +250 us with the near tier: p50 / direct Redis p50 (1 client, link at +250 us)", zrn,
        zr_fixed, 0.2, 1);
    /* Context, no targets. */
    add(out, &k, "Zipf remote: nearcache p50 / direct Redis p50 (1 client, link as measured)", zn,
        zr, 0, 1);
    add(out, &k, "Zipf remote: nearcache p50 / direct Redis p50 (many clients, link as measured)",
        p50(bench_find(r, n, "zipf-remote", o->many)),
        p50(bench_find(r, n, "redis-zipf-remote", o->many)), 0, 1);
    add(out, &k, "Zipf local: nearcache p50 / direct Redis p50 (1 client)",
        p50(bench_find(r, n, "zipf", 1)), p50(bench_find(r, n, "redis-zipf", 1)), 0, 1);
    add(out, &k, "miss p50 / (echo p50 + Redis miss p50) (1 client)",
        p50(bench_find(r, n, "miss", 1)), p50(echo1) + p50(bench_find(r, n, "redis-miss", 1)), 0,
        1);
    add(out, &k, "L1-hit p50 / direct Redis GET p50 (1 client)", p50(l1), p50(rg), 0, 1);
    add(out, &k, "MGet of 10 L1 hits p50 / one L1-hit Get p50 (1 client)",
        p50(bench_find(r, n, "mget", 1)), p50(l1), 0, 1);
    add(out, &k, "MGet of 10 L1 hits p50 / direct Redis MGET of 10 p50 (1 client)",
        p50(bench_find(r, n, "mget", 1)), p50(bench_find(r, n, "redis-mget", 1)), 0, 1);
    add(out, &k, "floor of the Zipf +250 us ratio: echo p50 / (Redis GET p50 + 250 us)", p50(echo1),
        near > 0 ? near + o->link_rtt_us : 0, 0, 1);
    /* Redis Cluster (issue 17), when the run has one */
    bench_result *l2m = bench_find(r, n, "l2", o->many), *l2cm = bench_find(r, n, "l2-cluster", o->many);
    if (o->url_cluster != NULL) {
        add(out, &k, "3-master L2-hit ops/s / one-Redis L2-hit ops/s (many clients)",
            l2cm ? bench_result_ops(l2cm) : 0, l2m ? bench_result_ops(l2m) : 0, 0.9, 0);
        add(out, &k, "cross-slot MGet of 10 L1 misses p50 / one-Redis MGet of 10 L1 misses p50",
            p50(bench_find(r, n, "mget-cluster", 1)), p50(bench_find(r, n, "mget-l2", 1)), 1.5,
            1);
        bench_result *rgcm = bench_find(r, n, "redis-get-cluster", o->many),
                     *rgm1 = bench_find(r, n, "redis-get", o->many);
        add(out, &k, "direct GET ops/s, 3-master / one Redis (many clients): the machine's share",
            rgcm ? bench_result_ops(rgcm) : 0, rgm1 ? bench_result_ops(rgm1) : 0, 0, 0);
        add(out, &k, "3-master L2-hit p50 / one-Redis L2-hit p50 (1 client)",
            p50(bench_find(r, n, "l2-cluster", 1)), p50(bench_find(r, n, "l2", 1)), 0, 1);
        add(out, &k, "cluster MGet of 10 L1 misses p50 / direct GETs pipelined per master p50",
            p50(bench_find(r, n, "mget-cluster", 1)),
            p50(bench_find(r, n, "redis-mget-cluster", 1)), 0, 1);
        add(out, &k, "cluster Set p50 / one-Redis Set p50 (1 client)",
            p50(bench_find(r, n, "set-cluster", 1)), p50(bench_find(r, n, "set", 1)), 0, 1);
        bench_result *sm = bench_find(r, n, "set", o->many),
                     *scm = bench_find(r, n, "set-cluster", o->many);
        add(out, &k, "cluster Set ops/s / one-Redis Set ops/s (many clients)",
            scm ? bench_result_ops(scm) : 0, sm ? bench_result_ops(sm) : 0, 0, 0);
    }
    add(out, &k, "echo with a context per call p50 / echo p50 (1 client)",
        p50(bench_find(r, n, "echo-percall", 1)), p50(echo1), 0, 1);
    add(out, &k, "daemon's share: hand-encoded L1-hit Get p50 / echo p50 (1 client)",
        p50(bench_find(r, n, "l1-raw", 1)), p50(echo1), 0, 1);
    bench_result *raw = bench_find(r, n, "l1-raw", o->many);
    add(out, &k, "daemon's share: hand-encoded L1-hit ops/s / echo ops/s (many clients)",
        raw ? bench_result_ops(raw) : 0, echom ? bench_result_ops(echom) : 0, 0, 0);
    return k;
}

static const char *verdict(const ratio *q)
{
    if (!q->known)
        return "not measured";
    if (q->target == 0)
        return "";
    int met = q->at_most ? q->value <= q->target : q->value >= q->target;
    return met ? "met" : "missed";
}

static void print_ratios(const bench_opts *o, ratio *q, size_t k, double rtt)
{
    if (o->json) {
        printf(", \"link_added_rtt_us\": %.1f, \"ratios\": [", rtt);
        for (size_t i = 0; i < k; i++) {
            printf("%s{\"name\": \"%s\", \"value\": %.3f", i ? ", " : "", q[i].name, q[i].value);
            if (q[i].target > 0)
                printf(", \"target\": \"%s %.2f\", \"verdict\": \"%s\"",
                       q[i].at_most ? "<=" : ">=", q[i].target, verdict(&q[i]));
            printf("}");
        }
        printf("]}\n");
        return;
    }
    printf("\n%-64s %8s %8s  %s\n", "ratio (same run)", "value", "target", "");
    for (size_t i = 0; i < k; i++) {
        char t[32] = "";
        if (q[i].target > 0)
            snprintf(t, sizeof t, "%s %.2f", q[i].at_most ? "<=" : ">=", q[i].target);
        printf("%-64s %8.3f %8s  %s\n", q[i].name, q[i].value, t, verdict(&q[i]));
    }
    if (rtt > 0)
        printf("link: +%.0f us per round trip measured (redis-get-remote p50 - "
               "redis-get-near p50); the Zipf target moves the direct p50 by %+.0f us\n",
               rtt, o->link_rtt_us - rtt);
}

static int write_ratios_md(const bench_opts *o, const char *path, ratio *q, size_t k, double rtt)
{
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    fprintf(f, "\n| ratio (same run) | measured | target | |\n| --- | ---: | ---: | --- |\n");
    for (size_t i = 0; i < k; i++) {
        fprintf(f, "| %s | %s", q[i].name, q[i].known ? "" : "—");
        if (q[i].known)
            fprintf(f, "%.3f", q[i].value);
        if (q[i].target > 0)
            fprintf(f, " | %s %.2f | **%s** |\n", q[i].at_most ? "≤" : "≥", q[i].target,
                    verdict(&q[i]));
        else
            fprintf(f, " | | |\n");
    }
    if (rtt > 0)
        fprintf(
            f,
            "\nThe delay link added %.0f µs to a Redis round trip in this run (p50 of "
            "`redis-get-remote` minus `redis-get-near`); the Zipf target is judged with the "
            "direct Redis p50 moved by the %+.0f µs difference to exactly +%.0f µs (nearcache's "
            "p50 is an L1 hit and does not cross the link). The row \"link as measured\" is "
            "the unadjusted ratio.\n",
            rtt, o->link_rtt_us - rtt, o->link_rtt_us);
    return fclose(f) != 0;
}

int bench_suite(const bench_opts *o)
{
    char many[24][40];
    const char *specs[64];
    size_t n = 0;
    const char *one[] = {"echo",      "l1",         "l1-raw",     "echo-percall", "l2",
                         "redis-get", "miss",       "redis-miss", "zipf",         "redis-zipf",
                         "mget",      "redis-mget", "near",       "zipf-near"};
    const char *remote_one[] = {"redis-get-near", "redis-get-remote", "zipf-remote",
                                "redis-zipf-remote", "zipf-remote-near"};
    const char *at_many[] = {"echo",       "l1",          "l1-raw",
                             "l2",         "redis-get",   "zipf",
                             "redis-zipf", "zipf-remote", "redis-zipf-remote",
                             "near",       "zipf-near",   "zipf-remote-near"};
    const char *cluster_one[] = {"set",         "redis-set",         "mget-l2",
                                 "l2-cluster",  "redis-get-cluster", "set-cluster",
                                 "redis-set-cluster", "mget-cluster", "redis-mget-cluster"};
    const char *cluster_many[] = {"set",         "redis-set",         "l2-cluster",
                                  "redis-get-cluster", "set-cluster", "redis-set-cluster"};
    int remote = o->url_remote != NULL && o->redis_remote != NULL;
    int cluster = o->url_cluster != NULL && o->redis_cluster != NULL;
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++)
        specs[n++] = one[i];
    for (size_t i = 0; remote && i < sizeof remote_one / sizeof remote_one[0]; i++)
        if (o->redis_near != NULL || strcmp(remote_one[i], "redis-get-near") != 0)
            specs[n++] = remote_one[i];
    for (size_t i = 0; i < sizeof at_many / sizeof at_many[0]; i++) {
        if (!remote && strstr(at_many[i], "remote") != NULL)
            continue;
        snprintf(many[i], sizeof many[i], "%s@%d", at_many[i], o->many);
        specs[n++] = many[i];
    }
    size_t m = sizeof at_many / sizeof at_many[0];
    for (size_t i = 0; cluster && i < sizeof cluster_one / sizeof cluster_one[0]; i++)
        specs[n++] = cluster_one[i];
    for (size_t i = 0; cluster && i < sizeof cluster_many / sizeof cluster_many[0]; i++) {
        snprintf(many[m + i], sizeof many[m + i], "%s@%d", cluster_many[i], o->many);
        specs[n++] = many[m + i];
    }
    if (o->url == NULL || o->url_l2 == NULL || o->redis == NULL) {
        fprintf(stderr, "nearcache-bench suite: needs --url, --url-l2 and --redis\n");
        return 2;
    }
    bench_result *r;
    if (bench_load(o, specs, n, &r) != 0)
        return 1;
    ratio q[40];
    size_t k = ratios(o, r, n, q);
    double rtt = link_rtt(r, n);
    if (o->json) {
        printf("{\"suite\": \"paths\", ");
        bench_json_settings(o);
        printf(", ");
        bench_json_rows(r, n);
    } else {
        bench_print_results(o, r, n);
    }
    print_ratios(o, q, k, rtt);
    int rv = (o->md_out && (bench_write_md(o->md_out, r, n) != 0 ||
                            write_ratios_md(o, o->md_out, q, k, rtt) != 0)) ||
             (o->plot_out && bench_write_plot(o->plot_out, r, n) != 0);
    bench_results_free(r, n);
    return rv;
}
