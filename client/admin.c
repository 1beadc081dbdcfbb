/* libnearcache's namespace-wide and daemon-wide calls: Ping, Bump and
 * Stats; see nearcache.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "codec.h"

int nc_ping_ex(nc_client *c, nc_ping_info *info, int timeout_ms)
{
    pb_ping_request p = NEARCACHE__V1__PING_REQUEST__INIT;
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(PING);
    req.ping = &p;
    pb_reply *r;
    int rv = client_call_expect(c, &req, timeout_ms, RESULT(PING), &r);
    if (rv != NC_OK)
        return rv;
    /* A daemon without the field speaks version 1 (docs/protocol.md). */
    unsigned proto = r->ping->protocol_version != 0 ? r->ping->protocol_version : 1;
    if (proto != NC_PROTOCOL_VERSION) {
        codec_reply_free(r);
        return client_fail(NC_EPROTO, 0, "the daemon speaks wire protocol version %u, this client %u",
                           proto, (unsigned)NC_PROTOCOL_VERSION);
    }
    if (info != NULL) {
        info->redis_up = r->ping->redis_up;
        info->subscribed = r->ping->subscribed;
        info->l1_serving = r->ping->l1_serving;
        snprintf(info->node_id, sizeof info->node_id, "%s", r->ping->node_id);
        info->uptime_ms = r->ping->uptime_ms;
        snprintf(info->version, sizeof info->version, "%s", r->ping->version);
        info->protocol_version = proto;
        snprintf(info->redis_error, sizeof info->redis_error, "%s", r->ping->redis_error);
    }
    codec_reply_free(r);
    return NC_OK;
}

int nc_ping(nc_client *c, int *redis_up, int timeout_ms)
{
    nc_ping_info info;
    int rv = nc_ping_ex(c, &info, timeout_ms);
    if (rv == NC_OK && redis_up != NULL)
        *redis_up = info.redis_up;
    return rv;
}

int nc_bump(nc_client *c, nc_bytes ns, uint64_t *version, int timeout_ms)
{
    pb_bump_request b = NEARCACHE__V1__BUMP_NAMESPACE_REQUEST__INIT;
    b.ns = client_bin(ns);
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(BUMP_NAMESPACE);
    req.bump_namespace = &b;
    if (c->near != NULL)
        near_drop_ns(c->near, ns);
    if (version != NULL)
        *version = 0;
    pb_reply *r;
    int rv = client_call_expect(c, &req, timeout_ms, RESULT(BUMP_NAMESPACE), &r);
    if (rv != NC_OK)
        return client_invalidation_failed(c, ns, (nc_bytes){NULL, 0}, rv);
    if (version != NULL)
        *version = r->bump_namespace->version;
    codec_reply_free(r);
    return NC_OK;
}

/* A new array of the reply's stats, or NULL out of memory. */
static nc_stat *copy_stats(const pb_stats_reply *sr)
{
    nc_stat *arr = calloc(sr->n_stats ? sr->n_stats : 1, sizeof *arr);
    for (size_t i = 0; arr != NULL && i < sr->n_stats; i++) {
        arr[i].value = sr->stats[i]->value;
        if ((arr[i].name = strdup(sr->stats[i]->name)) == NULL) {
            nc_stats_free(arr, i);
            arr = NULL;
        }
    }
    return arr;
}

/* A new array of the reply's namespaces' rows, or NULL out of memory. */
static nc_ns_stat *copy_ns_stats(const pb_stats_reply *sr)
{
    nc_ns_stat *arr = calloc(sr->n_namespaces ? sr->n_namespaces : 1, sizeof *arr);
    for (size_t i = 0; arr != NULL && i < sr->n_namespaces; i++) {
        const pb_namespace_stat *p = sr->namespaces[i];
        arr[i] = (nc_ns_stat){.ns_len = p->ns.len,
                              .other = p->other,
                              .truncated = p->truncated,
                              .hits = p->hits,
                              .misses = p->misses,
                              .near_hits = p->near_hits,
                              .near_misses = p->near_misses,
                              .acl_denied = p->acl_denied};
        if ((arr[i].ns = malloc(p->ns.len + 1)) == NULL) {
            nc_ns_stats_free(arr, i);
            return NULL;
        }
        if (p->ns.len > 0)
            memcpy(arr[i].ns, p->ns.data, p->ns.len);
        arr[i].ns[p->ns.len] = '\0';
    }
    return arr;
}

int nc_stats_ex(nc_client *c, nc_stat **out, size_t *n, nc_ns_stat **ns, size_t *nns,
                int timeout_ms)
{
    pb_stats_request s = NEARCACHE__V1__STATS_REQUEST__INIT;
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(STATS);
    req.stats = &s;
    pb_reply *r;
    int rv = client_call_expect(c, &req, timeout_ms, RESULT(STATS), &r);
    if (rv != NC_OK)
        return rv;
    nc_stat *arr = copy_stats(r->stats);
    nc_ns_stat *rows = ns != NULL ? copy_ns_stats(r->stats) : NULL;
    size_t count = r->stats->n_stats, nrows = r->stats->n_namespaces;
    codec_reply_free(r);
    if (arr == NULL || (ns != NULL && rows == NULL)) {
        nc_stats_free(arr, count);
        nc_ns_stats_free(rows, nrows);
        return client_fail(NC_ENOMEM, 0, "out of memory");
    }
    *out = arr;
    *n = count;
    if (ns != NULL) {
        *ns = rows;
        *nns = nrows;
    }
    return NC_OK;
}

int nc_stats(nc_client *c, nc_stat **out, size_t *n, int timeout_ms)
{
    return nc_stats_ex(c, out, n, NULL, NULL, timeout_ms);
}

void nc_ns_stats_free(nc_ns_stat *ns, size_t n)
{
    if (ns == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(ns[i].ns);
    free(ns);
}

void nc_stats_free(nc_stat *stats, size_t n)
{
    if (stats == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(stats[i].name);
    free(stats);
}

int client_near_report(nc_client *c, uint64_t reporter, int reported_before,
                       const nc_near_stats *s, int timeout_ms, uint32_t *interval_ms)
{
    pb_near_report_request nr = NEARCACHE__V1__NEAR_REPORT_REQUEST__INIT;
    nr.reporter = reporter;
    nr.reported_before = reported_before != 0;
    nr.pid = (uint32_t)getpid();
    nr.hits = s->hits;
    nr.misses = s->misses;
    nr.fills_refused = s->fills_refused;
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(NEAR_REPORT);
    req.near_report = &nr;
    pb_reply *r;
    int rv = client_call_expect(c, &req, timeout_ms, RESULT(NEAR_REPORT), &r);
    if (rv != NC_OK)
        return rv;
    *interval_ms = r->near_report->interval_ms;
    codec_reply_free(r);
    return NC_OK;
}
