/* The codec: the only code that calls protobuf-c. It turns wire bytes into
 * the generated request/reply structs and back, and gives the structs short
 * names. Pure: no I/O, no clock; callers own every buffer they pass in. */
#ifndef NC_CODEC_H
#define NC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "nearcache.pb-c.h"

typedef Nearcache__V1__Request pb_request;
typedef Nearcache__V1__Reply pb_reply;
typedef Nearcache__V1__GetRequest pb_get_request;
typedef Nearcache__V1__GetReply pb_get_reply;
typedef Nearcache__V1__SetRequest pb_set_request;
typedef Nearcache__V1__SetReply pb_set_reply;
typedef Nearcache__V1__DeleteRequest pb_delete_request;
typedef Nearcache__V1__DeleteReply pb_delete_reply;
typedef Nearcache__V1__StatsRequest pb_stats_request;
typedef Nearcache__V1__StatsReply pb_stats_reply;
typedef Nearcache__V1__Stat pb_stat;
typedef Nearcache__V1__NamespaceStat pb_namespace_stat;
typedef Nearcache__V1__PingRequest pb_ping_request;
typedef Nearcache__V1__PingReply pb_ping_reply;
typedef Nearcache__V1__Code pb_code;
typedef Nearcache__V1__BumpNamespaceRequest pb_bump_request;
typedef Nearcache__V1__BumpNamespaceReply pb_bump_reply;
typedef Nearcache__V1__Invalidation pb_invalidation;
typedef Nearcache__V1__KeyRef pb_key_ref;
typedef Nearcache__V1__Heartbeat pb_heartbeat;
typedef Nearcache__V1__NearReportRequest pb_near_report_request;
typedef Nearcache__V1__NearReportReply pb_near_report_reply;

/* The wire protocol's version, sent in PingReply.protocol_version: bumped
 * only by a change an existing client could misread (docs/protocol.md,
 * Versions). The package name nearcache.v1 carries it too. */
#define NC_PROTOCOL_VERSION 1

/* CODE(NOT_FOUND) is the gRPC status NOT_FOUND. */
#define CODE(name) NEARCACHE__V1__CODE__##name
/* METHOD(GET) is the request oneof case of Get; RESULT(GET) the reply's. */
#define METHOD(name) NEARCACHE__V1__REQUEST__METHOD_##name
#define RESULT(name) NEARCACHE__V1__REPLY__RESULT_##name

/* The gRPC name of a status code ("NOT_FOUND"), or "UNKNOWN". */
const char *codec_code_name(int code);

/* Decodes a request. Returns it (the caller owns it; free with
 * codec_request_free()) or NULL when the bytes are not a valid Request. */
pb_request *codec_request_unpack(const void *buf, size_t len);
void codec_request_free(pb_request *r);

/* The field number of the first unknown field of a decoded request (a
 * method this daemon does not know), or 0 when there is none. */
uint32_t codec_request_unknown_field(const pb_request *r);

/* Decodes a reply, as codec_request_unpack(). Every bytes field of it has
 * a spare byte after its data, for codec_reply_take_bytes(). */
pb_reply *codec_reply_unpack(const void *buf, size_t len);
void codec_reply_free(pb_reply *r);

/* Takes a bytes field out of a reply from codec_reply_unpack() without
 * copying it. Returns its data as a buffer from malloc() of b->len bytes
 * plus a NUL (the caller owns it; free() it), or NULL when out of memory;
 * on success the field is left empty, so codec_reply_free() skips it. */
void *codec_reply_take_bytes(ProtobufCBinaryData *b);

/* Decodes an invalidation message, as codec_request_unpack(). */
pb_invalidation *codec_inval_unpack(const void *buf, size_t len);
void codec_inval_free(pb_invalidation *m);

/* Encoded sizes, and packing into a buffer of at least that size (the caller
 * owns it). The pack functions return the number of bytes written. */
size_t codec_request_size(const pb_request *r);
size_t codec_request_pack(const pb_request *r, void *buf);
size_t codec_reply_size(const pb_reply *r);
size_t codec_reply_pack(const pb_reply *r, void *buf);
size_t codec_inval_size(const pb_invalidation *m);
size_t codec_inval_pack(const pb_invalidation *m, void *buf);

#endif
