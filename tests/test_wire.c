/* Unit: the hand-written Get codec writes exactly protobuf-c's bytes, and its
 * field numbers are those of nearcache.proto (as protobuf-c's descriptors
 * have them). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "wire.h"

static void field_is(const ProtobufCMessageDescriptor *d, const char *name, unsigned want)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    cr_assert_not_null(f, "%s has no field %s", d->name, name);
    cr_assert_eq(f->id, want, "%s.%s is field %u in the .proto, %u in wire.h", d->name, name, f->id,
                 want);
}

/* A oneof's last field is the message's highest: a method added to the proto
 * must move wire.h's *_LAST with it, or the hand decoder would skip it as
 * unknown where protobuf-c checks it. */
static void last_field_is(const ProtobufCMessageDescriptor *d, const char *name, unsigned num)
{
    field_is(d, name, num);
    for (unsigned i = 0; i < d->n_fields; i++)
        cr_assert_leq(d->fields[i].id, num, "%s field %s (%u) is past wire.h's last (%u)", d->name,
                      d->fields[i].name, d->fields[i].id, num);
}

Test(wire, field_numbers_match_the_proto)
{
    const ProtobufCMessageDescriptor *rq = &nearcache__v1__request__descriptor;
    field_is(rq, "id", WIRE_REQUEST_ID);
    field_is(rq, "timeout_ms", WIRE_REQUEST_TIMEOUT_MS);
    field_is(rq, "get", WIRE_REQUEST_GET);
    field_is(rq, "bump_namespace", 17);
    last_field_is(rq, "near_report", WIRE_REQUEST_METHOD_LAST);
    const ProtobufCMessageDescriptor *g = &nearcache__v1__get_request__descriptor;
    field_is(g, "ns", WIRE_GET_REQUEST_NS);
    field_is(g, "key", WIRE_GET_REQUEST_KEY);
    field_is(g, "lease", WIRE_GET_REQUEST_LEASE);
    field_is(g, "lease_ttl_ms", WIRE_GET_REQUEST_LEASE_TTL_MS);
    field_is(g, "slide_ttl_ms", WIRE_GET_REQUEST_SLIDE_TTL_MS);
    cr_assert_eq(g->n_fields, 5, "GetRequest has a field wire.c does not write");
}

static ProtobufCBinaryData bin(const void *p, size_t n)
{
    return (ProtobufCBinaryData){n, (uint8_t *)p};
}

