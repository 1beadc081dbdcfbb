/* libnearcache; see nearcache.h. Each call takes an (nng context, aio)
 * pair of the shared REQ socket from the client's pool, sends one encoded
 * Request, waits for the Reply whose id is the Request's, and puts the pair
 * back. Errors are recorded per thread. */
#include "nearcache.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "codec.h"
#include "near.h"
#include "ring.h"
#include "units.h"
#include "wire.h"

#define DEFAULT_URL         "ipc:///run/nearcache/nearcached.sock"
#define DEFAULT_TIMEOUT_MS  1000
#define DEFAULT_NEAR_TTL_MS 60000

static _Thread_local int tl_status;
static _Thread_local char tl_msg[1024];
static _Thread_local int tl_flushing; /* this thread sends the pending invalidations */

/* Records a failure for nc_errmsg() and returns err. */
int client_fail(int err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    tl_status = status;
    return err;
}

const char *nc_default_url(void)
{
    const char *env = getenv("NEARCACHE_URL");
    return env != NULL && env[0] != '\0' ? env : DEFAULT_URL;
}

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    nc_client *c = arg;
    atomic_fetch_add(&c->conn.pipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
    if (ev == NNG_PIPE_EV_ADD_POST && c->pending != NULL && pending_count(c->pending) > 0)
        worker_wake(c); /* the kept invalidations go first */
}

int nc_open_ex(nc_client **out, const char *url, const nc_open_opts *o)
{
    static const nc_open_opts none = {0};
    if (o == NULL)
        o = &none;
    if (url == NULL)
        url = nc_default_url();
    nc_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return client_fail(NC_ENOMEM, 0, "out of memory");
    snprintf(c->url, sizeof c->url, "%s", url);
    atomic_init(&c->timeout_ms, DEFAULT_TIMEOUT_MS);
    atomic_init(&c->next_id, 1);
    int rv = nng_req0_open(&c->sock);
    if (rv != 0) {
        free(c);
        return client_fail(NC_ENOMEM, 0, "cannot open a REQ socket: %s", nng_strerror(rv));
    }
    if (ctxpool_init(&c->pool, c->sock) != 0) {
        nng_close(c->sock);
        free(c);
        return client_fail(NC_ENOMEM, 0, "out of memory");
    }
    if (conn_init(&c->conn, c->sock, url) != 0 || pending_create(&c->pending, o->pending_max)) {
        nng_close(c->sock);
        ctxpool_fini(&c->pool);
        conn_fini(&c->conn);
        free(c);
        return client_fail(NC_ENOMEM, 0, "out of memory");
    }
    c->strict = o->strict_invalidations != 0;
    nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, on_pipe, c);
    nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, on_pipe, c);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 20); /* nng's redials after a loss: */
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 100); /* cheap, and soon after a restart */
    rv = conn_open(&c->conn, (o->flags & NC_OPEN_BACKGROUND) != 0);
    if (rv == NC_EINVAL || (rv != NC_OK && !(o->flags & NC_OPEN_BACKGROUND))) {
        int status = tl_status;
        char msg[sizeof tl_msg];
        memcpy(msg, tl_msg, sizeof msg);
        nc_close(c);
        return client_fail(rv, status, "%s", msg);
    }
    if (o->near_bytes > 0) {
        char ring_path[600];
        if (o->near_ring != NULL)
            snprintf(ring_path, sizeof ring_path, "%s", o->near_ring);
        else
            ring_default_path(url, ring_path, sizeof ring_path); /* "" for another transport */
        int64_t ttl = o->near_max_ttl_ms > 0 ? o->near_max_ttl_ms : DEFAULT_NEAR_TTL_MS;
        if (near_open(&c->near, ring_path, o->near_bytes, ttl) != NC_OK) {
            nc_close(c);
            return client_fail(NC_ENOMEM, 0, "out of memory");
        }
    }
    if (worker_start(c) != 0) {
        nc_close(c);
        return client_fail(NC_ENOMEM, 0, "cannot start the client's thread");
    }
    *out = c;
    return NC_OK;
}

