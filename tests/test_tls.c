/* TLS to Redis: a real redis-server serving TLS only (--port 0), with
 * certificates this test makes with openssl; daemons on rediss:// URLs.
 * Plain operation, a server that wants client certificates, each refusal
 * with its own log line (wrong CA, wrong name, expired, no TLS server, a
 * handshake trickled), certificate files and settings changed + SIGHUP,
 * Redis killed and restarted, Cluster and Sentinel (a failover too). The
 * coherence and history tests also run over TLS (ctest coherence_tls,
 * history_tls: the harness's $NC_TEST_REDIS_TLS). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static h_tls certs;

static void make_certs(void)
{
    h_tls_make(&certs);
}

static void remove_certs(void)
{
    h_tls_cleanup(&certs);
}

TestSuite(tls, .init = make_certs, .fini = remove_certs, .timeout = 60);

/* Waits up to ms for the daemon's log to contain `want`; returns whether. */
static int log_says(const h_daemon *d, const char *want, int ms)
{
    for (int64_t until = h_now_ms() + ms;;) {
        char *log = h_read_file(d->log, NULL);
        int found = log != NULL && strstr(log, want) != NULL;
        free(log);
        if (found || h_now_ms() >= until)
            return found;
        h_sleep_ms(20);
    }
}

static int count_in_log(const h_daemon *d, const char *what)
{
    char *log = h_read_file(d->log, NULL);
    int n = 0;
    for (const char *p = log; p != NULL && (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    free(log);
    return n;
}

static void expect_log(const h_daemon *d, const char *want)
{
    cr_assert(log_says(d, want, 5000), "the log does not say \"%s\":\n%s", want,
              h_read_file(d->log, NULL));
}

/* A Set until it is OK, for up to ms; returns the last status. */
static int set_until_ok(nc_client *c, const char *key, const char *value, int ms)
{
    int rv = -1;
    for (int64_t until = h_now_ms() + ms; h_now_ms() < until; h_sleep_ms(50))
        if ((rv = nc_set(c, NC_STR("ns"), NC_STR(key), NC_STR(value), 60000, 1000)) == NC_OK)
            break;
    return rv;
}

static void expect_value(nc_client *c, const char *key, const char *want)
{
    void *v = NULL;
    size_t len = 0;
    int rv = nc_get(c, NC_STR("ns"), NC_STR(key), &v, &len, 2000);
    cr_assert_eq(rv, NC_OK, "get %s: %s: %s", key, nc_strerror(rv), nc_errmsg());
    cr_expect_eq(len, strlen(want));
    cr_expect(memcmp(v, want, len) == 0, "get %s: %.*s, not %s", key, (int)len, (char *)v, want);
    nc_free(v);
}

/* A Get (of a key L1 cannot hold: not subscribed) answers UNAVAILABLE well
 * before its deadline: the connections are in their backoff, not waiting. */
static void expect_get_unavailable(nc_client *c)
{
    void *v = NULL;
    size_t len;
    int64_t t0 = h_now_ms();
    cr_expect_eq(nc_get(c, NC_STR("ns"), NC_STR("k"), &v, &len, 5000), NC_EUNAVAILABLE, "%s",
                 nc_errmsg());
    cr_expect_lt(h_now_ms() - t0, 2000, "a refused Redis is answered, not waited for");
    nc_free(v);
}

Test(tls, a_daemon_on_rediss_serves_sets_gets_and_invalidations_over_tls)
{
    h_redis r;
    h_redis_start_tls(&r, &certs, certs.server, certs.server_key, 1, 0);
    h_daemon a, b;
    h_daemon_start(&a, &r, NULL);
    h_daemon_start(&b, &r, NULL);
    nc_client *ca = h_client(&a), *cb = h_client(&b);
    char want[64];
    snprintf(want, sizeof want, "connected to redis 127.0.0.1:%d", r.tls_port);
    expect_log(&a, want);
    cr_assert_eq(nc_set(ca, NC_STR("ns"), NC_STR("k"), NC_STR("v1"), 60000, 0), NC_OK, "%s",
                 nc_errmsg());
    expect_value(cb, "k", "v1"); /* from Redis, over TLS */
    expect_value(cb, "k", "v1"); /* from b's L1, or Redis again */
    cr_assert_eq(nc_set(ca, NC_STR("ns"), NC_STR("k"), NC_STR("v2"), 60000, 0), NC_OK);
    /* the invalidation comes over b's TLS subscription, within moments */
    int64_t until = h_now_ms() + 3000;
    for (;;) {
        void *v = NULL;
        size_t len = 0;
        cr_assert_eq(nc_get(cb, NC_STR("ns"), NC_STR("k"), &v, &len, 2000), NC_OK);
        int fresh = len == 2 && memcmp(v, "v2", 2) == 0;
        nc_free(v);
        if (fresh)
            break;
        cr_assert_lt(h_now_ms(), until, "b still serves v1 3 s after the Set");
        h_sleep_ms(5);
    }
    for (int i = 0; i < 50; i++) { /* plain Gets that miss L1: the read lane */
        char key[16];
        snprintf(key, sizeof key, "m%d", i);
        cr_assert_eq(nc_set(ca, NC_STR("ns"), NC_STR(key), NC_STR("x"), 60000, 0), NC_OK);
        expect_value(cb, key, "x");
    }
    cr_expect_gt(h_stat(cb, "redis_lane_reads"), 0, "the read lane served over TLS");
    char *clients = h_redis_cmd(&r, "CLIENT", "LIST", NULL);
    cr_expect_not_null(strstr(clients, "cmd=subscribe"), "%s", clients);
    free(clients);
    nc_close(ca);
    nc_close(cb);
    cr_expect_eq(h_daemon_stop(&a), 0);
    cr_expect_eq(h_daemon_stop(&b), 0);
    h_redis_cleanup(&r);
}

Test(tls, a_server_that_wants_client_certificates_takes_the_daemon_that_has_one)
{
    h_redis r;
    h_redis_start_tls(&r, &certs, certs.server, certs.server_key, 1, 1);
    h_daemon without;
    h_daemon_start(&without, NULL, "--redis", r.url, "--redis-tls-ca-file", certs.ca, NULL);
    nc_client *c = h_client(&without);
    expect_log(&without, "TLS: the server wants a client certificate (redis_tls_cert_file)");
    expect_get_unavailable(c);
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&without), 0);

    h_daemon with;
    h_daemon_start(&with, &r, NULL); /* the harness gives it the client certificate */
    c = h_client(&with);
    cr_assert_eq(nc_set(c, NC_STR("ns"), NC_STR("k"), NC_STR("v"), 60000, 0), NC_OK, "%s",
                 nc_errmsg());
    expect_value(c, "k", "v");
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&with), 0);
    h_redis_cleanup(&r);
}

