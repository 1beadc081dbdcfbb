/* Tests of the L1 store (daemon/l1.c): LRU order, expiry, byte accounting,
 * sharding and thread safety. Budgets are computed from l1_entry_overhead()
 * so that they hold exactly N entries of a known size. */
#include "l1.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define FOREVER INT64_MAX

/* What a visit saw; `calls` counts visits. */
struct seen {
    char value[256];
    size_t len;
    int64_t expires_at;
    uint32_t tag;
    int calls;
    int reject; /* what remember() answers */
};

static int remember(void *arg, const void *value, size_t len, int64_t expires_at, uint32_t tag)
{
    struct seen *seen = arg;
    cr_assert_leq(len, sizeof seen->value);
    memcpy(seen->value, value, len);
    seen->len = len;
    seen->expires_at = expires_at;
    seen->tag = tag;
    seen->calls++;
    return seen->reject;
}

/* Returns the charged size of an entry with these key and value lengths. */
static uint64_t charge(size_t klen, size_t vlen)
{
    return l1_entry_overhead() + klen + vlen;
}

static l1 *new_store(uint64_t max_memory, unsigned shards)
{
    l1 *s = NULL;
    cr_assert_eq(l1_create(&s, max_memory, shards), 0);
    cr_assert_not_null(s);
    return s;
}

static int set_str(l1 *s, const char *key, const char *value, int64_t expires_at, int64_t now)
{
    return l1_set(s, key, strlen(key), value, strlen(value), 0, expires_at, now);
}

static int has(l1 *s, const char *key, int64_t now)
{
    return l1_get(s, key, strlen(key), now, NULL, NULL);
}

static l1_stats stats_of(l1 *s)
{
    l1_stats st;
    l1_get_stats(s, &st);
    return st;
}

Test(l1, evicts_least_recent_when_full)
{
    l1 *s = new_store(3 * charge(1, 2), 1);
    cr_assert_eq(set_str(s, "a", "va", FOREVER, 0), 0);
    cr_assert_eq(set_str(s, "b", "vb", FOREVER, 0), 0);
    cr_assert_eq(set_str(s, "c", "vc", FOREVER, 0), 0);
    cr_assert_eq(stats_of(s).evictions, 0);

    cr_assert_eq(set_str(s, "d", "vd", FOREVER, 0), 0);
    cr_assert_eq(has(s, "a", 0), 0);
    cr_assert_eq(has(s, "b", 0), 1);
    cr_assert_eq(has(s, "c", 0), 1);
    cr_assert_eq(has(s, "d", 0), 1);
    l1_stats st = stats_of(s);
    cr_assert_eq(st.evictions, 1);
    cr_assert_eq(st.entries, 3);
    cr_assert_eq(st.bytes, 3 * charge(1, 2));
    l1_destroy(s);
}