int nc_open(nc_client **out, const char *url, unsigned flags)
{
    nc_open_opts o = {.flags = flags};
    return nc_open_ex(out, url, &o);
}

void nc_close(nc_client *c)
{
    if (c == NULL)
        return;
    worker_stop(c);
    if (c->pending != NULL && pending_count(c->pending) > 0)
        client_ready(c); /* sends them if the daemon answers; else they are lost (docs) */
    nng_close(c->sock);     /* calls still running fail at once... */
    ctxpool_fini(&c->pool); /* ...and put their pairs back before c goes */
    worker_free(c);
    near_close(c->near);
    pending_destroy(c->pending);
    conn_fini(&c->conn);
    free(c);
}

int nc_stats_near(nc_client *c, nc_near_stats *out)
{
    if (c->near == NULL)
        return client_fail(NC_EINVAL, 0,
                           "this client has no near tier (nc_open_ex with near_bytes)");
    near_stats(c->near, out);
    return NC_OK;
}

void nc_set_timeout(nc_client *c, int timeout_ms)
{
    if (timeout_ms > 0)
        atomic_store(&c->timeout_ms, timeout_ms);
}

static int err_of_status(int code)
{
    switch (code) {
    case CODE(OK):
        return NC_OK;
    case CODE(NOT_FOUND):
        return NC_ENOTFOUND;
    case CODE(INVALID_ARGUMENT):
    case CODE(OUT_OF_RANGE):
    case CODE(FAILED_PRECONDITION):
        return NC_EINVAL;
    case CODE(DEADLINE_EXCEEDED):
        return NC_ETIMEDOUT;
    case CODE(UNAVAILABLE):
        return NC_EUNAVAILABLE;
    case CODE(RESOURCE_EXHAUSTED):
        return NC_ETOOBIG;
    case CODE(PERMISSION_DENIED):
    case CODE(UNAUTHENTICATED):
        return NC_EPERM;
    case CODE(ABORTED):
        return NC_ELEASE;
    case CODE(UNIMPLEMENTED):
        return NC_EUNIMPLEMENTED;
    default:
        return NC_ESERVER;
    }
}

/* The nc_err of a failed send or receive (nng error rv), recorded. */
static int exchange_failed(nc_client *c, int rv)
{
    if (rv == NNG_ETIMEDOUT && atomic_load(&c->conn.pipes) == 0)
        return client_fail(NC_ECONNECT, CODE(UNAVAILABLE),
                           "the connection to nearcached at %s was lost before the reply", c->url);
    if (rv == NNG_ETIMEDOUT)
        return client_fail(NC_ETIMEDOUT, 0, "no reply from nearcached within the timeout");
    return client_fail(rv == NNG_ECLOSED ? NC_ECONNECT : NC_ESERVER, 0, "nng: %s",
                       nng_strerror(rv));
}

/* Sends msg on a pooled context and waits for the reply until `deadline`.
 * Takes ownership of msg. Returns 0 and the reply message in *reply (the
 * caller owns it), or an nc_err.
 *
 * A context that timed out is put back for the next call: nng's REQ
 * dropped its request when the receive was cancelled (a reply to it that
 * comes later is discarded), and the next send starts afresh. After any
 * other error the pair is closed. The pair goes back last: nc_close() on
 * another thread waits for it, then frees c. */
