/* The RPC front end; see server.h.
 * Each call cycles RECV -> (handler) -> SEND -> RECV. `busy` counts calls
 * between a received request and its sent reply; server_drain() waits for it
 * to reach zero. Once `stopping` is set no call posts a new receive, and a
 * request a context takes after that is parked: neither run nor answered.
 * Its connection is closed as soon as no request on it is in flight, so
 * its client sees it closed before the reply, as R2 of the client rules
 * wants for an invalidation to be kept and sent again.
 *
 * A reply waits for its connection to take it (nng writes one reply at a
 * time per connection), holding its context. A client that sends and never
 * reads would so hold every context, one per request (and its requests may
 * ask for any deadline), so a reply its connection has not taken within
 * REPLY_TAKE_MS is dropped and that connection closed. A client that reads
 * takes a reply within microseconds of the one before it.
 *
 * The watchdog works around nng 1.5.2's bug #1518: a peer that hangs up
 * while its connection is being negotiated stops the listener from accepting
 * for good (EPIPE surfaces as NNG_ECLOSED, which the listener takes for its
 * own close). Any local process can cause it by connecting and closing at
 * once. So every second the watchdog makes a fresh connection and waits for
 * the SP handshake, which the listener sends once it has accepted (a Ping
 * would also need a free context, and busy contexts are no listener fault);
 * if none comes, it starts a new listener on a fresh socket file. The stopped
 * one is kept open, not closed: closing it would close every connection it
 * accepted, and nng 1.5.2 can hang for good when it closes a connection
 * between a message's header and body (its reaper then waits on a receive
 * that never completes, and every later close, nng_close() included, waits
 * behind it). server_close() bounds that wait.
 *
 * An ipc:// server owns its socket path through a lock file beside it
 * (socklock.c): nng's own check (connect; unlink only on ECONNREFUSED) is
 * never left to decide, and a second daemon never connects to a live one. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <pthread.h>
#include <nng/supplemental/util/platform.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "explain.h"
#include "log.h"
#include "socklock.h"
#include "units.h"

enum call_phase { CALL_RECV, CALL_SEND, CALL_PARKED };

#define MAX_KEPT 16 /* replaced listeners kept open; beyond, the oldest is closed */

struct call {
    server *srv;
    nng_aio *aio;
    nng_ctx ctx;
    enum call_phase state;
    pb_request *req; /* owned; freed once the reply is sent */
    nng_msg *reply;  /* prepared reply, owned until sent */
    int64_t deadline;
    int64_t start_us; /* when the request arrived (hist_now_us) */
    int method;       /* enum stats_method, or -1: not timed */
    int tier;         /* enum stats_tier, set by call_set_tier() */
    nng_pipe pipe;    /* the connection the request came on */
    atomic_int inflight; /* the request is being run and answered */
    atomic_int parked;   /* it came during the drain: never answered */
    jobq_job job;
    call_state cs; /* the handler's; zeroed per request */
};

struct server {
    server_options opt;
    nng_socket sock;
    nng_listener listener;
    struct kept {
        nng_listener l;
        int live; /* its connections */
    } lst[MAX_KEPT + 2]; /* ipc:// listeners: those replaced, kept open, then the current one */
    size_t nlst;
    pthread_mutex_t lst_mu;
    atomic_uint_fast64_t own_pipes; /* connections from this process added */
    int live, live_peak; /* connections, and the most since the last trim (lst_mu) */
    int trim_again;      /* trim at the next check too (lst_mu) */
    struct call *calls;
    size_t ncalls;
    atomic_size_t busy;
    atomic_int stopping;          /* draining: requests are taken no more */
    atomic_size_t in_handler;     /* calls inside the handler right now */
    pthread_mutex_t park_mu;      /* parking: which connections to close */
    atomic_uint_fast64_t replies; /* cycles finished: the loop's progress */
    pthread_t watchdog;
    int watchdog_started;
    pthread_mutex_t watchdog_mu;
    pthread_cond_t watchdog_cv;
    uint64_t listener_restarts;
    socklock lock; /* PATH.lock of an ipc:// socket */
};

