/* Parked Gets; see waits.h. One mutex guards a list of waiters (a linear
 * list: parked calls are few, and every wake or sweep walks them once). The
 * sweeper sleeps until the earliest deadline, or until a call is parked. */
#include "waits.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

#define SWEEP_MS 5

typedef struct waiter {
    struct waiter *next;
    call *c;
    int64_t deadline;
    size_t klen;
    char key[];
} waiter;

struct waits {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    waiter *list; /* guarded by mu */
    size_t n;     /* guarded by mu */
    int stopping; /* guarded by mu */
    pthread_t sweeper;
    waits_wake_fn wake;
    void *arg;
};

/* Unlinks the waiters that match (key NULL: all; else by key) or whose
 * deadline passed (when now > 0) and returns them. Needs w->mu. */
static waiter *take_locked(waits *w, const void *key, size_t klen, int all, int64_t now)
{
    waiter *out = NULL, **pp = &w->list;
    while (*pp != NULL) {
        waiter *x = *pp;
        int match = all || (key != NULL && x->klen == klen && memcmp(x->key, key, klen) == 0) ||
                    (now > 0 && x->deadline <= now);
        if (match) {
            *pp = x->next;
            x->next = out;
            out = x;
            w->n--;
        } else {
            pp = &x->next;
        }
    }
    return out;
}

/* Hands each waiter to the wake function and frees it. */
static void deliver(waits *w, waiter *list, int timed_out, int64_t now)
{
    while (list != NULL) {
        waiter *next = list->next;
        w->wake(w->arg, list->c, timed_out || (now > 0 && list->deadline <= now));
        free(list);
        list = next;
    }
}

/* The earliest deadline of the parked calls, or -1 when none is. Needs
 * w->mu. */
static int64_t earliest_locked(const waits *w)
{
    int64_t e = -1;
    for (const waiter *x = w->list; x != NULL; x = x->next)
        if (e < 0 || x->deadline < e)
            e = x->deadline;
    return e;
}

/* Sleeps on the condition variable until the earliest deadline (rounded up
 * to SWEEP_MS, so close deadlines are answered together), or until a call is
 * parked when none is: an idle daemon does not wake up for nothing. */
static void *sweeper_main(void *arg)
{
    waits *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        int64_t due = earliest_locked(w);
        if (due < 0) {
            pthread_cond_wait(&w->cv, &w->mu);
        } else {
            units_cond_wait_ms(&w->cv, &w->mu, due - units_now_ms() + SWEEP_MS);
        }
        int64_t now = units_now_ms();
        waiter *expired = take_locked(w, NULL, 0, 0, now);
        pthread_mutex_unlock(&w->mu);
        deliver(w, expired, 1, now);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int waits_create(waits **out, waits_wake_fn wake, void *arg)
{
    waits *w = calloc(1, sizeof *w);
    if (w == NULL)
        return ENOMEM;
    w->wake = wake;
    w->arg = arg;
    pthread_mutex_init(&w->mu, NULL);
    units_cond_init(&w->cv);
    int rv = pthread_create(&w->sweeper, NULL, sweeper_main, w);
    if (rv != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return rv;
    }
    *out = w;
    return 0;
}

void waits_destroy(waits *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->sweeper, NULL);
    pthread_mutex_lock(&w->mu);
    waiter *all = take_locked(w, NULL, 0, 1, 0);
    pthread_mutex_unlock(&w->mu);
    deliver(w, all, 1, 0);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int waits_park(waits *w, const void *key, size_t klen, call *c, int64_t deadline)
{
    if (w == NULL)
        return ECANCELED;
    waiter *x = malloc(sizeof *x + klen);
    if (x == NULL)
        return ENOMEM;
    x->c = c;
    x->deadline = deadline;
    x->klen = klen;
    memcpy(x->key, key, klen);
    pthread_mutex_lock(&w->mu);
    x->next = w->list;
    w->list = x;
    w->n++;
    pthread_cond_signal(&w->cv); /* the sweeper may be asleep with nothing due */
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void waits_wake(waits *w, const void *key, size_t klen)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    waiter *list = w->list != NULL ? take_locked(w, key, klen, key == NULL, 0) : NULL;
    pthread_mutex_unlock(&w->mu);
    deliver(w, list, 0, 0);
}

size_t waits_parked(waits *w)
{
    if (w == NULL)
        return 0;
    pthread_mutex_lock(&w->mu);
    size_t n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}
