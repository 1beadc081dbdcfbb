/* The near tier for Node: an N-API class over the C client's own near tier
 * (client/near.c) and ring reader (common/ring.c), compiled from copies of
 * those files (csrc/, made by scripts/csrc.js), so C and Node read the ring
 * with one implementation. Node calls it from one thread per instance (each
 * worker thread makes its own); near.c's locks are then never contended.
 *
 * new Near(ringPath, maxBytes, maxTtlMs, scratch, out) with scratch a
 * Float64Array(3) that get() fills with the hit's time left (ms), and out a
 * Buffer; get(ns, key) returns undefined (a miss), null (a negative entry),
 * a number n (a value of n bytes, copied to the start of out) or a Buffer (a
 * value larger than out). Namespaces and keys are strings (UTF-8) or
 * Buffers. Copying into out, which JS then copies into a Buffer of Node's
 * pool, costs less than a new Buffer of the addon's: measured in
 * bench/candidates.js. */
#include <malloc.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "near.h"
#include "ring.h"

#define STACK_BYTES 2048

typedef struct addon {
    near *n;
    double *scratch;
    napi_ref scratch_ref;
    uint8_t *out; /* the value buffer: a hit's bytes are copied here when they fit */
    size_t outlen;
    napi_ref out_ref;
} addon;

typedef struct arg {
    nc_bytes b;
    char *heap; /* free() after use, when the stack buffer was too small */
    char stack[STACK_BYTES];
} arg;

static napi_value throw_type(napi_env env, const char *msg)
{
    napi_throw_type_error(env, NULL, msg);
    return NULL;
}

/* Reads a string (as UTF-8) or a Buffer/Uint8Array into a. Returns 0, or -1
 * with a TypeError thrown. */
static int get_bytes(napi_env env, napi_value v, arg *a, const char *what)
{
    napi_valuetype t;
    a->heap = NULL;
    napi_typeof(env, v, &t);
    if (t == napi_string) {
        size_t len;
        napi_get_value_string_utf8(env, v, a->stack, sizeof a->stack, &len);
        if (len < sizeof a->stack - 1) {
            a->b = (nc_bytes){a->stack, len};
            return 0;
        }
        napi_get_value_string_utf8(env, v, NULL, 0, &len);
        if ((a->heap = malloc(len + 1)) == NULL) {
            napi_throw_error(env, NULL, "out of memory");
            return -1;
        }
        napi_get_value_string_utf8(env, v, a->heap, len + 1, &len);
        a->b = (nc_bytes){a->heap, len};
        return 0;
    }
    bool is;
    if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
        napi_typedarray_type tt;
        size_t len;
        void *data;
        napi_get_typedarray_info(env, v, &tt, &len, &data, NULL, NULL);
        if (tt == napi_uint8_array) {
            a->b = (nc_bytes){data, len};
            return 0;
        }
    }
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a string or a Buffer", what);
    throw_type(env, msg);
    return -1;
}

static addon *this_of(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv)
{
    napi_value self;
    void *p = NULL;
    napi_get_cb_info(env, info, argc, argv, &self, NULL);
    napi_unwrap(env, self, &p);
    addon *a = p;
    if (a == NULL || a->n == NULL) {
        napi_throw_error(env, NULL, "the near tier is closed");
        return NULL;
    }
    return a;
}

static void finalize(napi_env env, void *data, void *hint)
{
    (void)hint;
    addon *a = data;
    near_close(a->n);
    if (a->scratch_ref != NULL)
        napi_delete_reference(env, a->scratch_ref);
    if (a->out_ref != NULL)
        napi_delete_reference(env, a->out_ref);
    free(a);
}

static napi_value ctor(napi_env env, napi_callback_info info)
{
    size_t argc = 5;
    napi_value argv[5], self;
    napi_get_cb_info(env, info, &argc, argv, &self, NULL);
    char path[4096];
    size_t plen;
    double max_bytes, max_ttl;
    if (argc < 5 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok ||
        napi_get_value_double(env, argv[1], &max_bytes) != napi_ok ||
        napi_get_value_double(env, argv[2], &max_ttl) != napi_ok)
        return throw_type(env, "Near(ringPath, maxBytes, maxTtlMs, scratch, out)");
    napi_typedarray_type tt;
    size_t len;
    void *data;
    bool is;
    if (napi_is_typedarray(env, argv[3], &is) != napi_ok || !is ||
        napi_get_typedarray_info(env, argv[3], &tt, &len, &data, NULL, NULL) != napi_ok ||
        tt != napi_float64_array || len < 3)
        return throw_type(env, "scratch must be a Float64Array of 3");
    void *out;
    size_t outlen;
    if (napi_is_typedarray(env, argv[4], &is) != napi_ok || !is ||
        napi_get_typedarray_info(env, argv[4], &tt, &outlen, &out, NULL, NULL) != napi_ok ||
        tt != napi_uint8_array)
        return throw_type(env, "out must be a Buffer");
    addon *a = calloc(1, sizeof *a);
    if (a == NULL || near_open(&a->n, path, (size_t)max_bytes, (int64_t)max_ttl) != NC_OK) {
        free(a);
        napi_throw_error(env, NULL, "out of memory");
        return NULL;
    }
    a->scratch = data;
    napi_create_reference(env, argv[3], 1, &a->scratch_ref);
    a->out = out;
    a->outlen = outlen;
    napi_create_reference(env, argv[4], 1, &a->out_ref);
    napi_wrap(env, self, a, finalize, NULL, NULL);
    return self;
}

