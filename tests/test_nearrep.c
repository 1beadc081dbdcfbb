/* Tests of daemon/nearrep.c: the host's near-tier totals add each
 * reporter's increase, never go down, keep what a gone reporter sent, and
 * bad reports are refused with a reason and change no total. */
#include <criterion/criterion.h>

#include <string.h>

#include "codec.h"
#include "nearrep.h"

#define T0 1000000 /* some now_ms */

static nearrep *t;
static nstop *ns_table;
static char err[300];

static void up(void)
{
    cr_assert_eq(nstop_create(&ns_table, 4), 0);
    cr_assert_eq(nearrep_create(&t, ns_table), 0);
}

static void down(void)
{
    nearrep_destroy(t);
    nstop_destroy(ns_table);
}

TestSuite(nearrep, .init = up, .fini = down);

static int take(uint64_t id, uint32_t pid, uint64_t hits, uint64_t misses, int64_t now)
{
    nearrep_report r = {.reporter = id, .pid = pid, .hits = hits, .misses = misses};
    err[0] = '\0';
    return nearrep_take(t, &r, 128, now, err, sizeof err);
}

static nearrep_totals totals(int64_t now)
{
    nearrep_totals x;
    nearrep_read(t, now, &x);
    return x;
}

Test(nearrep, adds_each_reporters_increase_to_the_totals)
{
    cr_assert_eq(take(1, 10, 100, 10, T0), 0);
    cr_assert_eq(take(2, 20, 50, 5, T0), 0);
    cr_assert_eq(take(1, 10, 130, 12, T0 + 1000), 0);
    nearrep_totals x = totals(T0 + 1000);
    cr_assert_eq(x.hits, 180);
    cr_assert_eq(x.misses, 17);
    cr_assert_eq(x.clients, 2);
}

/* After a daemon restart its clients report their lifetime counts again:
 * one another daemon took reports of before is taken as its starting
 * point, adding nothing; a new one adds all it counted. */
