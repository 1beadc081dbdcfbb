/* libnearcache's insides, shared by its files (client.c: connection,
 * calls, single-key methods; batch.c: MGet and MSet; admin.c: Ping, Bump,
 * Stats, NearReport; conn.c: the dial rule; pending.c: undelivered
 * invalidations; worker.c: the background thread); not installed. */
#ifndef NC_CLIENT_H
#define NC_CLIENT_H

#include <stdatomic.h>

#include "codec.h"
#include "conn.h"
#include "ctxpool.h"
#include "near.h"
#include "nearcache.h"
#include "pending.h"

struct worker;

struct nc_client {
    nng_socket sock;
    atomic_int timeout_ms;
    atomic_uint_fast64_t next_id;
    conn conn;                    /* the dial rule (conn.h) */
    pending *pending;             /* invalidations not delivered yet */
    int strict;                   /* nc_open_opts.strict_invalidations */
    _Atomic(struct worker *) worker; /* flushes `pending`, sends near reports */
    _Atomic uint64_t max_request; /* the daemon's, from Ping; 0: not asked yet */
    atomic_int fail_open;         /* nc_fetch() loads directly when the daemon is away */
    ctxpool pool;                 /* (context, aio) pairs of sock for the calls */
    near *near;                   /* the near tier, or NULL */
    char url[512];
};

/* Records a failure for nc_errmsg() (this thread's) and returns err. */
int client_fail(int err, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sends req and waits for its reply, which must carry `result`. Returns
 * NC_OK with *out the reply (the caller frees it with codec_reply_free()),
 * or an error recorded for nc_errmsg(). */
int client_call_expect(nc_client *c, pb_request *req, int timeout_ms, int result, pb_reply **out);

/* client_call_expect() that, with `keep`, also hands back an error reply
 * carrying `result` in *out (the caller frees it); *out is NULL on any
 * other error. */
int client_call_result(nc_client *c, pb_request *req, int timeout_ms, int result, int keep,
                       pb_reply **out);

/* A view of b as protobuf-c bytes (no copy). */
ProtobufCBinaryData client_bin(nc_bytes b);

/* Whether a request may be sent now: the dial rule (conn_ready()), then the
 * pending invalidations sent first. Returns NC_OK (also when the daemon
 * could not apply a pending one yet: it stays kept) or the recorded error. */
int client_ready(nc_client *c);

/* What a Delete (key.data != NULL) or bump (key.data NULL) that failed
 * with rv becomes: when the daemon could not be reached, it is kept for
 * later and the result is NC_EQUEUED (NC_EUNAVAILABLE with strict
 * invalidations); otherwise rv. */
int client_invalidation_failed(nc_client *c, nc_bytes ns, nc_bytes key, int rv);

/* Sends the near tier's counters as a NearReport (worker.c), as
 * `reporter`, saying whether a daemon took a report of it before.
 * Returns NC_OK with *interval_ms the daemon's wish, or an nc_err. */
int client_near_report(nc_client *c, uint64_t reporter, int reported_before,
                       const nc_near_stats *s, int timeout_ms, uint32_t *interval_ms);

/* The background thread: started by nc_open_ex(), stopped by nc_close(). */
int worker_start(nc_client *c);
void worker_wake(nc_client *c);
void worker_stop(nc_client *c);          /* joins the thread; sends a last report */
void worker_free(nc_client *c);          /* after the socket is closed */

#endif
