/* nearcache-cli's stats output; see cli_stats.h. The L1 hit ratio is
 * l1_hits / (l1_hits + l1_misses); the near hit ratio is the clients' near
 * tiers' near_hits / (near_hits + near_misses); the overall hit ratio is
 * the reads that found a value, in a near tier, L1 or Redis, over all
 * reads answered (a near miss is then a read of the daemon's):
 * (near_hits + l1_hits + l2_hits) / (near_hits + l1_hits + l2_hits + l2_misses). */
#include "cli_stats.h"

#include <string.h>
#include <time.h>

static int64_t stat_of(const nc_stat *st, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(st[i].name, name) == 0)
            return st[i].value;
    return 0;
}

/* part / whole as a ratio, or -1 when whole is 0 (nothing to say). */
static double ratio(double part, double whole)
{
    return whole > 0 ? part / whole : -1;
}

static void print_pct(FILE *out, double r)
{
    if (r < 0)
        fprintf(out, "%7s", "-");
    else
        fprintf(out, "%6.1f%%", 100 * r);
}

struct ratios {
    double near, l1, overall;
};

/* The counters the ratios are made of. */
struct reads {
    int64_t near_hits, near_misses, l1_hits, l1_misses, l2_hits, l2_misses;
};

static struct ratios ratios_of(struct reads r)
{
    double found = (double)(r.near_hits + r.l1_hits + r.l2_hits);
    return (struct ratios){ratio((double)r.near_hits, (double)(r.near_hits + r.near_misses)),
                           ratio((double)r.l1_hits, (double)(r.l1_hits + r.l1_misses)),
                           ratio(found, found + (double)r.l2_misses)};
}

static struct reads reads_of(const nc_stat *st, size_t n)
{
    return (struct reads){stat_of(st, n, "near_hits"), stat_of(st, n, "near_misses"),
                          stat_of(st, n, "l1_hits"),   stat_of(st, n, "l1_misses"),
                          stat_of(st, n, "l2_hits"),   stat_of(st, n, "l2_misses")};
}

static struct ratios ratios_now(const nc_stat *st, size_t n)
{
    return ratios_of(reads_of(st, n));
}

/* A JSON string of n bytes: '"', '\\' and bytes outside printable ASCII
 * escaped (a byte >= 0x80 as the code point of the same value). */
static void json_string(FILE *out, const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '"' || b == '\\')
            fprintf(out, "\\%c", b);
        else if (b < 0x20 || b >= 0x7f)
            fprintf(out, "\\u%04x", b);
        else
            fputc(b, out);
    }
    fputc('"', out);
}

/* A namespace for the text table: unprintable bytes as '?'. */
static void text_name(FILE *out, const nc_ns_stat *r)
{
    char name[40];
    size_t n = 0;
    const char *src = r->other ? "(other)" : r->ns;
    size_t len = r->other ? 7 : r->ns_len;
    for (size_t i = 0; i < len && n < sizeof name - 4; i++)
        name[n++] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
    if (n < len || r->truncated)
        memcpy(name + n, "...", 3), n += 3;
    name[n] = '\0';
    fprintf(out, "%-32s", name);
}

static void print_json(FILE *out, const nc_stat *st, size_t n, const nc_ns_stat *ns, size_t nns)
{
    struct ratios r = ratios_now(st, n);
    fputc('{', out);
    for (size_t i = 0; i < n; i++) /* names are [a-z0-9_]: no escaping */
        fprintf(out, "%s\"%s\": %lld", i ? ", " : "", st[i].name, (long long)st[i].value);
    fprintf(out, ", \"near_hit_ratio\": ");
    fprintf(out, r.near < 0 ? "null" : "%.4f", r.near);
    fprintf(out, ", \"l1_hit_ratio\": ");
    fprintf(out, r.l1 < 0 ? "null" : "%.4f", r.l1);
    fprintf(out, ", \"hit_ratio\": ");
    fprintf(out, r.overall < 0 ? "null" : "%.4f", r.overall);
    fprintf(out, ", \"namespaces\": [");
    for (size_t i = 0; i < nns; i++) {
        fprintf(out, "%s{\"ns\": ", i ? ", " : "");
        json_string(out, ns[i].ns, ns[i].ns_len);
        fprintf(out,
                ", \"other\": %s, \"hits\": %llu, \"misses\": %llu, \"near_hits\": %llu, "
                "\"near_misses\": %llu, \"acl_denied\": %llu}",
                ns[i].other ? "true" : "false", (unsigned long long)ns[i].hits,
                (unsigned long long)ns[i].misses, (unsigned long long)ns[i].near_hits,
                (unsigned long long)ns[i].near_misses, (unsigned long long)ns[i].acl_denied);
    }
    fprintf(out, "]}\n");
}

