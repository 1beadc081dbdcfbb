/* The daemon's counters: plain atomics, bumped with relaxed ordering (each
 * is exact on its own; a snapshot of several is not taken atomically).
 * main.c owns the one instance and hands it to the server and service. */
#ifndef NC_STATS_H
#define NC_STATS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct stats {
    atomic_uint_fast64_t requests;     /* every message received */
    atomic_uint_fast64_t bad_requests; /* answered INVALID_ARGUMENT & co. */
    atomic_uint_fast64_t gets, sets, deletes;
    atomic_uint_fast64_t l1_hits, l1_misses;
    atomic_uint_fast64_t l2_hits, l2_misses;
    atomic_uint_fast64_t redis_errors;           /* Redis unreachable, timed out or erred */
    atomic_uint_fast64_t deadline_exceeded;      /* requests answered DEADLINE_EXCEEDED */
    atomic_uint_fast64_t overloaded;             /* turned away: too much waiting for Redis */
    atomic_uint_fast64_t invalidations_sent;     /* writes published with their message */
    atomic_uint_fast64_t invalidations_received; /* messages from other nodes applied */
    atomic_uint_fast64_t subscription_losses;
    atomic_uint_fast64_t fills_voided;  /* Redis reads not kept: invalidated in flight */
    atomic_uint_fast64_t sequence_gaps; /* missed messages detected: L1 emptied */
    atomic_uint_fast64_t namespace_bumps;
    atomic_uint_fast64_t stale_served;        /* L1 entries served under stale_if_error */
    atomic_uint_fast64_t single_flight_joins; /* Gets that shared another's Redis read */
    atomic_uint_fast64_t leases_granted;      /* misses told to load and Set */
    atomic_uint_fast64_t lease_waits;         /* misses parked while another loads */
    atomic_uint_fast64_t lease_sets_rejected; /* Sets whose lease was void: not stored */
    atomic_uint_fast64_t negative_hits;       /* Gets that found "known absent" */
    atomic_uint_fast64_t slides;              /* sliding TTLs extended in Redis */
    atomic_uint_fast64_t mgets, msets;
    atomic_uint_fast64_t lane_retries; /* lane reads redone by the workers */
} stats;

static inline void stats_inc(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static inline uint64_t stats_get(atomic_uint_fast64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

#endif