/* Encodes q by hand and with protobuf-c, and compares the bytes. */
static void request_matches(const wire_get_request *q)
{
    pb_get_request g = NEARCACHE__V1__GET_REQUEST__INIT;
    g.ns = bin(q->ns.data, q->ns.len);
    g.key = bin(q->key.data, q->key.len);
    g.lease = q->lease;
    g.lease_ttl_ms = q->lease_ttl_ms;
    g.slide_ttl_ms = q->slide_ttl_ms;
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.id = q->id;
    req.timeout_ms = q->timeout_ms;
    req.method_case = METHOD(GET);
    req.get = &g;
    size_t n = codec_request_size(&req);
    cr_assert_eq(wire_get_request_size(q), n, "size for ns %zu key %zu", q->ns.len, q->key.len);
    uint8_t *want = malloc(n), *got = malloc(n + 1);
    cr_assert_eq(codec_request_pack(&req, want), n);
    got[n] = 0xa5;
    cr_assert_eq(wire_get_request_encode(q, got), n);
    cr_assert_eq(got[n], 0xa5, "wrote past the size");
    cr_assert_arr_eq(got, want, n, "bytes differ (id %llu ns %zu key %zu)",
                     (unsigned long long)q->id, q->ns.len, q->key.len);
    free(want);
    free(got);
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

Test(wire, get_request_is_byte_identical_to_protobuf_c)
{
    static const uint64_t ids[] = {0, 1, 127, 128, 300, UINT64_MAX};
    static const uint32_t timeouts[] = {0, 1, 16384, UINT32_MAX};
    static const size_t lens[] = {0, 1, 127, 128, 16384};
    static const int leases[] = {0, 1, 7};
    static const uint32_t lease_ttls[] = {0, 1, UINT32_MAX};
    static const uint64_t slides[] = {0, 129, UINT64_MAX};
    uint8_t *bytes = malloc(16384);
    for (size_t i = 0; i < 16384; i++)
        bytes[i] = (uint8_t)(i * 7);
    size_t total = COUNT(ids) * COUNT(timeouts) * COUNT(lens) * COUNT(lens) * COUNT(leases) *
                   COUNT(lease_ttls) * COUNT(slides);
    for (size_t i = 0; i < total; i++) {
        size_t k = i;
        wire_get_request q = {0};
        q.id = ids[k % COUNT(ids)], k /= COUNT(ids);
        q.timeout_ms = timeouts[k % COUNT(timeouts)], k /= COUNT(timeouts);
        q.ns = (wire_bytes){bytes, lens[k % COUNT(lens)]}, k /= COUNT(lens);
        q.key = (wire_bytes){bytes + 1, lens[k % COUNT(lens)] - (lens[k % COUNT(lens)] > 0)};
        k /= COUNT(lens);
        q.lease = leases[k % COUNT(leases)], k /= COUNT(leases);
        q.lease_ttl_ms = lease_ttls[k % COUNT(lease_ttls)], k /= COUNT(lease_ttls);
        q.slide_ttl_ms = slides[k % COUNT(slides)];
        request_matches(&q);
    }
    free(bytes);
}

Test(wire, get_request_with_lengths_needing_four_byte_varints)
{
    size_t big = (size_t)1 << 21; /* 2 MiB: a four-byte length */
    uint8_t *bytes = calloc(1, big + 1);
    wire_get_request q = {.id = 5, .ns = {bytes, big}, .key = {bytes, big + 1}};
    request_matches(&q);
    free(bytes);
}

Test(wire, reply_field_numbers_match_the_proto)
{
    const ProtobufCMessageDescriptor *r = &nearcache__v1__reply__descriptor;
    field_is(r, "id", WIRE_REPLY_ID);
    field_is(r, "code", WIRE_REPLY_CODE);
    field_is(r, "message", WIRE_REPLY_MESSAGE);
    field_is(r, "get", WIRE_REPLY_GET);
    field_is(r, "mset", 16);
    field_is(r, "bump_namespace", 17);
    last_field_is(r, "near_report", WIRE_REPLY_RESULT_LAST);
    const ProtobufCMessageDescriptor *g = &nearcache__v1__get_reply__descriptor;
    field_is(g, "value", WIRE_GET_REPLY_VALUE);
    field_is(g, "source", WIRE_GET_REPLY_SOURCE);
    field_is(g, "ttl_ms", WIRE_GET_REPLY_TTL_MS);
    field_is(g, "lease_token", WIRE_GET_REPLY_LEASE_TOKEN);
    field_is(g, "lease", WIRE_GET_REPLY_LEASE);
    field_is(g, "stale", WIRE_GET_REPLY_STALE);
    field_is(g, "negative", WIRE_GET_REPLY_NEGATIVE);
    field_is(g, "stale_ms", WIRE_GET_REPLY_STALE_MS);
    cr_assert_eq(g->n_fields, 8, "GetReply has a field wire.c does not know");
}

static int same_bytes(wire_bytes w, const void *data, size_t len)
{
    return w.len == len && (len == 0 || memcmp(w.data, data, len) == 0);
}

/* Whether w, decoded by hand, says what p (decoded by protobuf-c) says. */
static int same_reply(const wire_get_reply *w, const pb_reply *p)
{
    /* protobuf-c's string ends at its first NUL, as printing ours would */
    wire_bytes msg = w->message;
    const uint8_t *nul = msg.len > 0 ? memchr(msg.data, 0, msg.len) : NULL;
    if (nul != NULL)
        msg.len = (size_t)(nul - msg.data);
    if (w->id != p->id || w->code != (int32_t)p->code ||
        !same_bytes(msg, p->message, strlen(p->message)) || w->result != (uint32_t)p->result_case)
        return 0;
    if (w->result != WIRE_REPLY_GET)
        return 1;
    const pb_get_reply *g = p->get;
    return same_bytes(w->value, g->value.data, g->value.len) && w->source == (int32_t)g->source &&
           w->ttl_ms == g->ttl_ms &&
           same_bytes(w->lease_token, g->lease_token.data, g->lease_token.len) &&
           w->lease == (int32_t)g->lease && w->stale == !!g->stale &&
           w->negative == !!g->negative && w->stale_ms == g->stale_ms;
}

/* protobuf-c 1.4.1 takes a bool field of any wire type (its
 * parse_required_member() checks the type of every scalar but bool); the
 * hand decoder rejects it as malformed, as protobuf requires. Whether buf
 * holds a key byte of GetReply.stale or .negative with another wire type
 * than varint: the only disagreement allowed. */
static int bool_key_of_wrong_type(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned field = buf[i] >> 3, type = buf[i] & 7;
        if ((field == WIRE_GET_REPLY_STALE || field == WIRE_GET_REPLY_NEGATIVE) && type != 0)
            return 1;
    }
    return 0;
}

