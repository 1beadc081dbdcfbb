/* Integration: the near tier of libnearcache fed by a real daemon's ring,
 * with real Redis and a second daemon as another host: hot reads (of values
 * and of negative entries) answered in-process, and every way the ring must
 * stop them: a write or a bump on the other host, a lost subscription, a
 * daemon killed, frozen or restarted, a ring file that is not one, and one
 * deleted or replaced while clients read it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define WINDOW_MS 1000 /* coherence_window's default */

static h_fleet fx;         /* two hosts: A (node 0) and B (node 1) */
static nc_client *na, *cb; /* on A with a near tier; on B (fx.cl[1]) */

static nc_client *near_client(const h_daemon *d)
{
    nc_client *c;
    nc_open_opts o = {.near_bytes = 1 << 20};
    cr_assert_eq(nc_open_ex(&c, d->url, &o), NC_OK, "%s", nc_errmsg());
    nc_set_timeout(c, 5000);
    return c;
}

static void up(void)
{
    h_fleet_start(&fx, 2, NULL);
    na = near_client(&fx.node[0]);
    cb = fx.cl[1];
}

static void down(void)
{
    nc_close(na);
    h_fleet_stop(&fx);
}

TestSuite(neartier, .init = up, .fini = down, .timeout = 60);

/* Gets ns/key through c: its value (caller frees it; NULL when absent or
 * on error) and where it came from. */
static char *get(nc_client *c, const char *key, nc_source *from, int timeout_ms)
{
    void *v = NULL;
    size_t len;
    nc_get_info info = {0};
    int rv = nc_get_ex(c, NC_STR("ns"), NC_STR(key), &v, &len, &info, timeout_ms);
    *from = rv == NC_OK ? info.source : NC_SOURCE_UNKNOWN;
    return rv == NC_OK ? v : NULL;
}

/* Reads key through the near client until it comes from the near tier
 * with `want`. */
static void near_holds(const char *key, const char *want)
{
    nc_source from = NC_SOURCE_UNKNOWN;
    for (int i = 0; i < 200; i++) {
        char *v = get(na, key, &from, 1000);
        int ok = v != NULL && strcmp(v, want) == 0 && from == NC_SOURCE_NEAR;
        nc_free(v);
        if (ok)
            return;
        h_sleep_ms(10);
    }
    nc_near_stats s;
    nc_stats_near(na, &s);
    cr_assert_fail("%s never came from the near tier as %s (last from %d; serving %d, %llu hits, "
                   "%llu fills refused, %llu flushes: %s)",
                   key, want, (int)from, s.serving, (unsigned long long)s.hits,
                   (unsigned long long)s.fills_refused, (unsigned long long)s.flushes, s.problem);
}

static void set_on(nc_client *c, const char *key, const char *value)
{
    cr_assert_eq(nc_set(c, NC_STR("ns"), NC_STR(key), NC_STR(value), 60000, 0), NC_OK, "%s",
                 nc_errmsg());
}

Test(neartier, a_hot_key_is_read_from_the_near_tier_until_another_host_writes_it)
{
    set_on(cb, "k", "v1");
    near_holds("k", "v1");
    nc_near_stats s;
    cr_assert_eq(nc_stats_near(na, &s), NC_OK);
    cr_assert_gt(s.hits, 0);
    cr_assert(s.serving, "%s", s.problem);
    set_on(cb, "k", "v2");
    int64_t t0 = h_now_ms();
    nc_source from;
    char *v = NULL;
    while ((v = get(na, "k", &from, 1000)) != NULL && strcmp(v, "v1") == 0 &&
           h_now_ms() - t0 < WINDOW_MS) {
        nc_free(v);
        h_sleep_ms(1);
    }
    cr_assert_str_eq(v, "v2", "the write on B never reached A's near tier");
    nc_free(v);
    near_holds("k", "v2");
    for (int i = 0; i < 100; i++) { /* and v1 never comes back */
        v = get(na, "k", &from, 1000);
        cr_assert_str_eq(v, "v2");
        nc_free(v);
    }
}

