/* Unit: the client's near tier (client/near.c) fed by a ring written in
 * this process: what a slot, a flush, a lap, a new epoch and serving_until
 * do to it, fills refused by their ticket, its byte budget, and negative
 * entries ("known absent") under the same rules as values. */
#include <criterion/criterion.h>
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

static void fill(const char *ns, const char *key, const char *value, uint64_t ttl_ms)
{
    near_ticket t = near_take_ticket(n);
    near_fill(n, &t, b(ns), b(key), value, strlen(value), ttl_ms);
}

/* The value the tier holds for (ns, key), or NULL (the caller frees it). */
static char *get(const char *ns, const char *key)
{
    void *v;
    size_t len;
    uint64_t ttl;
    int negative;
    return near_get(n, b(ns), b(key), &v, &len, &ttl, &negative) && !negative ? v : NULL;
}

static void fill_negative(const char *ns, const char *key, uint64_t ttl_ms)
{
    near_ticket t = near_take_ticket(n);
    near_fill_negative(n, &t, b(ns), b(key), ttl_ms);
}

/* Whether the tier holds (ns, key) as known absent. */
static int holds_negative(const char *ns, const char *key)
{
    void *v = (void *)1;
    size_t len = 1;
    uint64_t ttl;
    int negative = 0;
    if (!near_get(n, b(ns), b(key), &v, &len, &ttl, &negative))
        return 0;
    if (!negative)
        free(v);
    else
        cr_assert(v == NULL && len == 0, "a negative hit handed out a value");
    return negative;
}

static int holds(const char *ns, const char *key)
{
    char *v = get(ns, key);
    free(v);
    return v != NULL;
}

static void publish_key(const char *ns, const char *key)
{
    ring_publish(w, RING_KEY, ring_hash(ns, strlen(ns)), ring_hash(key, strlen(key)));
}

static nc_near_stats stats(void)
{
    nc_near_stats s;
    near_stats(n, &s);
    return s;
}

Test(near, a_filled_key_is_served_until_a_slot_names_it)
{
    fill("ns", "k", "v1", 10000);
    char *v = get("ns", "k");
    cr_assert_str_eq(v, "v1");
    free(v);
    publish_key("ns", "other");
    cr_assert(holds("ns", "k"), "a slot for another key dropped it");
    publish_key("ns", "k");
    cr_assert_not(holds("ns", "k"));
    cr_assert_eq(stats().hits, 2);
}

Test(near, a_fill_whose_key_changed_while_in_flight_is_refused)
{
    near_ticket t = near_take_ticket(n);
    publish_key("ns", "k"); /* the write lands while the Get is in flight */
    near_fill(n, &t, b("ns"), b("k"), "old", 3, 10000);
    cr_assert_not(holds("ns", "k"), "a value read before the write was kept");
    cr_assert_eq(stats().fills_refused, 1);
    near_fill(n, &t, b("ns"), b("other"), "x", 1, 10000);
    cr_assert(holds("ns", "other"), "a fill of a key that did not change was refused");
    fill("ns", "k", "new", 10000);
    cr_assert(holds("ns", "k"), "a fill with a ticket taken after the slot was refused");
}

Test(near, a_namespace_slot_drops_every_key_of_that_namespace_only)
{
    fill("a", "1", "x", 10000);
    fill("a", "2", "x", 10000);
    fill("b", "1", "x", 10000);
    near_ticket t = near_take_ticket(n);
    ring_publish(w, RING_NAMESPACE, ring_hash("a", 1), 0);
    cr_assert_not(holds("a", "1"));
    cr_assert_not(holds("a", "2"));
    cr_assert(holds("b", "1"));
    near_fill(n, &t, b("a"), b("3"), "x", 1, 10000);
    cr_assert_not(holds("a", "3"), "a fill from before the bump was kept");
}

