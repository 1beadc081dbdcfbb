/* Integration: clients that misbehave at the socket level cost the others
 * nothing. A client killed with requests in flight, and one that sends
 * requests and never reads the replies, against a real daemon; another
 * client must be answered throughout, and every context comes back. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define CONTEXTS "32"

/* Every one of `n` Pings, sent at once from n threads of one client, is
 * answered within timeout_ms: no context is held by anything else. */
typedef struct burst {
    nc_client *c;
    int timeout_ms;
    int ok;
} burst;

static void *ping_one(void *arg)
{
    burst *b = arg;
    int up;
    b->ok = nc_ping(b->c, &up, b->timeout_ms) == NC_OK;
    return NULL;
}

static int all_answered(nc_client *c, int n, int timeout_ms)
{
    pthread_t t[64];
    burst b[64];
    int ok = 0;
    for (int i = 0; i < n; i++) {
        b[i] = (burst){c, timeout_ms, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, ping_one, &b[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        ok += b[i].ok;
    }
    return ok == n;
}

/* A raw SP connection to the daemon (REQ), handshake sent. */
static int sp_connect(const h_daemon *d)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", d->url + 6);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const uint8_t hello[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
    cr_assert_eq(write(fd, hello, sizeof hello), 8);
    return fd;
}

/* Writes one request (SP/IPC framing: 0x01, u64 length, REQ id, body). */
static int sp_send(int fd, uint32_t id, const uint8_t *body, size_t len)
{
    uint8_t m[9 + 4 + 64];
    uint64_t n = 4 + len;
    m[0] = 1;
    for (int i = 0; i < 8; i++)
        m[1 + i] = (uint8_t)(n >> (56 - 8 * i));
    id |= 0x80000000u;
    for (int i = 0; i < 4; i++)
        m[9 + i] = (uint8_t)(id >> (24 - 8 * i));
    memcpy(m + 13, body, len);
    return write(fd, m, 13 + len) == (ssize_t)(13 + len) ? 0 : -1;
}

/* Get of users/big (field 10: ns "users", key "big"). */
static const uint8_t get_big[] = {0x52, 0x0c, 0x0a, 0x05, 'u', 's', 'e', 'r',
                                  's',  0x12, 0x03, 'b',  'i', 'g'};

/* Whether the daemon closed the raw connection fd within timeout_ms:
 * what it sent is read and dropped until end of file. */
static int closed_by_daemon(int fd, int timeout_ms)
{
    static char sink[64 * 1024];
    int64_t give_up = h_now_ms() + timeout_ms;
    while (h_now_ms() < give_up) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, sink, sizeof sink);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
    }
    return 0;
}

/* The replies a rogue owes hold contexts (nng writes one reply at a time per
 * connection) until the daemon gives up on them (1 s) and closes the rogue's
 * connection; the listener is never re-created for it: before, the listener
 * watchdog took the busy contexts for nng bug #1518, re-created the listener,
 * and so closed every connection, which let nng 1.5.2 hang at SIGTERM in
 * nng_close() in about one run of three. */
Test(rogue, a_client_that_sends_and_never_reads_costs_the_others_nothing, .timeout = 120)
{
    h_fleet f;
    h_fleet_start(&f, 1, "--contexts", CONTEXTS, NULL);
    h_daemon *d = &f.node[0];
    static char big[256 * 1024];
    memset(big, 'x', sizeof big);
    nc_client *c = h_client(d);
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("big"), (nc_bytes){big, sizeof big}, 600000,
                        2000),
                 NC_OK);
    /* several rogue connections, each with far more replies owed than a
     * socket buffer holds, none read */
    int rogue[4];
    for (int r = 0; r < 4; r++) {
        rogue[r] = sp_connect(d);
        for (uint32_t i = 1; i <= 200; i++)
            cr_assert_eq(sp_send(rogue[r], i, get_big, sizeof get_big), 0);
    }
    h_sleep_ms(500);
    int64_t read = h_stat(c, "requests");
    cr_log_info("the daemon read %lld requests", (long long)read);
    cr_assert_geq(read, 4 + 1, "the rogues' requests were not read");
    for (int round = 0; round < 3; round++)
        cr_assert(all_answered(c, 48, 2000), "round %d: a Ping was not answered", round);
    void *v;
    size_t len;
    cr_assert_eq(nc_get(c, NC_STR("users"), NC_STR("big"), &v, &len, 2000), NC_OK);
    nc_free(v);
    for (int r = 0; r < 4; r++) {
        cr_assert(closed_by_daemon(rogue[r], 5000), "rogue %d: its connection is still open", r);
        close(rogue[r]);
    }
    cr_assert(all_answered(c, 48, 2000), "after the rogues left");
    nc_close(c);
    char *log = h_read_file(d->log, NULL);
    cr_assert(strstr(log, "does not read its replies") != NULL, "not logged:\n%s", log);
    cr_assert(strstr(log, "re-creating") == NULL, "the listener was re-created:\n%s", log);
    free(log);
    h_fleet_stop(&f);
}