/* A daemon on a Redis whose certificate it must refuse: it logs `why`,
 * answers UNAVAILABLE, keeps retrying with backoff, and stops cleanly. */
static void expect_refusal(const char *cert, const char *key, const char *ca, const char *why)
{
    h_redis r;
    h_redis_start_tls(&r, &certs, cert, key, 1, 0);
    h_daemon d;
    h_daemon_start(&d, NULL, "--redis", r.url, "--redis-tls-ca-file", ca, "--redis-timeout",
                   "500ms", NULL);
    nc_client *c = h_client(&d);
    expect_log(&d, why);
    expect_get_unavailable(c);
    char *out = NULL;
    size_t len;
    cr_assert_eq(h_cli(&d, NULL, 0, &out, &len, NULL, "ping", NULL), 0);
    cr_expect_not_null(strstr(out, why), "ping tells why: %s", out);
    free(out);
    h_sleep_ms(1500); /* retries, with backoff: a handful, not hundreds */
    int tries = count_in_log(&d, why);
    cr_expect(tries >= 1 && tries < 40, "%d refusals logged in 1.5 s", tries);
    nc_close(c);
    int64_t t0 = h_now_ms();
    cr_expect_eq(h_daemon_stop(&d), 0);
    cr_expect_lt(h_now_ms() - t0, 3000, "the daemon stops at once");
    h_redis_cleanup(&r);
}

Test(tls, a_certificate_from_another_ca_is_refused_and_said_so)
{
    expect_refusal(certs.server, certs.server_key, certs.other_ca,
                   "TLS: the server's certificate is not signed by a trusted CA "
                   "(redis_tls_ca_file)");
}

