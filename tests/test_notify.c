/* systemd notification: the notify module with hooks the test controls, and
 * a real nearcached started with $NOTIFY_SOCKET and $WATCHDOG_USEC pointing
 * at a datagram socket the test reads, as systemd would. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "notify.h"

TestSuite(notify, .timeout = 60);

/* A datagram socket standing in for systemd's notify socket. */
typedef struct fake_systemd {
    int fd;
    char dir[64];
    char path[96];
} fake_systemd;

/* Binds the socket and sets $NOTIFY_SOCKET (and $WATCHDOG_USEC when
 * watchdog_usec is not NULL) in this test's process, for the code and the
 * daemons it starts. */
static void fake_systemd_start(fake_systemd *f, const char *watchdog_usec)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/nc-test-notify-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir), "mkdtemp: %s", strerror(errno));
    snprintf(f->path, sizeof f->path, "%s/notify.sock", f->dir);
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", f->path);
    cr_assert_eq(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
    setenv("NOTIFY_SOCKET", f->path, 1);
    if (watchdog_usec != NULL)
        setenv("WATCHDOG_USEC", watchdog_usec, 1);
    else
        unsetenv("WATCHDOG_USEC");
}

static void fake_systemd_stop(fake_systemd *f)
{
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    close(f->fd);
    unlink(f->path);
    rmdir(f->dir);
}

/* Receives one message within timeout_ms into buf; returns 0, or -1 when
 * none came. */