/* The lookup of get() and getString(): reads (ns, key) from the call's
 * arguments and asks the tier. Returns -1 with an exception thrown, 0 on a
 * miss, 1 on a hit with *ap the instance, *value (the caller frees it; NULL for a negative
 * entry), *len and *negative set, and scratch[0] the hit's ttl ms. */
static int lookup(napi_env env, napi_callback_info info, addon **ap, void **value, size_t *len,
                  int *negative)
{
    size_t argc = 2;
    napi_value argv[2];
    addon *a = *ap = this_of(env, info, &argc, argv);
    arg ns, key;
    if (a == NULL || get_bytes(env, argv[0], &ns, "ns") != 0)
        return -1;
    if (get_bytes(env, argv[1], &key, "key") != 0) {
        free(ns.heap);
        return -1;
    }
    uint64_t ttl = 0;
    int hit = near_get(a->n, ns.b, key.b, value, len, &ttl, negative);
    free(ns.heap);
    free(key.heap);
    if (hit)
        a->scratch[0] = (double)ttl;
    return hit;
}

/* get(ns, key): see the file comment. */
static napi_value get(napi_env env, napi_callback_info info)
{
    napi_value out;
    void *value = NULL;
    size_t len = 0;
    int negative = 0;
    addon *a;
    int hit = lookup(env, info, &a, &value, &len, &negative);
    if (hit < 0)
        return NULL;
    if (hit == 0 || negative) {
        if (hit == 0)
            napi_get_undefined(env, &out);
        else
            napi_get_null(env, &out);
        return out;
    }
    if (len <= a->outlen) {
        memcpy(a->out, value, len);
        free(value);
        napi_create_uint32(env, (uint32_t)len, &out);
        return out;
    }
    void *copy;
    napi_status st = napi_create_buffer_copy(env, len, value, &copy, &out);
    free(value);
    return st == napi_ok ? out : NULL;
}

/* getString(ns, key): a hit's value as a string (its bytes as UTF-8), null
 * (a negative entry) or undefined (a miss): for codecs that decode text. */
static napi_value get_string(napi_env env, napi_callback_info info)
{
    napi_value out;
    void *value = NULL;
    size_t len = 0;
    int negative = 0;
    addon *a;
    int hit = lookup(env, info, &a, &value, &len, &negative);
    if (hit < 0)
        return NULL;
    if (hit == 0)
        napi_get_undefined(env, &out);
    else if (negative)
        napi_get_null(env, &out);
    else
        napi_create_string_utf8(env, value, len, &out);
    free(value);
    return out;
}

/* ticket(): scratch[0..2] = flushes, cursor, at_ms. */
static napi_value ticket(napi_env env, napi_callback_info info)
{
    size_t argc = 0;
    addon *a = this_of(env, info, &argc, NULL);
    if (a == NULL)
        return NULL;
    near_ticket t = near_take_ticket(a->n);
    a->scratch[0] = (double)t.flushes;
    a->scratch[1] = (double)t.cursor;
    a->scratch[2] = (double)t.at_ms;
    return NULL;
}