Test(tls, a_certificate_for_another_name_is_refused_and_said_so)
{
    expect_refusal(certs.wrong, certs.wrong_key, certs.ca,
                   "TLS: the server's certificate is not for \"127.0.0.1\"");
}

Test(tls, an_expired_certificate_is_refused_and_said_so)
{
    expect_refusal(certs.expired, certs.expired_key, certs.ca,
                   "TLS: the server's certificate has expired");
}

Test(tls, a_server_that_never_answers_the_handshake_times_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* listens, never accepts, never speaks */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 64), 0);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    char url[64];
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d", ntohs(a.sin_port));
    h_daemon d;
    h_daemon_start(&d, NULL, "--redis", url, "--redis-tls-ca-file", certs.ca, "--redis-timeout",
                   "300ms", NULL);
    nc_client *c = h_client(&d);
    expect_log(&d, "TLS handshake timed out");
    expect_get_unavailable(c);
    nc_close(c);
    int64_t t0 = h_now_ms();
    cr_expect_eq(h_daemon_stop(&d), 0);
    cr_expect_lt(h_now_ms() - t0, 3000, "the daemon stops at once");
    close(fd);
}

/* A server that answers every connection with the header of a 16 KiB TLS
 * handshake record, then its body a byte every 50 ms: no single read
 * waits long, the handshake never ends. */
typedef struct trickler {
    int fd;
    atomic_int stop;
} trickler;

static void *trickle_main(void *arg)
{
    trickler *t = arg;
    static const unsigned char header[] = {0x16, 0x03, 0x03, 0x40, 0x00};
    int conns[64], sent[64], n = 0;
    while (!atomic_load(&t->stop)) {
        int c;
        while (n < 64 && (c = accept(t->fd, NULL, NULL)) >= 0)
            conns[n] = c, sent[n++] = 0;
        for (int i = 0; i < n; i++) {
            unsigned char b = sent[i] < (int)sizeof header ? header[sent[i]] : 'A';
            if (send(conns[i], &b, 1, MSG_NOSIGNAL) == 1)
                sent[i]++;
        }
        h_sleep_ms(50);
    }
    for (int i = 0; i < n; i++)
        close(conns[i]);
    return NULL;
}

Test(tls, a_handshake_is_bounded_in_all_not_per_read)
{
    trickler t = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(t.fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(t.fd, 64), 0);
    getsockname(t.fd, (struct sockaddr *)&a, &alen);
    fcntl(t.fd, F_SETFL, fcntl(t.fd, F_GETFL) | O_NONBLOCK);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, trickle_main, &t), 0);
    char url[64];
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d", ntohs(a.sin_port));
    h_daemon d;
    h_daemon_start(&d, NULL, "--redis", url, "--redis-tls-ca-file", certs.ca, "--redis-timeout",
                   "300ms", NULL);
    nc_client *c = h_client(&d);
    expect_log(&d, "TLS handshake timed out");
    expect_get_unavailable(c);
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);
    atomic_store(&t.stop, 1);
    pthread_join(th, NULL);
    close(t.fd);
}

Test(tls, verify_ca_skips_the_name_and_verify_none_skips_everything_with_a_warning)
{
    h_redis r;
    h_redis_start_tls(&r, &certs, certs.wrong, certs.wrong_key, 1, 0);
    h_daemon d;
    h_daemon_start(&d, &r, "--redis-tls-verify", "ca", NULL);
    nc_client *c = h_client(&d);
    cr_expect_eq(set_until_ok(c, "k", "v", 5000), NC_OK, "%s", nc_errmsg());
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);

    h_daemon_start(&d, &r, "--redis-tls-verify", "none", "--redis-tls-ca-file", certs.other_ca,
                   NULL);
    c = h_client(&d);
    cr_expect_eq(set_until_ok(c, "k", "v", 5000), NC_OK, "%s", nc_errmsg());
    expect_log(&d, "warn  redis_tls_verify = none: Redis's certificate is not checked");
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);
    h_redis_cleanup(&r);
}

