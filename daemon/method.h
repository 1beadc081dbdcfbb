/* method: what every method file (get, write, batch, admin) shares, under
 * all of them and over none: the service's state, the checks of a
 * request, the time budgets, how a failed Redis command is answered, L1
 * hits of the current namespace version, the fill of L1 from a Redis read
 * and after a write, the one builder of invalidation messages, and the
 * hand-off to the workers. Internal to the daemon; service.h is the API. */
#ifndef NC_METHOD_H
#define NC_METHOD_H

#include <stdatomic.h>
#include <stdint.h>

#include "coherence.h"
#include "flight.h"
#include "l2.h"
#include "lanes.h"
#include "service.h"
#include "waits.h"

/* The service's state. cfg, cache, q and st are main.c's (not owned); coh,
 * flights, waits and lane are made by service_create() and owned. Every
 * field is set before the first request and read-only after, but for
 * next_token (atomic); the parts lock themselves. */
struct service {
    const config *cfg;
    l1 *cache;
    jobq *q;
    lanes *lanes; /* plain Gets of known namespace versions; NULL once quiesced */
    stats *st;
    coh *coh;
    flights *flights;
    waits *waits;                /* NULL once quiesced */
    struct nearrep *near;        /* the clients' near-tier reports */
    struct acl *acl;             /* who may do what (acl rules) */
    struct publisher *pub;       /* writes' invalidations (publish.h) */
    _Atomic(struct ring *) ring; /* the near tiers' ring (main.c's), or NULL; set once */
    _Atomic uint64_t next_token; /* lease tokens: NODE-N */
    int64_t started_ms;
    char node_id[17];
    char channel[KS_CHANNEL_SIZE];
};

/* Where a request's key lives in Redis (pointers into the request), with
 * this node's version floor. */
l2_key method_redis_key(const service *svc, ProtobufCBinaryData ns, ProtobufCBinaryData key);

/* Checks a namespace and key against the limits. Returns 0, or answers the
 * call with INVALID_ARGUMENT and returns -1. */
int method_check_ns_key(service *svc, call *c, ProtobufCBinaryData ns, ProtobufCBinaryData key);

/* Answers a request the limits refuse with `code` and a message (printf
 * style), counted in bad_requests. */