static int exchange(nc_client *c, nng_msg *msg, int64_t deadline, nng_msg **reply)
{
    ctxpool_pair *pp;
    int rv = tl_flushing ? NC_OK : client_ready(c);
    if (rv != NC_OK) {
        nng_msg_free(msg);
        return rv;
    }
    rv = ctxpool_take(&c->pool, &pp);
    if (rv != 0) {
        nng_msg_free(msg);
        return client_fail(rv == NNG_ECLOSED ? NC_ECONNECT : NC_ENOMEM, 0, "nng_ctx_open: %s",
                           nng_strerror(rv));
    }
    nng_aio *aio = pp->aio;
    int64_t left = deadline - units_now_ms(); /* nng reads -1 and -2 as no timeout */
    nng_aio_set_timeout(aio, (nng_duration)(left > 0 ? left : 1));
    nng_aio_set_msg(aio, msg);
    nng_ctx_send(pp->ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        nng_msg_free(nng_aio_get_msg(aio)); /* nng gave the request back */
    } else {
        left = deadline - units_now_ms();
        nng_aio_set_timeout(aio, (nng_duration)(left > 0 ? left : 1));
        nng_ctx_recv(pp->ctx, aio);
        nng_aio_wait(aio);
        if ((rv = nng_aio_result(aio)) == 0)
            *reply = nng_aio_get_msg(aio);
    }
    nng_aio_set_msg(aio, NULL); /* an idle aio holds no message */
    int err = rv == 0 ? NC_OK : exchange_failed(c, rv);
    ctxpool_put(&c->pool, pp, rv == 0 || rv == NNG_ETIMEDOUT || rv == NNG_ECANCELED);
    return err;
}

static int call(nc_client *c, pb_request *req, int timeout_ms, pb_reply **out);

/* Requests up to this size are never refused by a daemon. */
#define SMALL_REQUEST (64 * 1024)

/* Checks a large request against the daemon's limit (asked once, by Ping):
 * a daemon drops a larger message without a reply, and nng 1.5.2 can hang
 * closing a socket whose oversized request it keeps resending. Returns
 * NC_OK or NC_ETOOBIG. */
static int check_size(nc_client *c, size_t size, int timeout_ms)
{
    if (size <= SMALL_REQUEST)
        return NC_OK;
    if (atomic_load(&c->max_request) == 0) {
        pb_ping_request p = NEARCACHE__V1__PING_REQUEST__INIT;
        pb_request req = NEARCACHE__V1__REQUEST__INIT;
        req.method_case = METHOD(PING);
        req.ping = &p;
        pb_reply *r;
        int rv = call(c, &req, timeout_ms, &r);
        if (rv != NC_OK)
            return rv;
        if (r->result_case == RESULT(PING))
            atomic_store(&c->max_request, r->ping->max_request_size);
        codec_reply_free(r);
    }
    uint64_t max = atomic_load(&c->max_request);
    if (max != 0 && size > max)
        return client_fail(
            NC_ETOOBIG, CODE(RESOURCE_EXHAUSTED),
            "request of %zu bytes is larger than the daemon accepts (%llu bytes; see "
            "max_value_size)",
            size, (unsigned long long)max);
    return NC_OK;
}

/* The timeout of a call: timeout_ms, or the client's when it is <= 0. */
static int timeout_of(nc_client *c, int timeout_ms)
{
    return timeout_ms > 0 ? timeout_ms : atomic_load(&c->timeout_ms);
}

/* Allocates a request message of `size` bytes for the caller to fill,
 * after checking the size against the daemon's limit. Returns NC_OK with
 * *msg (the caller owns it) or an nc_err, recorded. */
static int request_msg(nc_client *c, size_t size, int timeout_ms, nng_msg **msg)
{
    int rv = check_size(c, size, timeout_ms);
    if (rv != NC_OK)
        return rv;
    if (nng_msg_alloc(msg, size) != 0)
        return client_fail(NC_ENOMEM, 0, "out of memory");
    return NC_OK;
}

/* The outcome of a reply (id, status code, message of msglen bytes) to
 * request `want`: NC_OK, NC_EPROTO when it answers another request, or the
 * nc_err of its status (never NC_EPROTO); errors are recorded.
 *
 * The daemon echoes the request's id: another id is another call's answer.
 * (nng's REQ already drops replies to requests it gave up on; this holds
 * even if one slipped through.) Id 0 with an error is the daemon's answer
 * to a request it could not decode at all. */
static int reply_status(uint64_t want, uint64_t id, int code, const void *msg, size_t msglen)
{
    if (id != want && !(id == 0 && code != CODE(OK)))
        return client_fail(NC_EPROTO, 0, "the reply is for request %llu, not %llu",
                           (unsigned long long)id, (unsigned long long)want);
    if (code != CODE(OK))
        return client_fail(err_of_status(code), code, "%.*s", (int)msglen,
                           msglen > 0 ? (const char *)msg : "");
    return NC_OK;
}

