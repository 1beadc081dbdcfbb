/* Integration: every kind of bad request gets its status and a message that
 * names the problem, and the daemon goes on serving other clients. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static h_fleet fx; /* one daemon */

static void up(void)
{
    h_fleet_start(&fx, 1, "--max-key-size", "64", "--max-value-size", "64KB", NULL);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("good"), NC_STR("value"), 60000, 0), NC_OK);
}

/* The daemon still serves a well-formed request, and counted the bad one. */
static void down(void)
{
    void *v;
    size_t len;
    cr_expect(h_daemon_alive(&fx.node[0]), "nearcached died");
    cr_expect_eq(nc_get(fx.cl[0], NC_STR("ns"), NC_STR("good"), &v, &len, 0), NC_OK);
    cr_expect_str_eq(v, "value");
    nc_free(v);
    h_fleet_stop(&fx);
}

TestSuite(bad, .init = up, .fini = down, .timeout = 30);

/* Packs a request and sends it raw; returns the reply (asserts one came). */
static pb_reply *send_request(pb_request *req)
{
    size_t n = codec_request_size(req);
    uint8_t *buf = malloc(n ? n : 1);
    codec_request_pack(req, buf);
    pb_reply *r = h_raw(&fx.node[0], buf, n, 2000);
    free(buf);
    cr_assert_not_null(r, "no reply");
    return r;
}

static void expect_status(pb_reply *r, int code, const char *words)
{
    cr_expect_eq(r->code, code, "status %s, expected %s (message: %s)", codec_code_name(r->code),
                 codec_code_name(code), r->message);
    cr_expect_not_null(strstr(r->message, words), "message \"%s\" lacks \"%s\"", r->message, words);
    codec_reply_free(r);
}

static pb_reply *get_raw(ProtobufCBinaryData ns, ProtobufCBinaryData key)
{
    pb_get_request g = NEARCACHE__V1__GET_REQUEST__INIT;
    g.ns = ns;
    g.key = key;
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.id = 77;
    req.method_case = METHOD(GET);
    req.get = &g;
    return send_request(&req);
}