Test(l1, evicts_as_many_entries_as_a_big_entry_needs)
{
    l1 *s = new_store(4 * charge(1, 1), 1);
    const char *keys[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(set_str(s, keys[i], "v", FOREVER, 0), 0);

    /* Needs the room of two small entries plus one byte: three must go. */
    char big[512];
    size_t blen = 2 * charge(1, 1) + 1 - l1_entry_overhead() - 1;
    cr_assert_leq(blen, sizeof big);
    memset(big, 'x', blen);
    cr_assert_eq(l1_set(s, "e", 1, big, blen, 0, FOREVER, 0), 0);
    cr_assert_eq(has(s, "a", 0) + has(s, "b", 0) + has(s, "c", 0), 0);
    cr_assert_eq(has(s, "d", 0), 1);
    cr_assert_eq(stats_of(s).evictions, 3);
    cr_assert_leq(stats_of(s).bytes, 4 * charge(1, 1));
    l1_destroy(s);
}

Test(l1, get_refreshes_recency)
{
    l1 *s = new_store(3 * charge(1, 2), 1);
    set_str(s, "a", "va", FOREVER, 0);
    set_str(s, "b", "vb", FOREVER, 0);
    set_str(s, "c", "vc", FOREVER, 0);
    cr_assert_eq(has(s, "a", 0), 1); /* a is now the most recent; b the least */

    cr_assert_eq(set_str(s, "d", "vd", FOREVER, 0), 0);
    cr_assert_eq(has(s, "b", 0), 0);
    cr_assert_eq(has(s, "a", 0), 1);
    cr_assert_eq(has(s, "c", 0), 1);
    cr_assert_eq(has(s, "d", 0), 1);
    l1_destroy(s);
}

Test(l1, set_of_existing_key_refreshes_recency)
{
    l1 *s = new_store(3 * charge(1, 2), 1);
    set_str(s, "a", "va", FOREVER, 0);
    set_str(s, "b", "vb", FOREVER, 0);
    set_str(s, "c", "vc", FOREVER, 0);
    cr_assert_eq(set_str(s, "a", "wa", FOREVER, 0), 0);

    cr_assert_eq(set_str(s, "d", "vd", FOREVER, 0), 0);
    cr_assert_eq(has(s, "b", 0), 0);
    cr_assert_eq(has(s, "a", 0), 1);
    l1_destroy(s);
}

Test(l1, visit_sees_value_length_and_expiry)
{
    l1 *s = new_store(1 << 20, 4);
    struct seen seen = {0};
    cr_assert_eq(l1_set(s, "k", 1, "hello", 5, 0, 1234, 10), 0);
    cr_assert_eq(l1_get(s, "k", 1, 10, remember, &seen), 1);
    cr_assert_eq(seen.calls, 1);
    cr_assert_eq(seen.len, 5);
    cr_assert_arr_eq(seen.value, "hello", 5);
    cr_assert_eq(seen.expires_at, 1234);

    cr_assert_eq(l1_get(s, "nope", 4, 10, remember, &seen), 0);
    cr_assert_eq(seen.calls, 1, "a miss must not call visit");
    l1_destroy(s);
}

Test(l1, zero_length_value_is_a_hit)
{
    l1 *s = new_store(1 << 20, 1);
    struct seen seen = {.len = 99};
    cr_assert_eq(l1_set(s, "k", 1, NULL, 0, 0, FOREVER, 0), 0);
    cr_assert_eq(l1_get(s, "k", 1, 0, remember, &seen), 1);
    cr_assert_eq(seen.len, 0);
    cr_assert_eq(stats_of(s).bytes, charge(1, 0));
    l1_destroy(s);
}

Test(l1, never_serves_expired_entry)
{
    l1 *s = new_store(1 << 20, 1);
    struct seen seen = {0};
    cr_assert_eq(set_str(s, "k", "v", 100, 0), 0);
    cr_assert_eq(l1_get(s, "k", 1, 99, remember, &seen), 1);
    cr_assert_eq(l1_get(s, "k", 1, 100, remember, &seen), 0, "served at its expiry");
    cr_assert_eq(seen.calls, 1);

    l1_stats st = stats_of(s);
    cr_assert_eq(st.expired, 1);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.bytes, 0);
    cr_assert_eq(st.evictions, 0);

    /* Removed, not just hidden: even an earlier `now` cannot see it again. */
    cr_assert_eq(has(s, "k", 50), 0);
    cr_assert_eq(stats_of(s).expired, 1);
    l1_destroy(s);
}

Test(l1, set_with_past_expiry_is_rejected_and_removes_old_entry)
{
    l1 *s = new_store(1 << 20, 1);
    cr_assert_eq(set_str(s, "k", "old", FOREVER, 0), 0);
    cr_assert_eq(set_str(s, "k", "new", 10, 10), EINVAL);
    cr_assert_eq(set_str(s, "k", "new", 9, 10), EINVAL);
    cr_assert_eq(has(s, "k", 0), 0);
    l1_stats st = stats_of(s);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.bytes, 0);
    cr_assert_eq(st.evictions, 0);
    l1_destroy(s);
}