/* Copies file `from` over `to` (a rotation writes the new file in place). */
static void copy_file(const char *from, const char *to)
{
    size_t len;
    char *text = h_read_file(from, &len);
    cr_assert_not_null(text, "%s", from);
    FILE *f = fopen(to, "wb");
    cr_assert_not_null(f, "%s", to);
    fwrite(text, 1, len, f);
    fclose(f);
    free(text);
}

Test(tls, sighup_reads_replaced_certificate_files_and_new_connections_use_them)
{
    h_redis r;
    h_redis_start_tls(&r, &certs, certs.server, certs.server_key, 1, 0);
    char ca[300];
    snprintf(ca, sizeof ca, "%s/rotating-ca.crt", certs.dir);
    copy_file(certs.ca, ca);
    h_daemon d;
    h_daemon_start(&d, &r, "--redis-tls-ca-file", ca, NULL);
    nc_client *c = h_client(&d);
    cr_assert_eq(set_until_ok(c, "k", "v1", 5000), NC_OK);

    /* Redis restarts with a certificate of another CA (a restart: its
     * session tickets would let old sessions resume); the daemon's file
     * gets that CA, but it holds the old one until SIGHUP. */
    h_redis_stop(&r, 1);
    snprintf(r.tls_cert, sizeof r.tls_cert, "%s", certs.other_server);
    snprintf(r.tls_key, sizeof r.tls_key, "%s", certs.other_server_key);
    copy_file(certs.other_ca, ca);
    h_redis_restart(&r);
    expect_log(&d, "not signed by a trusted CA");
    cr_expect_neq(nc_set(c, NC_STR("ns"), NC_STR("k"), NC_STR("v2"), 60000, 1000), NC_OK,
                  "the old CA still refuses the new certificate");

    kill(d.pid, SIGHUP);
    expect_log(&d, "SIGHUP: TLS: CA and client certificate files read again");
    cr_expect_eq(set_until_ok(c, "k", "v3", 8000), NC_OK, "after SIGHUP: %s", nc_errmsg());
    expect_value(c, "k", "v3");

    /* A file that does not parse keeps the context in use. */
    FILE *f = fopen(ca, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    kill(d.pid, SIGHUP);
    expect_log(&d, "new connections to Redis keep the old certificates");
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);
    h_redis_cleanup(&r);
}

/* Writes text to path. */
static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* redis_tls_server_name and redis_tls_verify change on SIGHUP too: a
 * certificate that names the service, not the host, is taken once the
 * config file names it. */
Test(tls, sighup_takes_a_new_server_name_and_verify_mode)
{
    h_redis r;
    h_redis_start_tls(&r, &certs, certs.wrong, certs.wrong_key, 1, 0); /* for other.example */
    char conf[300];
    snprintf(conf, sizeof conf, "%s/name.conf", certs.dir);
    write_file(conf, "# the host's name is checked\n");
    h_daemon d;
    h_daemon_start(&d, NULL, "--redis", r.url, "--redis-tls-ca-file", certs.ca, "--config", conf,
                   "--redis-timeout", "500ms", NULL);
    nc_client *c = h_client(&d);
    expect_log(&d, "TLS: the server's certificate is not for \"127.0.0.1\"");
    expect_get_unavailable(c);

    write_file(conf, "redis_tls_server_name = other.example\n");
    kill(d.pid, SIGHUP);
    expect_log(&d, "redis_tls_server_name and redis_tls_verify as they are now");
    cr_expect_eq(set_until_ok(c, "k", "v1", 8000), NC_OK, "after SIGHUP: %s", nc_errmsg());

    /* and verify = none warns when a SIGHUP sets it, as at start */
    write_file(conf, "redis_tls_verify = none\n");
    kill(d.pid, SIGHUP);
    expect_log(&d, "warn  redis_tls_verify = none: Redis's certificate is not checked");
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);
    h_redis_cleanup(&r);
}

