/* Integration tests of the metrics endpoint (daemon/metrics.c): a real
 * nearcached with metrics_listen, scraped over HTTP and parsed by
 * prometheus_client's text parser (tests/prom_scrape.py, in the venv the
 * metrics_venv test makes): every stat of STATS_TABLE is there with its
 * type, the counters and histograms move with requests, and /readyz
 * follows Redis. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "stats.h"

typedef struct fixture {
    h_fleet fx;    /* one daemon */
    char base[64]; /* http://127.0.0.1:PORT */
} fixture;

static void start_with(fixture *f, const char *flag, const char *value)
{
    char listen[32];
    int port = h_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(f->base, sizeof f->base, "http://%s", listen);
    h_fleet_start(&f->fx, 1, "--metrics-listen", listen, flag, value, NULL);
}

static void start(fixture *f)
{
    start_with(f, NULL, NULL);
}

static void stop(fixture *f)
{
    h_fleet_stop(&f->fx);
}

/* Runs prom_scrape.py MODE BASE+path; returns its stdout (caller frees),
 * asserting it ran. */
static char *scrape(const fixture *f, const char *mode, const char *path)
{
    char url[128], python[600];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    snprintf(python, sizeof python, "%s/bin/python3", NC_VENV);
    char *argv[] = {python, NC_PROM_SCRAPE, (char *)mode, url, NULL};
    char *out = NULL, *err = NULL;
    size_t len;
    int rc = h_run(argv, NULL, 0, &out, &len, &err);
    cr_assert_eq(rc, 0, "prom_scrape.py %s %s failed (%d): %s", mode, url, rc, err);
    free(err);
    return out;
}

/* The value of a sample line "sample KEY VALUE" of a scrape; asserts one. */
static double sample(const char *text, const char *key)
{
    char want[256];
    snprintf(want, sizeof want, "\nsample %s ", key);
    const char *p = strstr(text, want);
    cr_assert_not_null(p, "no sample %s in the scrape", key);
    return strtod(p + strlen(want), NULL);
}

static int has_family(const char *text, const char *name, const char *type)
{
    char want[256];
    snprintf(want, sizeof want, "family %s %s\n", name, type);
    return strstr(text, want) != NULL;
}

Test(metrics, every_stat_of_the_table_is_scraped_with_its_name_and_type)
{
    fixture f = {0};
    start(&f);
    char *text = scrape(&f, "metrics", "/metrics");
    stats st = {0};
    stats_gauges g = {0};
    stats_row rows[STATS_COUNT];
    stats_rows(&st, &g, rows);
    char family[128], key[128];
    for (size_t i = 0; i < STATS_COUNT; i++) {
        /* prometheus_client names a counter's family without _total */
        snprintf(family, sizeof family, "nearcache_%s", rows[i].name);
        snprintf(key, sizeof key, "nearcache_%s%s", rows[i].name, rows[i].counts ? "_total" : "");
        cr_expect(has_family(text, family, rows[i].counts ? "counter" : "gauge"), "%s is not a %s",
                  family, rows[i].counts ? "counter" : "gauge");
        sample(text, key);
    }
    cr_expect(has_family(text, "nearcache_request_duration_seconds", "histogram"));
    cr_expect(has_family(text, "nearcache_get_duration_seconds", "histogram"));
    cr_expect(has_family(text, "nearcache_redis_duration_seconds", "histogram"));
    for (int m = 0; m < STATS_METHODS; m++) {
        snprintf(key, sizeof key, "nearcache_request_duration_seconds_count{method=\"%s\"}",
                 stats_method_name(m));
        sample(text, key);
    }
    cr_expect_eq(sample(text, "nearcache_l1_serving"), 1);
    cr_expect_eq(sample(text, "nearcache_l1_max_memory"), 64 * 1024 * 1024);
    free(text);
    stop(&f);
}

