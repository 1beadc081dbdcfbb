/* coherence: what this node knows about how fresh its L1 is, and the rules
 * that keep it honest (see docs/coherence.md).
 *
 * - L1 serves only while the subscription is up and this node has heard its
 *   own heartbeat, sent at most coherence_window ago: every invalidation
 *   published before that heartbeat has then been applied here.
 * - Invalidations from other nodes drop keys (and void fills in flight);
 *   namespace bumps raise the namespace's version; a gap in an origin's
 *   sequence numbers, an origin silent past the silence bound without a
 *   bye, a flush-all or a new subscription empties L1.
 * - L1 keys are "NS:KEY" (a namespace has no ':'); each entry's tag is the
 *   namespace version it was read under, and only entries of the current
 *   version are served.
 * Thread-safe, except coh_apply*(), coh_subscribed*() and coh_lost(), which
 * the subscriber calls one at a time (from one thread, or under its lock). */
#ifndef NC_COHERENCE_H
#define NC_COHERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "keyspace.h"
#include "l1.h"
#include "stats.h"
#include "ring.h"

typedef struct coh coh;

/* Makes the state for node `node_id` (copied) over `cache` and `st` (not
 * owned; they must outlive it). Returns 0 and hands it to *out (caller owns
 * it; free with coh_destroy()), or ENOMEM. */
int coh_create(coh **out, const char *node_id, l1 *cache, stats *st, int64_t window_ms);
void coh_destroy(coh *c);

/* Whether L1 may serve now: subscribed and caught up within the window. */
int coh_serving(coh *c, int64_t now);

/* How long ago this node was last known to be caught up, in ms (INT64_MAX
 * when it never was, or since its last subscription). */
int64_t coh_staleness(coh *c, int64_t now);

/* Whether the subscription is up (for stats and Ping). */
int coh_subscribed_now(coh *c);

/* The namespace's current version as far as this node knows: returns 1 and
 * sets *ver, or 0 when it does not know (the caller reads Redis). */
int coh_version(coh *c, const void *ns, size_t nslen, uint64_t *ver);

/* The highest version of the namespace this node has seen, known or not
 * (0: none): the floor its scripts send (l2_key). */
uint64_t coh_version_floor(coh *c, const void *ns, size_t nslen);

/* Records that Redis holds version `ver` of the namespace (versions only
 * go up; an older one, and 0, which is none, are ignored). A jump of 2^31 or more drops the
 * namespace from L1. Any thread. */
void coh_version_seen(coh *c, const void *ns, size_t nslen, uint64_t ver);

/* Redis was seen holding version `held` (0: none) of the namespace, below
 * the one this node knows: it lost PREFIX:nsver:NS (an eviction, FLUSHALL,
 * a failover to a replica without it). Logs it; L1 stays, since
 * its entries are of the version this node knows, and the caller reads with
 * a script, which recreates the version above this node's floor. Any
 * thread. */
void coh_version_fell(coh *c, const void *ns, size_t nslen, uint64_t held);

/* This node's own write to the namespace's version (a bump it made):
 * records the version and drops the namespace from L1. */
void coh_bumped(coh *c, const void *ns, size_t nslen, uint64_t ver);

/* Called after a key's L1 entry is dropped for an invalidation (key = its
 * L1 key; subscriber thread), or after L1 or a namespace is emptied (key
 * NULL; subscriber thread, or the worker that made a bump). */
typedef void (*coh_hook)(void *arg, const void *key, size_t klen);

/* Sets the hook (before the subscriber starts). */
void coh_set_hook(coh *c, coh_hook hook, void *arg);

/* Turns on the rule for writers that die between a write and its batch
 * (before the subscriber starts): another daemon heard and then silent for
 * more than `silence_ms` (measured against this node's own heartbeats, with
 * no bye) empties L1, and after each new subscription L1 neither serves
 * nor keeps fills until an own heartbeat sent `silence_ms` after it comes
 * back. 0 (the default): off. */
void coh_set_silence(coh *c, int64_t silence_ms);

/* Subscriber thread: a new subscription is confirmed. Empties L1, forgets
 * versions, sequence numbers and the daemons heard; serving resumes at the
 * next own heartbeat (sent silence_ms after now, when that rule is on). */
void coh_subscribed(coh *c);

/* The same for a subscription made of `sources` connections (at most
 * COH_MAX_SOURCES; a Cluster's: one per master): L1 serves only while the
 * last own heartbeat heard on every one of them was sent within the window
 * (and, after the subscription, once each was sent silence_ms after it). */
#define COH_MAX_SOURCES 64
void coh_subscribed_to(coh *c, int sources);

/* How many subscriptions were confirmed so far (any thread). */
unsigned coh_subscriptions(coh *c);

/* Subscriber thread: the subscription is gone. */
void coh_lost(coh *c);

/* This node's own invalidation streams, one per Redis worker, numbered
 * from 0, and the publisher's after them (at most 65; others carry seq 0): each numbers its messages 1, 2,
 * 3... coh_next_seq() is the seq the stream's next message carries (one
 * above the last used); coh_confirm_seq() uses `seq` up, once its message
 * was published or may have been (docs/coherence.md says when). The
 * stream's worker calls both; coh_stream_seqs() fills seqs[0..n) with each
 * stream's last used seq, for the heartbeat, from any thread, and returns
 * how many it filled. */
uint64_t coh_next_seq(coh *c, uint32_t stream);
void coh_confirm_seq(coh *c, uint32_t stream, uint64_t seq);
size_t coh_stream_seqs(coh *c, uint64_t *seqs, size_t n);

/* A write of this node on `stream` with `seq` failed after it was sent: it
 * may have run. Its own message, if it turns up, is applied here like any
 * other node's (it is skipped otherwise). */
void coh_uncertain(coh *c, uint32_t stream, uint64_t seq);

/* Subscriber thread: a message arrived that could not be read; it may have
 * been an invalidation, so L1 is emptied (counted as a sequence gap). */
void coh_message_lost(coh *c);

/* Sets the near tiers' ring (once, at any time: no near tier can hold
 * anything of a ring that did not exist yet; may be NULL).
 * From then on every invalidation applied to L1 is published to it after
 * the L1 drop (keys, namespaces, L1 emptied), and its serving_until follows
 * this node's own heartbeats. The ring stays the caller's. */
void coh_set_ring(coh *c, ring *r);

/* This node changed or dropped the L1 entry of `l1key` (NS:KEY) for its own
 * write, or emptied L1: tells the near tiers, after the L1 change. Any
 * thread. */
void coh_key_changed(coh *c, const void *l1key, size_t len);
void coh_l1_emptied(coh *c);

/* Drops `l1key` (NS:KEY) from L1, voiding its fills under way, and tells
 * the near tiers: a write of this node whose outcome was unknown, once its
 * invalidation was published (publish.h). Any thread. */
void coh_drop_key(coh *c, const void *l1key, size_t len);

/* Subscriber thread: applies one message from the channel. */
void coh_apply(coh *c, const pb_invalidation *m);

/* The same for a message heard on connection `source` (0 up to the
 * sources of coh_subscribed_to()) on channel `channel` (a Cluster's bucket,
 * keyspace.h; 0 on one server): sequence numbers are checked per channel,
 * and an own heartbeat counts for its source. */
void coh_apply_from(coh *c, const pb_invalidation *m, int source, unsigned channel);

#endif
