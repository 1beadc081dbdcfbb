/* nearcache-bench inval: invalidation delivery time between two daemons.
 *
 * For each round: node B holds the key in L1 (checked), node A sets a new
 * value, and B is read in a tight loop until it returns it. The figure is
 * the time from A's acknowledgement to B's first new answer: delivery plus
 * at most one Get round trip on B, an upper bound on delivery. The plain L1
 * Get round trip on B is measured in the same run as the baseline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "nearcache.h"

static int hot_on(nc_client *b, const char *want)
{
    for (int i = 0; i < 100; i++) {
        void *v = NULL;
        size_t len;
        nc_get_info info;
        int rv = nc_get_ex(b, NC_STR("bench"), NC_STR("inval"), &v, &len, &info, 0);
        int ok = rv == NC_OK && strcmp(v, want) == 0 && info.source == NC_SOURCE_L1;
        nc_free(v);
        if (ok)
            return 0;
    }
    return -1;
}

int bench_inval(const bench_opts *o)
{
    nc_client *a = NULL, *b = NULL;
    if (nc_open(&a, o->url_a, 0) != NC_OK || nc_open(&b, o->url_b, 0) != NC_OK) {
        fprintf(stderr, "nearcache-bench: %s\n", nc_errmsg());
        return 1;
    }
    bench_hist delivery, rtt;
    bench_hist_init(&delivery, o->rounds);
    bench_hist_init(&rtt, o->rounds);
    char value[32];
    snprintf(value, sizeof value, "v0");
    nc_set(a, NC_STR("bench"), NC_STR("inval"), NC_STR(value), 600000, 0);
    int failures = 0;
    for (int i = 1; i <= o->rounds; i++) {
        if (hot_on(b, value) != 0) {
            failures++;
            continue;
        }
        int64_t t = bench_now_ns();
        hot_on(b, value);
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
            int rv = nc_get(b, NC_STR("bench"), NC_STR("inval"), &v, &len, 0);
            int fresh = rv == NC_OK && strcmp(v, value) == 0;
            nc_free(v);
            if (fresh)
                break;
        }
        bench_hist_add(&delivery, bench_now_ns() - acked);
    }
    bench_report_begin(o, "inval");
    bench_report_row(o, "L1 get on B (baseline)", &rtt, 0, NULL);
    bench_report_row(o, "set on A -> new value on B", &delivery, 0, &rtt);
    bench_report_end(o);
    if (failures > 0)
        fprintf(stderr, "nearcache-bench: %d rounds failed\n", failures);
    bench_hist_free(&delivery);
    bench_hist_free(&rtt);
    nc_close(a);
    nc_close(b);
    return failures > o->rounds / 10;
}
