/* backoff: how long a Redis connection that failed waits before the next
 * attempt: from BACKOFF_MIN_MS, doubling after each failure up to a cap
 * (BACKOFF_MAX_MS for connections that serve requests), back to the start
 * once an attempt succeeds. Pure: the caller keeps the clock. One per
 * connection, used by one thread. */
#ifndef NC_BACKOFF_H
#define NC_BACKOFF_H

#include <stdint.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

typedef struct backoff {
    int64_t next_ms; /* the wait after the next failure */
    int64_t max_ms;
} backoff;

/* A backoff that starts at BACKOFF_MIN_MS and doubles up to max_ms. */
static inline backoff backoff_make(int64_t max_ms)
{
    return (backoff){BACKOFF_MIN_MS, max_ms};
}

/* After a failure: returns how long to wait, and doubles the next wait. */
static inline int64_t backoff_fail(backoff *b)
{
    int64_t wait = b->next_ms;
    b->next_ms = b->next_ms * 2 > b->max_ms ? b->max_ms : b->next_ms * 2;
    return wait;
}

/* After a success: the next failure waits BACKOFF_MIN_MS again. */
static inline void backoff_reset(backoff *b)
{
    b->next_ms = BACKOFF_MIN_MS;
}

#endif