/* Sends msg, the encoded request `id` (taking ownership of it), and decodes
 * the reply. Returns NC_OK with *out (the caller frees it with
 * codec_reply_free()) or an nc_err, recording the daemon's status and
 * message. An error reply that carries the result `keep` (0: none) is
 * handed back in *out too. */
static int call_msg_keep(nc_client *c, uint64_t id, nng_msg *msg, int timeout_ms, int keep,
                         pb_reply **out)
{
    nng_msg *reply = NULL;
    *out = NULL;
    int rv = exchange(c, msg, units_now_ms() + timeout_ms, &reply);
    if (rv != NC_OK)
        return rv;
    pb_reply *r = codec_reply_unpack(nng_msg_body(reply), nng_msg_len(reply));
    size_t len = nng_msg_len(reply);
    nng_msg_free(reply);
    if (r == NULL)
        return client_fail(NC_EPROTO, 0, "undecodable reply (%zu bytes)", len);
    rv = reply_status(id, r->id, r->code, r->message, strlen(r->message));
    if (rv == NC_OK || (keep != 0 && r->id == id && (int)r->result_case == keep))
        *out = r;
    else
        codec_reply_free(r);
    return rv;
}

/* Encodes req (with a fresh id and the timeout) and calls call_msg_keep(). */
static int call_keep(nc_client *c, pb_request *req, int timeout_ms, int keep, pb_reply **out)
{
    *out = NULL;
    timeout_ms = timeout_of(c, timeout_ms);
    req->id = atomic_fetch_add(&c->next_id, 1);
    req->timeout_ms = (uint32_t)timeout_ms;
    nng_msg *msg;
    int rv = request_msg(c, codec_request_size(req), timeout_ms, &msg);
    if (rv != NC_OK)
        return rv;
    codec_request_pack(req, nng_msg_body(msg));
    return call_msg_keep(c, req->id, msg, timeout_ms, keep, out);
}

static int call(nc_client *c, pb_request *req, int timeout_ms, pb_reply **out)
{
    return call_keep(c, req, timeout_ms, 0, out);
}

int client_call_result(nc_client *c, pb_request *req, int timeout_ms, int result, int keep,
                       pb_reply **out)
{
    int rv = call_keep(c, req, timeout_ms, keep ? result : 0, out);
    if (rv == NC_OK && (*out)->result_case != (Nearcache__V1__Reply__ResultCase)result) {
        codec_reply_free(*out);
        *out = NULL;
        return client_fail(NC_EPROTO, 0, "reply carries the wrong result");
    }
    return rv;
}

int client_call_expect(nc_client *c, pb_request *req, int timeout_ms, int result, pb_reply **out)
{
    return client_call_result(c, req, timeout_ms, result, 0, out);
}

ProtobufCBinaryData client_bin(nc_bytes b)
{
    ProtobufCBinaryData d = {b.len, (uint8_t *)b.data};
    return d;
}

/* pending_send_fn: one kept invalidation, sent now. It stays kept when
 * the daemon could not take it (unreachable, timed out, without Redis, or
 * overloaded: a Delete or bump is never too big); any other answer is
 * final, an error included (the daemon would give it again), so it goes. */
static int send_pending(void *arg, nc_bytes ns, nc_bytes key)
{
    nc_client *c = arg;
    int rv = key.data != NULL ? nc_del(c, ns, key, NULL, NC_TIMEOUT_DEFAULT)
                              : nc_bump(c, ns, NULL, NC_TIMEOUT_DEFAULT);
    int again = rv == NC_ECONNECT || rv == NC_ETIMEDOUT || rv == NC_EUNAVAILABLE ||
                rv == NC_ENOMEM || rv == NC_ETOOBIG;
    return again ? rv : NC_OK;
}

