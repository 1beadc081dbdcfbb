/* service: what each method means. It validates requests, maps namespace
 * and key to the Redis key PREFIX:NS:VER:KEY, answers Gets from L1 when it
 * can, and sends everything that needs Redis to the jobq. It owns no
 * threads; the server calls service_handle() for each request. */
#ifndef NC_SERVICE_H
#define NC_SERVICE_H

#include "config.h"
#include "jobq.h"
#include "l1.h"
#include "server.h"
#include "stats.h"

typedef struct service service;

/* Makes a service over the given parts; none are owned, and all must
 * outlive it. Returns 0 and hands the service to *out (caller owns it; free
 * with service_free()), or ENOMEM. */
int service_create(service **out, const config *cfg, l1 *cache, jobq *q, stats *st);

/* Frees the service. Accepts NULL. */
void service_free(service *svc);

/* The server_handler: answers or queues one request. */
void service_handle(void *svc, call *c);

/* The node id (16 hex digits), random per process. */
const char *service_node_id(const service *svc);

#endif