Test(tls, redis_killed_and_restarted_under_tls_is_reconnected_resuming_the_session)
{
    h_redis r;
    h_redis_start_tls(&r, &certs, certs.server, certs.server_key, 1, 0);
    h_daemon d;
    h_daemon_start(&d, &r, NULL);
    nc_client *c = h_client(&d);
    cr_assert_eq(set_until_ok(c, "k", "v1", 5000), NC_OK);

    /* A dropped connection comes back with the session it had. */
    free(h_redis_cmd(&r, "CLIENT", "KILL", "TYPE", "normal", NULL));
    cr_expect_eq(set_until_ok(c, "k", "v2", 5000), NC_OK, "%s", nc_errmsg());
    cr_expect(log_says(&d, "TLS session resumed", 3000), "no session was resumed:\n%s",
              h_read_file(d.log, NULL));

    h_redis_stop(&r, 1);
    cr_expect_eq(nc_set(c, NC_STR("ns"), NC_STR("k"), NC_STR("x"), 60000, 2000), NC_EUNAVAILABLE);
    h_redis_restart(&r);
    cr_expect_eq(set_until_ok(c, "k", "v3", 10000), NC_OK, "after the restart: %s", nc_errmsg());
    expect_value(c, "k", "v3");
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);
    h_redis_cleanup(&r);
}

/* ---- Redis Cluster over TLS ------------------------------------------------ */

#define CLUSTER_NODES 3

/* Starts a TLS-only cluster node (tls-cluster: the bus is TLS too). */
static pid_t start_cluster_node(int port, char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/nc-test-tlscluster-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char p[16], bus[16], log[300];
    snprintf(p, sizeof p, "%d", port);
    snprintf(bus, sizeof bus, "%d", h_free_port());
    snprintf(log, sizeof log, "%s/redis.log", dir);
    char *argv[] = {"redis-server", "--port", "0", "--tls-port", p, "--bind", "127.0.0.1",
                    "--tls-cert-file", certs.server, "--tls-key-file", certs.server_key,
                    "--tls-ca-cert-file", certs.ca, "--tls-auth-clients", "no", "--tls-cluster",
                    "yes", "--tls-replication", "yes", "--cluster-enabled", "yes",
                    "--cluster-port", bus, "--dir", dir, "--save", "", "--appendonly", "no",
                    NULL};
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid = h_spawn(argv, -1, fd, fd);
    close(fd);
    return pid;
}

Test(tls, a_cluster_over_tls_is_reached_at_the_tls_ports_it_announces)
{
    h_redis node[CLUSTER_NODES]; /* for h_redis_cmd(): TLS, one port each */
    pid_t pid[CLUSTER_NODES];
    char dir[CLUSTER_NODES][64], addr[CLUSTER_NODES][32], url[128] = "clusters://";
    for (int i = 0; i < CLUSTER_NODES; i++) {
        memset(&node[i], 0, sizeof node[i]);
        node[i].port = node[i].tls_port = h_free_port();
        node[i].tls_only = 1;
        pid[i] = start_cluster_node(node[i].port, dir[i], sizeof dir[i]);
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", node[i].port);
    }
    for (int i = 0; i < CLUSTER_NODES; i++) {
        char *pong = NULL;
        for (int t = 0; t < 200 && (pong == NULL || strcmp(pong, "PONG") != 0); t++) {
            free(pong);
            h_sleep_ms(20);
            pong = h_redis_cmd(&node[i], "PING", NULL);
        }
        cr_assert_str_eq(pong, "PONG", "node %d: see %s/redis.log", i, dir[i]);
        free(pong);
    }
    char *argv[] = {"redis-cli", "--tls", "--insecure", "--cluster", "create", addr[0], addr[1],
                    addr[2], "--cluster-yes", NULL};
    cr_assert_eq(h_run(argv, NULL, 0, NULL, NULL, NULL), 0, "redis-cli --cluster create");
    for (int i = 0; i < CLUSTER_NODES; i++) {
        int ok = 0;
        for (int t = 0; t < 250 && !ok; t++) {
            char *info = h_redis_cmd(&node[i], "CLUSTER", "INFO", NULL);
            ok = strstr(info, "cluster_state:ok") != NULL;
            free(info);
            if (!ok)
                h_sleep_ms(20);
        }
        cr_assert(ok, "node %d never saw the cluster ok", i);
    }

    /* Given one node, the daemons find the others at their TLS ports:
     * there are no plain ones. */
    strcat(url, addr[0]);
    h_daemon a, b;
    h_daemon_start(&a, NULL, "--redis", url, "--redis-tls-ca-file", certs.ca, NULL);
    h_daemon_start(&b, NULL, "--redis", url, "--redis-tls-ca-file", certs.ca, NULL);
    nc_client *ca = h_client(&a), *cb = h_client(&b);
    for (int i = 0; i < 30; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_eq(set_until_ok(ca, key, "v1", 5000), NC_OK, "%s: %s", key, nc_errmsg());
        expect_value(cb, key, "v1");
    }
    for (int i = 1; i < CLUSTER_NODES; i++) {
        char want[64];
        snprintf(want, sizeof want, "connected to redis %s", addr[i]);
        expect_log(&a, want);
    }
    nc_close(ca);
    nc_close(cb);
    cr_expect_eq(h_daemon_stop(&a), 0);
    cr_expect_eq(h_daemon_stop(&b), 0);
    for (int i = 0; i < CLUSTER_NODES; i++) {
        kill(pid[i], SIGKILL);
        waitpid(pid[i], NULL, 0);
        char *rm[] = {"rm", "-rf", dir[i], NULL};
        h_run(rm, NULL, 0, NULL, NULL, NULL);
    }
}

