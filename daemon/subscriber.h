/* subscriber: this node's ears on the invalidation channel PREFIX:inval
 * and on {PREFIX:inval}:NODE, where only its own heartbeats go. One thread
 * holds a dedicated Redis connection subscribed to both and hands every
 * message to coherence (one connection hears every message in the order
 * Redis published it, whatever the channel). The heartbeats are
 * publish.h's. hiredis 0.14 cannot PING a subscribed connection, so
 * liveness is the heartbeats: a subscription that hears nothing for
 * coherence_window (its own heartbeats included) is declared lost and made
 * anew. */
#ifndef NC_SUBSCRIBER_H
#define NC_SUBSCRIBER_H

#include "coherence.h"
#include "config.h"

typedef struct subscriber subscriber;

/* Starts the thread. The channels are copied; the other parts are not
 * owned and must outlive the subscriber. Returns 0 and hands it to *out (caller
 * owns it; stop with sub_destroy()), or an errno value. */
int sub_create(subscriber **out, const config *cfg, const config_redis_url *url,
               const char *channel, const char *own_channel, coh *c);

/* Stops the thread and frees the subscriber. Accepts NULL. */
void sub_destroy(subscriber *s);

#endif
