/* The metrics endpoint; see metrics.h. Names: every STATS_TABLE counter is
 * nearcache_NAME_total (counter), every gauge nearcache_NAME (gauge); the
 * histograms are in seconds, with power-of-two microsecond buckets
 * (hist.h). The handlers run on nng's HTTP threads and build each answer
 * from nothing, so they take no lock of their own. */
#include "metrics.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nstop.h"

struct metrics {
    metrics_source src;
    nng_http_server *http;
    atomic_int stopping;
};

/* Appends printf-style text to t, growing it. */
static void text_add(metrics_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(metrics_text *t, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !t->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->p != NULL ? t->p + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 > t->len + (size_t)n + 1 ? t->cap * 2 : t->len + (size_t)n + 4096;
        char *p = realloc(t->p, cap);
        if (p == NULL) {
            t->oom = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

static void render_stats(const metrics_source *src, metrics_text *t)
{
    stats_gauges g = {0};
    if (src->gauges != NULL)
        src->gauges(src->arg, &g);
    stats_row rows[STATS_COUNT];
    stats_rows(src->st, &g, rows);
    for (size_t i = 0; i < STATS_COUNT; i++) {
        const char *suffix = rows[i].counts ? "_total" : "";
        const char *type = rows[i].counts ? "counter" : "gauge";
        text_add(t, "# HELP nearcache_%s%s %s.\n# TYPE nearcache_%s%s %s\nnearcache_%s%s %lld\n",
                 rows[i].name, suffix, rows[i].help, rows[i].name, suffix, type, rows[i].name,
                 suffix, (long long)rows[i].value);
    }
}

/* One histogram's samples, with `labels` (`name="value",` or ""). */
static void render_hist(metrics_text *t, const char *name, const char *labels, hist *h)
{
    hist_reading r;
    hist_read(h, &r);
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        text_add(t, "%s_bucket{%sle=\"%.6f\"} %llu\n", name, labels, hist_bound_us(i) / 1e6,
                 (unsigned long long)r.le[i]);
    text_add(t, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels,
             (unsigned long long)r.le[HIST_BUCKETS]);
    size_t n = strlen(labels);
    text_add(t, "%s_sum%s%.*s%s %.6f\n", name, n ? "{" : "", n ? (int)n - 1 : 0, labels,
             n ? "}" : "", r.sum_us / 1e6);
    text_add(t, "%s_count%s%.*s%s %llu\n", name, n ? "{" : "", n ? (int)n - 1 : 0, labels,
             n ? "}" : "", (unsigned long long)r.le[HIST_BUCKETS]);
}

static void render_hists(stats *st, metrics_text *t)
{
    static const char *const tiers[STATS_TIERS] = {[STATS_TIER_L1] = "l1", [STATS_TIER_L2] = "l2"};
    char labels[64];
    text_add(t, "# HELP nearcache_request_duration_seconds Time from a request's arrival to its "
                "reply, by method (admin: Ping, Stats and NearReport).\n"
                "# TYPE nearcache_request_duration_seconds histogram\n");
    for (int m = 0; m < STATS_METHODS; m++) {
        snprintf(labels, sizeof labels, "method=\"%s\",", stats_method_name(m));
        render_hist(t, "nearcache_request_duration_seconds", labels, &st->method[m]);
    }
    text_add(t, "# HELP nearcache_get_duration_seconds Time to answer a valid Get, by tier: l1 "
                "(an L1 hit) or l2 (it missed L1 and waited for Redis).\n"
                "# TYPE nearcache_get_duration_seconds histogram\n");
    for (int i = STATS_TIER_L1; i < STATS_TIERS; i++) {
        snprintf(labels, sizeof labels, "tier=\"%s\",", tiers[i]);
        render_hist(t, "nearcache_get_duration_seconds", labels, &st->get_tier[i]);
    }
    text_add(t, "# HELP nearcache_redis_duration_seconds Round trip of each Redis command on the "
                "request connections.\n"
                "# TYPE nearcache_redis_duration_seconds histogram\n");
    render_hist(t, "nearcache_redis_duration_seconds", "", &st->redis);
}

/* A namespace as a label value: bytes that are not printable ASCII, and
 * '"', '\\' and '%', as %XX. */
static void label_value(char *out, const nstop_row *r)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < r->len; i++) {
        unsigned char b = (unsigned char)r->name[i];
        if (b < 0x20 || b >= 0x7f || b == '"' || b == '\\' || b == '%') {
            out[o++] = '%';
            out[o++] = hex[b >> 4];
            out[o++] = hex[b & 15];
        } else {
            out[o++] = (char)b;
        }
    }
    if (r->truncated)
        memcpy(out + o, "...", 3), o += 3;
    out[o] = '\0';
}

/* The near tiers' lookups by namespace, as clients report them: the rows
 * of render_namespaces() (other's counts already merged into *other). */
static void render_namespaces_near(const nstop_row *rows, size_t k, const nstop_row *other,
                                   metrics_text *out)
{
    char label[NSTOP_NAME_MAX * 3 + 4];
    text_add(out, "# HELP nearcache_namespace_near_lookups_total Lookups of the clients' near "
                  "tiers by namespace, as they report them, and result: hit or miss (a miss "
                  "then asks the daemon).\n# TYPE nearcache_namespace_near_lookups_total "
                  "counter\n");
    for (size_t i = 0; i <= k; i++) {
        const nstop_row *r = i < k ? &rows[i] : other;
        label_value(label, r);
        if (i < k && strcmp(label, "other") == 0)
            continue;
        text_add(out,
                 "nearcache_namespace_near_lookups_total{namespace=\"%s\",result=\"hit\"} "
                 "%llu\n"
                 "nearcache_namespace_near_lookups_total{namespace=\"%s\",result=\"miss\"} "
                 "%llu\n",
                 label, (unsigned long long)r->near_hits, label,
                 (unsigned long long)r->near_misses);
    }
}

/* Requests the acl rules refused, by namespace: the rows of
 * render_namespaces() (other's counts already merged into *other). */
static void render_namespaces_denied(const nstop_row *rows, size_t k, const nstop_row *other,
                                     metrics_text *out)
{
    char label[NSTOP_NAME_MAX * 3 + 4];
    text_add(out, "# HELP nearcache_namespace_acl_denied_total Requests answered "
                  "PERMISSION_DENIED by the acl rules, by namespace.\n"
                  "# TYPE nearcache_namespace_acl_denied_total counter\n");
    for (size_t i = 0; i <= k; i++) {
        const nstop_row *r = i < k ? &rows[i] : other;
        label_value(label, r);
        if (i < k && strcmp(label, "other") == 0)
            continue;
        text_add(out, "nearcache_namespace_acl_denied_total{namespace=\"%s\"} %llu\n", label,
                 (unsigned long long)r->denied);
    }
}

/* Gets by namespace: the busiest rows, and the rest as "other" (a
 * namespace named "other" adds up with the rest: one series each). */
static void render_namespaces(nstop *t, metrics_text *out)
{
    if (t == NULL)
        return;
    size_t n = nstop_size(t);
    nstop_row *rows = malloc(n * sizeof *rows), other;
    if (rows == NULL) {
        out->oom = 1;
        return;
    }
    size_t k = nstop_read(t, rows, &other);
    char label[NSTOP_NAME_MAX * 3 + 4];
    text_add(out, "# HELP nearcache_namespace_gets_total Gets by namespace (the busiest "
                  "namespace_metrics; the rest as other) and result: hit (a value, from L1 or "
                  "Redis) or miss.\n# TYPE nearcache_namespace_gets_total counter\n");
    for (size_t i = 0; i < k; i++) {
        label_value(label, &rows[i]);
        if (strcmp(label, "other") == 0) {
            other.hits += rows[i].hits, other.misses += rows[i].misses;
            other.near_hits += rows[i].near_hits, other.near_misses += rows[i].near_misses;
            other.denied += rows[i].denied;
            continue;
        }
        text_add(out,
                 "nearcache_namespace_gets_total{namespace=\"%s\",result=\"hit\"} %llu\n"
                 "nearcache_namespace_gets_total{namespace=\"%s\",result=\"miss\"} %llu\n",
                 label, (unsigned long long)rows[i].hits, label,
                 (unsigned long long)rows[i].misses);
    }
    text_add(out,
             "nearcache_namespace_gets_total{namespace=\"other\",result=\"hit\"} %llu\n"
             "nearcache_namespace_gets_total{namespace=\"other\",result=\"miss\"} %llu\n",
             (unsigned long long)other.hits, (unsigned long long)other.misses);
    render_namespaces_near(rows, k, &other, out);
    render_namespaces_denied(rows, k, &other, out);
    free(rows);
}

void metrics_render(const metrics_source *src, metrics_text *out)
{
    render_stats(src, out);
    render_hists(src->st, out);
    render_namespaces(src->st->namespaces, out);
}

/* Finishes a request with status and a text body (copied). */
static void answer(nng_aio *aio, uint16_t status, const char *type, const char *body, size_t len)
{
    nng_http_res *res;
    int rv = nng_http_res_alloc(&res);
    if (rv == 0 && (rv = nng_http_res_set_status(res, status)) == 0 &&
        (rv = nng_http_res_set_header(res, "Content-Type", type)) == 0)
        rv = nng_http_res_copy_data(res, body, len);
    if (rv != 0) {
        if (res != NULL)
            nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static metrics *of_aio(nng_aio *aio)
{
    return nng_http_handler_get_data(nng_aio_get_input(aio, 1));
}

static void serve_metrics(nng_aio *aio)
{
    metrics *m = of_aio(aio);
    metrics_text t = {0};
    metrics_render(&m->src, &t);
    if (t.oom)
        answer(aio, 500, "text/plain", "out of memory\n", 14);
    else
        answer(aio, 200, "text/plain; version=0.0.4; charset=utf-8", t.p, t.len);
    free(t.p);
}

static void serve_healthz(nng_aio *aio)
{
    answer(aio, 200, "text/plain", "ok\n", 3);
}

static void serve_readyz(nng_aio *aio)
{
    metrics *m = of_aio(aio);
    char why[256], body[300];
    int ready = 0;
    if (atomic_load(&m->stopping))
        snprintf(why, sizeof why, "stopping");
    else
        ready = m->src.ready(m->src.arg, why, sizeof why);
    int n = ready ? snprintf(body, sizeof body, "ready\n")
                  : snprintf(body, sizeof body, "not ready: %s\n", why);
    answer(aio, ready ? 200 : 503, "text/plain", body, (size_t)n);
}

static int add_handler(metrics *m, const char *path, void (*fn)(nng_aio *))
{
    nng_http_handler *h;
    int rv = nng_http_handler_alloc(&h, path, fn);
    if (rv != 0)
        return rv;
    if ((rv = nng_http_handler_set_data(h, m, NULL)) != 0 ||
        (rv = nng_http_server_add_handler(m->http, h)) != 0)
        nng_http_handler_free(h);
    return rv;
}

int metrics_create(metrics **out, const char *listen, const metrics_source *src, char *err,
                   size_t errlen)
{
    char url_text[600];
    nng_url *url = NULL;
    metrics *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NNG_ENOMEM;
    }
    m->src = *src;
    snprintf(url_text, sizeof url_text, "http://%s", listen);
    int rv = nng_url_parse(&url, url_text);
    if (rv == 0)
        rv = nng_http_server_hold(&m->http, url);
    if (rv == 0 && (rv = add_handler(m, "/metrics", serve_metrics)) == 0 &&
        (rv = add_handler(m, "/healthz", serve_healthz)) == 0 &&
        (rv = add_handler(m, "/readyz", serve_readyz)) == 0)
        rv = nng_http_server_start(m->http);
    nng_url_free(url);
    if (rv != 0) {
        snprintf(err, errlen, "cannot serve metrics on %s (metrics_listen): %s", listen,
                 nng_strerror(rv));
        metrics_destroy(m);
        return rv;
    }
    *out = m;
    return 0;
}

void metrics_stopping(metrics *m)
{
    if (m != NULL)
        atomic_store(&m->stopping, 1);
}

void metrics_destroy(metrics *m)
{
    if (m == NULL)
        return;
    if (m->http != NULL) {
        nng_http_server_stop(m->http);
        nng_http_server_release(m->http);
    }
    free(m);
}
