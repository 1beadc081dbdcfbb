/* Integration: the L2 module against a real redis-server: commands, TTLs,
 * binary keys, timeouts, and reconnecting after Redis restarts. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "l2.h"

static h_redis redis;
static l2 *conn;

static void up(void)
{
    h_redis_start(&redis);
    config_redis_url url = {.port = redis.port};
    snprintf(url.host, sizeof url.host, "127.0.0.1");
    cr_assert_eq(l2_open(&conn, &url, 500, "test"), 0);
}

static void down(void)
{
    l2_close(conn);
    h_redis_cleanup(&redis);
}

TestSuite(l2, .init = up, .fini = down, .timeout = 30);

Test(l2, set_then_get_returns_value_and_remaining_ttl)
{
    cr_assert_eq(l2_set(conn, "k", 1, "value", 5, 10000, 500), L2_OK);
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, "k", 1, 500, &v), L2_OK);
    cr_assert_eq(v.len, 5);
    cr_assert_arr_eq(v.data, "value", 5);
    cr_assert(v.pttl_ms > 9000 && v.pttl_ms <= 10000, "pttl %lld", (long long)v.pttl_ms);
    l2_value_free(&v);
}

Test(l2, missing_key_is_nil)
{
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, "absent", 6, 500, &v), L2_NIL);
    l2_value_free(&v);
}

Test(l2, key_without_expiry_reports_minus_one)
{
    free(h_redis_cmd(&redis, "SET", "plain", "x", NULL));
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, "plain", 5, 500, &v), L2_OK);
    cr_assert_eq(v.pttl_ms, -1);
    l2_value_free(&v);
}

Test(l2, binary_keys_are_distinct)
{
    cr_assert_eq(l2_set(conn, "a\0b", 3, "1", 1, 10000, 500), L2_OK);
    cr_assert_eq(l2_set(conn, "a", 1, "2", 1, 10000, 500), L2_OK);
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, "a\0b", 3, 500, &v), L2_OK);
    cr_assert_arr_eq(v.data, "1", 1);
    l2_value_free(&v);
}

Test(l2, del_reports_whether_the_key_existed)
{
    int existed = -1;
    cr_assert_eq(l2_set(conn, "k", 1, "v", 1, 10000, 500), L2_OK);
    cr_assert_eq(l2_del(conn, "k", 1, 500, &existed), L2_OK);
    cr_assert_eq(existed, 1);
    cr_assert_eq(l2_del(conn, "k", 1, 500, &existed), L2_OK);
    cr_assert_eq(existed, 0);
}

Test(l2, wrong_type_is_an_error_reply)
{
    free(h_redis_cmd(&redis, "HSET", "h", "f", "v", NULL));
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, "h", 1, 500, &v), L2_EREPLY);
    cr_assert_not_null(strstr(l2_error(conn), "WRONGTYPE"), "%s", l2_error(conn));
    cr_assert(l2_connected(conn), "an error reply must not drop the connection");
}

Test(l2, script_cache_flush_is_survived)
{
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, "k", 1, 500, &v), L2_NIL);
    free(h_redis_cmd(&redis, "SCRIPT", "FLUSH", NULL));
    cr_assert_eq(l2_set(conn, "k", 1, "v", 1, 10000, 500), L2_OK);
    cr_assert_eq(l2_get(conn, "k", 1, 500, &v), L2_OK, "%s", l2_error(conn));
    l2_value_free(&v);
}

Test(l2, slow_redis_times_out_and_the_next_command_reconnects)
{
    cr_assert_eq(l2_ping(conn, 500), L2_OK); /* connected before Redis stalls */
    pid_t pid = fork();
    if (pid == 0) {
        char port[16];
        snprintf(port, sizeof port, "%d", redis.port);
        freopen("/dev/null", "w", stdout);
        execlp("redis-cli", "redis-cli", "-p", port, "DEBUG", "SLEEP", "0.6", (char *)NULL);
        _exit(127);
    }
    h_sleep_ms(100);
    l2_value v = {0};
    int64_t t0 = h_now_ms();
    cr_assert_eq(l2_get(conn, "k", 1, 150, &v), L2_ETIMEOUT);
    cr_assert_lt(h_now_ms() - t0, 400);
    cr_assert_not(l2_connected(conn), "a timed-out connection must be dropped");
    waitpid(pid, NULL, 0);
    cr_assert_eq(l2_set(conn, "k", 1, "v", 1, 10000, 500), L2_OK, "%s", l2_error(conn));
}

Test(l2, restart_is_survived_and_down_redis_fails_fast_with_backoff)
{
    cr_assert_eq(l2_set(conn, "k", 1, "v", 1, 10000, 500), L2_OK);
    h_redis_stop(&redis, 1);
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, "k", 1, 500, &v), L2_EDOWN);
    int64_t t0 = h_now_ms();
    cr_assert_eq(l2_get(conn, "k", 1, 500, &v), L2_EDOWN); /* inside the backoff */
    cr_assert_lt(h_now_ms() - t0, 50);
    cr_assert_not_null(strstr(l2_error(conn), "unreachable"), "%s", l2_error(conn));
    h_redis_restart(&redis);
    l2_retry_now(conn);
    cr_assert_eq(l2_set(conn, "k", 1, "w", 1, 10000, 500), L2_OK, "%s", l2_error(conn));
}

Test(l2, connection_killed_by_redis_is_replaced_transparently)
{
    cr_assert_eq(l2_set(conn, "k", 1, "v", 1, 10000, 500), L2_OK);
    free(h_redis_cmd(&redis, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes", NULL));
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, "k", 1, 500, &v), L2_OK, "%s", l2_error(conn));
    l2_value_free(&v);
}
