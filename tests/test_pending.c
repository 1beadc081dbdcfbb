/* Integration: rule R2 in libnearcache (client/pending.c). A Delete or a
 * namespace bump made while the daemon is down is kept (nc_del() returns
 * NC_EQUEUED, or NC_EUNAVAILABLE with strict invalidations) and sent
 * before anything else once the daemon is back: daemon stopped, update,
 * daemon started, read returns the new value. Beyond pending_max, the
 * namespace is bumped instead. */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

static h_fleet fx; /* one daemon, stopped and started again by the tests */

static void up(void)
{
    h_fleet_start(&fx, 1, NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
}

TestSuite(pending, .init = up, .fini = down, .timeout = 60);

static nc_client *open_with(size_t pending_max, int strict)
{
    nc_client *c;
    nc_open_opts o = {.pending_max = pending_max, .strict_invalidations = strict};
    cr_assert_eq(nc_open_ex(&c, fx.node[0].url, &o), NC_OK, "%s", nc_errmsg());
    return c;
}

/* The value the "database" holds, for the loader. */
static const char *db_value;

static int loader(void *arg, nc_bytes ns, nc_bytes key, void **value, size_t *len)
{
    (void)arg, (void)ns, (void)key;
    *value = strdup(db_value);
    *len = strlen(db_value);
    return 0;
}

/* nc_fetch() of (ns, key) through c: what a reader is served. */
static char *fetch(nc_client *c, const char *ns, const char *key)
{
    void *v = NULL;
    size_t len;
    int rv = nc_fetch(c, NC_STR(ns), NC_STR(key), 60000, loader, NULL, &v, &len, 2000);
    cr_assert_eq(rv, NC_OK, "fetch %s/%s: %s: %s", ns, key, nc_strerror(rv), nc_errmsg());
    return v;
}

/* Stops the daemon (SIGTERM), keeping its directory for the restart. */
static void stop_daemon(void)
{
    int status = 0;
    kill(fx.node[0].pid, SIGTERM);
    waitpid(fx.node[0].pid, &status, 0);
    fx.node[0].pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nearcached stopped badly");
    h_sleep_ms(50); /* until the client has seen its connection close */
}

static void start_daemon(void)
{
    h_daemon_restart(&fx.node[0], &fx.redis, NULL);
}

/* The story's start: the cache holds "old" for products/key, read through
 * writer; the daemon stops; the database now says "new". */
static void overwritten_while_down(nc_client *writer, const char *key)
{
    db_value = "old";
    char *v = fetch(writer, "products", key);
    cr_assert_str_eq(v, "old");
    free(v);
    stop_daemon();
    db_value = "new"; /* the committed write */
}

Test(pending, daemon_stopped_update_daemon_started_read_returns_the_new_value)
{
    nc_client *writer = open_with(0, 0);
    overwritten_while_down(writer, "7");
    int64_t t0 = h_now_ms();
    int existed = -1;
    int rv = nc_del(writer, NC_STR("products"), NC_STR("7"), &existed, 5000);
    cr_assert_eq(rv, NC_EQUEUED, "got %s: %s", nc_strerror(rv), nc_errmsg());
    cr_assert_lt(h_now_ms() - t0, 1000, "a queued delete does not wait for its 5 s timeout");
    cr_assert_eq(existed, 0);
    cr_assert_eq(nc_status(), CODE(UNAVAILABLE));
    cr_assert_not_null(strstr(nc_errmsg(), "Delete queued"), "%s", nc_errmsg());
    char *held = h_redis_cmd(&fx.redis, "GET", H_DATA_KEY(&fx.redis, "products", "7"), NULL);
    cr_assert_str_eq(held, "old", "Redis still holds the overwritten value");
    free(held);
    start_daemon();
    char *v = fetch(writer, "products", "7"); /* the Delete goes before this Get */
    cr_assert_str_eq(v, "new");
    free(v);
    nc_close(writer);
}

/* A kept Delete empties the writer's own near tier: no ring slot will ever
 * refuse the fill of a Get reply that was in flight with the old value
 * (tests/conformance/ring.json has the fill's side). */
Test(pending, a_kept_delete_empties_the_writers_near_tier)
{
    nc_client *writer;
    nc_open_opts o = {.near_bytes = 1 << 20};
    cr_assert_eq(nc_open_ex(&writer, fx.node[0].url, &o), NC_OK, "%s", nc_errmsg());
    db_value = "old";
    free(fetch(writer, "products", "8"));
    free(fetch(writer, "products", "9"));
    free(fetch(writer, "products", "8")); /* read from the daemon: kept near */
    free(fetch(writer, "products", "9"));
    nc_near_stats st;
    cr_assert_eq(nc_stats_near(writer, &st), NC_OK);
    cr_assert_eq(st.entries, 2, "both reads filled the near tier");
    uint64_t flushes = st.flushes;
    stop_daemon();
    int rv = nc_del(writer, NC_STR("products"), NC_STR("8"), NULL, 1000);
    cr_assert_eq(rv, NC_EQUEUED, "got %s: %s", nc_strerror(rv), nc_errmsg());
    cr_assert_eq(nc_stats_near(writer, &st), NC_OK);
    cr_expect_eq(st.entries, 0, "the near tier kept %llu entries", (unsigned long long)st.entries);
    cr_expect_eq(st.flushes, flushes + 1);
    db_value = "new";
    start_daemon();
    char *v = fetch(writer, "products", "8");
    cr_assert_str_eq(v, "new");
    free(v);
    nc_close(writer);
}

Test(pending, another_client_reads_the_new_value_once_the_writer_is_back)
{
    nc_client *writer = open_with(0, 0);
    overwritten_while_down(writer, "8");
    cr_assert_eq(nc_del(writer, NC_STR("products"), NC_STR("8"), NULL, 1000), NC_EQUEUED);
    start_daemon();
    /* the writer's own thread sends it: no call of the writer's needed */
    nc_client *reader = h_client(&fx.node[0]);
    int64_t deadline = h_now_ms() + 2000;
    char *v = fetch(reader, "products", "8");
    while (strcmp(v, "new") != 0 && h_now_ms() < deadline) {
        free(v);
        h_sleep_ms(20);
        v = fetch(reader, "products", "8");
    }
    cr_assert_str_eq(v, "new", "the writer's Delete never arrived");
    free(v);
    nc_close(reader);
    nc_close(writer);
}

Test(pending, strict_invalidations_fail_unavailable_and_are_still_sent)
{
    nc_client *writer = open_with(0, 1);
    overwritten_while_down(writer, "9");
    int rv = nc_del(writer, NC_STR("products"), NC_STR("9"), NULL, 1000);
    cr_assert_eq(rv, NC_EUNAVAILABLE, "got %s", nc_strerror(rv));
    cr_assert_eq(nc_status(), CODE(UNAVAILABLE));
    cr_assert_not_null(strstr(nc_errmsg(), "not delivered (kept"), "%s", nc_errmsg());
    start_daemon();
    char *v = fetch(writer, "products", "9");
    cr_assert_str_eq(v, "new");
    free(v);
    nc_close(writer);
}

Test(pending, a_bump_is_kept_too)
{
    nc_client *c = open_with(0, 0);
    cr_assert_eq(nc_set(c, NC_STR("carts"), NC_STR("1"), NC_STR("x"), 60000, 1000), NC_OK);
    uint64_t before = h_nsver(&fx.redis, "carts");
    stop_daemon();
    uint64_t version = 99;
    cr_assert_eq(nc_bump(c, NC_STR("carts"), &version, 1000), NC_EQUEUED);
    cr_assert_eq(version, 0);
    start_daemon();
    cr_assert_eq(nc_ping(c, NULL, 2000), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(h_nsver(&fx.redis, "carts"), before + 1);
    nc_close(c);
}

Test(pending, beyond_pending_max_the_namespace_is_bumped_on_reconnect)
{
    nc_client *c = open_with(2, 0);
    const char *keys[] = {"1", "2", "3", "4"};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR(keys[i]), NC_STR("v"), 60000, 1000), NC_OK);
    uint64_t before = h_nsver(&fx.redis, "users");
    stop_daemon();
    for (int i = 0; i < 4; i++)
        cr_assert_eq(nc_del(c, NC_STR("users"), NC_STR(keys[i]), NULL, 1000), NC_EQUEUED);
    start_daemon();
    cr_assert_eq(nc_ping(c, NULL, 2000), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(h_nsver(&fx.redis, "users"), before + 1, "keys 3 and 4 did not fit: a bump");
    void *v;
    size_t len;
    for (int i = 0; i < 4; i++)
        cr_assert_eq(nc_get(c, NC_STR("users"), NC_STR(keys[i]), &v, &len, 1000), NC_ENOTFOUND,
                     "key %s", keys[i]);
    nc_close(c);
}

Test(pending, close_sends_what_is_kept_when_the_daemon_answers)
{
    nc_client *c = open_with(0, 0);
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("k"), NC_STR("v"), 60000, 1000), NC_OK);
    stop_daemon();
    cr_assert_eq(nc_del(c, NC_STR("users"), NC_STR("k"), NULL, 1000), NC_EQUEUED);
    start_daemon();
    nc_close(c);
    char *exists = h_redis_cmd(&fx.redis, "EXISTS", H_DATA_KEY(&fx.redis, "users", "k"), NULL);
    cr_assert_str_eq(exists, "0", "the kept Delete was sent at close");
    free(exists);
}

