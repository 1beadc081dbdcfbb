/* Integration: the NearReport method against a real nearcached. Reports
 * add up in Stats (near_hits, near_misses, near_fills_refused,
 * near_clients) and in the namespaces' rows; nearcache-cli stats counts
 * near hits in its hit ratio; bad reports get a clear status, change no
 * total, and the daemon keeps serving. /metrics is parsed by
 * prometheus_client (tests/prom_scrape.py, in the metrics_venv test's venv). */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

static h_fleet fx; /* one daemon */
static char metrics_url[64];

static void up(void)
{
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", h_free_port());
    snprintf(metrics_url, sizeof metrics_url, "http://%s/metrics", listen);
    h_fleet_start(&fx, 1, "--metrics-listen", listen, NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
}

TestSuite(nearreport, .init = up, .fini = down, .timeout = 60);

/* One namespace of a report. */
typedef struct nsrep {
    const char *ns;
    uint64_t hits, misses;
} nsrep;

/* Sends a NearReport; returns the reply (asserts one came; caller frees). */
static pb_reply *report(uint64_t reporter, uint32_t pid, uint64_t hits, uint64_t misses,
                        uint64_t refused, const nsrep *ns, size_t n)
{
    Nearcache__V1__NearNamespaceReport cells[n > 0 ? n : 1], *ptrs[n > 0 ? n : 1];
    for (size_t i = 0; i < n; i++) {
        nearcache__v1__near_namespace_report__init(&cells[i]);
        cells[i].ns = (ProtobufCBinaryData){strlen(ns[i].ns), (uint8_t *)ns[i].ns};
        cells[i].hits = ns[i].hits;
        cells[i].misses = ns[i].misses;
        ptrs[i] = &cells[i];
    }
    pb_near_report_request nr = NEARCACHE__V1__NEAR_REPORT_REQUEST__INIT;
    nr.reporter = reporter;
    nr.pid = pid;
    nr.hits = hits;
    nr.misses = misses;
    nr.fills_refused = refused;
    nr.n_namespaces = n;
    nr.namespaces = ptrs;
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(NEAR_REPORT);
    req.near_report = &nr;
    size_t len = codec_request_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    codec_request_pack(&req, buf);
    pb_reply *r = h_raw(&fx.node[0], buf, len, 2000);
    free(buf);
    cr_assert_not_null(r, "no reply to a near report");
    return r;
}

/* report() that expects `code` and, unless NULL, `words` in the message. */
static void report_expect(int code, const char *words, uint64_t reporter, uint32_t pid,
                          uint64_t hits, uint64_t misses, uint64_t refused, const nsrep *ns,
                          size_t n)
{
    pb_reply *r = report(reporter, pid, hits, misses, refused, ns, n);
    cr_expect_eq(r->code, code, "status %s (%s), expected %s", codec_code_name(r->code), r->message,
                 codec_code_name(code));
    if (code == 0) {
        cr_expect_eq(r->result_case, RESULT(NEAR_REPORT));
        cr_expect_eq(r->near_report->interval_ms, 1000);
    }
    if (words != NULL)
        cr_expect_not_null(strstr(r->message, words), "message \"%s\" lacks \"%s\"", r->message,
                           words);
    codec_reply_free(r);
}

Test(nearreport, reports_add_up_for_the_host_and_never_go_down)
{
    cr_assert_eq(h_stat(fx.cl[0], "near_clients"), 0);
    report_expect(0, NULL, 11, 100, 900, 100, 3, NULL, 0);
    report_expect(0, NULL, 22, 200, 50, 10, 0, NULL, 0);
    cr_assert_eq(h_stat(fx.cl[0], "near_hits"), 950);
    cr_assert_eq(h_stat(fx.cl[0], "near_misses"), 110);
    cr_assert_eq(h_stat(fx.cl[0], "near_fills_refused"), 3);
    cr_assert_eq(h_stat(fx.cl[0], "near_clients"), 2);
    report_expect(0, NULL, 11, 100, 1000, 120, 4, NULL, 0); /* +100 +20 +1 */
    cr_assert_eq(h_stat(fx.cl[0], "near_hits"), 1050);
    cr_assert_eq(h_stat(fx.cl[0], "near_misses"), 130);
    cr_assert_eq(h_stat(fx.cl[0], "near_fills_refused"), 4);
    /* reporter 22 goes quiet (its process exited): it keeps what it sent */
    h_sleep_ms(3300);
    report_expect(0, NULL, 11, 100, 1001, 120, 4, NULL, 0);
    cr_assert_eq(h_stat(fx.cl[0], "near_clients"), 1);
    cr_assert_eq(h_stat(fx.cl[0], "near_hits"), 1051);
}

Test(nearreport, bad_reports_are_refused_with_a_reason_and_change_no_total)
{
    report_expect(0, NULL, 5, 100, 100, 10, 0, NULL, 0);
    int64_t bad = h_stat(fx.cl[0], "bad_requests");
    report_expect(CODE(INVALID_ARGUMENT), "went down, from 100 to 40", 5, 100, 40, 10, 0, NULL, 0);
    report_expect(CODE(INVALID_ARGUMENT), "reporter is 0", 0, 100, 5, 0, 0, NULL, 0);
    report_expect(CODE(INVALID_ARGUMENT), "past 2^62", 6, 100, UINT64_MAX, 0, 0, NULL, 0);
    report_expect(CODE(FAILED_PRECONDITION), "must take an id of its own", 5, 101, 500, 10, 0, NULL,
                  0);
    nsrep many[300];
    char names[300][8];
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof names[i], "n%d", i);
        many[i] = (nsrep){names[i], 0, 0};
    }
    report_expect(CODE(INVALID_ARGUMENT), "300 namespaces; at most 256", 7, 100, 1, 0, 0, many,
                  300);
    cr_assert_eq(h_stat(fx.cl[0], "near_hits"), 100, "no bad report changed the totals");
    cr_assert_eq(h_stat(fx.cl[0], "near_misses"), 10);
    /* the refused report of 40 is reporter 5's new start */
    report_expect(0, NULL, 5, 100, 45, 10, 0, NULL, 0);
    cr_assert_eq(h_stat(fx.cl[0], "near_hits"), 105);
    cr_assert_eq(h_stat(fx.cl[0], "bad_requests"), bad + 5, "each refusal is a bad request");
    nc_ping_info ping;
    cr_assert_eq(nc_ping_ex(fx.cl[0], &ping, 1000), NC_OK, "the daemon still serves");
}