Test(l1, replaces_value_of_existing_key_without_eviction)
{
    /* Room for exactly one entry: replacing must not evict the key itself. */
    l1 *s = new_store(charge(1, 4), 1);
    struct seen seen = {0};
    cr_assert_eq(set_str(s, "k", "one", FOREVER, 0), 0);
    cr_assert_eq(set_str(s, "k", "four", FOREVER, 0), 0);
    cr_assert_eq(l1_get(s, "k", 1, 0, remember, &seen), 1);
    cr_assert_eq(seen.len, 4);
    cr_assert_arr_eq(seen.value, "four", 4);

    l1_stats st = stats_of(s);
    cr_assert_eq(st.evictions, 0);
    cr_assert_eq(st.entries, 1);
    cr_assert_eq(st.bytes, charge(1, 4));
    l1_destroy(s);
}

Test(l1, rejects_entry_larger_than_shard)
{
    uint64_t budget = charge(1, 100);
    l1 *s = new_store(budget, 1);
    char value[101];
    memset(value, 'v', sizeof value);

    cr_assert_eq(l1_set(s, "k", 1, value, 100, 0, FOREVER, 0), 0, "an exact fit is stored");
    cr_assert_eq(l1_set(s, "k", 1, value, 101, 0, FOREVER, 0), E2BIG);
    cr_assert_eq(has(s, "k", 0), 0, "the old entry of the key must go");
    l1_stats st = stats_of(s);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.bytes, 0);
    cr_assert_eq(st.evictions, 0);
    l1_destroy(s);
}

Test(l1, oversized_entry_leaves_other_keys_alone)
{
    uint64_t budget = charge(1, 10) * 2;
    l1 *s = new_store(budget, 1);
    char value[512];
    cr_assert_leq(budget, sizeof value);
    memset(value, 'v', sizeof value);
    cr_assert_eq(l1_set(s, "a", 1, value, 10, 0, FOREVER, 0), 0);
    cr_assert_eq(l1_set(s, "b", 1, value, 10, 0, FOREVER, 0), 0);
    cr_assert_eq(l1_set(s, "c", 1, value, budget, 0, FOREVER, 0), E2BIG);
    cr_assert_eq(has(s, "a", 0) + has(s, "b", 0), 2);
    cr_assert_eq(stats_of(s).evictions, 0);
    l1_destroy(s);
}

Test(l1, charges_key_value_and_overhead)
{
    size_t ov = l1_entry_overhead();
    cr_assert_geq(ov, 2 * sizeof(void *), "overhead must cover at least the links");
    cr_assert_leq(ov, 96, "overhead target is <= 96 bytes per entry");

    l1 *s = new_store(1 << 20, 4);
    set_str(s, "key1", "v", FOREVER, 0);
    set_str(s, "k2", "a longer value", FOREVER, 0);
    l1_stats st = stats_of(s);
    cr_assert_eq(st.entries, 2);
    cr_assert_eq(st.bytes, 2 * ov + 4 + 1 + 2 + 14);
    cr_assert_eq(st.max_bytes, 1 << 20);

    cr_assert_eq(l1_del(s, "key1", 4), 1);
    cr_assert_eq(stats_of(s).bytes, ov + 2 + 14);
    cr_assert_eq(l1_del(s, "k2", 2), 1);
    cr_assert_eq(stats_of(s).bytes, 0);
    cr_assert_eq(stats_of(s).entries, 0);
    l1_destroy(s);
}

Test(l1, binary_keys_with_nul_bytes_are_distinct)
{
    l1 *s = new_store(1 << 20, 4);
    const char *keys[] = {"a", "a\0", "a\0b", "a\0c", "\0", ""};
    const size_t lens[] = {1, 2, 3, 3, 1, 0};
    const size_t n = sizeof lens / sizeof lens[0];
    for (size_t i = 0; i < n; i++) {
        char v = (char)('0' + i);
        cr_assert_eq(l1_set(s, keys[i], lens[i], &v, 1, 0, FOREVER, 0), 0);
    }
    cr_assert_eq(stats_of(s).entries, n);
    for (size_t i = 0; i < n; i++) {
        struct seen seen = {0};
        cr_assert_eq(l1_get(s, keys[i], lens[i], 0, remember, &seen), 1);
        cr_assert_eq(seen.value[0], (char)('0' + i), "key %zu got another key's value", i);
    }
    cr_assert_eq(l1_del(s, "a\0b", 3), 1);
    cr_assert_eq(l1_get(s, "a\0c", 3, 0, NULL, NULL), 1);
    cr_assert_eq(l1_get(s, "a\0b", 3, 0, NULL, NULL), 0);
    l1_destroy(s);
}

