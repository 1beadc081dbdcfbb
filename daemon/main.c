/* nearcached: glue. Parses the configuration, sets the parts up in order
 * (L1, Redis workers, service, server, systemd notification), waits for
 * SIGTERM or SIGINT, and tears them down in reverse, letting requests in
 * flight finish. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "jobq.h"
#include "l1.h"
#include "log.h"
#include "notify.h"
#include "server.h"
#include "service.h"
#include "subscriber.h"
#include "units.h"

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

static int run(const config *cfg, const config_redis_url *url, const sigset_t *stop)
{
    stats st = {0};
    l1 *cache = NULL;
    jobq *q = NULL;
    service *svc = NULL;
    server *srv = NULL;
    subscriber *sub = NULL;
    notify *sd = NULL;
    char err[512] = "";
    int code = 1;

    if (l1_create(&cache, cfg->l1_max_memory, l1_shards(cfg)) != 0) {
        log_error("cannot allocate the L1 store");
        goto out;
    }
    size_t capacity = cfg->contexts - cfg->redis_connections - 16;
    if (jobq_create(&q, url, cfg->redis_connections, capacity, cfg->redis_timeout_ms) != 0) {
        log_error("cannot start the redis workers");
        goto out;
    }
    if (service_create(&svc, cfg, url, cache, q, &st) != 0)
        goto out;
    if (sub_start(&sub, cfg, url, service_channel(svc), service_node_id(svc),
                  service_coherence(svc), q) != 0) {
        log_error("cannot start the subscriber");
        goto out;
    }
    server_options so = {
        .url = cfg->listen,
        .contexts = cfg->contexts,
        .recv_max = config_max_request(cfg),
        .default_timeout_ms = cfg->request_timeout_ms,
        .handler = service_handle,
        .handler_arg = svc,
        .stats = &st,
        .socket_mode = cfg->socket_mode,
    };
    socket_group(cfg, &so);
    if (server_start(&srv, &so, err, sizeof err) != 0) {
        log_error("%s", err);
        goto out;
    }
    log_info("nearcached %s listening on %s (node %s, redis %s, l1 %" PRIu64 " bytes in %u shards)",
             NC_VERSION, cfg->listen, service_node_id(svc), url->host, cfg->l1_max_memory,
             l1_shards(cfg));
    struct status_parts parts = {cfg, q, svc, srv};
    notify_hooks hooks = {loop_progress, loop_probe, status_line, &parts};
    if (notify_start(&sd, &hooks) != 0)
        log_warn("cannot start the systemd notification thread; systemd is told nothing");
    int sig = 0;
    while (sigwait(stop, &sig) == 0 && sig == SIGHUP)
        log_info("SIGHUP ignored: nearcached has nothing to reload (restart it to apply a "
                 "new config)");
    log_info("%s: stopping; finishing requests in flight", strsignal(sig));
    notify_stopping(sd, "stopping: finishing requests in flight");
    size_t left = server_drain(srv, cfg->shutdown_timeout_ms);
    if (left > 0)
        log_warn("%zu requests still in flight after shutdown_timeout", left);
    code = 0;
out:
    notify_stop(sd);
    sub_stop(sub);
    service_quiesce(svc); /* answers the Gets parked for a lease */
    jobq_destroy(q);      /* answers every call still queued */
    server_free(srv);
    service_free(svc);
    l1_destroy(cache);
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
    return run(&cfg, &url, &stop);
}
