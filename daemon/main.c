/* nearcached: glue. Parses the configuration, sets the parts up in order
 * (L1, Redis workers, service, server), waits for SIGTERM or SIGINT, and
 * tears them down in reverse, letting requests in flight finish. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jobq.h"
#include "l1.h"
#include "log.h"
#include "ring.h"
#include "server.h"
#include "service.h"
#include "subscriber.h"

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

/* The daemon's parts, in the order they are set up. */
typedef struct parts {
    stats st;
    ring *ring; /* the near tiers' ring, or NULL */
    l1 *cache;
    jobq *q;
    service *svc;
    subscriber *sub;
    server *srv;
} parts;

/* Sets the parts up in order. Returns 0, or -1 with what failed logged
 * (the parts made so far are left for teardown()). */
static int setup(parts *p, const config *cfg, const config_redis_url *url)
{
    char err[512] = "", path[600];
    int rv;
    if ((rv = l1_create(&p->cache, cfg->l1_max_memory, l1_shards(cfg))) != 0) {
        log_error("cannot allocate the L1 store: %s", strerror(rv));
        return -1;
    }
    if ((rv = jobq_create(&p->q, url, cfg->redis_connections, config_redis_capacity(cfg),
                          cfg->redis_timeout_ms)) != 0) {
        log_error("cannot start the redis workers: %s", strerror(rv));
        return -1;
    }
    if (service_create(&p->svc, cfg, url, p->cache, p->q, &p->st, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    if ((rv = sub_create(&p->sub, cfg, url, service_channel(p->svc), service_node_id(p->svc),
                         service_coherence(p->svc), p->q)) != 0) {
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
    };
    if (server_create(&p->srv, &so, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    /* The ring goes beside the socket, once the socket is there. */
    if (config_near_ring(cfg, path, sizeof path) &&
        ring_open(&p->ring, path, cfg->near_ring_slots, 0644, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    service_set_ring(p->svc, p->ring);
    return 0;
}

/* Tears the parts down in reverse order of setup(), in two passes: first
 * every thread that makes calls stops (the subscriber; the service's read
 * lane and lease waits, whose calls go to the workers or are answered; the
 * workers, which answer every call still queued, through the server's
 * contexts), then the parts are freed. Accepts what setup() left half made. */
static void teardown(parts *p)
{
    sub_destroy(p->sub);
    service_quiesce(p->svc);
    jobq_destroy(p->q);
    server_destroy(p->srv);
    service_destroy(p->svc);
    l1_destroy(p->cache);
    ring_close(p->ring); /* last, as every publisher has stopped: poisoned, removed */
}

static int run(const config *cfg, const config_redis_url *url, const sigset_t *stop)
{
    parts p = {0};
    int code = 1;
    if (setup(&p, cfg, url) != 0)
        goto out;
    log_info("nearcached %s listening on %s (node %s, redis %s, l1 %" PRIu64 " bytes in %u shards)",
             NC_VERSION, cfg->listen, service_node_id(p.svc), url->host, cfg->l1_max_memory,
             l1_shards(cfg));
    int sig = 0;
    while (sigwait(stop, &sig) == 0 && sig == SIGHUP)
        log_info("SIGHUP ignored: nearcached has nothing to reload (restart it to apply a "
                 "new config)");
    log_info("%s: stopping; finishing requests in flight", strsignal(sig));
    if (p.ring != NULL)
        ring_serve_until(p.ring, 0); /* near tiers ask the daemon from now on */
    size_t left = server_drain(p.srv, cfg->shutdown_timeout_ms);
    if (left > 0)
        log_warn("%zu requests still in flight after shutdown_timeout", left);
    code = 0;
out:
    teardown(&p);
    if (code == 0)
        log_info("stopped");
    return code;
}

int main(int argc, char **argv)
{
    config cfg;
    config_redis_url url;
    char err[1024];
    config_defaults(&cfg);
    int rv = config_parse_args(&cfg, argc, argv, stdout, err, sizeof err);
    if (rv == 1)
        return 0;
    if (rv == 0 && config_parse_redis_url(cfg.redis, &url, err, sizeof err) != 0)
        rv = -1;
    if (rv != 0) {
        fprintf(stderr, "nearcached: %s\n", err);
        return 2;
    }
    log_set_level(cfg.log_level);
    sigset_t stop;
    block_signals(&stop);
    return run(&cfg, &url, &stop);
}
