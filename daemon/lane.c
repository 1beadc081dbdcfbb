/* The read lane; see lane.h.
 *
 * A read is nine commands, written in one go: MULTI, GET nsver, GET data,
 * PTTL data, GET swr, EXISTS neg, PTTL neg, TIME, EXEC. The keys are the
 * Get script's (l2.c), built here under the version the caller believes
 * current, and EXEC runs them atomically, so the answer is what the script
 * would have returned whenever that version is still Redis's. Redis answers
 * in order: the reads in flight are a FIFO ring, and each takes nine
 * replies (+OK, seven +QUEUED, then EXEC's array).
 *
 * Threads: callers of lane_get() append and write under `mu`; the lane's
 * thread reads under `mu` and calls done() outside it. The thread polls the
 * socket and an eventfd until the earliest `due` of the reads in flight (a
 * read's deadline, or when Redis has taken too long); a caller writes the
 * eventfd only when its read is due before the thread means to wake, when
 * the socket would not take all of the write, or when the write failed.
 * A function whose name ends in _locked expects `mu` held by its caller. */
#include "lane.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "answer.h"
#include "backoff.h"
#include "log.h"
#include "units.h"

#define NCOMMANDS    9
#define IDLE_WAKE_MS 1000

typedef struct slot {
    void *req; /* NULL once answered LANE_TIMEOUT; its replies are dropped */
    lane_done_fn done; /* whom to tell, and its argument */
    void *arg;
    int64_t sent_at;
    int64_t due; /* min(deadline, sent_at + timeout) */
    uint64_t version;
    int left; /* replies still to come */
} slot;

/* What the thread hands to done() after it lets go of `mu`. */
typedef struct landing {
    void *req;
    lane_done_fn done;
    void *arg;
    redisReply *reply; /* EXEC's; NULL with a lane_status */
    lane_status status;
    int64_t sent_at;
    uint64_t version;
} landing;

struct lane {
    /* mu guards io (its output buffer and its reader alike), the ring and
     * every flag down to wake_at. Only the lane's thread sets or frees io. */
    pthread_mutex_t mu;
    l2io *io; /* owned; NULL while down */
    slot *ring;        /* owned: cap slots, n in flight from head */
    size_t cap, head, n;
    int want_write; /* part of a write is still in io's buffer */
    int broken;     /* a caller's write failed: the thread drops io */
    int hung;       /* the last connection was dropped for not answering */
    int stopping;
    int64_t wake_at; /* when the thread will wake at the latest */
    int wakefd;      /* eventfd: callers wake the thread through it */
    pthread_t thread;
    landing *out; /* owned, cap entries; used by the thread alone, without mu */
    config_redis_url url;
    int64_t connect_timeout_ms, timeout_ms;
    lane_done_fn done;
    void *arg;
    atomic_int up;
    atomic_uint_fast64_t reads;
    int assume; /* lane_assume_version(): ECHO the version instead of reading it */
};

