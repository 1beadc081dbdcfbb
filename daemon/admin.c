/* Stats and Ping: answered on the server thread from the service's state,
 * without Redis. The Stats rows come from STATS_TABLE (stats.h); the gauges
 * are read here from the modules that keep them. */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>

#include "nearrep.h"
#include "nstop.h"
#include "ring.h"
#include "method.h"
#include "units.h"

void admin_gauges(service *svc, stats_gauges *g)
{
    l1_stats ls;
    l1_get_stats(svc->cache, &ls);
    int64_t now = units_now_ms();
    ring *rg = atomic_load_explicit(&svc->ring, memory_order_acquire);
    nearrep_totals near;
    nearrep_read(svc->near, now, &near);
    *g = (stats_gauges){
        .l1_entries = (int64_t)ls.entries,
        .l1_bytes = (int64_t)ls.bytes,
        .l1_max_memory = (int64_t)ls.max_bytes,
        .l1_evictions = (int64_t)ls.evictions,
        .l1_expired = (int64_t)ls.expired,
        .redis_connections_up = (int64_t)jobq_connected(svc->q),
        .redis_queue = (int64_t)jobq_waiting(svc->q),
        .redis_lane_up = lanes_up(svc->lanes),
        .redis_lane_reads = (int64_t)lanes_reads(svc->lanes),
        .subscription_up = coh_subscribed_now(svc->coh),
        .l1_serving = coh_serving(svc->coh, now),
        .lease_waiting = svc->waits != NULL ? (int64_t)waits_parked(svc->waits) : 0,
        .near_ring_published = rg != NULL ? (int64_t)ring_published(rg) : 0,
        .near_ring_flushes = rg != NULL ? (int64_t)ring_flushes(rg) : 0,
        .near_ring_slots = rg != NULL ? (int64_t)ring_slots(rg) : 0,
        .near_hits = (int64_t)near.hits,
        .near_misses = (int64_t)near.misses,
        .near_fills_refused = (int64_t)near.fills_refused,
        .near_clients = (int64_t)near.clients,
        .uptime_ms = now - svc->started_ms,
    };
}

int admin_ready(service *svc, char *why, size_t len)
{
    size_t up = jobq_connected(svc->q);
    if (up == 0) {
        snprintf(why, len, "redis: none of %llu connections up",
                 (unsigned long long)svc->cfg->redis_connections);
        return 0;
    }
    if (!coh_serving(svc->coh, units_now_ms())) {
        snprintf(why, len, "L1 not serving: %s",
                 coh_subscribed_now(svc->coh)
                     ? "subscribed, but the own heartbeat is not back within coherence_window"
                     : "the invalidation subscription is down");
        return 0;
    }
    return 1;
}

/* The namespaces' rows of a Stats reply (nstop's rows, then other). */
struct ns_cells {
    nstop_row *rows; /* n - 1 rows and other */
    pb_namespace_stat *cells;
    pb_namespace_stat **ptrs;
    size_t n;
};

static void ns_cells_free(struct ns_cells *ns)
{
    free(ns->rows);
    free(ns->cells);
    free(ns->ptrs);
}

/* Fills ns from t (NULL: none). Returns 0, or -1 out of memory (ns empty). */
static int ns_cells_fill(struct ns_cells *ns, nstop *t)
{
    if (t == NULL)
        return -1;
    size_t max = nstop_size(t) + 1;
    ns->rows = malloc(max * sizeof *ns->rows);
    ns->cells = malloc(max * sizeof *ns->cells);
    ns->ptrs = malloc(max * sizeof *ns->ptrs);
    if (ns->rows == NULL || ns->cells == NULL || ns->ptrs == NULL) {
        ns_cells_free(ns);
        *ns = (struct ns_cells){0};
        return -1;
    }
    ns->n = nstop_read(t, ns->rows, &ns->rows[max - 1]) + 1;
    ns->rows[ns->n - 1] = ns->rows[max - 1];
    for (size_t i = 0; i < ns->n; i++) {
        pb_namespace_stat *cell = &ns->cells[i];
        nearcache__v1__namespace_stat__init(cell);
        cell->other = i == ns->n - 1;
        cell->ns.data = cell->other ? NULL : (uint8_t *)ns->rows[i].name;
        cell->ns.len = cell->other ? 0 : ns->rows[i].len;
        cell->truncated = ns->rows[i].truncated;
        cell->hits = ns->rows[i].hits;
        cell->misses = ns->rows[i].misses;
        cell->near_hits = ns->rows[i].near_hits;
        cell->near_misses = ns->rows[i].near_misses;
        cell->acl_denied = ns->rows[i].denied;
        ns->ptrs[i] = cell;
    }
    return 0;
}

