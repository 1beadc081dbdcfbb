/* jobq: a bounded queue of Redis work served by a pool of worker threads,
 * each owning one L2 connection. The server hands everything that needs
 * Redis here, so a slow Redis holds up only the requests that wait on it.
 * Idle workers reconnect in the background, so `connected` recovers without
 * traffic. */
#ifndef NC_JOBQ_H
#define NC_JOBQ_H

#include <stddef.h>

#include "config.h"
#include "l2.h"

typedef struct jobq jobq;
typedef struct jobq_job jobq_job;

/* Runs on a worker thread with that worker's connection. */
typedef void (*jobq_fn)(jobq_job *job, l2 *conn);

/* Embedded in the caller's own struct (no allocation per job); the caller
 * owns it and must keep it alive until its fn has run. */
struct jobq_job {
    jobq_job *next;
    jobq_fn fn;
    void *arg; /* the caller's, for fn */
};

/* Starts `workers` threads, each with an L2 handle for `url` that records
 * its commands' round trips in rtt (not owned, must outlive the queue; may
 * be NULL). At most `capacity` jobs wait at once. Returns 0 and hands the queue to *out (the
 * caller owns it; free with jobq_destroy()), or an errno value. */
int jobq_create(jobq **out, const config_redis_url *url, size_t workers, size_t capacity,
                int64_t connect_timeout_ms, hist *rtt);

/* Queues a job to run fn(job, conn) with job->arg = arg. Returns 0, or
 * EAGAIN when `capacity` jobs wait (or hold places), or ECANCELED once
 * jobq_destroy() has begun. */
int jobq_submit(jobq *q, jobq_job *job, jobq_fn fn, void *arg);

/* Takes one of the `capacity` places for a call that waits for Redis
 * elsewhere (the read lane), so that all such calls together stay within
 * it. Returns 0 (give it back with jobq_unhold()), EAGAIN when the places
 * are taken, or ECANCELED once jobq_destroy() has begun. */
int jobq_hold(jobq *q);
void jobq_unhold(jobq *q);

/* How many workers hold a live Redis connection right now. */
size_t jobq_connected(jobq *q);

/* The workers' last failure to connect to Redis ("" since one connected)
 * into buf; any thread. */
void jobq_redis_error(jobq *q, char *buf, size_t size);

/* How many jobs are waiting (not yet picked up by a worker). */
size_t jobq_waiting(jobq *q);

/* How many of the `capacity` places are taken: waiting jobs and holds. */
size_t jobq_taken(jobq *q);

/* Runs every job already queued, then stops the workers and closes their
 * connections; jobq_connected() still answers (0 from then). Accepts NULL;
 * a second call does nothing. */
void jobq_stop(jobq *q);

/* jobq_stop(), then frees the queue. Accepts NULL. */
void jobq_destroy(jobq *q);

#endif
