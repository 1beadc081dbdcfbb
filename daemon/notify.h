/* notify: what systemd is told about the daemon (sd_notify). READY=1 with a
 * STATUS= line once the socket is bound, STATUS= again whenever it changes,
 * WATCHDOG=1 only while the request loop makes progress, STOPPING=1 when the
 * daemon starts to drain. Without $NOTIFY_SOCKET nothing is sent and no
 * thread runs. The module knows the rest of the daemon only through the
 * hooks main.c gives it. */
#ifndef NC_NOTIFY_H
#define NC_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

typedef struct notify notify;

typedef struct notify_hooks {
    /* A counter that grows while the request loop works (replies sent). */
    uint64_t (*progress)(void *arg);
    /* Makes the loop work now (one request through it); returns 1 when it
     * was answered. Called when the counter stood still for a whole check. */
    int (*probe)(void *arg);
    /* Writes the one-line status into buf (len bytes, NUL-terminated). */
    void (*status)(void *arg, char *buf, size_t len);
    void *arg; /* not owned; must outlive the notify */
} notify_hooks;

/* Sends READY=1 and the first STATUS= and, when $NOTIFY_SOCKET is set,
 * starts the thread that updates STATUS= every second and, when systemd
 * asked for a watchdog ($WATCHDOG_USEC), checks progress every half period
 * and sends WATCHDOG=1 only if the counter moved (or the probe answered).
 * Returns 0 and hands the notify to *out (the caller owns it; free with
 * notify_destroy()), or ENOMEM or an errno value from pthread_create. */
int notify_create(notify **out, const notify_hooks *hooks);

/* Whether systemd listens ($NOTIFY_SOCKET was set at notify_create()). */
int notify_enabled(const notify *n);

/* Stops the thread, then sends STOPPING=1 with STATUS=`why` (NULL: no
 * STATUS). Accepts NULL. Call it before draining the server. */
void notify_stopping(notify *n, const char *why);

/* Stops the thread (if notify_stopping() has not) and frees the notify.
 * Accepts NULL. */
void notify_destroy(notify *n);

#endif
