/* hist: a lock-free latency histogram for the metrics endpoint, with
 * power-of-two buckets in microseconds (16 us up to about 16.8 s, then
 * +Inf). Recording is two relaxed atomic increments (the bucket and the
 * sum), no lock and no allocation, so it may sit on the L1-hit path. A
 * reading is not atomic across buckets: each bucket is exact on its own. */
#ifndef NC_HIST_H
#define NC_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Finite buckets; bucket HIST_BUCKETS is +Inf. */
#define HIST_BUCKETS 21
#define HIST_SHIFT   4 /* bucket 0 holds up to 2^4 us */

typedef struct hist {
    atomic_uint_fast64_t bucket[HIST_BUCKETS + 1];
    atomic_uint_fast64_t sum_us;
} hist;

/* A reading: cumulative counts, as Prometheus wants them. */
typedef struct hist_reading {
    uint64_t le[HIST_BUCKETS + 1]; /* observations <= hist_bound_us(i); the last is all */
    uint64_t sum_us;
} hist_reading;

/* Which bucket an observation of `us` microseconds falls in. */
static inline size_t hist_bucket_of(uint64_t us)
{
    if (us <= (1u << HIST_SHIFT))
        return 0;
    size_t bits = 64 - (size_t)__builtin_clzll(us - 1); /* ceil(log2(us)) */
    size_t i = bits - HIST_SHIFT;
    return i < HIST_BUCKETS ? i : HIST_BUCKETS;
}

/* Records one observation of `us` microseconds. Any thread. */
static inline void hist_record(hist *h, uint64_t us)
{
    atomic_fetch_add_explicit(&h->bucket[hist_bucket_of(us)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

/* The upper bound of finite bucket i (< HIST_BUCKETS), in microseconds. */
uint64_t hist_bound_us(size_t i);

/* Reads h into *out. Any thread. */
void hist_read(hist *h, hist_reading *out);

/* Microseconds on the monotonic clock. */
int64_t hist_now_us(void);

#endif
