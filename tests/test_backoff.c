/* Unit: the one backoff of Redis connections. */
#include <criterion/criterion.h>

#include "backoff.h"

Test(backoff, doubles_from_the_minimum_up_to_its_cap)
{
    backoff b = backoff_make(BACKOFF_MAX_MS);
    int64_t expect[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_assert_eq(backoff_fail(&b), expect[i], "failure %zu", i);
}

Test(backoff, a_success_starts_it_again)
{
    backoff b = backoff_make(2000);
    backoff_fail(&b);
    backoff_fail(&b);
    backoff_reset(&b);
    cr_assert_eq(backoff_fail(&b), BACKOFF_MIN_MS);
}

Test(backoff, a_lower_cap_holds)
{
    backoff b = backoff_make(2000);
    int64_t last = 0;
    for (int i = 0; i < 10; i++)
        last = backoff_fail(&b);
    cr_assert_eq(last, 2000);
}