Test(l1, del_removes_only_that_key)
{
    l1 *s = new_store(1 << 20, 4);
    set_str(s, "a", "1", FOREVER, 0);
    set_str(s, "b", "2", FOREVER, 0);
    cr_assert_eq(l1_del(s, "a", 1), 1);
    cr_assert_eq(l1_del(s, "a", 1), 0);
    cr_assert_eq(l1_del(s, "zz", 2), 0);
    cr_assert_eq(has(s, "a", 0), 0);
    cr_assert_eq(has(s, "b", 0), 1);
    l1_stats st = stats_of(s);
    cr_assert_eq(st.entries, 1);
    cr_assert_eq(st.evictions, 0);
    l1_destroy(s);
}

Test(l1, del_prefix_removes_only_matching_keys)
{
    l1 *s = new_store(1 << 20, 16);
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "ns1:%d", i);
        cr_assert_eq(set_str(s, key, "v", FOREVER, 0), 0);
        snprintf(key, sizeof key, "ns10:%d", i);
        cr_assert_eq(set_str(s, key, "v", FOREVER, 0), 0);
    }
    set_str(s, "ns1:", "exact prefix", FOREVER, 0);
    set_str(s, "ns1", "shorter than prefix", FOREVER, 0);
    set_str(s, "xns1:", "prefix inside", FOREVER, 0);

    cr_assert_eq(l1_del_prefix(s, "ns1:", 4), 201);
    cr_assert_eq(has(s, "ns1:7", 0), 0);
    cr_assert_eq(has(s, "ns1:", 0), 0);
    cr_assert_eq(has(s, "ns10:7", 0), 1);
    cr_assert_eq(has(s, "ns1", 0), 1);
    cr_assert_eq(has(s, "xns1:", 0), 1);
    l1_stats st = stats_of(s);
    cr_assert_eq(st.entries, 202);
    cr_assert_eq(st.evictions, 0);

    cr_assert_eq(l1_del_prefix(s, "nothing", 7), 0);
    cr_assert_eq(l1_del_prefix(s, "", 0), 202, "an empty prefix removes everything");
    st = stats_of(s);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.bytes, 0);
    l1_destroy(s);
}

Test(l1, del_prefix_matches_binary_prefixes)
{
    l1 *s = new_store(1 << 20, 2);
    cr_assert_eq(l1_set(s, "p\0a", 3, "v", 1, 0, FOREVER, 0), 0);
    cr_assert_eq(l1_set(s, "p\0b", 3, "v", 1, 0, FOREVER, 0), 0);
    cr_assert_eq(l1_set(s, "p\1a", 3, "v", 1, 0, FOREVER, 0), 0);
    /* A C-string compare would stop at the NUL and take p\0a for p\0b. */
    cr_assert_eq(l1_del_prefix(s, "p\0b", 3), 1);
    cr_assert_eq(l1_get(s, "p\0a", 3, 0, NULL, NULL), 1);
    cr_assert_eq(l1_del_prefix(s, "p\0", 2), 1);
    cr_assert_eq(l1_get(s, "p\0a", 3, 0, NULL, NULL), 0);
    cr_assert_eq(l1_get(s, "p\1a", 3, 0, NULL, NULL), 1);
    l1_destroy(s);
}