#define WATCHDOG_INTERVAL_MS 1000
#define WATCHDOG_TIMEOUT_MS  1000
#define REPLY_TAKE_MS        1000 /* for a connection to take a reply */
#define TRIM_AFTER           1000 /* connections closed before free memory is given back */

const pb_request *call_request(const call *c)
{
    return c->req;
}

int call_peer(const call *c, uid_t *uid, gid_t *gid)
{
    uint64_t u, g;
    if (nng_pipe_get_uint64(c->pipe, NNG_OPT_IPC_PEER_UID, &u) != 0 ||
        nng_pipe_get_uint64(c->pipe, NNG_OPT_IPC_PEER_GID, &g) != 0)
        return 0;
    *uid = (uid_t)u, *gid = (gid_t)g;
    return 1;
}

int64_t call_deadline(const call *c)
{
    return c->deadline;
}

size_t call_free_contexts(const call *c)
{
    size_t busy = atomic_load(&c->srv->busy);
    return busy < c->srv->ncalls ? c->srv->ncalls - busy : 0;
}

call_state *call_state_of(call *c)
{
    return &c->cs;
}

call *call_of_state(call_state *s)
{
    return (call *)((char *)s - offsetof(call, cs));
}

jobq_job *call_job(call *c)
{
    return &c->job;
}

call *call_of_job(jobq_job *job)
{
    return (call *)((char *)job - offsetof(call, job));
}

/* Takes m as the call's reply, in place of any prepared before. */
static void set_reply(call *c, nng_msg *m)
{
    if (c->reply != NULL)
        nng_msg_free(c->reply);
    c->reply = m;
}

int call_prepare(call *c, const pb_reply *r)
{
    pb_reply copy = *r;
    copy.id = c->req != NULL ? c->req->id : 0;
    size_t n = codec_reply_size(&copy);
    nng_msg *m;
    if (nng_msg_alloc(&m, n) != 0)
        return ENOMEM;
    codec_reply_pack(&copy, nng_msg_body(m));
    set_reply(c, m);
    return 0;
}

int call_prepare_get(call *c, const wire_get_reply *r)
{
    wire_get_reply copy = *r;
    copy.id = c->req != NULL ? c->req->id : 0;
    nng_msg *m;
    if (nng_msg_alloc(&m, wire_get_reply_size(&copy)) != 0)
        return ENOMEM;
    wire_get_reply_encode(&copy, nng_msg_body(m));
    set_reply(c, m);
    return 0;
}

void call_set_tier(call *c, int tier)
{
    c->tier = tier;
}

/* The histogram method of a request, or -1 for one that is not timed. */
static int method_of(const pb_request *r)
{
    switch (r->method_case) {
    case METHOD(GET):
        return STATS_GET;
    case METHOD(SET):
        return STATS_SET;
    case METHOD(DELETE):
        return STATS_DELETE;
    case METHOD(MGET):
        return STATS_MGET;
    case METHOD(MSET):
        return STATS_MSET;
    case METHOD(BUMP_NAMESPACE):
        return STATS_BUMP;
    case METHOD(PING):
    case METHOD(STATS):
    case METHOD(NEAR_REPORT):
        return STATS_ADMIN;
    default:
        return -1;
    }
}

/* Records the call's latency, from its arrival until now, by method and,
 * for a Get, by the tier that answered: relaxed increments only. */
static void record_latency(call *c)
{
    if (c->method < 0)
        return;
    stats *st = c->srv->opt.stats;
    int64_t us = hist_now_us() - c->start_us;
    uint64_t took = us > 0 ? (uint64_t)us : 0;
    hist_record(&st->method[c->method], took);
    if (c->method == STATS_GET)
        hist_record(&st->get_tier[c->tier], took);
}

