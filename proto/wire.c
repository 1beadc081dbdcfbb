/* The Get path's wire format by hand; see wire.h.
 * proto3 as protobuf-c writes it: fields in field-number order, a scalar or
 * bytes field left out when zero or empty, the oneof's message always
 * written (even empty), enums as sign-extended varints. */
#include "wire.h"

#include <string.h>

/* Wire types (a field's key is its number << 3 | wire type). */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

#define KEY(field, type) ((uint64_t)(field) << 3 | (type))
#define FIELD_MAX        0x1fffffff /* the largest field number protobuf allows */

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
