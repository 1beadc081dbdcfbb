/* Hand-written encoders and decoders for the hot path, Get: a Request
 * carrying a GetRequest, and a Reply carrying a GetReply or only a status.
 * The encoders write the bytes protobuf-c writes for the same message; the
 * decoders accept any valid encoding and reject malformed input without
 * reading past it. Everything else goes through codec.h (protobuf-c). Pure:
 * no I/O, no allocation; decoded bytes point into the caller's buffer. */
#ifndef NC_WIRE_H
#define NC_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Field numbers from proto/nearcache.proto. test_wire checks each against
 * the protobuf-c descriptors generated from it. */
enum {
    WIRE_REQUEST_ID = 1,
    WIRE_REQUEST_TIMEOUT_MS = 2,
    WIRE_REQUEST_GET = 10, /* the method oneof: fields 10..18 */
    WIRE_REQUEST_METHOD_LAST = 18,

    WIRE_GET_REQUEST_NS = 1,
    WIRE_GET_REQUEST_KEY = 2,
    WIRE_GET_REQUEST_LEASE = 3,
    WIRE_GET_REQUEST_LEASE_TTL_MS = 4,
    WIRE_GET_REQUEST_SLIDE_TTL_MS = 5,

    WIRE_REPLY_ID = 1,
    WIRE_REPLY_CODE = 2,
    WIRE_REPLY_MESSAGE = 3,
    WIRE_REPLY_GET = 10, /* the result oneof: fields 10..18 */
    WIRE_REPLY_RESULT_LAST = 18,

    WIRE_GET_REPLY_VALUE = 1,
    WIRE_GET_REPLY_SOURCE = 2,
    WIRE_GET_REPLY_TTL_MS = 3,
    WIRE_GET_REPLY_LEASE_TOKEN = 4,
    WIRE_GET_REPLY_LEASE = 5,
    WIRE_GET_REPLY_STALE = 6,
    WIRE_GET_REPLY_NEGATIVE = 7,
    WIRE_GET_REPLY_STALE_MS = 10,
};

/* What the decoders return. */
enum {
    WIRE_OK = 0,
    WIRE_OTHER = 1, /* valid so far, but not the message decoded here */
    WIRE_BAD = 2,   /* malformed */
};

/* Bytes of a message field, not owned. */
typedef struct wire_bytes {
    const uint8_t *data;
    size_t len;
} wire_bytes;

/* A Request whose method is a GetRequest. */
typedef struct wire_get_request {
    uint64_t id;
    uint32_t timeout_ms;
    wire_bytes ns, key;
    int lease;
    uint32_t lease_ttl_ms;
    uint64_t slide_ttl_ms;
} wire_get_request;

/* A Reply with a GetReply (result == WIRE_REPLY_GET) or no result (0). */
typedef struct wire_get_reply {
    uint64_t id;
    int32_t code;
    wire_bytes message;
    uint32_t result; /* field number of the result oneof; 0: none */
    wire_bytes value;
    int32_t source;
    uint64_t ttl_ms;
    wire_bytes lease_token;
    int32_t lease;
    int stale;
    int negative;
    uint64_t stale_ms;
} wire_get_reply;

/* The encoded size of r, and encoding it into buf, which has at least that
 * many bytes (the caller owns it). Encode returns the bytes written. */
size_t wire_get_request_size(const wire_get_request *r);
size_t wire_get_request_encode(const wire_get_request *r, void *buf);

/* As above, for a Reply; its GetReply is written when r->result is
 * WIRE_REPLY_GET. (protobuf-c writes a string up to its first NUL: the
 * bytes are the same when the message holds none.) */
size_t wire_get_reply_size(const wire_get_reply *r);
size_t wire_get_reply_encode(const wire_get_reply *r, void *buf);

/* Decodes a Reply into *r, whose bytes then point into buf. Returns
 * WIRE_OK (r->result is WIRE_REPLY_GET or 0), WIRE_OTHER when the reply
 * carries another result (decode it with codec_reply_unpack()), or
 * WIRE_BAD. */
int wire_get_reply_decode(const void *buf, size_t len, wire_get_reply *r);

#endif
