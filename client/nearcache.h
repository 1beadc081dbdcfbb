/* libnearcache: the C client of nearcached.
 *
 * A client holds one nng REQ socket to the daemon. Every call is one request
 * and one reply on an nng context of its own (kept in a small pool between
 * calls), so a client may be shared by any number of threads at once. Every
 * call is bounded by a timeout. Functions return 0 (NC_OK) or an nc_err;
 * after a failure, nc_errmsg() and nc_status() describe it for the calling
 * thread.
 *
 *     nc_client *c;
 *     if (nc_open(&c, NULL, 0) != NC_OK)     // NULL: $NEARCACHE_URL, else the packaged socket
 *         return 1;
 *     nc_set(c, NC_STR("users"), NC_STR("42"), NC_STR("alice"), 300000, NC_TIMEOUT_DEFAULT);
 *     void *v;
 *     size_t len;
 *     if (nc_get(c, NC_STR("users"), NC_STR("42"), &v, &len, NC_TIMEOUT_DEFAULT) == NC_OK)
 *         nc_free(v);                         // returned buffers are the caller's
 *     nc_close(c);
 *
 * A client does not survive fork(), nor does nng under it: once a process
 * has opened a client, a child it forks must not call libnearcache at all
 * (nc_close() of the parent's client waits for a thread the child does
 * not have; nng aborts a new nc_open()). A prefork server opens its
 * clients in each worker, after the fork, and none in the parent before.
 *
 * The tutorial (leases, TTL options, batches) is in the README; the wire
 * protocol under it in docs/protocol.md. */
#ifndef NEARCACHE_H
#define NEARCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nc_client nc_client;

/* A byte string that the caller owns; need not be NUL terminated. */
typedef struct nc_bytes {
    const void *data;
    size_t len;
} nc_bytes;

/* nc_bytes of a C string, without its NUL. */
#define NC_STR(s) ((nc_bytes){(s), strlen(s)})

typedef enum nc_err {
    NC_OK = 0,
    NC_ENOTFOUND,      /* no such key */
    NC_EINVAL,         /* INVALID_ARGUMENT: the request broke a rule */
    NC_ETIMEDOUT,      /* DEADLINE_EXCEEDED, or no answer within the timeout */
    NC_EUNAVAILABLE,   /* UNAVAILABLE: the daemon cannot reach Redis, or is stopping */
    NC_ETOOBIG,        /* RESOURCE_EXHAUSTED: over a size limit, or overloaded */
    NC_EPERM,          /* PERMISSION_DENIED */
    NC_EUNIMPLEMENTED, /* UNIMPLEMENTED: the daemon does not know the method */
    NC_ESERVER,        /* INTERNAL or another status */
    NC_ECONNECT,       /* the daemon cannot be reached */
    NC_EPROTO,         /* the reply could not be decoded */
    NC_ENOMEM,         /* out of memory */
    NC_ELEASE,         /* ABORTED: the lease was void (the key was written since); not stored */
    NC_ELOADER,        /* nc_fetch(): the loader failed; nothing was cached */
    NC_EQUEUED,        /* nc_del(), nc_bump(): the daemon is unreachable; kept, sent later */
} nc_err;

/* Flags for nc_open(). */
#define NC_OPEN_BACKGROUND 1u /* don't fail when the daemon is not there yet */

/* The timeout argument of every call: NC_TIMEOUT_DEFAULT uses the client's
 * (nc_set_timeout(), 1000 ms unless changed); otherwise milliseconds > 0. */
#define NC_TIMEOUT_DEFAULT 0

/* nc_set(): use the daemon's default_ttl. */
#define NC_TTL_DEFAULT INT64_MIN

/* Where a value came from. */
typedef enum nc_source {
    NC_SOURCE_UNKNOWN = 0,
    NC_SOURCE_L1 = 1,   /* the daemon's memory */
    NC_SOURCE_L2 = 2,   /* Redis */
    NC_SOURCE_NEAR = 3, /* this process's near tier */
} nc_source;

/* What a Get with a lease found (memcached's meta-get W/Z flags). */
typedef enum nc_lease {
    NC_LEASE_NONE = 0,    /* a hit, or no lease asked */
    NC_LEASE_GRANTED = 1, /* a miss, and you hold the lease: load, then nc_set_ex() with it */
    NC_LEASE_WAITED = 2,  /* another caller held it; you waited for its value */
    NC_LEASE_BUSY = 3,    /* another caller holds it and did not Set in time */
} nc_lease;

