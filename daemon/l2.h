/* L2: the scripts half of the Redis layer: the commands the cache needs,
 * each one Lua script (or one command), and the decoding of their replies,
 * over a connection of l2conn.h (reconnect, backoff) that a handle owns.
 * Key names are keyspace.h's; invalidation messages come built by the
 * caller (their sequence numbers are coherence.h's). A handle is used by
 * one thread at a time (each L2 worker owns one). */
#ifndef NC_L2_H
#define NC_L2_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "keyspace.h"
#include "l2conn.h"

typedef struct l2 l2;

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
    int known;      /* floor is ns's current version as far as the caller knows, and it is
                       serving (heard every bump older than the coherence window): on a
                       Cluster the scripts then run under it without reading the version */
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

/* Makes a handle over a new connection to `url` (l2conn_create() with
 * `name`), which loads the scripts on every connect. `stream` is the
 * number of the invalidation stream its writes publish on. Returns 0 and
 * hands the handle to *out (caller owns it; free with l2_destroy()), or
 * ENOMEM. */
int l2_create(l2 **out, const config_redis_url *url, int64_t connect_timeout_ms, const char *name,
              uint32_t stream);

/* Closes the connection and frees the handle. Accepts NULL. */
void l2_destroy(l2 *c);

/* The handle's connection (owned by the handle), for l2conn's functions. */
l2conn *l2_conn(l2 *c);

/* The stream number given to l2_create(). */
uint32_t l2_stream(const l2 *c);

/* After a failed command: l2conn_maybe_ran() of the handle's connection. */
int l2_maybe_ran(const l2 *c);

/* l2conn_error() of the handle's connection: the message of the last
 * failure, valid until the next command. */
const char *l2_error(const l2 *c);

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

/* Raises the namespace version of k (k->key unused) from `from` to
 * from + 1 and PUBLISHes m (the caller built it for from + 1), atomically,
 * if Redis holds `from` once a missing or below-floor version is raised as
 * in every script. Returns L2_OK with *version the version Redis now holds
 * and *bumped 1 when it bumped; 0 when Redis held another version (nothing
 * written or published): the caller tries again from *version. Never sent
 * twice: a lost answer is an error with l2_maybe_ran() set. */
l2_status l2_bump(l2 *c, const l2_key *k, uint64_t from, const l2_msg *m, int64_t timeout_ms,
                  uint64_t *version, int *bumped);

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

/* Entries of an l2_mset() that failed together: all of them on one
 * server, one hash slot's on a Cluster. */
typedef struct l2_mset_fail {
    l2_status status;
    int maybe_ran; /* the script may have run: its entries may be stored */
    char message[320];
} l2_mset_fail;

/* What l2_mset() did with each entry. Free with l2_mset_result_free(). */
typedef struct l2_mset_result {
    size_t stored;        /* entries stored */
    int *fail;            /* per entry: -1 stored, else its failure, an index into fails */
    l2_mset_fail *fails;  /* nfails of them, in the order of their first entry */
    size_t nfails;
} l2_mset_result;

/* SETs every entry under k's namespace (voiding their leases and marks) and
 * PUBLISHes m, atomically: in one script on one server; on a Cluster in one
 * script per hash slot, each publishing m after its writes, every slot
 * tried within timeout_ms even when one fails. Returns L2_OK when every
 * entry was stored, else the first failure's status with a message saying
 * how many were stored. Either way *version is the version written under
 * when any entry was stored, and *res (the caller frees it with
 * l2_mset_result_free(), also after an error) says entry by entry. */
l2_status l2_mset(l2 *c, const l2_key *k, const l2_entry *e, size_t n, const l2_msg *m,
                  int64_t timeout_ms, uint64_t *version, l2_mset_result *res);
void l2_mset_result_free(l2_mset_result *res);

/* WAIT replicas wait_ms on the handle's connection, right after a write's
 * script, within timeout_ms (more than wait_ms). Returns L2_OK with
 * *acked the number of replicas that have every write of this connection
 * so far. On a Cluster, WAIT goes to every master the last write's scripts
 * ran on (an MSet's slots may span all), within one wait_ms, and *acked is
 * the least of their answers. Never reconnects (a new connection's WAIT
 * would say nothing of the write): without one, L2_EDOWN. */
l2_status l2_wait(l2 *c, int replicas, int64_t wait_ms, int64_t timeout_ms, int *acked);

/* PUBLISH msg on `channel`; on a Cluster SPUBLISH, on the master of the
 * channel's slot (following MOVED), so that every message of the channel
 * is ordered by that one server. A lost answer may be sent again. Returns
 * L2_OK once Redis took it, or an error. */
l2_status l2_publish(l2 *c, const char *channel, const void *msg, size_t len,
                     int64_t timeout_ms);

/* Whether the handle is on a Cluster (its channel is sharded). */
int l2_sharded(const l2 *c);

/* The handle's Cluster routing (its slot map), or NULL on one server. The
 * handle's: used by the handle's thread only. */
struct l2cluster *l2_cluster(l2 *c);

/* Frees what l2_get() handed out. Accepts a zeroed value. */
void l2_value_free(l2_value *v);

#endif
