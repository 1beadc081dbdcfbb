/* What service.c and batch.c share: the service's state and the helpers
 * every method uses. Internal to the daemon's service; not an API. */
#ifndef NC_SERVICE_IMPL_H
#define NC_SERVICE_IMPL_H

#include <stdatomic.h>
#include <stdint.h>

#include "coherence.h"
#include "flight.h"
#include "l2.h"
#include "lane.h"
#include "service.h"
#include "waits.h"

struct service {
    const config *cfg;
    l1 *cache;
    jobq *q;
    lane *lane; /* plain Gets of known namespace versions */
    stats *st;
    coh *coh;
    flights *flights;
    waits *waits;
    _Atomic uint64_t next_token; /* lease tokens: NODE-N */
    int64_t started_ms;
    char node_id[17];
    char channel[160];
};

/* Where a request's key lives in Redis (pointers into the request). */
l2_key svc_redis_key(const service *svc, ProtobufCBinaryData ns, ProtobufCBinaryData key);

/* Checks a namespace and key against the limits. Returns 0, or answers the
 * call with INVALID_ARGUMENT and returns -1. */
int svc_check_ns_key(service *svc, call *c, ProtobufCBinaryData ns, ProtobufCBinaryData key);

/* When a read must be answered so that the answer reaches the client
 * before its deadline: the deadline less a tenth of the time left, at most
 * ANSWER_MARGIN_MS. A Redis read still waiting then is given up (answered
 * DEADLINE_EXCEEDED, or stale under stale_if_error). */
#define ANSWER_MARGIN_MS 50
int64_t svc_answer_by(const call *c);

/* Time left before `by` (the call's deadline, or svc_answer_by() for a
 * read), capped by redis_timeout; answers DEADLINE_EXCEEDED and returns 0
 * when none is left. */
int64_t svc_redis_budget(service *svc, call *c, int64_t by, const char *what);

/* Answers a failed Redis command with the status that fits it. */
void svc_fail_l2(service *svc, call *c, l2 *conn, int status);

/* Whether a read that failed with `status` may be answered from L1 under
 * stale_if_error: Redis is unreachable, and this node was caught up at
 * most stale_if_error ago. */
int svc_may_serve_stale(service *svc, int status);

int64_t svc_min64(int64_t a, int64_t b);

/* Hands the call to a Redis worker (its method's job), or turns it away
 * when too many wait. */
void svc_submit(service *svc, call *c);

/* The TTL a write applies: `ttl_ms` if has_ttl, else default_ttl; capped
 * at max_ttl and spread by ttl_jitter. */
int64_t svc_ttl(service *svc, int has_ttl, int64_t ttl_ms);

/* Settles the seq of a write's invalidation message after the script:
 * `published` when it surely ran. */
void svc_settle_seq(service *svc, l2 *conn, uint64_t seq, int published);

/* batch.c: MGet and MSet. */
void batch_handle_mget(service *svc, call *c);
void batch_job_mget(service *svc, call *c, l2 *conn);
void batch_handle_mset(service *svc, call *c);
void batch_job_mset(service *svc, call *c, l2 *conn);

#endif
