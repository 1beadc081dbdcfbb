/* The near tier: hot values, and hot "known absent" answers (negative
 * entries), kept in the client's own process, bounded in bytes (LRU), and
 * kept coherent by the daemon's invalidation ring (common/ring.h). Before
 * every lookup the tier applies the ring's slots since its cursor; it
 * serves only while the daemon says its own L1 may serve (serving_until),
 * and empties itself on a new epoch, a flush or when lapped. A fill carries
 * a ticket taken before its request was sent and is refused when a slot for
 * its key (or namespace), or a flush, came since. Thread-safe: lookups take
 * one shard's lock; applying slots and fills take the tier's ring lock
 * (near.c states the lock order). */
#ifndef NC_NEAR_H
#define NC_NEAR_H

#include <stddef.h>
#include <stdint.h>

#include "nearcache.h"

typedef struct near near;

/* What a fill must show: the tier's state when the request was sent. */
typedef struct near_ticket {
    uint64_t flushes; /* the tier's own count of times it was emptied */
    uint64_t cursor;  /* the ring slot it had applied up to */
    int64_t at_ms;    /* when it was taken: a reply's TTL counts from then */
} near_ticket;

/* Makes a near tier of at most max_bytes, whose entries live at most
 * max_ttl_ms, fed by the ring at ring_path. A ring that cannot be mapped
 * now is looked for again later; until then the tier serves nothing (the
 * reason is in nc_near_stats.problem). Returns NC_OK and hands the tier
 * to *out (the caller owns it; near_close()), or NC_ENOMEM. */
int near_open(near **out, const char *ring_path, size_t max_bytes, int64_t max_ttl_ms);
void near_close(near *n);

/* Looks (ns, key) up. Returns 1 on a hit, with *ttl_ms its time left and
 * *negative saying which kind: 0, a value, *value a new buffer of *len bytes
 * plus a NUL (the caller owns it; free()); 1, a negative entry (the key is
 * known absent), *value NULL and *len 0. Both count as hits. Returns 0 on a
 * miss (or when the tier may not serve now), touching none of them. */
int near_get(near *n, nc_bytes ns, nc_bytes key, void **value, size_t *len, uint64_t *ttl_ms,
             int *negative);

/* The ticket to fill with, taken before the request is sent. */
near_ticket near_take_ticket(near *n);

/* What a Get's reply may put in the tier (docs/protocol.md, "The reader";
 * tests/conformance/ring.json, "replies"): a value (found) that is not
 * stale and carries no lease state; a negative entry likewise, with its
 * time left (ttl_ms > 0); else nothing. */
typedef enum near_keep { NEAR_KEEP_NOTHING, NEAR_KEEP_VALUE, NEAR_KEEP_NEGATIVE } near_keep;
near_keep near_keep_of(int found, int negative, int stale, int leased, uint64_t ttl_ms);

/* Keeps value (copied) for at most min(ttl_ms, max_ttl_ms) from the
 * ticket's time (ttl_ms 0: Redis holds it without a TTL, max_ttl_ms),
 * unless the ticket is void. */
void near_fill(near *n, const near_ticket *t, nc_bytes ns, nc_bytes key, const void *value,
               size_t len, uint64_t ttl_ms);

/* near_fill() of a negative entry: (ns, key) is known absent, for as long
 * as near_fill() would keep a value, unless the ticket is void. It replaces a value
 * of the key, as a value replaces it. */
void near_fill_negative(near *n, const near_ticket *t, nc_bytes ns, nc_bytes key, uint64_t ttl_ms);

/* Drops (ns, key), or every key of ns: before this process's own write. */
void near_drop(near *n, nc_bytes ns, nc_bytes key);
void near_drop_ns(near *n, nc_bytes ns);

/* Empties the tier and refuses every fill whose ticket was taken before:
 * when this process's own invalidation is kept, undelivered (R2), no ring
 * slot will refuse a reply already in flight that holds what it replaced. */
void near_forget(near *n);

/* The tier's counters. */
void near_stats(near *n, nc_near_stats *out);

#endif
