/* Integration: nearcache-cli against a real nearcached and redis-server.
 * Checks what scripts rely on: the exact bytes on stdout, the exit codes
 * (0 ok, 1 not found, 2 usage, 3 unreachable or daemon error) and the
 * messages on stderr. Each test gets its own Redis and daemon. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NOWHERE "ipc:///tmp/nonexistent-dir/x.sock"

static h_fleet fx; /* one daemon */

static void up(void)
{
    h_fleet_start(&fx, 1, NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
}

TestSuite(cli, .init = up, .fini = down, .timeout = 30);

/* h_run() with $NEARCACHE_URL set to env_url (NULL: unset), for the
 * child to inherit; `in` is a string (may be NULL). */
static int run(char **argv, const char *env_url, const char *in, char **out, char **err)
{
    if (env_url != NULL)
        setenv("NEARCACHE_URL", env_url, 1);
    else
        unsetenv("NEARCACHE_URL");
    size_t len;
    return h_run(argv, in, in != NULL ? strlen(in) : 0, out, &len, err);
}

static char *cli_path(void)
{
    const char *p = getenv("NC_CLI");
    return (char *)(p != NULL && p[0] != '\0' ? p : "nearcache-cli");
}

/* Runs the CLI against the test's daemon; asserts exit code `want` and
 * returns its stdout (the caller frees it). */
#define CLI_EXPECT(want, ...) cli_expect((want), #__VA_ARGS__, __VA_ARGS__, (char *)NULL)

static char *cli_expect(int want, const char *shown, ...)
{
    char *argv[16] = {cli_path(), "-s", fx.node[0].url};
    int n = 3;
    va_list ap;
    va_start(ap, shown);
    for (char *a; n < 15 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char *out, *err;
    int code = run(argv, NULL, NULL, &out, &err);
    cr_assert_eq(code, want, "nearcache-cli %s: exit %d, want %d; stderr: %s", shown, code, want,
                 err);
    free(err);
    return out;
}

/* One counter out of `stats --json`, after checking that the output is one
 * JSON object whose members are all integers but the ratios (a number or
 * null) and the namespaces' array (python3 parses it). */
static int64_t json_stat(const char *json, const char *name)
{
    static const char script[] =
        "import json, sys\n"
        "def pairs(kv):\n"
        "    keys = [k for k, _ in kv]\n"
        "    assert len(keys) == len(set(keys)), 'duplicate member'\n"
        "    return dict(kv)\n"
        "d = json.load(sys.stdin, object_pairs_hook=pairs)\n"
        "assert isinstance(d, dict), 'not an object'\n"
        "extra = {'near_hit_ratio', 'l1_hit_ratio', 'hit_ratio', 'namespaces'}\n"
        "assert extra <= set(d), 'no ratios or namespaces'\n"
        "assert all(type(x) is int for k, x in d.items() if k not in extra), 'a non-integer'\n"
        "assert type(d['namespaces']) is list\n"
        "v = d[sys.argv[1]]\n"
        "assert type(v) is int, 'not an integer'\n"
        "print(v)\n";
    char *argv[] = {"python3", "-c", (char *)script, (char *)name, NULL};
    char *out, *err;
    int code = run(argv, NULL, json, &out, &err);
    cr_assert_eq(code, 0, "stats --json: member %s: %s\noutput: %s", name, err, json);
    char *end;
    long long v = strtoll(out, &end, 10);
    cr_assert(end != out && *end == '\n', "python printed %s", out);
    free(out);
    free(err);
    return v;
}

static int64_t stat_now(const char *name)
{
    char *json = CLI_EXPECT(0, "stats", "--json");
    int64_t v = json_stat(json, name);
    free(json);
    return v;
}

/* Feeds `len` bytes to `set ns KEY -`, reads them back with get and
 * compares byte for byte. */
static void round_trip_stdin(const char *key, const unsigned char *value, size_t len)
{
    char *out = NULL, *err = NULL;
    size_t outlen = 0;
    int code = h_cli(&fx.node[0], value, len, &out, &outlen, &err, "set", "ns", key, "-", NULL);
    cr_assert_eq(code, 0, "set - exit %d: %s", code, err);
    cr_assert_eq(outlen, 0, "set printed %zu bytes", outlen);
    free(out), free(err);
    code = h_cli(&fx.node[0], NULL, 0, &out, &outlen, &err, "get", "ns", key, NULL);
    cr_assert_eq(code, 0, "get exit %d: %s", code, err);
    cr_assert_eq(outlen, len, "get printed %zu bytes, want %zu", outlen, len);
    size_t i = 0;
    while (i < len && (unsigned char)out[i] == value[i])
        i++;
    cr_assert_eq(i, len, "byte %zu differs: 0x%02x, want 0x%02x", i, (unsigned char)out[i],
                 value[i]);
    free(out), free(err);
}

Test(cli, set_then_get_prints_exactly_the_value_bytes)
{
    free(CLI_EXPECT(0, "set", "ns", "greeting", "hello world"));
    char *out = NULL, *err = NULL;
    size_t outlen = 0;
    int code = h_cli(&fx.node[0], NULL, 0, &out, &outlen, &err, "get", "ns", "greeting", NULL);
    cr_assert_eq(code, 0, "get exit %d: %s", code, err);
    cr_assert_eq(outlen, strlen("hello world"), "printed %zu bytes: [%s]", outlen, out);
    cr_assert_eq(memcmp(out, "hello world", outlen), 0, "printed [%s]", out);
    cr_assert_str_empty(err);
    free(out), free(err);
}

Test(cli, get_of_missing_key_exits_1_with_empty_stdout)
{
    char *out = NULL, *err = NULL;
    size_t outlen = 99;
    int code = h_cli(&fx.node[0], NULL, 0, &out, &outlen, &err, "get", "ns", "absent", NULL);
    cr_assert_eq(code, 1, "exit %d: %s", code, err);
    cr_assert_eq(outlen, 0, "printed [%s]", out);
    free(out), free(err);
}

Test(cli, del_exits_0_and_the_key_is_then_missing)
{
    free(CLI_EXPECT(0, "set", "ns", "doomed", "v"));
    free(CLI_EXPECT(0, "get", "ns", "doomed"));
    free(CLI_EXPECT(0, "del", "ns", "doomed"));
    free(CLI_EXPECT(1, "get", "ns", "doomed"));
    char *exists = h_redis_cmd(&fx.redis, "EXISTS", H_DATA_KEY(&fx.redis, "ns", "doomed"), NULL);
    cr_assert_str_eq(exists, "0");
    free(exists);
}

Test(cli, set_from_stdin_keeps_nul_bytes_and_every_byte_value)
{
    unsigned char value[3 + 2 * 256];
    size_t n = 0;
    value[n++] = 0, value[n++] = 'a', value[n++] = 0;
    for (int i = 0; i < 256; i++)
        value[n++] = (unsigned char)i;
    for (int i = 255; i >= 0; i--)
        value[n++] = (unsigned char)i;
    round_trip_stdin("binary", value, n);
}

Test(cli, set_from_stdin_keeps_a_1_mib_value_intact)
{
    size_t len = 1024 * 1024;
    unsigned char *value = malloc(len);
    uint32_t x = 2463534242u; /* xorshift: no run repeats within 1 MiB */
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        value[i] = (unsigned char)x;
    }
    round_trip_stdin("big", value, len);
    free(value);
}

/* 1.5 s: three processes start between the Set and the PTTL, slowly under
 * the sanitizers on a loaded machine. */
Test(cli, ttl_option_makes_the_key_expire)
{
    int64_t t0 = h_now_ms();
    free(CLI_EXPECT(0, "set", "ns", "brief", "v", "--ttl", "1500ms"));
    int64_t set = h_now_ms(); /* the key's 1500 ms began before this */
    free(CLI_EXPECT(0, "get", "ns", "brief"));
    char *pttl = h_redis_cmd(&fx.redis, "PTTL", H_DATA_KEY(&fx.redis, "ns", "brief"), NULL);
    long ms = atol(pttl);
    free(pttl);
    int64_t took = h_now_ms() - t0;
    cr_assert(ms <= 1500, "PTTL %ld", ms);
    cr_assert(ms > 0 || took >= 1500, "PTTL %ld after %lld ms", ms, (long long)took);
    /* past the TTL counted from the Set's answer, not from before the cli
     * started: a loaded machine may take a while to start it */
    if (h_now_ms() < set + 1700)
        h_sleep_ms((int)(set + 1700 - h_now_ms()));
    free(CLI_EXPECT(1, "get", "ns", "brief"));
}

Test(cli, ttl_of_0_is_refused_by_the_daemon_as_invalid_argument)
{
    char *argv[] = {cli_path(), "-s", fx.node[0].url, "set", "ns", "k", "v", "--ttl", "0", NULL};
    char *out, *err;
    int code = run(argv, NULL, NULL, &out, &err);
    cr_assert_eq(code, 3, "exit %d: %s", code, err);
    cr_assert(strstr(err, "INVALID_ARGUMENT") != NULL, "stderr: %s", err);
    cr_assert(strstr(err, "ttl") != NULL, "stderr: %s", err);
    free(out), free(err);
    free(CLI_EXPECT(1, "get", "ns", "k"));
}

Test(cli, negative_or_garbled_ttl_is_a_usage_error)
{
    free(CLI_EXPECT(2, "set", "ns", "k", "v", "--ttl", "-5s"));
    free(CLI_EXPECT(2, "set", "ns", "k", "v", "--ttl", "banana"));
    free(CLI_EXPECT(2, "set", "ns", "k", "v", "--ttl=banana"));
    free(CLI_EXPECT(1, "get", "ns", "k"));
}

Test(cli, stats_json_is_one_object_of_integer_counters)
{
    static const char *const names[] = {
        "requests",   "bad_requests", "l1_hits",       "l1_misses",    "l2_hits",      "l2_misses",
        "l1_entries", "l1_bytes",     "l1_max_memory", "l1_evictions", "redis_errors",
    };
    char *json = CLI_EXPECT(0, "stats", "--json");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int64_t v = json_stat(json, names[i]);
        cr_assert_geq(v, 0, "%s = %lld", names[i], (long long)v);
    }
    cr_assert_eq(json_stat(json, "l1_max_memory"), 64 * 1024 * 1024);
    cr_assert_eq(json_stat(json, "l1_entries"), 0);
    free(json);
}

