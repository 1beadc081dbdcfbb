/* Integration: libnearcache against a fake daemon in this process (an nng
 * REP socket whose workers answer a Get with its key as the value), for
 * what a real daemon will not do on demand: answer late, never, with
 * another request's id, or speak another protocol version. */
#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define FAKE_WORKERS 4

/* Keys the fake treats specially, by prefix. */
#define SLOW        "slow"        /* answered after SLOW_MS */
#define NEVER       "never"       /* not answered */
#define UNDECODABLE "undecodable" /* answered as a request the daemon cannot decode */
#define SLOW_MS     300

typedef struct fake_worker {
    struct fake *f;
    nng_ctx ctx;
    nng_aio *aio;
    pthread_t thread;
} fake_worker;

typedef struct fake {
    nng_socket sock;
    char url[160];           /* ipc://PATH */
    atomic_ullong id_offset; /* added to the request id in the reply */
    atomic_uint protocol;    /* PingReply.protocol_version (0: left out) */
    fake_worker w[FAKE_WORKERS];
} fake;

static fake fake_;
static nc_client *client;

static int has_prefix(ProtobufCBinaryData b, const char *p)
{
    return b.len >= strlen(p) && memcmp(b.data, p, strlen(p)) == 0;
}

/* Answers one decoded Get (its key is the value) or Ping (with the
 * protocol version of the moment). Returns the reply message. */
static nng_msg *fake_answer(fake *f, const pb_request *req)
{
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.id = req->id + atomic_load(&f->id_offset);
    r.code = CODE(OK);
    pb_ping_reply p = NEARCACHE__V1__PING_REPLY__INIT;
    pb_get_reply g = NEARCACHE__V1__GET_REPLY__INIT;
    if (req->method_case == METHOD(PING)) {
        p.version = "9.8.7";
        p.node_id = "0123456789abcdef";
        p.protocol_version = atomic_load(&f->protocol);
        r.result_case = RESULT(PING);
        r.ping = &p;
    } else if (has_prefix(req->get->key, UNDECODABLE)) { /* as the daemon's call_fail() */
        r.id = 0;
        r.code = CODE(INVALID_ARGUMENT);
        r.message = "malformed request";
    } else {
        g.value = req->get->key;
        g.source = NEARCACHE__V1__SOURCE__SOURCE_L1;
        r.result_case = RESULT(GET);
        r.get = &g;
    }
    nng_msg *m;
    cr_assert_eq(nng_msg_alloc(&m, codec_reply_size(&r)), 0);
    codec_reply_pack(&r, nng_msg_body(m));
    return m;
}

static void *fake_main(void *arg)
{
    fake_worker *w = arg;
    for (;;) {
        nng_ctx_recv(w->ctx, w->aio);
        nng_aio_wait(w->aio);
        if (nng_aio_result(w->aio) != 0)
            return NULL; /* closed */
        nng_msg *m = nng_aio_get_msg(w->aio);
        pb_request *req = codec_request_unpack(nng_msg_body(m), nng_msg_len(m));
        nng_msg_free(m);
        int get = req != NULL && req->method_case == METHOD(GET);
        if (req == NULL || (!get && req->method_case != METHOD(PING)) ||
            (get && has_prefix(req->get->key, NEVER))) {
            codec_request_free(req);
            continue;
        }
        if (get && has_prefix(req->get->key, SLOW))
            h_sleep_ms(SLOW_MS);
        nng_aio_set_msg(w->aio, fake_answer(w->f, req));
        codec_request_free(req);
        nng_ctx_send(w->ctx, w->aio);
        nng_aio_wait(w->aio);
        if (nng_aio_result(w->aio) != 0)
            nng_msg_free(nng_aio_get_msg(w->aio));
    }
}

static void up(void)
{
    static int n;
    fake *f = &fake_;
    snprintf(f->url, sizeof f->url, "ipc:///tmp/nc-test-client-%d-%d.sock", (int)getpid(), n++);
    atomic_init(&f->id_offset, 0);
    atomic_init(&f->protocol, 1);
    cr_assert_eq(nng_rep0_open(&f->sock), 0);
    cr_assert_eq(nng_listen(f->sock, f->url, NULL, 0), 0, "listen %s", f->url);
    for (int i = 0; i < FAKE_WORKERS; i++) {
        fake_worker *w = &f->w[i];
        w->f = f;
        cr_assert_eq(nng_ctx_open(&w->ctx, f->sock), 0);
        cr_assert_eq(nng_aio_alloc(&w->aio, NULL, NULL), 0);
        cr_assert_eq(pthread_create(&w->thread, NULL, fake_main, w), 0);
    }
    cr_assert_eq(nc_open(&client, f->url, 0), NC_OK, "%s", nc_errmsg());
}

static void down(void)
{
    nc_close(client);
    nng_close(fake_.sock);
    for (int i = 0; i < FAKE_WORKERS; i++) {
        pthread_join(fake_.w[i].thread, NULL);
        nng_aio_free(fake_.w[i].aio);
    }
    unlink(fake_.url + strlen("ipc://"));
}

TestSuite(client, .init = up, .fini = down, .timeout = 30);

/* A Get of key; returns its status, and its value in *value (caller frees
 * it; may be NULL). */
