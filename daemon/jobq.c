/* Worker pool for Redis work; see jobq.h. One mutex guards the FIFO list;
 * workers sleep on a condition variable and wake at least once a second to
 * check their connection with PING (or reconnect it) while idle. A worker
 * that loses its connection wakes the idle ones to check theirs at once, so
 * `connected` soon tells the truth after Redis goes away. */
#include "jobq.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "units.h"

#define IDLE_WAKE_MS 1000

struct worker {
    jobq *q;
    pthread_t thread;
    l2 *conn;
};

struct jobq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    jobq_job *head, *tail; /* guarded by mu */
    size_t waiting;        /* guarded by mu */
    size_t held;           /* places taken by jobq_hold(); guarded by mu */
    size_t capacity;
    int stopping; /* guarded by mu */
    int joined;   /* the workers were joined (jobq_stop()); guarded by mu */
    l2conn_shared shared; /* the workers' up/down state */
    int64_t health_timeout_ms;
    size_t nworkers;
    struct worker *workers;
};

/* Pops the next job, waiting up to IDLE_WAKE_MS. Returns NULL on an idle
 * wake-up or when stopping with an empty queue (*stop set). Takes q->mu. */
static jobq_job *pop(jobq *q, int *stop)
{
    pthread_mutex_lock(&q->mu);
    if (q->head == NULL && !q->stopping) {
        units_cond_wait_ms(&q->cv, &q->mu, IDLE_WAKE_MS);
    }
    jobq_job *job = q->head;
    if (job != NULL) {
        q->head = job->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->waiting--;
    }
    *stop = job == NULL && q->stopping;
    pthread_mutex_unlock(&q->mu);
    return job;
}

/* Wakes the idle workers when this one lost its connection (check yours)
 * or got it back (Redis is reachable again: reconnect now). The handles
 * keep the count of those connected themselves (l2conn_share). */
static void note_state(struct worker *w, int *was_connected)
{
    int now_connected = l2conn_connected(l2_conn(w->conn));
    if (now_connected == *was_connected)
        return;
    *was_connected = now_connected;
    pthread_cond_broadcast(&w->q->cv);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int was_connected = 0, stop = 0;
    l2conn_connect(l2_conn(w->conn), units_now_ms()); /* be ready before the first request */
    note_state(w, &was_connected);
    while (!stop) {
        jobq_job *job = pop(w->q, &stop);
        /* Another worker reaches Redis: skip what is left of our backoff. */
        if (!l2conn_connected(l2_conn(w->conn)) && l2conn_shared_up(&w->q->shared) > 0)
            l2conn_retry_now(l2_conn(w->conn));
        if (job != NULL)
            job->fn(job, w->conn);
        else if (!stop)
            l2conn_ping(l2_conn(w->conn), w->q->health_timeout_ms);
        note_state(w, &was_connected);
    }
    return NULL;
}

int jobq_create(jobq **out, const config_redis_url *url, size_t workers, size_t capacity,
                int64_t connect_timeout_ms, hist *rtt)
{
    jobq *q = calloc(1, sizeof *q);
    if (q == NULL)
        return ENOMEM;
    units_cond_init(&q->cv);
    pthread_mutex_init(&q->mu, NULL);
    l2conn_shared_init(&q->shared);
    q->capacity = capacity;
    q->health_timeout_ms = connect_timeout_ms;
    q->workers = calloc(workers, sizeof *q->workers);
    if (q->workers == NULL) {
        jobq_destroy(q);
        return ENOMEM;
    }
    for (size_t i = 0; i < workers; i++) {
        struct worker *w = &q->workers[i];
        char name[32];
        snprintf(name, sizeof name, "l2[%zu]", i);
        w->q = q;
        int rv = l2_create(&w->conn, url, connect_timeout_ms, name, (uint32_t)i);
        if (rv == 0) {
            l2conn_share(l2_conn(w->conn), &q->shared);
            l2conn_set_timing(l2_conn(w->conn), rtt);
        }
        if (rv == 0 && (rv = pthread_create(&w->thread, NULL, worker_main, w)) != 0)
            l2_destroy(w->conn);
        if (rv != 0) {
            jobq_destroy(q);
            return rv;
        }
        q->nworkers = i + 1;
    }
    *out = q;
    return 0;
}

int jobq_submit(jobq *q, jobq_job *job, jobq_fn fn, void *arg)
{
    job->fn = fn;
    job->arg = arg;
    job->next = NULL;
    pthread_mutex_lock(&q->mu);
    int rv = q->stopping ? ECANCELED : q->waiting + q->held >= q->capacity ? EAGAIN : 0;
    if (rv == 0) {
        if (q->tail != NULL)
            q->tail->next = job;
        else
            q->head = job;
        q->tail = job;
        q->waiting++;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return rv;
}

int jobq_hold(jobq *q)
{
    pthread_mutex_lock(&q->mu);
    int rv = q->stopping ? ECANCELED : q->waiting + q->held >= q->capacity ? EAGAIN : 0;
    if (rv == 0)
        q->held++;
    pthread_mutex_unlock(&q->mu);
    return rv;
}

void jobq_unhold(jobq *q)
{
    pthread_mutex_lock(&q->mu);
    q->held--;
    pthread_mutex_unlock(&q->mu);
}

size_t jobq_connected(jobq *q)
{
    return l2conn_shared_up(&q->shared);
}

void jobq_redis_error(jobq *q, char *buf, size_t size)
{
    l2conn_shared_error(&q->shared, buf, size);
}

size_t jobq_taken(jobq *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->waiting + q->held;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t jobq_waiting(jobq *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->waiting;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void jobq_stop(jobq *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    int joined = q->joined;
    q->stopping = 1;
    q->joined = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (size_t i = 0; i < q->nworkers && !joined; i++) {
        pthread_join(q->workers[i].thread, NULL);
        l2_destroy(q->workers[i].conn);
    }
}

void jobq_destroy(jobq *q)
{
    if (q == NULL)
        return;
    jobq_stop(q);
    free(q->workers);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    l2conn_shared_destroy(&q->shared);
    free(q);
}
