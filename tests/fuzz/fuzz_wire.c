/* Fuzz target: the client's two reply decoders against each other. The
 * hand-written wire decoder (proto/wire.c) must never read past its input,
 * and whenever it decodes a reply (WIRE_OK) protobuf-c must decode the same
 * bytes to the same fields; when protobuf-c accepts bytes, wire must not
 * call them malformed, but for where protobuf-c 1.4.1 is laxer than
 * protobuf (tests/test_wire.c pins both): a GetReply bool of another wire
 * type than varint, and a key of field 0 written in more than one byte. Requests are decoded by
 * protobuf-c too, as the daemon does. */
#include <string.h>

#include "codec.h"
#include "fuzz.h"
#include "wire.h"

static int same_bytes(wire_bytes w, ProtobufCBinaryData p)
{
    return w.len == p.len && (w.len == 0 || memcmp(w.data, p.data, w.len) == 0);
}

/* wire's message is bytes; protobuf-c's a string, cut at its first NUL. */
static int same_message(wire_bytes w, const char *p)
{
    if (w.len == 0)
        return p == NULL || p[0] == '\0';
    size_t n = strnlen((const char *)w.data, w.len);
    return p != NULL && strlen(p) == n && memcmp(w.data, p, n) == 0;
}

/* Whether buf may hold what protobuf-c takes and protobuf forbids: a byte
 * that could be the key of GetReply.stale or .negative with another wire
 * type than varint, or the first byte of a longer key of field 0. */
static int protobuf_c_laxness(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned field = buf[i] >> 3, type = buf[i] & 7;
        if ((field == WIRE_GET_REPLY_STALE || field == WIRE_GET_REPLY_NEGATIVE) && type != 0)
            return 1;
        if ((buf[i] & 0xf8) == 0x80)
            return 1;
    }
    return 0;
}

static void compare(const wire_get_reply *w, const pb_reply *p)
{
    FUZZ_CHECK(w->id == p->id);
    FUZZ_CHECK(w->code == (int32_t)p->code);
    FUZZ_CHECK(same_message(w->message, p->message));
    if (w->result == 0) {
        FUZZ_CHECK(p->result_case == NEARCACHE__V1__REPLY__RESULT__NOT_SET);
        return;
    }
    FUZZ_CHECK(p->result_case == RESULT(GET));
    const pb_get_reply *g = p->get;
    FUZZ_CHECK(same_bytes(w->value, g->value));
    FUZZ_CHECK(w->source == (int32_t)g->source);
    FUZZ_CHECK(w->ttl_ms == g->ttl_ms);
    FUZZ_CHECK(same_bytes(w->lease_token, g->lease_token));
    FUZZ_CHECK(w->lease == (int32_t)g->lease);
    FUZZ_CHECK(w->stale == (g->stale != 0));
    FUZZ_CHECK(w->negative == (g->negative != 0));
    FUZZ_CHECK(w->stale_ms == g->stale_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes, so ASan sees any read past it */
    uint8_t *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    wire_get_reply w;
    int rv = wire_get_reply_decode(buf, size, &w);
    pb_reply *p = codec_reply_unpack(buf, size);
    FUZZ_CHECK(rv == WIRE_OK || rv == WIRE_OTHER || rv == WIRE_BAD);
    if (rv == WIRE_OK) {
        FUZZ_CHECK(p != NULL);
        compare(&w, p);
    }
    if (p != NULL && !protobuf_c_laxness(buf, size))
        FUZZ_CHECK(rv != WIRE_BAD);
    codec_reply_free(p);
    codec_request_free(codec_request_unpack(buf, size));
    free(buf);
    return 0;
}