Test(pending, a_set_fails_and_is_not_kept)
{
    nc_client *c = open_with(0, 0);
    stop_daemon();
    nc_set_opts so = {.lease_token = "x"};
    int rv = nc_set_opt(c, NC_STR("users"), NC_STR("k"), NC_STR("v"), 1000, &so, 1000);
    cr_assert_eq(rv, NC_ECONNECT, "a write is not an invalidation: %s", nc_strerror(rv));
    cr_assert_not_null(strstr(nc_errmsg(), "no daemon is listening"), "%s", nc_errmsg());
    start_daemon();
    nc_close(c);
}

Test(pending, a_kept_delete_the_daemon_refuses_is_dropped_and_blocks_nothing)
{
    nc_client *c = open_with(0, 0);
    stop_daemon();
    cr_assert_eq(nc_del(c, NC_STR("bad:ns"), NC_STR("k"), NULL, 1000), NC_EQUEUED);
    cr_assert_eq(nc_del(c, NC_STR("users"), NC_STR("k"), NULL, 1000), NC_EQUEUED);
    start_daemon();
    cr_assert_eq(nc_ping(c, NULL, 2000), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(nc_ping(c, NULL, 2000), NC_OK, "%s", nc_errmsg());
    nc_close(c);
}

Test(pending, a_kept_delete_the_daemon_cannot_apply_yet_stays_first_and_blocks_nothing)
{
    /* As Python's client: a kept Delete answered UNAVAILABLE (the daemon's
     * Redis is down) stays first in line, and the call goes on. */
    nc_client *c = open_with(0, 0);
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("r"), NC_STR("v"), 60000, 1000), NC_OK);
    stop_daemon();
    cr_assert_eq(nc_del(c, NC_STR("users"), NC_STR("r"), NULL, 1000), NC_EQUEUED);
    h_daemon_restart(&fx.node[0], NULL, NULL); /* with no Redis to reach */
    int rv = nc_ping(c, NULL, 2000);
    cr_assert_eq(rv, NC_OK, "a Ping fails for the kept Delete: %s: %s", nc_strerror(rv),
                 nc_errmsg());
    stop_daemon();
    start_daemon();
    cr_assert_eq(nc_ping(c, NULL, 2000), NC_OK, "%s", nc_errmsg());
    char *exists = h_redis_cmd(&fx.redis, "EXISTS", H_DATA_KEY(&fx.redis, "users", "r"), NULL);
    cr_assert_str_eq(exists, "0", "the kept Delete was still sent once Redis was there");
    free(exists);
    nc_close(c);
}
