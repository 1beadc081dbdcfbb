/* Unit: the key formats, as Redis and L1 hold them. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "keyspace.h"

static void data_key_is(enum ks_kind kind, uint64_t version, const char *want)
{
    char buf[256];
    cr_assert_leq(ks_data_key_max("nc:v1", 2, version, 3), sizeof buf);
    size_t n = ks_data_key(buf, "nc:v1", "ns", 2, version, kind, "key", 3);
    cr_assert_leq(n, ks_data_key_max("nc:v1", 2, version, 3));
    buf[n] = '\0';
    cr_assert_str_eq(buf, want);
}

Test(keyspace, data_keys_and_companions_carry_the_tag_and_the_version)
{
    /* 107382f3: FNV-1a of "ns:key" */
    data_key_is(KS_DATA, 0, "nc:v1:{107382f3}:ns:0:key");
    data_key_is(KS_DATA, 42, "nc:v1:{107382f3}:ns:42:key");
    data_key_is(KS_SWR, 7, "nc:v1:{107382f3}:ns:7swr:key");
    data_key_is(KS_NEG, 7, "nc:v1:{107382f3}:ns:7neg:key");
    data_key_is(KS_LEASE, 18446744073709551615ULL,
                "nc:v1:{107382f3}:ns:18446744073709551615lease:key");
}

Test(keyspace, slots_are_redis_clusters_crc16_of_the_hash_tag)
{
    /* the CRC16 check value of "123456789" is 0x31c3; Redis's own examples */
    cr_assert_eq(ks_slot("123456789", 9), 0x31c3 % KS_SLOTS);
    cr_assert_eq(ks_slot("foo", 3), 12182);
    cr_assert_eq(ks_slot("{user1000}.following", 20), ks_slot("user1000", 8));
    cr_assert_neq(ks_slot("foo{}{bar}", 10), ks_slot("bar", 3), "an empty tag is no tag");
    cr_assert_eq(ks_slot("foo{{bar}}zap", 13), ks_slot("{bar", 4));
    cr_assert_eq(ks_slot("foo{bar}{zap}", 13), ks_slot("bar", 3), "the first tag counts");
}

Test(keyspace, an_entrys_keys_share_a_slot_and_a_namespace_spreads_over_slots)
{
    char buf[256];
    static const enum ks_kind kinds[] = {KS_DATA, KS_SWR, KS_NEG, KS_LEASE};
    /* braces in the namespace or key do not move the tag */
    size_t n = ks_data_key(buf, "nc:v1", "n{s}", 4, 9, KS_DATA, "a}b{c", 5);
    unsigned slot = ks_slot(buf, n);
    for (size_t i = 0; i < 4; i++) {
        n = ks_data_key(buf, "nc:v1", "n{s}", 4, 9 + i * 1000, kinds[i], "a}b{c", 5);
        cr_assert_eq(ks_slot(buf, n), slot, "kind %zu under another version left the entry's slot", i);
    }
    static unsigned char seen[16384];
    int distinct = 0;
    for (int i = 0; i < 150; i++) {
        char key[16];
        int klen = snprintf(key, sizeof key, "k%d", i);
        n = ks_data_key(buf, "nc:v1", "users", 5, 1, KS_DATA, key, (size_t)klen);
        distinct += !seen[ks_slot(buf, n)]++;
    }
    cr_assert_geq(distinct, 140, "150 keys of one namespace on %d slots", distinct);
    char tag[KS_TAG_LEN];
    ks_tag(tag, "users", 5, "k1", 2);
    cr_assert_eq(tag[0], '{');
    cr_assert_eq(tag[KS_TAG_LEN - 1], '}');
}

Test(keyspace, version_key_and_channel)
{
    char buf[KS_NSVER_KEY_MAX + 1];
    size_t n = ks_nsver_key(buf, "nc:v1", "ns", 2);
    buf[n] = '\0';
    cr_assert_str_eq(buf, "nc:v1:nsver:ns");
    char ch[64];
    ks_channel(ch, sizeof ch, "nc:v1");
    cr_assert_str_eq(ch, "nc:v1:inval");
}