Test(near, nothing_is_served_while_the_daemon_may_not_serve)
{
    fill("ns", "k", "v", 10000);
    ring_serve_until(w, units_now_ms() - 1); /* its heartbeat is late, or it stopped */
    cr_assert_not(holds("ns", "k"));
    cr_assert_not(stats().serving);
    ring_serve_until(w, 0);
    cr_assert_not(holds("ns", "k"));
    ring_serve_until(w, units_now_ms() + 60000);
    cr_assert(holds("ns", "k"), "serving again, with nothing invalidated meanwhile");
}

Test(near, a_flush_a_lap_and_a_new_epoch_each_empty_the_tier)
{
    fill("ns", "k", "v", 10000);
    ring_flush(w);
    cr_assert_not(holds("ns", "k"), "served after a flush");
    cr_assert_eq(stats().flushes, 1);
    fill("ns", "k", "v", 10000);
    cr_assert(holds("ns", "k"));
    for (int i = 0; i < 65; i++) /* more than the ring holds, none for k */
        publish_key("ns", "other");
    cr_assert_not(holds("ns", "k"), "served after being lapped");
    cr_assert_eq(stats().laps, 1);
    fill("ns", "k", "v", 10000);
    cr_assert(holds("ns", "k"));
    publish_key("ns", "k"); /* a stamp from the old ring's count */
    fill("ns", "k", "v", 10000);
    ring_close(w); /* the daemon stops: its ring is poisoned */
    cr_assert_not(holds("ns", "k"), "served from a poisoned ring");
    cr_assert_eq(ring_open(&w, path, 64, 0644, (gid_t)-1, err, sizeof err), 0, "%s", err);
    ring_serve_until(w, units_now_ms() + 60000);
    usleep((RING_RECHECK_MS + 20) * 1000);
    cr_assert_not(holds("ns", "k"), "an entry from the old epoch was served");
    fill("ns", "k", "v", 10000);
    cr_assert(holds("ns", "k"), "the tier did not take the new ring");
}

Test(near, a_tier_without_its_ring_serves_nothing_and_says_why)
{
    near *lone;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.ring", dir);
    cr_assert_eq(near_open(&lone, missing, 1 << 20, 60000), NC_OK);
    near_ticket t = near_take_ticket(lone);
    near_fill(lone, &t, b("ns"), b("k"), "v", 1, 10000);
    void *v;
    size_t len;
    uint64_t ttl;
    int negative;
    cr_assert_not(near_get(lone, b("ns"), b("k"), &v, &len, &ttl, &negative));
    nc_near_stats s;
    near_stats(lone, &s);
    cr_assert_not(s.serving);
    cr_assert_not_null(strstr(s.problem, "none.ring"), "problem: %s", s.problem);
    near_close(lone);
}

Test(near, an_entry_lives_no_longer_than_its_ttl)
{
    fill("ns", "k", "v", 30);
    cr_assert(holds("ns", "k"));
    usleep(50 * 1000);
    cr_assert_not(holds("ns", "k"));
}

