/* Integration: Redis killed, restarted, slow; deadlines; shutdown. The daemon
 * never exits because Redis went away, never hangs a request past its
 * deadline, and a slow Redis does not hold up L1 hits. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static h_fleet fx; /* one daemon */

static void up(void)
{
    h_fleet_start(&fx, 1, "--redis-timeout", "300ms", NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
}

TestSuite(faults, .init = up, .fini = down, .timeout = 60);
/* Tests that start the daemon with their own flags. */
TestSuite(faults_flags, .fini = down, .timeout = 60);

static int get_status(const char *key, char **value, int timeout_ms)
{
    void *v = NULL;
    size_t len;
    int rv = nc_get(fx.cl[0], NC_STR("ns"), NC_STR(key), &v, &len, timeout_ms);
    if (value != NULL)
        *value = v;
    else
        nc_free(v);
    return rv;
}

/* The subscriber sees a closed connection within moments (a silent one
 * within coherence_window); from then on L1 is not used. */
static void wait_for_subscription_loss(void)
{
    int64_t give_up = h_now_ms() + 2000;
    while (h_stat(fx.cl[0], "subscription_up") != 0 && h_now_ms() < give_up)
        h_sleep_ms(5);
}

Test(faults, redis_down_means_no_l1_and_unavailable_for_everything)
{
    /* Without a subscription this node cannot hear about writes, so it
     * serves nothing from L1 (DESIGN: "Subscription lost"). */
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("hot"), NC_STR("v"), 60000, 0), NC_OK);
    cr_assert_eq(get_status("hot", NULL, 0), NC_OK);
    h_redis_stop(&fx.redis, 1);
    wait_for_subscription_loss();
    cr_assert_eq(get_status("hot", NULL, 0), NC_EUNAVAILABLE, "an L1 entry served blind");
    cr_assert_eq(get_status("cold", NULL, 0), NC_EUNAVAILABLE);
    cr_assert_eq(nc_status(), CODE(UNAVAILABLE));
    cr_assert_not_null(strstr(nc_errmsg(), "redis"), "message: %s", nc_errmsg());
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("x"), NC_STR("y"), 60000, 0),
                 NC_EUNAVAILABLE);
    cr_assert_eq(nc_del(fx.cl[0], NC_STR("ns"), NC_STR("hot"), NULL, 0), NC_EUNAVAILABLE);
    cr_assert(h_stat(fx.cl[0], "redis_errors") >= 3);
    cr_assert_eq(h_stat(fx.cl[0], "subscription_up"), 0);
    cr_assert_eq(h_stat(fx.cl[0], "subscription_losses"), 1);
    int up = 1;
    for (int64_t until = h_now_ms() + 3000; up && h_now_ms() < until; h_sleep_ms(20))
        cr_assert_eq(nc_ping(fx.cl[0], &up, 0), NC_OK);
    cr_assert_eq(up, 0, "Ping says redis is up 3 s after it went down");
    cr_assert_eq(h_stat(fx.cl[0], "redis_connections_up"), 0);
}

