/* Integration: the wall clock stepped an hour forward and back (issue 18,
 * fault matrix). The daemons and this process (its clients, one with a near
 * tier) run with tests/clockshift.c preloaded, which adds the seconds in a
 * file to CLOCK_REALTIME, time() and gettimeofday(); Redis keeps the real
 * clock, as another host would. TTLs, the coherence window and the near
 * tier run on monotonic clocks: a step neither expires a value early nor
 * keeps it late, neither stops L1 serving nor lets it serve past the
 * window when the heartbeats stop. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define WINDOW_MS 1000 /* coherence_window (the default) */

static h_fleet fx;
static char dir[64] = "/tmp/nc-test-clock-XXXXXX", shift_file[128];

/* Steps the wall clock of every process that preloads the shim to the
 * real time + s seconds. */
static void shift(long long s)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", shift_file);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fprintf(f, "%lld\n", s);
    fclose(f);
    cr_assert_eq(rename(tmp, shift_file), 0);
}

static void up(void)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(shift_file, sizeof shift_file, "%s/shift", dir);
    shift(0);
    setenv("NC_CLOCK_SHIFT_FILE", shift_file, 1);
    h_fleet_start(&fx, 2, NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
    unlink(shift_file);
    rmdir(dir);
}

TestSuite(clock, .init = up, .fini = down, .timeout = 120);

/* Whether process `pid` (0: this one) has the shim mapped. */
static int has_shim(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, pid ? "/proc/%d/maps" : "/proc/self/maps", (int)pid);
    char *maps = h_read_file(path, NULL);
    int found = maps != NULL && strstr(maps, "clockshift") != NULL;
    free(maps);
    return found;
}

/* This process's wall clock minus the real one, in seconds. */
static long long skew_s(void)
{
    struct timespec shifted, real;
    clock_gettime(CLOCK_REALTIME, &shifted);
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &real);
    return (long long)(shifted.tv_sec - real.tv_sec);
}

/* ns/key through c, as a new string (caller frees), or NULL when absent;
 * fails the test on an error. */
static char *get(nc_client *c, const char *key)
{
    void *v = NULL;
    size_t len = 0;
    int rv = nc_get(c, NC_STR("ns"), (nc_bytes){key, strlen(key)}, &v, &len, 2000);
    cr_assert(rv == NC_OK || rv == NC_ENOTFOUND, "get ns/%s: %s (%s)", key, nc_strerror(rv),
              nc_errmsg());
    char *s = rv == NC_OK ? strndup(v, len) : NULL;
    nc_free(v);
    return s;
}

static void expect(nc_client *c, const char *who, const char *key, const char *want)
{
    char *got = get(c, key);
    if (want == NULL)
        cr_assert_null(got, "%s: ns/%s is %s, expected absent", who, key, got);
    else
        cr_assert(got != NULL && strcmp(got, want) == 0, "%s: ns/%s is %s, expected %s", who, key,
                  got != NULL ? got : "absent", want);
    free(got);
}

static void set(nc_client *c, const char *key, const char *value, int64_t ttl_ms)
{
    cr_assert_eq(nc_set(c, NC_STR("ns"), (nc_bytes){key, strlen(key)},
                        (nc_bytes){value, strlen(value)}, ttl_ms, 2000),
                 NC_OK, "set ns/%s: %s", key, nc_errmsg());
}

/* Polls until A's L1 and the near tier serve (want = 1) or not (0), for
 * up to `ms`; returns how long it took, or -1. */
static int64_t until_serving(nc_client *near, int want, int64_t ms)
{
    int64_t start = h_now_ms();
    while (h_now_ms() - start <= ms) {
        nc_near_stats s;
        cr_assert_eq(nc_stats_near(near, &s), NC_OK);
        if (s.serving == want && h_stat(fx.cl[0], "l1_serving") == want)
            return h_now_ms() - start;
        h_sleep_ms(20);
    }
    return -1;
}

/* Reads ns/c through the near tier until it is a near hit, for up to 3 s
 * (a loaded machine can hold a heartbeat back past the window, and the
 * tier then reads through the daemon for a moment). Returns whether one
 * was. */