void call_send(call *c)
{
    record_latency(c);
    c->state = CALL_SEND;
    if (c->reply == NULL) { /* nothing to send: finish the cycle at once */
        nng_sleep_aio(0, c->aio);
        return;
    }
    nng_aio_set_timeout(c->aio, REPLY_TAKE_MS);
    nng_aio_set_msg(c->aio, c->reply);
    c->reply = NULL;
    nng_ctx_send(c->ctx, c->aio);
}

void call_reply(call *c, const pb_reply *r)
{
    if (call_prepare(c, r) != 0) {
        pb_reply oom = NEARCACHE__V1__REPLY__INIT;
        oom.code = CODE(INTERNAL);
        oom.message = "out of memory encoding the reply";
        if (call_prepare(c, &oom) != 0)
            log_error("out of memory encoding a reply; dropping it");
    }
    call_send(c);
}

void call_fail(call *c, int code, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.code = code;
    r.message = text;
    if (code == CODE(DEADLINE_EXCEEDED))
        stats_inc(&c->srv->opt.stats->deadline_exceeded);
    log_debug("request %llu: %s: %s", c->req != NULL ? (unsigned long long)c->req->id : 0ULL,
              codec_code_name(code), text);
    call_reply(c, &r);
}

/* Decodes the received message and routes the request: protocol errors are
 * answered here, everything else goes to the handler. */
static void call_dispatch(call *c, nng_msg *m)
{
    server *s = c->srv;
    stats_inc(&s->opt.stats->requests);
    c->start_us = hist_now_us();
    c->method = -1;
    c->tier = STATS_TIER_NONE;
    int64_t now = units_now_ms();
    size_t len = nng_msg_len(m);
    c->req = codec_request_unpack(nng_msg_body(m), len);
    nng_msg_free(m);
    if (c->req == NULL) {
        stats_inc(&s->opt.stats->bad_requests);
        call_fail(c, CODE(INVALID_ARGUMENT),
                  "malformed request: %zu bytes are not a valid "
                  "nearcache.v1.Request protobuf",
                  len);
        return;
    }
    c->deadline = now + (c->req->timeout_ms != 0 ? c->req->timeout_ms : s->opt.default_timeout_ms);
    c->method = method_of(c->req);
    memset(&c->cs, 0, sizeof c->cs);
    if (c->req->method_case == NEARCACHE__V1__REQUEST__METHOD__NOT_SET) {
        stats_inc(&s->opt.stats->bad_requests);
        uint32_t field = codec_request_unknown_field(c->req);
        if (field >= 10) /* methods are fields 10 and up */
            call_fail(c, CODE(UNIMPLEMENTED), "unknown method (request field %u)", field);
        else
            call_fail(c, CODE(INVALID_ARGUMENT), "request names no method");
        return;
    }
    /* The counter lets server_drain() wait out a handler that runs when
     * its wait for the calls in flight ends. */
    atomic_fetch_add(&s->in_handler, 1);
    s->opt.handler(s->opt.handler_arg, c);
    atomic_fetch_sub(&s->in_handler, 1);
}

/* Whether a request that came on pipe is in flight. Called with park_mu
 * held (while draining, inflight only goes from 1 to 0, under it). */
static int pipe_busy_locked(server *s, nng_pipe pipe)
{
    for (size_t i = 0; i < s->ncalls; i++)
        if (atomic_load(&s->calls[i].inflight) &&
            nng_pipe_id(s->calls[i].pipe) == nng_pipe_id(pipe))
            return 1;
    return 0;
}

/* Whether a parked request came on pipe. Called with park_mu held. */
static int pipe_parked_locked(server *s, nng_pipe pipe)
{
    for (size_t i = 0; i < s->ncalls; i++)
        if (atomic_load(&s->calls[i].parked) && nng_pipe_id(s->calls[i].pipe) == nng_pipe_id(pipe))
            return 1;
    return 0;
}

