/* l2io: one socket to a Redis server, plain or TLS, and the RESP on it.
 * hiredis does the protocol only (redisFormatCommandArgv, redisReader);
 * this module owns the socket and does the reads and writes, through
 * OpenSSL when the connection is TLS. Every Redis connection of the daemon
 * goes through it: workers, the read lane, the subscriber, the heartbeat,
 * Sentinels and Cluster nodes. A connection is blocking (each read and
 * write waits at most its timeout) unless l2io_set_nonblocking() made it
 * otherwise (the read lane's poll loop). Used by one thread at a time. */
#ifndef NC_L2IO_H
#define NC_L2IO_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "l2tls.h"

typedef struct l2io l2io;

/* Connects to host:port (or the unix socket at host when is_unix) within
 * timeout_ms, with the TLS handshake when tls is not NULL, and sets the
 * read and write timeout to timeout_ms. Returns 0 and hands the connection
 * to *out (the caller owns it; free with l2io_free()), or -1 with "connect:
 * why" or the TLS failure (l2tls_handshake()) in err. */
int l2io_connect(l2io **out, const char *host, int port, int is_unix, l2tls *tls,
                 int64_t timeout_ms, char *err, size_t errlen);

/* Closes the connection and frees it. Accepts NULL. */
void l2io_free(l2io *io);

/* The socket, for poll() and for shutdown() from another thread (the
 * only call that may come from one). */
int l2io_fd(const l2io *io);

/* The host (or socket path) and port it was connected to. */
const char *l2io_host(const l2io *io);
int l2io_port(const l2io *io);

/* Sets the read and write timeout of a blocking connection. Returns 0 or -1. */
int l2io_set_timeout(l2io *io, int64_t ms);

/* Makes the socket non-blocking for good. Returns 0 or -1 (errno set). */
int l2io_set_nonblocking(l2io *io);

/* Formats one command into the output buffer. Returns 0, or -1 (out of
 * memory). */
int l2io_append(l2io *io, int argc, const char **argv, const size_t *lens);

/* Writes the output buffer: all of it when blocking; when non-blocking,
 * what the socket takes, and *done says whether that was all. Returns 0,
 * or -1 with l2io_errstr() set. */
int l2io_flush(l2io *io, int *done);

/* Reads what the socket holds (non-blocking: all there is; blocking: one
 * read, waiting at most the timeout) into the reply parser. Returns 0, or
 * -1 with l2io_errstr() set (l2io_timed_out() says whether it was the
 * timeout). */
int l2io_fill(l2io *io);

/* The next whole reply read so far, or NULL into *r when there is none.
 * Returns 0, or -1 when the bytes are not RESP. The caller owns the reply
 * (freeReplyObject()). */
int l2io_next(l2io *io, redisReply **r);

/* Blocking: reads until a whole reply is there. Returns 0 with it in *r
 * (the caller owns it), or -1 with l2io_errstr() set. */
int l2io_get_reply(l2io *io, redisReply **r);

/* l2io_append(), l2io_flush() and l2io_get_reply(): one command's round
 * trip. Returns the reply (caller frees), or NULL with l2io_errstr() set. */
redisReply *l2io_command(l2io *io, int argc, const char **argv, const size_t *lens);

/* What went wrong last ("connection closed", "timed out", ...); lives as
 * long as io. */
const char *l2io_errstr(const l2io *io);

/* Whether the last failure was a read or write that ran out of time. */
int l2io_timed_out(const l2io *io);

/* Whether the connection is TLS. */
int l2io_is_tls(const l2io *io);

#endif