Test(neartier, an_own_write_is_read_back_at_once)
{
    set_on(na, "k", "v1");
    near_holds("k", "v1");
    set_on(na, "k", "v2");
    nc_source from;
    char *v = get(na, "k", &from, 1000);
    cr_assert_str_eq(v, "v2", "the near tier answered its own process's old value");
    nc_free(v);
    int existed = 0;
    cr_assert_eq(nc_del(na, NC_STR("ns"), NC_STR("k"), &existed, 0), NC_OK);
    cr_assert_null(get(na, "k", &from, 1000));
}

Test(neartier, a_bump_on_another_host_empties_the_namespace_from_the_near_tier)
{
    set_on(cb, "a", "1");
    set_on(cb, "b", "2");
    near_holds("a", "1");
    near_holds("b", "2");
    cr_assert_eq(nc_bump(cb, NC_STR("ns"), NULL, 0), NC_OK);
    int64_t t0 = h_now_ms();
    nc_source from;
    for (const char *const *k = (const char *const[]){"a", "b", NULL}; *k != NULL; k++) {
        char *v;
        while ((v = get(na, *k, &from, 1000)) != NULL && h_now_ms() - t0 < WINDOW_MS) {
            nc_free(v);
            h_sleep_ms(1);
        }
        cr_assert_null(v, "%s outlived the bump in the near tier", *k);
    }
}

Test(neartier, a_lost_subscription_empties_the_near_tier)
{
    set_on(cb, "k", "v");
    near_holds("k", "v");
    nc_near_stats s;
    cr_assert_eq(nc_stats_near(na, &s), NC_OK);
    uint64_t flushes = s.flushes;
    free(h_redis_cmd(&fx.redis, "CLIENT", "KILL", "TYPE", "pubsub", NULL));
    for (int i = 0; i < 300 && s.flushes == flushes; i++) {
        h_sleep_ms(10);
        nc_source from;
        nc_free(get(na, "k", &from, 1000)); /* the tier catches up on its lookups */
        cr_assert_eq(nc_stats_near(na, &s), NC_OK);
    }
    cr_assert_gt(s.flushes, flushes, "the daemon emptied its L1, the near tier did not follow");
    near_holds("k", "v"); /* and it fills again */
}

/* Reads k through the near client for `ms`; returns how long after `t0` the
 * near tier last answered (-1: never). */
static int64_t last_near_answer(int64_t t0, int ms)
{
    int64_t last = -1;
    while (h_now_ms() - t0 < ms) {
        nc_source from;
        nc_free(get(na, "k", &from, 50));
        if (from == NC_SOURCE_NEAR)
            last = h_now_ms() - t0;
        h_sleep_ms(5);
    }
    return last;
}

Test(neartier, a_killed_daemon_stops_near_reads_within_the_window_and_a_new_one_has_a_new_epoch)
{
    set_on(cb, "k", "v1");
    near_holds("k", "v1");
    kill(fx.node[0].pid, SIGKILL);
    waitpid(fx.node[0].pid, NULL, 0);
    int64_t t0 = h_now_ms();
    int64_t last = last_near_answer(t0, WINDOW_MS + 500);
    cr_assert_lt(last, WINDOW_MS + 100, "near reads went on %lld ms after the kill",
                 (long long)last);
    set_on(cb, "k", "v2"); /* while A is dead: its ring hears nothing */
    h_daemon_restart(&fx.node[0], &fx.redis, NULL);
    near_holds("k", "v2");
}

Test(neartier, a_frozen_daemon_stops_near_reads_within_the_window)
{
    set_on(cb, "k", "v1");
    near_holds("k", "v1");
    kill(fx.node[0].pid, SIGSTOP);
    int64_t t0 = h_now_ms();
    int64_t last = last_near_answer(t0, WINDOW_MS + 500);
    kill(fx.node[0].pid, SIGCONT);
    cr_assert_lt(last, WINDOW_MS + 100, "near reads went on %lld ms after the freeze",
                 (long long)last);
    near_holds("k", "v1");
}

