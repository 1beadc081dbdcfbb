/* Integration: rule R1 in libnearcache (client/conn.c). Dialing fails at
 * once, never waiting for the timeout, and says why: no socket file, a
 * stale one, or a permission error with the socket's owner, group and
 * mode and the fix; calls between dials fail at once with the last error;
 * a fail-open nc_fetch() then costs well under a millisecond more than its
 * loader; a daemon that comes back is used at once. */
#include <criterion/criterion.h>

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static char dir[64];

static void up(void)
{
    snprintf(dir, sizeof dir, "/tmp/nc-test-conn-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void down(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(conn, .init = up, .fini = down, .timeout = 60);

/* nc_open() of url, which must fail at once (before half of its 1 s
 * timeout: a loaded machine may stall it for less); returns nc_errmsg(). */
static const char *open_fails(const char *url)
{
    nc_client *c = NULL;
    int64_t t0 = h_now_ms();
    int rv = nc_open(&c, url, 0);
    cr_assert_eq(rv, NC_ECONNECT, "nc_open(%s): %s", url, nc_strerror(rv));
    cr_assert_lt(h_now_ms() - t0, 500, "nc_open failed only after %lld ms",
                 (long long)(h_now_ms() - t0));
    cr_assert_null(c);
    return nc_errmsg();
}

static void expect_words(const char *text, const char *words)
{
    cr_expect_not_null(strstr(text, words), "\"%s\" lacks \"%s\"", text, words);
}

Test(conn, a_missing_socket_file_is_named_with_the_fix)
{
    char url[128];
    snprintf(url, sizeof url, "ipc://%s/nearcached.sock", dir);
    const char *m = open_fails(url);
    expect_words(m, "no daemon is listening at ipc://");
    expect_words(m, "there is no socket file");
    expect_words(m, "NEARCACHE_URL");
    cr_expect_eq(nc_status(), CODE(UNAVAILABLE));
    snprintf(url, sizeof url, "ipc://%s/no-such-dir/nearcached.sock", dir);
    expect_words(open_fails(url), "nor its directory");
}

/* A Unix socket bound at DIR/name, its URL in url; returns its fd. */
static int bound_socket(const char *name, char *url, size_t len)
{
    char path[100];
    snprintf(path, sizeof path, "%.80s/%s", dir, name);
    snprintf(url, len, "ipc://%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

Test(conn, a_stale_socket_says_no_daemon_runs)
{
    char url[140];
    close(bound_socket("stale.sock", url, sizeof url)); /* the file stays; nothing listens */
    const char *m = open_fails(url);
    expect_words(m, "stale socket");
    expect_words(m, "nearcached is not running");
}

/* Runs `nearcache-cli -s url ping`, as root without its powers (setpriv
 * drops every capability, so file permissions hold) when we are root;
 * returns its exit code and its stderr in *err (caller frees). */
static int ping_unprivileged(const char *url, char **err)
{
    const char *cli = getenv("NC_CLI");
    cr_assert_not_null(cli);
    char *powerless[] = {"setpriv", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                         (char *)cli, "-s", (char *)url, "ping", NULL};
    char *as_me[] = {(char *)cli, "-s", (char *)url, "ping", NULL};
    return h_run(geteuid() == 0 ? powerless : as_me, NULL, 0, NULL, NULL, err);
}

Test(conn, a_permission_error_names_owner_group_mode_and_the_fix)
{
    h_fleet fx;
    h_fleet_start(&fx, 1, NULL);
    const h_daemon d = fx.node[0];
    const char *path = d.url + 6;
    if (geteuid() == 0) /* another user's socket, 0660 */
        cr_assert_eq(chown(path, 65534, 65534), 0);
    else
        cr_assert_eq(chmod(path, 0), 0); /* not even its owner may connect */
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    char want[800];
    snprintf(want, sizeof want, "the socket %s is %s:%s %04o", path, getpwuid(st.st_uid)->pw_name,
             getgrgid(st.st_gid)->gr_name, (unsigned)(st.st_mode & 07777));
    char *out;
    int code = ping_unprivileged(d.url, &out);
    cr_assert_eq(code, 3, "exit %d: %s", code, out);
    expect_words(out, "permission denied connecting to nearcached at ipc://");
    expect_words(out, want);
    expect_words(out, "usermod -aG");
    if (geteuid() == 0)
        expect_words(out, "this process runs as root; add root to group nogroup");
    expect_words(out, "set socket_group in the daemon's config");
    free(out);
    if (geteuid() != 0) { /* in this process too: the status says it */
        nc_client *c = NULL;
        cr_assert_eq(nc_open(&c, d.url, 0), NC_ECONNECT);
        cr_expect_eq(nc_status(), CODE(PERMISSION_DENIED));
    }
    h_fleet_stop(&fx);
}

static int loader(void *arg, nc_bytes ns, nc_bytes key, void **value, size_t *len)
{
    (void)arg, (void)ns, (void)key;
    *value = strdup("loaded");
    *len = 6;
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The docs' promise: with no daemon, a fail-open read-through costs its
 * loader's time plus well under a millisecond, whatever the traffic: calls
 * close together (between dials) and far apart (each one dials). */
Test(conn, fail_open_fetch_without_a_daemon_costs_well_under_a_millisecond)
{
    char url[128];
    snprintf(url, sizeof url, "ipc://%s/nearcached.sock", dir);
    nc_client *c;
    cr_assert_eq(nc_open(&c, url, NC_OPEN_BACKGROUND), NC_OK);
    nc_set_fail_open(c, 1);
    enum { N = 60 };
    int64_t took[N];
    for (int i = 0; i < N; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        void *v = NULL;
        size_t len;
        int rv = nc_fetch(c, NC_STR("ns"), NC_STR("k"), 60000, loader, NULL, &v, &len, 1000);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        cr_assert_eq(rv, NC_OK, "%s", nc_errmsg());
        nc_free(v);
        took[i] = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
        h_sleep_ms(i % 2 ? 1 : 60); /* some within a backoff, some after it */
    }
    qsort(took, N, sizeof took[0], cmp64);
    cr_expect_lt(took[N / 2], 1000, "median %lld us", (long long)took[N / 2]);
    /* the median is the promise; one call's time is the machine's, unless it
     * waited for its 1 s timeout */
    cr_expect_lt(took[N - 1], 500000, "slowest %lld us: it waited for the daemon",
                 (long long)took[N - 1]);
    nc_close(c);
}

Test(conn, calls_between_dials_fail_at_once_with_the_last_error)
{
    char url[128];
    snprintf(url, sizeof url, "ipc://%s/nearcached.sock", dir);
    nc_client *c;
    cr_assert_eq(nc_open(&c, url, NC_OPEN_BACKGROUND), NC_OK);
    int64_t slowest = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t t0 = h_now_ms();
        int rv = nc_ping(c, NULL, 1000);
        cr_assert_eq(rv, NC_ECONNECT);
        slowest = h_now_ms() - t0 > slowest ? h_now_ms() - t0 : slowest;
    }
    /* none waited for its 1 s timeout (1000 calls in 500 ms in all measured
     * the machine as much as the client) */
    cr_expect_lt(slowest, 500, "the slowest of 1000 pings took %lld ms", (long long)slowest);
    expect_words(nc_errmsg(), "there is no socket file");
    nc_close(c);
}

Test(conn, a_daemon_that_comes_back_is_used_at_once)
{
    h_fleet fx;
    h_fleet_start(&fx, 1, NULL);
    h_daemon *d = &fx.node[0];
    nc_client *c = fx.cl[0];
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
    unlink(d->url + 6);
    for (int64_t until = h_now_ms() + 2500; h_now_ms() < until; h_sleep_ms(20))
        cr_assert_eq(nc_ping(c, NULL, 1000), NC_ECONNECT); /* the backoff grows to 2 s */
    h_daemon_restart(d, &fx.redis, NULL);
    int64_t t0 = h_now_ms();
    cr_assert_eq(nc_ping(c, NULL, 1000), NC_OK, "%s", nc_errmsg());
    cr_expect_lt(h_now_ms() - t0, 500, "the next dial was not due for a second or more");
    h_fleet_stop(&fx);
}

Test(conn, a_daemon_that_accepts_but_never_answers_costs_each_call_its_timeout_only)
{
    /* A frozen daemon (SIGSTOP, or stuck): the kernel completes connect()
     * from the listen backlog, the SP handshake never comes back. */
    char url[140];
    int fd = bound_socket("frozen.sock", url, sizeof url);
    cr_assert_eq(listen(fd, 64), 0); /* and never accept() */
    nc_client *c = NULL;
    int64_t t0 = h_now_ms();
    cr_assert_eq(nc_open(&c, url, 0), NC_OK, "%s", nc_errmsg());
    cr_assert_lt(h_now_ms() - t0, 1000, "nc_open took %lld ms", (long long)(h_now_ms() - t0));
    for (int i = 0; i < 3; i++) {
        t0 = h_now_ms();
        int rv = nc_ping(c, NULL, 100);
        int64_t took = h_now_ms() - t0;
        cr_assert_neq(rv, NC_OK);
        cr_assert_lt(took, 1000, "ping %d with a 100 ms timeout took %lld ms: %s", i,
                     (long long)took, nc_errmsg());
    }
    nc_close(c);
    close(fd);
}