/* Parks a request that arrived during the drain (m, freed; c->pipe set),
 * and closes its connection unless a request on it is still in flight
 * (finished() closes it then). */
static void park(call *c, nng_msg *m)
{
    server *s = c->srv;
    nng_msg_free(m);
    c->state = CALL_PARKED;
    pthread_mutex_lock(&s->park_mu);
    atomic_store(&c->parked, 1);
    int idle = !pipe_busy_locked(s, c->pipe);
    pthread_mutex_unlock(&s->park_mu);
    if (idle)
        nng_pipe_close(c->pipe);
}

/* The call's request is answered: while draining, its connection is
 * closed if a parked request waits on it and nothing else is in flight. */
static void finished(call *c)
{
    server *s = c->srv;
    if (!atomic_load(&s->stopping)) {
        atomic_store(&c->inflight, 0);
        return;
    }
    pthread_mutex_lock(&s->park_mu);
    atomic_store(&c->inflight, 0);
    int close = pipe_parked_locked(s, c->pipe) && !pipe_busy_locked(s, c->pipe);
    pthread_mutex_unlock(&s->park_mu);
    if (close)
        nng_pipe_close(c->pipe);
}

static void call_cb(void *arg)
{
    call *c = arg;
    server *s = c->srv;
    int rv = nng_aio_result(c->aio);
    if (c->state == CALL_RECV) {
        if (rv != 0) {
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED || atomic_load(&s->stopping))
                return;
            log_warn("receive failed: %s", nng_strerror(rv));
            nng_ctx_recv(c->ctx, c->aio);
            return;
        }
        atomic_fetch_add(&s->busy, 1); /* before the check; server_drain() the other way */
        nng_msg *m = nng_aio_get_msg(c->aio);
        nng_aio_set_msg(c->aio, NULL);
        c->pipe = nng_msg_get_pipe(m); /* before inflight or parked: others read it then */
        if (atomic_load(&s->stopping)) { /* arrived during the drain */
            park(c, m);
            atomic_fetch_sub(&s->busy, 1);
            return;
        }
        atomic_store(&c->inflight, 1);
        call_dispatch(c, m);
        return;
    }
    if (rv != 0) {
        nng_msg *m = nng_aio_get_msg(c->aio);
        nng_aio_set_msg(c->aio, NULL);
        if (m != NULL)
            nng_msg_free(m);
        if (rv == NNG_ETIMEDOUT) {
            log_warn("a client does not read its replies (one waited %d ms to be taken): "
                     "closing its connection",
                     REPLY_TAKE_MS);
            nng_pipe_close(c->pipe);
        } else {
            log_debug("reply not sent: %s", nng_strerror(rv));
        }
    }
    codec_request_free(c->req);
    c->req = NULL;
    c->state = CALL_RECV;
    finished(c);
    atomic_fetch_add_explicit(&s->replies, 1, memory_order_relaxed);
    nng_aio_set_timeout(c->aio, NNG_DURATION_INFINITE);
    if (!atomic_load(&s->stopping))
        nng_ctx_recv(c->ctx, c->aio);
    atomic_fetch_sub(&s->busy, 1);
}

/* nng_pipe_notify() callback, on nng's threads: counts each listener's
 * connections (ADD_PRE comes first; REM_POST comes only after it), all of
 * them and their peak, and the watchdog's own (the peer is this process). */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    server *s = arg;
    uint64_t pid;
    if (ev == NNG_PIPE_EV_ADD_PRE && nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid) == 0 &&
        pid == (uint64_t)getpid())
        atomic_fetch_add(&s->own_pipes, 1);
    int id = nng_listener_id(nng_pipe_listener(p)), up = ev == NNG_PIPE_EV_ADD_PRE ? 1 : -1;
    pthread_mutex_lock(&s->lst_mu);
    for (size_t i = 0; i < s->nlst; i++)
        if (nng_listener_id(s->lst[i].l) == id) {
            s->lst[i].live += up;
            s->live += up;
            if (s->live > s->live_peak)
                s->live_peak = s->live;
        }
    pthread_mutex_unlock(&s->lst_mu);
}

