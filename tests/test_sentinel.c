/* Integration: Redis behind Sentinel. One master, one replica and three
 * Sentinels on loopback; two daemons find the master through them
 * (sentinel://). The master is killed (SIGKILL) under load: clients see
 * errors only while the Sentinels fail over, writes then succeed on the new
 * master, and no read returns a value that an acknowledged write replaced
 * more than coherence_window before it began. Node A writes with
 * redis_wait_replicas = 1, so "acknowledged" means a replica has it. Also:
 * a failover to a replica that missed a bump (nothing from before it is
 * served), and the two ways resolution fails, distinct in the log and in
 * `ping`. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define SENTINELS 3
#define WINDOW_MS 1000 /* coherence_window (the default) */
#define MAX_OPS   200000

static h_redis master, replica;
static h_redis sentinel[SENTINELS]; /* pid, port and dir of each Sentinel */
static char sentinel_url[120]; /* fits h_redis.url */

/* Starts a Sentinel watching `master` as "mymaster" (quorum 2, down after
 * 1 s). Its config file is its own to rewrite, in its directory. */
static void sentinel_start(h_redis *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/nc-test-sentinel-XXXXXX");
    cr_assert_not_null(mkdtemp(s->dir));
    s->port = h_free_port();
    char conf[300], log[300];
    snprintf(conf, sizeof conf, "%s/sentinel.conf", s->dir);
    snprintf(log, sizeof log, "%s/sentinel.log", s->dir);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndir %s\n"
            "sentinel monitor mymaster 127.0.0.1 %d 2\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            "sentinel failover-timeout mymaster 4000\n",
            s->port, s->dir, master.port);
    fclose(f);
    s->pid = fork();
    cr_assert_geq(s->pid, 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("redis-server", "redis-server", conf, "--sentinel", (char *)NULL);
        _exit(127);
    }
}

static void sentinel_stop(h_redis *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (s->dir[0] != '\0' && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->dir);
}

/* One field of `SENTINEL master mymaster` on Sentinel s ("" if none; caller
 * frees). */
static char *master_field(const h_redis *s, const char *field)
{
    char *out = h_redis_cmd(s, "SENTINEL", "master", "mymaster", NULL);
    char *line = out != NULL ? strstr(out, field) : NULL;
    char *value = strdup("");
    if (line != NULL && (line = strchr(line, '\n')) != NULL) {
        free(value);
        value = strndup(line + 1, strcspn(line + 1, "\n"));
    }
    free(out);
    return value;
}

/* The master's port as Sentinel s names it (0: it names none). */
static int named_port(const h_redis *s)
{
    char *out = h_redis_cmd(s, "SENTINEL", "get-master-addr-by-name", "mymaster", NULL);
    char *nl = out != NULL ? strchr(out, '\n') : NULL;
    int port = nl != NULL ? atoi(nl + 1) : 0;
    free(out);
    return port;
}

/* When (ms) the Sentinels named the replica as the master, polled for up
 * to 20 s after `since`; fails the test if they did not. */
static int64_t until_switched(int64_t since)
{
    while (h_now_ms() - since < 20000) {
        if (named_port(&sentinel[0]) == replica.port)
            return h_now_ms();
        h_sleep_ms(20);
    }
    cr_assert_fail("the Sentinels did not fail over");
    return 0;
}

static int replica_linked(const h_redis *r)
{
    char *out = h_redis_cmd(r, "INFO", "replication", NULL);
    int up = out != NULL && strstr(out, "master_link_status:up") != NULL;
    free(out);
    return up;
}

