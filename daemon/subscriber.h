/* subscriber: this node's ears on the invalidation channels. On one
 * server: PREFIX:inval and {PREFIX:inval}:NODE, where only its own
 * heartbeats go, on one dedicated connection (one connection hears every
 * message in the order Redis published it, whatever the channel). On a
 * Cluster: every bucket's channel and own channel (keyspace.h), each
 * SSUBSCRIBEd on the master serving its slot, one connection and one
 * reader thread per master; each connection is one source for coherence
 * (rule 2 per master), and losing any of them loses the subscription as a
 * whole. Every message goes to coherence. The heartbeats are publish.h's.
 * hiredis 0.14 cannot PING a subscribed connection, so liveness is the
 * heartbeats: a connection that hears nothing for coherence_window (its
 * own heartbeats included) is declared lost and the subscription made anew. */
#ifndef NC_SUBSCRIBER_H
#define NC_SUBSCRIBER_H

#include "coherence.h"
#include "config.h"

typedef struct subscriber subscriber;

/* Starts the thread for node `node_id` under key prefix `prefix` (both
 * copied; keyspace.h names the channels). The other parts are not owned
 * and must outlive the subscriber. Returns 0 and hands it to *out (caller
 * owns it; stop with sub_destroy()), or an errno value. */
int sub_create(subscriber **out, const config *cfg, const config_redis_url *url,
               const char *prefix, const char *node_id, coh *c);

/* Stops the thread and frees the subscriber. Accepts NULL. */
void sub_destroy(subscriber *s);

#endif