/* Gives the socket file to opt.socket_gid as opt.set_group says. No
 * chown(2) when the group is right already: the systemd unit denies it. */
static int give_group(server *s, char *err, size_t errlen)
{
    const char *path = s->opt.url + 6;
    struct stat st;
    if (s->opt.set_group == SERVER_GROUP_KEEP ||
        (stat(path, &st) == 0 && st.st_gid == s->opt.socket_gid) ||
        chown(path, (uid_t)-1, s->opt.socket_gid) == 0)
        return 0;
    if (s->opt.set_group == SERVER_GROUP_TRY) {
        log_warn("cannot give the socket %s to group %ld (%s): it keeps the daemon's own group; "
                 "run the daemon as a member of the group (docs/operations.md)",
                 path, (long)s->opt.socket_gid, strerror(errno));
        return 0;
    }
    snprintf(err, errlen, "cannot give the socket %s to group %ld (socket_group): %s", path,
             (long)s->opt.socket_gid, strerror(errno));
    return -1;
}

/* nng sets an ipc:// socket file's mode after bind(); its group is set
 * here, after the listener starts. */
static int start_listener(server *s, char *err, size_t errlen)
{
    int ipc = strncmp(s->opt.url, "ipc://", 6) == 0;
    int mode = s->opt.socket_mode != 0 ? (int)s->opt.socket_mode : 0660;
    int rv = nng_listener_create(&s->listener, s->sock, s->opt.url);
    int made = rv == 0;
    if (rv == 0 && ipc) { /* counted (on_pipe()) from its first connection on */
        rv = nng_listener_set_int(s->listener, NNG_OPT_IPC_PERMISSIONS, mode);
        pthread_mutex_lock(&s->lst_mu);
        s->lst[s->nlst++] = (struct kept){s->listener, 0};
        pthread_mutex_unlock(&s->lst_mu);
    }
    if (rv == 0)
        rv = nng_listener_start(s->listener, 0);
    if (rv != 0) {
        pthread_mutex_lock(&s->lst_mu);
        if (s->nlst > 0 && nng_listener_id(s->lst[s->nlst - 1].l) == nng_listener_id(s->listener))
            s->nlst--;
        pthread_mutex_unlock(&s->lst_mu);
        if (made) /* not started: closing it frees it */
            nng_listener_close(s->listener);
        explain_listen(s->opt.url, rv, err, errlen);
        return rv;
    }
    if (ipc && give_group(s, err, errlen) != 0) {
        nng_listener_close(s->listener);
        return NNG_EPERM;
    }
    return 0;
}

static int open_socket(server *s, char *err, size_t errlen)
{
    int rv = 0;
    if (strncmp(s->opt.url, "ipc://", 6) == 0 &&
        (rv = socklock_take(&s->lock, s->opt.url, err, errlen)) != 0)
        return rv;
    rv = nng_rep0_open(&s->sock);
    if (rv == 0)
        rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, s->opt.recv_max);
    if (rv == 0)
        rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, on_pipe, s);
    if (rv == 0)
        rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, on_pipe, s);
    if (rv != 0) {
        snprintf(err, errlen, "cannot open the REP socket: %s", nng_strerror(rv));
        return rv;
    }
    return start_listener(s, err, errlen);
}

uint64_t server_progress(server *s)
{
    return atomic_load_explicit(&s->replies, memory_order_relaxed);
}