Test(nearreport, cli_stats_counts_near_hits_in_the_hit_ratio_and_the_namespaces)
{
    /* one daemon hit and one miss in users (the Set keeps the value in L1) */
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("users"), NC_STR("1"), NC_STR("a"), 60000, 1000), NC_OK);
    void *v;
    size_t len;
    cr_assert_eq(nc_get(fx.cl[0], NC_STR("users"), NC_STR("1"), &v, &len, 1000), NC_OK);
    nc_free(v);
    cr_assert_eq(nc_get(fx.cl[0], NC_STR("users"), NC_STR("2"), &v, &len, 1000), NC_ENOTFOUND);
    /* 8 near hits, 2 near misses (those two Gets) */
    nsrep users = {"users", 8, 2};
    report_expect(0, NULL, 9, 100, 8, 2, 0, &users, 1);
    char *out = NULL, *err = NULL;
    size_t outlen;
    cr_assert_eq(h_cli(&fx.node[0], NULL, 0, &out, &outlen, &err, "stats", NULL), 0, "%s", err);
    /* hit ratio: (8 near + 1 L1 + 0 Redis) / (8 + 1 + 0 + 1 Redis miss) */
    cr_expect_not_null(strstr(out, "\nnear hit ratio             80.0%"), "%s", out);
    cr_expect_not_null(strstr(out, "\nhit ratio                  90.0%"), "%s", out);
    const char *row = strstr(out, "\nusers ");
    cr_assert_not_null(row, "%s", out);
    unsigned reads, near_hits, hits, misses;
    double pct;
    cr_assert_eq(sscanf(row, "\nusers %u %u %u %u %lf%%", &reads, &near_hits, &hits, &misses, &pct),
                 5, "%s", row);
    cr_expect(reads == 10 && near_hits == 8 && hits == 1 && misses == 1 && pct == 90.0,
              "users: %u %u %u %u %g", reads, near_hits, hits, misses, pct);
    free(out), free(err);
    cr_assert_eq(h_cli(&fx.node[0], NULL, 0, &out, &outlen, &err, "stats", "--json", NULL), 0);
    const char *want[] = {"\"near_hits\": 8",
                          "\"near_misses\": 2",
                          "\"near_fills_refused\": 0",
                          "\"near_clients\": 1",
                          "\"hit_ratio\": 0.9000",
                          "\"near_hit_ratio\": 0.8000",
                          "\"near_hits\": 8, \"near_misses\": 2, \"acl_denied\": 0}"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_not_null(strstr(out, want[i]), "no %s in %s", want[i], out);
    free(out), free(err);
}

