/* server: the RPC front end. One nng REP socket, many contexts; each context
 * is a small state machine (receive -> handle -> send -> receive) driven by
 * its aio callback, so requests are served concurrently and a request
 * waiting on Redis holds only its own context. The server decodes requests,
 * answers the ones it cannot decode or route, and hands the rest to the
 * handler. */
#ifndef NC_SERVER_H
#define NC_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "call_state.h"
#include "codec.h"
#include "jobq.h"
#include "stats.h"
#include "wire.h"

typedef struct server server;
typedef struct call call; /* one request in flight on one context */

/* Called on an nng thread for each decoded request with a known method. It
 * must answer exactly once with call_reply() (or call_prepare() and
 * call_send()), now or later from any thread. */
typedef void (*server_handler)(void *arg, call *c);

/* What happens to the group of an ipc:// socket file. */
enum server_group {
    SERVER_GROUP_KEEP,     /* the daemon's own */
    SERVER_GROUP_REQUIRED, /* socket_gid, or the server does not start */
    SERVER_GROUP_TRY,      /* socket_gid if the daemon may, else its own (logged) */
};

typedef struct server_options {
    const char *url;            /* where to listen */
    size_t contexts;            /* concurrent requests */
    size_t recv_max;            /* larger messages are dropped by nng */
    int64_t default_timeout_ms; /* budget of a request with timeout_ms 0 */
    server_handler handler;
    void *handler_arg;
    stats *stats;                /* counters; not owned, must outlive the server */
    unsigned socket_mode;        /* ipc:// socket file permissions; 0: 0660 */
    enum server_group set_group; /* whether the socket file goes to socket_gid */
    gid_t socket_gid;
} server_options;

/* Listens and starts serving. Returns 0 and hands the server to *out (the
 * caller owns it; stop with server_drain() and server_destroy()), or an nng error code, with a
 * message in err. */
int server_create(server **out, const server_options *opt, char *err, size_t errlen);

/* Stops taking new requests (from its call on, those that still arrive are
 * neither run nor answered: their clients see the connection closed when
 * the server is; an ipc:// socket file is removed, so that new clients
 * fail to connect) and lets the ones in flight finish for up to drain_ms;
 * from its return on, the handler is never called again.
 * Returns how many were still in flight when it stopped waiting.
 * Calls parked in a jobq are answered when that queue is destroyed: destroy
 * it after this and before server_destroy(). */
size_t server_drain(server *s, int64_t drain_ms);

/* How many request cycles (receive, answer, send) have finished: a counter
 * that grows while the request loop makes progress. Any thread. */
uint64_t server_progress(server *s);

/* One probe: a new connection to the server's own URL, a Ping, its answer
 * (at most about 2 s). Returns 1 when answered, or when no probe could be
 * made (so it never reports a fault it did not see). Any thread. */
int server_probe(server *s);

/* Closes the socket and frees the server. Accepts NULL. */
void server_destroy(server *s);

/* server_destroy(), waiting at most within_ms (< 0: for ever) for nng to
 * close the socket. Returns 0, or -1 when nng had not closed it by then
 * (nng 1.5.2 can hang there for good; see server.c): the server is then
 * left half closed, and the caller should end the process. */
int server_close(server *s, int64_t within_ms);

/* The decoded request. Owned by the call; valid until it is answered. */
const pb_request *call_request(const call *c);

/* The uid and gid of the process that sent the request, as the kernel
 * told at connect (SO_PEERCRED): returns 1 with them set, or 0 when the
 * transport cannot tell (tcp://) or the connection is gone. One system
 * call each; any thread while the call is unanswered. */
int call_peer(const call *c, uid_t *uid, gid_t *gid);

/* The request's deadline, in units_now_ms() time. */
int64_t call_deadline(const call *c);

/* Encodes `r` (id is taken from the request) into the call's reply message
 * without sending it. Returns 0 or ENOMEM. May be called with locks held. */
int call_prepare(call *c, const pb_reply *r);

/* call_prepare() for a Get's reply, encoded by hand (wire.h) straight into
 * the message: the hot path of an L1 hit. The caller keeps r and the bytes
 * it points to. */
int call_prepare_get(call *c, const wire_get_reply *r);

/* Says which tier answers the call (enum stats_tier), for the latency
 * histograms of Gets; set it before the reply is sent. */
void call_set_tier(call *c, int tier);

/* Sends the prepared reply, recording the call's latency (struct stats);
 * the call must not be used afterwards. */
void call_send(call *c);

/* call_prepare() + call_send(). Answers INTERNAL if encoding fails (and
 * nothing, logging it, if even that cannot be encoded). */
void call_reply(call *c, const pb_reply *r);

/* Answers with an error status and a message (formatted like printf). */
void call_fail(call *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* How many contexts are free right now (not holding a request). */
size_t call_free_contexts(const call *c);

/* The handler's typed state of the call (zeroed when the request arrived),
 * owned by the call and valid until it is answered. */
call_state *call_state_of(call *c);

/* The call whose state s is. */
call *call_of_state(call_state *s);

/* The job slot embedded in every call, for handing it to the jobq, and back. */
jobq_job *call_job(call *c);
call *call_of_job(jobq_job *job);

#endif