void method_refuse(service *svc, call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* When a read must be answered so that the answer reaches the client
 * before its deadline: the deadline less a tenth of the time left, at most
 * ANSWER_MARGIN_MS. A Redis read still waiting then is given up (answered
 * DEADLINE_EXCEEDED, or stale under stale_if_error). */
#define ANSWER_MARGIN_MS 50
int64_t method_answer_by(const call *c);

/* Time left before `by` (the call's deadline, or method_answer_by() for a
 * read), capped by redis_timeout; answers DEADLINE_EXCEEDED and returns 0
 * when none is left. */
int64_t method_redis_budget(service *svc, call *c, int64_t by, const char *what);

/* The status code and message (into text) that fit a Redis command that
 * failed with `status` and error text e; counts it in redis_errors. */
int method_l2_failure(service *svc, call *c, l2_status status, const char *e, char *text,
                      size_t size);

/* Answers a failed Redis command with the status that fits it. */
void method_fail_l2(service *svc, call *c, l2 *conn, l2_status status);

/* Whether a read that failed with `status` may be answered from L1 under
 * stale_if_error: Redis is unreachable, and this node was caught up at
 * most stale_if_error ago. */
int method_may_serve_stale(service *svc, l2_status status);

int64_t method_min64(int64_t a, int64_t b);

/* Called by method_l1_get() under the shard lock with a hit of the version
 * asked for; `value` is valid only during the call. */
typedef void (*method_hit_fn)(void *arg, const void *value, size_t len, int64_t expires_at);

/* Looks key up in L1 and hands a hit tagged with the namespace `version` to
 * hit(arg, ...) under the shard lock. An entry of another version is a miss,
 * and is removed: no one can serve it again. Returns 1 on a hit. */
int method_l1_get(service *svc, const void *key, size_t klen, uint64_t version, int64_t now,
                  method_hit_fn hit, void *arg);

/* Keeps a value read from Redis at t0 (v, under v->version) in L1 under
 * `ticket` when this node is serving and the value is not stale; counts a
 * fill voided by an invalidation since the ticket. */
void method_fill(service *svc, const void *key, size_t klen, const l2_value *v, int64_t t0,
                 l1_ticket ticket);

/* Drops an L1 key (NS:KEY) for this node's own write, or empties L1 (key
 * NULL), and tells the near tiers: the one way the methods change L1
 * besides method_fill() and method_written(). */
void method_l1_drop(service *svc, const void *key, size_t klen);

/* After a write Redis confirmed, read at t0 under `version`: L1 keeps the
 * value (under `ticket`, for ttl_ms capped at l1_max_ttl) when `keep`, else
 * drops the key; and the Gets parked for the key are woken. */
void method_written(service *svc, const void *key, size_t klen, const void *value, size_t vlen,
                    uint64_t version, int64_t ttl_ms, int64_t t0, l1_ticket ticket, int keep);

/* The key at index i of a request, for method_inval_msg(). */
typedef ProtobufCBinaryData (*method_key_at_fn)(const void *req, size_t i);

/* The invalidation a write on `conn` publishes: the n keys key_at(req, 0..n)
 * of namespace ns, or (n == 0) a bump of ns to bump_version. Takes the
 * stream's next seq (coh_next_seq()). Returns a new buffer (the caller
 * frees it) of *len bytes, or NULL. */
uint8_t *method_inval_msg(service *svc, l2 *conn, ProtobufCBinaryData ns, size_t n,
                       method_key_at_fn key_at, const void *req, uint64_t bump_version, size_t *len);

/* Waits until a write's script may start (pub_begin(); at most
 * redis_timeout, as for a Redis command), or answers the call UNAVAILABLE
 * and returns -1. With inval_batch = 0 too: a daemon that writes is
 * watched by the others (its heartbeats go out), whoever publishes.
 * After 0, method_publish_end() once the write's keys were handed over
 * (or it failed). */
int method_publish_begin(service *svc, call *c);
void method_publish_end(service *svc);

/* Whether the write scripts publish their own invalidations (inval_batch =
 * 0); else the channel they get is empty and the keys go to the
 * publisher. */
const char *method_script_channel(const service *svc);

/* Whether the channel is a Cluster's sharded channel (pub_sharded()). */
int method_sharded(const service *svc);

/* Sends the prepared reply of a write that ran in Redis, naming n keys of
 * ns: at once when its script published them, else once the publisher's
 * batch did. */
void method_send_written(service *svc, call *c, ProtobufCBinaryData ns, size_t n,
                         method_key_at_fn key_at, const void *req);

/* call_prepare(c, r) (INTERNAL if that fails), then method_send_written(). */
void method_reply_written(service *svc, call *c, const pb_reply *r, ProtobufCBinaryData ns,
                          size_t n, method_key_at_fn key_at, const void *req);

/* A write that failed, whose outcome is unknown (sent, its answer lost),
 * or partly done (`partly`: an MSet across slots stores slot by slot):
 * with inval_batch = 1 its keys are published anyway (and dropped from
 * this node's L1 once they were); with 0 its scripts published them if
 * they ran. */
void method_publish_unknown(service *svc, l2 *conn, ProtobufCBinaryData ns, size_t n,
                            method_key_at_fn key_at, const void *req, int partly);

/* Settles the seq of a write's invalidation message after the script:
 * `published` when it surely ran. */
void method_settle_seq(service *svc, l2 *conn, uint64_t seq, int published);

/* After a write Redis confirmed (`what` names it in messages): with
 * redis_wait_replicas N, WAITs on the write's connection until N replicas
 * have it. Returns 0 (N = 0, or they have it), or -1 with an UNAVAILABLE
 * reply prepared, saying what is known of the write (done on the master
 * and announced, not known to be on N replicas): the caller keeps nothing
 * of it in L1 and, once done with the request (sending frees it), sends
 * the reply with call_send(). */
int method_replicated(service *svc, call *c, l2 *conn, const char *what);

/* The TTL a write applies: `ttl_ms` if has_ttl, else default_ttl; capped
 * at max_ttl and spread by ttl_jitter. */
int64_t method_ttl(service *svc, int has_ttl, int64_t ttl_ms);

/* Hands the call to a Redis worker, to run `run` with job->arg = svc.
 * Returns 0, or (too many wait, or shutting down) the status code to
 * answer with and its message in text, counted in overloaded; the call is
 * then still the caller's to answer. */
int method_hand_off(service *svc, call *c, jobq_fn run, char *text, size_t size);

/* method_hand_off(), answering the call itself when it is turned away. */
void method_submit(service *svc, call *c, jobq_fn run);

#endif