typedef struct nc_get_info {
    nc_source source;
    uint64_t ttl_ms;   /* time left: in Redis for L2 reads, in L1 for L1 hits */
    int stale;         /* a stale value: stale_if_error, or stale-while-revalidate */
    uint64_t stale_ms; /* with stale_if_error: may miss writes made since this long ago */
    int negative;      /* with NC_ENOTFOUND: the key is known to be absent */
    nc_lease lease;
    char lease_token[65]; /* with NC_LEASE_GRANTED; NUL-terminated */
} nc_get_info;

/* Options of nc_get_opt(); zero means "not asked". */
typedef struct nc_get_opts {
    int lease;             /* on a miss: take the lease, or wait for its holder */
    uint32_t lease_ttl_ms; /* 0: the daemon's lease_ttl */
    uint64_t slide_ttl_ms; /* sliding TTL: keep the key alive this long after reads */
} nc_get_opts;

/* Options of nc_set_opt(); zero means "not asked". */
typedef struct nc_set_opts {
    const char *lease_token;            /* from a granted lease: store only if still valid */
    int negative;                       /* store "known absent" instead of a value */
    uint64_t stale_while_revalidate_ms; /* serve stale this long past the TTL */
} nc_set_opts;

/* A loader for nc_fetch(): reads the value from the source of truth. On
 * success it returns 0 with *value a buffer from malloc() of *len bytes
 * (nc_fetch() takes it over); any other return is a failure. */
typedef int (*nc_loader)(void *arg, nc_bytes ns, nc_bytes key, void **value, size_t *len);

typedef struct nc_ping_info {
    int redis_up;   /* the daemon has a live Redis connection */
    int subscribed; /* it hears the invalidation channel */
    int l1_serving; /* it is caught up: Gets may be answered from L1 */
    char node_id[17];
    uint64_t uptime_ms;
    char version[32];          /* the daemon's release, e.g. "0.1.0" (truncated to fit) */
    unsigned protocol_version; /* the wire protocol's version; see nc_ping_ex() */
    char redis_error[300]; /* why no Redis connection is up; "" while one is */
} nc_ping_info;

typedef struct nc_stat {
    char *name;
    int64_t value;
} nc_stat;

/* The default daemon URL: $NEARCACHE_URL if set, else the packaged socket
 * ipc:///run/nearcache/nearcached.sock. The string is static or the
 * environment's; do not free it. */
const char *nc_default_url(void);

/* Connects to the daemon at `url` (NULL: nc_default_url()). Without
 * NC_OPEN_BACKGROUND it fails with NC_ECONNECT when nothing listens there,
 * at once, and nc_errmsg() says why: no socket file at the path, a stale
 * one (no daemon running), or (nc_status() PERMISSION_DENIED) the socket's
 * owner, group and mode and the fix. With it, it connects in the
 * background. Either way the client reconnects by itself if the daemon
 * restarts. While it is not connected a call never waits for the daemon:
 * it dials once when a dial is due (50 ms after a failed one, doubling to
 * 2 s), else fails at once with NC_ECONNECT and the last dial's message.
 * Returns 0 and hands the client to *out (the caller owns it; free with
 * nc_close()). */
int nc_open(nc_client **out, const char *url, unsigned flags);

/* Options of nc_open_ex(); zero fields take their defaults. */
typedef struct nc_open_opts {
    unsigned flags; /* NC_OPEN_BACKGROUND */
    /* The near tier: > 0 keeps hot values, and hot "known absent" answers
     * (negative entries), in this process too, in at most this many bytes,
     * so a hit costs no round trip (each entry is charged what it costs in
     * the heap, so this bounds the memory it holds). The daemon's ring
     * keeps it coherent (docs/coherence.md); off by default. */
    size_t near_bytes;
    int64_t near_max_ttl_ms; /* a near entry lives at most this long (0: 60 s) */
    const char *near_ring;   /* the daemon's ring file (NULL: the socket's path + ".ring") */
    /* Invalidations (nc_del() without a lease, nc_bump()) that cannot reach
     * the daemon are kept, at most this many (0: 1000), and sent before
     * anything else once it answers; beyond that, their namespaces are
     * bumped instead. */
    size_t pending_max;
    /* 1: such a call returns NC_EUNAVAILABLE (it is still kept and sent);
     * 0 (default): NC_EQUEUED, which a caller after a committed write may
     * take for success. */
    int strict_invalidations;
} nc_open_opts;

/* nc_open() with options (o may be NULL). A near tier whose ring cannot be
 * mapped (no daemon yet, or a file that is not a ring) does not fail the
 * open: it serves nothing until the ring is there, and nc_stats_near()
 * says why. */
int nc_open_ex(nc_client **out, const char *url, const nc_open_opts *o);

