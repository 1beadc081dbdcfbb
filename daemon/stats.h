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

/* X-macro: COUNTER(name) or GAUGE(name), one per stat, in reply order. */
#define STATS_TABLE(COUNTER, GAUGE)                                                                \
    COUNTER(requests)     /* every message received */                                             \
    COUNTER(bad_requests) /* answered INVALID_ARGUMENT & co. */                                    \
    COUNTER(gets)                                                                                  \
    COUNTER(sets)                                                                                  \
    COUNTER(deletes)                                                                               \
    COUNTER(l1_hits)                                                                               \
    COUNTER(l1_misses)                                                                             \
    COUNTER(l2_hits)                                                                               \
    COUNTER(l2_misses)                                                                             \
    GAUGE(l1_entries)                                                                              \
    GAUGE(l1_bytes)                                                                                \
    GAUGE(l1_max_memory)                                                                           \
    GAUGE(l1_evictions)                                                                            \
    GAUGE(l1_expired)                                                                              \
    COUNTER(redis_errors) /* Redis unreachable, timed out or erred */                              \
    GAUGE(redis_connections_up)                                                                    \
    GAUGE(redis_queue)                                                                             \
    GAUGE(redis_lane_up)                                                                           \
    GAUGE(redis_lane_reads)                                                                        \
    COUNTER(redis_lane_retries)     /* lane reads redone by the workers */                         \
    COUNTER(deadline_exceeded)      /* requests answered DEADLINE_EXCEEDED */                      \
    COUNTER(overloaded)             /* turned away: too much waiting for Redis */                  \
    COUNTER(invalidations_sent)     /* writes published with their message */                      \
    COUNTER(invalidations_received) /* messages from other nodes applied */                        \
    GAUGE(subscription_up)                                                                         \
    GAUGE(l1_serving)                                                                              \
    COUNTER(subscription_losses)                                                                   \
    COUNTER(fills_voided)  /* Redis reads not kept: invalidated in flight */                       \
    COUNTER(sequence_gaps) /* missed messages detected: L1 emptied */                              \
    COUNTER(namespace_bumps)                                                                       \
    COUNTER(stale_served)        /* L1 entries served under stale_if_error */                      \
    COUNTER(single_flight_joins) /* Gets that shared another's Redis read */                       \
    COUNTER(leases_granted)      /* misses told to load and Set */                                 \
    COUNTER(lease_waits)         /* misses parked while another loads */                           \
    GAUGE(lease_waiting)                                                                           \
    COUNTER(lease_sets_rejected) /* Sets whose lease was void: not stored */                       \
    COUNTER(negative_hits)       /* Gets that found "known absent" */                              \
    COUNTER(slides)              /* sliding TTLs extended in Redis */                              \
    COUNTER(mgets)                                                                                 \
    COUNTER(msets)                                                                                 \
    GAUGE(near_ring_published) /* slots written to the near tiers' ring */                         \
    GAUGE(near_ring_flushes)   /* times the ring told near tiers to empty */                       \
    GAUGE(near_ring_slots)                                                                         \
    GAUGE(uptime_ms)

#define STATS_FIELD_(name) atomic_uint_fast64_t name;
#define STATS_VALUE_(name) int64_t name;
#define STATS_NONE_(name)
#define STATS_ONE_(name) +1

/* The counters, bumped by every module. */
typedef struct stats {
    STATS_TABLE(STATS_FIELD_, STATS_NONE_)
} stats;

/* The gauges' values at one moment, filled in by whoever builds the reply. */
typedef struct stats_gauges {
    STATS_TABLE(STATS_NONE_, STATS_VALUE_)
} stats_gauges;

/* How many stats the table lists. */
enum { STATS_COUNT = 0 STATS_TABLE(STATS_ONE_, STATS_ONE_) };

/* One stat: its name (a constant string) and its value. */
typedef struct stats_row {
    const char *name;
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
