/* L2: one blocking connection to Redis through hiredis, with the commands
 * the cache needs. A handle outlives its connection: after an I/O error or a
 * timeout the connection is dropped, and the next command reconnects, no
 * sooner than a backoff (100 ms doubling to 5 s) after a failed attempt;
 * until then commands fail fast with L2_EDOWN. A handle is used by one
 * thread at a time (each L2 worker owns one). */
#ifndef NC_L2_H
#define NC_L2_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hist.h"
#include "keyspace.h"

typedef struct l2 l2;

/* What a Redis command came to: the one status type of this layer. */
typedef enum l2_status {
    L2_OK = 0,
    L2_NIL,      /* the key does not exist */
    L2_EDOWN,    /* not connected, and not retrying yet */
    L2_ETIMEOUT, /* Redis did not answer in time; the connection is dropped */
    L2_EREPLY,   /* Redis answered with an error (message in l2_error) */
} l2_status;

/* Where a key lives: the data key PREFIX:NS:VER:KEY is built inside Redis
 * from the namespace's current version. A script that finds the version
 * missing, or below `floor`, first recreates it above both (see l2.c), so
 * a version never goes back. All fields are the caller's. */
typedef struct l2_key {
    const char *prefix; /* NUL-terminated, at most KS_PREFIX_MAX bytes */
    const void *ns;     /* at most KS_NS_MAX bytes */
    size_t nslen;
    const void *key;
    size_t klen;
    uint64_t floor; /* the highest version of ns the caller has seen; 0: none */
} l2_key;

/* An invalidation to publish with a write, on `channel`. The caller's. */
typedef struct l2_msg {
    const char *channel;
    const void *data;
    size_t len;
} l2_msg;

/* A value read from Redis. `data` stays valid until l2_value_free(). */
typedef struct l2_value {
    const void *data;
    size_t len;
    int64_t pttl_ms;  /* remaining TTL; -1 when the key has none */
    uint64_t version; /* the namespace version it was read under */
    int lease;        /* a LeaseState: 1 granted, 3 someone else holds it */
    int stale;        /* past its TTL, served under stale-while-revalidate */
    int negative;     /* L2_NIL because the key is known absent */
    void *reply_;     /* owned hiredis reply */
} l2_value;

/* What a Get asks for besides the value. All fields may be zero. */
typedef struct l2_get_opts {
    int lease;         /* take the lease on a miss (or on a stale value) */
    const char *token; /* the token to take it with (NUL-terminated) */
    int64_t lease_ttl_ms;
    int64_t slide_ms; /* extend the key's TTL to this on a fresh hit */
} l2_get_opts;

/* What a Set asks for besides the value. All fields may be zero. */
typedef struct l2_set_opts {
    const char *token; /* a lease token: store only while it is valid */
    size_t token_len;
    int negative;   /* store "known absent" instead of the value */
    int64_t swr_ms; /* serve stale this long past the TTL */
} l2_set_opts;

/* Connects to `url` and runs AUTH and SELECT as it asks, with timeout_ms
 * for the connect and for each later read or write (a blocking context).
 * Returns the context (free with redisFree()), or NULL with a message
 * naming Redis and the problem in err. */
struct redisContext *l2_dial(const config_redis_url *url, int64_t timeout_ms, char *err,
                             size_t errlen);

/* Makes a handle for `url` (copied) with the given connect timeout. Does
 * not connect yet. `name` tags log lines; `stream` numbers the invalidation
 * messages it publishes. Returns 0 and hands the handle to *out (caller owns
 * it; free with l2_destroy()), or ENOMEM. */
int l2_create(l2 **out, const config_redis_url *url, int64_t connect_timeout_ms, const char *name,
              uint32_t stream);

/* Closes the connection and frees the handle. Accepts NULL. */
void l2_destroy(l2 *c);

/* Connects now unless connected or inside the backoff. Returns L2_OK when
 * connected, L2_EDOWN otherwise. `now` is units_now_ms(). */
l2_status l2_connect(l2 *c, int64_t now);

/* Shares with other handles the time any of them last connected (a handle
 * in its backoff tries again at once when another got through since) and
 * the count of those connected, which a handle updates as it connects and
 * drops, before the command that caused it returns. Either may be NULL. */
void l2_share_up(l2 *c, _Atomic int64_t *up_at, atomic_size_t *up_count);

/* Lets the next command try to connect at once, ignoring the backoff (for
 * when Redis is known to be reachable again). */
void l2_retry_now(l2 *c);

/* Records each command's round trip (send to reply, or failure) in rtt
 * (not owned; NULL: none). Set it before the handle is used. */