Test(faults_flags, stale_if_error_serves_l1_while_redis_is_down_and_says_so)
{
    h_fleet_start(&fx, 1, "--stale-if-error", "5s", NULL);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("hot"), NC_STR("v"), 60000, 0), NC_OK);
    h_redis_stop(&fx.redis, 1);
    wait_for_subscription_loss();
    void *v;
    size_t len;
    nc_get_info info;
    cr_assert_eq(nc_get_ex(fx.cl[0], NC_STR("ns"), NC_STR("hot"), &v, &len, &info, 0), NC_OK, "%s",
                 nc_errmsg());
    cr_assert_str_eq(v, "v");
    nc_free(v);
    cr_assert(info.stale, "the reply must say the value is stale");
    cr_assert_eq(info.source, NC_SOURCE_L1);
    cr_assert_lt(info.stale_ms, 5000);
    cr_assert_eq(get_status("cold", NULL, 0), NC_EUNAVAILABLE);
    cr_assert_eq(h_stat(fx.cl[0], "stale_served"), 1);
    /* A lease Get is served stale too (no lease is taken: Redis is down). */
    nc_get_opts lease = {.lease = 1};
    cr_assert_eq(nc_get_opt(fx.cl[0], NC_STR("ns"), NC_STR("hot"), &lease, &v, &len, &info, 0),
                 NC_OK, "%s", nc_errmsg());
    nc_free(v);
    cr_assert(info.stale);
    cr_assert_eq(info.lease, NC_LEASE_NONE);
    /* An MGet, when L1 holds every key; else it fails as a whole. */
    nc_bytes keys[] = {NC_STR("hot"), NC_STR("cold")};
    nc_item *items;
    cr_assert_eq(nc_mget(fx.cl[0], NC_STR("ns"), keys, 1, &items, 0), NC_OK, "%s", nc_errmsg());
    cr_assert(items[0].found && items[0].stale);
    cr_assert_eq(items[0].len, 1);
    nc_items_free(items, 1);
    cr_assert_eq(nc_mget(fx.cl[0], NC_STR("ns"), keys, 2, &items, 0), NC_EUNAVAILABLE);
    cr_assert_eq(h_stat(fx.cl[0], "stale_served"), 3);
    h_sleep_ms(5200); /* past stale_if_error: no longer served */
    cr_assert_eq(get_status("hot", NULL, 0), NC_EUNAVAILABLE);
    cr_assert_eq(nc_get_opt(fx.cl[0], NC_STR("ns"), NC_STR("hot"), &lease, &v, &len, &info, 0),
                 NC_EUNAVAILABLE);
    cr_assert_eq(nc_mget(fx.cl[0], NC_STR("ns"), keys, 1, &items, 0), NC_EUNAVAILABLE);
}

/* A hung Redis (it accepts, never answers): Gets that miss L1 on the read
 * lane are answered stale, each within its budget: a short one (300 ms,
 * under redis_timeout) a margin before it ends; the next one once the
 * lane gives up the hung connection, not after another redis_timeout on
 * the workers. */
Test(faults_flags, stale_if_error_serves_l1_while_redis_hangs)
{
    h_fleet_start(&fx, 1, "--stale-if-error", "30s", "--redis-timeout", "500ms", NULL);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("hot"), NC_STR("v"), 60000, 0), NC_OK);
    pid_t sleeper = h_redis_sleep(&fx.redis, "4", 100);
    wait_for_subscription_loss(); /* L1 no longer serves fresh: Gets go to Redis */
    const int budget[] = {300, 1500}, bound[] = {300, 850};
    for (int i = 0; i < 2; i++) {
        void *v;
        size_t len;
        nc_get_info info;
        int64_t t0 = h_now_ms();
        int rv = nc_get_ex(fx.cl[0], NC_STR("ns"), NC_STR("hot"), &v, &len, &info, budget[i]);
        int64_t took = h_now_ms() - t0;
        cr_assert_eq(rv, NC_OK, "a %d ms Get after %lld ms: %s", budget[i], (long long)took,
                     nc_errmsg());
        nc_free(v);
        cr_assert(info.stale);
        cr_assert_lt(took, bound[i], "a %d ms Get answered after %lld ms", budget[i],
                     (long long)took);
    }
    cr_assert_eq(h_stat(fx.cl[0], "stale_served"), 2);
    waitpid(sleeper, NULL, 0);
}

Test(faults, daemon_reconnects_after_redis_is_killed_and_restarted)
{
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("a"), NC_STR("1"), 60000, 0), NC_OK);
    h_redis_stop(&fx.redis, 1);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("a"), NC_STR("2"), 60000, 0),
                 NC_EUNAVAILABLE);
    h_redis_restart(&fx.redis); /* empty: no persistence */
    int64_t give_up = h_now_ms() + 10000;
    int rv;
    while ((rv = nc_set(fx.cl[0], NC_STR("ns"), NC_STR("b"), NC_STR("3"), 60000, 0)) != NC_OK &&
           h_now_ms() < give_up)
        h_sleep_ms(50);
    cr_assert_eq(rv, NC_OK, "no reconnect within 10 s: %s", nc_errmsg());
    char *v;
    rv = get_status("b", &v, 0);
    cr_assert_eq(rv, NC_OK, "get after the reconnect: %s: %s", nc_strerror(rv), nc_errmsg());
    cr_assert_str_eq(v, "3");
    nc_free(v);
    /* The failed write of "a" dropped it from L1: no stale "1" is served. */
    int got = get_status("a", NULL, 0);
    cr_assert_eq(got, NC_ENOTFOUND, "get a: %s: %s", nc_strerror(got), nc_errmsg());
    int up = 0;
    cr_assert_eq(nc_ping(fx.cl[0], &up, 0), NC_OK);
    cr_assert_eq(up, 1);
    cr_assert(h_daemon_alive(&fx.node[0]));
}

