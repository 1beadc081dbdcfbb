/* Unit: local single flight without a server. Links stand for calls; a
 * flight is joined only by links of the same key and the same ticket. */
#include <criterion/criterion.h>

#include "flight.h"

static flights *f;

static void up(void)
{
    cr_assert_eq(flights_create(&f), 0);
}

static void down(void)
{
    flights_destroy(f);
}

TestSuite(flight, .init = up, .fini = down);

static size_t count(flight_link *l)
{
    size_t n = 0;
    for (; l != NULL; l = flight_next(l))
        n++;
    return n;
}

Test(flight, first_caller_leads_and_others_join_in_order)
{
    flight_link lead, a, b;
    cr_assert_eq(flight_join(f, "k", 1, 7, &lead), 0);
    cr_assert_eq(flight_join(f, "k", 1, 7, &a), 1);
    cr_assert_eq(flight_join(f, "k", 1, 7, &b), 1);
    flight_link *w = flight_land(f, &lead);
    cr_assert_eq(w, &a);
    cr_assert_eq(flight_next(w), &b);
    cr_assert_null(flight_next(&b));
}

Test(flight, landing_a_flight_no_one_joined_returns_none)
{
    flight_link lead;
    cr_assert_eq(flight_join(f, "k", 1, 1, &lead), 0);
    cr_assert_null(flight_land(f, &lead));
}

Test(flight, other_keys_fly_apart)
{
    flight_link x, y;
    cr_assert_eq(flight_join(f, "x", 1, 1, &x), 0);
    cr_assert_eq(flight_join(f, "y", 1, 1, &y), 0);
    cr_assert_null(flight_land(f, &x));
    cr_assert_null(flight_land(f, &y));
}

Test(flight, a_new_ticket_starts_a_new_flight_and_the_old_one_still_lands)
{
    flight_link old_lead, old_join, new_lead, new_join, late;
    cr_assert_eq(flight_join(f, "k", 1, 1, &old_lead), 0);
    cr_assert_eq(flight_join(f, "k", 1, 1, &old_join), 1);
    /* the key was written: callers with the newer ticket must not share the old read */
    cr_assert_eq(flight_join(f, "k", 1, 2, &new_lead), 0);
    cr_assert_eq(flight_join(f, "k", 1, 2, &new_join), 1);
    cr_assert_eq(flight_join(f, "k", 1, 1, &late), 0, "the old flight is detached");
    flight_link *w = flight_land(f, &old_lead);
    cr_assert_eq(w, &old_join);
    cr_assert_eq(count(w), 1);
    w = flight_land(f, &new_lead); /* detached by late's, still lands with its joiner */
    cr_assert_eq(w, &new_join);
    cr_assert_eq(count(w), 1);
    cr_assert_null(flight_land(f, &late));
}

Test(flight, a_key_can_fly_again_after_landing)
{
    flight_link lead, again;
    cr_assert_eq(flight_join(f, "k", 1, 3, &lead), 0);
    flight_land(f, &lead);
    cr_assert_eq(flight_join(f, "k", 1, 3, &again), 0, "no flight left in the air");
    flight_land(f, &again);
}

Test(flight, landing_twice_or_without_leading_returns_none)
{
    flight_link lead, joiner;
    cr_assert_eq(flight_join(f, "k", 1, 3, &lead), 0);
    cr_assert_eq(flight_join(f, "k", 1, 3, &joiner), 1);
    cr_assert_eq(count(flight_land(f, &lead)), 1);
    cr_assert_null(flight_land(f, &lead));
    cr_assert_null(flight_land(f, &joiner), "a joiner leads nothing");
}