void l2_set_timing(l2 *c, hist *rtt);

/* After a failed command: whether it may have run in Redis anyway (it was
 * sent, and the answer was lost or late), as opposed to surely not (no
 * connection, or Redis refused it). */
int l2_maybe_ran(const l2 *c);

/* Whether the handle holds a live connection. */
int l2_connected(const l2 *c);

/* The message of the last L2_EREPLY/L2_ETIMEOUT/L2_EDOWN on this handle.
 * The string belongs to the handle and lives until its next command. */
const char *l2_error(const l2 *c);

/* Checks the connection with PING (or connects, if it has none and the
 * backoff allows). Returns L2_OK when it is live. */
l2_status l2_ping(l2 *c, int64_t timeout_ms);

/* Reads a key's value, remaining TTL and namespace version in one atomic
 * round trip, taking a lease or sliding the TTL as `o` (may be NULL) asks.
 * Returns L2_OK and fills *out (free with l2_value_free()), L2_NIL (the
 * other fields of *out still set), or an error. `timeout_ms` bounds the wait
 * for the answer. */
l2_status l2_get(l2 *c, const l2_key *k, const l2_get_opts *o, int64_t timeout_ms, l2_value *out);

/* SET with PX ttl_ms (as `o`, may be NULL, asks) and PUBLISH m,
 * atomically. *version gets the namespace version written under; *stored is
 * 0 when a lease token was given and is no longer valid (nothing written,
 * nothing published). Returns L2_OK or an error. */
l2_status l2_set(l2 *c, const l2_key *k, const void *value, size_t vlen, int64_t ttl_ms,
                 const l2_set_opts *o, const l2_msg *m, int64_t timeout_ms, uint64_t *version,
                 int *stored);

/* DEL (the key and its lease, negative and stale-while-revalidate marks)
 * and PUBLISH m, atomically; *existed says whether the key was there. With
 * a token (may be NULL), releases only the lease of that token instead
 * (*existed: whether it was held). */
l2_status l2_del(l2 *c, const l2_key *k, const void *token, size_t token_len, const l2_msg *m,
                 int64_t timeout_ms, int *existed, uint64_t *version);

/* Raises the namespace version of k by one (k->key unused) and PUBLISHes m
 * with the new version appended as field bump_version, atomically. */
l2_status l2_bump(l2 *c, const l2_key *k, const l2_msg *m, int64_t timeout_ms, uint64_t *version);

/* The answer of l2_mget(), read with l2_batch_item(). */
typedef struct l2_batch {
    uint64_t version;
    size_t n;
    void *reply_; /* owned hiredis reply */
} l2_batch;

/* Reads the keys keys[i].key (only key and klen are used) of k's namespace
 * in one atomic round trip. Returns L2_OK and fills *out (free with
 * l2_batch_free()), or an error. */
l2_status l2_mget(l2 *c, const l2_key *k, const l2_key *keys, size_t n, int64_t timeout_ms,
                  l2_batch *out);

/* Item i of a batch into *v (no lease; `data` valid until the batch is
 * freed; do not l2_value_free() it). Returns L2_OK or L2_NIL. */
l2_status l2_batch_item(const l2_batch *b, size_t i, l2_value *v);
void l2_batch_free(l2_batch *b);

/* One write of l2_mset(). The caller's. */
typedef struct l2_entry {
    const void *key;
    size_t klen;
    const void *value;
    size_t vlen;
    int64_t ttl_ms;
} l2_entry;

/* SETs every entry under k's namespace (voiding their leases and marks) and
 * PUBLISHes m once, atomically. */
l2_status l2_mset(l2 *c, const l2_key *k, const l2_entry *e, size_t n, const l2_msg *m,
                  int64_t timeout_ms, uint64_t *version);

/* PUBLISH m. */
l2_status l2_publish(l2 *c, const l2_msg *m, int64_t timeout_ms);

/* The stream number, and its sequence: the seq the next message must carry,
 * and l2_confirm_seq() once the write that published it succeeded. A seq
 * whose write failed is used again, so receivers see no gap for a message
 * that was never sent (and a repeat, harmless, for one that was).
 * l2_confirmed_seq() may be read from any thread. */
uint32_t l2_stream(const l2 *c);
uint64_t l2_next_seq(const l2 *c);
void l2_confirm_seq(l2 *c, uint64_t seq);
uint64_t l2_confirmed_seq(const l2 *c);

/* Frees what l2_get() handed out. Accepts a zeroed value. */
void l2_value_free(l2_value *v);

#endif