int client_ready(nc_client *c)
{
    int rv = conn_ready(&c->conn);
    if (rv != NC_OK || pending_count(c->pending) == 0 || tl_flushing)
        return rv;
    tl_flushing = 1;
    rv = pending_flush(c->pending, send_pending, c);
    tl_flushing = 0;
    /* One the daemon answered but could not apply yet (its Redis away, out
     * of time, overloaded) stays first in line and the call goes on (as in
     * the Python client); only a lost connection fails the call. */
    return rv == NC_ECONNECT ? rv : NC_OK;
}

int client_invalidation_failed(nc_client *c, nc_bytes ns, nc_bytes key, int rv)
{
    if (rv != NC_ECONNECT || tl_flushing) /* a flush keeps what it could not send */
        return rv;
    if (pending_add(c->pending, ns, key) != NC_OK)
        return rv;
    if (c->near != NULL)
        near_forget(c->near); /* a Get in flight may hold what it replaced */
    worker_wake(c);
    const char *what = key.data != NULL ? "Delete" : "namespace bump";
    char why[sizeof tl_msg];
    snprintf(why, sizeof why, "%s", tl_msg);
    if (c->strict)
        return client_fail(NC_EUNAVAILABLE, CODE(UNAVAILABLE),
                           "%s not delivered (kept, sent when the daemon answers): %s", what, why);
    return client_fail(NC_EQUEUED, CODE(UNAVAILABLE),
                       "%s queued, sent when the daemon answers: %s", what, why);
}

static void get_info(const wire_get_reply *g, nc_get_info *info)
{
    memset(info, 0, sizeof *info);
    info->source = (nc_source)g->source;
    info->ttl_ms = g->ttl_ms;
    info->stale = g->stale;
    info->stale_ms = g->stale_ms;
    info->negative = g->negative;
    info->lease = (nc_lease)g->lease;
    size_t n = g->lease_token.len < sizeof info->lease_token - 1 ? g->lease_token.len
                                                                 : sizeof info->lease_token - 1;
    if (n > 0)
        memcpy(info->lease_token, g->lease_token.data, n);
}

/* Fills g with a view of r (decoded by protobuf-c; g points into it). */
static void view_reply(const pb_reply *r, wire_get_reply *g)
{
    memset(g, 0, sizeof *g);
    g->id = r->id;
    g->code = r->code;
    g->message = (wire_bytes){(const uint8_t *)r->message, strlen(r->message)};
    g->result = r->result_case;
    if (r->result_case != RESULT(GET))
        return;
    const pb_get_reply *p = r->get;
    g->value = (wire_bytes){p->value.data, p->value.len};
    g->source = p->source;
    g->ttl_ms = p->ttl_ms;
    g->lease_token = (wire_bytes){p->lease_token.data, p->lease_token.len};
    g->lease = p->lease;
    g->stale = p->stale;
    g->negative = p->negative;
    g->stale_ms = p->stale_ms;
}

/* Decodes the reply to a Get into *g: in place (g points into body), or,
 * when it carries another result, with protobuf-c: then *slow holds that
 * decoding, g points into it, and the caller frees it. Returns NC_OK or
 * NC_EPROTO, recorded. */
static int decode_get(const void *body, size_t len, wire_get_reply *g, pb_reply **slow)
{
    int w = wire_get_reply_decode(body, len, g);
    if (w == WIRE_OTHER && (*slow = codec_reply_unpack(body, len)) != NULL) {
        view_reply(*slow, g);
        w = WIRE_OK;
    }
    if (w != WIRE_OK)
        return client_fail(NC_EPROTO, 0, "undecodable reply (%zu bytes)", len);
    return NC_OK;
}

/* Hands v to the caller as a NUL-terminated buffer from malloc(). */
static int copy_value(wire_bytes v, void **value, size_t *len)
{
    char *buf = malloc(v.len + 1);
    if (buf == NULL)
        return client_fail(NC_ENOMEM, 0, "out of memory");
    if (v.len > 0)
        memcpy(buf, v.data, v.len);
    buf[v.len] = '\0';
    *value = buf;
    *len = v.len;
    return NC_OK;
}

