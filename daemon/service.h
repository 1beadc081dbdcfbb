/* service: what each method means. It validates requests, answers Gets
 * from L1 when coherence allows, and sends everything that needs Redis to
 * the jobq or the read lane, where scripts map namespace and key to
 * PREFIX:NS:VER:KEY and publish each write's invalidation. It owns the
 * coherence state and two threads (the read lane's and the lease waits'
 * sweeper); the server calls service_handle() for each request. */
#ifndef NC_SERVICE_H
#define NC_SERVICE_H

#include "coherence.h"
#include "config.h"
#include "jobq.h"
#include "l1.h"
#include "server.h"
#include "stats.h"
#include "ring.h"

typedef struct service service;

/* Makes a service over the given parts; none are owned, and all must
 * outlive it. Starts the lease waits' sweeper and the read lane to the
 * Redis at `url`. Returns 0 and hands the service to *out (caller owns it;
 * free with service_destroy()), or an errno value with what failed in err. */
int service_create(service **out, const config *cfg, const config_redis_url *url, l1 *cache,
                   jobq *q, stats *st, char *err, size_t errlen);

/* Stops the read lane (its reads in flight go to the workers), answers the
 * Gets parked waiting for another caller's fill (as timed out) and parks no
 * more: call it after the server has drained and the
 * subscriber stopped, before the jobq is destroyed. Accepts NULL. */
void service_quiesce(service *svc);

/* Frees the service. Accepts NULL. */
void service_destroy(service *svc);

/* The server_handler: answers or queues one request. */
void service_handle(void *svc, call *c);

/* Replaces the acl rules with `rules` (the acl setting's lines), user
 * and group names resolved again. Returns 0, or -1 with a message in err
 * and the old rules kept. Any thread. */
int service_reload_acl(service *svc, const char *rules, char *err, size_t errlen);

/* How many acl rules are in effect (0: everything is allowed). */
size_t service_acl_rules(service *svc);

/* The node id (16 hex digits), random per process. */
const char *service_node_id(const service *svc);

/* The invalidation channel its scripts and bumps publish on: PREFIX:inval,
 * or on a Cluster bucket 0's {PREFIX:inval:N} (keyspace.h). */
const char *service_channel(const service *svc);

/* Gives the service the publisher its writes hand their invalidations to
 * (not owned; it must outlive the workers), before requests arrive. */
struct publisher;
void service_set_publisher(service *svc, struct publisher *pub);

/* The service's coherence state, for the subscriber. Owned by the service. */
coh *service_coherence(service *svc);

/* Gives the service the near tiers' ring (may be NULL), once, at any time:
 * every L1 invalidation is published to it from then on (coh_set_ring),
 * and Stats report it. The ring stays the caller's and must outlive the
 * service's threads. */
void service_set_ring(service *svc, ring *r);

#endif