Test(tls, a_url_with_a_user_logs_in_as_that_acl_user)
{
    h_redis r;
    h_redis_start_tls(&r, &certs, certs.server, certs.server_key, 1, 0);
    char *ok = h_redis_cmd(&r, "ACL", "SETUSER", "cache", "on", ">s3cret", "~*", "&*", "+@all",
                           NULL);
    cr_assert_str_eq(ok, "OK");
    free(ok);
    char url[128];
    snprintf(url, sizeof url, "rediss://cache:s3cret@127.0.0.1:%d", r.tls_port);
    h_daemon d;
    h_daemon_start(&d, NULL, "--redis", url, "--redis-tls-ca-file", certs.ca, NULL);
    nc_client *c = h_client(&d);
    cr_assert_eq(set_until_ok(c, "k", "v", 5000), NC_OK, "%s", nc_errmsg());
    char *clients = h_redis_cmd(&r, "CLIENT", "LIST", NULL);
    cr_expect_not_null(strstr(clients, "user=cache"), "%s", clients);
    free(clients);
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);

    snprintf(url, sizeof url, "rediss://cache:wrong@127.0.0.1:%d", r.tls_port);
    h_daemon_start(&d, NULL, "--redis", url, "--redis-tls-ca-file", certs.ca, NULL);
    expect_log(&d, "AUTH failed: WRONGPASS");
    cr_expect_eq(h_daemon_stop(&d), 0);
    h_redis_cleanup(&r);
}

/* ---- Sentinel over TLS ------------------------------------------------------ */

/* A Sentinel on TLS only, in its own directory, monitoring mymaster at
 * master_port (a TLS port) with quorum 1, down after 1 s, into *s; waits
 * until it names that master. */
typedef struct tls_sentinel {
    pid_t pid;
    int port;
    char dir[64];
} tls_sentinel;

static int tls_sentinel_names(const tls_sentinel *s, const char *want, int ms);

static void tls_sentinel_start(tls_sentinel *s, int master_port)
{
    char conf[128], log[128];
    snprintf(s->dir, sizeof s->dir, "/tmp/nc-test-tlssentinel-XXXXXX");
    cr_assert_not_null(mkdtemp(s->dir));
    snprintf(conf, sizeof conf, "%s/sentinel.conf", s->dir);
    snprintf(log, sizeof log, "%s/sentinel.log", s->dir);
    s->port = h_free_port();
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "port 0\ntls-port %d\nbind 127.0.0.1\ndir %s\n"
            "tls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n"
            "tls-auth-clients no\ntls-replication yes\n"
            "sentinel monitor mymaster 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            "sentinel failover-timeout mymaster 5000\n",
            s->port, s->dir, certs.server, certs.server_key, certs.ca, master_port);
    fclose(f);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    char *argv[] = {"redis-server", conf, "--sentinel", NULL};
    s->pid = h_spawn(argv, -1, fd, fd);
    close(fd);
    char want[16];
    snprintf(want, sizeof want, "%d", master_port);
    cr_assert(tls_sentinel_names(s, want, 4000), "the Sentinel does not name port %s", want);
}

/* Whether the Sentinel names a master whose address contains `want`
 * within ms. */