Test(metrics, counters_and_histograms_move_after_requests)
{
    fixture f = {0};
    start(&f);
    char *before = scrape(&f, "metrics", "/metrics");
    nc_client *c = h_client(&f.fx.node[0]);
    void *v = NULL;
    size_t len = 0;
    cr_assert_eq(nc_get(c, NC_STR("m"), NC_STR("k"), &v, &len, 2000), NC_ENOTFOUND);
    cr_assert_eq(nc_set(c, NC_STR("m"), NC_STR("k"), NC_STR("v"), 60000, 2000), NC_OK);
    nc_get_info info;
    cr_assert_eq(nc_get_ex(c, NC_STR("m"), NC_STR("k"), &v, &len, &info, 2000), NC_OK);
    cr_assert_eq(info.source, NC_SOURCE_L1, "the write kept the value in L1");
    nc_free(v);
    nc_close(c);
    char *after = scrape(&f, "metrics", "/metrics");
    const char *moved[][2] = {
        {"nearcache_gets_total", "2"},
        {"nearcache_sets_total", "1"},
        {"nearcache_l1_hits_total", "1"},
        {"nearcache_l1_misses_total", "1"},
        {"nearcache_l2_misses_total", "1"},
        {"nearcache_request_duration_seconds_count{method=\"get\"}", "2"},
        {"nearcache_request_duration_seconds_count{method=\"set\"}", "1"},
        {"nearcache_get_duration_seconds_count{tier=\"l1\"}", "1"},
        {"nearcache_get_duration_seconds_count{tier=\"l2\"}", "1"},
    };
    for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++)
        cr_expect_eq(sample(after, moved[i][0]) - sample(before, moved[i][0]), atof(moved[i][1]),
                     "%s moved by %g", moved[i][0],
                     sample(after, moved[i][0]) - sample(before, moved[i][0]));
    cr_expect_gt(sample(after, "nearcache_redis_duration_seconds_count"),
                 sample(before, "nearcache_redis_duration_seconds_count") + 1,
                 "the Get's read and the Set's script are Redis round trips");
    cr_expect_gt(sample(after, "nearcache_request_duration_seconds_sum{method=\"set\"}"), 0);
    cr_expect_eq(sample(after, "nearcache_namespace_gets_total{namespace=\"m\",result=\"hit\"}"),
                 1);
    cr_expect_eq(sample(after, "nearcache_namespace_gets_total{namespace=\"m\",result=\"miss\"}"),
                 1);
    cr_expect_eq(sample(after, "nearcache_request_duration_seconds_bucket{le=\"+Inf\",method="
                               "\"get\"}"),
                 sample(after, "nearcache_request_duration_seconds_count{method=\"get\"}"));
    free(before);
    free(after);
    stop(&f);
}

/* How many lines of text start with `prefix`. */
static int lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *p = strstr(text, prefix); p != NULL; p = strstr(p + 1, prefix))
        n += p == text || p[-1] == '\n';
    return n;
}

Test(metrics, namespaces_beyond_namespace_metrics_add_up_in_other)
{
    fixture f = {0};
    start_with(&f, "--namespace-metrics", "2");
    nc_client *c = h_client(&f.fx.node[0]);
    void *v;
    size_t len;
    for (int i = 0; i < 20; i++)
        cr_assert_eq(nc_get(c, NC_STR("hot"), NC_STR("k"), &v, &len, 2000), NC_ENOTFOUND);
    const char *cold[] = {"b", "c", "d", "e"};
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(nc_get(c, NC_STR(cold[i]), NC_STR("k"), &v, &len, 2000), NC_ENOTFOUND);
    nc_close(c);
    char *text = scrape(&f, "metrics", "/metrics");
    cr_expect(has_family(text, "nearcache_namespace_gets", "counter"));
    cr_expect_eq(lines_starting(text, "sample nearcache_namespace_gets_total{"), 6,
                 "two namespaces and other, a hit and a miss line each");
    cr_expect_eq(sample(text, "nearcache_namespace_gets_total{namespace=\"hot\",result=\"miss\"}"),
                 20);
    cr_expect_eq(sample(text, "nearcache_namespace_gets_total{namespace=\"e\",result=\"miss\"}"), 1,
                 "the newest takes the quietest row");
    cr_expect_eq(
        sample(text, "nearcache_namespace_gets_total{namespace=\"other\",result=\"miss\"}"), 3);
    free(text);
    stop(&f);
}