Test(cli, get_of_a_redis_key_is_an_l2_hit_then_one_l1_hit)
{
    char *ok = h_redis_cmd(&fx.redis, "SET", H_DATA_KEY(&fx.redis, "ns", "k"), "v", NULL);
    cr_assert_str_eq(ok, "OK");
    free(ok);
    int64_t l2_hits = stat_now("l2_hits"), l1_hits = stat_now("l1_hits");
    char *v = CLI_EXPECT(0, "get", "ns", "k");
    cr_assert_str_eq(v, "v");
    free(v);
    cr_assert_eq(stat_now("l2_hits"), l2_hits + 1);
    cr_assert_eq(stat_now("l1_hits"), l1_hits);
    v = CLI_EXPECT(0, "get", "ns", "k");
    cr_assert_str_eq(v, "v");
    free(v);
    cr_assert_eq(stat_now("l1_hits"), l1_hits + 1);
    cr_assert_eq(stat_now("l2_hits"), l2_hits + 1);
}

/* Runs python3 `script` over `stats --json`; asserts it exits 0. */
static void json_check(const char *script)
{
    char *json = CLI_EXPECT(0, "stats", "--json");
    char *argv[] = {"python3", "-c", (char *)script, NULL};
    char *out, *err;
    int code = run(argv, NULL, json, &out, &err);
    cr_assert_eq(code, 0, "%s\noutput: %s", err, json);
    free(json), free(out), free(err);
}

