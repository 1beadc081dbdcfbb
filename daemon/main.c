/* nearcached: glue. Parses the configuration, sets the parts up in order
 * (L1, Redis workers, service, subscriber, server, the near tiers' ring,
 * the metrics endpoint, systemd notification), waits for SIGTERM or
 * SIGINT, and tears them down in reverse, letting requests in flight
 * finish. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "explain.h"
#include "hitwarn.h"
#include "jobq.h"
#include "l1.h"
#include "l2tls.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "nstop.h"
#include "publish.h"
#include "ring.h"
#include "server.h"
#include "service.h"
#include "subscriber.h"
#include "units.h"

/* How long nng may take to close the server's socket at the stop, when every
 * reply is out: milliseconds, normally; past this it is stuck (server.c). */
#define SERVER_CLOSE_MS 1000

/* Shards: up to 16, but each must hold a few maximal values. */
static unsigned l1_shards(const config *cfg)
{
    unsigned n = 16;
    while (n > 1 && cfg->l1_max_memory / n < 4 * cfg->max_value_size)
        n /= 2;
    return n;
}

/* Blocks the stop signals, and SIGHUP, in every thread (threads inherit the
 * mask), so that only sigwait() in main sees them. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* What the systemd status line is made of; none of it owned. */
struct status_parts {
    const config *cfg;
    jobq *q;
    service *svc;
    server *srv;
};

static void status_line(void *arg, char *buf, size_t len)
{
    struct status_parts *p = arg;
    coh *c = service_coherence(p->svc);
    snprintf(buf, len, "serving on %s; redis: %zu of %llu connections up; subscription: %s; L1: %s",
             p->cfg->listen, jobq_connected(p->q), (unsigned long long)p->cfg->redis_connections,
             coh_subscribed_now(c) ? "up" : "down",
             coh_serving(c, units_now_ms()) ? "serving" : "not serving (catching up)");
}

static uint64_t loop_progress(void *arg)
{
    return server_progress(((struct status_parts *)arg)->srv);
}

static int loop_probe(void *arg)
{
    return server_probe(((struct status_parts *)arg)->srv);
}

/* Sets the socket file's group from socket_group. Given explicitly, the
 * group must exist (config_parse_args() checked) and the daemon must be
 * allowed to use it. The default one may be missing, or not the daemon's
 * to give: then the socket keeps the daemon's own group, which is logged. */
static void socket_group(const config *cfg, server_options *so)
{
    if (strncmp(cfg->listen, "ipc://", 6) != 0)
        return;
    if (config_socket_gid(cfg, &so->socket_gid))
        so->set_group =
            config_given(cfg, "socket_group") ? SERVER_GROUP_REQUIRED : SERVER_GROUP_TRY;
    else
        log_warn("no group \"%s\" on this system: the socket %s keeps the daemon's own group "
                 "(%ld) with mode %04o; create the group and add the client users to it "
                 "(docs/operations.md)",
                 cfg->socket_group, cfg->listen + 6, (long)getegid(), cfg->socket_mode);
}

/* The daemon's parts, in the order they are set up. */
typedef struct parts {
    stats st;
    l1 *cache;
    jobq *q;
    service *svc;
    subscriber *sub;
    publisher *pub;
    server *srv;
    ring *ring; /* the near tiers' ring, or NULL */
    struct status_parts status;
    notify *sd;
    metrics *metrics; /* the HTTP endpoint, or NULL */
    hitwarn *hits;    /* the namespaces' hit ratio check, or NULL */
} parts;

static void metrics_gauges(void *svc, stats_gauges *g)
{
    admin_gauges(svc, g);
}

static int metrics_ready(void *svc, char *why, size_t len)
{
    return admin_ready(svc, why, len);
}