Test(metrics, a_namespace_whose_gets_keep_missing_is_named_in_a_warning)
{
    h_fleet fx;
    h_fleet_start(&fx, 1, "--hit-ratio-interval", "300ms", "--hit-ratio-min-gets", "5", NULL);
    nc_client *c = fx.cl[0];
    void *v;
    size_t len;
    cr_assert_eq(nc_set(c, NC_STR("warm"), NC_STR("k"), NC_STR("v"), 60000, 2000), NC_OK);
    cr_assert_eq(nc_get(c, NC_STR("warm"), NC_STR("k"), &v, &len, 2000), NC_OK);
    nc_free(v);
    cr_assert_eq(nc_get(c, NC_STR("cold"), NC_STR("k0"), &v, &len, 2000), NC_ENOTFOUND);
    h_sleep_ms(700); /* a check has seen both: the baseline */
    char key[16];
    for (int i = 1; i <= 12; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_eq(nc_get(c, NC_STR("cold"), NC_STR(key), &v, &len, 2000), NC_ENOTFOUND);
        cr_assert_eq(nc_get(c, NC_STR("warm"), NC_STR("k"), &v, &len, 2000), NC_OK);
        nc_free(v);
    }
    char *log = NULL;
    for (int i = 0; i < 50; i++) { /* the next check or two */
        free(log);
        log = h_read_file(fx.node[0].log, NULL);
        if (strstr(log, "namespace \"cold\": hit ratio 0.0%") != NULL)
            break;
        h_sleep_ms(100);
    }
    cr_expect(strstr(log, "namespace \"cold\": hit ratio 0.0% over the last 300 ms") != NULL &&
                  strstr(log, "below hit_ratio_warn (80%)") != NULL,
              "a warning names cold; log:\n%s", log);
    cr_expect_null(strstr(log, "namespace \"warm\""), "warm hits: no warning");
    free(log);
    h_fleet_stop(&fx);
}

/* Polls /readyz until its answer starts with `want` (up to 10 s). */
static char *readyz_until(const fixture *f, const char *want)
{
    char *body = NULL;
    for (int i = 0; i < 100; i++) {
        free(body);
        body = scrape(f, "get", "/readyz");
        if (strncmp(body, want, strlen(want)) == 0)
            return body;
        h_sleep_ms(100);
    }
    cr_assert_fail("/readyz kept answering \"%s\", not \"%s\"", body, want);
    return NULL;
}

Test(metrics, readyz_follows_redis_and_healthz_the_process)
{
    fixture f = {0};
    start(&f);
    free(readyz_until(&f, "200 ready\n"));
    h_redis_stop(&f.fx.redis, 1);
    char *body = readyz_until(&f, "503 not ready: ");
    cr_expect(strstr(body, "redis") != NULL || strstr(body, "L1 not serving") != NULL,
              "a reason: %s", body);
    cr_expect_eq(strchr(body, '\n') - body, (long)strlen(body) - 1, "one line: %s", body);
    free(body);
    body = scrape(&f, "get", "/healthz");
    cr_expect_str_eq(body, "200 ok\n");
    free(body);
    h_redis_restart(&f.fx.redis);
    free(readyz_until(&f, "200 ready\n"));
    stop(&f);
}

Test(metrics, a_taken_metrics_port_stops_start_up_with_a_message)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    char listen_at[32], sock[64];
    snprintf(listen_at, sizeof listen_at, "127.0.0.1:%d", ntohs(a.sin_port));
    snprintf(sock, sizeof sock, "ipc:///tmp/nc-metrics-%d.sock", (int)getpid());
    char *argv[] = {getenv("NC_DAEMON"),   "--listen",         sock,      "--redis",
                    "redis://127.0.0.1:1", "--metrics-listen", listen_at, NULL};
    char *err = NULL;
    int rc = h_run(argv, NULL, 0, NULL, NULL, &err);
    close(fd);
    cr_expect_neq(rc, 0, "start-up fails");
    cr_expect(strstr(err, "cannot serve metrics on") != NULL && strstr(err, "metrics_listen"),
              "the log names the setting: %s", err);
    free(err);
}