/* One hit (the Set keeps the value in L1) and one miss in namespace users. */
static void hit_and_miss(void)
{
    free(CLI_EXPECT(0, "set", "users", "1", "alice"));
    free(CLI_EXPECT(0, "get", "users", "1"));
    free(CLI_EXPECT(1, "get", "users", "2"));
}

Test(cli, stats_shows_the_hit_ratios_and_the_namespaces_table)
{
    hit_and_miss();
    char *text = CLI_EXPECT(0, "stats");
    cr_expect(strstr(text, "\nl1 hit ratio               50.0%") != NULL, "%s", text);
    cr_expect(strstr(text, "\nhit ratio                  50.0%") != NULL, "%s", text);
    const char *row = strstr(text, "\nusers ");
    cr_assert_not_null(row, "no row for users: %s", text);
    int reads = -1, near_hits = -1, hits = -1, misses = -1;
    double pct = -1;
    cr_expect_eq(sscanf(row, "\nusers %d %d %d %d %lf%%", &reads, &near_hits, &hits, &misses, &pct),
                 5, "%s", row);
    cr_expect(reads == 2 && near_hits == 0 && hits == 1 && misses == 1 && pct == 50.0,
              "users: %d %d %d %d %g", reads, near_hits, hits, misses, pct);
    cr_expect(strstr(text, "\n(other) ") != NULL, "the rest's row: %s", text);
    free(text);
}