/* A Get from the daemon. The hot path: the request is encoded by hand
 * straight into the message, and the reply decoded in place, its value
 * copied once, into the caller's buffer (wire.h). protobuf-c decodes only
 * replies with another result. */
static int get_remote(nc_client *c, nc_bytes ns, nc_bytes key, const nc_get_opts *opts,
                      void **value, size_t *len, nc_get_info *info, int timeout_ms)
{
    *value = NULL; /* what a caller finds after any error */
    *len = 0;
    timeout_ms = timeout_of(c, timeout_ms);
    wire_get_request q = {.id = atomic_fetch_add(&c->next_id, 1),
                          .timeout_ms = (uint32_t)timeout_ms,
                          .ns = {ns.data, ns.len},
                          .key = {key.data, key.len}};
    if (opts != NULL) {
        q.lease = opts->lease;
        q.lease_ttl_ms = opts->lease_ttl_ms;
        q.slide_ttl_ms = opts->slide_ttl_ms;
    }
    nng_msg *msg, *reply;
    int rv = request_msg(c, wire_get_request_size(&q), timeout_ms, &msg);
    if (rv != NC_OK)
        return rv;
    wire_get_request_encode(&q, nng_msg_body(msg));
    if ((rv = exchange(c, msg, units_now_ms() + timeout_ms, &reply)) != NC_OK)
        return rv;
    wire_get_reply g;
    pb_reply *slow = NULL;
    rv = decode_get(nng_msg_body(reply), nng_msg_len(reply), &g, &slow);
    if (rv == NC_OK)
        rv = reply_status(q.id, g.id, g.code, g.message.data, g.message.len);
    int is_get = rv != NC_EPROTO && g.result == WIRE_REPLY_GET;
    if (rv != NC_EPROTO && !is_get && (rv == NC_OK || g.result != 0))
        rv = client_fail(NC_EPROTO, 0, "reply carries the wrong result");
    if (is_get && info != NULL)
        get_info(&g, info);
    if (rv == NC_OK && g.lease == NEARCACHE__V1__LEASE_STATE__LEASE_GRANTED && g.value.len == 0 &&
        !g.stale)
        rv = client_fail(NC_ENOTFOUND, CODE(NOT_FOUND), "not found; you hold the lease");
    else if (rv == NC_OK && g.lease == NEARCACHE__V1__LEASE_STATE__LEASE_BUSY)
        rv = client_fail(NC_ETIMEDOUT, CODE(DEADLINE_EXCEEDED),
                         "another caller holds the lease and did not store a value in time");
    if (rv == NC_OK)
        rv = copy_value(g.value, value, len);
    codec_reply_free(slow);
    nng_msg_free(reply);
    return rv;
}

/* With a near tier, a Get is answered from it when it can: a value, or a
 * negative entry answered as the daemon answers one (NC_ENOTFOUND, "known
 * absent", info->negative). Otherwise the daemon's answer fills it as
 * near_keep_of() says, unless the key changed while the request was in
 * flight (the ticket). A sliding Get always goes to the daemon, which must
 * see every read to slide the TTL. */
int nc_get_opt(nc_client *c, nc_bytes ns, nc_bytes key, const nc_get_opts *opts, void **value,
               size_t *len, nc_get_info *info, int timeout_ms)
{
    if (c->near == NULL || (opts != NULL && opts->slide_ttl_ms > 0))
        return get_remote(c, ns, key, opts, value, len, info, timeout_ms);
    nc_get_info mine;
    if (info == NULL)
        info = &mine;
    uint64_t ttl;
    int negative;
    if (near_get(c->near, ns, key, value, len, &ttl, &negative)) {
        memset(info, 0, sizeof *info);
        info->source = NC_SOURCE_NEAR;
        info->ttl_ms = ttl;
        info->negative = negative;
        return negative ? client_fail(NC_ENOTFOUND, CODE(NOT_FOUND), "known absent") : NC_OK;
    }
    near_ticket t = near_take_ticket(c->near);
    memset(info, 0, sizeof *info);
    int rv = get_remote(c, ns, key, opts, value, len, info, timeout_ms);
    near_keep k = near_keep_of(rv == NC_OK, rv == NC_ENOTFOUND && info->negative, info->stale,
                               info->lease != NC_LEASE_NONE, info->ttl_ms);
    if (k == NEAR_KEEP_VALUE)
        near_fill(c->near, &t, ns, key, *value, *len, info->ttl_ms);
    else if (k == NEAR_KEEP_NEGATIVE)
        near_fill_negative(c->near, &t, ns, key, info->ttl_ms);
    return rv;
}