/* fill(flushes, cursor, atMs, ns, key, value | null, ttlMs): null fills a negative entry. */
static napi_value fill(napi_env env, napi_callback_info info)
{
    size_t argc = 7;
    napi_value argv[7];
    addon *a = this_of(env, info, &argc, argv);
    double f[3], ttl;
    if (a == NULL)
        return NULL;
    for (int i = 0; i < 3; i++)
        if (napi_get_value_double(env, argv[i], &f[i]) != napi_ok)
            return throw_type(env, "fill(flushes, cursor, atMs, ns, key, value, ttlMs)");
    if (napi_get_value_double(env, argv[6], &ttl) != napi_ok)
        return throw_type(env, "ttlMs must be a number");
    near_ticket t = {(uint64_t)f[0], (uint64_t)f[1], (int64_t)f[2]};
    arg ns, key, val = {0};
    napi_valuetype vt;
    napi_typeof(env, argv[5], &vt);
    if (get_bytes(env, argv[3], &ns, "ns") != 0)
        return NULL;
    if (get_bytes(env, argv[4], &key, "key") != 0 ||
        (vt != napi_null && get_bytes(env, argv[5], &val, "value") != 0)) {
        free(ns.heap);
        free(key.heap);
        return NULL;
    }
    if (vt == napi_null)
        near_fill_negative(a->n, &t, ns.b, key.b, (uint64_t)ttl);
    else
        near_fill(a->n, &t, ns.b, key.b, val.b.data, val.b.len, (uint64_t)ttl);
    free(ns.heap);
    free(key.heap);
    free(val.heap);
    return NULL;
}

/* forget() empties the tier and refuses the fills ticketed before: this
 * process's own invalidation was kept undelivered (R2). */
static napi_value forget(napi_env env, napi_callback_info info)
{
    size_t argc = 0;
    addon *a = this_of(env, info, &argc, NULL);
    if (a != NULL)
        near_forget(a->n);
    return NULL;
}

/* drop(ns, key) drops one key; drop(ns) every key of ns. */
static napi_value drop(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2];
    addon *a = this_of(env, info, &argc, argv);
    arg ns, key;
    if (a == NULL || get_bytes(env, argv[0], &ns, "ns") != 0)
        return NULL;
    if (argc < 2) {
        near_drop_ns(a->n, ns.b);
    } else if (get_bytes(env, argv[1], &key, "key") == 0) {
        near_drop(a->n, ns.b, key.b);
        free(key.heap);
    }
    free(ns.heap);
    return NULL;
}

static void set_num(napi_env env, napi_value obj, const char *name, double v)
{
    napi_value x;
    napi_create_double(env, v, &x);
    napi_set_named_property(env, obj, name, x);
}

static napi_value stats(napi_env env, napi_callback_info info)
{
    size_t argc = 0;
    addon *a = this_of(env, info, &argc, NULL);
    if (a == NULL)
        return NULL;
    nc_near_stats s;
    near_stats(a->n, &s);
    napi_value o, x;
    napi_create_object(env, &o);
    set_num(env, o, "hits", (double)s.hits);
    set_num(env, o, "misses", (double)s.misses);
    set_num(env, o, "entries", (double)s.entries);
    set_num(env, o, "bytes", (double)s.bytes);
    set_num(env, o, "evictions", (double)s.evictions);
    set_num(env, o, "flushes", (double)s.flushes);
    set_num(env, o, "laps", (double)s.laps);
    set_num(env, o, "fillsRefused", (double)s.fills_refused);
    napi_get_boolean(env, s.serving != 0, &x);
    napi_set_named_property(env, o, "serving", x);
    napi_create_string_utf8(env, s.problem, NAPI_AUTO_LENGTH, &x);
    napi_set_named_property(env, o, "problem", x);
    return o;
}

static napi_value close_(napi_env env, napi_callback_info info)
{
    napi_value self;
    void *p = NULL;
    napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
    if (napi_remove_wrap(env, self, &p) == napi_ok && p != NULL)
        finalize(env, p, NULL);
    return NULL;
}

/* hash(bytes): FNV-1a 64 as a BigInt (ring_hash). */
static napi_value hash(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], out;
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    arg a;
    if (argc < 1 || get_bytes(env, argv[0], &a, "bytes") != 0)
        return NULL;
    napi_create_bigint_uint64(env, ring_hash(a.b.data, a.b.len), &out);
    free(a.heap);
    return out;
}

/* keyMix(nsHash, keyHash): BigInts in, the stamp mix out (ring_key_mix). */
static napi_value key_mix(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2], out;
    uint64_t h[2];
    bool lossless;
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    for (int i = 0; i < 2; i++)
        if (i >= (int)argc || napi_get_value_bigint_uint64(env, argv[i], &h[i], &lossless) != napi_ok)
            return throw_type(env, "keyMix(nsHash: bigint, keyHash: bigint)");
    napi_create_bigint_uint64(env, ring_key_mix(h[0], h[1]), &out);
    return out;
}

/* keepOf(found, negative, stale, leased, ttlMs): what a Get's reply may put
 * in the tier (near_keep_of): 0 nothing, 1 the value, 2 a negative entry. */