/* Serves metrics_listen, if set. Returns 0, or -1 with what failed logged. */
static int start_metrics(parts *p, const config *cfg)
{
    char err[512];
    if (cfg->metrics_listen[0] == '\0')
        return 0;
    metrics_source src = {&p->st, metrics_gauges, metrics_ready, p->svc};
    if (metrics_create(&p->metrics, cfg->metrics_listen, &src, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    log_info("metrics on http://%s/metrics (health: /healthz, /readyz)", cfg->metrics_listen);
    return 0;
}

/* Sets the parts up in order. Returns 0, or -1 with what failed logged
 * (the parts made so far are left for teardown()). */
static int setup(parts *p, const config *cfg, const config_redis_url *url)
{
    char err[512] = "", path[600];
    int rv;
    if (cfg->namespace_metrics > 0 &&
        (rv = nstop_create(&p->st.namespaces, cfg->namespace_metrics)) != 0) {
        log_error("cannot allocate the namespaces' counters: %s", strerror(rv));
        return -1;
    }
    if (p->st.namespaces != NULL && (rv = hitwarn_create(&p->hits, cfg->namespace_metrics)) != 0) {
        log_error("cannot allocate the hit ratio check: %s", strerror(rv));
        return -1;
    }
    if ((rv = l1_create(&p->cache, cfg->l1_max_memory, l1_shards(cfg))) != 0) {
        log_error("cannot allocate the L1 store: %s", strerror(rv));
        return -1;
    }
    if ((rv = jobq_create(&p->q, url, cfg->redis_connections, config_redis_capacity(cfg),
                          cfg->redis_timeout_ms, &p->st.redis)) != 0) {
        log_error("cannot start the redis workers: %s", strerror(rv));
        return -1;
    }
    if (service_create(&p->svc, cfg, url, p->cache, p->q, &p->st, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    pub_times times = pub_timing(cfg);
    coh_set_silence(service_coherence(p->svc), times.silence_ms);
    if ((rv = pub_create(&p->pub, cfg, url, cfg->prefix, service_node_id(p->svc),
                         (uint32_t)cfg->redis_connections, service_coherence(p->svc), p->q,
                         &p->st)) != 0) {
        log_error("cannot start the publisher: %s", strerror(rv));
        return -1;
    }
    service_set_publisher(p->svc, p->pub);
    if ((rv = sub_create(&p->sub, cfg, url, cfg->prefix, service_node_id(p->svc),
                         service_coherence(p->svc))) != 0) {
        log_error("cannot start the subscriber: %s", strerror(rv));
        return -1;
    }
    server_options so = {
        .url = cfg->listen,
        .contexts = cfg->contexts,
        .recv_max = config_max_request(cfg),
        .default_timeout_ms = cfg->request_timeout_ms,
        .handler = service_handle,
        .handler_arg = p->svc,
        .stats = &p->st,
        .socket_mode = cfg->socket_mode,
    };
    socket_group(cfg, &so);
    if (server_create(&p->srv, &so, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    /* The ring goes beside the socket, once the socket is there, readable
     * by whoever may use the socket (its mode without the write bits). */
    if (config_near_ring(cfg, path, sizeof path) &&
        (rv = ring_open(&p->ring, path, cfg->near_ring_slots, (cfg->socket_mode & 0444) | 0600,
                        so.set_group != SERVER_GROUP_KEEP ? so.socket_gid : (gid_t)-1, err,
                        sizeof err)) != 0) {
        if (rv == ENOENT || rv == EACCES || rv == EPERM || rv == ENOSPC || rv == EROFS)
            explain_create("the near tiers' ring", path, "near_ring", rv,
                           "set near_ring = off to run without near tiers", err, sizeof err);
        log_error("%s", err);
        return -1;
    }
    service_set_ring(p->svc, p->ring);
    if (start_metrics(p, cfg) != 0)
        return -1;
    p->status = (struct status_parts){cfg, p->q, p->svc, p->srv};
    notify_hooks hooks = {loop_progress, loop_probe, status_line, &p->status};
    if (notify_create(&p->sd, &hooks) != 0)
        log_warn("cannot start the systemd notification thread; systemd is told nothing");
    return 0;
}

/* Tears the parts down in reverse order of setup(), in two passes: first
 * every thread that makes calls stops (the subscriber; the service's read
 * lane and lease waits, whose calls go to the workers or are answered; the
 * workers, which answer every call still queued, through the server's
 * contexts), then the parts are freed; the ring last, when nothing can
 * publish to it any more. Accepts what setup() left half made. With
 * `drained` (the drain left no call anywhere) the server closes first, so
 * that the clients whose requests came during the drain see their
 * connections closed at once, not after the slower parts stop. Returns 0,
 * or -1 when nng did not close the socket within SERVER_CLOSE_MS: then
 * only the ring is closed, and the caller ends the process. */
static int teardown(parts *p, int drained)
{
    notify_destroy(p->sd);
    metrics_destroy(p->metrics); /* before the service: it reads the service's parts */
    if (drained && server_close(p->srv, SERVER_CLOSE_MS) != 0) {
        ring_close(p->ring);
        return -1;
    }
    if (drained)
        p->srv = NULL;
    sub_destroy(p->sub);
    service_quiesce(p->svc);
    jobq_stop(p->q);
    pub_destroy(p->pub); /* after the workers: their last writes' batch, then the bye */
    jobq_destroy(p->q);  /* after the publisher, which asks it whether Redis is up */
    if (server_close(p->srv, SERVER_CLOSE_MS) != 0) {
        ring_close(p->ring);
        return -1;
    }
    service_destroy(p->svc);
    l1_destroy(p->cache);
    ring_close(p->ring); /* poisoned and removed: near tiers stop at once */
    hitwarn_destroy(p->hits);
    nstop_destroy(p->st.namespaces);
    return 0;
}

/* Waits for a signal of `set`, checking the hit ratios every
 * hit_ratio_interval meanwhile. Returns the signal. */
static int next_signal(parts *p, const config *cfg, const sigset_t *set, int64_t *next_check)
{
    for (;;) {
        int64_t left = *next_check - units_now_ms();
        if (left <= 0) {
            hitwarn_log(p->hits, p->st.namespaces, cfg, cfg->hit_ratio_interval_ms);
            *next_check = units_now_ms() + cfg->hit_ratio_interval_ms;
            continue;
        }
        struct timespec ts = {left / 1000, (left % 1000) * 1000000};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0)
            return sig;
    }
}

/* When no Redis connection came up within redis_timeout of the start,
 * says what that means and what to do, once (the connections' own lines
 * say why each failed, and they keep retrying). */
static void redis_hint(parts *p, const config *cfg, const config_redis_url *url)
{
    for (int64_t until = units_now_ms() + cfg->redis_timeout_ms;
         jobq_connected(p->q) == 0 && units_now_ms() < until;)
        usleep(20000);
    char where[300];
    if (url->is_unix)
        snprintf(where, sizeof where, "unix://%s", url->host);
    else if (url->nsentinels > 0)
        snprintf(where, sizeof where, "master %s (through its Sentinels)", url->master);
    else
        snprintf(where, sizeof where, "%s:%d", url->host, url->port);
    if (jobq_connected(p->q) == 0)
        log_warn("redis at %s is not reachable: the daemon answers Pings, and Gets and writes "
                 "UNAVAILABLE, until it is (it keeps retrying); start redis-server there, or set "
                 "redis (--redis redis://HOST:PORT) to where it runs",
                 where);
}

/* The command line, for re-reading the configuration on SIGHUP. */
struct cmdline {
    int argc;
    char **argv;
};

/* Says which acl rules are in effect, after `when`. */
static void log_acl(parts *p, const char *when)
{
    size_t n = service_acl_rules(p->svc);
    if (n > 0)
        log_info("%sacl: %zu rules; what they do not grant is denied", when, n);
    else
        log_info("%sacl: no rules; every peer that can open the socket may do everything", when);
}

/* SIGHUP: the configuration read again (config_reload()), then the acl
 * rules rebuilt from it, their user and group names resolved anew. */
static void reload(parts *p, config *cfg, const struct cmdline *cl, uint64_t request_cap,
                   l2tls *tls)
{
    char err[512];
    config_reload(cfg, cl->argc, cl->argv, request_cap);
    if (tls != NULL && l2tls_reload(tls, cfg, err, sizeof err) != 0)
        log_error("SIGHUP: TLS: %s; new connections to Redis keep the old certificates", err);
    else if (tls != NULL)
        log_info("SIGHUP: TLS: CA and client certificate files read again; new connections to "
                 "Redis use them, and redis_tls_server_name and redis_tls_verify as they are now");
    if (service_reload_acl(p->svc, cfg->acl, err, sizeof err) != 0)
        log_error("SIGHUP: acl: %s; the acl rules stay as they were", err);
    else
        log_acl(p, "SIGHUP: ");
}

static int run(config *cfg, const config_redis_url *url, const sigset_t *stop,
               const struct cmdline *cl)
{
    parts p = {0};
    int code = 1;
    size_t left = 1; /* calls the drain left; none drained yet */
    if (setup(&p, cfg, url) != 0)
        goto out;
    log_info("nearcached %s listening on %s (node %s, redis %s%s, l1 %" PRIu64
             " bytes in %u shards)",
             NC_VERSION, cfg->listen, service_node_id(p.svc),
             url->nsentinels > 0 ? "master " : "", url->nsentinels > 0 ? url->master : url->host,
             cfg->l1_max_memory, l1_shards(cfg));
    if (service_acl_rules(p.svc) > 0)
        log_acl(&p, "");
    redis_hint(&p, cfg, url);
    int sig = 0;
    int64_t next_check = units_now_ms() + cfg->hit_ratio_interval_ms;
    uint64_t request_cap = config_max_request(cfg); /* the socket's, from now on */
    while ((sig = next_signal(&p, cfg, stop, &next_check)) == SIGHUP)
        reload(&p, cfg, cl, request_cap, url->tls_ctx);
    log_info("%s: stopping; finishing requests in flight", strsignal(sig));
    notify_stopping(p.sd, "stopping: finishing requests in flight");
    metrics_stopping(p.metrics);
    if (p.ring != NULL)
        ring_serve_until(p.ring, 0); /* near tiers ask the daemon from now on */
    left = server_drain(p.srv, cfg->shutdown_timeout_ms);
    if (left > 0)
        log_warn("%zu requests still in flight after shutdown_timeout", left);
    code = 0;
out:
    if (teardown(&p, left == 0) != 0) {
        /* Safe to leave now: the drain sent every reply that will be sent,
         * the workers answered every call they held, each write that was
         * acknowledged is in Redis, and the near tiers stopped trusting the
         * ring at the drain's start (it is removed too). */
        log_warn("nng did not close the socket within %d ms (nng 1.5.2 can hang there for good "
                 "after closing a connection mid-message); exiting without it",
                 SERVER_CLOSE_MS);
        if (code == 0)
            log_info("stopped");
        _exit(code);
    }
    if (code == 0)
        log_info("stopped");
    return code;
}

/* Values up to max_value_size (1 MiB by default) churn through L1. glibc
 * mmaps a block above M_MMAP_THRESHOLD and unmaps it when freed, but by
 * default it raises that threshold to the size of every mmapped block freed:
 * after the first 1 MiB value, 1 MiB blocks come from the threads' heaps,
 * whose holes stay resident. RSS then reached 85 MiB for a 32 MiB L1 (test
 * `churn`); a fixed threshold keeps it at 38. */
static void heap_setup(void)
{
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

int main(int argc, char **argv)
{
    heap_setup();
    config cfg;
    config_redis_url url;
    char err[1024];
    config_defaults(&cfg);
    int rv = config_parse_args(&cfg, argc, argv, stdout, err, sizeof err);
    if (rv == 1)
        return 0;
    if (rv == 0 && config_redis(&cfg, &url, err, sizeof err) != 0)
        rv = -1;
    if (rv != 0) {
        fprintf(stderr, "nearcached: %s\n", err);
        return 2;
    }
    log_set_level(cfg.log_level);
    log_set_json(config_log_json(&cfg));
    sigset_t stop;
    block_signals(&stop);
    if (url.tls && l2tls_create(&url.tls_ctx, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "nearcached: %s\n", err);
        return 2;
    }
    struct cmdline cl = {argc, argv};
    rv = run(&cfg, &url, &stop, &cl);
    l2tls_destroy(url.tls_ctx);
    return rv;
}