int nc_get_ex(nc_client *c, nc_bytes ns, nc_bytes key, void **value, size_t *len, nc_get_info *info,
              int timeout_ms)
{
    return nc_get_opt(c, ns, key, NULL, value, len, info, timeout_ms);
}

int nc_get(nc_client *c, nc_bytes ns, nc_bytes key, void **value, size_t *len, int timeout_ms)
{
    return nc_get_ex(c, ns, key, value, len, NULL, timeout_ms);
}

int nc_set_opt(nc_client *c, nc_bytes ns, nc_bytes key, nc_bytes value, int64_t ttl_ms,
               const nc_set_opts *opts, int timeout_ms)
{
    pb_set_request s = NEARCACHE__V1__SET_REQUEST__INIT;
    s.ns = client_bin(ns);
    s.key = client_bin(key);
    s.value = client_bin(value);
    if (ttl_ms != NC_TTL_DEFAULT) {
        s.ttl_case = NEARCACHE__V1__SET_REQUEST__TTL_TTL_MS;
        s.ttl_ms = ttl_ms;
    }
    if (opts != NULL) {
        if (opts->lease_token != NULL)
            s.lease_token = client_bin(NC_STR(opts->lease_token));
        s.negative = opts->negative;
        s.stale_while_revalidate_ms = opts->stale_while_revalidate_ms;
    }
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(SET);
    req.set = &s;
    if (c->near != NULL)
        near_drop(c->near, ns, key);
    pb_reply *r;
    int rv = client_call_expect(c, &req, timeout_ms, RESULT(SET), &r);
    if (rv == NC_OK)
        codec_reply_free(r);
    return rv;
}

int nc_set(nc_client *c, nc_bytes ns, nc_bytes key, nc_bytes value, int64_t ttl_ms, int timeout_ms)
{
    return nc_set_opt(c, ns, key, value, ttl_ms, NULL, timeout_ms);
}

/* The errors after which the daemon is taken for unreachable (fail open). */
static int unreachable(int rv, const nc_get_info *info)
{
    return rv == NC_ECONNECT || rv == NC_EUNAVAILABLE ||
           (rv == NC_ETIMEDOUT && info->lease != NC_LEASE_BUSY);
}

/* Gives a lease back (Delete with its token). The error of the call that
 * made us give it up is kept for the caller. */
static void release(nc_client *c, nc_bytes ns, nc_bytes key, const char *token, int timeout_ms)
{
    int status = tl_status;
    char msg[sizeof tl_msg];
    memcpy(msg, tl_msg, sizeof msg);
    pb_delete_request d = NEARCACHE__V1__DELETE_REQUEST__INIT;
    d.ns = client_bin(ns);
    d.key = client_bin(key);
    d.lease_token = client_bin(NC_STR(token));
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(DELETE);
    req.delete_ = &d;
    pb_reply *r;
    if (call(c, &req, timeout_ms, &r) == NC_OK)
        codec_reply_free(r);
    tl_status = status;
    memcpy(tl_msg, msg, sizeof msg);
}

/* Runs the loader and hands its value back as a NUL-terminated buffer. */
static int load(nc_loader loader, void *arg, nc_bytes ns, nc_bytes key, void **value, size_t *len)
{
    void *v = NULL;
    size_t n = 0;
    if (loader(arg, ns, key, &v, &n) != 0) {
        free(v);
        return client_fail(NC_ELOADER, 0, "the loader failed; nothing was cached");
    }
    char *buf = realloc(v, n + 1);
    if (buf == NULL) {
        free(v);
        return client_fail(NC_ENOMEM, 0, "out of memory");
    }
    buf[n] = '\0';
    *value = buf;
    *len = n;
    return NC_OK;
}

