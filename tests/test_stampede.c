/* Integration: protecting Redis and the database behind it. Concurrent
 * misses of one key on one node share one Redis read (single flight). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static h_redis redis;
static h_proxy proxy;
static h_daemon daemon_;

static void down(void)
{
    cr_expect_eq(h_daemon_stop(&daemon_), 0);
    h_proxy_stop(&proxy);
    h_redis_cleanup(&redis);
}

TestSuite(stampede, .fini = down, .timeout = 60);

/* How many times Redis ran EVALSHA (every script call) so far. */
static long evalsha_calls(void)
{
    char *info = h_redis_cmd(&redis, "INFO", "commandstats", NULL);
    const char *p = strstr(info, "cmdstat_evalsha:calls=");
    long n = p != NULL ? atol(p + strlen("cmdstat_evalsha:calls=")) : 0;
    free(info);
    return n;
}

#define READERS 50

struct reader {
    int rv;
    char value[16];
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    nc_client *c = NULL;
    void *v = NULL;
    size_t len;
    if ((r->rv = nc_open(&c, daemon_.url, 0)) == NC_OK)
        r->rv = nc_get(c, NC_STR("ns"), NC_STR("cold"), &v, &len, 3000);
    if (r->rv == NC_OK)
        snprintf(r->value, sizeof r->value, "%s", (char *)v);
    nc_free(v);
    nc_close(c);
    return NULL;
}

Test(stampede, concurrent_misses_of_one_key_share_one_redis_read)
{
    /* Redis answers commands 300 ms late, so every reader arrives while the
     * first read is still in flight. */
    h_redis_start(&redis);
    h_proxy_start(&proxy, &redis, 300000);
    h_daemon_start(&daemon_, &proxy.via, "--request-timeout", "3s", "--redis-timeout", "2s", NULL);
    free(h_redis_cmd(&redis, "SET", "nc:v1:ns:0:cold", "value", "PX", "60000", NULL));
    long before = evalsha_calls();
    pthread_t t[READERS];
    struct reader r[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct reader){.rv = -1};
        pthread_create(&t[i], NULL, reader_main, &r[i]);
    }
    for (int i = 0; i < READERS; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(r[i].rv, NC_OK, "reader %d: %s", i, nc_strerror(r[i].rv));
        cr_expect_str_eq(r[i].value, "value");
    }
    nc_client *c = h_client(&daemon_);
    int64_t reads = h_stat(c, "l2_hits") + h_stat(c, "l2_misses");
    int64_t joins = h_stat(c, "single_flight_joins");
    nc_close(c);
    /* Readers that came after the value landed in L1 are hits, not joins. */
    cr_assert_eq(reads, 1, "%lld Redis reads for one key", (long long)reads);
    cr_assert_eq(evalsha_calls() - before, 1, "Redis ran %ld scripts", evalsha_calls() - before);
    cr_assert_geq(joins, READERS / 2, "only %lld joined the flight", (long long)joins);
}