Test(faults, daemon_started_without_redis_serves_once_redis_comes)
{
    nc_close(fx.cl[0]);
    fx.cl[0] = NULL;
    h_daemon_stop(&fx.node[0]);
    h_redis_stop(&fx.redis, 1);
    h_daemon_start(&fx.node[0], &fx.redis, NULL); /* the port is closed now */
    fx.cl[0] = h_client(&fx.node[0]);
    cr_assert_eq(get_status("k", NULL, 0), NC_EUNAVAILABLE);
    h_redis_restart(&fx.redis);
    int64_t give_up = h_now_ms() + 10000;
    int rv;
    while ((rv = get_status("k", NULL, 0)) != NC_ENOTFOUND && h_now_ms() < give_up)
        h_sleep_ms(50);
    cr_assert_eq(rv, NC_ENOTFOUND, "still %s after 10 s", nc_strerror(rv));
}

/* The coherence window is longer than Redis's sleep here: this test is
 * about misses stuck behind Redis, not about the window running out. */
Test(faults_flags, slow_redis_does_not_hold_up_l1_hits)
{
    h_fleet_start(&fx, 1, "--redis-timeout", "300ms", "--coherence-window", "5s", NULL);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("hot"), NC_STR("v"), 60000, 0), NC_OK);
    pid_t sleeper = h_redis_sleep(&fx.redis, "1.5", 100);
    /* Misses pile up behind the sleeping Redis... */
    nc_client *other = h_client(&fx.node[0]);
    for (int i = 0; i < 4; i++) {
        void *v;
        size_t len;
        nc_get(other, NC_STR("ns"), NC_STR("cold"), &v, &len, 200);
    }
    /* ...while hits keep coming from L1, each well inside the sleep. */
    for (int i = 0; i < 20; i++) {
        int64_t t0 = h_now_ms();
        cr_assert_eq(get_status("hot", NULL, 1000), NC_OK);
        cr_assert_lt(h_now_ms() - t0, 200, "an L1 hit took %lld ms", (long long)(h_now_ms() - t0));
    }
    nc_close(other);
    waitpid(sleeper, NULL, 0);
}

struct miss {
    nc_client *c;
    int i, rv;
};

static void *miss_main(void *arg)
{
    struct miss *m = arg;
    char key[16];
    snprintf(key, sizeof key, "miss%d", m->i);
    void *v;
    size_t len;
    m->rv = nc_get(m->c, NC_STR("ns"), (nc_bytes){key, strlen(key)}, &v, &len, 4000);
    return NULL;
}

/* However many misses wait for a sleeping Redis, on the read lane and in
 * the workers' queue together, 16 contexts stay free: Ping and L1 hits are
 * still answered at once, and the misses beyond the cap are turned away. */
Test(faults_flags, misses_stuck_behind_redis_leave_contexts_for_l1_hits)
{
    enum { MISSES = 48 }; /* cap: 40 - 2 - 16 = 22 waiting, 2 running */
    h_fleet_start(&fx, 1, "--contexts", "40", "--redis-connections", "2", "--redis-timeout", "3s",
                  "--coherence-window", "10s", NULL);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("hot"), NC_STR("v"), 60000, 0), NC_OK);
    pid_t sleeper = h_redis_sleep(&fx.redis, "2", 100);
    struct miss m[MISSES];
    pthread_t t[MISSES];
    for (int i = 0; i < MISSES; i++) {
        m[i] = (struct miss){.c = h_client(&fx.node[0]), .i = i, .rv = -1};
        cr_assert_eq(pthread_create(&t[i], NULL, miss_main, &m[i]), 0);
    }
    h_sleep_ms(500); /* every miss has reached the daemon */
    for (int i = 0; i < 10; i++) {
        int64_t t0 = h_now_ms();
        int up = -1;
        cr_assert_eq(nc_ping(fx.cl[0], &up, 1000), NC_OK, "ping: %s", nc_errmsg());
        cr_assert_eq(get_status("hot", NULL, 1000), NC_OK);
        cr_assert_lt(h_now_ms() - t0, 300, "ping and an L1 hit took %lld ms",
                     (long long)(h_now_ms() - t0));
    }
    int turned_away = 0;
    for (int i = 0; i < MISSES; i++) {
        pthread_join(t[i], NULL);
        turned_away += m[i].rv == NC_ETOOBIG;
        nc_close(m[i].c);
    }
    waitpid(sleeper, NULL, 0);
    cr_assert_geq(turned_away, MISSES - 24, "only %d of %d misses turned away", turned_away,
                  MISSES);
    cr_assert_geq(h_stat(fx.cl[0], "overloaded"), MISSES - 24);
}

