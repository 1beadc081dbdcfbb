/* libnearcache's insides, shared by its files (client.c: connection,
 * calls, single-key methods; batch.c: MGet and MSet; admin.c: Ping, Bump,
 * Stats); not installed. */
#ifndef NC_CLIENT_H
#define NC_CLIENT_H

#include <stdatomic.h>

#include "codec.h"
#include "ctxpool.h"
#include "near.h"
#include "nearcache.h"

struct nc_client {
    nng_socket sock;
    atomic_int timeout_ms;
    atomic_uint_fast64_t next_id;
    atomic_int pipes;             /* connections to the daemon right now */
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

/* A view of b as protobuf-c bytes (no copy). */
ProtobufCBinaryData client_bin(nc_bytes b);

#endif
