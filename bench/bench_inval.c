/* nearcache-bench inval: invalidation delivery time between two daemons.
 *
 * For each round: node B holds the key in L1 (checked), node A sets a new
 * value, and B is read in a tight loop until it returns it. The figure is
 * the time from A's acknowledgement to B's first new answer: delivery plus
 * at most one Get round trip on B, an upper bound on delivery. The plain L1
 * Get round trip on B is measured in the same run as the baseline. Every
 * other round is read instead by a client on B with a near tier (holding
 * the key in it): delivery through the daemon's ring to a near tier. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "nearcache.h"

/* Reads the key through b until it comes from `from` with `want`. */
static int hot_on(nc_client *b, const char *want, nc_source from)
{
    for (int i = 0; i < 100; i++) {
        void *v = NULL;
        size_t len;
        nc_get_info info;
        int rv = nc_get_ex(b, NC_STR("bench"), NC_STR("inval"), &v, &len, &info, 0);
        int ok = rv == NC_OK && strcmp(v, want) == 0 && info.source == from;
        nc_free(v);
        if (ok)
            return 0;
    }
    return -1;
}

int bench_inval(const bench_opts *o)
{
    nc_client *a = NULL, *b = NULL, *bn = NULL;
    nc_open_opts near = {.near_bytes = 1 << 20};
    if (nc_open(&a, o->url_a, 0) != NC_OK || nc_open(&b, o->url_b, 0) != NC_OK ||
        nc_open_ex(&bn, o->url_b, &near) != NC_OK) {
        fprintf(stderr, "nearcache-bench: %s\n", nc_errmsg());
        return 1;
    }
    bench_hist delivery, to_near, rtt;
    bench_hist_init(&delivery, o->rounds);
    bench_hist_init(&to_near, o->rounds);
    bench_hist_init(&rtt, o->rounds);
    char value[32];
    snprintf(value, sizeof value, "v0");
    nc_set(a, NC_STR("bench"), NC_STR("inval"), NC_STR(value), 600000, 0);
    int failures = 0;
    for (int i = 1; i <= o->rounds; i++) {
        nc_client *reader = i % 2 ? b : bn;
        if (hot_on(b, value, NC_SOURCE_L1) != 0 || hot_on(bn, value, NC_SOURCE_NEAR) != 0) {
            failures++;
            continue;
        }
        int64_t t = bench_now_ns();
        hot_on(b, value, NC_SOURCE_L1);
        bench_hist_add(&rtt, bench_now_ns() - t);
        snprintf(value, sizeof value, "v%d", i);
        if (nc_set(a, NC_STR("bench"), NC_STR("inval"), NC_STR(value), 600000, 0) != NC_OK) {
            failures++;
            continue;
        }
        int64_t acked = bench_now_ns();
        for (;;) {
            void *v = NULL;
            size_t len;
            int rv = nc_get(reader, NC_STR("bench"), NC_STR("inval"), &v, &len, 0);
            int fresh = rv == NC_OK && strcmp(v, value) == 0;
            nc_free(v);
            if (fresh)
                break;
        }
        bench_hist_add(reader == b ? &delivery : &to_near, bench_now_ns() - acked);
    }
    bench_report_begin(o, "inval");
    bench_report_row(o, "L1 get on B (baseline)", &rtt, 0, NULL);
    bench_report_row(o, "set on A -> new value on B", &delivery, 0, &rtt);
    bench_report_row(o, "set on A -> B's near tier", &to_near, 0, &delivery);
    bench_report_end(o);
    double p99 = (double)bench_hist_quantile(&delivery, 0.99);
    if (!o->json && p99 > 0)
        printf("near-tier delivery p99 / daemon delivery p99: %.2f (target <= 1.5)\n",
               (double)bench_hist_quantile(&to_near, 0.99) / p99);
    if (failures > 0)
        fprintf(stderr, "nearcache-bench: %d rounds failed\n", failures);
    bench_hist_free(&delivery);
    bench_hist_free(&to_near);
    bench_hist_free(&rtt);
    nc_close(a);
    nc_close(b);
    nc_close(bn);
    return failures > o->rounds / 10;
}