/* The near tier's counters. */
typedef struct nc_near_stats {
    uint64_t hits, misses;
    uint64_t entries, bytes;
    uint64_t evictions;
    uint64_t flushes;       /* emptied: the daemon emptied its L1, restarted or stopped, */
                            /* or an invalidation of this process's own was kept (R2) */
    uint64_t laps;          /* emptied: the ring overtook this reader */
    uint64_t fills_refused; /* replies not kept: the key changed while they were in flight */
    int serving;            /* whether it may serve now */
    char problem[256];      /* why it cannot map the ring, if it cannot */
} nc_near_stats;

/* Fills *out. Returns NC_OK, or NC_EINVAL when the client has no near tier. */
int nc_stats_near(nc_client *c, nc_near_stats *out);

/* Closes the client, after sending the invalidations still kept when the
 * daemon answers (within the client's timeout). Calls still running on
 * other threads fail. Accepts NULL. */
void nc_close(nc_client *c);

/* Sets the client's default timeout (ms > 0). */
void nc_set_timeout(nc_client *c, int timeout_ms);

/* Reads a value. On NC_OK *value is a new buffer holding *len bytes plus a
 * NUL that *len does not count; the caller owns it and frees it with
 * nc_free(). NC_ENOTFOUND when the key does not exist. On any error
 * *value is NULL and *len 0. */
int nc_get(nc_client *c, nc_bytes ns, nc_bytes key, void **value, size_t *len, int timeout_ms);

/* nc_get() that also says where the value came from (info may be NULL). */
int nc_get_ex(nc_client *c, nc_bytes ns, nc_bytes key, void **value, size_t *len, nc_get_info *info,
              int timeout_ms);

/* nc_get_ex() with options (opts may be NULL). With a lease: a miss returns
 * NC_ENOTFOUND with info->lease NC_LEASE_GRANTED and the token (you load
 * and nc_set_opt() with it), or NC_ETIMEDOUT with NC_LEASE_BUSY when the
 * holder did not Set before the timeout; a value someone else loaded while
 * you waited returns NC_OK with NC_LEASE_WAITED. info may be NULL only
 * without a lease. */
int nc_get_opt(nc_client *c, nc_bytes ns, nc_bytes key, const nc_get_opts *opts, void **value,
               size_t *len, nc_get_info *info, int timeout_ms);

/* Read-through: the value of the key, loaded with `loader` on a miss by
 * exactly one caller across all hosts (a lease), stored for ttl_ms
 * (NC_TTL_DEFAULT: the daemon's), and shared with every caller that missed
 * meanwhile. A loader failure caches nothing (NC_ELOADER). When the daemon
 * cannot be reached, the loader is called directly if nc_set_fail_open()
 * was set, else the error is returned. On NC_OK *value is a new buffer of
 * *len bytes plus a NUL (caller frees it with nc_free()). */
int nc_fetch(nc_client *c, nc_bytes ns, nc_bytes key, int64_t ttl_ms, nc_loader loader, void *arg,
             void **value, size_t *len, int timeout_ms);

/* Whether nc_fetch() calls its loader directly when the daemon cannot be
 * reached (fail open, on = 1) or returns the error (the default). */
void nc_set_fail_open(nc_client *c, int on);

/* Writes a value with a time to live in ms (NC_TTL_DEFAULT: the daemon's
 * default; the daemon caps it at its max_ttl and rejects ttl <= 0). */
int nc_set(nc_client *c, nc_bytes ns, nc_bytes key, nc_bytes value, int64_t ttl_ms, int timeout_ms);

/* nc_set() with options (opts may be NULL). A lease that is no longer
 * valid returns NC_ELEASE and stores nothing. */
int nc_set_opt(nc_client *c, nc_bytes ns, nc_bytes key, nc_bytes value, int64_t ttl_ms,
               const nc_set_opts *opts, int timeout_ms);

/* One key's answer in nc_mget(). `value` (a buffer of len bytes plus a
 * NUL) belongs to the array. */
typedef struct nc_item {
    int found;
    int negative; /* not found, and known to be absent */
    int stale;
    nc_source source;
    void *value;
    size_t len;
} nc_item;

/* Reads n keys of one namespace in one request: hits come from the daemon's
 * L1, and all misses from Redis in one round trip. On NC_OK *items is a new
 * array of n answers in the order of keys; the caller owns it and frees it
 * with nc_items_free(). */
int nc_mget(nc_client *c, nc_bytes ns, const nc_bytes *keys, size_t n, nc_item **items,
            int timeout_ms);
void nc_items_free(nc_item *items, size_t n);

/* One write of nc_mset(); ttl_ms 0 is the daemon's default_ttl. */
typedef struct nc_entry {
    nc_bytes key;
    nc_bytes value;
    int64_t ttl_ms;
} nc_entry;

