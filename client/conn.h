/* conn: libnearcache's connection to the daemon and the dial rule every
 * client follows (docs/protocol.md, "Client rules", R1). One nng dialer,
 * made once a daemon is found and never closed, keeps the connection and
 * redials in the background after a loss (every 20 to 100 ms). While no
 * pipe is up, a call never waits for one unless a daemon is there: when a
 * dial is due it probes the socket once, at once (connect(): a missing
 * file, a stale one or a permission error is known in microseconds), and
 * otherwise fails at once with the last probe's error; after a failure the
 * next is due after a backoff (50 ms doubling to 2 s, with jitter; reset
 * by a success), or at once when the socket file changed since (a daemon
 * that started again: one stat()). Errors name the cause and the fix.
 * Private to the client library. */
#ifndef NC_CONN_H
#define NC_CONN_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#define CONN_BACKOFF_MIN_MS 50
#define CONN_BACKOFF_MAX_MS 2000
#define CONN_LINGER 8 /* probe connections kept until the daemon's handshake */

typedef struct conn {
    nng_socket sock;
    atomic_int pipes; /* connections up now (nng's pipe events) */
    pthread_mutex_t mu;
    /* under mu: */
    nng_dialer dialer;
    int has_dialer;
    int64_t due_ms;     /* when the next dial may be made */
    int64_t backoff_ms; /* the wait after the next failure (before jitter) */
    int err, status;    /* the last dial's failure (nc_err, gRPC status) */
    char msg[1024];     /* ...and its message */
    ino_t ino;          /* the socket file's inode at that failure; 0: absent */
    int64_t mtime_ns;   /* ...and its change time */
    int linger[CONN_LINGER]; /* probes the daemon has not answered yet */
    size_t nlinger;
    char url[512];
} conn;

/* Sets up k over sock (the caller keeps owning it) for url. Returns 0 or
 * an errno value. */
int conn_init(conn *k, nng_socket sock, const char *url);

/* Dials now, once: probes an ipc:// socket, then makes the dialer, which
 * connects before this returns unless `background`. Returns NC_OK, or the
 * dial's nc_err, recorded for nc_errmsg(). */
int conn_open(conn *k, int background);

/* Closes the probe connections the daemon has answered since. Any thread. */
void conn_reap(conn *k);

/* Whether a request may be sent now: NC_OK when a pipe is up (one atomic
 * load), else the outcome of one dial if one is due, else the last dial's
 * error at once (recorded for nc_errmsg()). Any thread. */
int conn_ready_slow(conn *k);
static inline int conn_ready(conn *k)
{
    return atomic_load_explicit(&k->pipes, memory_order_acquire) > 0 ? 0 : conn_ready_slow(k);
}

/* Frees what conn_init() made (not the socket), closing the probes. */
void conn_fini(conn *k);

#endif