static void up(void)
{
    h_redis_start(&master);
    h_redis_start(&replica);
    char port[16];
    snprintf(port, sizeof port, "%d", master.port);
    free(h_redis_cmd(&replica, "REPLICAOF", "127.0.0.1", port, NULL));
    for (int i = 0; i < 2; i++) /* a full sync at once, not after 5 s */
        free(h_redis_cmd(i ? &replica : &master, "CONFIG", "SET", "repl-diskless-sync-delay", "0",
                         NULL));
    for (int i = 0; i < 300 && !replica_linked(&replica); i++)
        h_sleep_ms(20);
    cr_assert(replica_linked(&replica), "the replica did not sync");
    int n = snprintf(sentinel_url, sizeof sentinel_url, "sentinel://");
    for (int i = 0; i < SENTINELS; i++) {
        sentinel_start(&sentinel[i]);
        n += snprintf(sentinel_url + n, sizeof sentinel_url - (size_t)n, "%s127.0.0.1:%d",
                      i > 0 ? "," : "", sentinel[i].port);
    }
    snprintf(sentinel_url + n, sizeof sentinel_url - (size_t)n, "/mymaster");
    /* Each Sentinel answers and names the master (from its config). */
    for (int i = 0; i < SENTINELS; i++) {
        int ready = 0;
        for (int t = 0; t < 200 && !ready; t++) {
            ready = named_port(&sentinel[i]) == master.port;
            if (!ready)
                h_sleep_ms(20);
        }
        cr_assert(ready, "sentinel %d does not name the master", i);
    }
}

/* Ready for a failover: each Sentinel knows the replica and the others
 * (their hello messages come every 2 s), which only the tests that fail
 * over wait for. */
static void failover_ready(void)
{
    for (int i = 0; i < SENTINELS; i++) {
        int ready = 0;
        for (int t = 0; t < 200 && !ready; t++) {
            char *others = master_field(&sentinel[i], "num-other-sentinels");
            char *slaves = master_field(&sentinel[i], "num-slaves");
            ready = atoi(others) == SENTINELS - 1 && atoi(slaves) == 1;
            free(others);
            free(slaves);
            if (!ready)
                h_sleep_ms(50);
        }
        cr_assert(ready, "sentinel %d did not find the others and the replica", i);
    }
}

static void down(void)
{
    for (int i = 0; i < SENTINELS; i++)
        sentinel_stop(&sentinel[i]);
    h_redis_cleanup(&replica);
    h_redis_cleanup(&master);
}

TestSuite(sentinel, .init = up, .fini = down, .timeout = 90);

/* Starts a daemon on the Sentinels, ready when it serves from L1. */
static void daemon_on_sentinels(h_daemon *d, const char *wait_replicas)
{
    h_redis via = master; /* a running Redis: wait until L1 serves */
    snprintf(via.url, sizeof via.url, "%s", sentinel_url);
    h_daemon_start(d, &via, "--redis-wait-replicas", wait_replicas, "--redis-wait-timeout",
                   "500ms", "--request-timeout", "1s", NULL);
}

/* ---- the failover under load ------------------------------------------- */

struct op {
    int64_t start, end; /* ms */
    long value;         /* read: what it saw (0: absent); write: what it wrote */
    int ok;
};

struct worker {
    const h_daemon *d;
    int write, near;
    struct op *ops;
    int n;
    char last_err[256]; /* the latest failure's message */
};

static volatile int stopping;

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    nc_client *c = NULL;
    nc_open_opts o = {.near_bytes = w->near ? 1 << 20 : 0};
    cr_assert_eq(nc_open_ex(&c, w->d->url, &o), NC_OK);
    char buf[32];
    for (long i = 1; !stopping && w->n < MAX_OPS; i++) {
        struct op *op = &w->ops[w->n++];
        op->start = h_now_ms();
        if (w->write) {
            snprintf(buf, sizeof buf, "%ld", i);
            op->value = i;
            op->ok = nc_set(c, NC_STR("h"), NC_STR("k"), NC_STR(buf), 60000, 1000) == NC_OK;
            h_sleep_ms(2);
        } else {
            void *v = NULL;
            size_t len = 0;
            int rv = nc_get(c, NC_STR("h"), NC_STR("k"), &v, &len, 1000);
            op->ok = rv == NC_OK || rv == NC_ENOTFOUND;
            op->value = rv == NC_OK ? strtol(v, NULL, 10) : 0;
            nc_free(v);
        }
        op->end = h_now_ms();
        if (!op->ok)
            snprintf(w->last_err, sizeof w->last_err, "%s", nc_errmsg());
    }
    nc_close(c);
    return NULL;
}

