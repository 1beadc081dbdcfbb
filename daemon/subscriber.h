/* subscriber: this node's ears and heartbeat on the invalidation channel
 * PREFIX:inval. One thread holds a dedicated Redis connection subscribed to
 * the channel and hands every message to coherence; another publishes this
 * node's heartbeat every heartbeat_interval on its own connection. hiredis
 * 0.14 cannot PING a subscribed connection, so liveness is the heartbeats:
 * a subscription that hears nothing for coherence_window (every node's own
 * heartbeats included) is declared lost and made anew. */
#ifndef NC_SUBSCRIBER_H
#define NC_SUBSCRIBER_H

#include "coherence.h"
#include "config.h"
#include "jobq.h"

typedef struct subscriber subscriber;

/* Starts both threads. `channel` is copied; the other parts are not owned
 * and must outlive the subscriber. Returns 0 and hands it to *out (caller
 * owns it; stop with sub_destroy()), or an errno value. */
int sub_create(subscriber **out, const config *cfg, const config_redis_url *url,
               const char *channel, const char *node_id, coh *c, jobq *q);

/* Stops both threads and frees the subscriber. Accepts NULL. */
void sub_destroy(subscriber *s);

#endif
