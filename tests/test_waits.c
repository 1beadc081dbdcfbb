/* Unit: parked calls without a server. The table never looks inside a call,
 * so distinct addresses stand for calls; the wake function records what it
 * was handed. */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "units.h"
#include "waits.h"

#define MAX_WOKEN 16

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static call *woken[MAX_WOKEN];
static int timed_out[MAX_WOKEN];
static size_t nwoken;
static char calls[4]; /* &calls[i] stands for call i */

static call *fake(int i)
{
    return (call *)(void *)&calls[i];
}

static void on_wake(void *arg, call *c, int to)
{
    pthread_mutex_lock(&mu);
    if (nwoken < MAX_WOKEN) {
        woken[nwoken] = c;
        timed_out[nwoken] = to;
        nwoken++;
    }
    pthread_mutex_unlock(&mu);
}

static size_t woken_now(void)
{
    pthread_mutex_lock(&mu);
    size_t n = nwoken;
    pthread_mutex_unlock(&mu);
    return n;
}

static waits *w;

static void up(void)
{
    nwoken = 0;
    cr_assert_eq(waits_create(&w, on_wake, NULL), 0);
}

static void down(void)
{
    waits_destroy(w);
}

TestSuite(waits, .init = up, .fini = down);

static int64_t far(void)
{
    return units_now_ms() + 60000;
}

Test(waits, wake_of_a_key_answers_only_its_calls)
{
    cr_assert_eq(waits_park(w, "a", 1, fake(0), far()), 0);
    cr_assert_eq(waits_park(w, "b", 1, fake(1), far()), 0);
    cr_assert_eq(waits_park(w, "a", 1, fake(2), far()), 0);
    cr_assert_eq(waits_parked(w), 3);
    waits_wake(w, "a", 1);
    cr_assert_eq(woken_now(), 2);
    cr_assert_eq(waits_parked(w), 1);
    for (size_t i = 0; i < 2; i++) {
        cr_assert(woken[i] == fake(0) || woken[i] == fake(2));
        cr_assert_eq(timed_out[i], 0);
    }
}

Test(waits, keys_are_compared_by_length_and_bytes)
{
    cr_assert_eq(waits_park(w, "ab", 2, fake(0), far()), 0);
    waits_wake(w, "a", 1);
    waits_wake(w, "abc", 3);
    cr_assert_eq(woken_now(), 0);
    waits_wake(w, "ab", 2);
    cr_assert_eq(woken_now(), 1);
}

Test(waits, wake_of_null_answers_every_call)
{
    cr_assert_eq(waits_park(w, "a", 1, fake(0), far()), 0);
    cr_assert_eq(waits_park(w, "b", 1, fake(1), far()), 0);
    waits_wake(w, NULL, 0);
    cr_assert_eq(woken_now(), 2);
    cr_assert_eq(waits_parked(w), 0);
}

Test(waits, sweeper_answers_a_call_whose_deadline_came_as_timed_out)
{
    cr_assert_eq(waits_park(w, "a", 1, fake(0), units_now_ms() + 20), 0);
    cr_assert_eq(waits_park(w, "b", 1, fake(1), far()), 0);
    for (int i = 0; i < 400 && woken_now() == 0; i++)
        usleep(5000);
    cr_assert_eq(woken_now(), 1);
    cr_assert_eq(woken[0], fake(0));
    cr_assert_eq(timed_out[0], 1);
    cr_assert_eq(waits_parked(w), 1);
}

Test(waits, free_answers_every_parked_call_as_timed_out)
{
    cr_assert_eq(waits_park(w, "a", 1, fake(0), far()), 0);
    cr_assert_eq(waits_park(w, "b", 1, fake(1), far()), 0);
    waits_destroy(w);
    w = NULL;
    cr_assert_eq(woken_now(), 2);
    cr_assert_eq(timed_out[0], 1);
    cr_assert_eq(timed_out[1], 1);
}

Test(waits, a_null_table_parks_nothing)
{
    cr_assert_eq(waits_park(NULL, "a", 1, fake(0), far()), ECANCELED);
    waits_wake(NULL, "a", 1);
    cr_assert_eq(waits_parked(NULL), 0);
    cr_assert_eq(woken_now(), 0);
}