Test(l1, shards_spread_keys_and_each_keeps_its_budget)
{
    /* 8 shards of exactly 5 entries each. Enough keys reach every shard, so a
     * full store holds 40; a shard over budget would make it hold more, keys
     * piling into few shards would make it hold fewer. */
    const unsigned nshards = 8, per_shard = 5;
    l1 *s = new_store((uint64_t)nshards * per_shard * charge(8, 1), nshards);
    char key[9];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%07d", i);
        cr_assert_eq(l1_set(s, key, 8, "v", 1, 0, FOREVER, 0), 0);
    }
    l1_stats st = stats_of(s);
    cr_assert_eq(st.entries, nshards * per_shard);
    cr_assert_eq(st.bytes, st.max_bytes);
    cr_assert_eq(st.evictions, 2000 - nshards * per_shard);

    /* An entry that fits the store but not one shard is refused. */
    char value[1024];
    memset(value, 'v', sizeof value);
    size_t vlen = per_shard * charge(8, 1) - l1_entry_overhead() - 8 + 1;
    cr_assert_leq(vlen, sizeof value);
    cr_assert_eq(l1_set(s, "big-key!", 8, value, vlen, 0, FOREVER, 0), E2BIG);
    cr_assert_eq(l1_set(s, "big-key!", 8, value, vlen - 1, 0, FOREVER, 0), 0);
    l1_destroy(s);
}

Test(l1, zero_shards_means_sixteen)
{
    uint64_t c = charge(1, 10);
    l1 *s = new_store(16 * c, 0);
    char value[16] = {0};
    cr_assert_eq(l1_set(s, "k", 1, value, 11, 0, FOREVER, 0), E2BIG);
    cr_assert_eq(l1_set(s, "k", 1, value, 10, 0, FOREVER, 0), 0);
    l1_destroy(s);
}

Test(l1, shard_count_rounds_up_to_power_of_two)
{
    uint64_t c = charge(1, 10);
    l1 *s = new_store(4 * c, 3); /* 4 shards of c bytes, not 3 of 4c/3 */
    char value[16] = {0};
    cr_assert_eq(l1_set(s, "k", 1, value, 11, 0, FOREVER, 0), E2BIG);
    cr_assert_eq(l1_set(s, "k", 1, value, 10, 0, FOREVER, 0), 0);
    l1_destroy(s);
}

Test(l1, zero_budget_stores_nothing)
{
    l1 *s = new_store(0, 1);
    cr_assert_eq(set_str(s, "k", "v", FOREVER, 0), E2BIG);
    cr_assert_eq(stats_of(s).entries, 0);
    l1_destroy(s);
}

Test(l1, destroy_accepts_null_and_frees_entries)
{
    l1_destroy(NULL);
    l1 *s = new_store(1 << 20, 4);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%d", i);
        set_str(s, key, "value", FOREVER, 0);
    }
    cr_assert_eq(stats_of(s).entries, 100);
    l1_destroy(s); /* leaks would show under valgrind / ASan */
}

/* A small deterministic generator (xorshift64*). Returns the next number. */
static uint64_t next_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Du;
}

/* Value of key i: its length depends on r, every byte is a function of i, so
 * a reader can tell a value that belongs to another key. */
static size_t make_value(char *buf, size_t cap, unsigned i, uint64_t r)
{
    size_t len = (size_t)(r % cap);
    memset(buf, (int)('A' + i % 26), len);
    return len;
}

struct check {
    unsigned key;
    int ok;
};

static int check_value(void *arg, const void *value, size_t len, int64_t expires_at, uint32_t tag)
{
    (void)expires_at, (void)tag;
    struct check *c = arg;
    const unsigned char *v = value;
    for (size_t j = 0; j < len; j++)
        if (v[j] != (unsigned char)('A' + c->key % 26))
            c->ok = 0;
    return 0;
}

static int add_len(void *arg, const void *value, size_t len, int64_t expires_at, uint32_t tag)
{
    (void)value, (void)expires_at, (void)tag;
    *(uint64_t *)arg += len;
    return 0;
}

/* Gets every key of 0..nkeys and checks that hits and their charges add up to
 * the store's stats exactly. */
static void assert_stats_match_contents(l1 *s, unsigned nkeys)
{
    uint64_t entries = 0, bytes = 0;
    char key[16];
    for (unsigned i = 0; i < nkeys; i++) {
        int klen = snprintf(key, sizeof key, "key:%u", i);
        uint64_t vlen = 0;
        if (l1_get(s, key, (size_t)klen, 0, add_len, &vlen)) {
            entries++;
            bytes += charge((size_t)klen, vlen);
        }
    }
    l1_stats st = stats_of(s);
    cr_assert_eq(st.entries, entries);
    cr_assert_eq(st.bytes, bytes);
    cr_assert_leq(st.bytes, st.max_bytes);
}

