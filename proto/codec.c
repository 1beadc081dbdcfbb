/* protobuf-c glue for the nearcache wire messages; see codec.h. */
#include "codec.h"

#include <stdlib.h>

/* The names come from the proto itself, through protobuf-c's descriptor of
 * the Code enum: the one table of them in C. */
const char *codec_code_name(int code)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&nearcache__v1__code__descriptor, code);
    return v != NULL ? v->name : "UNKNOWN";
}

pb_request *codec_request_unpack(const void *buf, size_t len)
{
    return nearcache__v1__request__unpack(NULL, len, buf);
}

void codec_request_free(pb_request *r)
{
    if (r != NULL)
        nearcache__v1__request__free_unpacked(r, NULL);
}

uint32_t codec_request_unknown_field(const pb_request *r)
{
    if (r->base.n_unknown_fields == 0)
        return 0;
    return r->base.unknown_fields[0].tag;
}

/* Replies are decoded with malloc(), one byte more than protobuf-c asks
 * for: a bytes field can then be handed out as is, NUL-terminated. */
static void *spare_alloc(void *data, size_t size)
{
    return malloc(size + 1);
}

static void spare_free(void *data, void *p)
{
    free(p);
}

static ProtobufCAllocator reply_allocator = {spare_alloc, spare_free, NULL};

pb_reply *codec_reply_unpack(const void *buf, size_t len)
{
    return nearcache__v1__reply__unpack(&reply_allocator, len, buf);
}

void codec_reply_free(pb_reply *r)
{
    if (r != NULL)
        nearcache__v1__reply__free_unpacked(r, &reply_allocator);
}

void *codec_reply_take_bytes(ProtobufCBinaryData *b)
{
    /* protobuf-c leaves data NULL for an empty field */
    uint8_t *data = b->data != NULL ? b->data : malloc(1);
    if (data == NULL)
        return NULL;
    data[b->len] = '\0';
    b->data = NULL;
    b->len = 0;
    return data;
}

size_t codec_request_size(const pb_request *r)
{
    return nearcache__v1__request__get_packed_size(r);
}

size_t codec_request_pack(const pb_request *r, void *buf)
{
    return nearcache__v1__request__pack(r, buf);
}

size_t codec_reply_size(const pb_reply *r)
{
    return nearcache__v1__reply__get_packed_size(r);
}

size_t codec_reply_pack(const pb_reply *r, void *buf)
{
    return nearcache__v1__reply__pack(r, buf);
}

pb_invalidation *codec_inval_unpack(const void *buf, size_t len)
{
    return nearcache__v1__invalidation__unpack(NULL, len, buf);
}

void codec_inval_free(pb_invalidation *m)
{
    if (m != NULL)
        nearcache__v1__invalidation__free_unpacked(m, NULL);
}

size_t codec_inval_size(const pb_invalidation *m)
{
    return nearcache__v1__invalidation__get_packed_size(m);
}

size_t codec_inval_pack(const pb_invalidation *m, void *buf)
{
    return nearcache__v1__invalidation__pack(m, buf);
}