int server_probe(server *s)
{
    nng_socket req;
    nng_msg *m = NULL;
    if (nng_req0_open(&req) != 0)
        return 1; /* cannot tell; assume fine */
    nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, WATCHDOG_TIMEOUT_MS);
    nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, WATCHDOG_TIMEOUT_MS);
    pb_ping_request ping = NEARCACHE__V1__PING_REQUEST__INIT;
    pb_request r = NEARCACHE__V1__REQUEST__INIT;
    r.method_case = METHOD(PING);
    r.ping = &ping;
    int ok = nng_dial(req, s->opt.url, NULL, NNG_FLAG_NONBLOCK) == 0 &&
             nng_msg_alloc(&m, codec_request_size(&r)) == 0;
    if (ok) {
        codec_request_pack(&r, nng_msg_body(m));
        ok = nng_sendmsg(req, m, 0) == 0;
        if (!ok)
            nng_msg_free(m);
        ok = ok && nng_recvmsg(req, &m, 0) == 0;
        if (ok)
            nng_msg_free(m);
    }
    nng_close(req);
    return ok;
}

/* Whether the ipc:// listener takes connections: a raw one that sends the
 * SP handshake is added to the socket (on_pipe() sees it) within
 * WATCHDOG_TIMEOUT_MS. No context is involved: busy ones are no listener
 * fault. (The handshake alone proves nothing: nng's transport accepts and
 * negotiates on its own, and bug #1518 stops the socket's side.) Returns 1
 * when it is, or when no probe could be made. */
static int listener_takes(server *s)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", s->opt.url + 6);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1; /* out of descriptors, say: not the listener's fault */
    static const uint8_t hello[8] = {0, 'S', 'P', 0, 0, 48 /* REQ */, 0, 0};
    uint64_t before = atomic_load(&s->own_pipes);
    int64_t give_up = units_now_ms() + WATCHDOG_TIMEOUT_MS;
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && /* EAGAIN: backlog full */
             send(fd, hello, sizeof hello, MSG_NOSIGNAL) == (ssize_t)sizeof hello;
    while (ok && atomic_load(&s->own_pipes) == before)
        if (units_now_ms() >= give_up)
            ok = 0;
        else
            nng_msleep(5);
    close(fd);
    return ok;
}

/* Closes listener entry i of lst (lst_mu not held). nng removes the
 * listener's socket file as it closes it, and that path is the current
 * listener's too: the current file is moved aside meanwhile. */
static void close_kept(server *s, size_t i)
{
    const char *path = s->opt.url + 6;
    char aside[620];
    snprintf(aside, sizeof aside, "%s.swap", path);
    pthread_mutex_lock(&s->lst_mu);
    nng_listener l = s->lst[i].l;
    memmove(s->lst + i, s->lst + i + 1, (s->nlst - i - 1) * sizeof s->lst[0]);
    s->nlst--;
    pthread_mutex_unlock(&s->lst_mu);
    int moved = rename(path, aside) == 0;
    nng_listener_close(l);
    if (moved && rename(aside, path) != 0)
        log_error("cannot move the socket %s back in place: %s", aside, strerror(errno));
}

/* Closes the kept listeners whose connections have all gone: that frees
 * what they still hold (connections nng negotiated but never handed on)
 * without closing anyone's connection. Watchdog thread. */
static void close_idle_kept(server *s)
{
    for (size_t i = 0; i + 1 < s->nlst;) { /* the last entry is the current listener */
        pthread_mutex_lock(&s->lst_mu);
        int idle = s->lst[i].live <= 0;
        pthread_mutex_unlock(&s->lst_mu);
        if (idle)
            close_kept(s, i);
        else
            i++;
    }
}

/* Starts a new listener in place of one that stopped taking connections.
 * An ipc:// one is kept open (its connections keep working) until they
 * have all gone, and its socket file removed, so that the new one binds a
 * fresh file; past MAX_KEPT kept, the oldest is closed first. Another
 * transport's is closed (it holds the address). Watchdog thread. */
