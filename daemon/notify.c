/* notify: sd_notify for nearcached; see notify.h. One thread wakes every
 * second (or every half watchdog period, if that is shorter): it sends
 * STATUS= when the status line changed and, once per half watchdog period,
 * WATCHDOG=1 if the progress counter moved since the last check. A counter
 * that stood still gets one probe (a request through the loop) before the
 * watchdog goes unfed; systemd then restarts the daemon after WatchdogSec. */
#include "notify.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "units.h"

#define STATUS_EVERY_MS 1000
#define STATUS_LEN      256

struct notify {
    notify_hooks hooks;
    int enabled;         /* $NOTIFY_SOCKET was set */
    int64_t watchdog_ms; /* 0: systemd asked for no watchdog */
    int64_t tick_ms;     /* how long the thread sleeps */
    uint64_t last_progress;
    int64_t next_check; /* units_now_ms() of the next watchdog check */
    char status[STATUS_LEN];
    pthread_t thread;
    int started;
    int stopping; /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

int notify_enabled(const notify *n)
{
    return n != NULL && n->enabled;
}

/* Sends STATUS= if the line differs from the last one sent. */
static void send_status(notify *n, int ready)
{
    char line[STATUS_LEN];
    n->hooks.status(n->hooks.arg, line, sizeof line);
    if (!ready && strcmp(line, n->status) == 0)
        return;
    memcpy(n->status, line, sizeof line);
    int rv = ready ? sd_notifyf(0, "READY=1\nSTATUS=%s", line) : sd_notifyf(0, "STATUS=%s", line);
    if (rv < 0)
        log_warn("cannot notify systemd: %s", strerror(-rv));
}

/* One watchdog check: feeds the watchdog if the loop made progress. */
static void check_progress(notify *n)
{
    uint64_t now = n->hooks.progress(n->hooks.arg);
    if (now == n->last_progress && n->hooks.probe(n->hooks.arg))
        now = n->hooks.progress(n->hooks.arg);
    if (now == n->last_progress) {
        log_warn("the request loop made no progress for %lld ms; not feeding the systemd "
                 "watchdog",
                 (long long)(n->watchdog_ms / 2));
        return;
    }
    n->last_progress = now;
    sd_notify(0, "WATCHDOG=1");
}

static void *notify_main(void *arg)
{
    notify *n = arg;
    pthread_mutex_lock(&n->mu);
    while (!n->stopping) {
        units_cond_wait_ms(&n->cv, &n->mu, n->tick_ms);
        if (n->stopping)
            break;
        pthread_mutex_unlock(&n->mu);
        send_status(n, 0);
        if (n->watchdog_ms > 0 && units_now_ms() >= n->next_check) {
            check_progress(n);
            n->next_check = units_now_ms() + n->watchdog_ms / 2;
        }
        pthread_mutex_lock(&n->mu);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

/* The watchdog period systemd asked for, in ms (0: none). */
static int64_t watchdog_period_ms(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return usec < 2000 ? 2 : (int64_t)(usec / 1000);
}

int notify_create(notify **out, const notify_hooks *hooks)
{
    notify *n = calloc(1, sizeof *n);
    if (n == NULL)
        return ENOMEM;
    n->hooks = *hooks;
    pthread_mutex_init(&n->mu, NULL);
    units_cond_init(&n->cv);
    const char *sock = getenv("NOTIFY_SOCKET");
    n->enabled = sock != NULL && sock[0] != '\0';
    if (!n->enabled) {
        *out = n;
        return 0;
    }
    n->watchdog_ms = watchdog_period_ms();
    n->tick_ms = STATUS_EVERY_MS;
    if (n->watchdog_ms > 0 && n->watchdog_ms / 2 < n->tick_ms)
        n->tick_ms = n->watchdog_ms / 2 > 0 ? n->watchdog_ms / 2 : 1;
    n->last_progress = hooks->progress(hooks->arg);
    n->next_check = units_now_ms() + n->watchdog_ms / 2;
    send_status(n, 1);
    int rv = pthread_create(&n->thread, NULL, notify_main, n);
    if (rv != 0) {
        notify_destroy(n);
        return rv;
    }
    n->started = 1;
    *out = n;
    return 0;
}

static void stop_thread(notify *n)
{
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    if (n->started)
        pthread_join(n->thread, NULL);
    n->started = 0;
}

void notify_stopping(notify *n, const char *why)
{
    if (n == NULL || !n->enabled)
        return;
    stop_thread(n);
    if (why != NULL)
        sd_notifyf(0, "STOPPING=1\nSTATUS=%s", why);
    else
        sd_notify(0, "STOPPING=1");
}

void notify_destroy(notify *n)
{
    if (n == NULL)
        return;
    stop_thread(n);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n);
}