Test(neartier, a_ring_file_that_is_not_a_ring_leaves_the_client_working_without_a_near_tier)
{
    char junk[300];
    snprintf(junk, sizeof junk, "%s/junk.ring", fx.node[0].dir);
    int fd = open(junk, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "definitely not a ring, but long enough to be mapped........", 60), 60);
    close(fd);
    nc_client *c;
    nc_open_opts o = {.near_bytes = 1 << 20, .near_ring = junk};
    cr_assert_eq(nc_open_ex(&c, fx.node[0].url, &o), NC_OK, "%s", nc_errmsg());
    set_on(c, "k", "v");
    for (int i = 0; i < 3; i++) {
        void *v = NULL;
        size_t len;
        nc_get_info info;
        cr_assert_eq(nc_get_ex(c, NC_STR("ns"), NC_STR("k"), &v, &len, &info, 1000), NC_OK);
        cr_assert_str_eq(v, "v");
        cr_assert_neq(info.source, NC_SOURCE_NEAR);
        nc_free(v);
    }
    nc_near_stats s;
    cr_assert_eq(nc_stats_near(c, &s), NC_OK);
    cr_assert_not(s.serving);
    cr_assert_not_null(strstr(s.problem, "junk.ring"), "%s", s.problem);
    cr_assert(strstr(s.problem, "too short") != NULL ||
                  strstr(s.problem, "not a near ring") != NULL,
              "%s", s.problem);
    nc_close(c);
}

static void set_negative_on(nc_client *c, const char *key)
{
    nc_set_opts neg = {.negative = 1};
    cr_assert_eq(nc_set_opt(c, NC_STR("ns"), NC_STR(key), NC_STR(""), 60000, &neg, 0), NC_OK, "%s",
                 nc_errmsg());
}

/* Gets ns/key through c into *info; returns the call's result, with *value
 * (caller frees it; NULL unless NC_OK, as the call must leave it). */
static int get_info(nc_client *c, const char *key, char **value, nc_get_info *info)
{
    static char junk;
    void *v = &junk;
    size_t len = 99;
    memset(info, 0, sizeof *info);
    int rv = nc_get_ex(c, NC_STR("ns"), NC_STR(key), &v, &len, info, 1000);
    if (rv != NC_OK)
        cr_assert(v == NULL && len == 0, "%s: a failed Get left a value behind", key);
    *value = v;
    return rv;
}

/* Reads key through the near client until the near tier answers it known
 * absent; checks that answer is the daemon's: NC_ENOTFOUND, "known absent",
 * no value. */
static void near_holds_negative(const char *key)
{
    nc_get_info info;
    for (int i = 0; i < 200; i++) {
        char *v;
        int rv = get_info(na, key, &v, &info);
        cr_assert_eq(rv, NC_ENOTFOUND, "%s: %s", key, nc_strerror(rv));
        cr_assert(info.negative, "%s read as a plain miss", key);
        cr_assert_null(v);
        if (info.source == NC_SOURCE_NEAR) {
            cr_assert_eq(nc_status(), CODE(NOT_FOUND));
            cr_assert_str_eq(nc_errmsg(), "known absent");
            cr_assert(info.ttl_ms > 0 && info.ttl_ms <= 60000, "ttl %llu",
                      (unsigned long long)info.ttl_ms);
            return;
        }
        cr_assert(info.ttl_ms > 0 && info.ttl_ms <= 60000,
                  "the daemon's negative reply has no ttl (%llu)", (unsigned long long)info.ttl_ms);
        h_sleep_ms(10);
    }
    cr_assert_fail("%s never came from the near tier as known absent", key);
}

Test(neartier, a_negative_entry_is_read_from_the_near_tier_until_another_host_writes_the_key)
{
    set_negative_on(cb, "gone");
    near_holds_negative("gone");
    int64_t gets = h_stat(na, "gets");
    near_holds_negative("gone"); /* at once: no Get reaches the daemon */
    near_holds_negative("gone");
    cr_assert_eq(h_stat(na, "gets"), gets, "a near-tier hit of a negative entry asked the daemon");
    set_on(cb, "gone", "back");
    int64_t t0 = h_now_ms();
    char *v = NULL;
    nc_get_info info;
    while (get_info(na, "gone", &v, &info) == NC_ENOTFOUND && h_now_ms() - t0 < 2000)
        h_sleep_ms(1);
    cr_assert_str_eq(v, "back", "the write on B never reached A's near tier (negative %d)",
                     info.negative);
    nc_free(v);
    near_holds("gone", "back");
    for (int i = 0; i < 100; i++) { /* and "known absent" never comes back */
        cr_assert_eq(get_info(na, "gone", &v, &info), NC_OK);
        nc_free(v);
    }
}

