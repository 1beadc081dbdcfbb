/* lanes: the read lanes of a service (lane.h): one to one Redis server, or
 * on a Redis Cluster one per master, each Get sent to the lane of its
 * entry's slot (an MGet's keys each to theirs, every lane's in one
 * write). A cluster's lanes read under the version the node holds
 * (lane_assume_version()): the version key is on another slot. Their slot
 * map is reloaded, at most once a second, when a Get finds its slot's lane
 * missing or down or a lane read fails (lanes_poke()): a slot moved to
 * another master answers MOVED on its old lane, and a master lost to a
 * failover leaves its lane down, so those Gets go to the workers (which
 * follow the move) until the new map points the slot at its new master's
 * lane, made then if new. */
#ifndef NC_LANES_H
#define NC_LANES_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lane.h"

typedef struct lanes lanes;

/* Starts the lanes to `url` (lane_create()'s arguments; on a cluster://
 * URL, after asking the cluster for its slot map, with no lanes when none
 * answers). Returns 0 and hands them to *out (stop with lanes_destroy()),
 * or an errno value. */
int lanes_create(lanes **out, const config_redis_url *url, int64_t connect_timeout_ms,
                 int64_t timeout_ms, size_t capacity, lane_done_fn done, void *arg);

/* Stops every lane (lane_destroy()). Accepts NULL. */
void lanes_destroy(lanes *ls);

/* The lane for key k (owned by ls), or NULL when there is none or it is
 * down, and on a Cluster when k->known is not set (a lane there reads
 * under the version it is given, which must be the one the node serves
 * under). Accepts NULL. */
lane *lanes_for(lanes *ls, const l2_key *k);

/* A lane read failed (LANE_RETRY): on a Cluster, the slot map may have
 * changed, so it is loaded again soon. Cheap; accepts NULL. */
void lanes_poke(lanes *ls);

/* Whether these are a Cluster's lanes (one per master), with at least one. */
int lanes_sharded(const lanes *ls);

/* Sends reads of keys[0..n) (k->known set, all of one namespace) under
 * `version`, each on its lane, each lane's in one write, to be told
 * done(arg, reqs[i], ...) by `deadline` (units_now_ms() time) at the latest.
 * Returns how many were sent: each of those is told exactly once, on a
 * lane's thread; the others (no lane, down, full) never are. */
size_t lanes_send(lanes *ls, const l2_key *keys, size_t n, uint64_t version, int64_t deadline,
                  void *const *reqs, lane_done_fn done, void *arg);

/* Whether there are lanes and every one is connected (on a Cluster, every
 * one that serves a slot). */
int lanes_up(lanes *ls);

/* Reads sent so far on all of them. */
uint64_t lanes_reads(lanes *ls);

#endif