Test(near, an_entrys_ttl_counts_from_its_request_not_its_reply)
{
    near_ticket t = near_take_ticket(n);
    usleep(80 * 1000); /* the reply took 80 ms; Redis read "100 ms left" before it left */
    near_fill(n, &t, b("ns"), b("slow"), "v", 1, 100);
    near_fill_negative(n, &t, b("ns"), b("gone"), 100);
    if (units_now_ms() - t.at_ms < 95) /* (unless the machine slept past the TTL already) */
        cr_assert(holds("ns", "slow") && holds_negative("ns", "gone"), "the fills were refused");
    usleep(50 * 1000); /* 130 ms after the request: both expired in Redis */
    cr_assert_not(holds("ns", "slow"), "a value outlived its TTL by the reply's latency");
    cr_assert_not(holds_negative("ns", "gone"), "known absent past its TTL");
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

Test(near, a_negative_entry_is_served_as_known_absent_and_counts_as_a_hit)
{
    fill_negative("ns", "gone", 10000);
    void *v = (void *)1;
    size_t len = 1;
    uint64_t ttl = 0;
    int negative = 0;
    cr_assert(near_get(n, b("ns"), b("gone"), &v, &len, &ttl, &negative),
              "a negative fill was not kept");
    cr_assert(negative);
    cr_assert_null(v);
    cr_assert_eq(len, 0);
    cr_assert(ttl > 0 && ttl <= 10000, "ttl %llu", (unsigned long long)ttl);
    nc_near_stats s = stats();
    cr_assert_eq(s.hits, 1);
    cr_assert_eq(s.misses, 0);
    cr_assert_eq(s.entries, 1);
    cr_assert_gt(s.bytes, 0);
    cr_assert_not(holds_negative("ns", "other"), "a key never filled read as known absent");
}

Test(near, a_value_and_a_negative_entry_of_one_key_replace_each_other)
{
    fill("ns", "k", "v", 10000);
    fill_negative("ns", "k", 10000);
    cr_assert(holds_negative("ns", "k"), "the value outlived a negative fill");
    fill("ns", "k", "v2", 10000);
    cr_assert_not(holds_negative("ns", "k"), "the negative entry outlived a value fill");
    char *v = get("ns", "k");
    cr_assert_str_eq(v, "v2");
    free(v);
    cr_assert_eq(stats().entries, 1);
}

Test(near, a_negative_fill_whose_key_changed_while_in_flight_is_refused)
{
    near_ticket t = near_take_ticket(n);
    publish_key("ns", "gone"); /* someone Sets the key while the Get is in flight */
    near_fill_negative(n, &t, b("ns"), b("gone"), 10000);
    cr_assert_not(holds_negative("ns", "gone"), "an absence read before the write was kept");
    cr_assert_eq(stats().fills_refused, 1);
    t = near_take_ticket(n);
    ring_publish(w, RING_NAMESPACE, ring_hash("ns", 2), 0);
    near_fill_negative(n, &t, b("ns"), b("gone"), 10000);
    cr_assert_not(holds_negative("ns", "gone"), "an absence read before a bump was kept");
    t = near_take_ticket(n);
    ring_flush(w);
    near_fill_negative(n, &t, b("ns"), b("gone"), 10000);
    cr_assert_not(holds_negative("ns", "gone"), "an absence read before a flush was kept");
    cr_assert_eq(stats().fills_refused, 3);
}

Test(near, a_negative_entry_is_dropped_by_a_slot_a_bump_or_an_own_write)
{
    fill_negative("ns", "k", 10000);
    publish_key("ns", "other");
    cr_assert(holds_negative("ns", "k"), "a slot for another key dropped it");
    publish_key("ns", "k");
    cr_assert_not(holds_negative("ns", "k"), "served known absent after a slot named it");
    fill_negative("ns", "k", 10000);
    ring_publish(w, RING_NAMESPACE, ring_hash("ns", 2), 0);
    cr_assert_not(holds_negative("ns", "k"), "served known absent after a bump");
    fill_negative("ns", "k", 10000);
    near_drop(n, b("ns"), b("k"));
    cr_assert_not(holds_negative("ns", "k"), "served known absent after this process's write");
    fill_negative("ns", "k", 10000);
    ring_flush(w);
    cr_assert_not(holds_negative("ns", "k"), "served known absent after a flush");
}

Test(near, a_negative_entry_lives_no_longer_than_its_ttl_or_the_max)
{
    fill_negative("ns", "k", 30);
    cr_assert(holds_negative("ns", "k"));
    usleep(50 * 1000);
    cr_assert_not(holds_negative("ns", "k"));
    near *brief;
    cr_assert_eq(near_open(&brief, path, 1 << 20, 30), NC_OK);
    near_ticket t = near_take_ticket(brief);
    near_fill_negative(brief, &t, b("ns"), b("k"), UINT64_MAX);
    void *v;
    size_t len;
    uint64_t ttl;
    int negative;
    cr_assert(near_get(brief, b("ns"), b("k"), &v, &len, &ttl, &negative) && negative);
    cr_assert_leq(ttl, 30);
    usleep(50 * 1000);
    cr_assert_not(near_get(brief, b("ns"), b("k"), &v, &len, &ttl, &negative),
                  "a negative entry outlived the tier's max ttl");
    near_close(brief);
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