/* Decodes buf (len bytes, copied to a buffer of exactly that size) by hand
 * and with protobuf-c. Returns the hand decoder's verdict, after checking
 * that a reply it accepts protobuf-c accepts alike, and one it rejects
 * protobuf-c rejects too. */
static int decode_both(const void *buf, size_t len, wire_get_reply *w)
{
    uint8_t *exact = malloc(len ? len : 1);
    memcpy(exact, buf, len);
    int v = wire_get_reply_decode(exact, len, w);
    pb_reply *p = codec_reply_unpack(exact, len);
    char hex[3 * 64 + 1] = "";
    for (size_t i = 0; i < len && i < 64; i++)
        sprintf(hex + 3 * i, "%02x ", exact[i]);
    if (v == WIRE_OK) {
        cr_assert_not_null(p, "accepted what protobuf-c rejects (%zu bytes: %s)", len, hex);
        cr_assert(same_reply(w, p), "decoded differently from protobuf-c (%zu bytes: %s)", len,
                  hex);
    } else if (v == WIRE_BAD && p != NULL && !bool_key_of_wrong_type(exact, len)) {
        cr_assert_fail("rejected what protobuf-c accepts (%zu bytes: %s)", len, hex);
    }
    codec_reply_free(p);
    free(exact);
    /* the hand decoder's bytes then point into buf, not the copy */
    cr_assert_eq(wire_get_reply_decode(buf, len, w), v);
    return v;
}

/* A reply packed by protobuf-c; returns its length. */
static size_t pack_reply(const pb_reply *r, uint8_t **out)
{
    size_t n = codec_reply_size(r);
    *out = malloc(n ? n : 1);
    cr_assert_eq(codec_reply_pack(r, *out), n);
    return n;
}

