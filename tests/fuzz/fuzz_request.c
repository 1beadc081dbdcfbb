/* Fuzz target: the daemon's request path, whole, in one process: the
 * input is sent as a request over nng IPC to a real server (decode with
 * protobuf-c, validation, the method table, service_handle) over a real
 * L1 that serves (subscribed, caught up by its own heartbeat, a namespace
 * version known and entries in it), with Redis as a fake that is always
 * down (a closed loopback port: every method that needs it fails fast,
 * through the real error paths). Every request must get a reply that
 * decodes, within its deadline and a margin. The bytes a fake Redis would
 * answer are the script_reply and lane_reply targets' input. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "config.h"
#include "fuzz.h"
#include "jobq.h"
#include "l1.h"
#include "log.h"
#include "server.h"
#include "service.h"
#include "stats.h"
#include "units.h"

static config cfg;
static config_redis_url url;
static stats st;
static l1 *cache;
static jobq *q;
static service *svc;
static server *srv;
static nng_socket req;
static char path[128];

/* At exit: the REQ socket keeps the last request for a resend, so it is
 * closed (else LeakSanitizer reports that message); the socket file goes. */
static void finish(void)
{
    nng_close(req);
    unlink(path);
}

static void setup(void)
{
    char err[512];
    config_defaults(&cfg);
    snprintf(path, sizeof path, "/tmp/nc-fuzz-request-%d.sock", (int)getpid());
    snprintf(cfg.listen, sizeof cfg.listen, "ipc://%s", path);
    cfg.request_timeout_ms = 200;
    cfg.redis_timeout_ms = 100;
    log_set_level(CONFIG_LOG_ERROR);
    if (config_parse_redis_url("redis://127.0.0.1:1", &url, err, sizeof err) != 0 ||
        l1_create(&cache, 1 << 20, 4) != 0 ||
        jobq_create(&q, &url, 2, 64, cfg.redis_timeout_ms, &st.redis) != 0 ||
        service_create(&svc, &cfg, &url, cache, q, &st, err, sizeof err) != 0)
        abort();
    server_options so = {.url = cfg.listen,
                         .contexts = 8,
                         .recv_max = config_max_request(&cfg),
                         .default_timeout_ms = cfg.request_timeout_ms,
                         .handler = service_handle,
                         .handler_arg = svc,
                         .stats = &st};
    if (server_create(&srv, &so, err, sizeof err) != 0 || nng_req0_open(&req) != 0 ||
        nng_dial(req, cfg.listen, NULL, 0) != 0)
        abort();
    nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 10000);
    atexit(finish);
    coh_subscribed(service_coherence(svc));
}

/* Keeps L1 serving: this node hears its own heartbeat (as the subscriber
 * would) and knows version 1 of "users", which holds two keys. */
static void keep_serving(void)
{
    coh *c = service_coherence(svc);
    pb_heartbeat hb = NEARCACHE__V1__HEARTBEAT__INIT;
    hb.sent_ms = units_now_ms();
    pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
    m.origin = (char *)service_node_id(svc);
    m.heartbeat = &hb;
    coh_apply(c, &m);
    coh_version_seen(c, "users", 5, 1);
    int64_t now = units_now_ms();
    l1_set(cache, "users:42", 8, "alice", 5, 1, now + 60000, now);
    l1_set(cache, "users:", 6, "", 0, 1, now + 60000, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv == NULL)
        setup();
    keep_serving();
    nng_msg *m;
    if (nng_msg_alloc(&m, size) != 0)
        abort();
    memcpy(nng_msg_body(m), data, size);
    if (nng_sendmsg(req, m, 0) != 0)
        abort();
    int rv = nng_recvmsg(req, &m, 0);
    if (rv != 0)
        fprintf(stderr, "no reply to a request of %zu bytes: %s\n", size, nng_strerror(rv));
    FUZZ_CHECK(rv == 0);
    pb_reply *r = codec_reply_unpack(nng_msg_body(m), nng_msg_len(m));
    FUZZ_CHECK(r != NULL);
    codec_reply_free(r);
    nng_msg_free(m);
    return 0;
}
