/* Integration: a restart of a killed daemon always succeeds, 0.3 s later
 * as a supervisor does it or at once (the old process perhaps still
 * exiting), while near-tier clients keep reconnecting to its socket. The daemon owns
 * the socket path through PATH.lock (server.c): once the killed daemon is
 * gone the new one takes the lock and the stale socket, whatever the
 * clients' connects are doing to it; a second daemon on a live one is
 * refused (test_startup). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define RESTARTS 50
#define CLIENTS  3

typedef struct clients {
    const char *url;
    atomic_int stop;
    atomic_long opens, reads;
} clients;

/* One client process's life, again and again: open with a near tier, read
 * a few times, and open again as soon as a read fails (the daemon died). */
static void *client_loop(void *arg)
{
    clients *cl = arg;
    nc_open_opts o = {.flags = NC_OPEN_BACKGROUND, .near_bytes = 1 << 20};
    while (!atomic_load(&cl->stop)) {
        nc_client *c;
        if (nc_open_ex(&c, cl->url, &o) != NC_OK) {
            h_sleep_ms(5);
            continue;
        }
        atomic_fetch_add(&cl->opens, 1);
        for (int i = 0; i < 20 && !atomic_load(&cl->stop); i++) {
            void *v;
            size_t len;
            if (nc_get(c, NC_STR("users"), NC_STR("42"), &v, &len, 100) != NC_OK) {
                h_sleep_ms(5);
                break; /* the daemon is gone: open again, as a client reconnects */
            }
            atomic_fetch_add(&cl->reads, 1);
            nc_free(v);
        }
        nc_close(c);
    }
    return NULL;
}

/* Starts nearcached on d's URL with its output in d->dir/start-N.log, as a
 * supervisor does (no waiting on Ping), and waits until it logs that it
 * listens; fails the test with the log when it exits first. */
static void supervise_start(h_daemon *d, const h_redis *r, int n)
{
    char log[400];
    snprintf(log, sizeof log, "%s/start-%d.log", d->dir, n);
    FILE *f = fopen(log, "w");
    cr_assert_not_null(f);
    char *argv[] = {getenv("NC_DAEMON") ? getenv("NC_DAEMON") : "nearcached",
                    "--listen",
                    d->url,
                    "--redis",
                    (char *)r->url,
                    "--heartbeat-interval",
                    "50ms",
                    NULL};
    d->pid = h_spawn(argv, -1, fileno(f), fileno(f));
    fclose(f);
    for (int i = 0; i < 500; i++) {
        char *text = h_read_file(log, NULL);
        int up = text != NULL && strstr(text, " listening on ") != NULL;
        free(text);
        if (up)
            return;
        cr_assert(h_daemon_alive(d), "restart %d: nearcached exited at start; log:\n%s", n,
                  h_read_file(log, NULL));
        h_sleep_ms(10);
    }
    cr_assert_fail("restart %d: nearcached did not listen within 5 s; log:\n%s", n,
                   h_read_file(log, NULL));
}

Test(restart, kill_9_and_restart_0_3_s_later_succeeds_every_time_under_reconnecting_clients,
     .timeout = 80)
{
    h_redis r;
    h_daemon d;
    h_redis_start(&r);
    h_daemon_start(&d, &r, "--heartbeat-interval", "50ms", NULL);
    nc_client *c = h_client(&d);
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("42"), NC_STR("alice"), 600000, 2000), NC_OK);
    nc_close(c);
    clients cl = {.url = d.url};
    pthread_t t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, client_loop, &cl), 0);
    for (int n = 1; n <= RESTARTS; n++) {
        h_sleep_ms(100); /* the clients connect (and reconnect) meanwhile */
        pid_t old = d.pid;
        kill(old, SIGKILL);
        if (n % 2 == 0) { /* as a supervisor: the old one reaped, RestartSec 0.3 s */
            waitpid(old, NULL, 0);
            h_sleep_ms(300);
        } /* else at once, the old one perhaps not gone yet: the new one waits for it */
        supervise_start(&d, &r, n);
        waitpid(old, NULL, 0);
    }
    atomic_store(&cl.stop, 1);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
    cr_log_info("%d restarts; %ld client opens, %ld reads", RESTARTS, atomic_load(&cl.opens),
                atomic_load(&cl.reads));
    cr_assert_gt(atomic_load(&cl.reads), 0, "the clients never read a value");
    /* the last daemon serves (its watchdog has brought back a listener
     * that a client's hang-up stopped: nng 1.5.2 bug #1518) */
    nc_ping_info info;
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) {
        c = NULL;
        ok = nc_open(&c, d.url, 0) == NC_OK && nc_ping_ex(c, &info, 200) == NC_OK;
        nc_close(c);
        if (!ok)
            h_sleep_ms(100);
    }
    cr_assert(ok, "the last daemon does not answer Ping");
    cr_assert_eq(h_daemon_stop(&d), 0);
    h_redis_cleanup(&r);
}
