/* The client's background thread: it sends the kept invalidations as soon
 * as the daemon answers again (checking every 50 ms while any wait, and
 * at once when a connection comes up), and, for a client with a near tier,
 * reports the near tier's counters to the daemon (NearReport) at most once
 * an interval (the daemon's, 1 s) and only when they changed: off the hit
 * path, which this thread never touches. */
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "units.h"

#define WORKER_PENDING_TICK_MS 50
#define WORKER_REPORT_TIMEOUT_MS 500

struct worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, woken; /* under mu */
    /* the thread's own: */
    int64_t interval_ms, next_report_ms;
    int reports_off; /* the daemon does not know NearReport */
    uint64_t reporter;
    int reported; /* a daemon took a report under reporter */
    pid_t pid;
    nc_near_stats sent; /* the counters of the last report the daemon took */
};

static uint64_t new_reporter(void)
{
    uint64_t id = 0;
    while (id == 0)
        if (getrandom(&id, sizeof id, 0) != sizeof id)
            id = (uint64_t)units_now_ms() * 2654435761u ^ (uint64_t)getpid();
    return id;
}

/* Sends a report when the counters changed since the last one taken. */
static void report(nc_client *c, struct worker *w)
{
    nc_near_stats s;
    near_stats(c->near, &s);
    if (s.hits == w->sent.hits && s.misses == w->sent.misses &&
        s.fills_refused == w->sent.fills_refused)
        return;
    if (w->pid != getpid()) /* a forked child reports as a client of its own */
        w->reporter = new_reporter(), w->pid = getpid(), w->reported = 0;
    uint32_t interval = 0;
    int rv = client_near_report(c, w->reporter, w->reported, &s, WORKER_REPORT_TIMEOUT_MS,
                                &interval);
    if (rv == NC_OK) {
        w->reported = 1;
        w->sent = s;
        w->interval_ms = interval > 0 ? interval : 1000;
    } else if (rv == NC_EUNIMPLEMENTED) {
        w->reports_off = 1;
    } else if (nc_status() == CODE(FAILED_PRECONDITION)) {
        w->reporter = new_reporter(), w->reported = 0; /* another process holds this id */
    }
}

static void *worker_main(void *arg)
{
    nc_client *c = arg;
    struct worker *w = atomic_load(&c->worker);
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        int64_t now = units_now_ms();
        int64_t wait = pending_count(c->pending) > 0 ? WORKER_PENDING_TICK_MS : w->interval_ms;
        if (c->near != NULL && !w->reports_off && w->next_report_ms - now < wait)
            wait = w->next_report_ms - now > 0 ? w->next_report_ms - now : 0;
        if (!w->woken && wait > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000)
                ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
        w->woken = 0;
        if (w->stop)
            break;
        pthread_mutex_unlock(&w->mu);
        conn_reap(&c->conn);
        if (pending_count(c->pending) > 0)
            client_ready(c); /* dials if due, then flushes */
        now = units_now_ms();
        if (c->near != NULL && !w->reports_off && now >= w->next_report_ms) {
            report(c, w);
            w->next_report_ms = now + w->interval_ms;
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int worker_start(nc_client *c)
{
    struct worker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -1;
    pthread_mutex_init(&w->mu, NULL);
    units_cond_init(&w->cv);
    w->interval_ms = 1000;
    w->next_report_ms = units_now_ms() + w->interval_ms;
    w->reporter = new_reporter();
    w->pid = getpid();
    atomic_store(&c->worker, w);
    if (pthread_create(&w->thread, NULL, worker_main, c) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        atomic_store(&c->worker, NULL);
        return -1;
    }
    return 0;
}

void worker_wake(nc_client *c)
{
    struct worker *w = atomic_load(&c->worker);
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->woken = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void worker_stop(nc_client *c)
{
    struct worker *w = atomic_load(&c->worker);
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    if (c->near != NULL && !w->reports_off)
        report(c, w); /* the last counts, so the host's totals have them */
}

void worker_free(nc_client *c)
{
    struct worker *w = atomic_load(&c->worker);
    if (w == NULL)
        return;
    atomic_store(&c->worker, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