Test(nearrep, a_reporter_another_daemon_counted_starts_from_its_first_report_here)
{
    nearrep_report r = {.reporter = 1, .pid = 10, .hits = 5000, .misses = 700,
                        .reported_before = 1};
    cr_assert_eq(nearrep_take(t, &r, 128, T0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(totals(T0).hits, 0, "a restart added a client's lifetime");
    cr_assert_eq(totals(T0).clients, 1);
    r.hits = 5100, r.misses = 710;
    cr_assert_eq(nearrep_take(t, &r, 128, T0 + 1000, err, sizeof err), 0, "%s", err);
    cr_assert_eq(totals(T0 + 1000).hits, 100);
    cr_assert_eq(totals(T0 + 1000).misses, 10);
    cr_assert_eq(take(2, 20, 30, 3, T0 + 1000), 0); /* a new client: all of it */
    cr_assert_eq(totals(T0 + 1000).hits, 130);
}

Test(nearrep, a_reporter_that_stops_keeps_its_counts_but_is_no_client_after_three_intervals)
{
    cr_assert_eq(take(1, 10, 100, 10, T0), 0);
    cr_assert_eq(totals(T0 + 3000).clients, 1);
    nearrep_totals x = totals(T0 + 3001);
    cr_assert_eq(x.clients, 0);
    cr_assert_eq(x.hits, 100);
}

Test(nearrep, a_counter_that_goes_down_is_refused_and_becomes_the_new_start)
{
    cr_assert_eq(take(1, 10, 100, 10, T0), 0);
    cr_assert_eq(take(1, 10, 40, 11, T0 + 1000), CODE(INVALID_ARGUMENT));
    cr_assert(strstr(err, "hits of reporter 0000000000000001 went down, from 100 to 40") != NULL,
              "%s", err);
    cr_assert_eq(totals(T0).hits, 100, "nothing added, nothing taken");
    cr_assert_eq(totals(T0).misses, 10);
    cr_assert_eq(take(1, 10, 45, 11, T0 + 2000), 0);
    cr_assert_eq(totals(T0).hits, 105, "counted from the new start");
    cr_assert_eq(totals(T0).misses, 10, "the refused report's +1 is not counted");
}

Test(nearrep, refuses_reporter_zero_absurd_counters_and_too_many_namespaces)
{
    cr_assert_eq(take(0, 10, 1, 1, T0), CODE(INVALID_ARGUMENT));
    cr_assert(strstr(err, "reporter is 0") != NULL, "%s", err);
    cr_assert_eq(take(1, 10, UINT64_MAX, 1, T0), CODE(INVALID_ARGUMENT));
    cr_assert(strstr(err, "past 2^62") != NULL, "%s", err);
    nearrep_ns many[NEARREP_MAX_NAMESPACES + 1] = {{0}};
    nearrep_report r = {.reporter = 1, .hits = 1, .ns = many, .n_ns = NEARREP_MAX_NAMESPACES + 1};
    cr_assert_eq(nearrep_take(t, &r, 128, T0, err, sizeof err), CODE(INVALID_ARGUMENT));
    cr_assert(strstr(err, "257 namespaces; at most 256") != NULL, "%s", err);
    nearrep_totals x = totals(T0);
    cr_assert(x.hits == 0 && x.clients == 0);
}

Test(nearrep, refuses_bad_namespaces)
{
    nearrep_ns two[2] = {{"a", 1, 1, 0}, {"a", 1, 1, 0}};
    nearrep_report r = {.reporter = 1, .hits = 5, .ns = two, .n_ns = 2};
    cr_assert_eq(nearrep_take(t, &r, 128, T0, err, sizeof err), CODE(INVALID_ARGUMENT));
    cr_assert(strstr(err, "named twice") != NULL, "%s", err);
    nearrep_ns colon = {"a:b", 3, 1, 0};
    r = (nearrep_report){.reporter = 1, .hits = 5, .ns = &colon, .n_ns = 1};
    cr_assert_eq(nearrep_take(t, &r, 128, T0, err, sizeof err), CODE(INVALID_ARGUMENT));
    cr_assert(strstr(err, "contains ':'") != NULL, "%s", err);
    nearrep_ns big = {"a", 1, 9, 0};
    r = (nearrep_report){.reporter = 1, .hits = 5, .ns = &big, .n_ns = 1};
    cr_assert_eq(nearrep_take(t, &r, 128, T0, err, sizeof err), CODE(INVALID_ARGUMENT));
    cr_assert(strstr(err, "add up to more") != NULL, "%s", err);
    nearrep_ns longer = {"abcd", 4, 1, 0};
    r = (nearrep_report){.reporter = 1, .hits = 5, .ns = &longer, .n_ns = 1};
    cr_assert_eq(nearrep_take(t, &r, 3, T0, err, sizeof err), CODE(INVALID_ARGUMENT));
    cr_assert_eq(totals(T0).hits, 0);
}

Test(nearrep, another_live_process_under_the_same_id_is_refused)
{
    cr_assert_eq(take(7, 10, 100, 0, T0), 0);
    cr_assert_eq(take(7, 11, 100, 0, T0 + 500), CODE(FAILED_PRECONDITION));
    cr_assert(strstr(err, "is pid 10's") != NULL, "%s", err);
    cr_assert_eq(totals(T0).hits, 100);
    /* once the first is gone, the id starts again for the new process */
    cr_assert_eq(take(7, 11, 30, 0, T0 + 5000), 0);
    cr_assert_eq(totals(T0 + 5000).hits, 130);
}

Test(nearrep, counts_namespaces_in_the_busiest_table)
{
    nearrep_ns a[2] = {{"users", 5, 8, 2}, {"carts", 5, 1, 1}};
    nearrep_report r = {.reporter = 1, .hits = 10, .misses = 3, .ns = a, .n_ns = 2};
    cr_assert_eq(nearrep_take(t, &r, 128, T0, err, sizeof err), 0);
    a[0].hits = 10; /* users +2; carts unchanged */
    r.hits = 12;
    cr_assert_eq(nearrep_take(t, &r, 128, T0 + 1000, err, sizeof err), 0);
    nstop_row rows[4], other;
    size_t k = nstop_read(ns_table, rows, &other);
    cr_assert_eq(k, 2);
    cr_assert(rows[0].len == 5 && memcmp(rows[0].name, "users", 5) == 0);
    cr_assert_eq(rows[0].near_hits, 10);
    cr_assert_eq(rows[0].near_misses, 2);
    cr_assert_eq(rows[0].hits, 0, "no daemon Get counted");
    cr_assert_eq(rows[1].near_hits, 1);
}

Test(nearrep, totals_never_pass_int64_max)
{
    uint64_t big = NEARREP_MAX_COUNT;
    cr_assert_eq(take(1, 1, big, 0, T0), 0);
    cr_assert_eq(take(2, 2, big, 0, T0), 0);
    cr_assert_eq(take(3, 3, big, 0, T0), 0);
    cr_assert_eq(totals(T0).hits, INT64_MAX);
}

Test(nearrep, a_full_table_gives_way_to_a_new_reporter_only_when_one_is_gone)
{
    for (uint64_t id = 1; id <= NEARREP_MAX_REPORTERS; id++)
        cr_assert_eq(take(id, 0, 1, 0, T0), 0);
    cr_assert_eq(take(NEARREP_MAX_REPORTERS + 1, 0, 1, 0, T0 + 10), CODE(RESOURCE_EXHAUSTED));
    cr_assert_eq(take(NEARREP_MAX_REPORTERS + 1, 0, 1, 0, T0 + 10000), 0);
    nearrep_totals x = totals(T0 + 10000);
    cr_assert_eq(x.hits, NEARREP_MAX_REPORTERS + 1);
    cr_assert_eq(x.clients, 1);
}

Test(nearrep, a_namespace_that_leaves_the_busiest_and_comes_back_adds_only_its_increase)
{
    /* A client sends its busiest namespaces (docs/protocol.md, R3): one may
     * be left out of a report and be back in the next, its counts still
     * cumulative since the client started. */
    nearrep_ns users = {"users", 5, 8, 2}, carts = {"carts", 5, 9, 0};
    nearrep_report r = {.reporter = 1, .hits = 8, .misses = 2, .ns = &users, .n_ns = 1};
    cr_assert_eq(nearrep_take(t, &r, 128, T0, err, sizeof err), 0, "%s", err);
    r = (nearrep_report){.reporter = 1, .hits = 17, .misses = 2, .ns = &carts, .n_ns = 1};
    cr_assert_eq(nearrep_take(t, &r, 128, T0 + 1000, err, sizeof err), 0, "%s", err);
    users.hits = 10;
    r = (nearrep_report){.reporter = 1, .hits = 19, .misses = 2, .ns = &users, .n_ns = 1};
    cr_assert_eq(nearrep_take(t, &r, 128, T0 + 2000, err, sizeof err), 0, "%s", err);
    nstop_row rows[4], other;
    size_t k = nstop_read(ns_table, rows, &other), users_at = k;
    for (size_t i = 0; i < k; i++)
        if (rows[i].len == 5 && memcmp(rows[i].name, "users", 5) == 0)
            users_at = i;
    cr_assert_lt(users_at, k, "no row for users");
    cr_assert_eq(rows[users_at].near_hits, 10, "users' first 8 hits were counted twice: %llu",
                 (unsigned long long)rows[users_at].near_hits);
    cr_assert_eq(totals(T0 + 2000).hits, 19);
}
