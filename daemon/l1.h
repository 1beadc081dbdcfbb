/* L1: the daemon's bounded, sharded LRU store of recently read values.
 *
 * Keys are opaque byte strings (the daemon's are "NS:KEY", ks_l1_key). Each
 * shard has its own lock, hash table, LRU list and byte budget of
 * max_memory / shards; an entry is charged its key, value and bookkeeping
 * (l1_entry_overhead() bytes). An entry is never returned at or after its
 * expiry. The store does no I/O and reads no clock: callers pass `now`
 * (milliseconds on any monotonic clock). All functions are thread-safe.
 *
 * Fills race with invalidations: a value read from Redis before a write may
 * arrive after that write's invalidation. So a fill takes a ticket
 * (l1_reserve()) before it reads, and l1_fill() stores only if no
 * l1_invalidate() of a key in the same stamp slot, and no l1_flush(), came
 * in between. The check and the store happen under the shard lock that
 * invalidations take too. */
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
 * the call and must not be kept; `expires_at` is the entry's expiry and `tag`
 * what the caller stored with it. Returns 0 when it used the entry, or
 * nonzero to reject it: the entry is then removed and l1_get() misses. The
 * callback must not call back into the store. */
typedef int (*l1_visit_fn)(void *arg, const void *value, size_t len, int64_t expires_at,
                           uint32_t tag);

/* A fill's ticket: the store's generation and the key's stamp, at reserve. */
typedef uint64_t l1_ticket;

/* Creates a store with a budget of max_memory bytes split over `shards`
 * shards (rounded up to a power of two, at least 1). Returns 0 and hands the
 * store to *out (the caller owns it; free with l1_destroy()), or ENOMEM. */
int l1_create(l1 **out, uint64_t max_memory, unsigned shards);

/* Frees the store and every entry. Accepts NULL. */
void l1_destroy(l1 *s);

/* Looks the key up. On a live hit, calls visit(arg, ...) under the shard
 * lock; if visit accepts it (or is NULL), marks it most recently used and
 * returns 1. On a miss, an expired entry or a rejected one (both removed)
 * returns 0. */
int l1_get(l1 *s, const void *key, size_t klen, int64_t now, l1_visit_fn visit, void *arg);

/* Stores a copy of key and value with `tag`, replacing any entry of that
 * key, expiring at `expires_at`, unconditionally. Evicts least recently used
 * entries of the shard until the new one fits. Returns 0 when stored; E2BIG
 * when the entry alone exceeds the shard budget (any old entry of the key is
 * removed then); ENOMEM; EINVAL when expires_at <= now (nothing stored, any
 * old entry removed). */
int l1_set(l1 *s, const void *key, size_t klen, const void *value, size_t vlen, uint32_t tag,
           int64_t expires_at, int64_t now);

/* Takes a ticket for a fill of `key`, before the value is read. */
l1_ticket l1_reserve(l1 *s, const void *key, size_t klen);

/* l1_set() if the ticket is still good: no l1_invalidate() in the key's
 * stamp slot and no l1_flush() since l1_reserve(). Returns ESTALE, changing
 * nothing, when it is not. */
int l1_fill(l1 *s, const void *key, size_t klen, const void *value, size_t vlen, uint32_t tag,
            int64_t expires_at, int64_t now, l1_ticket ticket);

/* The result of this node's own write: voids every other ticket of the key's
 * slot (fills that may have read the value before the write), removes the
 * key's entry, and stores the value if `ticket` (taken before the write was
 * sent) is still good; ESTALE when it was not. */
int l1_write(l1 *s, const void *key, size_t klen, const void *value, size_t vlen, uint32_t tag,
             int64_t expires_at, int64_t now, l1_ticket ticket);

/* Moves the key's expiry to `expires_at` if it has an entry. Returns 1 if
 * it had one. */
int l1_extend(l1 *s, const void *key, size_t klen, int64_t expires_at);

/* Removes the key and voids every ticket of its stamp slot. Returns 1 if an
 * entry was removed. */
int l1_invalidate(l1 *s, const void *key, size_t klen);

/* Removes every entry and voids every ticket. Shard by shard, after a
 * generation bump: a fill racing with it either is refused or is stored
 * before its shard is emptied. */
void l1_flush(l1 *s);

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
