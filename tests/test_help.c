/* Every program answers --help on stdout with exit 0 and nothing on stderr,
 * and --version with "NAME VERSION" and exit 0. The programs come from the
 * environment (NC_DAEMON, NC_CLI, NC_PROXY, NC_BENCH), as ctest sets it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(help, .timeout = 20);

/* The path in environment variable `var` (asserts it is set). */
static char *program(const char *var)
{
    char *p = getenv(var);
    cr_assert(p != NULL && p[0] != '\0', "$%s is not set (run the test through ctest)", var);
    return p;
}

static void expect_help(const char *var, const char *first_word)
{
    char *argv[] = {program(var), "--help", NULL}, *out = NULL, *err = NULL;
    size_t len;
    int code = h_run(argv, NULL, 0, &out, &len, &err);
    cr_assert_eq(code, 0, "%s --help: exit %d; stderr: %s", argv[0], code, err);
    cr_assert(strstr(out, first_word) != NULL, "%s --help printed:\n%s", argv[0], out);
    cr_assert(strstr(out, "--version") != NULL, "%s --help does not list --version:\n%s", argv[0],
              out);
    cr_assert_str_empty(err, "%s --help wrote to stderr: %s", argv[0], err);
    free(out);
    free(err);
}

static void expect_version(const char *var, const char *name)
{
    char *argv[] = {program(var), "--version", NULL}, *out = NULL, *err = NULL, want[128];
    size_t len;
    int code = h_run(argv, NULL, 0, &out, &len, &err);
    snprintf(want, sizeof want, "%s %s\n", name, NC_VERSION);
    cr_assert_eq(code, 0, "%s --version: exit %d; stderr: %s", argv[0], code, err);
    cr_assert_str_eq(out, want);
    free(out);
    free(err);
}

Test(help, nearcached_answers_help_and_version)
{
    expect_help("NC_DAEMON", "Usage:");
    expect_version("NC_DAEMON", "nearcached");
}

Test(help, cli_answers_help_and_version)
{
    expect_help("NC_CLI", "usage:");
    expect_version("NC_CLI", "nearcache-cli");
}

Test(help, delay_proxy_answers_help_and_version)
{
    expect_help("NC_PROXY", "usage:");
    expect_version("NC_PROXY", "nc-delay-proxy");
}

Test(help, delay_proxy_without_arguments_is_a_usage_error)
{
    char *argv[] = {program("NC_PROXY"), NULL}, *out = NULL, *err = NULL;
    size_t len;
    cr_assert_eq(h_run(argv, NULL, 0, &out, &len, &err), 2);
    cr_assert(strstr(err, "usage:") != NULL, "stderr: %s", err);
    free(out);
    free(err);
}

#ifdef NC_HAVE_BENCH
Test(help, bench_answers_help_and_version)
{
    expect_help("NC_BENCH", "usage:");
    expect_version("NC_BENCH", "nearcache-bench");
}

Test(help, bench_with_a_bad_option_is_still_a_usage_error)
{
    char *argv[] = {program("NC_BENCH"), "run", "--no-such-option", "1", NULL}, *err = NULL;
    cr_assert_eq(h_run(argv, NULL, 0, NULL, NULL, &err), 2);
    cr_assert(strstr(err, "usage:") != NULL, "stderr: %s", err);
    free(err);
}
#endif
