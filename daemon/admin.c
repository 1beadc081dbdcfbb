/* Stats and Ping: answered on the server thread from the service's state,
 * without Redis. The Stats rows come from STATS_TABLE (stats.h); the gauges
 * are read here from the modules that keep them. */
#include "admin.h"

#include <stdio.h>

#include "ring.h"
#include "svc.h"
#include "units.h"

void admin_gauges(service *svc, stats_gauges *g)
{
    l1_stats ls;
    l1_get_stats(svc->cache, &ls);
    int64_t now = units_now_ms();
    ring *rg = atomic_load_explicit(&svc->ring, memory_order_acquire);
    *g = (stats_gauges){
        .l1_entries = (int64_t)ls.entries,
        .l1_bytes = (int64_t)ls.bytes,
        .l1_max_memory = (int64_t)ls.max_bytes,
        .l1_evictions = (int64_t)ls.evictions,
        .l1_expired = (int64_t)ls.expired,
        .redis_connections_up = (int64_t)jobq_connected(svc->q),
        .redis_queue = (int64_t)jobq_waiting(svc->q),
        .redis_lane_up = svc->lane != NULL && lane_up(svc->lane),
        .redis_lane_reads = svc->lane != NULL ? (int64_t)lane_reads(svc->lane) : 0,
        .subscription_up = coh_subscribed_now(svc->coh),
        .l1_serving = coh_serving(svc->coh, now),
        .lease_waiting = svc->waits != NULL ? (int64_t)waits_parked(svc->waits) : 0,
        .near_ring_published = rg != NULL ? (int64_t)ring_published(rg) : 0,
        .near_ring_flushes = rg != NULL ? (int64_t)ring_flushes(rg) : 0,
        .near_ring_slots = rg != NULL ? (int64_t)ring_slots(rg) : 0,
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
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.result_case = RESULT(STATS);
    r.stats = &sr;
    call_reply(c, &r);
}

void admin_handle_ping(service *svc, call *c)
{
    pb_ping_reply p = NEARCACHE__V1__PING_REPLY__INIT;
    p.version = NC_VERSION;
    p.node_id = svc->node_id;
    p.uptime_ms = (uint64_t)(units_now_ms() - svc->started_ms);
    p.redis_up = jobq_connected(svc->q) > 0;
    p.subscribed = coh_subscribed_now(svc->coh);
    p.l1_serving = coh_serving(svc->coh, units_now_ms());
    p.max_request_size = config_max_request(svc->cfg);
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.result_case = RESULT(PING);
    r.ping = &p;
    call_reply(c, &r);
}