Test(rogue, a_client_killed_with_requests_in_flight_leaves_every_context_free, .timeout = 120)
{
    h_fleet f;
    h_fleet_start(&f, 1, "--contexts", CONTEXTS, NULL);
    h_daemon *d = &f.node[0];
    nc_client *c = h_client(d);
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("42"), NC_STR("alice"), 600000, 2000), NC_OK);
    for (int round = 0; round < 5; round++) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) { /* many requests in flight, then killed mid-way */
            int fd = sp_connect(d);
            static const uint8_t get42[] = {0x52, 0x0b, 0x0a, 0x05, 'u', 's', 'e',
                                            'r',  's',  0x12, 0x02, '4', '2'};
            for (uint32_t i = 1;; i++)
                if (sp_send(fd, i, get42, sizeof get42) != 0)
                    _exit(0);
        }
        h_sleep_ms(200);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert(all_answered(c, 48, 2000), "round %d: a context is still held", round);
    }
    nc_close(c);
    h_fleet_stop(&f);
}

/* Sets the soft limit of open files (returns the old one). */
static rlim_t set_nofile(rlim_t n)
{
    struct rlimit l;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &l), 0);
    rlim_t was = l.rlim_cur;
    l.rlim_cur = n;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &l), 0);
    return was;
}

Test(rogue, fd_exhaustion_keeps_connected_clients_answered_and_recovers, .timeout = 120)
{
    h_fleet f;
    rlim_t was = set_nofile(160); /* the daemon inherits it */
    h_fleet_start(&f, 1, NULL);
    set_nofile(was);
    h_daemon *d = &f.node[0];
    nc_client *c = h_client(d);
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("42"), NC_STR("alice"), 600000, 2000), NC_OK);
    int rogue[400], n = 0;
    for (; n < 400; n++) { /* past the daemon's limit: it runs out (EMFILE) */
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%.100s", d->url + 6);
        rogue[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        cr_assert(rogue[n] >= 0);
        int rv, tries = 0;
        while ((rv = connect(rogue[n], (struct sockaddr *)&a, sizeof a)) != 0 && tries++ < 40)
            h_sleep_ms(5); /* the backlog is full: the daemon may still be accepting */
        if (rv != 0) {
            close(rogue[n]);
            break; /* it is not: out of descriptors, with its backlog full too */
        }
    }
    cr_log_info("%d connections made", n);
    cr_assert_gt(n, 160, "the daemon's limit was not reached");
    h_sleep_ms(300);
    for (int round = 0; round < 3; round++)
        cr_assert(all_answered(c, 16, 2000), "round %d: a Ping was not answered", round);
    for (int i = 0; i < n; i++)
        close(rogue[i]);
    /* a new client gets in once the descriptors are back */
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) {
        nc_client *fresh = NULL;
        int up;
        ok = nc_open(&fresh, d->url, 0) == NC_OK && nc_ping(fresh, &up, 200) == NC_OK;
        nc_close(fresh);
        if (!ok)
            h_sleep_ms(100);
    }
    cr_assert(ok, "no new client got an answer within 5 s of the fds coming back; log:\n%s",
              h_read_file(d->log, NULL));
    nc_close(c);
    h_fleet_stop(&f);
}

/* The daemon's open descriptors and resident memory (KiB), from /proc. */
static int daemon_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static long daemon_rss_kib(pid_t pid)
{
    char path[64], *status, *at;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    status = h_read_file(path, NULL);
    at = strstr(status, "VmRSS:");
    long kib = at != NULL ? strtol(at + 6, NULL, 10) : -1;
    free(status);
    return kib;
}

/* The slowest of `n` Pings and Gets in a row, in ms; every one answered. */
static int64_t slowest_call_ms(nc_client *c, int n)
{
    int64_t worst = 0;
    for (int i = 0; i < n; i++) {
        int64_t t0 = h_now_ms();
        int up;
        void *v;
        size_t len;
        cr_assert_eq(nc_ping(c, &up, 5000), NC_OK, "a Ping: %s", nc_errmsg());
        cr_assert_eq(nc_get(c, NC_STR("users"), NC_STR("42"), &v, &len, 5000), NC_OK);
        nc_free(v);
        if (h_now_ms() - t0 > worst)
            worst = h_now_ms() - t0;
    }
    return worst;
}

