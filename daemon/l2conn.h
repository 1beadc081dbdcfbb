/* l2conn: the connection half of the Redis layer. It dials Redis as the
 * URL says (through Sentinel, then AUTH, SELECT), and keeps one blocking
 * connection per handle:
 * after an I/O error or a timeout the connection is dropped, and the next
 * command reconnects, no sooner than a backoff (100 ms doubling to 5 s)
 * after a failed attempt; until then commands fail fast with L2_EDOWN.
 * Handles share their up/down state. It knows no key, script or message:
 * l2.c runs the scripts over it, the subscriber, the lane and the heartbeat
 * dial through it. A handle is used by one thread at a time. */
#ifndef NC_L2CONN_H
#define NC_L2CONN_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hist.h"
#include "l2io.h"

typedef struct l2conn l2conn;

/* What a Redis command came to: the one status type of the Redis layer. */
typedef enum l2_status {
    L2_OK = 0,
    L2_NIL,      /* the key does not exist */
    L2_EDOWN,    /* not connected, and not retrying yet */
    L2_ETIMEOUT, /* Redis did not answer in time; the connection is dropped */
    L2_EREPLY,   /* Redis answered with an error (message in l2conn_error) */
} l2_status;

/* Connects to `url` (over TLS for rediss://, sentinels:// and clusters://,
 * with url->tls_ctx) and runs AUTH and SELECT as it asks, with timeout_ms
 * for the connect and for each later read or write (a blocking connection).
 * With Sentinels, first finds the master as the Redis "Sentinel clients"
 * guidelines say: asks each Sentinel in turn (at most 300 ms each) for
 * url->master, moves the first that answers to the front of
 * url->sentinels (so url is the caller's, kept between dials), and checks
 * with ROLE that the address it gave is a master. Returns the connection
 * (free with l2io_free()), or NULL with a message naming Redis and the
 * problem in err: "no Sentinel answers" and "no Sentinel knows a master
 * named" are the two ways resolution fails. A cluster:// URL is dialled as
 * one server, the first of its nodes that answers (moved to the front of
 * url->seeds), for what any node serves (pub/sub); l2cluster.h routes
 * keys. */
l2io *l2conn_dial(config_redis_url *url, int64_t timeout_ms, char *err, size_t errlen);

/* What the handles of one pool share: when any of them last connected (a
 * handle in its backoff tries again at once when another got through
 * since), how many are connected, and the last failure to connect ("" once
 * one connected), for Ping. */
typedef struct l2conn_shared {
    _Atomic int64_t up_at;
    atomic_size_t up_count;
    pthread_mutex_t mu; /* guards last_error */
    char last_error[640];
} l2conn_shared;

void l2conn_shared_init(l2conn_shared *sh);
void l2conn_shared_destroy(l2conn_shared *sh);

/* How many handles of the pool are connected; any thread. */
size_t l2conn_shared_up(l2conn_shared *sh);

/* Copies the last failure to connect ("" when none since one connected)
 * into buf; any thread. */
void l2conn_shared_error(l2conn_shared *sh, char *buf, size_t size);

/* Makes a handle for `url` (copied) with the given connect timeout. Does
 * not connect yet. `name` tags log lines. Returns 0 and hands the handle to
 * *out (caller owns it; free with l2conn_destroy()), or ENOMEM. */
int l2conn_create(l2conn **out, const config_redis_url *url, int64_t connect_timeout_ms,
                  const char *name);

/* Closes the connection and frees the handle. Accepts NULL. */
void l2conn_destroy(l2conn *c);

/* Called on every new connection, before it counts as up (l2.c loads its
 * scripts there). Returns 0, or -1 after l2conn_set_error(): the connection
 * is then dropped and retried after the backoff. */
typedef int (*l2conn_setup_fn)(void *arg, l2conn *c);
void l2conn_set_setup(l2conn *c, l2conn_setup_fn fn, void *arg);

/* Connects now unless connected or inside the backoff. Returns L2_OK when
 * connected, L2_EDOWN otherwise. `now` is units_now_ms(). */
l2_status l2conn_connect(l2conn *c, int64_t now);

/* Makes the handle one of sh's pool (sh is the caller's and outlives it).
 * It updates sh as it connects and drops, before the command that caused
 * it returns. */
void l2conn_share(l2conn *c, l2conn_shared *sh);

/* Lets the next command try to connect at once, ignoring the backoff (for
 * when Redis is known to be reachable again). */
void l2conn_retry_now(l2conn *c);

/* Records each command's round trip (send to reply, or failure) in rtt
 * (not owned; NULL: none). Set it before the handle is used. */
void l2conn_set_timing(l2conn *c, hist *rtt);

/* After a failed command: whether it may have run in Redis anyway (it was
 * sent, and the answer was lost or late), as opposed to surely not (no
 * connection, or Redis refused it). */
int l2conn_maybe_ran(const l2conn *c);

/* Whether the handle holds a live connection. */
int l2conn_connected(const l2conn *c);

/* The message of the last failure on this handle. The string belongs to
 * the handle and lives until its next command. */
const char *l2conn_error(const l2conn *c);

/* Sets that message (printf style); returns L2_EREPLY, for the callers'
 * own errors (a reply of an unexpected shape). */
l2_status l2conn_set_error(l2conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks the connection with PING (or connects, if it has none and the
 * backoff allows). Returns L2_OK when it is live. */
l2_status l2conn_ping(l2conn *c, int64_t timeout_ms);

/* Connects if needed, then sends one command and reads its reply within
 * timeout_ms. A connection that was open may have died since its last use
 * (Redis restarted): on an I/O error there, it reconnects at once and sends
 * the command once more, unless `once` (the command must never run twice).
 * Returns the reply (caller frees it with freeReplyObject()), or NULL with
 * *status set; an error reply is NULL with L2_EREPLY and its text in
 * l2conn_error() as "redis: TEXT". A READONLY error (the server is a
 * replica now: a failover) also drops the connection, so the next command
 * finds the master again. */
redisReply *l2conn_run(l2conn *c, int64_t timeout_ms, int once, l2_status *status, int argc,
                       const char **argv, const size_t *lens);

/* Sends one command on the open connection (none: L2_EDOWN), for a setup
 * function, within timeout_ms (0: the connect timeout). Returns the reply, error replies included (caller frees), or
 * NULL with *status set (the connection is then dropped). */
redisReply *l2conn_call(l2conn *c, int64_t timeout_ms, l2_status *status, int argc,
                        const char **argv, const size_t *lens);

#endif