Test(faults, deadline_is_answered_in_time_when_redis_is_slow)
{
    pid_t sleeper = h_redis_sleep(&fx.redis, "2", 100);
    int64_t t0 = h_now_ms();
    int rv = get_status("cold", NULL, 250);
    int64_t took = h_now_ms() - t0;
    cr_assert_eq(rv, NC_ETIMEDOUT, "got %s: %s", nc_strerror(rv), nc_errmsg());
    /* The daemon's own answer, sent early enough to arrive in time. */
    cr_assert_eq(nc_status(), CODE(DEADLINE_EXCEEDED), "%s", nc_errmsg());
    cr_assert_lt(took, 1000, "a 250 ms request took %lld ms", (long long)took);
    waitpid(sleeper, NULL, 0);
    /* The daemon's own answer, once Redis is back. */
    cr_assert(h_stat(fx.cl[0], "deadline_exceeded") + h_stat(fx.cl[0], "redis_errors") >= 1);
    cr_assert_eq(get_status("cold", NULL, 0), NC_ENOTFOUND);
}

struct slow_get {
    nc_client *c;
    int rv;
};

static void *slow_get_main(void *arg)
{
    struct slow_get *g = arg;
    void *v;
    size_t len;
    g->rv = nc_get(g->c, NC_STR("ns"), NC_STR("cold"), &v, &len, 3000);
    return NULL;
}

Test(faults, sigterm_lets_a_request_in_flight_finish_then_exits_zero)
{
    struct slow_get g = {.c = h_client(&fx.node[0]), .rv = -1};
    pid_t sleeper =
        h_redis_sleep(&fx.redis, "0.25", 100); /* inside the daemon's 300 ms redis_timeout */
    pthread_t t;
    pthread_create(&t, NULL, slow_get_main, &g);
    int64_t give_up = h_now_ms() + 2000; /* until the Get waits on Redis */
    while (h_stat(fx.cl[0], "l1_misses") < 1)
        cr_assert_lt(h_now_ms(), give_up, "the Get never reached the daemon");
    kill(fx.node[0].pid, SIGTERM);
    pthread_join(t, NULL);
    nc_close(g.c);
    cr_assert_eq(g.rv, NC_ENOTFOUND, "the in-flight Get got %s", nc_strerror(g.rv));
    int status;
    waitpid(fx.node[0].pid, &status, 0);
    fx.node[0].pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    waitpid(sleeper, NULL, 0);
    h_daemon_start(&fx.node[0], &fx.redis, NULL); /* for down() */
}

/* SIGTERM while Redis is down and clients keep sending: each call ends
 * with the daemon's answer or, once it is gone, a closed connection
 * (NC_ECONNECT), never later than its timeout; the daemon exits 0 within
 * shutdown_timeout. */
enum { STORM_THREADS = 8, STORM_TIMEOUT_MS = 1500 };

struct storm {
    nc_client *c;
    int i;
    int64_t sigterm_at; /* shared: set once SIGTERM is sent; 0 before */
    int64_t *sent_at;
    int answered, closed, straddled; /* straddled: sent before SIGTERM, ended after */
    int bad_rv;                      /* an outcome neither an answer nor a close */
    char bad_msg[256];               /* its message */
    int64_t slowest_ms;
};