Test(l1, stored_bytes_never_exceed_max_after_many_random_sets, .timeout = 30)
{
    const unsigned nkeys = 3000;
    l1 *s = new_store(64 * 1024, 4);
    uint64_t rng = 42;
    char key[16], value[1500];
    for (int n = 0; n < 20000; n++) {
        unsigned i = (unsigned)(next_rand(&rng) % nkeys);
        int klen = snprintf(key, sizeof key, "key:%u", i);
        size_t vlen = make_value(value, sizeof value, i, next_rand(&rng));
        int rc = l1_set(s, key, (size_t)klen, value, vlen, 0, FOREVER, 0);
        cr_assert(rc == 0 || rc == E2BIG, "set returned %d", rc);
        cr_assert_leq(stats_of(s).bytes, 64 * 1024);
    }
    l1_stats st = stats_of(s);
    cr_assert_gt(st.evictions, 0, "the test should have filled the store");
    cr_assert_gt(st.entries, 0);
    assert_stats_match_contents(s, nkeys);
    l1_destroy(s);
}

struct hammer {
    l1 *s;
    uint64_t seed;
    unsigned nkeys;
    atomic_int *stop;
    int corrupt;
    int bad_rc;
    uint64_t ops;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    char key[16], value[600];
    while (!atomic_load(h->stop)) {
        unsigned i = (unsigned)(next_rand(&h->seed) % h->nkeys);
        int klen = snprintf(key, sizeof key, "key:%u", i);
        uint64_t r = next_rand(&h->seed);
        if (r % 8 < 5) {
            struct check c = {i, 1};
            l1_get(h->s, key, (size_t)klen, 0, check_value, &c);
            h->corrupt += !c.ok;
        } else if (r % 8 < 7) {
            size_t vlen = make_value(value, sizeof value, i, r >> 8);
            int rc = l1_set(h->s, key, (size_t)klen, value, vlen, 0, FOREVER, 0);
            h->bad_rc += rc != 0;
        } else {
            l1_del(h->s, key, (size_t)klen);
        }
        h->ops++;
    }
    return NULL;
}

Test(l1, concurrent_gets_and_sets_keep_budget, .timeout = 30)
{
    enum { NTHREADS = 4 };
    const unsigned nkeys = 2000;
    const uint64_t max = 128 * 1024;
    l1 *s = new_store(max, 4);
    atomic_int stop = 0;
    struct hammer h[NTHREADS];
    pthread_t tid[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        h[t] = (struct hammer){.s = s, .seed = 1000u + (uint64_t)t, .nkeys = nkeys, .stop = &stop};
        cr_assert_eq(pthread_create(&tid[t], NULL, hammer_run, &h[t]), 0);
    }

    /* Watch the total while the writers run; assert only once they are
     * joined, so a failure cannot leave threads behind in the test. */
    uint64_t peak = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        uint64_t bytes = stats_of(s).bytes;
        peak = bytes > peak ? bytes : peak;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < 300);
    atomic_store(&stop, 1);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(tid[t], NULL);

    cr_assert_leq(peak, max);
    uint64_t ops = 0;
    for (int t = 0; t < NTHREADS; t++) {
        cr_assert_eq(h[t].corrupt, 0, "thread %d read another key's value", t);
        cr_assert_eq(h[t].bad_rc, 0, "thread %d had a set fail", t);
        ops += h[t].ops;
    }
    cr_assert_gt(ops, 1000);
    l1_stats st = stats_of(s);
    cr_assert_gt(st.evictions, 0, "the test should have filled the store");
    assert_stats_match_contents(s, nkeys);
    l1_destroy(s);
}