Test(wire, get_replies_from_protobuf_c_decode_alike)
{
    static const uint64_t nums[] = {0, 1, 128, UINT64_MAX};
    static const int32_t enums[] = {0, 1, 3, -1};
    static const size_t lens[] = {0, 1, 200};
    static const char *const msgs[] = {"", "key too long"};
    uint8_t *bytes = malloc(200);
    for (size_t i = 0; i < 200; i++)
        bytes[i] = (uint8_t)(i * 13);
    for (size_t i = 0; i < 4 * 4 * 3 * 3 * 2 * 2 * 2; i++) {
        size_t k = i;
        pb_get_reply g = NEARCACHE__V1__GET_REPLY__INIT;
        pb_reply r = NEARCACHE__V1__REPLY__INIT;
        r.id = g.ttl_ms = nums[k % 4], k /= 4;
        g.stale_ms = nums[(i + 1) % 4];
        r.code = enums[k % 4], g.source = enums[(k + 1) % 4], g.lease = enums[(k + 2) % 4];
        k /= 4;
        g.value = bin(bytes, lens[k % 3]), k /= 3;
        g.lease_token = bin(bytes + 3, lens[k % 3] / 10), k /= 3;
        r.message = (char *)msgs[k % 2], k /= 2;
        g.stale = k % 2, k /= 2;
        g.negative = k % 2;
        r.result_case = i % 5 == 4 ? NEARCACHE__V1__REPLY__RESULT__NOT_SET : RESULT(GET);
        r.get = &g;
        uint8_t *buf;
        size_t n = pack_reply(&r, &buf);
        wire_get_reply w;
        cr_assert_eq(decode_both(buf, n, &w), WIRE_OK);
        cr_assert_eq(w.result, (uint32_t)r.result_case);
        free(buf);
    }
    free(bytes);
}

Test(wire, another_result_is_left_to_protobuf_c)
{
    pb_set_reply s = NEARCACHE__V1__SET_REPLY__INIT;
    s.ttl_ms = 5;
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.id = 3;
    r.result_case = RESULT(SET);
    r.set = &s;
    uint8_t *buf;
    size_t n = pack_reply(&r, &buf);
    wire_get_reply w;
    cr_assert_eq(decode_both(buf, n, &w), WIRE_OTHER);
    free(buf);
}

/* Valid, though protobuf-c would never write it so: fields out of order,
 * given twice, unknown fields of every wire type, the GetReply twice
 * (protobuf-c keeps the last, not their merge, as for any oneof member). */
static const uint8_t odd_reply[] = {
    0x52, 0x0a,                                  /* get (10), 10 bytes: */
    0x50, 0x07,                                  /*   stale_ms 7, first */
    0x0a, 0x02, 'a',  'b',                       /*   value "ab" */
    0x18, 0x05,                                  /*   ttl_ms 5 */
    0x18, 0x09,                                  /*   ttl_ms 9: the last wins */
    0x10, 0x02,                                  /* code 2 */
    0x08, 0x04,                                  /* id 4 */
    0xa0, 0x01, 0x01,                            /* field 20, varint */
    0xa9, 0x01, 1,    2,    3,    4, 5, 6, 7, 8, /* field 21, fixed64 */
    0xb2, 0x01, 0x02, 0xff, 0xff,                /* field 22, 2 bytes */
    0xbd, 0x01, 1,    2,    3,    4,             /* field 23, fixed32 */
    0x08, 0x06,                                  /* id 6: the last wins */
    0x52, 0x07,                                  /* get again, 7 bytes, merged: */
    0x30, 0x01,                                  /*   stale */
    0x48, 0x01,                                  /*   field 9 (reserved): unknown */
    0x0a, 0x01, 'z',                             /*   value "z" */
};

Test(wire, fields_in_any_order_repeated_last_wins_unknown_skipped)
{
    wire_get_reply w;
    cr_assert_eq(decode_both(odd_reply, sizeof odd_reply, &w), WIRE_OK);
    cr_assert_eq(w.id, 6);
    cr_assert_eq(w.code, 2);
    cr_assert_eq(w.result, WIRE_REPLY_GET);
    cr_assert(same_bytes(w.value, "z", 1));
    cr_assert_eq(w.ttl_ms, 0);
    cr_assert_eq(w.stale_ms, 0);
    cr_assert_eq(w.stale, 1);
    /* the first GetReply alone: the repeated ttl_ms, the last wins */
    cr_assert_eq(decode_both(odd_reply, 12, &w), WIRE_OK);
    cr_assert(same_bytes(w.value, "ab", 2));
    cr_assert_eq(w.ttl_ms, 9);
    cr_assert_eq(w.stale_ms, 7);
}