Test(keyspace, a_clusters_channels_are_one_per_bucket_of_slots_each_in_its_bucket)
{
    unsigned n_of[KS_INVAL_BUCKETS];
    ks_inval_tags("nc:v1", n_of);
    char ch[KS_OWN_CHANNEL_SIZE], own[KS_OWN_CHANNEL_SIZE];
    for (unsigned b = 0; b < KS_INVAL_BUCKETS; b++) {
        int n = ks_inval_channel(ch, sizeof ch, "nc:v1", n_of[b], NULL);
        int m = ks_inval_channel(own, sizeof own, "nc:v1", n_of[b], "node1");
        cr_assert_eq(ks_inval_bucket(ks_slot(ch, (size_t)n)), b, "%s", ch);
        cr_assert_eq(ks_slot(own, (size_t)m), ks_slot(ch, (size_t)n), "%s", own);
        /* the smallest N of its bucket */
        for (unsigned k = 0; k < n_of[b]; k++) {
            char tag[64];
            int len = snprintf(tag, sizeof tag, "nc:v1:inval:%u", k);
            cr_assert_neq(ks_inval_bucket(ks_slot(tag, (size_t)len)), b);
        }
    }
    ks_inval_channel(ch, sizeof ch, "nc:v1", 7, NULL);
    cr_assert_str_eq(ch, "{nc:v1:inval:7}");
    ks_inval_channel(ch, sizeof ch, "nc:v1", 7, "abc");
    cr_assert_str_eq(ch, "{nc:v1:inval:7}:abc");
    cr_assert_eq(ks_inval_bucket(0), 0);
    cr_assert_eq(ks_inval_bucket(KS_SLOTS - 1), KS_INVAL_BUCKETS - 1);
    /* the longest prefix fits the buffers */
    char prefix[KS_PREFIX_MAX + 1];
    memset(prefix, 'p', KS_PREFIX_MAX);
    prefix[KS_PREFIX_MAX] = '\0';
    const char *node = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    cr_assert_lt(ks_inval_channel(ch, sizeof ch, prefix, UINT32_MAX, node), (int)sizeof ch);
}

Test(keyspace, version_key_refuses_a_prefix_or_namespace_over_its_limit)
{
    char prefix[KS_PREFIX_MAX + 2], ns[KS_NS_MAX + 1], buf[KS_NSVER_KEY_MAX + 1];
    memset(prefix, 'p', sizeof prefix - 1);
    prefix[KS_PREFIX_MAX] = '\0';
    memset(ns, 'n', sizeof ns);
    cr_assert_eq(ks_nsver_key(buf, prefix, ns, KS_NS_MAX), KS_NSVER_KEY_MAX, "the longest fits");
    cr_assert_eq(ks_nsver_key(buf, prefix, ns, KS_NS_MAX + 1), 0);
    prefix[KS_PREFIX_MAX] = 'p';
    prefix[KS_PREFIX_MAX + 1] = '\0';
    cr_assert_eq(ks_nsver_key(buf, prefix, ns, 2), 0);
}

Test(keyspace, l1_key_is_namespace_colon_key_and_spills_to_the_heap)
{
    ks_l1_key k;
    cr_assert_eq(ks_l1_key_make(&k, "ns", 2, "key", 3), 0);
    cr_assert_eq(k.len, 6);
    cr_assert(memcmp(k.buf, "ns:key", 6) == 0);
    cr_assert_eq(k.buf, k.inline_buf);
    ks_l1_key_free(&k);
    static char big[4000];
    memset(big, 'x', sizeof big);
    cr_assert_eq(ks_l1_key_make(&k, "ns", 2, big, sizeof big), 0);
    cr_assert_eq(k.len, 3 + sizeof big);
    cr_assert_neq(k.buf, k.inline_buf);
    ks_l1_key_free(&k);
}

Test(keyspace, namespace_prefix_in_l1_ends_with_the_separator)
{
    ks_l1_key k;
    cr_assert_eq(ks_l1_key_make(&k, "ns", 2, "", 0), 0);
    cr_assert_eq(k.len, 3);
    cr_assert(memcmp(k.buf, "ns:", 3) == 0);
    ks_l1_key_free(&k);
}

/* Found by tests/fuzz (fuzz_inval): protobuf-c leaves an empty namespace's
 * data NULL, and an invalidation may carry one; memcpy from NULL is
 * undefined even for 0 bytes (UBSan in the sanitizer build). */
Test(keyspace, l1_key_of_an_empty_namespace_with_no_data_is_the_separator_only)
{
    ks_l1_key k;
    cr_assert_eq(ks_l1_key_make(&k, NULL, 0, "k", 1), 0);
    cr_assert_eq(k.len, 2);
    cr_assert_eq(memcmp(k.buf, ":k", 2), 0);
    ks_l1_key_free(&k);
}