/* Writes n entries of one namespace in one request, one Redis round trip and
 * one invalidation message. On one Redis server it stores every entry or
 * none; on a Redis Cluster each hash slot's entries are stored together,
 * and some slots may fail while others are stored (nc_mset_stored() says
 * which). */
int nc_mset(nc_client *c, nc_bytes ns, const nc_entry *entries, size_t n, int timeout_ms);

/* What nc_mset_stored() says of an entry. */
#define NC_NOT_STORED 0      /* not stored: retry it */
#define NC_STORED 1          /* stored */
#define NC_STORED_UNKNOWN -1 /* maybe stored (its answer was lost, or the daemon said
                                nothing of it): retrying it is safe */

/* nc_mset() that says entry by entry what was stored, in stored[i] (an
 * array of n the caller owns; may be NULL): all NC_STORED on NC_OK; after
 * an error, what the daemon's answer said of each entry (docs/protocol.md,
 * MSet); when it said nothing, NC_NOT_STORED for every entry after a
 * request refused whole (NC_EINVAL, NC_ETOOBIG, NC_EPERM, NC_EUNIMPLEMENTED)
 * or never sent (NC_ECONNECT, NC_ENOMEM), else NC_STORED_UNKNOWN. */
int nc_mset_stored(nc_client *c, nc_bytes ns, const nc_entry *entries, size_t n, int *stored,
                   int timeout_ms);

/* Deletes a key. *existed (may be NULL) says whether Redis held it. When
 * the daemon cannot be reached the Delete is kept and sent before anything
 * else once it can, the near tier drops the key at once, and the call
 * returns NC_EQUEUED (*existed 0), or NC_EUNAVAILABLE with
 * strict_invalidations. */
int nc_del(nc_client *c, nc_bytes ns, nc_bytes key, int *existed, int timeout_ms);

/* Asks the daemon whether it is alive. *redis_up (may be NULL) says whether
 * it has a live Redis connection. */
int nc_ping(nc_client *c, int *redis_up, int timeout_ms);

/* nc_ping() with everything the daemon says about itself (info may be
 * NULL). Both fail with NC_EPROTO, naming both versions, when the daemon
 * speaks another wire protocol version than this library (one that does not
 * say speaks version 1). */
int nc_ping_ex(nc_client *c, nc_ping_info *info, int timeout_ms);

/* Bumps a namespace's version: every key of it is dropped on every node at
 * once. *version (may be NULL) gets the new version. An unreachable daemon
 * is handled as by nc_del() (*version 0). */
int nc_bump(nc_client *c, nc_bytes ns, uint64_t *version, int timeout_ms);

/* Reads the daemon's counters. On NC_OK *out is a new array of *n entries;
 * the caller owns it and frees it with nc_stats_free(). */
int nc_stats(nc_client *c, nc_stat **out, size_t *n, int timeout_ms);
void nc_stats_free(nc_stat *stats, size_t n);

/* Gets of one namespace (see the daemon's namespace_metrics): the busiest
 * namespaces have a row each, the rest add up in the row with other = 1. */
typedef struct nc_ns_stat {
    char *ns; /* NUL-terminated copy (ns_len bytes, may hold NULs); "" for other */
    size_t ns_len;
    int other;     /* the row of every namespace without one of its own */
    int truncated; /* ns is the name's first 128 bytes */
    uint64_t hits, misses;           /* the daemon's Gets */
    uint64_t near_hits, near_misses; /* the near tiers' lookups, as clients report them */
    uint64_t acl_denied;             /* requests answered PERMISSION_DENIED by the acl rules */
} nc_ns_stat;

/* nc_stats() that also reads the namespaces' rows, from the same reply:
 * *ns (may be NULL, with *nns) is a new array of *nns rows, the busiest
 * first and other last (none when the daemon counts no namespaces); the
 * caller owns it and frees it with nc_ns_stats_free(). */
int nc_stats_ex(nc_client *c, nc_stat **out, size_t *n, nc_ns_stat **ns, size_t *nns,
                int timeout_ms);
void nc_ns_stats_free(nc_ns_stat *ns, size_t n);

/* Frees a buffer that the library handed out. Accepts NULL. */
void nc_free(void *p);

/* A constant description of an error code. */
const char *nc_strerror(int err);

/* For the last failed call on this thread: the daemon's gRPC status code
 * (0 when the failure happened in the client) and its message, or the
 * client's own. The string belongs to the thread; it is overwritten by its
 * next failing call. */
int nc_status(void);
const char *nc_errmsg(void);

/* The gRPC name of a status code ("NOT_FOUND"). Constant string. */
const char *nc_status_name(int status);

#ifdef __cplusplus
}
#endif

#endif