static void replace_listener(server *s)
{
    char err[1500];
    if (strncmp(s->opt.url, "ipc://", 6) != 0) {
        nng_listener_close(s->listener);
    } else {
        if (s->nlst > MAX_KEPT)
            close_kept(s, 0);
        unlink(s->opt.url + 6);
    }
    s->listener = (nng_listener)NNG_LISTENER_INITIALIZER;
    if (start_listener(s, err, sizeof err) != 0) { /* tried again at the next probe */
        log_error("%s", err);
        nng_listener_close(s->listener);
        s->listener = (nng_listener)NNG_LISTENER_INITIALIZER;
    }
    s->listener_restarts++;
}

/* Gives the allocator's free memory back to the system (malloc_trim())
 * once the connections counted by on_pipe() fell by TRIM_AFTER from their
 * peak, and again at the next check (nng frees a connection after it is
 * counted gone): nng frees a closed connection's few KiB on its own
 * threads' arenas, which glibc keeps. Watchdog thread. */
static void trim_after_closes(server *s)
{
    pthread_mutex_lock(&s->lst_mu);
    int trim = s->live_peak - s->live >= TRIM_AFTER || s->trim_again;
    s->trim_again = s->live_peak - s->live >= TRIM_AFTER; /* nng's reaper may still be at it */
    if (trim)
        s->live_peak = s->live;
    pthread_mutex_unlock(&s->lst_mu);
    if (trim)
        malloc_trim(0);
}

static void *watchdog_main(void *arg)
{
    server *s = arg;
    int ipc = strncmp(s->opt.url, "ipc://", 6) == 0;
    pthread_mutex_lock(&s->watchdog_mu);
    while (!atomic_load(&s->stopping)) {
        units_cond_wait_ms(&s->watchdog_cv, &s->watchdog_mu, WATCHDOG_INTERVAL_MS);
        if (atomic_load(&s->stopping))
            break;
        pthread_mutex_unlock(&s->watchdog_mu);
        int fine = ipc ? listener_takes(s) : server_probe(s);
        if (ipc) {
            close_idle_kept(s);
            trim_after_closes(s);
        }
        if (!fine && !atomic_load(&s->stopping)) {
            log_warn("listener on %s stopped accepting connections (nng 1.5.2 bug #1518); "
                     "re-creating it",
                     s->opt.url);
            replace_listener(s);
        }
        pthread_mutex_lock(&s->watchdog_mu);
    }
    pthread_mutex_unlock(&s->watchdog_mu);
    return NULL;
}

static void stop_watchdog(server *s)
{
    pthread_mutex_lock(&s->watchdog_mu);
    atomic_store(&s->stopping, 1);
    pthread_cond_broadcast(&s->watchdog_cv);
    pthread_mutex_unlock(&s->watchdog_mu);
    if (s->watchdog_started)
        pthread_join(s->watchdog, NULL);
    s->watchdog_started = 0;
}

int server_create(server **out, const server_options *opt, char *err, size_t errlen)
{
    server *s = calloc(1, sizeof *s);
    if (s == NULL || (s->calls = calloc(opt->contexts, sizeof *s->calls)) == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NNG_ENOMEM;
    }
    s->opt = *opt;
    s->lock.fd = -1;
    pthread_mutex_init(&s->lst_mu, NULL);
    pthread_mutex_init(&s->park_mu, NULL);
    pthread_mutex_init(&s->watchdog_mu, NULL);
    units_cond_init(&s->watchdog_cv);
    int rv = open_socket(s, err, errlen);
    for (size_t i = 0; rv == 0 && i < opt->contexts; i++) {
        call *c = &s->calls[i];
        c->srv = s;
        if ((rv = nng_aio_alloc(&c->aio, call_cb, c)) != 0)
            break;
        if ((rv = nng_ctx_open(&c->ctx, s->sock)) != 0) {
            nng_aio_free(c->aio);
            break;
        }
        s->ncalls = i + 1;
    }
    if (rv != 0) {
        if (err[0] == '\0')
            snprintf(err, errlen, "cannot set up contexts: %s", nng_strerror(rv));
        server_destroy(s);
        return rv;
    }
    for (size_t i = 0; i < s->ncalls; i++)
        nng_ctx_recv(s->calls[i].ctx, s->calls[i].aio);
    s->watchdog_started = pthread_create(&s->watchdog, NULL, watchdog_main, s) == 0;
    *out = s;
    return 0;
}