static void wake(lane *ln)
{
    uint64_t one = 1;
    if (write(ln->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("read lane: cannot wake its thread: %s", strerror(errno));
}

int lane_get(lane *ln, const l2_key *k, uint64_t version, int64_t deadline, void *req)
{
    return lane_get_to(ln, k, version, deadline, req, ln->done, ln->arg);
}

/* Appends the nine commands of a read of k to io's buffer and its slot to
 * the ring; returns 0, or -1 when the lane cannot take it (down, full,
 * stopping, or out of memory). Sets *signal when the thread must wake
 * sooner than it means to. Needs mu held. */
static int append_locked(lane *ln, const l2_key *k, uint64_t version, int64_t deadline,
                         void *req, lane_done_fn done, void *arg, int64_t now, int *signal)
{
    char vkey[KS_NSVER_KEY_MAX], small[512];
    size_t vklen = ks_nsver_key(vkey, k->prefix, k->ns, k->nslen);
    if (vklen == 0 || ln->io == NULL || ln->broken || ln->stopping || ln->n == ln->cap)
        return -1;
    /* the data key and its swr and neg companions (keyspace.h) */
    size_t one = ks_data_key_max(k->prefix, k->nslen, version, k->klen);
    char *buf = 3 * one <= sizeof small ? small : malloc(3 * one);
    if (buf == NULL)
        return -1;
    static const enum ks_kind kind[3] = {KS_DATA, KS_SWR, KS_NEG};
    const char *keys[3];
    size_t lens[3];
    for (int i = 0; i < 3; i++) {
        keys[i] = buf + (size_t)i * one;
        lens[i] = ks_data_key(buf + (size_t)i * one, k->prefix, k->ns, k->nslen, version, kind[i],
                              k->key, k->klen);
    }
    /* on a Cluster the version key is on another slot: EXEC then answers
     * the version the read assumes, and the reply keeps its shape */
    char ver[24];
    if (ln->assume)
        vklen = (size_t)snprintf(ver, sizeof ver, "%" PRIu64, version);
    const char *vcmd = ln->assume ? "ECHO" : "GET", *varg = ln->assume ? ver : vkey;
    const char *argv[NCOMMANDS][3] = {{"MULTI"},         {vcmd, varg},     {"GET", keys[0]},
                                      {"PTTL", keys[0]}, {"GET", keys[1]}, {"EXISTS", keys[2]},
                                      {"PTTL", keys[2]}, {"TIME"},         {"EXEC"}};
    const size_t argl[NCOMMANDS][3] = {{5},          {strlen(vcmd), vklen}, {3, lens[0]},
                                       {4, lens[0]}, {3, lens[1]}, {6, lens[2]},
                                       {4, lens[2]}, {4},          {4}};
    static const int argc[NCOMMANDS] = {1, 2, 2, 2, 2, 2, 2, 1, 1};
    for (int i = 0; i < NCOMMANDS && !ln->broken; i++)
        if (l2io_append(ln->io, argc[i], argv[i], argl[i]) != 0)
            ln->broken = 1; /* out of memory: the replies would not match the ring */
    if (buf != small)
        free(buf);
    slot *s = &ln->ring[(ln->head + ln->n++) % ln->cap];
    *s = (slot){.req = req,
                .done = done,
                .arg = arg,
                .sent_at = now,
                .due = deadline < now + ln->timeout_ms ? deadline : now + ln->timeout_ms,
                .version = version,
                .left = NCOMMANDS};
    *signal |= s->due < ln->wake_at;
    if (!ln->broken)
        atomic_fetch_add_explicit(&ln->reads, 1, memory_order_relaxed);
    return 0;
}

/* Writes what the buffer holds, as far as the socket takes it. Needs mu
 * held; sets *signal when the thread must take over. */
static void flush_locked(lane *ln, int *signal)
{
    int written = 0;
    if (ln->broken)
        *signal = 1;
    else if (!ln->want_write && l2io_flush(ln->io, &written) != 0)
        ln->broken = 1, *signal = 1;
    else if (!written)
        ln->want_write = 1, *signal = 1;
}

int lane_get_to(lane *ln, const l2_key *k, uint64_t version, int64_t deadline, void *req,
                lane_done_fn done, void *arg)
{
    void *reqs[1] = {req};
    return lane_get_many(ln, &k, 1, version, deadline, reqs, done, arg) == 1 ? 0 : -1;
}

size_t lane_get_many(lane *ln, const l2_key *const *ks, size_t n, uint64_t version,
                     int64_t deadline, void *const *reqs, lane_done_fn done, void *arg)
{
    int signal = 0;
    size_t sent = 0;
    pthread_mutex_lock(&ln->mu);
    int64_t now = units_now_ms(); /* under mu: the ring is in sent_at order */
    while (sent < n &&
           append_locked(ln, ks[sent], version, deadline, reqs[sent], done, arg, now, &signal) == 0)
        sent++;
    if (sent > 0)
        flush_locked(ln, &signal);
    pthread_mutex_unlock(&ln->mu);
    if (signal)
        wake(ln);
    return sent;
}

/* EXEC's array as the Get script's answer: L2_OK or L2_NIL with *v filled
 * (v owns r then); else r is freed and the answer is LANE_MOVED or
 * LANE_FELL when Redis holds another version than the one assumed (in
 * v->version; 0 when it holds none), or
 * LANE_RETRY when the reply is not what the nine commands return (an error
 * element: a key of the wrong type, say; the script will say which). */
/* TIME's {seconds, microseconds} in ms; seconds past what ms can hold
 * (not Redis's) are taken as 0 rather than overflowed. */
static int64_t time_ms(const redisReply *t)
{
    int64_t s = strtoll(t->element[0]->str, NULL, 10), ms;
    int64_t us = strtoll(t->element[1]->str, NULL, 10) % 1000000;
    if (__builtin_mul_overflow(s, 1000, &ms) || __builtin_add_overflow(ms, us / 1000, &ms))
        ms = 0;
    return ms;
}

lane_status lane_parse(redisReply *r, uint64_t version, l2_value *v)
{
    memset(v, 0, sizeof *v);
    redisReply **e = r->element;
    lane_status status = LANE_RETRY;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != NCOMMANDS - 2 ||
        e[2]->type != REDIS_REPLY_INTEGER || e[4]->type != REDIS_REPLY_INTEGER ||
        e[5]->type != REDIS_REPLY_INTEGER || e[6]->type != REDIS_REPLY_ARRAY ||
        e[6]->elements != 2 || e[6]->element[0]->type != REDIS_REPLY_STRING ||
        e[6]->element[1]->type != REDIS_REPLY_STRING)
        goto retry;
    for (int i = 0; i < 4; i++)
        if (e[i]->type != REDIS_REPLY_STRING && e[i]->type != REDIS_REPLY_NIL &&
            e[i]->type != REDIS_REPLY_INTEGER)
            goto retry;
    uint64_t held = e[0]->type == REDIS_REPLY_STRING ? strtoull(e[0]->str, NULL, 10) : 0;
    if (held != version) { /* 0: Redis lost the version key, so it fell */
        status = held > version ? LANE_MOVED : LANE_FELL;
        v->version = held;
        goto retry;
    }
    v->version = version;
    v->reply_ = r;
    answer_raw raw = {
        .has_value = e[1]->type == REDIS_REPLY_STRING,
        .pttl_ms = e[2]->integer,
        .has_fresh = e[3]->type == REDIS_REPLY_STRING,
        .fresh_until = e[3]->type == REDIS_REPLY_STRING ? strtoll(e[3]->str, NULL, 10) : 0,
        .now_ms = time_ms(e[6]),
        .negative = e[4]->integer == 1,
        .neg_pttl_ms = e[5]->integer,
    };
    if (raw.has_value) {
        v->data = e[1]->str;
        v->len = e[1]->len;
    }
    return answer_decode(&raw, v) == L2_OK ? LANE_OK : LANE_NIL;
retry:
    freeReplyObject(r);
    return status;
}

/* Takes every read in flight off the ring into out[] with `status`;
 * returns how many. Needs mu held. */
static size_t take_all_locked(lane *ln, lane_status status, landing *out)
{
    size_t n = 0;
    for (; ln->n > 0; ln->n--, ln->head = (ln->head + 1) % ln->cap) {
        slot *s = &ln->ring[ln->head];
        if (s->req != NULL)
            out[n++] = (landing){.req = s->req,
                                 .done = s->done,
                                 .arg = s->arg,
                                 .status = status,
                                 .sent_at = s->sent_at};
    }
    return n;
}

/* Drops the connection; every read in flight gets `status`: LANE_RETRY
 * after an I/O error (the lane reconnects at once), LANE_TIMEOUT when
 * Redis stopped answering (the lane waits out a backoff). Needs mu held. */
static size_t drop_locked(lane *ln, const char *why, lane_status status, landing *out)
{
    log_warn("read lane: %s; Gets go through the workers until it reconnects", why);
    l2io_free(ln->io);
    ln->io = NULL;
    ln->want_write = ln->broken = 0;
    ln->hung = status == LANE_TIMEOUT;
    atomic_store(&ln->up, 0);
    return take_all_locked(ln, status, out);
}

/* Reads what Redis sent and takes the reads it completed, and those past
 * their due time, off the ring into out[]. Returns how many. Needs mu
 * held. */
static size_t collect_locked(lane *ln, int readable, int writable, int64_t now, landing *out)
{
    char why[200];
    int done;
    if (ln->broken)
        return drop_locked(ln, "a write to redis failed", LANE_RETRY, out);
    /* TLS may need to read before a write goes on: readable retries it too. */
    if ((writable || readable) && ln->want_write) {
        if (l2io_flush(ln->io, &done) != 0) {
            snprintf(why, sizeof why, "%s", l2io_errstr(ln->io));
            return drop_locked(ln, why, LANE_RETRY, out);
        }
        ln->want_write = !done;
    }
    if (readable && l2io_fill(ln->io) != 0) {
        snprintf(why, sizeof why, "%s", l2io_errstr(ln->io));
        return drop_locked(ln, why, LANE_RETRY, out);
    }
    size_t n = 0;
    redisReply *r;
    while (ln->n > 0) {
        if (l2io_next(ln->io, &r) != 0) {
            snprintf(why, sizeof why, "%s", l2io_errstr(ln->io));
            return n + drop_locked(ln, why, LANE_RETRY, out + n);
        }
        if (r == NULL)
            break;
        slot *s = &ln->ring[ln->head];
        if (--s->left > 0 || s->req == NULL) {
            freeReplyObject(r);
            if (s->left > 0)
                continue;
        } else {
            out[n++] = (landing){.req = s->req,
                                 .done = s->done,
                                 .arg = s->arg,
                                 .reply = r,
                                 .sent_at = s->sent_at,
                                 .version = s->version};
        }
        ln->head = (ln->head + 1) % ln->cap;
        ln->n--;
    }
    /* The oldest read is at the head: past the timeout, Redis is hung. */
    if (ln->n > 0 && now >= ln->ring[ln->head].sent_at + ln->timeout_ms) {
        snprintf(why, sizeof why, "redis did not answer within %" PRId64 " ms", ln->timeout_ms);
        return n + drop_locked(ln, why, LANE_TIMEOUT, out + n);
    }
    for (size_t i = 0; i < ln->n; i++) {
        slot *s = &ln->ring[(ln->head + i) % ln->cap];
        if (s->req != NULL && s->due <= now) {
            out[n++] = (landing){.req = s->req,
                                 .done = s->done,
                                 .arg = s->arg,
                                 .status = LANE_TIMEOUT,
                                 .sent_at = s->sent_at};
            s->req = NULL;
        }
    }
    return n;
}

/* When the thread must wake next: the earliest due read, the oldest read's
 * timeout (even one already answered), or in a while. Needs mu held. */
static int64_t next_wake_locked(lane *ln, int64_t now)
{
    int64_t at = now + IDLE_WAKE_MS;
    if (ln->n > 0 && ln->ring[ln->head].sent_at + ln->timeout_ms < at)
        at = ln->ring[ln->head].sent_at + ln->timeout_ms;
    for (size_t i = 0; i < ln->n; i++) {
        slot *s = &ln->ring[(ln->head + i) % ln->cap];
        if (s->req != NULL && s->due < at)
            at = s->due;
    }
    return at;
}

static void deliver(lane *ln, landing *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        landing *l = &out[i];
        if (l->reply == NULL) {
            l->done(l->arg, l->req, l->status, NULL, l->sent_at);
            continue;
        }
        l2_value v;
        lane_status status = lane_parse(l->reply, l->version, &v);
        int with_v =
            status == LANE_OK || status == LANE_NIL || status == LANE_MOVED || status == LANE_FELL;
        l->done(l->arg, l->req, status, with_v ? &v : NULL, l->sent_at);
    }
}