/* The value of "sample KEY VALUE" in a scrape of /metrics; asserts one. */
static double sample(const char *text, const char *key)
{
    char want[256];
    snprintf(want, sizeof want, "\nsample %s ", key);
    const char *p = strstr(text, want);
    cr_assert_not_null(p, "no sample %s in the scrape:\n%s", key, text);
    return strtod(p + strlen(want), NULL);
}

Test(nearreport, metrics_show_the_host_totals_and_the_namespaces)
{
    nsrep ns[2] = {{"users", 30, 3}, {"carts", 7, 1}};
    report_expect(0, NULL, 3, 100, 40, 5, 2, ns, 2);
    char python[600];
    snprintf(python, sizeof python, "%s/bin/python3", NC_VENV);
    char *argv[] = {python, NC_PROM_SCRAPE, "metrics", metrics_url, NULL};
    char *text = NULL, *err = NULL;
    size_t len;
    cr_assert_eq(h_run(argv, NULL, 0, &text, &len, &err), 0, "prom_scrape.py: %s", err);
    cr_expect_eq(sample(text, "nearcache_near_hits_total"), 40);
    cr_expect_eq(sample(text, "nearcache_near_misses_total"), 5);
    cr_expect_eq(sample(text, "nearcache_near_fills_refused_total"), 2);
    cr_expect_eq(sample(text, "nearcache_near_clients"), 1);
    cr_expect_eq(
        sample(text, "nearcache_namespace_near_lookups_total{namespace=\"users\",result=\"hit\"}"),
        30);
    cr_expect_eq(
        sample(text, "nearcache_namespace_near_lookups_total{namespace=\"carts\",result=\"miss\"}"),
        1);
    cr_expect_eq(
        sample(text, "nearcache_namespace_near_lookups_total{namespace=\"other\",result=\"hit\"}"),
        0);
    free(text), free(err);
}

/* libnearcache's near tier reports by itself (client/worker.c), about once
 * a second, and a last time when it closes. */
