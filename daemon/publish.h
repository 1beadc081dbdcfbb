/* publish: this node's voice on the invalidation channel. One thread and
 * one Redis connection publish, in order:
 * - the batch: with inval_batch = 1, writes' scripts publish nothing; each
 *   write hands its keys here once its script answered, and one PUBLISH
 *   carries every key gathered while the previous one was in flight (group
 *   commit: no timer), with this node's heartbeat in it. A write is
 *   answered only once the PUBLISH of its batch returned. A failed PUBLISH
 *   is sent again, with the same seq, before anything later.
 * - heartbeats, when no batch carried one: every heartbeat_interval / 2 on the
 *   channel only this node subscribes to ({PREFIX:inval}:NODE; its
 *   subscription hears it after everything published before it), and every
 *   pub_timing().shared_ms on the shared channel, where the other nodes
 *   learn that this one is alive and how far its streams got.
 * - at the end, after the last batch, a bye: the others stop watching for
 *   this node's silence (coherence.h: coh_set_silence).
 * The argument is in docs/coherence.md ("Batched invalidations"). */
#ifndef NC_PUBLISH_H
#define NC_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "coherence.h"
#include "config.h"
#include "jobq.h"
#include "server.h"
#include "stats.h"

typedef struct publisher publisher;

/* The rule's times, from heartbeat_interval and coherence_window:
 * - own_ms: a heartbeat to this node itself at least this often (half the
 *   interval: others are counted silent at this granularity);
 * - shared_ms: a heartbeat on the shared channel at least this often, while
 *   a write is under way or was within silence_ms;
 * - gate_ms: a write's script starts only while this node's last message on
 *   the shared channel was sent at most this long ago (pub_ready());
 * - silence_ms: another node silent this long (against this node's own
 *   heartbeats) died or was cut off; gate_ms < silence_ms < coherence_window. */
typedef struct pub_times {
    int64_t own_ms, shared_ms, gate_ms, silence_ms;
} pub_times;
pub_times pub_timing(const config *cfg);

/* Starts the thread. `prefix` and `node_id` are copied; the other parts
 * are not owned and must outlive the publisher. `stream` is the number its
 * batches carry (one above the workers'). Returns 0 and hands it to *out
 * (caller owns it; stop with pub_destroy()), or an errno value. */
int pub_create(publisher **out, const config *cfg, const config_redis_url *url,
               const char *prefix, const char *node_id, uint32_t stream, coh *c, jobq *q,
               stats *st);

/* Publishes what is pending (answering the calls waiting for it), then the
 * bye if everything went out, and frees the publisher. Accepts NULL. Call
 * it once the workers have stopped. */
void pub_destroy(publisher *p);

/* Whether writes' invalidations go through the batches (inval_batch = 1,
 * and always on a Cluster). */
int pub_batching(const publisher *p);

/* Whether the channels are a Cluster's sharded channel: then no script
 * publishes (a script may only SPUBLISH to its own slot), and a bump's
 * message is published by its worker after the script (l2_publish()). */
int pub_sharded(const publisher *p);

/* A write's (or a bump's) script is about to start, whoever publishes its
 * message: waits, at most until `deadline`
 * (units_now_ms() time), until this node has published on the shared
 * channel within gate_ms, so that the write is in Redis before any other
 * node can count this one silent. Returns 0 (the write is open until
 * pub_end(): the next batch waits for it, up to PUB_LINGER_MS), or -1 at
 * the deadline. */
int pub_begin(publisher *p, int64_t deadline);
void pub_end(publisher *p);

/* How long a batch may wait for writes whose scripts are under way, so
 * that it carries them too: under load, one message per this much time at
 * most; with no other write open, a batch goes out at once. */
#define PUB_LINGER_MS 5

/* The key of index i of a request (as method_key_at_fn). */
typedef ProtobufCBinaryData (*pub_key_at_fn)(const void *req, size_t i);

/* Adds n keys of namespace ns (copied) to the next batch. `c`, when not
 * NULL, is a call whose reply is prepared: it is sent once the batch was
 * published (or answered UNAVAILABLE at its deadline while the batch
 * cannot be, the keys staying in the batch). Without a call the write's
 * outcome was unknown: after the batch was published, this node drops the
 * keys from its own L1 too. Out of memory, the batch empties every L1
 * (flush_all) instead. */
void pub_add(publisher *p, ProtobufCBinaryData ns, size_t n, pub_key_at_fn key_at,
             const void *req, call *c);

#endif
