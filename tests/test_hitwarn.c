/* Tests of daemon/hitwarn.c: a namespace warns when its hit ratio over the
 * interval is below the threshold with enough Gets, and only then. */
#include <criterion/criterion.h>

#include <string.h>

#include "hitwarn.h"

static nstop_row row(const char *name, uint64_t hits, uint64_t misses)
{
    nstop_row r = {.len = strlen(name), .hits = hits, .misses = misses};
    memcpy(r.name, name, r.len);
    return r;
}

struct seen {
    char names[8][16];
    uint64_t gets[8], hits[8];
    size_t n;
};

static void on_warn(void *arg, const nstop_row *r, uint64_t gets, uint64_t hits)
{
    struct seen *s = arg;
    memcpy(s->names[s->n], r->name, r->len);
    s->names[s->n][r->len] = '\0';
    s->gets[s->n] = gets;
    s->hits[s->n++] = hits;
}

Test(hitwarn, warns_on_a_low_ratio_over_the_interval_only)
{
    hitwarn *w;
    cr_assert_eq(hitwarn_create(&w, 4), 0);
    struct seen s = {0};
    nstop_row first[] = {row("good", 900, 100), row("bad", 1000, 0)};
    cr_assert_eq(hitwarn_check(w, first, 2, 100, 80, on_warn, &s), 0, "no baseline yet");
    /* good: 90 of 100 hit since; bad: 50 of 200, though 1050 of 1200 overall */
    nstop_row second[] = {row("good", 990, 110), row("bad", 1050, 150)};
    cr_assert_eq(hitwarn_check(w, second, 2, 100, 80, on_warn, &s), 1);
    cr_assert_str_eq(s.names[0], "bad");
    cr_assert_eq(s.gets[0], 200);
    cr_assert_eq(s.hits[0], 50);
    hitwarn_destroy(w);
}

Test(hitwarn, leaves_namespaces_with_few_gets_alone)
{
    hitwarn *w;
    cr_assert_eq(hitwarn_create(&w, 4), 0);
    struct seen s = {0};
    nstop_row first[] = {row("idle", 0, 0)};
    hitwarn_check(w, first, 1, 100, 80, on_warn, &s);
    nstop_row second[] = {row("idle", 0, 99)};
    cr_assert_eq(hitwarn_check(w, second, 1, 100, 80, on_warn, &s), 0, "99 Gets: too few");
    nstop_row third[] = {row("idle", 0, 199)};
    cr_assert_eq(hitwarn_check(w, third, 1, 100, 80, on_warn, &s), 1, "100 Gets, none hit");
    hitwarn_destroy(w);
}

Test(hitwarn, a_row_taken_again_starts_a_new_baseline)
{
    hitwarn *w;
    cr_assert_eq(hitwarn_create(&w, 4), 0);
    struct seen s = {0};
    nstop_row first[] = {row("ns", 500, 500)};
    hitwarn_check(w, first, 1, 10, 80, on_warn, &s);
    nstop_row second[] = {row("ns", 0, 20)}; /* counts went down: a new row */
    cr_assert_eq(hitwarn_check(w, second, 1, 10, 80, on_warn, &s), 0);
    nstop_row third[] = {row("ns", 0, 40)};
    cr_assert_eq(hitwarn_check(w, third, 1, 10, 80, on_warn, &s), 1);
    cr_assert_eq(s.gets[0], 20);
    hitwarn_destroy(w);
}

Test(hitwarn, a_ratio_at_the_threshold_does_not_warn)
{
    hitwarn *w;
    cr_assert_eq(hitwarn_create(&w, 1), 0);
    struct seen s = {0};
    nstop_row first[] = {row("ns", 0, 0)};
    hitwarn_check(w, first, 1, 1, 80, on_warn, &s);
    nstop_row second[] = {row("ns", 80, 20)};
    cr_assert_eq(hitwarn_check(w, second, 1, 1, 80, on_warn, &s), 0);
    hitwarn_destroy(w);
}