Test(wire, malformed_replies_are_rejected)
{
    static const struct {
        const char *what;
        size_t len;
        uint8_t b[16];
    } bad[] = {
        {"varint cut short", 2, {0x08, 0x80}},
        {"key cut short", 1, {0x80}},
        {"field 0", 2, {0x00, 0x01}},
        {"length past the end", 3, {0x1a, 0x05, 'a'}},
        {"length past the enclosing message", 5, {0x52, 0x03, 0x0a, 0x05, 'a'}},
        {"fixed64 cut short", 5, {0xa9, 0x01, 1, 2, 3}},
        {"fixed32 cut short", 3, {0xbd, 0x01, 1}},
        {"start group", 2, {0xa3, 0x01}},
        {"end group", 2, {0xa4, 0x01}},
        {"wire type 6", 2, {0xa6, 0x01}},
        {"wire type 7", 2, {0xa7, 0x01}},
        {"11-byte varint",
         12,
         {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1}},
        {"known field, wrong wire type", 11, {0x52, 0x09, 0x21, 1, 2, 3, 4, 5, 6, 7, 8}},
        {"string field as varint", 2, {0x18, 0x01}},
        {"get as varint", 2, {0x50, 0x01}},
        {"6-byte length", 8, {0x1a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 'a'}},
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        wire_get_reply w;
        cr_assert_eq(decode_both(bad[i].b, bad[i].len, &w), WIRE_BAD, "%s", bad[i].what);
    }
}

/* A bool is true when any bit of its varint is set, even one past bit 63
 * (protobuf-c reads it so); decode_both() checks that both agree. */