void admin_handle_stats(service *svc, call *c)
{
    stats_gauges g;
    admin_gauges(svc, &g);
    stats_row rows[STATS_COUNT];
    stats_rows(svc->st, &g, rows);
    pb_stat cells[STATS_COUNT], *ptrs[STATS_COUNT];
    for (size_t i = 0; i < STATS_COUNT; i++) {
        nearcache__v1__stat__init(&cells[i]);
        cells[i].name = (char *)rows[i].name;
        cells[i].value = rows[i].value;
        ptrs[i] = &cells[i];
    }
    pb_stats_reply sr = NEARCACHE__V1__STATS_REPLY__INIT;
    sr.n_stats = STATS_COUNT;
    sr.stats = ptrs;
    struct ns_cells ns = {0};
    if (ns_cells_fill(&ns, svc->st->namespaces) == 0) {
        sr.n_namespaces = ns.n;
        sr.namespaces = ns.ptrs;
    }
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.result_case = RESULT(STATS);
    r.stats = &sr;
    call_reply(c, &r);
    ns_cells_free(&ns);
}

void admin_handle_ping(service *svc, call *c)
{
    pb_ping_reply p = NEARCACHE__V1__PING_REPLY__INIT;
    p.version = NC_VERSION;
    p.node_id = svc->node_id;
    p.uptime_ms = (uint64_t)(units_now_ms() - svc->started_ms);
    p.redis_up = jobq_connected(svc->q) > 0;
    char why[640] = "";
    if (!p.redis_up)
        jobq_redis_error(svc->q, why, sizeof why);
    p.redis_error = why;
    p.subscribed = coh_subscribed_now(svc->coh);
    p.l1_serving = coh_serving(svc->coh, units_now_ms());
    p.max_request_size = config_max_request(svc->cfg);
    p.protocol_version = NC_PROTOCOL_VERSION;
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.result_case = RESULT(PING);
    r.ping = &p;
    call_reply(c, &r);
}

void admin_handle_near_report(service *svc, call *c)
{
    const pb_near_report_request *q = call_request(c)->near_report;
    size_t n = q->n_namespaces <= NEARREP_MAX_NAMESPACES ? q->n_namespaces : 0;
    nearrep_ns ns[n > 0 ? n : 1];
    for (size_t i = 0; i < n; i++)
        ns[i] = (nearrep_ns){q->namespaces[i]->ns.data, q->namespaces[i]->ns.len,
                             q->namespaces[i]->hits, q->namespaces[i]->misses};
    nearrep_report r = {
        .reporter = q->reporter,
        .pid = q->pid,
        .hits = q->hits,
        .misses = q->misses,
        .fills_refused = q->fills_refused,
        .reported_before = q->reported_before,
        .ns = ns,
        .n_ns = q->n_namespaces, /* more than NEARREP_MAX_NAMESPACES is refused unread */
    };
    char err[300];
    int code = nearrep_take(svc->near, &r, (size_t)CONFIG_LIVE(svc->cfg->max_namespace_size),
                            units_now_ms(), err, sizeof err);
    if (code != 0) {
        method_refuse(svc, c, code, "%s", err);
        return;
    }
    pb_near_report_reply nr = NEARCACHE__V1__NEAR_REPORT_REPLY__INIT;
    nr.interval_ms = NEARREP_INTERVAL_MS;
    pb_reply rep = NEARCACHE__V1__REPLY__INIT;
    rep.result_case = RESULT(NEAR_REPORT);
    rep.near_report = &nr;
    call_reply(c, &rep);
}
