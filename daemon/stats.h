/* The daemon's counters and gauges, named once: STATS_TABLE lists every
 * stat of the Stats reply in its order (and so of `nearcache-cli stats`).
 * A COUNTER is a plain atomic in struct stats, bumped with relaxed ordering
 * (each exact on its own; a snapshot of several is not atomic); a GAUGE is
 * read from its module when the reply is built (stats_gauges). main.c owns
 * the one struct stats and hands it to the server and the service. */
#ifndef NC_STATS_H
#define NC_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

/* X-macro, one entry per stat in reply order: COUNTER(name, help) or
 * GAUGE(name, type, help). A GAUGE's type is what it means to a reader:
 * `gauge`, or `counter` when its module keeps a count that only grows
 * (l1_evictions). help is one line: the first of its docs/protocol.md row,
 * and the HELP line of /metrics. */
#define STATS_TABLE(COUNTER, GAUGE)                                                                \
    COUNTER(requests, "Messages received, malformed ones included")                                \
    COUNTER(bad_requests, "Requests answered INVALID_ARGUMENT or UNIMPLEMENTED, and Sets and "     \
                          "MSets rejected for value size")                                         \
    COUNTER(gets, "Get requests, valid or not")                                                    \
    COUNTER(sets, "Set requests, valid or not")                                                    \
    COUNTER(deletes, "Delete requests (lease releases included), valid or not")                    \
    COUNTER(                                                                                       \
        l1_hits,                                                                                   \
        "Valid Gets, and keys of MGets, answered from L1 (stale_if_error replies not included)")   \
    COUNTER(l1_misses, "Valid Gets, and keys of MGets, not answered from L1")                      \
    COUNTER(l2_hits,                                                                               \
            "Redis reads that found a value (stale ones included), one per key of an MGet")        \
    COUNTER(l2_misses, "Redis reads that found no value")                                          \
    GAUGE(l1_entries, gauge, "Entries in L1, expired ones not yet removed included")               \
    GAUGE(l1_bytes, gauge,                                                                         \
          "Bytes charged to L1: keys (NS:KEY), values and 80 bytes of bookkeeping per entry")      \
    GAUGE(l1_max_memory, gauge, "The l1_max_memory setting, in bytes")                             \
    GAUGE(l1_evictions, counter, "Entries dropped to make room (LRU)")                             \
    GAUGE(l1_expired, counter, "Entries found expired on lookup and removed")                      \
    COUNTER(redis_errors,                                                                          \
            "Redis commands for a request that failed: unreachable, timed out, or an error reply") \
    GAUGE(redis_connections_up, gauge,                                                             \
          "Redis connections that serve requests and are up now (out of redis_connections)")       \
    GAUGE(redis_queue, gauge, "Requests waiting for a free Redis connection")                      \
    GAUGE(redis_lane_up, gauge,                                                                    \
          "1 while the read lane is connected, else 0 (always 0 with redis_lane = 0)")             \
    GAUGE(redis_lane_reads, counter, "Gets that missed L1 and were read on the read lane")         \
    COUNTER(redis_lane_retries, "Lane reads sent again through the workers")                       \
    COUNTER(deadline_exceeded, "Requests answered DEADLINE_EXCEEDED")                              \
    COUNTER(overloaded, "Requests turned away because too many were waiting for Redis")            \
    COUNTER(acl_denied, "Requests answered PERMISSION_DENIED by the acl rules")                    \
    COUNTER(                                                                                       \
        invalidations_sent,                                                                        \
        "Writes through this daemon that Redis confirmed, each with its invalidation published")   \
    COUNTER(invalidations_received,                                                                \
            "Invalidations from other daemons (and other publishers) heard on the channel")        \
    GAUGE(subscription_up, gauge,                                                                  \
          "1 while this daemon is subscribed to the invalidation channel, else 0")                 \
    GAUGE(l1_serving, gauge, "1 while L1 may answer Gets")                                         \
    COUNTER(subscription_losses,                                                                   \
            "Times the subscription was lost (connection closed, or silent for coherence_window)") \
    COUNTER(fills_voided, "Redis reads that were answered but not kept in L1, because the key "    \
                          "was invalidated while the read was under way")                          \
    COUNTER(                                                                                       \
        sequence_gaps,                                                                             \
        "Times this daemon found it had missed invalidations from another daemon, and emptied L1") \
    COUNTER(origins_silent,                                                                        \
            "Times another daemon fell silent for longer than its heartbeats allow without "       \
            "saying bye (killed, frozen or cut off), and L1 was emptied")                          \
    COUNTER(origins_bye, "Daemons heard stopping cleanly (their bye message)")                     \
    COUNTER(invalidation_batches,                                                                  \
            "Messages this daemon published carrying the invalidations of its writes (one per "    \
            "batch with inval_batch = on, one per write otherwise)")                               \
    COUNTER(namespace_bumps,                                                                       \
            "Namespace bumps applied here: this daemon's own and those heard from others")         \
    COUNTER(stale_served, "Gets answered with stale = true")                                       \
    COUNTER(single_flight_joins, "Gets that joined another Get's Redis read of the same key "      \
                                 "instead of reading Redis themselves")                            \
    COUNTER(leases_granted,                                                                        \
            "Gets answered LEASE_GRANTED: on a miss, or with a stale value to refresh")            \
    COUNTER(lease_waits, "Times a Get began to wait for another caller's lease")                   \
    GAUGE(lease_waiting, gauge, "Gets waiting for a lease now")                                    \
    COUNTER(lease_sets_rejected, "Sets with a lease_token answered ABORTED: the lease was gone")   \
    COUNTER(negative_hits, "Gets answered NOT_FOUND from a negative entry (known absent)")         \
    COUNTER(                                                                                       \
        slides,                                                                                    \
        "Sliding-TTL refreshes sent to Redis in the background for L1 hits, that found the key")   \
    COUNTER(mgets, "MGet requests, valid or not")                                                  \
    COUNTER(msets, "MSet requests, valid or not")                                                  \
    GAUGE(near_ring_published, counter, "Slots written to the near tiers' ring since start")       \
    GAUGE(near_ring_flushes, counter,                                                              \
          "Times the ring told the near tiers to empty themselves (L1 was emptied)")               \
    GAUGE(near_ring_slots, gauge, "The ring's slot count (near_ring_slots); 0 without a ring")     \
    GAUGE(near_hits, counter,                                                                      \
          "Lookups answered by the clients' near tiers, as they reported them (NearReport)")     \
    GAUGE(near_misses, counter, "Lookups the clients' near tiers could not answer, as reported")   \
    GAUGE(near_fills_refused, counter,                                                             \
          "Replies the near tiers did not keep: the key changed while they were in flight")       \
    GAUGE(near_clients, gauge, "Clients that sent a near-tier report in the last 3 s")             \
    GAUGE(uptime_ms, gauge, "Time since the daemon started, in ms")