enum { HELD = 10000 };

/* 10,000 connections (raw SP over IPC, handshake sent, nothing else) held
 * at once: clients connected before and after are answered meanwhile, and
 * when they close, the daemon's descriptors and memory come back down. The
 * figures go to the log (docs/operations.md, fault matrix). */
Test(rogue, ten_thousand_connections_are_held_and_given_back, .timeout = 140)
{
    struct rlimit l;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &l), 0);
    rlim_t need = HELD + 1000;
    if (l.rlim_max < need) {
        l.rlim_max = need; /* root may raise it */
        if (setrlimit(RLIMIT_NOFILE, &l) != 0)
            cr_skip_test("cannot raise RLIMIT_NOFILE to %lu", (unsigned long)need);
    }
    rlim_t was = set_nofile(need); /* the daemon inherits it */
    h_fleet f;
    h_fleet_start(&f, 1, NULL);
    set_nofile(was > need ? was : need);
    h_daemon *d = &f.node[0];
    nc_client *c = h_client(d);
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("42"), NC_STR("alice"), 600000, 2000), NC_OK);
    int fds0 = daemon_fds(d->pid);
    long rss0 = daemon_rss_kib(d->pid);
    static int held[HELD];
    int64_t t0 = h_now_ms();
    for (int i = 0; i < HELD; i++)
        held[i] = sp_connect(d);
    int64_t connected = h_now_ms() - t0;
    /* the daemon took each once it sent its SP handshake back (counting its
     * descriptors would count its own passing ones too) */
    for (int i = 0; i < HELD; i++) {
        uint8_t hello[8];
        struct pollfd p = {.fd = held[i], .events = POLLIN};
        int64_t left = 60000 - (h_now_ms() - t0);
        cr_assert(left > 0 && poll(&p, 1, (int)left) == 1,
                  "the daemon took only %d connections in 60 s", i);
        cr_assert_eq(read(held[i], hello, sizeof hello), 8, "connection %d: no SP handshake", i);
        cr_assert(hello[1] == 'S' && hello[2] == 'P', "connection %d: not an SP handshake", i);
    }
    int64_t accepted = h_now_ms() - t0;
    cr_expect_geq(daemon_fds(d->pid), fds0 + HELD - 10, "a descriptor a connection");
    h_sleep_ms(500);
    long rss1 = daemon_rss_kib(d->pid);
    int64_t worst = slowest_call_ms(c, 50);
    nc_client *late = h_client(d); /* a connection made while they are held */
    int64_t worst_late = slowest_call_ms(late, 50);
    cr_assert(all_answered(c, 48, 2000), "48 Pings at once");
    cr_log_info("%d connections: connected in %lld ms, all taken by the daemon in %lld ms; "
                "RSS %ld -> %ld KiB (%ld bytes a connection); slowest Ping+Get %lld ms, from a "
                "client connected after them %lld ms",
                HELD, (long long)connected, (long long)accepted, rss0, rss1,
                (rss1 - rss0) * 1024 / HELD, (long long)worst, (long long)worst_late);
    cr_assert_lt(worst, 1000, "a Ping and a Get took %lld ms", (long long)worst);
    cr_assert_lt(worst_late, 1000, "a Ping and a Get took %lld ms", (long long)worst_late);
    nc_close(late);
    int64_t t1 = h_now_ms();
    for (int i = 0; i < HELD; i++)
        close(held[i]);
    while (daemon_fds(d->pid) > fds0 + 10) {
        cr_assert_lt(h_now_ms() - t1, 30000, "%d descriptors still open 30 s after the close",
                     daemon_fds(d->pid) - fds0);
        h_sleep_ms(10);
    }
    int64_t released = h_now_ms() - t1;
    h_sleep_ms(2500); /* the daemon gives memory back within a second or two of the closes */
    long rss2 = daemon_rss_kib(d->pid);
    cr_log_info("closed: descriptors back in %lld ms; RSS %ld KiB", (long long)released, rss2);
    cr_assert_lt(rss2 - rss0, (rss1 - rss0) / 2, "RSS %ld -> %ld -> %ld KiB", rss0, rss1, rss2);
    cr_assert(all_answered(c, 48, 2000), "after they closed");
    nc_close(c);
    h_fleet_stop(&f);
}
