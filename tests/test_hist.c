/* Tests of daemon/hist.c: observations land in the bucket whose bound is
 * the first at or above them, readings are cumulative, and the sum adds up. */
#include <criterion/criterion.h>

#include <pthread.h>

#include "hist.h"

Test(hist, puts_each_value_in_the_first_bucket_at_or_above_it)
{
    cr_assert_eq(hist_bucket_of(0), 0);
    cr_assert_eq(hist_bucket_of(16), 0);
    cr_assert_eq(hist_bucket_of(17), 1);
    cr_assert_eq(hist_bucket_of(32), 1);
    cr_assert_eq(hist_bucket_of(33), 2);
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        cr_assert_eq(hist_bucket_of(hist_bound_us(i)), i, "bound of bucket %zu", i);
        cr_assert_eq(hist_bucket_of(hist_bound_us(i) + 1), i + 1);
    }
}

Test(hist, puts_values_past_the_last_bound_in_inf)
{
    cr_assert_eq(hist_bucket_of(hist_bound_us(HIST_BUCKETS - 1) + 1), HIST_BUCKETS);
    cr_assert_eq(hist_bucket_of(UINT64_MAX), HIST_BUCKETS);
}

Test(hist, reads_cumulative_counts_and_the_sum)
{
    hist h = {0};
    hist_record(&h, 10);
    hist_record(&h, 100);
    hist_record(&h, 100);
    hist_record(&h, 100000000);
    hist_reading r;
    hist_read(&h, &r);
    cr_assert_eq(r.le[0], 1);
    cr_assert_eq(r.le[hist_bucket_of(100) - 1], 1);
    cr_assert_eq(r.le[hist_bucket_of(100)], 3);
    cr_assert_eq(r.le[HIST_BUCKETS - 1], 3);
    cr_assert_eq(r.le[HIST_BUCKETS], 4);
    cr_assert_eq(r.sum_us, 100000210);
}

static void *record_many(void *arg)
{
    for (int i = 0; i < 100000; i++)
        hist_record(arg, (uint64_t)i);
    return NULL;
}

Test(hist, loses_no_observation_between_threads)
{
    hist h = {0};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, record_many, &h);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    hist_reading r;
    hist_read(&h, &r);
    cr_assert_eq(r.le[HIST_BUCKETS], 400000);
    cr_assert_eq(r.sum_us, 4ULL * (99999ULL * 100000ULL / 2));
}