Test(neartier, an_own_write_over_a_negative_entry_is_read_back_at_once)
{
    set_negative_on(cb, "gone");
    near_holds_negative("gone");
    set_on(na, "gone", "mine");
    char *v;
    nc_get_info info;
    cr_assert_eq(get_info(na, "gone", &v, &info), NC_OK,
                 "the near tier answered its own process's old absence");
    cr_assert_str_eq(v, "mine");
    nc_free(v);
    set_negative_on(na, "gone"); /* and an own negative Set over the value */
    cr_assert_eq(get_info(na, "gone", &v, &info), NC_ENOTFOUND);
    cr_assert(info.negative);
    near_holds_negative("gone");
}

Test(neartier, a_plain_miss_is_never_kept_in_the_near_tier)
{
    int64_t gets = h_stat(na, "gets");
    for (int i = 0; i < 5; i++) {
        char *v;
        nc_get_info info;
        cr_assert_eq(get_info(na, "never", &v, &info), NC_ENOTFOUND);
        cr_assert_not(info.negative);
        cr_assert_neq(info.source, NC_SOURCE_NEAR);
    }
    cr_assert_eq(h_stat(na, "gets"), gets + 5);
    nc_near_stats s;
    cr_assert_eq(nc_stats_near(na, &s), NC_OK);
    cr_assert_eq(s.entries, 0);
}

Test(neartier, a_negative_entry_leaves_the_near_tier_when_its_ttl_runs_out)
{
    nc_set_opts neg = {.negative = 1};
    cr_assert_eq(nc_set_opt(cb, NC_STR("ns"), NC_STR("gone"), NC_STR(""), 300, &neg, 0), NC_OK);
    near_holds_negative("gone");
    h_sleep_ms(350); /* Redis forgets it, and nothing is published */
    char *v;
    nc_get_info info;
    cr_assert_eq(get_info(na, "gone", &v, &info), NC_ENOTFOUND);
    cr_assert_not(info.negative, "known absent past the negative entry's ttl");
}

static int loads;

static int loader(void *arg, nc_bytes ns, nc_bytes key, void **value, size_t *len)
{
    (void)arg, (void)ns, (void)key;
    loads++;
    *value = strdup("loaded");
    *len = 6;
    return 0;
}

Test(neartier, fetch_takes_a_negative_near_hit_as_known_absent_and_does_not_load)
{
    set_negative_on(cb, "gone");
    near_holds_negative("gone");
    int64_t gets = h_stat(na, "gets");
    void *v = NULL;
    size_t len = 0;
    loads = 0;
    cr_assert_eq(nc_fetch(na, NC_STR("ns"), NC_STR("gone"), 60000, loader, NULL, &v, &len, 1000),
                 NC_ENOTFOUND);
    cr_assert_eq(loads, 0, "the loader ran for a key known absent");
    cr_assert_null(v);
    cr_assert_eq(h_stat(na, "gets"), gets);
}

/* nc_mget of "gone" and "k" through the near client until both come from
 * the near tier; returns the items (caller frees them; 2). */
static nc_item *mget_near(void)
{
    const nc_bytes keys[] = {NC_STR("gone"), NC_STR("k")};
    for (int i = 0; i < 200; i++) {
        nc_item *items;
        cr_assert_eq(nc_mget(na, NC_STR("ns"), keys, 2, &items, 1000), NC_OK, "%s", nc_errmsg());
        cr_assert(!items[0].found && items[0].negative, "gone read as found or a plain miss");
        cr_assert_null(items[0].value);
        cr_assert_eq(items[0].len, 0);
        cr_assert(items[1].found);
        if (items[0].source == NC_SOURCE_NEAR && items[1].source == NC_SOURCE_NEAR)
            return items;
        nc_items_free(items, 2);
        h_sleep_ms(10);
    }
    cr_assert_fail("an MGet never came from the near tier");
    return NULL;
}

Test(neartier, mget_keeps_and_serves_negative_items_in_the_near_tier)
{
    set_negative_on(cb, "gone");
    set_on(cb, "k", "v");
    nc_items_free(mget_near(), 2);
    int64_t mgets = h_stat(na, "mgets");
    nc_item *items = mget_near();
    cr_assert_str_eq(items[1].value, "v");
    nc_items_free(items, 2);
    cr_assert_eq(h_stat(na, "mgets"), mgets, "an MGet answered by the near tier asked the daemon");
    near_holds_negative("gone"); /* a Get finds what the MGet kept */
    set_on(cb, "gone", "back");
    near_holds("gone", "back");
}

