/* L1: the daemon's bounded, sharded LRU store of recently read values.
 *
 * Keys are opaque byte strings (the daemon uses the full Redis key). Each
 * shard has its own lock, hash table (uthash), LRU list and byte budget of
 * max_memory / shards; an entry is charged its key, value and bookkeeping
 * (l1_entry_overhead() bytes). An entry is never returned at or after its
 * expiry. The store does no I/O and reads no clock: callers pass `now`
 * (milliseconds on any monotonic clock). All functions are thread-safe. */
#ifndef NC_L1_H
#define NC_L1_H

#include <stddef.h>
#include <stdint.h>

typedef struct l1 l1;

/* Counters and gauges of the whole store, summed over shards. */
typedef struct l1_stats {
    uint64_t entries;
    uint64_t bytes;     /* charged bytes: keys + values + overhead */
    uint64_t max_bytes; /* the configured budget */
    uint64_t evictions; /* entries dropped to make room */
    uint64_t expired;   /* entries dropped because their time was up */
} l1_stats;

/* Called by l1_get() with the shard lock held: `value` is valid only during
 * the call and must not be kept; `expires_at` is the entry's expiry. The
 * callback must not call back into the store. */
typedef void (*l1_visit_fn)(void *arg, const void *value, size_t len, int64_t expires_at);

/* Creates a store with a budget of max_memory bytes split over `shards`
 * shards (rounded up to a power of two, at least 1). Returns 0 and hands the
 * store to *out (the caller owns it; free with l1_destroy()), or ENOMEM. */
int l1_create(l1 **out, uint64_t max_memory, unsigned shards);

/* Frees the store and every entry. Accepts NULL. */
void l1_destroy(l1 *s);

/* Looks the key up. On a live hit, marks it most recently used, calls
 * visit(arg, ...) under the shard lock and returns 1. On a miss or an
 * expired entry (which it removes) returns 0 without calling visit. */
int l1_get(l1 *s, const void *key, size_t klen, int64_t now, l1_visit_fn visit, void *arg);

/* Stores a copy of key and value, replacing any entry of that key, expiring
 * at `expires_at`. Evicts least recently used entries of the shard until the
 * new one fits. Returns 0 when stored; E2BIG when the entry alone exceeds the
 * shard budget (any old entry of the key is removed then); ENOMEM; EINVAL
 * when expires_at <= now (nothing stored, any old entry removed). */
int l1_set(l1 *s, const void *key, size_t klen, const void *value, size_t vlen,
           int64_t expires_at, int64_t now);

/* Removes the key. Returns 1 if an entry was removed, 0 if none was there. */
int l1_del(l1 *s, const void *key, size_t klen);

/* Removes every entry whose key starts with `prefix` (all of them for an
 * empty prefix). Returns how many were removed. Walks every shard: O(n). */
uint64_t l1_del_prefix(l1 *s, const void *prefix, size_t plen);

/* Fills *out with the current totals. */
void l1_get_stats(l1 *s, l1_stats *out);

/* The bookkeeping bytes charged per entry beyond its key and value. */
size_t l1_entry_overhead(void);

#endif