static int near_hit_within_3_s(nc_client *near)
{
    for (int64_t start = h_now_ms(); h_now_ms() - start < 3000; h_sleep_ms(20)) {
        nc_near_stats before, after;
        cr_assert_eq(nc_stats_near(near, &before), NC_OK);
        free(get(near, "c"));
        cr_assert_eq(nc_stats_near(near, &after), NC_OK);
        if (after.hits > before.hits)
            return 1;
    }
    return 0;
}

/* One step of `step` seconds: a value set before it with a TTL of 4 s
 * lives on through it and is gone 5.5 s after its Set; L1 and the near tier
 * keep serving; a write after it reaches A and the near tier; and when
 * the heartbeats stop (Redis paused for writes), L1 and the near tier stop
 * serving within the window, then serve again. */
static void step_and_check(nc_client *near, long long step)
{
    const char *who[3] = {"A", "B", "A's near tier"};
    nc_client *cl[3] = {fx.cl[0], fx.cl[1], near};
    shift(0);
    cr_assert_geq(until_serving(near, 1, 3000), 0, "not serving before the step");
    int64_t set_at = h_now_ms();
    set(fx.cl[1], "t", "short", 4000);
    set(fx.cl[1], "c", "1", 600000);
    for (int i = 0; i < 3; i++) { /* into L1 and the near tier */
        expect(cl[i], who[i], "t", "short");
        expect(cl[i], who[i], "c", "1");
    }

    shift(step);
    cr_assert_eq(skew_s(), step, "the shim did not step this process's clock");
    char *now = h_redis_cmd(&fx.redis, "TIME", NULL);
    struct timespec real;
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &real);
    cr_assert_lt(llabs(atoll(now) - (long long)real.tv_sec), 5, "Redis's clock moved: %s", now);
    free(now);
    for (int i = 0; i < 3; i++) {
        int64_t age = h_now_ms() - set_at;
        char *got = get(cl[i], "t");
        cr_assert(got != NULL || age >= 3500, "%s: ns/t expired %lld ms after its Set of 4 s at "
                  "a %+lld s step", who[i], (long long)age, step);
        free(got);
        expect(cl[i], who[i], "c", "1");
    }
    cr_assert_geq(until_serving(near, 1, 3000), 0, "not serving 3 s after a %+lld s step", step);
    cr_assert(near_hit_within_3_s(near), "the near tier served nothing after a %+lld s step",
              step);

    set(fx.cl[1], "c", "2", 600000);
    h_sleep_ms(WINDOW_MS);
    expect(fx.cl[0], "A", "c", "2");
    expect(near, "A's near tier", "c", "2");

    /* L1 and the near tier count a TTL from the reply, which a loaded
     * machine can hold back: 1.5 s of margin, against a step of an hour. */
    h_sleep_ms(set_at + 5500 - h_now_ms());
    for (int i = 0; i < 3; i++)
        expect(cl[i], who[i], "t", NULL);

    /* No heartbeat for 3 s: serving stops within the window (and the
     * heartbeat interval), whatever the wall clock did. */
    free(h_redis_cmd(&fx.redis, "CLIENT", "PAUSE", "3000", "WRITE", NULL));
    int64_t stopped = until_serving(near, 0, WINDOW_MS + 1000);
    cr_assert_geq(stopped, 0, "L1 kept serving without heartbeats after a %+lld s step", step);
    int64_t back = until_serving(near, 1, 6000);
    cr_assert_geq(back, 0, "L1 did not serve again after the pause (step %+lld s)", step);
    cr_log_info("step %+lld s: serving stopped %lld ms into the pause, came back %lld ms later",
                step, (long long)stopped, (long long)back);
}

Test(clock, ttls_the_coherence_window_and_the_near_tier_hold_while_the_wall_clock_jumps)
{
    cr_assert(has_shim(0) && has_shim(fx.node[0].pid) && has_shim(fx.node[1].pid),
              "tests/clockshift.c is not preloaded (LD_PRELOAD)");
    nc_client *near = NULL;
    nc_open_opts o = {.near_bytes = 1 << 20};
    cr_assert_eq(nc_open_ex(&near, fx.node[0].url, &o), NC_OK, "%s", nc_errmsg());
    step_and_check(near, 3600);
    step_and_check(near, -3600);
    shift(0);
    nc_close(near);
    cr_assert(h_daemon_alive(&fx.node[0]) && h_daemon_alive(&fx.node[1]));
}
