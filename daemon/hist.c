/* The latency histogram's reading side; see hist.h. */
#include "hist.h"

#include <time.h>

uint64_t hist_bound_us(size_t i)
{
    return (uint64_t)1 << (i + HIST_SHIFT);
}

void hist_read(hist *h, hist_reading *out)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= HIST_BUCKETS; i++) {
        total += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        out->le[i] = total;
    }
    out->sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

int64_t hist_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