Test(cli, stats_json_carries_the_ratios_and_the_namespaces)
{
    hit_and_miss();
    json_check("import json, sys\n"
               "d = json.load(sys.stdin)\n"
               "assert d['l1_hit_ratio'] == 0.5 and d['hit_ratio'] == 0.5, d\n"
               "ns = d['namespaces']\n"
               "assert ns[0] == {'ns': 'users', 'other': False, 'hits': 1, 'misses': 1,\n"
               "                 'near_hits': 0, 'near_misses': 0, 'acl_denied': 0}, ns\n"
               "assert ns[-1]['other'] is True and ns[-1]['ns'] == '', ns\n");
}

Test(cli, stats_watch_prints_a_header_then_count_lines_of_rates)
{
    char *text = CLI_EXPECT(0, "stats", "--watch", "200ms", "--count", "3");
    int lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, 4, "a header and three lines: %s", text);
    cr_expect(strncmp(text, "    gets/s     sets/s", 21) == 0, "%s", text);
    const char *last = strrchr(text, '\n');
    while (last > text && last[-1] != '\n')
        last--;
    double gets = -1, sets = -1;
    cr_expect_eq(sscanf(last, "%lf %lf", &gets, &sets), 2, "%s", last);
    cr_expect(gets == 0 && sets == 0, "an idle daemon: %s", last);
    cr_expect(strstr(last, " yes\n") != NULL, "L1 serving: %s", last);
    free(text);
}

Test(cli, ping_prints_pong)
{
    char *out = CLI_EXPECT(0, "ping");
    cr_assert_str_eq(out, "PONG (redis up, nearcached " NC_VERSION ", protocol 1)\n");
    free(out);
}

