/* Conformance: the C side sends every case of tests/conformance/cases.json,
 * byte for byte, to a fresh nearcached (with --request-timeout 5s) on an
 * empty Redis, in order, and checks each reply, decoded as libnearcache
 * decodes (codec_reply_unpack), as the file's "about" says: id, status
 * code, message, and fields named by dotted paths, walked with protobuf-c's
 * descriptors. (The Python client runs the same file: test_conformance.py.) */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "harness.h"

static uint8_t *unhex(const char *s, size_t *len)
{
    uint8_t *out = malloc(strlen(s) / 2 + 1);
    size_t n = 0;
    unsigned byte;
    for (int used; sscanf(s, " %2x%n", &byte, &used) == 1; s += used)
        out[n++] = (uint8_t)byte;
    *len = n;
    return out;
}

/* The field at a dotted path in m ("get.negative", "mget.items.0.found"):
 * its descriptor in *fd, and where its value is, or NULL when it is unset
 * (an absent message, or another member of its oneof): the default. */
static const void *field_at(const ProtobufCMessage *m, const char *path,
                            const ProtobufCFieldDescriptor **fd, const char *where)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const ProtobufCFieldDescriptor *f = NULL;
    const char *at = NULL;
    char part[64];
    for (int used; sscanf(path, "%63[^.]%n", part, &used) == 1;
         path += used + (path[used] == '.')) {
        if (f != NULL && f->label == PROTOBUF_C_LABEL_REPEATED) { /* part is an index */
            size_t i = strtoul(part, NULL, 10);
            size_t count = at ? *(const size_t *)((const char *)m + f->quantifier_offset) : 0;
            cr_assert_lt(i, count, "%s: %s has %zu items", where, f->name, count);
            m = (*(ProtobufCMessage ***)at)[i];
            d = f->descriptor;
            f = NULL;
            continue;
        }
        if (f != NULL) { /* into a message field */
            cr_assert_eq(f->type, PROTOBUF_C_TYPE_MESSAGE, "%s: %s is not a message", where,
                         f->name);
            m = at ? *(const ProtobufCMessage *const *)at : NULL;
            d = f->descriptor;
        }
        f = protobuf_c_message_descriptor_get_field_by_name(d, part);
        cr_assert_not_null(f, "%s: %s has no field %s", where, d->name, part);
        int set =
            m != NULL && (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
                          *(const uint32_t *)((const char *)m + f->quantifier_offset) == f->id);
        at = set ? (const char *)m + f->offset : NULL;
    }
    *fd = f;
    return at;
}

/* Numbers named by "$NAME" in a case, for "$NAME+K" later. */
static json_t *names;

static void expect_number(uint64_t got, json_t *want, const char *where)
{
    if (json_is_integer(want)) {
        cr_assert_eq(got, (uint64_t)json_integer_value(want), "%s: %llu", where,
                     (unsigned long long)got);
        return;
    }
    const char *s = json_string_value(want);
    cr_assert(s != NULL && s[0] == '$', "%s: want %s?", where, s);
    char name[32];
    long long plus = 0;
    if (sscanf(s + 1, "%31[^+]+%lld", name, &plus) == 2) {
        json_t *seen = json_object_get(names, name);
        cr_assert_not_null(seen, "%s: $%s was never named", where, name);
        cr_assert_eq(got, (uint64_t)json_integer_value(seen) + (uint64_t)plus, "%s: %llu", where,
                     (unsigned long long)got);
    } else {
        json_object_set_new(names, s + 1, json_integer((json_int_t)got));
    }
}

static void expect_field(const ProtobufCMessage *reply, const char *path, json_t *want,
                         const char *where)
{
    const ProtobufCFieldDescriptor *f;
    const void *at = field_at(reply, path, &f, where);
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        cr_assert_eq(at ? *(const protobuf_c_boolean *)at != 0 : 0, json_is_true(want), "%s",
                     where);
        break;
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_UINT32:
        expect_number(at ? *(const uint32_t *)at : 0, want, where);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        expect_number(at ? *(const uint64_t *)at : 0, want, where);
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = at ? *(const char *const *)at : "";
        cr_assert_str_eq(s, json_string_value(want), "%s", where);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = at;
        const char *w = json_string_value(want);
        size_t len = b ? b->len : 0;
        cr_assert(len == strlen(w) && (len == 0 || memcmp(b->data, w, len) == 0),
                  "%s: \"%.*s\", want \"%s\"", where, (int)len, b ? (const char *)b->data : "", w);
        break;
    }
    default:
        cr_assert_fail("%s: a field of a type the cases do not use", where);
    }
}

Test(wirecases, every_case_gets_the_expected_reply, .timeout = 120)
{
    json_error_t e;
    json_t *spec = json_load_file(NC_CONFORMANCE_DIR "/cases.json", 0, &e);
    cr_assert_not_null(spec, "cases.json:%d: %s", e.line, e.text);
    names = json_object();
    h_fleet fx;
    h_fleet_start(&fx, 1, "--request-timeout", "5s", NULL);
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(spec, "cases"), i, cs)
    {
        const char *name = json_string_value(json_object_get(cs, "name"));
        size_t len;
        uint8_t *req = unhex(json_string_value(json_object_get(cs, "request")), &len);
        pb_reply *reply = h_raw(&fx.node[0], req, len, 10000);
        cr_assert_not_null(reply, "%s: no reply", name);
        free(req);
        cr_assert_eq(reply->id, json_integer_value(json_object_get(cs, "id")), "%s", name);
        cr_assert_str_eq(codec_code_name(reply->code),
                         json_string_value(json_object_get(cs, "code")), "%s: %s", name,
                         reply->message);
        const char *msg = json_string_value(json_object_get(cs, "message"));
        if (msg[0] == '\0')
            cr_assert_str_eq(reply->message, "", "%s", name);
        else
            cr_assert_not_null(strstr(reply->message, msg), "%s: \"%s\"", name, reply->message);
        const char *path;
        json_t *want;
        json_object_foreach(json_object_get(cs, "fields"), path, want)
        {
            char where[256];
            snprintf(where, sizeof where, "%s: %s", name, path);
            expect_field(&reply->base, path, want, where);
        }
        codec_reply_free(reply);
    }
    h_fleet_stop(&fx);
    json_decref(names);
    json_decref(spec);
}