static napi_value keep_of(napi_env env, napi_callback_info info)
{
    size_t argc = 5;
    napi_value argv[5], out;
    bool b[4] = {0};
    double ttl = 0;
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 5)
        return throw_type(env, "keepOf(found, negative, stale, leased, ttlMs)");
    for (int i = 0; i < 4; i++)
        napi_get_value_bool(env, argv[i], &b[i]);
    napi_get_value_double(env, argv[4], &ttl);
    napi_create_int32(env, (int32_t)near_keep_of(b[0], b[1], b[2], b[3], ttl > 0 ? (uint64_t)ttl : 0),
                      &out);
    return out;
}

/* mallocBytes(): the bytes malloc has handed out and not had back
 * (mallinfo2's uordblks), what the tests hold the near tier's bound to; -1
 * where the C library does not say. */
static napi_value malloc_bytes(napi_env env, napi_callback_info info)
{
    (void)info;
    napi_value out;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    napi_create_double(env, (double)mi.uordblks, &out);
#else
    napi_create_double(env, -1, &out);
#endif
    return out;
}

/* The ring's layout, from common/ring.h: checked against ring.json. */
static napi_value layout(napi_env env)
{
    napi_value o, x;
    napi_create_object(env, &o);
    napi_create_buffer_copy(env, 8, RING_MAGIC, NULL, &x);
    napi_set_named_property(env, o, "magic", x);
    set_num(env, o, "layout", RING_LAYOUT);
    set_num(env, o, "slot_size", RING_SLOT_SIZE);
    set_num(env, o, "slots_at", RING_SLOTS_AT);
    set_num(env, o, "slots_min", RING_SLOTS_MIN);
    set_num(env, o, "slots_max", RING_SLOTS_MAX);
    set_num(env, o, "layout_at", RING_LAYOUT_AT);
    set_num(env, o, "slot_size_at", RING_SLOT_SIZE_AT);
    set_num(env, o, "slot_count_at", RING_SLOT_COUNT_AT);
    set_num(env, o, "epoch_at", RING_EPOCH_AT);
    set_num(env, o, "flush_gen_at", RING_FLUSH_GEN_AT);
    set_num(env, o, "head_at", RING_HEAD_AT);
    set_num(env, o, "serving_until_at", RING_SERVING_UNTIL_AT);
    set_num(env, o, "slot_seq_at", RING_SLOT_SEQ_AT);
    set_num(env, o, "slot_kind_at", RING_SLOT_KIND_AT);
    set_num(env, o, "slot_ns_hash_at", RING_SLOT_NS_HASH_AT);
    set_num(env, o, "slot_key_hash_at", RING_SLOT_KEY_HASH_AT);
    set_num(env, o, "kind_key", RING_KEY);
    set_num(env, o, "kind_namespace", RING_NAMESPACE);
    set_num(env, o, "stamps", RING_STAMPS);
    set_num(env, o, "recheck_ms", RING_RECHECK_MS);
    napi_create_string_utf8(env, RING_SUFFIX, NAPI_AUTO_LENGTH, &x);
    napi_set_named_property(env, o, "suffix", x);
    return o;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */)
{
    napi_property_descriptor methods[] = {
        {"get", NULL, get, NULL, NULL, NULL, napi_default, NULL},
        {"getString", NULL, get_string, NULL, NULL, NULL, napi_default, NULL},
        {"ticket", NULL, ticket, NULL, NULL, NULL, napi_default, NULL},
        {"fill", NULL, fill, NULL, NULL, NULL, napi_default, NULL},
        {"drop", NULL, drop, NULL, NULL, NULL, napi_default, NULL},
        {"forget", NULL, forget, NULL, NULL, NULL, napi_default, NULL},
        {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
        {"close", NULL, close_, NULL, NULL, NULL, napi_default, NULL},
    };
    napi_value cls;
    napi_define_class(env, "Near", NAPI_AUTO_LENGTH, ctor, NULL,
                      sizeof methods / sizeof methods[0], methods, &cls);
    napi_set_named_property(env, exports, "Near", cls);
    napi_value f;
    napi_create_function(env, "hash", NAPI_AUTO_LENGTH, hash, NULL, &f);
    napi_set_named_property(env, exports, "hash", f);
    napi_create_function(env, "keyMix", NAPI_AUTO_LENGTH, key_mix, NULL, &f);
    napi_set_named_property(env, exports, "keyMix", f);
    napi_create_function(env, "keepOf", NAPI_AUTO_LENGTH, keep_of, NULL, &f);
    napi_set_named_property(env, exports, "keepOf", f);
    napi_create_function(env, "mallocBytes", NAPI_AUTO_LENGTH, malloc_bytes, NULL, &f);
    napi_set_named_property(env, exports, "mallocBytes", f);
    napi_set_named_property(env, exports, "layout", layout(env));
    return exports;
}