int nc_fetch(nc_client *c, nc_bytes ns, nc_bytes key, int64_t ttl_ms, nc_loader loader, void *arg,
             void **value, size_t *len, int timeout_ms)
{
    nc_get_opts opts = {.lease = 1};
    nc_get_info info;
    memset(&info, 0, sizeof info);
    int rv = nc_get_opt(c, ns, key, &opts, value, len, &info, timeout_ms);
    if (rv == NC_OK && !(info.stale && info.lease == NC_LEASE_GRANTED))
        return NC_OK;
    if (rv == NC_OK) { /* a stale value, and this caller refreshes it */
        void *fresh;
        size_t n;
        if (load(loader, arg, ns, key, &fresh, &n) != NC_OK)
            return NC_OK; /* keep serving the stale value */
        nc_free(*value);
        *value = fresh, *len = n;
    } else if (rv == NC_ENOTFOUND && info.lease == NC_LEASE_GRANTED) {
        if ((rv = load(loader, arg, ns, key, value, len)) != NC_OK) {
            release(c, ns, key, info.lease_token, timeout_ms); /* let a waiter load */
            return rv;
        }
    } else if (atomic_load(&c->fail_open) && unreachable(rv, &info)) {
        return load(loader, arg, ns, key, value, len);
    } else {
        return rv;
    }
    nc_set_opts so = {.lease_token = info.lease_token};
    /* NC_ELEASE: a write came in meanwhile; this value is not cached, but
     * it was the truth when loaded, so the caller still gets it. */
    nc_set_opt(c, ns, key, (nc_bytes){*value, *len}, ttl_ms, &so, timeout_ms);
    return NC_OK;
}

void nc_set_fail_open(nc_client *c, int on)
{
    atomic_store(&c->fail_open, on != 0);
}

int nc_del(nc_client *c, nc_bytes ns, nc_bytes key, int *existed, int timeout_ms)
{
    pb_delete_request d = NEARCACHE__V1__DELETE_REQUEST__INIT;
    d.ns = client_bin(ns);
    d.key = client_bin(key);
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(DELETE);
    req.delete_ = &d;
    if (c->near != NULL)
        near_drop(c->near, ns, key);
    if (existed != NULL)
        *existed = 0;
    pb_reply *r;
    int rv = client_call_expect(c, &req, timeout_ms, RESULT(DELETE), &r);
    if (rv != NC_OK)
        return client_invalidation_failed(c, ns, key, rv);
    if (existed != NULL)
        *existed = r->delete_->existed;
    codec_reply_free(r);
    return NC_OK;
}

void nc_free(void *p)
{
    free(p);
}

const char *nc_strerror(int err)
{
    static const char *const text[] = {
        [NC_OK] = "success",
        [NC_ENOTFOUND] = "not found",
        [NC_EINVAL] = "invalid argument",
        [NC_ETIMEDOUT] = "timed out",
        [NC_EUNAVAILABLE] = "unavailable",
        [NC_ETOOBIG] = "too big or overloaded",
        [NC_EPERM] = "permission denied",
        [NC_EUNIMPLEMENTED] = "not implemented by the daemon",
        [NC_ESERVER] = "daemon error",
        [NC_ECONNECT] = "cannot reach the daemon",
        [NC_EPROTO] = "protocol error",
        [NC_ENOMEM] = "out of memory",
        [NC_ELEASE] = "lease no longer valid",
        [NC_ELOADER] = "the loader failed",
        [NC_EQUEUED] = "queued: sent when the daemon is back",
    };
    if (err < 0 || (size_t)err >= sizeof text / sizeof text[0])
        return "unknown error";
    return text[err];
}

int nc_status(void)
{
    return tl_status;
}

const char *nc_errmsg(void)
{
    return tl_msg;
}

const char *nc_status_name(int status)
{
    return codec_code_name(status);
}