/* Connects (blocking, with the connect timeout) and makes the socket
 * non-blocking. Returns the connection or NULL. */
static l2io *connect_lane(lane *ln, int was_up)
{
    char err[600];
    l2io *io = l2conn_dial(&ln->url, ln->connect_timeout_ms, err, sizeof err);
    if (io == NULL) {
        if (was_up)
            log_warn("read lane: %s", err);
        return NULL;
    }
    const char *ping[] = {"PING"};
    redisReply *pong = l2io_command(io, 1, ping, NULL); /* a paused Redis accepts, but is not up */
    if (pong == NULL || pong->type == REDIS_REPLY_ERROR) {
        if (was_up)
            log_warn("read lane: PING: %s", pong != NULL ? pong->str : l2io_errstr(io));
        if (pong != NULL)
            freeReplyObject(pong);
        l2io_free(io);
        return NULL;
    }
    freeReplyObject(pong);
    if (l2io_set_nonblocking(io) != 0) {
        log_warn("read lane: cannot make the socket non-blocking: %s", strerror(errno));
        l2io_free(io);
        return NULL;
    }
    return io;
}

static void *lane_main(void *arg)
{
    lane *ln = arg;
    backoff bo = backoff_make(BACKOFF_MAX_MS);
    int64_t retry_at = 0;
    int was_up = 1;
    for (;;) {
        int64_t now = units_now_ms();
        pthread_mutex_lock(&ln->mu);
        if (ln->stopping) {
            size_t n = take_all_locked(ln, LANE_RETRY, ln->out);
            pthread_mutex_unlock(&ln->mu);
            deliver(ln, ln->out, n);
            return NULL;
        }
        l2io *io = ln->io;
        int events = POLLIN | (ln->want_write ? POLLOUT : 0);
        ln->wake_at = io != NULL ? next_wake_locked(ln, now) : retry_at;
        int64_t wait = ln->wake_at - now;
        pthread_mutex_unlock(&ln->mu);

        if (io == NULL && now >= retry_at) {
            io = connect_lane(ln, was_up);
            if (io == NULL) {
                retry_at = units_now_ms() + backoff_fail(&bo);
                was_up = 0;
                continue;
            }
            pthread_mutex_lock(&ln->mu);
            ln->io = io;
            pthread_mutex_unlock(&ln->mu);
            atomic_store(&ln->up, 1);
            backoff_reset(&bo);
            was_up = 1;
            continue;
        }
        struct pollfd p[2] = {{.fd = ln->wakefd, .events = POLLIN},
                              {.fd = io != NULL ? l2io_fd(io) : -1, .events = (short)events}};
        if (poll(p, 2, wait > 0 ? (int)wait : 0) < 0 && errno != EINTR) {
            log_error("read lane: poll: %s", strerror(errno));
            poll(NULL, 0, 10);
        }
        if (p[0].revents & POLLIN) {
            uint64_t count;
            if (read(ln->wakefd, &count, sizeof count) < 0 && errno != EAGAIN)
                log_warn("read lane: eventfd: %s", strerror(errno));
        }
        if (io == NULL)
            continue;
        pthread_mutex_lock(&ln->mu);
        size_t n =
            collect_locked(ln, (p[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0,
                           (p[1].revents & (POLLOUT | POLLERR)) != 0, units_now_ms(), ln->out);
        if (ln->io == NULL && ln->hung) { /* Redis is stuck: give it a while */
            retry_at = units_now_ms() + backoff_fail(&bo);
        } else if (ln->io == NULL) { /* a connection that broke: try again at once */
            retry_at = units_now_ms();
        }
        pthread_mutex_unlock(&ln->mu);
        deliver(ln, ln->out, n);
    }
}

int lane_create(lane **out, const config_redis_url *url, int64_t connect_timeout_ms,
                int64_t timeout_ms, size_t capacity, lane_done_fn done, void *arg)
{
    lane *ln = calloc(1, sizeof *ln);
    if (ln == NULL)
        return ENOMEM;
    ln->url = *url;
    ln->connect_timeout_ms = connect_timeout_ms;
    ln->timeout_ms = timeout_ms;
    ln->cap = capacity > 0 ? capacity : 1;
    ln->done = done;
    ln->arg = arg;
    ln->ring = calloc(ln->cap, sizeof *ln->ring);
    ln->out = calloc(ln->cap, sizeof *ln->out);
    ln->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rv = ln->ring == NULL || ln->out == NULL ? ENOMEM : ln->wakefd < 0 ? errno : 0;
    if (rv == 0)
        rv = pthread_mutex_init(&ln->mu, NULL);
    if (rv == 0 && (rv = pthread_create(&ln->thread, NULL, lane_main, ln)) != 0)
        pthread_mutex_destroy(&ln->mu);
    if (rv != 0) {
        if (ln->wakefd >= 0)
            close(ln->wakefd);
        free(ln->ring);
        free(ln->out);
        free(ln);
        return rv;
    }
    *out = ln;
    return 0;
}

void lane_assume_version(lane *ln)
{
    ln->assume = 1;
}

int lane_up(lane *ln)
{
    return atomic_load(&ln->up);
}

uint64_t lane_reads(lane *ln)
{
    return atomic_load_explicit(&ln->reads, memory_order_relaxed);
}

void lane_destroy(lane *ln)
{
    if (ln == NULL)
        return;
    pthread_mutex_lock(&ln->mu);
    ln->stopping = 1;
    pthread_mutex_unlock(&ln->mu);
    wake(ln);
    pthread_join(ln->thread, NULL);
    l2io_free(ln->io);
    close(ln->wakefd);
    pthread_mutex_destroy(&ln->mu);
    free(ln->ring);
    free(ln->out);
    free(ln);
}