/* After another host writes key from `old` to `now`, c reads `now` within
 * within_ms and `old` never again; returns how long it read `old` (ms). */
static int64_t sees_write(nc_client *c, const char *key, const char *old, const char *now,
                          int64_t within_ms)
{
    set_on(cb, key, now);
    int64_t t0 = h_now_ms();
    nc_source from;
    char *v = NULL;
    while ((v = get(c, key, &from, 1000)) != NULL && strcmp(v, old) == 0 &&
           h_now_ms() - t0 < within_ms) {
        nc_free(v);
        h_sleep_ms(1);
    }
    int64_t took = h_now_ms() - t0;
    cr_assert_not_null(v);
    cr_assert_str_eq(v, now, "the write of %s never reached this client", key);
    nc_free(v);
    for (int i = 0; i < 100; i++) {
        v = get(c, key, &from, 1000);
        cr_assert_not_null(v);
        cr_assert_str_eq(v, now, "%s read %s again, after %s", key, v, now);
        nc_free(v);
    }
    return took;
}

static void ring_path(char *buf, size_t len)
{
    snprintf(buf, len, "%.290s.ring", fx.node[0].url + 6); /* ring.h RING_SUFFIX */
}

/* The ring file deleted while clients read it (a tmp cleaner, an
 * operator): a client that mapped it keeps the daemon's own mapping, which
 * the daemon still writes, so it stays coherent; a client that opens after
 * finds no ring and works through the daemon. */
Test(neartier, a_deleted_ring_file_leaves_mapped_readers_coherent_and_new_clients_without_it)
{
    char path[300];
    ring_path(path, sizeof path);
    set_on(cb, "k", "v1");
    near_holds("k", "v1");
    cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
    sees_write(na, "k", "v1", "v2", WINDOW_MS);
    near_holds("k", "v2"); /* still served from the (unlinked) ring */
    nc_client *late = near_client(&fx.node[0]);
    sees_write(late, "k", "v2", "v3", WINDOW_MS);
    nc_near_stats s;
    cr_assert_eq(nc_stats_near(late, &s), NC_OK);
    cr_assert_not(s.serving);
    cr_assert_eq(s.hits, 0);
    nc_close(late);
    sees_write(na, "k", "v3", "v4", WINDOW_MS);
}

/* The ring file replaced by a copy of itself (a frozen snapshot: a backup
 * restored, a `cp -a` of /run): the clients that mapped the daemon's ring
 * keep it and stay coherent. A client that opens after maps the copy, which
 * nothing writes: it may read a value from before a write until the copy's
 * serving_until, at most coherence_window after the copy was made (as
 * with a frozen daemon), and never after. */
Test(neartier, a_ring_file_replaced_by_a_frozen_copy_serves_no_stale_value)
{
    char path[300], copy[320];
    ring_path(path, sizeof path);
    snprintf(copy, sizeof copy, "%s.copy", path);
    set_on(cb, "k", "v1");
    near_holds("k", "v1");
    char *argv[] = {"cp", "-p", path, copy, NULL};
    cr_assert_eq(h_run(argv, NULL, 0, NULL, NULL, NULL), 0);
    cr_assert_eq(rename(copy, path), 0, "%s", strerror(errno));
    sees_write(na, "k", "v1", "v2", WINDOW_MS);
    nc_client *late = near_client(&fx.node[0]);
    for (int i = 0; i < 3; i++) /* fills its near tier, if it may */
        nc_free(get(late, "k", &(nc_source){0}, 1000));
    nc_near_stats s;
    cr_assert_eq(nc_stats_near(late, &s), NC_OK);
    cr_log_info("the late client on the copy: serving %d, %llu hits, %llu fills refused: %s",
                s.serving, (unsigned long long)s.hits, (unsigned long long)s.fills_refused,
                s.problem);
    int64_t stale = sees_write(late, "k", "v2", "v3", WINDOW_MS + 250);
    cr_log_info("the late client read the old value %lld ms after the write", (long long)stale);
    sees_write(na, "k", "v3", "v4", WINDOW_MS);
    nc_close(late);
}
