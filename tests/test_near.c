/* Unit: the client's near tier (client/near.c) beyond what every reader
 * must do (tests/conformance/ring.json, run by test_ringcases.c): its
 * byte budget, for values and negative entries. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "near.h"
#include "ring.h"
#include "units.h"

static char dir[64], path[128], err[512];
static ring *w;
static near *n;

static void up(void)
{
    snprintf(dir, sizeof dir, "/tmp/nc-test-near-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/r.ring", dir);
    cr_assert_eq(ring_open(&w, path, 64, 0644, (gid_t)-1, err, sizeof err), 0, "%s", err);
    ring_serve_until(w, units_now_ms() + 60000);
    cr_assert_eq(near_open(&n, path, 1 << 20, 60000), NC_OK);
}

static void down(void)
{
    near_close(n);
    ring_close(w);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(near, .init = up, .fini = down, .timeout = 30);

static nc_bytes b(const char *s)
{
    return (nc_bytes){s, strlen(s)};
}

Test(near, the_tier_keeps_within_its_bytes_by_dropping_the_least_recent)
{
    near *small;
    cr_assert_eq(near_open(&small, path, 64 * 1024, 60000), NC_OK);
    char key[32], value[200];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        near_ticket t = near_take_ticket(small);
        near_fill(small, &t, b("ns"), b(key), value, strlen(value), 10000);
    }
    nc_near_stats s;
    near_stats(small, &s);
    cr_assert_leq(s.bytes, 64 * 1024);
    cr_assert_gt(s.evictions, 0);
    cr_assert_eq(s.entries + s.evictions, 2000);
    void *v;
    size_t len;
    uint64_t ttl;
    int negative;
    cr_assert(near_get(small, b("ns"), b("k1999"), &v, &len, &ttl, &negative),
              "the newest entry was dropped");
    free(v);
    cr_assert_not(near_get(small, b("ns"), b("k0"), &v, &len, &ttl, &negative),
                  "the oldest entry stayed");
    near_close(small);
}

Test(near, negative_entries_count_against_the_byte_budget_and_are_evicted)
{
    near *small;
    cr_assert_eq(near_open(&small, path, 64 * 1024, 60000), NC_OK);
    char key[32];
    for (int i = 0; i < 4000; i++) {
        snprintf(key, sizeof key, "absent-key-%d", i);
        near_ticket t = near_take_ticket(small);
        near_fill_negative(small, &t, b("ns"), b(key), 10000);
    }
    nc_near_stats s;
    near_stats(small, &s);
    cr_assert_leq(s.bytes, 64 * 1024);
    cr_assert_gt(s.evictions, 0);
    cr_assert_eq(s.entries + s.evictions, 4000);
    near_close(small);
}

/* The heap a tier of `budget` bytes holds after filling it to three times
 * its budget with values of `size` bytes, as glibc's allocator counts it. */
static size_t live_after_filling(size_t budget, size_t size)
{
    struct mallinfo2 before = mallinfo2();
    near *t;
    cr_assert_eq(near_open(&t, path, budget, 60000), NC_OK);
    char *value = malloc(size), key[32];
    memset(value, 'v', size);
    for (size_t i = 0; i < 3 * budget / (size + 64); i++) {
        snprintf(key, sizeof key, "k%07zu", i);
        near_ticket tk = near_take_ticket(t);
        near_fill(t, &tk, b("users"), b(key), value, size, 10000);
    }
    free(value);
    struct mallinfo2 after = mallinfo2();
    nc_near_stats s;
    near_stats(t, &s);
    cr_assert_gt(s.evictions, 0);
    cr_assert_leq(s.bytes, budget);
    size_t live = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
    near_close(t);
    return live;
}

Test(near, live_memory_stays_within_near_bytes_for_small_and_large_values)
{
#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("the sanitizer's allocator is not glibc's: mallinfo2() does not count it");
#endif
    /* An entry is kept only if it fits in one of the 16 shards: 1 MiB
     * values need a tier of more than 16 MiB. */
    size_t sizes[] = {1, 100, 16384, 1u << 20};
    size_t budgets[] = {8u << 20, 8u << 20, 8u << 20, 32u << 20};
    for (int i = 0; i < 4; i++) {
        size_t live = live_after_filling(budgets[i], sizes[i]);
        cr_assert_leq(live, budgets[i] + budgets[i] / 10,
                      "%zu-byte values: %zu bytes live for %zu", sizes[i], live, budgets[i]);
    }
}