/* The value of the last write acknowledged before `before` (0: none). One
 * writer writes 1, 2, 3... in turn, so acknowledgements are in value order:
 * a binary search on their end times. */
static long newest_acked(const struct worker *wr, int64_t before)
{
    int lo = 0, hi = wr->n; /* the first write that ended at or after `before` */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (wr->ops[mid].end < before)
            lo = mid + 1;
        else
            hi = mid;
    }
    while (lo > 0 && !wr->ops[lo - 1].ok)
        lo--;
    return lo > 0 ? wr->ops[lo - 1].value : 0;
}

Test(sentinel, a_killed_master_costs_errors_only_during_the_failover_and_no_stale_read)
{
    failover_ready();
    h_daemon a, b;
    daemon_on_sentinels(&a, "1");
    daemon_on_sentinels(&b, "0");
    nc_client *ca = h_client(&a), *cb = h_client(&b);
    uint64_t version = 0;
    cr_assert_eq(nc_bump(ca, NC_STR("h"), &version, 1000), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(h_nsver(&replica, "h"), version, "the bump waited for the replica");
    int64_t losses_a = h_stat(ca, "subscription_losses");
    int64_t losses_b = h_stat(cb, "subscription_losses");

    /* a writer on A (acknowledged = on the replica); readers on A and B,
     * one of B's with a near tier */
    struct worker w[4] = {{.d = &a, .write = 1}, {.d = &a}, {.d = &b}, {.d = &b, .near = 1}};
    pthread_t t[4];
    stopping = 0;
    for (int i = 0; i < 4; i++) {
        w[i].ops = calloc(MAX_OPS, sizeof *w[i].ops);
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    h_sleep_ms(1000);
    int old_port = master.port;
    char port[16];
    int64_t killed = h_now_ms();
    h_redis_stop(&master, 1);
    int64_t switched = until_switched(killed);
    /* B writes at once on the new master (it waits for no replica) */
    int64_t b_wrote = 0;
    while (b_wrote == 0 && h_now_ms() - switched < 5000) {
        if (nc_set(cb, NC_STR("other"), NC_STR("k"), NC_STR("v"), 60000, 500) == NC_OK)
            b_wrote = h_now_ms();
        else
            h_sleep_ms(20);
    }
    cr_assert_gt(b_wrote, 0, "no write succeeded on the new master: %s", nc_errmsg());
    /* the old master comes back and the Sentinels make it a replica: A's
     * writes (WAIT 1) succeed again */
    free(h_redis_cmd(&replica, "CONFIG", "SET", "repl-diskless-sync-delay", "0", NULL));
    h_redis_restart(&master);
    int64_t restarted = h_now_ms();
    snprintf(port, sizeof port, "%d", replica.port);
    free(h_redis_cmd(&master, "REPLICAOF", "127.0.0.1", port, NULL)); /* as its config would */
    int64_t rejoined = 0;
    while (rejoined == 0 && h_now_ms() - restarted < 20000) {
        if (replica_linked(&master))
            rejoined = h_now_ms();
        h_sleep_ms(20);
    }
    cr_assert_gt(rejoined, 0, "the old master did not rejoin as a replica");
    h_sleep_ms(1500);
    stopping = 1;
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "sentinel: killed at 0, switched at %lld ms, B wrote at %lld ms, "
                    "rejoined at %lld ms\n",
            (long long)(switched - killed), (long long)(b_wrote - killed),
            (long long)(rejoined - killed));

    /* writes: errors only between the kill and the old master's return;
     * some succeed after it */
    struct worker *wr = &w[0];
    int late_ok = 0, errors = 0;
    for (int i = 0; i < wr->n; i++) {
        struct op *op = &wr->ops[i];
        if (!op->ok) {
            errors++;
            cr_assert(op->end >= killed && op->start <= rejoined + 1000,
                      "a write failed at %lld ms, outside the failover (last error: %s)",
                      (long long)(op->start - killed), wr->last_err);
        }
        late_ok += op->ok && op->start > rejoined;
    }
    cr_assert_gt(late_ok, 0, "no write succeeded after the failover");
    /* reads: errors only while the Sentinels fail over; none staler than the
     * window (a write's successor acknowledged WINDOW_MS before the read) */
    for (int r = 1; r < 4; r++) {
        for (int i = 0; i < w[r].n; i++) {
            struct op *op = &w[r].ops[i];
            if (!op->ok) {
                errors++;
                cr_assert(op->end >= killed && op->start <= switched + 3000,
                          "reader %d failed at %lld ms, outside the failover (last error: %s)",
                          r, (long long)(op->start - killed), w[r].last_err);
                continue;
            }
            long newest = newest_acked(wr, op->start - WINDOW_MS);
            cr_assert_geq(op->value, newest,
                          "reader %d read %ld at %lld ms, but %ld was acknowledged more than "
                          "%d ms before",
                          r, op->value, (long long)(op->start - killed), newest, WINDOW_MS);
        }
    }
    fprintf(stderr, "sentinel: %d writes, %d + %d + %d reads, %d errors\n", wr->n, w[1].n, w[2].n,
            w[3].n, errors);
    /* L1 was emptied through the rules (the subscriptions were lost), and
     * the version did not go back */
    cr_assert_gt(h_stat(ca, "subscription_losses"), losses_a);
    cr_assert_gt(h_stat(cb, "subscription_losses"), losses_b);
    cr_assert_geq(h_nsver(&replica, "h"), version);
    uint64_t after = 0;
    cr_assert_eq(nc_bump(cb, NC_STR("h"), &after, 1000), NC_OK, "%s", nc_errmsg());
    cr_assert_gt(after, version);
    cr_assert_neq(old_port, replica.port);
    for (int i = 0; i < 4; i++)
        free(w[i].ops);
    nc_close(ca);
    nc_close(cb);
    h_daemon_stop(&a);
    h_daemon_stop(&b);
}

/* ---- a failover to a replica that missed writes and a bump -------------- */

/* Gets p/KEY through c, up to 3 s while it fails (the daemons find the new
 * master); fails the test if it returns OLD, the value from before the
 * bump. Returns the value (caller frees) or NULL when absent. */
static char *get_never_old(nc_client *c, const char *key, const char *who)
{
    int64_t give_up = h_now_ms() + 3000;
    for (;;) {
        void *v = NULL;
        size_t len = 0;
        int rv = nc_get(c, NC_STR("p"), (nc_bytes){key, strlen(key)}, &v, &len, 1000);
        if (rv == NC_OK) {
            char *s = strndup(v, len);
            nc_free(v);
            cr_assert_str_neq(s, "OLD", "%s: p/%s returned the value from before the bump", who,
                              key);
            return s;
        }
        cr_assert(rv == NC_ENOTFOUND || h_now_ms() < give_up, "%s: get p/%s: %s (%s)", who, key,
                  nc_strerror(rv), nc_errmsg());
        if (rv == NC_ENOTFOUND)
            return NULL;
        h_sleep_ms(50);
    }
}

static nc_client *near_client(const h_daemon *d)
{
    nc_client *c = NULL;
    nc_open_opts o = {.near_bytes = 1 << 20};
    cr_assert_eq(nc_open_ex(&c, d->url, &o), NC_OK, "%s", nc_errmsg());
    return c;
}

/* The replica is frozen (SIGSTOP) and cut from the master (CLIENT KILL),
 * so it misses a bump and two Sets; the master is killed and the Sentinels
 * promote the replica, which holds the values from before the bump under
 * the version before it. Daemons and near tiers that saw the bump serve
 * none of them, and a write after the failover reaches every reader. */
Test(sentinel, a_failover_to_a_replica_that_missed_a_bump_serves_nothing_from_before_it)
{
    failover_ready();
    h_daemon a, b;
    daemon_on_sentinels(&a, "0");
    daemon_on_sentinels(&b, "0");
    nc_client *cl[4] = {h_client(&a), h_client(&b), near_client(&a), near_client(&b)};
    const char *who[4] = {"A", "B", "A's near tier", "B's near tier"};
    const char *keys[3] = {"1", "2", "3"};
    for (int k = 0; k < 3; k++)
        cr_assert_eq(nc_set(cl[0], NC_STR("p"), NC_STR(keys[k]), NC_STR("OLD"), 600000, 1000),
                     NC_OK, "%s", nc_errmsg());
    uint64_t before = h_nsver(&master, "p");
    char *got = NULL;
    for (int i = 0; i < 300; i++) { /* the replica has the values from before */
        free(got);
        got = h_redis_cmd(&replica, "GET", H_DATA_KEY(&master, "p", "3"), NULL);
        if (h_nsver(&replica, "p") == before && strcmp(got, "OLD") == 0)
            break;
        h_sleep_ms(10);
    }
    cr_assert_str_eq(got, "OLD", "the replica never got the values from before the bump");
    free(got);
    for (int c = 0; c < 4; c++) /* into L1 and the near tiers */
        for (int k = 0; k < 3; k++) {
            void *v = NULL;
            size_t len;
            cr_assert_eq(nc_get(cl[c], NC_STR("p"), NC_STR(keys[k]), &v, &len, 1000), NC_OK);
            nc_free(v);
        }

    kill(replica.pid, SIGSTOP);
    free(h_redis_cmd(&master, "CLIENT", "KILL", "TYPE", "replica", NULL));
    uint64_t bumped = 0;
    cr_assert_eq(nc_bump(cl[0], NC_STR("p"), &bumped, 1000), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(nc_set(cl[0], NC_STR("p"), NC_STR("1"), NC_STR("NEW"), 600000, 1000), NC_OK);
    cr_assert_eq(nc_set(cl[1], NC_STR("p"), NC_STR("2"), NC_STR("NEW"), 600000, 1000), NC_OK);
    for (int c = 0; c < 4; c++)
        free(get_never_old(cl[c], "1", who[c]));
    int64_t killed = h_now_ms();
    h_redis_stop(&master, 1);
    kill(replica.pid, SIGCONT);
    int64_t switched = until_switched(killed);
    cr_assert_eq(h_nsver(&replica, "p"), before, "the new master missed the bump");

    /* every reader, over and over, from the failover on */
    int found = 0;
    for (int round = 0; round < 10; round++)
        for (int c = 0; c < 4; c++)
            for (int k = 0; k < 3; k++) {
                char *v = get_never_old(cl[c], keys[k], who[c]);
                found += v != NULL;
                free(v);
            }
    /* a write after the failover: every reader sees it within the window */
    int64_t give_up = h_now_ms() + 5000;
    int rv;
    while ((rv = nc_set(cl[1], NC_STR("p"), NC_STR("3"), NC_STR("AFTER"), 600000, 1000)) !=
               NC_OK &&
           h_now_ms() < give_up)
        h_sleep_ms(50);
    cr_assert_eq(rv, NC_OK, "no write on the new master: %s", nc_errmsg());
    h_sleep_ms(WINDOW_MS);
    for (int c = 0; c < 4; c++) {
        char *v = get_never_old(cl[c], "3", who[c]);
        cr_assert(v != NULL && strcmp(v, "AFTER") == 0, "%s: p/3 is %s, not AFTER", who[c],
                  v != NULL ? v : "absent");
        free(v);
    }
    cr_assert_gt(h_nsver(&replica, "p"), bumped, "the version came back above the bump");
    fprintf(stderr, "sentinel lagging replica: switched %lld ms after the kill; %d of 120 reads "
                    "found a value, none from before the bump\n",
            (long long)(switched - killed), found);
    for (int c = 0; c < 4; c++)
        nc_close(cl[c]);
    h_daemon_stop(&a);
    h_daemon_stop(&b);
}

/* ---- resolution failures ------------------------------------------------ */

static void expect_ping_and_log(const char *url, const char *want)
{
    h_daemon d;
    h_daemon_start(&d, NULL, "--redis", url, NULL);
    char *out = NULL;
    int found = 0;
    for (int i = 0; i < 100 && !found; i++) {
        free(out);
        out = NULL;
        size_t len;
        cr_assert_eq(h_cli(&d, NULL, 0, &out, &len, NULL, "ping", NULL), 0);
        found = strstr(out, want) != NULL;
        if (!found)
            h_sleep_ms(50);
    }
    cr_assert(found, "ping says: %s (wanted \"%s\")", out, want);
    cr_assert_not_null(strstr(out, "PONG (redis down: "), "%s", out);
    free(out);
    char *log = h_read_file(d.log, NULL);
    cr_assert_not_null(strstr(log, want), "the log does not say \"%s\":\n%s", want, log);
    free(log);
    h_daemon_stop(&d);
}

Test(sentinel, no_sentinel_answering_and_an_unknown_master_are_told_apart)
{
    char url[300];
    snprintf(url, sizeof url, "sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster", h_free_port(),
             h_free_port());
    expect_ping_and_log(url, "no Sentinel answers");
    snprintf(url, sizeof url, "sentinel://127.0.0.1:%d,127.0.0.1:%d/nosuch", h_free_port(),
             sentinel[1].port);
    expect_ping_and_log(url, "no Sentinel knows a master named \"nosuch\"");
}

/* ---- redis_wait_replicas ------------------------------------------------ */

Test(sentinel, a_write_fewer_replicas_confirm_is_unavailable_and_says_it_is_done_on_the_master)
{
    h_daemon a, b;
    daemon_on_sentinels(&a, "2"); /* there is one replica */
    daemon_on_sentinels(&b, "1");
    nc_client *ca = h_client(&a), *cb = h_client(&b);
    int64_t t0 = h_now_ms();
    cr_assert_eq(nc_set(ca, NC_STR("w"), NC_STR("k"), NC_STR("v1"), 60000, 2000), NC_EUNAVAILABLE);
    cr_assert_geq(h_now_ms() - t0, 450, "it did not wait redis_wait_timeout");
    cr_assert_not_null(strstr(nc_errmsg(), "the write is done on the redis master and announced, "
                                           "but 1 of the 2 replicas"),
                       "%s", nc_errmsg());
    void *v = NULL;
    size_t len;
    cr_assert_eq(nc_get(ca, NC_STR("w"), NC_STR("k"), &v, &len, 1000), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(len, 2);
    cr_assert_eq(memcmp(v, "v1", 2), 0, "the write is on the master");
    nc_free(v);
    cr_assert_eq(h_stat(ca, "l1_hits"), 0, "A kept the unconfirmed write in L1");
    cr_assert_eq(nc_set(cb, NC_STR("w"), NC_STR("k"), NC_STR("v2"), 60000, 2000), NC_OK,
                 "one replica is enough for B: %s", nc_errmsg());
    cr_assert_eq(nc_del(ca, NC_STR("w"), NC_STR("k"), NULL, 2000), NC_EUNAVAILABLE);
    cr_assert_not_null(strstr(nc_errmsg(), "the delete is done"), "%s", nc_errmsg());
    nc_close(ca);
    nc_close(cb);
    h_daemon_stop(&a);
    h_daemon_stop(&b);
}

/* A Sentinel that does not answer is skipped (and moved behind the one
 * that did, so the next connect does not wait for it again). */
Test(sentinel, a_dead_sentinel_is_skipped)
{
    h_redis via = master;
    snprintf(via.url, sizeof via.url, "sentinel://127.0.0.1:%d,%.*s", h_free_port(), 100,
             sentinel_url + strlen("sentinel://"));
    h_daemon d;
    h_daemon_start(&d, &via, NULL); /* ready: it serves from L1 */
    nc_client *c = h_client(&d);
    cr_assert_eq(nc_set(c, NC_STR("s"), NC_STR("k"), NC_STR("v"), 60000, 1000), NC_OK, "%s",
                 nc_errmsg());
    char *held = h_redis_cmd(&master, "GET", H_DATA_KEY(&master, "s", "k"), NULL);
    cr_assert_str_eq(held, "v", "the write is on the master");
    free(held);
    nc_close(c);
    h_daemon_stop(&d);
}
