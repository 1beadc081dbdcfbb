/* libnearcache: the C client of nearcached.
 *
 * A client holds one nng REQ socket to the daemon. Every call is one request
 * and one reply on its own nng context, so a client may be shared by any
 * number of threads at once. Every call is bounded by a timeout. Functions
 * return 0 (NC_OK) or an nc_err; after a failure, nc_errmsg() and
 * nc_status() describe it for the calling thread. */
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
} nc_err;

/* Flags for nc_open(). */
#define NC_OPEN_BACKGROUND 1u /* don't fail when the daemon is not there yet */

/* The timeout argument of every call: NC_TIMEOUT_DEFAULT uses the client's
 * (nc_set_timeout(), 1000 ms unless changed); otherwise milliseconds > 0. */
#define NC_TIMEOUT_DEFAULT 0

/* nc_set(): use the daemon's default_ttl. */
#define NC_TTL_DEFAULT INT64_MIN

/* Where a value came from. */
typedef enum nc_source { NC_SOURCE_UNKNOWN = 0, NC_SOURCE_L1 = 1, NC_SOURCE_L2 = 2 } nc_source;

typedef struct nc_get_info {
    nc_source source;
    uint64_t ttl_ms;   /* time left: in Redis for L2 reads, in L1 for L1 hits */
    int stale;         /* Redis was unreachable: an L1 entry under stale_if_error */
    uint64_t stale_ms; /* ...which may miss writes made since this long ago */
} nc_get_info;

typedef struct nc_ping_info {
    int redis_up;   /* the daemon has a live Redis connection */
    int subscribed; /* it hears the invalidation channel */
    int l1_serving; /* it is caught up: Gets may be answered from L1 */
    char node_id[17];
    uint64_t uptime_ms;
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
 * NC_OPEN_BACKGROUND it fails with NC_ECONNECT when nothing listens there;
 * with it, it connects in the background. Either way the client reconnects
 * by itself if the daemon restarts. Returns 0 and hands the client to *out
 * (the caller owns it; free with nc_close()). */
int nc_open(nc_client **out, const char *url, unsigned flags);

/* Closes the client. Calls still running on other threads fail. Accepts
 * NULL. */
void nc_close(nc_client *c);

/* Sets the client's default timeout (ms > 0). */
void nc_set_timeout(nc_client *c, int timeout_ms);

/* Reads a value. On NC_OK *value is a new buffer holding *len bytes plus a
 * NUL that *len does not count; the caller owns it and frees it with
 * nc_free(). NC_ENOTFOUND when the key does not exist. */
int nc_get(nc_client *c, nc_bytes ns, nc_bytes key, void **value, size_t *len, int timeout_ms);

/* nc_get() that also says where the value came from (info may be NULL). */
int nc_get_ex(nc_client *c, nc_bytes ns, nc_bytes key, void **value, size_t *len, nc_get_info *info,
              int timeout_ms);

/* Writes a value with a time to live in ms (NC_TTL_DEFAULT: the daemon's
 * default; the daemon caps it at its max_ttl and rejects ttl <= 0). */
int nc_set(nc_client *c, nc_bytes ns, nc_bytes key, nc_bytes value, int64_t ttl_ms, int timeout_ms);

/* Deletes a key. *existed (may be NULL) says whether Redis held it. */
int nc_del(nc_client *c, nc_bytes ns, nc_bytes key, int *existed, int timeout_ms);

/* Asks the daemon whether it is alive. *redis_up (may be NULL) says whether
 * it has a live Redis connection. */
int nc_ping(nc_client *c, int *redis_up, int timeout_ms);

/* nc_ping() with everything the daemon says about itself (info may be
 * NULL). */
int nc_ping_ex(nc_client *c, nc_ping_info *info, int timeout_ms);

/* Bumps a namespace's version: every key of it is dropped on every node at
 * once. *version (may be NULL) gets the new version. */
int nc_bump(nc_client *c, nc_bytes ns, uint64_t *version, int timeout_ms);

/* Reads the daemon's counters. On NC_OK *out is a new array of *n entries;
 * the caller owns it and frees it with nc_stats_free(). */
int nc_stats(nc_client *c, nc_stat **out, size_t *n, int timeout_ms);
void nc_stats_free(nc_stat *stats, size_t n);

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