static int tls_sentinel_names(const tls_sentinel *s, const char *want, int ms)
{
    h_redis r = {.port = s->port, .tls_only = 1};
    for (int64_t until = h_now_ms() + ms; h_now_ms() < until; h_sleep_ms(20)) {
        char *addr = h_redis_cmd(&r, "SENTINEL", "get-master-addr-by-name", "mymaster", NULL);
        int ok = addr != NULL && strstr(addr, "127.0.0.1") != NULL && strstr(addr, want) != NULL;
        free(addr);
        if (ok)
            return 1;
    }
    return 0;
}

static void tls_sentinel_stop(tls_sentinel *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    char *rm[] = {"rm", "-rf", s->dir, NULL};
    h_run(rm, NULL, 0, NULL, NULL, NULL);
}

Test(tls, sentinels_over_tls_name_the_master_and_the_daemon_reaches_it_over_tls)
{
    h_redis master;
    h_redis_start_tls(&master, &certs, certs.server, certs.server_key, 1, 0);
    tls_sentinel s;
    tls_sentinel_start(&s, master.tls_port);
    char url[128], want[96];
    snprintf(url, sizeof url, "sentinels://127.0.0.1:%d/mymaster", s.port);
    h_daemon d;
    h_daemon_start(&d, NULL, "--redis", url, "--redis-tls-ca-file", certs.ca, NULL);
    nc_client *c = h_client(&d);
    cr_assert_eq(set_until_ok(c, "k", "v", 8000), NC_OK, "%s", nc_errmsg());
    expect_value(c, "k", "v");
    snprintf(want, sizeof want, "connected to redis 127.0.0.1:%d (master mymaster)",
             master.tls_port);
    expect_log(&d, want);
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);
    tls_sentinel_stop(&s);
    h_redis_cleanup(&master);
}

/* A failover found through TLS Sentinels: the master killed, its TLS
 * replica promoted, the daemon writes to it over TLS. */
Test(tls, a_failover_through_tls_sentinels_moves_the_daemon_to_the_new_master)
{
    h_redis master, replica;
    h_redis_start_tls(&master, &certs, certs.server, certs.server_key, 1, 0);
    h_redis_start_tls(&replica, &certs, certs.server, certs.server_key, 1, 0);
    char port[16];
    snprintf(port, sizeof port, "%d", master.tls_port);
    free(h_redis_cmd(&replica, "CONFIG", "SET", "tls-replication", "yes", NULL));
    free(h_redis_cmd(&replica, "REPLICAOF", "127.0.0.1", port, NULL));
    int synced = 0;
    for (int i = 0; i < 40 && !synced; i++) {
        char *w = h_redis_cmd(&master, "WAIT", "1", "250", NULL);
        synced = strcmp(w, "1") == 0;
        free(w);
    }
    cr_assert(synced, "the replica did not sync over TLS within 10 s");
    tls_sentinel s;
    tls_sentinel_start(&s, master.tls_port);
    char url[128], want[96];
    snprintf(url, sizeof url, "sentinels://127.0.0.1:%d/mymaster", s.port);
    h_daemon d;
    h_daemon_start(&d, NULL, "--redis", url, "--redis-tls-ca-file", certs.ca, "--redis-timeout",
                   "500ms", NULL);
    nc_client *c = h_client(&d);
    cr_assert_eq(set_until_ok(c, "k", "v1", 8000), NC_OK, "%s", nc_errmsg());

    h_redis_stop(&master, 1);
    snprintf(want, sizeof want, "%d", replica.tls_port);
    cr_assert(tls_sentinel_names(&s, want, 30000), "no failover to the replica in 30 s");
    cr_expect_eq(set_until_ok(c, "k", "v2", 15000), NC_OK, "after the failover: %s",
                 nc_errmsg());
    expect_value(c, "k", "v2");
    snprintf(want, sizeof want, "connected to redis 127.0.0.1:%d (master mymaster)",
             replica.tls_port);
    expect_log(&d, want);
    nc_close(c);
    cr_expect_eq(h_daemon_stop(&d), 0);
    tls_sentinel_stop(&s);
    h_redis_cleanup(&replica);
    h_redis_cleanup(&master);
}