Test(cli, malformed_command_lines_exit_2_with_usage_on_stderr)
{
    static const char *const cases[][5] = {
        {NULL},
        {"frobnicate", NULL},
        {"get", "ns", NULL},
        {"set", "ns", "k", NULL},
        {"--bogus", "x", "ping", NULL},
        {"stats", "--yaml", NULL},
        {"stats", "--count", "2", NULL},
        {"stats", "--watch", "0", NULL},
        {"stats", "--watch", "1s", "--json", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[8] = {cli_path(), "-s", fx.node[0].url};
        int n = 3;
        for (int k = 0; cases[i][k] != NULL; k++)
            argv[n++] = (char *)cases[i][k];
        argv[n] = NULL;
        char *out, *err;
        int code = run(argv, NULL, NULL, &out, &err);
        cr_assert_eq(code, 2, "case %zu (%s ...): exit %d; stderr: %s", i,
                     cases[i][0] ? cases[i][0] : "(none)", code, err);
        cr_assert(strstr(err, "usage:") != NULL, "case %zu: stderr: %s", i, err);
        cr_assert_str_empty(out, "case %zu: stdout: %s", i, out);
        free(out), free(err);
    }
}

Test(cli, help_exits_0_and_lists_every_command)
{
    char *argv[] = {cli_path(), "--help", NULL};
    char *out, *err;
    int code = run(argv, NULL, NULL, &out, &err);
    cr_assert_eq(code, 0, "exit %d: %s", code, err);
    static const char *const cmds[] = {"get NS KEY", "set NS KEY VALUE", "del NS KEY", "ping",
                                       "stats"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        cr_assert(strstr(out, cmds[i]) != NULL, "--help lacks \"%s\":\n%s", cmds[i], out);
    free(out), free(err);
}

Test(cli, unreachable_daemon_exits_3_quickly_with_a_message)
{
    h_daemon nowhere = {.url = NOWHERE};
    char *out = NULL, *err = NULL;
    size_t outlen = 0;
    int64_t t0 = h_now_ms();
    int code = h_cli(&nowhere, NULL, 0, &out, &outlen, &err, "-t", "300ms", "get", "ns", "k", NULL);
    int64_t took = h_now_ms() - t0;
    cr_assert_eq(code, 3, "exit %d: %s", code, err);
    cr_assert(strstr(err, NOWHERE) != NULL, "stderr does not name the URL: %s", err);
    cr_assert_eq(outlen, 0);
    cr_assert_lt(took, 2000, "took %lld ms", (long long)took);
    free(out), free(err);
}

/* Bug: the CLI connects before it checks a command's arguments, so with no
 * daemon a malformed command line exits 3 (unreachable), not 2 (usage). */
Test(cli, usage_errors_are_reported_before_connecting)
{
    h_daemon nowhere = {.url = NOWHERE};
    char *out = NULL, *err = NULL;
    size_t outlen = 0;
    int code = h_cli(&nowhere, NULL, 0, &out, &outlen, &err, "get", "ns", NULL);
    cr_assert_eq(code, 2, "exit %d: %s", code, err);
    free(out), free(err);
}

/* Bug: nc_open() maps nng's NNG_EINVAL (a URL without "://") to
 * NC_ECONNECT, so `-s bogus` exits 3 while `-s foo://x` exits 2. */
Test(cli, malformed_socket_url_is_a_usage_error)
{
    static const char *const urls[] = {"foo://x", "ipc://", "bogus"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        h_daemon bad = {.url = ""};
        snprintf(bad.url, sizeof bad.url, "%s", urls[i]);
        char *out = NULL, *err = NULL;
        size_t outlen = 0;
        int code = h_cli(&bad, NULL, 0, &out, &outlen, &err, "ping", NULL);
        cr_assert_eq(code, 2, "-s %s: exit %d; stderr: %s", urls[i], code, err);
        cr_assert(strstr(err, urls[i]) != NULL, "-s %s: stderr: %s", urls[i], err);
        free(out), free(err);
    }
}

Test(cli, empty_key_is_refused_as_invalid_argument)
{
    char *argv[] = {cli_path(), "-s", fx.node[0].url, "get", "ns", "", NULL};
    char *out, *err;
    int code = run(argv, NULL, NULL, &out, &err);
    cr_assert_eq(code, 3, "exit %d: %s", code, err);
    cr_assert(strstr(err, "INVALID_ARGUMENT") != NULL, "stderr: %s", err);
    cr_assert_str_empty(out);
    free(out), free(err);
}

Test(cli, namespace_with_a_colon_is_refused_as_invalid_argument)
{
    char *argv[] = {cli_path(), "-s", fx.node[0].url, "set", "a:b", "k", "v", NULL};
    char *out, *err;
    int code = run(argv, NULL, NULL, &out, &err);
    cr_assert_eq(code, 3, "exit %d: %s", code, err);
    cr_assert(strstr(err, "INVALID_ARGUMENT") != NULL, "stderr: %s", err);
    free(out), free(err);
    char *keys = h_redis_cmd(&fx.redis, "DBSIZE", NULL);
    cr_assert_str_eq(keys, "0");
    free(keys);
}

Test(cli, nearcache_url_is_used_when_no_socket_is_given)
{
    free(CLI_EXPECT(0, "set", "ns", "k", "via-env"));
    char *argv[] = {cli_path(), "get", "ns", "k", NULL};
    char *out, *err;
    int code = run(argv, fx.node[0].url, NULL, &out, &err);
    cr_assert_eq(code, 0, "exit %d: %s", code, err);
    cr_assert_str_eq(out, "via-env");
    free(out), free(err);
    /* And it really is the variable that decides: pointing it elsewhere
     * makes the same command fail, naming that URL. */
    code = run(argv, NOWHERE, NULL, &out, &err);
    cr_assert_eq(code, 3, "exit %d: %s", code, err);
    cr_assert(strstr(err, NOWHERE) != NULL, "stderr: %s", err);
    free(out), free(err);
}
