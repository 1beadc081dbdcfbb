/* Unit: the one decoder of a Get's answer (stale-while-revalidate, negative
 * entries, PTTL), as the scripts' callers and the read lane use it. */
#include <criterion/criterion.h>

#include "answer.h"

Test(answer, a_plain_value_keeps_its_pttl)
{
    l2_value v = {0};
    answer_raw raw = {.has_value = 1, .pttl_ms = 5000};
    cr_assert_eq(answer_decode(&raw, &v), L2_OK);
    cr_assert_eq(v.pttl_ms, 5000);
    cr_assert_not(v.stale);
    cr_assert_not(v.negative);
}

Test(answer, a_fresh_swr_value_lives_until_its_mark)
{
    l2_value v = {0};
    answer_raw raw = {
        .has_value = 1, .pttl_ms = 9000, .has_fresh = 1, .fresh_until = 1300, .now_ms = 1000};
    cr_assert_eq(answer_decode(&raw, &v), L2_OK);
    cr_assert_eq(v.pttl_ms, 300);
    cr_assert_not(v.stale);
}

Test(answer, an_swr_value_past_its_mark_is_stale_with_its_pttl)
{
    l2_value v = {0};
    answer_raw raw = {
        .has_value = 1, .pttl_ms = 9000, .has_fresh = 1, .fresh_until = 1000, .now_ms = 1000};
    cr_assert_eq(answer_decode(&raw, &v), L2_OK);
    cr_assert(v.stale);
    cr_assert_eq(v.pttl_ms, 9000);
}

Test(answer, a_negative_mark_makes_a_known_absent_miss_with_its_pttl)
{
    l2_value v = {0};
    answer_raw raw = {.pttl_ms = -2, .negative = 1, .neg_pttl_ms = 700};
    cr_assert_eq(answer_decode(&raw, &v), L2_NIL);
    cr_assert(v.negative);
    cr_assert_eq(v.pttl_ms, 700);
}

Test(answer, a_plain_miss_has_pttl_minus_two)
{
    l2_value v = {.stale = 1, .negative = 1};
    answer_raw raw = {.pttl_ms = -2, .neg_pttl_ms = 700};
    cr_assert_eq(answer_decode(&raw, &v), L2_NIL);
    cr_assert_not(v.negative);
    cr_assert_not(v.stale);
    cr_assert_eq(v.pttl_ms, -2);
}

Test(answer, a_negative_mark_beside_a_value_is_ignored)
{
    l2_value v = {0};
    answer_raw raw = {.has_value = 1, .pttl_ms = 10, .negative = 1, .neg_pttl_ms = 700};
    cr_assert_eq(answer_decode(&raw, &v), L2_OK);
    cr_assert_not(v.negative);
    cr_assert_eq(v.pttl_ms, 10);
}

/* Found by tests/fuzz (script_reply): an swr mark far past a negative
 * clock overflowed fresh_until - now_ms (UBSan). */
Test(answer, an_swr_mark_too_far_ahead_saturates_the_ttl)
{
    l2_value v = {0};
    answer_raw raw = {.has_value = 1,
                      .pttl_ms = 5000,
                      .has_fresh = 1,
                      .fresh_until = INT64_MAX,
                      .now_ms = -INT64_MAX};
    cr_assert_eq(answer_decode(&raw, &v), L2_OK);
    cr_assert_eq(v.pttl_ms, INT64_MAX);
    cr_assert_not(v.stale);
}