static void *storm_main(void *arg)
{
    struct storm *s = arg;
    for (int n = 0;; n++) {
        char key[24];
        snprintf(key, sizeof key, "k%d.%d", s->i, n % 4);
        int64_t t0 = h_now_ms();
        void *v = NULL;
        size_t len;
        int rv;
        switch (n % 3) {
        case 0:
            rv = nc_get(s->c, NC_STR("ns"), (nc_bytes){key, strlen(key)}, &v, &len,
                        STORM_TIMEOUT_MS);
            nc_free(v);
            break;
        case 1:
            rv = nc_get(s->c, NC_STR("ns"), NC_STR("hot"), &v, &len, STORM_TIMEOUT_MS);
            nc_free(v);
            break;
        default:
            rv = nc_set(s->c, NC_STR("ns"), (nc_bytes){key, strlen(key)}, NC_STR("v"), 60000,
                        STORM_TIMEOUT_MS);
        }
        int64_t t1 = h_now_ms(), term = __atomic_load_n(s->sent_at, __ATOMIC_ACQUIRE);
        if (t1 - t0 > s->slowest_ms)
            s->slowest_ms = t1 - t0;
        if (term != 0 && t0 < term && t1 >= term)
            s->straddled++;
        /* The daemon's answers: Redis is down, so UNAVAILABLE or its
         * DEADLINE_EXCEEDED (a reply, with the status), or a hit. */
        if (rv == NC_OK || rv == NC_ENOTFOUND || rv == NC_EUNAVAILABLE ||
            (rv == NC_ETIMEDOUT && nc_status() == CODE(DEADLINE_EXCEEDED)))
            s->answered++;
        else if (rv == NC_ECONNECT) {
            s->closed++;
            return NULL; /* the daemon is gone */
        } else {
            s->bad_rv = rv;
            snprintf(s->bad_msg, sizeof s->bad_msg, "%s (sent %lld ms after SIGTERM, took %lld ms)",
                     nc_errmsg(), (long long)(term != 0 ? t0 - term : t0 - t1),
                     (long long)(t1 - t0));
            return NULL;
        }
    }
}

static void sigterm_under_load(int freeze)
{
    h_fleet_start(&fx, 1, "--redis-timeout", "300ms", "--shutdown-timeout", "2s", NULL);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("hot"), NC_STR("v"), 60000, 0), NC_OK);
    if (freeze)
        kill(fx.redis.pid, SIGSTOP); /* accepts nothing, answers nothing */
    else
        h_redis_stop(&fx.redis, 1);
    int64_t sent_at = 0;
    struct storm s[STORM_THREADS];
    pthread_t t[STORM_THREADS];
    for (int i = 0; i < STORM_THREADS; i++) {
        s[i] = (struct storm){.c = h_client(&fx.node[0]), .i = i, .sent_at = &sent_at};
        cr_assert_eq(pthread_create(&t[i], NULL, storm_main, &s[i]), 0);
    }
    h_sleep_ms(700); /* every thread has requests going */
    int64_t t0 = h_now_ms();
    __atomic_store_n(&sent_at, t0, __ATOMIC_RELEASE);
    kill(fx.node[0].pid, SIGTERM);
    int status;
    cr_assert_eq(waitpid(fx.node[0].pid, &status, 0), fx.node[0].pid);
    int64_t took = h_now_ms() - t0;
    int answered = 0, closed = 0, straddled = 0;
    for (int i = 0; i < STORM_THREADS; i++) {
        pthread_join(t[i], NULL);
        nc_close(s[i].c);
        cr_assert_eq(s[i].bad_rv, 0, "a call ended with %s: %s; log:\n%s", nc_strerror(s[i].bad_rv),
                     s[i].bad_msg, h_read_file(fx.node[0].log, NULL));
        cr_assert_leq(s[i].slowest_ms, STORM_TIMEOUT_MS + 500, "a call took %lld ms",
                      (long long)s[i].slowest_ms);
        answered += s[i].answered;
        closed += s[i].closed;
        straddled += s[i].straddled;
    }
    if (freeze)
        kill(fx.redis.pid, SIGCONT);
    cr_log_info("redis %s: stopped %lld ms after SIGTERM; %d answers, %d in flight at SIGTERM",
                freeze ? "frozen" : "killed", (long long)took, answered, straddled);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the daemon's status: %d", status);
    fx.node[0].pid = 0;
    cr_assert_lt(took, 2000 + 1500, "the daemon took %lld ms to stop", (long long)took);
    cr_assert_eq(closed, STORM_THREADS, "%d of %d threads saw the daemon go", closed,
                 STORM_THREADS);
    cr_assert_gt(answered, STORM_THREADS, "only %d answers before the stop", answered);
    /* With Redis frozen each call waits redis_timeout, so some are in
     * flight at SIGTERM; with Redis killed they are answered at once, and
     * the test can only show that none sent around it is left hanging. */
    if (freeze)
        cr_assert_gt(straddled, 0, "no call was in flight at SIGTERM");
    char *log = h_read_file(fx.node[0].log, NULL);
    cr_assert_not_null(strstr(log, "stopped"), "log:\n%s", log);
    /* Requests that arrive after SIGTERM are refused at once, so those in
     * flight (each within redis_timeout) end the drain, not its timeout. */
    cr_assert_null(strstr(log, "still in flight"), "the drain ran out: log:\n%s", log);
    free(log);
    char *rm[] = {"rm", "-rf", fx.node[0].dir, NULL}; /* as h_daemon_stop() does on exit 0 */
    h_run(rm, NULL, 0, NULL, NULL, NULL);
}