static ProtobufCBinaryData text(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

Test(bad, garbage_bytes_are_invalid_argument)
{
    const char junk[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff garbage";
    pb_reply *r = h_raw(&fx.node[0], junk, sizeof junk, 2000);
    cr_assert_not_null(r);
    expect_status(r, CODE(INVALID_ARGUMENT), "malformed request");
    cr_assert_eq(h_stat(fx.cl[0], "bad_requests"), 1);
}

Test(bad, truncated_protobuf_is_invalid_argument)
{
    pb_get_request g = NEARCACHE__V1__GET_REQUEST__INIT;
    g.ns = text("ns");
    g.key = text("a-key-long-enough-to-cut");
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(GET);
    req.get = &g;
    uint8_t buf[256];
    size_t n = codec_request_pack(&req, buf);
    pb_reply *r = h_raw(&fx.node[0], buf, n - 5, 2000);
    cr_assert_not_null(r);
    expect_status(r, CODE(INVALID_ARGUMENT), "malformed request");
}

Test(bad, empty_message_names_no_method)
{
    pb_reply *r = h_raw(&fx.node[0], "", 0, 2000);
    cr_assert_not_null(r);
    expect_status(r, CODE(INVALID_ARGUMENT), "no method");
}

Test(bad, unknown_method_is_unimplemented)
{
    /* id = 5, then field 29 (reserved for later methods), length-delimited
     * and empty: its tag (29 << 3 | 2 = 234) is the varint EA 01. */
    const uint8_t unknown[] = {0x08, 0x05, 0xea, 0x01, 0x00};
    pb_reply *r = h_raw(&fx.node[0], unknown, sizeof unknown, 2000);
    cr_assert_not_null(r);
    cr_expect_eq(r->id, 5);
    expect_status(r, CODE(UNIMPLEMENTED), "field 29");
}

Test(bad, reply_echoes_the_request_id)
{
    pb_reply *r = get_raw(text("ns"), text("absent"));
    cr_assert_eq(r->id, 77);
    expect_status(r, CODE(NOT_FOUND), "not found");
}

Test(bad, empty_key_is_invalid_argument)
{
    expect_status(get_raw(text("ns"), text("")), CODE(INVALID_ARGUMENT), "key is empty");
}

Test(bad, empty_namespace_is_invalid_argument)
{
    expect_status(get_raw(text(""), text("k")), CODE(INVALID_ARGUMENT), "namespace is empty");
}

Test(bad, namespace_with_colon_is_invalid_argument)
{
    expect_status(get_raw(text("a:b"), text("k")), CODE(INVALID_ARGUMENT), "contains ':'");
}

Test(bad, oversized_key_is_invalid_argument)
{
    char key[65];
    memset(key, 'k', sizeof key);
    expect_status(get_raw(text("ns"), (ProtobufCBinaryData){sizeof key, (uint8_t *)key}),
                  CODE(INVALID_ARGUMENT), "key is 65 bytes; max_key_size is 64");
}

Test(bad, oversized_namespace_is_invalid_argument)
{
    char ns[200];
    memset(ns, 'n', sizeof ns);
    expect_status(get_raw((ProtobufCBinaryData){sizeof ns, (uint8_t *)ns}, text("k")),
                  CODE(INVALID_ARGUMENT), "max_namespace_size");
}

static pb_reply *set_raw(size_t vlen, int has_ttl, int64_t ttl)
{
    uint8_t *value = calloc(1, vlen ? vlen : 1);
    pb_set_request s = NEARCACHE__V1__SET_REQUEST__INIT;
    s.ns = text("ns");
    s.key = text("k");
    s.value = (ProtobufCBinaryData){vlen, value};
    if (has_ttl) {
        s.ttl_case = NEARCACHE__V1__SET_REQUEST__TTL_TTL_MS;
        s.ttl_ms = ttl;
    }
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(SET);
    req.set = &s;
    pb_reply *r = send_request(&req);
    free(value);
    return r;
}

Test(bad, oversized_value_is_resource_exhausted)
{
    expect_status(set_raw(64 * 1024 + 1, 0, 0), CODE(RESOURCE_EXHAUSTED),
                  "value is 65537 bytes; max_value_size is 65536");
    pb_reply *r = set_raw(64 * 1024, 0, 0);
    cr_expect_eq(r->code, CODE(OK), "a value of exactly max_value_size: %s", r->message);
    codec_reply_free(r);
}

Test(bad, ttl_zero_is_invalid_argument)
{
    expect_status(set_raw(3, 1, 0), CODE(INVALID_ARGUMENT), "ttl_ms must be positive (got 0)");
}

Test(bad, negative_ttl_is_invalid_argument)
{
    expect_status(set_raw(3, 1, -5), CODE(INVALID_ARGUMENT), "ttl_ms must be positive (got -5)");
}

Test(bad, message_over_the_socket_cap_is_dropped_without_harm)
{
    /* Far beyond max_value_size: nng refuses it at the socket and drops
     * that connection; no reply comes, and others are unaffected. */
    size_t n = 4 * 1024 * 1024;
    uint8_t *huge = calloc(1, n);
    pb_reply *r = h_raw(&fx.node[0], huge, n, 1000);
    free(huge);
    cr_expect_null(r, "a 4 MiB message was answered");
    codec_reply_free(r);
}

Test(bad, bad_requests_do_not_disturb_a_concurrent_client)
{
    for (int i = 0; i < 50; i++) {
        codec_reply_free(h_raw(&fx.node[0], "\x0a\xff", 2, 2000));
        void *v;
        size_t len;
        cr_assert_eq(nc_get(fx.cl[0], NC_STR("ns"), NC_STR("good"), &v, &len, 0), NC_OK);
        nc_free(v);
    }
    cr_assert_eq(h_stat(fx.cl[0], "bad_requests"), 50);
}

Test(bad, client_refuses_a_request_larger_than_the_daemon_reads)
{
    /* The daemon would drop such a message without a reply; the client asks
     * the daemon's limit (Ping) and refuses it locally, at once. */
    size_t n = 4 * 1024 * 1024;
    char *huge = calloc(1, n);
    int64_t t0 = h_now_ms();
    int rv = nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k"), (nc_bytes){huge, n}, 60000, 0);
    free(huge);
    cr_assert_eq(rv, NC_ETOOBIG, "got %s: %s", nc_strerror(rv), nc_errmsg());
    cr_assert_eq(nc_status(), CODE(RESOURCE_EXHAUSTED));
    cr_assert_not_null(strstr(nc_errmsg(), "larger than the daemon accepts"), "%s", nc_errmsg());
    /* not sent: the daemon would drop it, and the call wait its 5 s */
    cr_assert_lt(h_now_ms() - t0, 2500, "refused after %lld ms", (long long)(h_now_ms() - t0));
}