static int get(nc_client *c, const char *key, char **value, int timeout_ms)
{
    void *v = NULL;
    size_t len;
    int rv = nc_get(c, NC_STR("ns"), NC_STR(key), &v, &len, timeout_ms);
    if (rv == NC_OK)
        cr_assert_eq(len, strlen(v), "the value of %s is not its key", key);
    if (value != NULL)
        *value = v;
    else
        nc_free(v);
    return rv;
}

Test(client, a_timed_out_call_leaves_no_answer_for_the_next)
{
    for (int i = 0; i < 3; i++) {
        int64_t t0 = h_now_ms();
        int rv = get(client, SLOW, NULL, 100);
        cr_assert_eq(rv, NC_ETIMEDOUT, "got %s: %s", nc_strerror(rv), nc_errmsg());
        cr_assert_lt(h_now_ms() - t0, SLOW_MS, "the timeout did not cut the call short");
        /* The next call reuses the context, and the late answer to the
         * first comes while it waits: it must not be taken for its own. */
        char *v, key[16];
        snprintf(key, sizeof key, SLOW "-%d", i);
        rv = get(client, key, &v, 5000);
        cr_assert_eq(rv, NC_OK, "got %s: %s", nc_strerror(rv), nc_errmsg());
        cr_assert_str_eq(v, key);
        nc_free(v);
    }
}

struct sharer {
    int id, errors;
    char last[200];
};

static void *sharer_main(void *arg)
{
    struct sharer *s = arg;
    for (int i = 0; i < 300; i++) {
        char key[32], *v = NULL;
        snprintf(key, sizeof key, "t%d-%d", s->id, i);
        int rv = get(client, key, &v, 5000);
        if (rv != NC_OK || strcmp(v, key) != 0) {
            snprintf(s->last, sizeof s->last, "%s: %s (got %s)", key, nc_strerror(rv),
                     rv == NC_OK ? v : nc_errmsg());
            s->errors++;
        }
        nc_free(v);
    }
    return NULL;
}

Test(client, threads_sharing_a_client_each_get_their_own_answer)
{
    pthread_t t[8];
    struct sharer s[8];
    for (int i = 0; i < 8; i++) {
        s[i] = (struct sharer){.id = i};
        pthread_create(&t[i], NULL, sharer_main, &s[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(s[i].errors, 0, "thread %d: %d errors, the last: %s", i, s[i].errors,
                     s[i].last);
    }
}

struct waiter {
    nc_client *c;
    int rv;
    int64_t took;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    int64_t t0 = h_now_ms();
    w->rv = get(w->c, NEVER, NULL, 10000);
    w->took = h_now_ms() - t0;
    return NULL;
}

Test(client, close_fails_a_call_waiting_on_another_thread)
{
    struct waiter w = {.rv = -1};
    cr_assert_eq(nc_open(&w.c, fake_.url, 0), NC_OK);
    cr_assert_eq(get(w.c, "warm", NULL, 2000), NC_OK); /* a pair in the pool */
    pthread_t t;
    pthread_create(&t, NULL, waiter_main, &w);
    h_sleep_ms(200); /* until it waits for the answer that never comes */
    nc_close(w.c);
    pthread_join(t, NULL);
    cr_assert_eq(w.rv, NC_ECONNECT, "got %s", nc_strerror(w.rv));
    cr_assert_lt(w.took, 5000, "the call outlived nc_close() by %lld ms", (long long)w.took);
}

Test(client, a_reply_with_another_requests_id_is_a_protocol_error)
{
    atomic_store(&fake_.id_offset, 1);
    void *v = NULL;
    size_t len;
    int rv = nc_get(client, NC_STR("ns"), NC_STR("k"), &v, &len, 2000);
    cr_assert_eq(rv, NC_EPROTO, "got %s: %s", nc_strerror(rv), nc_errmsg());
    cr_assert_null(v, "another request's value was handed out");
    cr_assert_not_null(strstr(nc_errmsg(), "request"), "%s", nc_errmsg());
    atomic_store(&fake_.id_offset, 0);
    cr_assert_eq(get(client, "k", NULL, 2000), NC_OK, "%s", nc_errmsg());
}

Test(client, an_error_for_an_undecodable_request_keeps_its_status)
{
    int rv = get(client, UNDECODABLE, NULL, 2000);
    cr_assert_eq(rv, NC_EINVAL, "got %s: %s", nc_strerror(rv), nc_errmsg());
    cr_assert_eq(nc_status(), CODE(INVALID_ARGUMENT));
    cr_assert_str_eq(nc_errmsg(), "malformed request");
}

Test(client, ping_reports_both_versions_and_refuses_another_protocol)
{
    nc_ping_info info;
    cr_assert_eq(nc_ping_ex(client, &info, 2000), NC_OK, "%s", nc_errmsg());
    cr_assert_str_eq(info.version, "9.8.7");
    cr_assert_eq(info.protocol_version, 1);
    atomic_store(&fake_.protocol, 0); /* a daemon from before the field speaks 1 */
    memset(&info, 0, sizeof info);
    cr_assert_eq(nc_ping_ex(client, &info, 2000), NC_OK, "%s", nc_errmsg());
    cr_assert_eq(info.protocol_version, 1);
    atomic_store(&fake_.protocol, 2);
    int rv = nc_ping(client, NULL, 2000);
    cr_assert_eq(rv, NC_EPROTO, "got %s: %s", nc_strerror(rv), nc_errmsg());
    cr_assert_str_eq(nc_errmsg(), "the daemon speaks wire protocol version 2, this client 1");
}
