/* admin: the Stats and Ping methods; see admin.c. */
#ifndef NC_ADMIN_H
#define NC_ADMIN_H

#include "service.h"

/* The gauges of the Stats reply, read now from their modules. Any thread. */
void admin_gauges(service *svc, stats_gauges *g);

/* Whether the daemon is ready to serve: a Redis connection is up and L1
 * serves (subscribed and caught up). Returns 1, or 0 with a one-line
 * reason in why. Any thread. */
int admin_ready(service *svc, char *why, size_t len);

/* Each answers the call at once. */
void admin_handle_stats(service *svc, call *c);
void admin_handle_ping(service *svc, call *c);
/* Takes a client's near-tier report (nearrep.h) and answers it. */
void admin_handle_near_report(service *svc, call *c);

#endif