static int receive(fake_systemd *f, char *buf, size_t len, int64_t timeout_ms)
{
    struct pollfd p = {.fd = f->fd, .events = POLLIN};
    if (poll(&p, 1, (int)timeout_ms) <= 0)
        return -1;
    ssize_t n = recv(f->fd, buf, len - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* Waits up to timeout_ms for a message with the line `want` (a prefix of a
 * line, like "STATUS="); copies that message into msg and returns 1, or 0. */
static int wait_for(fake_systemd *f, const char *want, char *msg, size_t len, int64_t timeout_ms)
{
    for (int64_t end = h_now_ms() + timeout_ms; h_now_ms() < end;) {
        if (receive(f, msg, len, end - h_now_ms()) != 0)
            return 0;
        for (const char *line = msg; line != NULL; line = strchr(line, '\n')) {
            line += line[0] == '\n';
            if (strncmp(line, want, strlen(want)) == 0)
                return 1;
        }
    }
    return 0;
}

/* Counts messages with WATCHDOG=1 that arrive within ms. */
static int count_watchdogs(fake_systemd *f, int64_t ms)
{
    char msg[512];
    int n = 0;
    for (int64_t end = h_now_ms() + ms; h_now_ms() < end;)
        if (receive(f, msg, sizeof msg, end - h_now_ms()) == 0 && strstr(msg, "WATCHDOG=1"))
            n++;
    return n;
}

/* ---- the module, with hooks the test controls --------------------------- */

static atomic_int moving;      /* progress() advances the counter */
static atomic_int probe_moves; /* probe() advances it and answers */
static atomic_uint_fast64_t counter;
static atomic_int status_calls;

static uint64_t fake_progress(void *arg)
{
    if (atomic_load(&moving))
        return atomic_fetch_add(&counter, 1) + 1;
    return atomic_load(&counter);
}

static int fake_probe(void *arg)
{
    if (!atomic_load(&probe_moves))
        return 0;
    atomic_fetch_add(&counter, 1);
    return 1;
}

static void fake_status(void *arg, char *buf, size_t len)
{
    atomic_fetch_add(&status_calls, 1);
    snprintf(buf, len, "all fine");
}

static const notify_hooks fake_hooks = {fake_progress, fake_probe, fake_status, NULL};

Test(notify, does_nothing_without_notify_socket)
{
    unsetenv("NOTIFY_SOCKET");
    setenv("WATCHDOG_USEC", "100000", 1);
    notify *n = NULL;
    cr_assert_eq(notify_create(&n, &fake_hooks), 0);
    cr_assert_not(notify_enabled(n));
    h_sleep_ms(150);
    notify_stopping(n, "bye");
    notify_destroy(n);
    cr_assert_eq(atomic_load(&status_calls), 0, "the status was built %d times",
                 atomic_load(&status_calls));
}

Test(notify, ready_carries_the_status_and_stopping_comes_last)
{
    fake_systemd f;
    fake_systemd_start(&f, NULL);
    notify *n = NULL;
    cr_assert_eq(notify_create(&n, &fake_hooks), 0);
    cr_assert(notify_enabled(n));
    char msg[512];
    cr_assert_eq(receive(&f, msg, sizeof msg, 1000), 0, "no message at start");
    cr_assert_str_eq(msg, "READY=1\nSTATUS=all fine");
    notify_stopping(n, "draining");
    cr_assert(wait_for(&f, "STOPPING=1", msg, sizeof msg, 1000), "no STOPPING=1");
    cr_assert(strstr(msg, "STATUS=draining") != NULL, "got [%s]", msg);
    notify_destroy(n);
    fake_systemd_stop(&f);
}

Test(notify, feeds_the_watchdog_only_while_the_request_loop_makes_progress)
{
    fake_systemd f;
    fake_systemd_start(&f, "200000"); /* 200 ms: a check every 100 ms */
    atomic_store(&moving, 1);
    notify *n = NULL;
    cr_assert_eq(notify_create(&n, &fake_hooks), 0);
    int fed = count_watchdogs(&f, 1000);
    cr_assert_geq(fed, 3, "WATCHDOG=1 came %d times in 1 s while the loop moved", fed);

    atomic_store(&moving, 0); /* the loop hangs, and the probe is not answered */
    count_watchdogs(&f, 150); /* a check in progress may still feed it */
    fed = count_watchdogs(&f, 500);
    cr_assert_eq(fed, 0, "WATCHDOG=1 came %d times while the loop stood still", fed);

    atomic_store(&probe_moves, 1); /* idle, but a probe goes through */
    fed = count_watchdogs(&f, 1000);
    cr_assert_geq(fed, 3, "WATCHDOG=1 came %d times in 1 s while probes were answered", fed);
    notify_destroy(n);
    fake_systemd_stop(&f);
}

/* ---- a real daemon ------------------------------------------------------ */

Test(notify, daemon_reports_ready_status_watchdog_and_stopping)
{
    h_fleet fx;
    h_fleet_start(&fx, 0, NULL); /* before $NOTIFY_SOCKET: redis-server must not see it */
    fake_systemd f;
    fake_systemd_start(&f, "1000000");
    h_daemon *d = h_fleet_add(&fx, &fx.redis, NULL);
    char msg[512];
    cr_assert(wait_for(&f, "READY=1", msg, sizeof msg, 2000), "no READY=1; log:\n%s",
              h_read_file(d->log, NULL));
    cr_assert(strstr(msg, "\nSTATUS=serving on ipc://") != NULL, "READY came as [%s]", msg);
    cr_assert(strstr(msg, "redis: ") != NULL, "READY came as [%s]", msg);
    /* The daemon serves from L1 (h_daemon_start waited for it): the status
     * says so, at READY already or in a STATUS= line sent since. */
    const char *up = "redis: 4 of 4 connections up; subscription: up; L1: serving";
    while (strstr(msg, up) == NULL)
        cr_assert(wait_for(&f, "STATUS=", msg, sizeof msg, 3000), "status stuck at [%s]", msg);
    int fed = count_watchdogs(&f, 3000);
    cr_assert_geq(fed, 3, "WATCHDOG=1 came %d times in 3 s with WATCHDOG_USEC=1s", fed);
    kill(d->pid, SIGTERM);
    cr_assert(wait_for(&f, "STOPPING=1", msg, sizeof msg, 5000), "no STOPPING=1");
    h_fleet_stop(&fx);
    fake_systemd_stop(&f);
}
