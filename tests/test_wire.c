/* Unit: the hand-written Get codec writes exactly protobuf-c's bytes, and its
 * field numbers are those of nearcache.proto (as protobuf-c's descriptors
 * have them). */
#include <criterion/criterion.h>
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

Test(wire, field_numbers_match_the_proto)
{
    const ProtobufCMessageDescriptor *rq = &nearcache__v1__request__descriptor;
    field_is(rq, "id", WIRE_REQUEST_ID);
    field_is(rq, "timeout_ms", WIRE_REQUEST_TIMEOUT_MS);
    field_is(rq, "get", WIRE_REQUEST_GET);
    field_is(rq, "bump_namespace", WIRE_REQUEST_METHOD_LAST);
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