Test(faults_flags, sigterm_with_requests_in_flight_while_redis_is_killed, .timeout = 30)
{
    sigterm_under_load(0);
}

Test(faults_flags, sigterm_with_requests_in_flight_while_redis_is_frozen, .timeout = 30)
{
    sigterm_under_load(1);
}

/* Whether (ns, key)'s value is in Redis now. */
static int in_redis(const char *ns, const char *key)
{
    char k[256];
    char *out = h_redis_cmd(&fx.redis, "EXISTS", h_data_key(&fx.redis, k, sizeof k, ns, key), NULL);
    int yes = strcmp(out, "1") == 0;
    free(out);
    return yes;
}

struct slow_del {
    nc_client *c;
    int rv;
    char msg[256];
};

static void *slow_del_main(void *arg)
{
    struct slow_del *del = arg;
    del->rv = nc_del(del->c, NC_STR("ns"), NC_STR("gone"), NULL, 4000);
    snprintf(del->msg, sizeof del->msg, "%s", nc_errmsg());
    return NULL;
}

/* SIGTERM: a request that arrives during the drain is neither run nor
 * answered; its client sees the connection closed when the daemon exits, so
 * a Delete is kept (rule R2) and the next daemon on the socket gets it.
 * Before, it was answered UNAVAILABLE "shutting down", and lost. A Get that
 * waits on a frozen Redis holds the drain open meanwhile. */
Test(faults_flags, a_delete_sent_during_the_drain_reaches_the_next_daemon, .timeout = 60)
{
    h_fleet_start(&fx, 1, "--redis-timeout", "1s", NULL);
    h_daemon *d = &fx.node[0];
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("gone"), NC_STR("v"), 600000, 0), NC_OK);
    nc_client *w = h_client(d); /* connected before SIGTERM */
    int up;
    cr_assert_eq(nc_ping(w, &up, 2000), NC_OK);
    struct slow_get g = {.c = h_client(d), .rv = -1};
    kill(fx.redis.pid, SIGSTOP);
    pthread_t t;
    pthread_create(&t, NULL, slow_get_main, &g);
    int64_t give_up = h_now_ms() + 2000; /* until the Get waits on Redis */
    while (h_stat(fx.cl[0], "l1_misses") < 1)
        cr_assert_lt(h_now_ms(), give_up, "the Get never reached the daemon");
    kill(d->pid, SIGTERM);
    give_up = h_now_ms() + 2000; /* the drain removes the socket file first */
    while (access(d->url + 6, F_OK) == 0)
        cr_assert_lt(h_now_ms(), give_up, "the socket file is still there");
    cr_assert(h_daemon_alive(d), "the daemon did not wait for the Get in flight");
    struct slow_del del = {.c = w, .rv = -1};
    pthread_t td;
    pthread_create(&td, NULL, slow_del_main, &del);
    h_sleep_ms(300); /* the Delete is in the daemon's hands */
    kill(fx.redis.pid, SIGCONT); /* the Get ends, and with it the drain */
    pthread_join(td, NULL);
    cr_assert_eq(del.rv, NC_EQUEUED, "the Delete sent during the drain: %s (%s); log:\n%s",
                 nc_strerror(del.rv), del.msg, h_read_file(d->log, NULL));
    pthread_join(t, NULL);
    nc_close(g.c);
    int status;
    cr_assert_eq(waitpid(d->pid, &status, 0), d->pid);
    d->pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the daemon's status: %d", status);
    cr_assert(in_redis("ns", "gone"), "the draining daemon ran the Delete");
    h_daemon_restart(d, &fx.redis, "--redis-timeout", "1s", NULL);
    cr_assert_eq(nc_ping(w, &up, 5000), NC_OK); /* sends what w kept first */
    give_up = h_now_ms() + 5000;
    while (in_redis("ns", "gone"))
        cr_assert_lt(h_now_ms(), give_up, "the kept Delete never reached the next daemon");
    nc_close(w);
}