Test(nearreport, a_c_client_with_a_near_tier_reports_its_counters)
{
    nc_client *c;
    nc_open_opts o = {.near_bytes = 1 << 20};
    cr_assert_eq(nc_open_ex(&c, fx.node[0].url, &o), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("1"), NC_STR("a"), 60000, 1000), NC_OK);
    void *v;
    size_t len;
    nc_near_stats s;
    for (int i = 0; i < 300; i++) { /* misses until the ring is caught up, then near hits */
        cr_assert_eq(nc_get(c, NC_STR("users"), NC_STR("1"), &v, &len, 1000), NC_OK);
        nc_free(v);
        cr_assert_eq(nc_stats_near(c, &s), NC_OK);
        if (s.hits >= 3)
            break;
        h_sleep_ms(10);
    }
    cr_assert(s.hits >= 1, "the near tier served nothing: %s", s.problem);
    int64_t deadline = h_now_ms() + 3000;
    while (h_stat(fx.cl[0], "near_hits") < (int64_t)s.hits && h_now_ms() < deadline)
        h_sleep_ms(50);
    cr_assert_eq(h_stat(fx.cl[0], "near_hits"), (int64_t)s.hits);
    cr_assert_eq(h_stat(fx.cl[0], "near_misses"), (int64_t)s.misses);
    cr_assert_eq(h_stat(fx.cl[0], "near_clients"), 1);
    for (int i = 0; i < 5; i++) { /* more hits, then close: the last report has them */
        cr_assert_eq(nc_get(c, NC_STR("users"), NC_STR("1"), &v, &len, 1000), NC_OK);
        nc_free(v);
    }
    nc_close(c);
    cr_assert_eq(h_stat(fx.cl[0], "near_hits"), (int64_t)s.hits + 5);
    cr_assert_eq(h_stat(fx.cl[0], "bad_requests"), 0);
}

/* Near hits on c until its tier has served `more` more (asserts it does). */
static void near_hits(nc_client *c, uint64_t more)
{
    nc_near_stats s;
    cr_assert_eq(nc_stats_near(c, &s), NC_OK);
    uint64_t want = s.hits + more;
    for (int i = 0; i < 500 && s.hits < want; i++) {
        void *v;
        size_t len;
        cr_assert_eq(nc_get(c, NC_STR("users"), NC_STR("1"), &v, &len, 1000), NC_OK);
        nc_free(v);
        cr_assert_eq(nc_stats_near(c, &s), NC_OK);
        if (s.hits < want)
            h_sleep_ms(10); /* a miss: the tier is catching up with the ring */
    }
    cr_assert_geq(s.hits, want, "the near tier served %llu, not %llu: %s",
                  (unsigned long long)s.hits, (unsigned long long)want, s.problem);
}

/* Polls Stats on the fleet's client until `name` is at least `want`, 3 s
 * at most; returns the last value. */
static int64_t stat_reaches(const char *name, int64_t want)
{
    int64_t deadline = h_now_ms() + 3000, got;
    while ((got = h_stat(fx.cl[0], name)) < want && h_now_ms() < deadline)
        h_sleep_ms(50);
    return got;
}

/* A restarted daemon counts what its clients' near tiers serve from their
 * first report to it on, not their lifetime again (reported_before). */
Test(nearreport, a_restarted_daemon_counts_from_its_clients_first_report_on)
{
    nc_client *c;
    nc_open_opts o = {.near_bytes = 1 << 20};
    cr_assert_eq(nc_open_ex(&c, fx.node[0].url, &o), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(nc_set(c, NC_STR("users"), NC_STR("1"), NC_STR("a"), 60000, 1000), NC_OK);
    near_hits(c, 20);
    cr_assert_geq(stat_reaches("near_hits", 20), 20);
    kill(fx.node[0].pid, SIGTERM); /* keeping its directory for the restart */
    waitpid(fx.node[0].pid, NULL, 0);
    fx.node[0].pid = 0;
    h_daemon_restart(&fx.node[0], &fx.redis, NULL);
    near_hits(c, 1); /* its first report to the new daemon: the starting point */
    cr_assert_eq(stat_reaches("near_clients", 1), 1);
    int64_t start = h_stat(fx.cl[0], "near_hits");
    cr_assert_lt(start, 20, "the restarted daemon added the client's lifetime: %lld",
                 (long long)start);
    near_hits(c, 5);
    cr_assert_eq(stat_reaches("near_hits", start + 5), start + 5);
    nc_close(c);
}