#define STATS_FIELD_(name, ...) atomic_uint_fast64_t name;
#define STATS_VALUE_(name, ...) int64_t name;
#define STATS_NONE_(name, ...)
#define STATS_ONE_(name, ...) +1

/* The latency histograms' methods: Ping, Stats and NearReport are one, `admin`. */
enum stats_method {
    STATS_GET,
    STATS_SET,
    STATS_DELETE,
    STATS_MGET,
    STATS_MSET,
    STATS_BUMP,
    STATS_ADMIN,
    STATS_METHODS
};

/* The tier that answered a Get: none told (an error, say), L1, or Redis. */
enum stats_tier { STATS_TIER_NONE, STATS_TIER_L1, STATS_TIER_L2, STATS_TIERS };

/* The method's name as /metrics labels it (a constant string). */
const char *stats_method_name(enum stats_method m);

/* The counters, bumped by every module, and the latency histograms: from
 * a request's arrival to its reply's hand-off, by method and by the tier
 * that answered a Get (the server records them), and each Redis command's
 * round trip on the workers' connections (l2.c records it); and the Gets'
 * hits and misses by namespace (get.c). */
typedef struct stats {
    STATS_TABLE(STATS_FIELD_, STATS_NONE_)
    hist method[STATS_METHODS];
    hist get_tier[STATS_TIERS];
    hist redis;
    struct nstop *namespaces; /* per-namespace Gets (nstop.h), main.c's; or NULL */
} stats;

/* The gauges' values at one moment, filled in by whoever builds the reply. */
typedef struct stats_gauges {
    STATS_TABLE(STATS_NONE_, STATS_VALUE_)
} stats_gauges;

/* How many stats the table lists. */
enum { STATS_COUNT = 0 STATS_TABLE(STATS_ONE_, STATS_ONE_) };

/* One stat: its name and help (constant strings), whether it counts (only
 * grows) or gauges, and its value. */
typedef struct stats_row {
    const char *name;
    const char *help;
    int counts;
    int64_t value;
} stats_row;

/* Fills rows[0..STATS_COUNT) in table order from the counters in st and
 * the gauges in g. Nothing is kept; the names are constants. */
void stats_rows(stats *st, const stats_gauges *g, stats_row rows[STATS_COUNT]);

static inline void stats_inc(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static inline uint64_t stats_get(atomic_uint_fast64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

#endif