void cli_stats_print(FILE *out, const nc_stat *st, size_t n, const nc_ns_stat *ns, size_t nns,
                     int json)
{
    if (json) {
        print_json(out, st, n, ns, nns);
        return;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%-24s %lld\n", st[i].name, (long long)st[i].value);
    struct ratios r = ratios_now(st, n);
    fprintf(out, "\n%-24s ", "near hit ratio");
    print_pct(out, r.near);
    fprintf(out, "   of the near tiers' lookups (clients that report them)\n%-24s ",
            "l1 hit ratio");
    print_pct(out, r.l1);
    fprintf(out, "   of Gets and MGet keys\n%-24s ", "hit ratio");
    print_pct(out, r.overall);
    fprintf(out, "   found a value, in a near tier, L1 or Redis\n");
    if (nns == 0)
        return;
    fprintf(out, "\n%-32s %12s %12s %12s %12s %9s\n", "namespace", "reads", "near hits", "hits",
            "misses", "hit ratio");
    for (size_t i = 0; i < nns; i++) {
        text_name(out, &ns[i]);
        uint64_t reads = ns[i].near_hits + ns[i].hits + ns[i].misses;
        fprintf(out, " %12llu %12llu %12llu %12llu   ", (unsigned long long)reads,
                (unsigned long long)ns[i].near_hits, (unsigned long long)ns[i].hits,
                (unsigned long long)ns[i].misses);
        print_pct(out, ratio((double)(ns[i].near_hits + ns[i].hits), (double)reads));
        fputc('\n', out);
    }
}

/* The counters a watch line is made of. */
struct sample {
    int64_t t_ms, gets, sets, mgets, redis_errors;
    struct reads reads;
    int64_t l1_entries, redis_up, l1_serving;
};

static int take(nc_client *c, int timeout_ms, struct sample *s)
{
    nc_stat *st;
    size_t n;
    int rv = nc_stats(c, &st, &n, timeout_ms);
    if (rv != NC_OK)
        return rv;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *s = (struct sample){
        .t_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
        .gets = stat_of(st, n, "gets"),
        .sets = stat_of(st, n, "sets"),
        .mgets = stat_of(st, n, "mgets"),
        .reads = reads_of(st, n),
        .redis_errors = stat_of(st, n, "redis_errors"),
        .l1_entries = stat_of(st, n, "l1_entries"),
        .redis_up = stat_of(st, n, "redis_connections_up"),
        .l1_serving = stat_of(st, n, "l1_serving"),
    };
    nc_stats_free(st, n);
    return NC_OK;
}

static void watch_line(FILE *out, const struct sample *a, const struct sample *b)
{
    double secs = (double)(b->t_ms - a->t_ms) / 1000;
    if (secs <= 0)
        secs = 0.001;
    const struct reads *x = &a->reads, *y = &b->reads;
    struct ratios r = ratios_of((struct reads){
        y->near_hits - x->near_hits, y->near_misses - x->near_misses, y->l1_hits - x->l1_hits,
        y->l1_misses - x->l1_misses, y->l2_hits - x->l2_hits, y->l2_misses - x->l2_misses});
    fprintf(out, "%10.1f %10.1f %10.1f ", (b->gets - a->gets) / secs, (b->sets - a->sets) / secs,
            (b->mgets - a->mgets) / secs);
    print_pct(out, r.l1);
    fputs("    ", out);
    print_pct(out, r.overall);
    fprintf(out, " %10.1f %10lld %8lld %7s\n", (b->redis_errors - a->redis_errors) / secs,
            (long long)b->l1_entries, (long long)b->redis_up, b->l1_serving ? "yes" : "no");
    fflush(out);
}

int cli_stats_watch(FILE *out, nc_client *c, int64_t interval_ms, long count, int timeout_ms)
{
    struct sample prev, cur;
    int rv = take(c, timeout_ms, &prev);
    if (rv != NC_OK)
        return rv;
    fprintf(out, "%10s %10s %10s %7s    %7s %10s %10s %8s %7s\n", "gets/s", "sets/s", "mgets/s",
            "l1 hit", "hit", "rediserr/s", "l1 entries", "redis up", "serving");
    fflush(out);
    for (long i = 0; count == 0 || i < count; i++) {
        struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0) /* EINTR: sleep the rest */
            ;
        if ((rv = take(c, timeout_ms, &cur)) != NC_OK)
            return rv;
        watch_line(out, &prev, &cur);
        prev = cur;
    }
    return NC_OK;
}
