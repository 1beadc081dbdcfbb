/* Key formats; see keyspace.h. */
#include "keyspace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ks_l1_key_make(ks_l1_key *k, const void *ns, size_t nslen, const void *key, size_t klen)
{
    size_t need = nslen + 1 + klen;
    k->buf = need <= sizeof k->inline_buf ? k->inline_buf : malloc(need);
    if (k->buf == NULL)
        return ENOMEM;
    if (nslen > 0) /* protobuf-c leaves an empty field's data NULL */
        memcpy(k->buf, ns, nslen);
    k->buf[nslen] = ':';
    if (klen > 0)
        memcpy(k->buf + nslen + 1, key, klen);
    k->len = need;
    return 0;
}

size_t ks_l1_key_ns_len(const void *l1key, size_t len)
{
    const char *colon = memchr(l1key, ':', len);
    return colon != NULL ? (size_t)(colon - (const char *)l1key) : len;
}

void ks_l1_key_free(ks_l1_key *k)
{
    if (k->buf != k->inline_buf)
        free(k->buf);
}

size_t ks_nsver_key(char *buf, const char *prefix, const void *ns, size_t nslen)
{
    size_t plen = strlen(prefix);
    if (plen > KS_PREFIX_MAX || nslen > KS_NS_MAX)
        return 0;
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, ":nsver:", 7);
    memcpy(buf + plen + 7, ns, nslen);
    return plen + 7 + nslen;
}

static const char *const kind_text[] = {
    [KS_DATA] = ":", [KS_SWR] = "swr:", [KS_NEG] = "neg:", [KS_LEASE] = "lease:"};

void ks_tag(char *buf, const void *ns, size_t nslen, const void *key, size_t klen)
{
    static const char hex[] = "0123456789abcdef";
    uint32_t h = 2166136261u; /* FNV-1a, 32 bits */
    for (size_t i = 0; i < nslen; i++)
        h = (h ^ ((const unsigned char *)ns)[i]) * 16777619u;
    h = (h ^ ':') * 16777619u;
    for (size_t i = 0; i < klen; i++)
        h = (h ^ ((const unsigned char *)key)[i]) * 16777619u;
    buf[0] = '{';
    for (int i = 0; i < 8; i++)
        buf[1 + i] = hex[(h >> (28 - 4 * i)) & 0xf];
    buf[9] = '}';
}

size_t ks_data_key_max(const char *prefix, size_t nslen, uint64_t version, size_t klen)
{
    char ver[24];
    size_t verlen = (size_t)snprintf(ver, sizeof ver, "%" PRIu64, version);
    return strlen(prefix) + 1 + KS_TAG_LEN + 1 + nslen + 1 + verlen + strlen("lease:") + klen;
}

size_t ks_data_key(char *buf, const char *prefix, const void *ns, size_t nslen, uint64_t version,
                   enum ks_kind kind, const void *key, size_t klen)
{
    char ver[24];
    size_t verlen = (size_t)snprintf(ver, sizeof ver, "%" PRIu64, version);
    size_t plen = strlen(prefix), klen_kind = strlen(kind_text[kind]);
    char *p = buf;
    memcpy(p, prefix, plen), p += plen, *p++ = ':';
    ks_tag(p, ns, nslen, key, klen), p += KS_TAG_LEN, *p++ = ':';
    memcpy(p, ns, nslen), p += nslen, *p++ = ':';
    memcpy(p, ver, verlen), p += verlen;
    memcpy(p, kind_text[kind], klen_kind), p += klen_kind;
    memcpy(p, key, klen), p += klen;
    return (size_t)(p - buf);
}

int ks_channel(char *buf, size_t size, const char *prefix)
{
    return snprintf(buf, size, "%s:inval", prefix);
}

int ks_own_channel(char *buf, size_t size, const char *prefix, const char *node)
{
    return snprintf(buf, size, "{%s:inval}:%s", prefix, node);
}

unsigned ks_slot(const void *key, size_t len)
{
    const char *k = key, *open = memchr(k, '{', len), *close = NULL;
    if (open != NULL)
        close = memchr(open + 1, '}', len - (size_t)(open + 1 - k));
    if (close != NULL && close > open + 1)
        k = open + 1, len = (size_t)(close - open - 1);
    unsigned crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)k[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
        crc &= 0xffff;
    }
    return crc % KS_SLOTS;
}

unsigned ks_inval_bucket(unsigned slot)
{
    return slot % KS_SLOTS * KS_INVAL_BUCKETS / KS_SLOTS;
}

/* Each N falls in a bucket at random: about KS_INVAL_BUCKETS * ln(it) tries
 * cover them all. */
void ks_inval_tags(const char *prefix, unsigned n_of[KS_INVAL_BUCKETS])
{
    char tag[KS_PREFIX_MAX + 32];
    unsigned left = KS_INVAL_BUCKETS;
    for (unsigned b = 0; b < KS_INVAL_BUCKETS; b++)
        n_of[b] = UINT32_MAX;
    for (unsigned n = 0; left > 0; n++) {
        int len = snprintf(tag, sizeof tag, "%s:inval:%u", prefix, n);
        unsigned b = ks_inval_bucket(ks_slot(tag, (size_t)len));
        if (n_of[b] == UINT32_MAX)
            n_of[b] = n, left--;
    }
}

int ks_inval_channel(char *buf, size_t size, const char *prefix, unsigned n, const char *node)
{
    return node != NULL ? snprintf(buf, size, "{%s:inval:%u}:%s", prefix, n, node)
                        : snprintf(buf, size, "{%s:inval:%u}", prefix, n);
}
