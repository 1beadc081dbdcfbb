/* The Get path's wire format by hand; see wire.h.
 * proto3 as protobuf-c writes it: fields in field-number order, a scalar or
 * bytes field left out when zero or empty, the oneof's message always
 * written (even empty), enums as sign-extended varints. */
#include "wire.h"

#include <string.h>

/* Wire types (a field's key is its number << 3 | wire type). */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

#define KEY(field, type) ((uint64_t)(field) << 3 | (type))
#define KEY_MAX_BYTES    5 /* as protobuf-c reads them */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        *p++ = (uint8_t)(v | 0x80);
    *p++ = (uint8_t)v;
    return p;
}

/* A varint field: absent when zero. */
static size_t uint_size(uint32_t field, uint64_t v)
{
    return v == 0 ? 0 : varint_size(KEY(field, WT_VARINT)) + varint_size(v);
}

static uint8_t *put_uint(uint8_t *p, uint32_t field, uint64_t v)
{
    if (v == 0)
        return p;
    p = put_varint(p, KEY(field, WT_VARINT));
    return put_varint(p, v);
}

/* An int32 or enum field: a negative value takes ten bytes. */
static uint64_t sext(int32_t v)
{
    return (uint64_t)(int64_t)v;
}

/* A length-delimited field: absent when empty, unless `always`. */
static size_t len_size(uint32_t field, size_t len, int always)
{
    return len == 0 && !always ? 0 : varint_size(KEY(field, WT_LEN)) + varint_size(len) + len;
}

/* Writes the key and length of a length-delimited field, and the data when
 * `data` is not NULL. */
static uint8_t *put_len(uint8_t *p, uint32_t field, const void *data, size_t len, int always)
{
    if (len == 0 && !always)
        return p;
    p = put_varint(p, KEY(field, WT_LEN));
    p = put_varint(p, len);
    if (data != NULL && len > 0) {
        memcpy(p, data, len);
        p += len;
    }
    return p;
}

static size_t get_request_body_size(const wire_get_request *r)
{
    return len_size(WIRE_GET_REQUEST_NS, r->ns.len, 0) +
           len_size(WIRE_GET_REQUEST_KEY, r->key.len, 0) +
           uint_size(WIRE_GET_REQUEST_LEASE, r->lease != 0) +
           uint_size(WIRE_GET_REQUEST_LEASE_TTL_MS, r->lease_ttl_ms) +
           uint_size(WIRE_GET_REQUEST_SLIDE_TTL_MS, r->slide_ttl_ms);
}

size_t wire_get_request_size(const wire_get_request *r)
{
    return uint_size(WIRE_REQUEST_ID, r->id) + uint_size(WIRE_REQUEST_TIMEOUT_MS, r->timeout_ms) +
           len_size(WIRE_REQUEST_GET, get_request_body_size(r), 1);
}

size_t wire_get_request_encode(const wire_get_request *r, void *buf)
{
    uint8_t *p = buf;
    p = put_uint(p, WIRE_REQUEST_ID, r->id);
    p = put_uint(p, WIRE_REQUEST_TIMEOUT_MS, r->timeout_ms);
    p = put_len(p, WIRE_REQUEST_GET, NULL, get_request_body_size(r), 1);
    p = put_len(p, WIRE_GET_REQUEST_NS, r->ns.data, r->ns.len, 0);
    p = put_len(p, WIRE_GET_REQUEST_KEY, r->key.data, r->key.len, 0);
    p = put_uint(p, WIRE_GET_REQUEST_LEASE, r->lease != 0);
    p = put_uint(p, WIRE_GET_REQUEST_LEASE_TTL_MS, r->lease_ttl_ms);
    p = put_uint(p, WIRE_GET_REQUEST_SLIDE_TTL_MS, r->slide_ttl_ms);
    return (size_t)(p - (uint8_t *)buf);
}

static size_t get_reply_body_size(const wire_get_reply *r)
{
    return len_size(WIRE_GET_REPLY_VALUE, r->value.len, 0) +
           uint_size(WIRE_GET_REPLY_SOURCE, sext(r->source)) +
           uint_size(WIRE_GET_REPLY_TTL_MS, r->ttl_ms) +
           len_size(WIRE_GET_REPLY_LEASE_TOKEN, r->lease_token.len, 0) +
           uint_size(WIRE_GET_REPLY_LEASE, sext(r->lease)) +
           uint_size(WIRE_GET_REPLY_STALE, r->stale != 0) +
           uint_size(WIRE_GET_REPLY_NEGATIVE, r->negative != 0) +
           uint_size(WIRE_GET_REPLY_STALE_MS, r->stale_ms);
}

size_t wire_get_reply_size(const wire_get_reply *r)
{
    size_t n = uint_size(WIRE_REPLY_ID, r->id) + uint_size(WIRE_REPLY_CODE, sext(r->code)) +
               len_size(WIRE_REPLY_MESSAGE, r->message.len, 0);
    if (r->result == WIRE_REPLY_GET)
        n += len_size(WIRE_REPLY_GET, get_reply_body_size(r), 1);
    return n;
}

