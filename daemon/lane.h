/* The read lane: plain Redis reads for Gets, pipelined on one non-blocking
 * connection and answered by the lane's own thread.
 *
 * A Get through the workers (jobq.h) costs a thread hand-off and a Lua
 * script. When the node knows the namespace's version, a plain Get (no
 * lease, no sliding TTL) can instead be written to Redis by the thread that
 * received it, as one MULTI ... EXEC of the reads the Get script makes,
 * under that version; the lane's thread wakes on the reply and hands it to
 * done(). EXEC also returns the version Redis holds: when it is not the one
 * the read assumed, done() gets LANE_MOVED or LANE_FELL and the caller goes
 * the slow way (the workers), as it does whenever the lane is down. */
#ifndef NC_LANE_H
#define NC_LANE_H

#include <stdint.h>

#include "config.h"
#include "l2.h"

typedef struct lane lane;

/* What a lane read came to: the one status type of the lane. LANE_OK and
 * LANE_NIL are L2_OK and L2_NIL (v holds the answer); the others say why it
 * was not read. */
typedef enum lane_status {
    LANE_OK = L2_OK,   /* read: v holds the value */
    LANE_NIL = L2_NIL, /* read: no value (v says whether it is known absent) */
    LANE_RETRY = 100,  /* not read: the connection failed, or Redis answered an error */
    LANE_MOVED,        /* not read: Redis holds a newer version than assumed */
    LANE_FELL,    /* not read: Redis holds an older version or none (it lost PREFIX:nsver:NS) */
    LANE_TIMEOUT, /* Redis did not answer by the caller's deadline, or in timeout_ms */
} lane_status;

/* Called on the lane's thread, once per lane_get() that returned 0.
 * `status` is L2_OK (v holds the value) or L2_NIL (v says whether the key
 * is known absent), which the caller frees with l2_value_free(), or a
 * lane_status: v is NULL, except for LANE_MOVED and LANE_FELL, where
 * v->version is the version Redis holds (0: none; nothing to free).
 * `sent_at` is when the read was sent. */
typedef void (*lane_done_fn)(void *arg, void *req, lane_status status, l2_value *v,
                             int64_t sent_at);

/* Starts the lane's thread, which connects to `url` (and reconnects: at
 * once after an I/O error, else with a backoff from 100 ms to 5 s; a new
 * connection must answer PING). At most `capacity` reads are in flight;
 * Redis must answer each within timeout_ms, or the connection is dropped.
 * Returns 0 and hands the lane to *out (stop with lane_destroy()), or an errno
 * value. */
int lane_create(lane **out, const config_redis_url *url, int64_t connect_timeout_ms,
                int64_t timeout_ms, size_t capacity, lane_done_fn done, void *arg);

/* Sends a plain read of `k` under namespace version `version`, to be
 * answered by `deadline` (units_now_ms() time). Returns 0 when sent:
 * done(arg, req, ...) follows exactly once, on the lane's thread. Returns
 * -1 when the lane cannot take it (down, full or stopping). */
int lane_get(lane *ln, const l2_key *k, uint64_t version, int64_t deadline, void *req);

/* lane_get() that tells done(arg, req, ...) instead of the lane's own. */
int lane_get_to(lane *ln, const l2_key *k, uint64_t version, int64_t deadline, void *req,
                lane_done_fn done, void *arg);

/* lane_get_to() of *ks[i] for reqs[i], i < n, written in one go (one
 * system call where the socket takes it all). Returns how many were sent,
 * the first ones: each of those is told exactly once. */
size_t lane_get_many(lane *ln, const l2_key *const *ks, size_t n, uint64_t version,
                     int64_t deadline, void *const *reqs, lane_done_fn done, void *arg);

/* Makes the lane read under the version each lane_get() gives, without
 * reading the version key (on a Redis Cluster it is on another slot): for
 * a node that holds the namespace's version while it serves, as the
 * scripts' cluster form does (l2.c). Call it before the first lane_get(). */
void lane_assume_version(lane *ln);

/* Whether the lane is connected. */
int lane_up(lane *ln);

/* Reads sent so far. */
uint64_t lane_reads(lane *ln);

struct redisReply;

/* Decodes EXEC's array, the reply to a read sent under `version`: L2_OK or
 * L2_NIL with *v filled (v then owns r: l2_value_free()); else frees r and
 * returns LANE_MOVED or LANE_FELL (v->version: what Redis holds) or
 * LANE_RETRY (not the shape the read's commands return). The lane's thread
 * calls it; exported for tests/fuzz. */
lane_status lane_parse(struct redisReply *r, uint64_t version, l2_value *v);

/* Stops the thread; every read still in flight gets LANE_RETRY. Accepts
 * NULL. */
void lane_destroy(lane *ln);

#endif