Test(l1, keeps_every_entry_as_its_table_grows)
{
    /* One shard, so its table doubles many times over. */
    const unsigned n = 5000;
    l1 *s = new_store(1 << 24, 1);
    char key[16], value[64];
    for (unsigned i = 0; i < n; i++) {
        int klen = snprintf(key, sizeof key, "key:%u", i);
        size_t vlen = make_value(value, sizeof value, i, i);
        cr_assert_eq(l1_set(s, key, (size_t)klen, value, vlen, i, FOREVER, 0), 0);
    }
    l1_stats st = stats_of(s);
    cr_assert_eq(st.entries, n);
    cr_assert_eq(st.evictions, 0);
    for (unsigned i = 0; i < n; i++) {
        int klen = snprintf(key, sizeof key, "key:%u", i);
        struct check c = {i, 1};
        cr_assert_eq(l1_get(s, key, (size_t)klen, 0, check_value, &c), 1, "key %u lost", i);
        cr_assert(c.ok, "key %u has another key's value", i);
        if (i % 2 == 0)
            cr_assert_eq(l1_del(s, key, (size_t)klen), 1);
    }
    cr_assert_eq(stats_of(s).entries, n / 2);
    assert_stats_match_contents(s, n);
    l1_destroy(s);
}

Test(l1, evicts_in_lru_order_across_table_growth)
{
    /* Room for exactly 100 entries, set one by one (the table grows on the
     * way); the odd keys are then read, so the even ones are the least
     * recent and are the first 50 to go. */
    const unsigned n = 100;
    l1 *s = new_store(n * charge(8, 1), 1);
    char key[16];
    for (unsigned i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%07u", i);
        cr_assert_eq(l1_set(s, key, 8, "v", 1, 0, FOREVER, 0), 0);
    }
    for (unsigned i = 1; i < n; i += 2) {
        snprintf(key, sizeof key, "k%07u", i);
        cr_assert_eq(has(s, key, 0), 1);
    }
    for (unsigned i = 0; i < n / 2; i++) {
        snprintf(key, sizeof key, "n%07u", i);
        cr_assert_eq(l1_set(s, key, 8, "v", 1, 0, FOREVER, 0), 0);
    }
    cr_assert_eq(stats_of(s).evictions, n / 2);
    for (unsigned i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%07u", i);
        cr_assert_eq(has(s, key, 0), i % 2, "key %u", i);
    }
    l1_destroy(s);
}

/* Tickets, tags and flushes: the fill race. */

Test(l1, visit_sees_the_tag_and_a_rejected_entry_is_removed)
{
    l1 *s = NULL;
    cr_assert_eq(l1_create(&s, 1 << 20, 1), 0);
    cr_assert_eq(l1_set(s, "k", 1, "v", 1, 7, FOREVER, 0), 0);
    struct seen seen = {.reject = 1};
    cr_assert_eq(l1_get(s, "k", 1, 0, remember, &seen), 0, "a rejected entry is a miss");
    cr_assert_eq(seen.tag, 7);
    seen.reject = 0;
    cr_assert_eq(l1_get(s, "k", 1, 0, remember, &seen), 0, "and it is gone");
    cr_assert_eq(seen.calls, 1);
    l1_destroy(s);
}

Test(l1, fill_with_a_good_ticket_is_stored)
{
    l1 *s = NULL;
    cr_assert_eq(l1_create(&s, 1 << 20, 4), 0);
    l1_ticket t = l1_reserve(s, "k", 1);
    cr_assert_eq(l1_fill(s, "k", 1, "v", 1, 0, FOREVER, 0, t), 0);
    cr_assert_eq(l1_get(s, "k", 1, 0, NULL, NULL), 1);
    l1_destroy(s);
}

Test(l1, invalidation_during_a_fill_voids_it)
{
    l1 *s = NULL;
    cr_assert_eq(l1_create(&s, 1 << 20, 4), 0);
    l1_ticket t = l1_reserve(s, "k", 1);
    cr_assert_eq(l1_invalidate(s, "k", 1), 0, "nothing to remove yet");
    cr_assert_eq(l1_fill(s, "k", 1, "old", 3, 0, FOREVER, 0, t), ESTALE);
    cr_assert_eq(l1_get(s, "k", 1, 0, NULL, NULL), 0, "the old value must not be kept");
    cr_assert_eq(l1_fill(s, "k", 1, "new", 3, 0, FOREVER, 0, l1_reserve(s, "k", 1)), 0);
    l1_destroy(s);
}

