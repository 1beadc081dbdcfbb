/* get: the Get method (L1, single flight, read lane, leases); see get.c. */
#ifndef NC_GET_H
#define NC_GET_H

#include <stdint.h>

#include "l2.h"
#include "lane.h"
#include "service.h"

/* Answers a Get from L1, or sends it to Redis (lane or worker); the call
 * is answered now or later, exactly once. */
void get_handle(service *svc, call *c);

/* lane_done_fn (arg: the service): a Get's read came down the read lane.
 * Takes v (frees it). Runs on the lane's thread. */
void get_on_lane(void *arg, void *req, lane_status status, l2_value *v, int64_t sent_at);

/* waits_wake_fn (arg: the service): a parked lease Get's key was written
 * (read it again) or its time is up (answered BUSY). */
void get_on_wake(void *arg, call *c, int timed_out);

#endif