Test(wire, a_bool_with_only_high_bits_set_is_true)
{
    static const uint8_t stale_high[] = {0x52, 0x0b, 0x30, 0x80, 0x80, 0x80, 0x80,
                                         0x80, 0x80, 0x80, 0x80, 0x80, 0x02};
    wire_get_reply w;
    cr_assert_eq(decode_both(stale_high, sizeof stale_high, &w), WIRE_OK);
    cr_assert(w.stale);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

Test(wire, truncated_and_corrupted_replies_never_crash_and_agree_with_protobuf_c)
{
    pb_get_reply g = NEARCACHE__V1__GET_REPLY__INIT;
    g.value = bin("some value bytes", 16);
    g.source = NEARCACHE__V1__SOURCE__SOURCE_L1;
    g.ttl_ms = 600000;
    g.lease_token = bin("tok", 3);
    g.lease = 1;
    g.stale = 1;
    g.stale_ms = 1234567;
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.id = 1ull << 40;
    r.code = CODE(NOT_FOUND);
    r.message = "not found";
    r.result_case = RESULT(GET);
    r.get = &g;
    uint8_t *packed;
    size_t npacked = pack_reply(&r, &packed);
    const struct {
        const uint8_t *b;
        size_t len;
    } seeds[] = {{packed, npacked}, {odd_reply, sizeof odd_reply}};
    int verdicts[3] = {0};
    wire_get_reply w;
    for (size_t s = 0; s < COUNT(seeds); s++)
        for (size_t cut = 0; cut <= seeds[s].len; cut++)
            verdicts[decode_both(seeds[s].b, cut, &w)]++;
    uint64_t state = 0x9e3779b97f4a7c15ull;
    uint8_t buf[64];
    for (int i = 0; i < 100000; i++) {
        size_t s = rng_next(&state) % COUNT(seeds), len = seeds[s].len;
        memcpy(buf, seeds[s].b, len);
        for (int flips = 1 + (int)(rng_next(&state) % 3); flips > 0; flips--)
            buf[rng_next(&state) % len] = (uint8_t)rng_next(&state);
        if (rng_next(&state) % 4 == 0)
            len -= rng_next(&state) % len; /* and cut short */
        verdicts[decode_both(buf, len, &w)]++;
    }
    cr_log_info("ok %d, other %d, bad %d", verdicts[WIRE_OK], verdicts[WIRE_OTHER],
                verdicts[WIRE_BAD]);
    cr_assert_gt(verdicts[WIRE_OK], 1000);
    cr_assert_gt(verdicts[WIRE_BAD], 1000);
    free(packed);
}

/* Encodes w by hand and with protobuf-c, and compares the bytes. */
static void reply_matches(const wire_get_reply *w)
{
    char *msg =
        w->message.len > 0 ? strndup((const char *)w->message.data, w->message.len) : strdup("");
    pb_get_reply g = NEARCACHE__V1__GET_REPLY__INIT;
    g.value = bin(w->value.data, w->value.len);
    g.source = w->source;
    g.ttl_ms = w->ttl_ms;
    g.lease_token = bin(w->lease_token.data, w->lease_token.len);
    g.lease = w->lease;
    g.stale = w->stale;
    g.negative = w->negative;
    g.stale_ms = w->stale_ms;
    pb_reply r = NEARCACHE__V1__REPLY__INIT;
    r.id = w->id;
    r.code = w->code;
    r.message = msg;
    if (w->result == WIRE_REPLY_GET) {
        r.result_case = RESULT(GET);
        r.get = &g;
    }
    uint8_t *want;
    size_t n = pack_reply(&r, &want);
    cr_assert_eq(wire_get_reply_size(w), n, "size (value %zu)", w->value.len);
    uint8_t *got = malloc(n + 1);
    got[n] = 0xa5;
    cr_assert_eq(wire_get_reply_encode(w, got), n);
    cr_assert_eq(got[n], 0xa5, "wrote past the size");
    cr_assert_arr_eq(got, want, n, "bytes differ (id %llu value %zu)", (unsigned long long)w->id,
                     w->value.len);
    wire_get_reply back;
    cr_assert_eq(wire_get_reply_decode(got, n, &back), WIRE_OK);
    free(want);
    free(got);
    free(msg);
}

Test(wire, get_reply_is_byte_identical_to_protobuf_c)
{
    static const uint64_t nums[] = {0, 1, 127, 128, 16384, UINT64_MAX};
    static const int32_t enums[] = {0, 1, 16, -1};
    static const size_t lens[] = {0, 1, 127, 128, 16384};
    static const char *const msgs[] = {"", "out of memory encoding the value"};
    uint8_t *bytes = malloc(16384);
    for (size_t i = 0; i < 16384; i++)
        bytes[i] = (uint8_t)(i * 5);
    size_t total = 6 * 6 * 4 * 5 * 2 * 2 * 2 * 2 * 3;
    for (size_t i = 0; i < total; i++) {
        size_t k = i;
        wire_get_reply w = {0};
        w.id = nums[k % 6], k /= 6;
        w.ttl_ms = nums[k % 6], w.stale_ms = nums[(k + 3) % 6], k /= 6;
        w.code = enums[k % 4], w.source = enums[(k + 1) % 4], w.lease = enums[(k + 2) % 4];
        k /= 4;
        w.value = (wire_bytes){bytes, lens[k % 5]}, k /= 5;
        w.message = (wire_bytes){(const uint8_t *)msgs[k % 2], strlen(msgs[k % 2])}, k /= 2;
        w.stale = k % 2, k /= 2;
        w.negative = (k % 2) * 3, k /= 2; /* any true is written as 1 */
        w.result = k % 2 ? WIRE_REPLY_GET : 0, k /= 2;
        w.lease_token = (wire_bytes){bytes + 9, lens[k % 3]};
        reply_matches(&w);
    }
    free(bytes);
}

Test(wire, an_l1_hit_reply_with_a_large_value_is_byte_identical)
{
    size_t big = (size_t)3 << 20; /* a four-byte length, nested in the GetReply's */
    uint8_t *value = malloc(big);
    memset(value, 'v', big);
    wire_get_reply w = {.id = 77,
                        .result = WIRE_REPLY_GET,
                        .value = {value, big},
                        .source = 1,
                        .ttl_ms = 600000,
                        .stale = 1,
                        .stale_ms = 1500};
    reply_matches(&w);
    free(value);
}
