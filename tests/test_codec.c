/* Unit: the codec turns requests and replies into bytes and back, rejects
 * bytes that are not a message, and reports unknown methods. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static ProtobufCBinaryData bin(const void *p, size_t n)
{
    return (ProtobufCBinaryData){n, (uint8_t *)p};
}

Test(codec, set_request_round_trips_with_binary_fields_and_ttl_presence)
{
    const char key[] = {'k', 0, 'y'};
    pb_set_request s = NEARCACHE__V1__SET_REQUEST__INIT;
    s.ns = bin("ns", 2);
    s.key = bin(key, sizeof key);
    s.value = bin("\0\1\2", 3);
    s.ttl_case = NEARCACHE__V1__SET_REQUEST__TTL_TTL_MS;
    s.ttl_ms = 0; /* present, even though zero */
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.id = 42;
    req.timeout_ms = 250;
    req.method_case = METHOD(SET);
    req.set = &s;
    uint8_t buf[128];
    size_t n = codec_request_pack(&req, buf);
    cr_assert_eq(n, codec_request_size(&req));
    pb_request *back = codec_request_unpack(buf, n);
    cr_assert_not_null(back);
    cr_assert_eq(back->id, 42);
    cr_assert_eq(back->timeout_ms, 250);
    cr_assert_eq(back->method_case, METHOD(SET));
    cr_assert_eq(back->set->key.len, 3);
    cr_assert_arr_eq(back->set->key.data, key, 3);
    cr_assert_arr_eq(back->set->value.data, "\0\1\2", 3);
    cr_assert_eq(back->set->ttl_case, NEARCACHE__V1__SET_REQUEST__TTL_TTL_MS);
    cr_assert_eq(back->set->ttl_ms, 0);
    cr_assert_eq(codec_request_unknown_field(back), 0);
    codec_request_free(back);
}

Test(codec, absent_ttl_is_distinct_from_zero)
{
    pb_set_request s = NEARCACHE__V1__SET_REQUEST__INIT;
    s.ns = bin("ns", 2);
    s.key = bin("k", 1);
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(SET);
    req.set = &s;
    uint8_t buf[64];
    size_t n = codec_request_pack(&req, buf);
    pb_request *back = codec_request_unpack(buf, n);
    cr_assert_not_null(back);
    cr_assert_neq(back->set->ttl_case, NEARCACHE__V1__SET_REQUEST__TTL_TTL_MS);
    codec_request_free(back);
}

Test(codec, reply_round_trips_code_message_and_result)
{
    pb_get_reply g = NEARCACHE__V1__GET_REPLY__INIT;
    g.value = bin("hello", 5);
    g.source = NEARCACHE__V1__SOURCE__SOURCE_L1;
    g.ttl_ms = 999;
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.id = 7;
    r.code = CODE(OK);
    r.result_case = RESULT(GET);
    r.get = &g;
    uint8_t buf[64];
    size_t n = codec_reply_pack(&r, buf);
    cr_assert_eq(n, codec_reply_size(&r));
    pb_reply *back = codec_reply_unpack(buf, n);
    cr_assert_not_null(back);
    cr_assert_eq(back->id, 7);
    cr_assert_eq(back->result_case, RESULT(GET));
    cr_assert_eq(back->get->value.len, 5);
    cr_assert_eq(back->get->source, NEARCACHE__V1__SOURCE__SOURCE_L1);
    cr_assert_eq(back->get->ttl_ms, 999);
    codec_reply_free(back);
}

/* A Get reply of `value` (len bytes), packed and decoded. */
static pb_reply *get_reply_of(const void *value, size_t len)
{
    pb_get_reply g = NEARCACHE__V1__GET_REPLY__INIT;
    g.value = bin(value, len);
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.result_case = RESULT(GET);
    r.get = &g;
    uint8_t buf[64];
    pb_reply *back = codec_reply_unpack(buf, codec_reply_pack(&r, buf));
    cr_assert_not_null(back);
    return back;
}

Test(codec, a_reply_value_is_taken_as_decoded_and_nul_terminated)
{
    pb_reply *r = get_reply_of("a\0c", 3);
    const void *decoded = r->get->value.data;
    char *v = codec_reply_take_bytes(&r->get->value);
    cr_assert_eq(v, decoded, "the value was copied again");
    cr_assert_arr_eq(v, "a\0c", 4); /* and a NUL after it */
    cr_assert_null(r->get->value.data, "the field still holds the value");
    cr_assert_eq(r->get->value.len, 0);
    codec_reply_free(r); /* without freeing the value */
    free(v);
    r = get_reply_of("", 0);
    v = codec_reply_take_bytes(&r->get->value);
    cr_assert_not_null(v);
    cr_assert_str_eq(v, "");
    codec_reply_free(r);
    free(v);
}

Test(codec, garbage_and_truncated_bytes_do_not_decode)
{
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    cr_assert_null(codec_request_unpack(junk, sizeof junk));
    pb_get_request g = NEARCACHE__V1__GET_REQUEST__INIT;
    g.ns = bin("namespace", 9);
    g.key = bin("key", 3);
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(GET);
    req.get = &g;
    uint8_t buf[64];
    size_t n = codec_request_pack(&req, buf);
    for (size_t cut = 1; cut < n; cut++) {
        pb_request *r = codec_request_unpack(buf, n - cut);
        /* A prefix may happen to be a valid shorter message; it must never
         * be a Get with the full key. */
        if (r != NULL)
            cr_assert(r->method_case != METHOD(GET) || r->get->key.len != 3);
        codec_request_free(r);
    }
}

Test(codec, unknown_method_field_is_reported)
{
    const uint8_t msg[] = {0x08, 0x01, 0xea, 0x01, 0x00}; /* id 1, field 29 */
    pb_request *r = codec_request_unpack(msg, sizeof msg);
    cr_assert_not_null(r);
    cr_assert_eq(r->method_case, NEARCACHE__V1__REQUEST__METHOD__NOT_SET);
    cr_assert_eq(codec_request_unknown_field(r), 29);
    codec_request_free(r);
}

Test(codec, code_names_follow_grpc)
{
    cr_assert_str_eq(codec_code_name(CODE(OK)), "OK");
    cr_assert_str_eq(codec_code_name(CODE(NOT_FOUND)), "NOT_FOUND");
    cr_assert_str_eq(codec_code_name(CODE(RESOURCE_EXHAUSTED)), "RESOURCE_EXHAUSTED");
    cr_assert_str_eq(codec_code_name(CODE(UNAVAILABLE)), "UNAVAILABLE");
    cr_assert_str_eq(codec_code_name(CODE(UNAUTHENTICATED)), "UNAUTHENTICATED");
    cr_assert_str_eq(codec_code_name(99), "UNKNOWN");
    cr_assert_str_eq(codec_code_name(-1), "UNKNOWN");
}