size_t server_drain(server *s, int64_t drain_ms)
{
    /* From here on no context takes a request to run it (call_cb() parks
     * one that arrives), so clients that keep sending cannot hold the drain.
     * The listener and its connections stay open for the replies still to
     * be sent (closing the listener would close them); its socket file goes,
     * so that new clients fail to connect at once instead of waiting. */
    stop_watchdog(s);
    if (strncmp(s->opt.url, "ipc://", 6) == 0)
        unlink(s->opt.url + 6);
    int64_t give_up = units_now_ms() + drain_ms;
    while (atomic_load(&s->busy) > 0 && units_now_ms() < give_up)
        nng_msleep(5);
    size_t left = atomic_load(&s->busy);
    while (atomic_load(&s->in_handler) > 0)
        nng_msleep(1);
    return left;
}

/* What server_close() and its closing thread share. */
struct closer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    server *s;
    int done;
};

/* Stops every call's aio (a receive pending on its context is aborted
 * while the context lives, and nothing can be sent or received on it
 * after), then closes the socket. The other way round, nng 1.5.2 could
 * leave an aio tied to a context the close freed, and nng_aio_stop() after
 * it panicked ("pthread_mutex_lock: Invalid argument"). */
static void stop_and_close(server *s)
{
    for (size_t i = 0; i < s->ncalls; i++)
        nng_aio_stop(s->calls[i].aio);
    nng_close(s->sock);
}

static void *closer_main(void *arg)
{
    struct closer *k = arg;
    stop_and_close(k->s);
    pthread_mutex_lock(&k->mu);
    k->done = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* stop_and_close() on a thread of its own, waited for up to within_ms
 * (< 0: for ever). Returns 0 once closed, -1 if it had not returned by
 * then: the thread and what it uses are left to the process's exit. */
static int close_socket_within(server *s, int64_t within_ms)
{
    if (within_ms < 0) {
        stop_and_close(s);
        return 0;
    }
    struct closer *k = calloc(1, sizeof *k);
    pthread_t t;
    if (k == NULL)
        return close_socket_within(s, -1);
    pthread_mutex_init(&k->mu, NULL);
    units_cond_init(&k->cv);
    k->s = s;
    if (pthread_create(&t, NULL, closer_main, k) != 0) {
        free(k);
        return close_socket_within(s, -1);
    }
    int64_t give_up = units_now_ms() + within_ms;
    pthread_mutex_lock(&k->mu);
    while (!k->done && units_now_ms() < give_up)
        units_cond_wait_ms(&k->cv, &k->mu, give_up - units_now_ms());
    int done = k->done;
    pthread_mutex_unlock(&k->mu);
    if (!done) {
        pthread_detach(t);
        return -1;
    }
    pthread_join(t, NULL);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    free(k);
    return 0;
}

int server_close(server *s, int64_t within_ms)
{
    if (s == NULL)
        return 0;
    stop_watchdog(s);
    if (close_socket_within(s, within_ms) != 0) /* it aborts receives and unsent replies */
        return -1;
    for (size_t i = 0; i < s->ncalls; i++) {
        nng_aio_free(s->calls[i].aio);
        codec_request_free(s->calls[i].req);
        if (s->calls[i].reply != NULL)
            nng_msg_free(s->calls[i].reply);
    }
    free(s->calls);
    socklock_drop(&s->lock); /* after the socket: the path is free only now */
    pthread_cond_destroy(&s->watchdog_cv);
    pthread_mutex_destroy(&s->watchdog_mu);
    pthread_mutex_destroy(&s->lst_mu);
    pthread_mutex_destroy(&s->park_mu);
    free(s);
    return 0;
}

void server_destroy(server *s)
{
    server_close(s, -1);
}
