/* Tests of common/units.c: durations and sizes as people write them in config
 * files and flags, and the malformed, negative and overflowing inputs that
 * must be refused without touching the output. */
#include <criterion/criterion.h>

#include <stdint.h>

#include "units.h"

static int64_t dur(const char *text)
{
    int64_t ms = -12345;
    cr_assert_eq(units_parse_duration_ms(text, &ms), 0, "\"%s\" should parse", text);
    return ms;
}

static uint64_t size(const char *text)
{
    uint64_t v = 12345;
    cr_assert_eq(units_parse_size(text, &v), 0, "\"%s\" should parse", text);
    return v;
}

static void refuse_duration(const char *text)
{
    int64_t ms = -777;
    cr_expect_eq(units_parse_duration_ms(text, &ms), -1, "\"%s\" should be refused", text);
    cr_expect_eq(ms, -777, "\"%s\" changed the output on error", text);
}

static void refuse_size(const char *text)
{
    uint64_t v = 777;
    cr_expect_eq(units_parse_size(text, &v), -1, "\"%s\" should be refused", text);
    cr_expect_eq(v, 777, "\"%s\" changed the output on error", text);
}

Test(units, parses_durations_with_each_suffix)
{
    cr_expect_eq(dur("500ms"), 500);
    cr_expect_eq(dur("30s"), 30000);
    cr_expect_eq(dur("5m"), 300000);
    cr_expect_eq(dur("1h"), 3600000);
    cr_expect_eq(dur("2d"), 2LL * 86400000);
    cr_expect_eq(dur("30d"), 30LL * 86400000);
}

Test(units, parses_fractional_durations)
{
    cr_expect_eq(dur("1.5s"), 1500);
    cr_expect_eq(dur("0.25h"), 900000);
    cr_expect_eq(dur(".5s"), 500);
}

Test(units, reads_a_bare_number_as_seconds)
{
    cr_expect_eq(dur("10"), 10000);
    cr_expect_eq(dur("0"), 0);
}

Test(units, allows_white_space_around_and_inside_durations)
{
    cr_expect_eq(dur(" 10 s "), 10000);
    cr_expect_eq(dur("\t250 ms\n"), 250);
}

Test(units, duration_suffixes_ignore_case)
{
    cr_expect_eq(dur("2S"), 2000);
    cr_expect_eq(dur("3MS"), 3);
}

Test(units, parses_sizes_with_each_suffix)
{
    cr_expect_eq(size("512"), 512);
    cr_expect_eq(size("512B"), 512);
    cr_expect_eq(size("64KB"), 64 * 1024);
    cr_expect_eq(size("64K"), 64 * 1024);
    cr_expect_eq(size("64MB"), 64ULL << 20);
    cr_expect_eq(size("1GiB"), 1ULL << 30);
    cr_expect_eq(size("1GB"), 1ULL << 30);
    cr_expect_eq(size("2TB"), 2ULL << 40);
}

Test(units, sizes_ignore_case_and_white_space)
{
    cr_expect_eq(size(" 10 kb "), 10240);
    cr_expect_eq(size("3mib"), 3ULL << 20);
}

Test(units, parses_fractional_sizes)
{
    cr_expect_eq(size("1.5KB"), 1536);
    cr_expect_eq(size("0.5MB"), 512 * 1024);
}

Test(units, refuses_empty_and_blank_text)
{
    refuse_duration("");
    refuse_duration("   ");
    refuse_size("");
    refuse_size(" ");
    refuse_duration(NULL);
    refuse_size(NULL);
}

Test(units, refuses_signs)
{
    refuse_duration("-1s");
    refuse_duration("+1s");
    refuse_size("-1KB");
    refuse_size("+5");
}

Test(units, refuses_unknown_suffixes_and_trailing_text)
{
    refuse_duration("10 parsecs");
    refuse_duration("10s5");
    refuse_duration("10 s s");
    refuse_duration("5y");
    refuse_duration("s");
    refuse_size("64XB");
    refuse_size("10 parsecs");
    refuse_size("1PB");
    refuse_size("1.5.5KB");
}

Test(units, refuses_inf_and_nan)
{
    refuse_duration("inf");
    refuse_duration("infinity");
    refuse_duration("nan");
    refuse_duration("NaN s");
    refuse_size("inf");
    refuse_size("nan");
}

Test(units, refuses_hex_and_exponents)
{
    /* strtod takes these; a config value must not. */
    refuse_duration("0x10s");
    refuse_size("0x10");
    refuse_size("0x1p4KB");
    refuse_duration("1e3ms");
    refuse_size("2e1b");
}

Test(units, refuses_overflow)
{
    refuse_duration("1e400s");
    refuse_duration("200000000d"); /* 1.7e16 ms: past the 9e15 limit */
    refuse_duration("99999999999999999999999999ms");
    refuse_size("100000000TB");
    refuse_size("18446744073709551616");
    refuse_size("999999999999999999999999999999999999999999");
}

Test(units, accepts_values_just_under_the_limits)
{
    cr_expect_eq(dur("100000d"), 100000LL * 86400000);
    cr_expect_eq(size("1000000TB"), 1000000ULL << 40);
}

Test(units, monotonic_clock_does_not_go_back)
{
    int64_t a = units_now_ms(), b = units_now_ms();
    cr_expect_geq(a, 0);
    cr_expect_geq(b, a);
}

Test(units, whole_numbers_are_digits_only_and_bounded)
{
    uint64_t v = 7;
    cr_assert_eq(units_parse_uint("6379", 4, 65535, &v), 0);
    cr_assert_eq(v, 6379);
    cr_assert_eq(units_parse_uint("65536", 5, 65535, &v), -1);
    cr_assert_eq(units_parse_uint("12a", 3, 100, &v), -1);
    cr_assert_eq(units_parse_uint("", 0, 100, &v), -1);
    cr_assert_eq(units_parse_uint("-1", 2, 100, &v), -1);
    cr_assert_eq(units_parse_uint("18446744073709551615", 20, UINT64_MAX, &v), 0);
    cr_assert_eq(v, UINT64_MAX);
    cr_assert_eq(units_parse_uint("18446744073709551616", 20, UINT64_MAX, &v), -1);
    cr_assert_eq(units_parse_uint("15x", 2, 15, &v), 0, "only len bytes are read");
    cr_assert_eq(v, 15);
}