size_t wire_get_reply_encode(const wire_get_reply *r, void *buf)
{
    uint8_t *p = buf;
    p = put_uint(p, WIRE_REPLY_ID, r->id);
    p = put_uint(p, WIRE_REPLY_CODE, sext(r->code));
    p = put_len(p, WIRE_REPLY_MESSAGE, r->message.data, r->message.len, 0);
    if (r->result == WIRE_REPLY_GET) {
        p = put_len(p, WIRE_REPLY_GET, NULL, get_reply_body_size(r), 1);
        p = put_len(p, WIRE_GET_REPLY_VALUE, r->value.data, r->value.len, 0);
        p = put_uint(p, WIRE_GET_REPLY_SOURCE, sext(r->source));
        p = put_uint(p, WIRE_GET_REPLY_TTL_MS, r->ttl_ms);
        p = put_len(p, WIRE_GET_REPLY_LEASE_TOKEN, r->lease_token.data, r->lease_token.len, 0);
        p = put_uint(p, WIRE_GET_REPLY_LEASE, sext(r->lease));
        p = put_uint(p, WIRE_GET_REPLY_STALE, r->stale != 0);
        p = put_uint(p, WIRE_GET_REPLY_NEGATIVE, r->negative != 0);
        p = put_uint(p, WIRE_GET_REPLY_STALE_MS, r->stale_ms);
    }
    return (size_t)(p - (uint8_t *)buf);
}

/* Reads a varint at *p, before end, and moves *p past it. Returns 0, or -1
 * when it is cut short or longer than ten bytes (bits past 64 are dropped,
 * as protobuf-c does). */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*p == end)
            return -1;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* One field of a message: a varint's value in v (and whether any of its
 * bits is set, as protobuf-c reads a bool, in nonzero), any other field's
 * bytes in b; what the field does not have is zero. */
typedef struct field {
    uint64_t num;
    unsigned type;
    uint64_t v;
    int nonzero;
    wire_bytes b;
} field;

/* Reads the field at *p, before end, and moves *p past it. Returns 0, or -1
 * when it is malformed: field 0, a key longer than five bytes, cut short,
 * or a group (wire types 3, 4) or undefined wire type (6, 7), which
 * protobuf-c rejects too. */
static int next_field(const uint8_t **p, const uint8_t *end, field *f)
{
    const uint8_t *start = *p;
    uint64_t key, n;
    if (get_varint(p, end, &key) != 0 || key >> 3 == 0 || *p - start > KEY_MAX_BYTES)
        return -1;
    *f = (field){.num = key >> 3, .type = key & 7};
    start = *p;
    switch (f->type) {
    case WT_VARINT:
        if (get_varint(p, end, &f->v) != 0)
            return -1;
        for (const uint8_t *q = start; q < *p; q++)
            f->nonzero |= (*q & 0x7f) != 0;
        return 0;
    case WT_I64:
        n = 8;
        break;
    case WT_I32:
        n = 4;
        break;
    case WT_LEN: /* a length takes at most five bytes, as in protobuf-c */
        if (get_varint(p, end, &n) != 0 || *p - start > KEY_MAX_BYTES)
            return -1;
        break;
    default:
        return -1;
    }
    if (n > (uint64_t)(end - *p))
        return -1;
    f->b = (wire_bytes){*p, (size_t)n};
    *p += n;
    return 0;
}

/* Decodes the GetReply in m into r, replacing any earlier one: protobuf-c
 * keeps the last of a oneof's members given twice, not their merge. Unknown
 * fields are skipped; a known field of the wrong wire type is an error, as
 * in protobuf-c. Returns 0 or -1. */
static int get_reply_fields(wire_bytes m, wire_get_reply *r)
{
    const uint8_t *p = m.data, *end = m.data + m.len;
    wire_get_reply head = {.id = r->id, .code = r->code, .message = r->message};
    field f;
    *r = head;
    r->result = WIRE_REPLY_GET;
    while (p < end) {
        if (next_field(&p, end, &f) != 0)
            return -1;
        unsigned want = WT_VARINT;
        switch (f.num) {
        case WIRE_GET_REPLY_VALUE:
            want = WT_LEN, r->value = f.b;
            break;
        case WIRE_GET_REPLY_SOURCE:
            r->source = (int32_t)f.v;
            break;
        case WIRE_GET_REPLY_TTL_MS:
            r->ttl_ms = f.v;
            break;
        case WIRE_GET_REPLY_LEASE_TOKEN:
            want = WT_LEN, r->lease_token = f.b;
            break;
        case WIRE_GET_REPLY_LEASE:
            r->lease = (int32_t)f.v;
            break;
        case WIRE_GET_REPLY_STALE:
            r->stale = f.nonzero;
            break;
        case WIRE_GET_REPLY_NEGATIVE:
            r->negative = f.nonzero;
            break;
        case WIRE_GET_REPLY_STALE_MS:
            r->stale_ms = f.v;
            break;
        default:
            want = f.type; /* unknown: skipped */
        }
        if (f.type != want)
            return -1;
    }
    return 0;
}

int wire_get_reply_decode(const void *buf, size_t len, wire_get_reply *r)
{
    const uint8_t *p = buf, *end = p + len;
    int other = 0;
    field f;
    memset(r, 0, sizeof *r);
    while (p < end) {
        if (next_field(&p, end, &f) != 0)
            return WIRE_BAD;
        unsigned want = WT_VARINT;
        if (f.num == WIRE_REPLY_ID) {
            r->id = f.v;
        } else if (f.num == WIRE_REPLY_CODE) {
            r->code = (int32_t)f.v;
        } else if (f.num == WIRE_REPLY_MESSAGE) {
            want = WT_LEN, r->message = f.b;
        } else if (f.num == WIRE_REPLY_GET) {
            want = WT_LEN;
            if (f.type == WT_LEN && get_reply_fields(f.b, r) != 0)
                return WIRE_BAD;
        } else if (f.num > WIRE_REPLY_GET && f.num <= WIRE_REPLY_RESULT_LAST) {
            want = WT_LEN, other = 1; /* protobuf-c checks what is inside */
        } else {
            want = f.type; /* unknown: skipped */
        }
        if (f.type != want)
            return WIRE_BAD;
    }
    return other ? WIRE_OTHER : WIRE_OK;
}