Test(l1, flush_during_a_fill_voids_it_and_empties_the_store)
{
    l1 *s = NULL;
    cr_assert_eq(l1_create(&s, 1 << 20, 4), 0);
    cr_assert_eq(l1_set(s, "a", 1, "1", 1, 0, FOREVER, 0), 0);
    l1_ticket t = l1_reserve(s, "k", 1);
    l1_flush(s);
    cr_assert_eq(l1_get(s, "a", 1, 0, NULL, NULL), 0);
    cr_assert_eq(l1_fill(s, "k", 1, "v", 1, 0, FOREVER, 0, t), ESTALE);
    l1_stats st;
    l1_get_stats(s, &st);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.bytes, 0);
    l1_destroy(s);
}

Test(l1, own_write_voids_fills_that_read_before_it)
{
    l1 *s = NULL;
    cr_assert_eq(l1_create(&s, 1 << 20, 4), 0);
    l1_ticket reader = l1_reserve(s, "k", 1);
    l1_ticket writer = l1_reserve(s, "k", 1);
    cr_assert_eq(l1_write(s, "k", 1, "new", 3, 0, FOREVER, 0, writer), 0);
    cr_assert_eq(l1_fill(s, "k", 1, "old", 3, 0, FOREVER, 0, reader), ESTALE);
    struct seen seen = {0};
    cr_assert_eq(l1_get(s, "k", 1, 0, remember, &seen), 1);
    cr_assert_eq(seen.len, 3);
    cr_assert_arr_eq(seen.value, "new", 3, "the reader's older value replaced the write");
    l1_destroy(s);
}

Test(l1, write_after_an_invalidation_is_not_stored)
{
    l1 *s = NULL;
    cr_assert_eq(l1_create(&s, 1 << 20, 4), 0);
    cr_assert_eq(l1_set(s, "k", 1, "v0", 2, 0, FOREVER, 0), 0);
    l1_ticket writer = l1_reserve(s, "k", 1);
    l1_invalidate(s, "k", 1); /* another node's newer write */
    cr_assert_eq(l1_write(s, "k", 1, "v1", 2, 0, FOREVER, 0, writer), ESTALE);
    cr_assert_eq(l1_get(s, "k", 1, 0, NULL, NULL), 0);
    l1_destroy(s);
}

Test(l1, invalidation_of_another_key_voids_at_most_its_stamp_slot)
{
    l1 *s = NULL;
    cr_assert_eq(l1_create(&s, 1 << 20, 16), 0);
    int stored = 0;
    for (int i = 0; i < 100; i++) {
        char other[16];
        snprintf(other, sizeof other, "other%d", i);
        l1_ticket t = l1_reserve(s, "k", 1);
        l1_invalidate(s, other, strlen(other));
        stored += l1_fill(s, "k", 1, "v", 1, 0, FOREVER, 0, t) == 0;
        l1_del(s, "k", 1);
    }
    /* 1024 slots: a few collisions at most, never all of them. */
    cr_assert_geq(stored, 90, "only %d of 100 fills survived unrelated invalidations", stored);
    l1_destroy(s);
}

Test(l1, refused_write_still_removes_the_entry_it_supersedes)
{
    /* Regression: a write whose ticket was voided by another key of its
     * stamp slot left the key's previous value in L1. */
    l1 *s = NULL;
    cr_assert_eq(l1_create(&s, 1 << 20, 1), 0);
    cr_assert_eq(l1_set(s, "k", 1, "old", 3, 0, FOREVER, 0), 0);
    l1_ticket writer = l1_reserve(s, "k", 1);
    l1_flush(s); /* voids every ticket */
    cr_assert_eq(l1_set(s, "k", 1, "old", 3, 0, FOREVER, 0), 0);
    cr_assert_eq(l1_write(s, "k", 1, "new", 3, 0, FOREVER, 0, writer), ESTALE);
    cr_assert_eq(l1_get(s, "k", 1, 0, NULL, NULL), 0, "the superseded value is still served");
    l1_destroy(s);
}
