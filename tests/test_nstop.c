/* Tests of daemon/nstop.c: the busiest namespaces keep their rows, the
 * rest add up in `other`, nothing counted is lost, and readers see whole
 * rows while writers race. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "nstop.h"

static void count_n(nstop *t, const char *ns, int hits, int misses)
{
    for (int i = 0; i < hits; i++)
        nstop_count(t, ns, strlen(ns), 1);
    for (int i = 0; i < misses; i++)
        nstop_count(t, ns, strlen(ns), 0);
}

static const nstop_row *row_named(const nstop_row *rows, size_t n, const char *ns)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].len == strlen(ns) && memcmp(rows[i].name, ns, rows[i].len) == 0)
            return &rows[i];
    return NULL;
}

Test(nstop, keeps_a_row_per_namespace_while_there_is_room)
{
    nstop *t;
    cr_assert_eq(nstop_create(&t, 4), 0);
    count_n(t, "users", 5, 2);
    count_n(t, "carts", 1, 3);
    nstop_row rows[4], other;
    size_t n = nstop_read(t, rows, &other);
    cr_assert_eq(n, 2);
    cr_assert_eq(rows[0].len, 5);
    cr_assert(memcmp(rows[0].name, "users", 5) == 0, "busiest first");
    cr_assert_eq(rows[0].hits, 5);
    cr_assert_eq(rows[0].misses, 2);
    cr_assert_eq(rows[1].hits, 1);
    cr_assert_eq(rows[1].misses, 3);
    cr_assert_eq(other.hits + other.misses, 0);
    nstop_destroy(t);
}

Test(nstop, the_busiest_stay_and_the_rest_add_up_in_other)
{
    nstop *t;
    cr_assert_eq(nstop_create(&t, 3), 0);
    char ns[16];
    uint64_t total = 0;
    for (int round = 0; round < 50; round++) {
        count_n(t, "hot1", 10, 0);
        count_n(t, "hot2", 0, 8);
        snprintf(ns, sizeof ns, "cold%d", round); /* fifty namespaces, once each */
        count_n(t, ns, 1, 0);
        total += 19;
    }
    nstop_row rows[3], other;
    size_t n = nstop_read(t, rows, &other);
    const nstop_row *h1 = row_named(rows, n, "hot1"), *h2 = row_named(rows, n, "hot2");
    cr_assert_not_null(h1, "the busiest namespace keeps its row");
    cr_assert_not_null(h2);
    cr_assert_eq(h1->hits, 500);
    cr_assert_eq(h2->misses, 400);
    uint64_t sum = other.hits + other.misses;
    for (size_t i = 0; i < n; i++)
        sum += rows[i].hits + rows[i].misses;
    cr_assert_eq(sum, total, "every Get is counted once: %llu of %llu", (unsigned long long)sum,
                 (unsigned long long)total);
    cr_assert_eq(other.len, 5);
    cr_assert(memcmp(other.name, "other", 5) == 0);
    nstop_destroy(t);
}

Test(nstop, near_lookups_rank_with_gets_and_move_to_other_with_their_row)
{
    nstop *t;
    cr_assert_eq(nstop_create(&t, 1), 0);
    count_n(t, "daemon", 3, 0);
    nstop_count_near(t, "near", 4, 50, 5); /* outranks daemon's 3 Gets: takes the one row */
    nstop_row rows[1], other;
    size_t n = nstop_read(t, rows, &other);
    cr_assert_eq(n, 1);
    cr_assert(rows[0].len == 4 && memcmp(rows[0].name, "near", 4) == 0);
    cr_assert_eq(rows[0].near_hits, 50);
    cr_assert_eq(rows[0].near_misses, 5);
    cr_assert_eq(other.hits, 3, "the old row's Gets moved to other");
    count_n(t, "daemon", 100, 0); /* a newcomer must outdo 3 + 55 */
    n = nstop_read(t, rows, &other);
    cr_assert(rows[0].len == 6 && memcmp(rows[0].name, "daemon", 6) == 0);
    cr_assert_eq(other.near_hits, 50, "near counts move to other too");
    cr_assert_eq(other.near_misses, 5);
    nstop_destroy(t);
}

Test(nstop, cuts_long_names_for_display_and_says_so)
{
    nstop *t;
    cr_assert_eq(nstop_create(&t, 2), 0);
    char ns[300];
    memset(ns, 'n', sizeof ns);
    nstop_count(t, ns, sizeof ns, 1);
    nstop_row rows[2], other;
    cr_assert_eq(nstop_read(t, rows, &other), 1);
    cr_assert_eq(rows[0].len, NSTOP_NAME_MAX);
    cr_assert(rows[0].truncated);
    nstop_destroy(t);
}

Test(nstop, refuses_an_empty_table)
{
    nstop *t = NULL;
    cr_assert_neq(nstop_create(&t, 0), 0);
    nstop_destroy(NULL);
}

struct racer {
    nstop *t;
    int id;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    char ns[16];
    for (int i = 0; i < 20000; i++) {
        snprintf(ns, sizeof ns, "ns%d", (i * 7 + r->id) % 12);
        nstop_count(r->t, ns, strlen(ns), i & 1);
    }
    return NULL;
}

Test(nstop, loses_no_count_when_threads_race_for_rows)
{
    nstop *t;
    cr_assert_eq(nstop_create(&t, 4), 0);
    pthread_t th[4];
    struct racer r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct racer){t, i};
        pthread_create(&th[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    nstop_row rows[4], other;
    size_t n = nstop_read(t, rows, &other);
    uint64_t sum = other.hits + other.misses;
    for (size_t i = 0; i < n; i++) {
        sum += rows[i].hits + rows[i].misses;
        cr_assert(rows[i].len >= 3 && memcmp(rows[i].name, "ns", 2) == 0, "a whole name");
    }
    cr_assert_eq(sum, 80000);
    nstop_destroy(t);
}
