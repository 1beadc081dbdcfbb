/* Tests of daemon/config.c: the documented defaults, config files (comments,
 * quotes, errors naming file, line and setting), flags and their precedence
 * over the file, Redis URLs, and the checks between settings. Config files
 * are written to mkstemp() files and removed by each test. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_util.h"
#include "keyspace.h"

#ifndef NC_VERSION
#define NC_VERSION "0.0.0"
#endif

#define ARGC(argv) ((int)(sizeof(argv) / sizeof((argv)[0])))

/* Writes text to a new temporary file; its name goes to path[32]. */
static void write_file(char *path, const char *text)
{
    strcpy(path, "/tmp/nc_config_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp failed");
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Loads text as a config file over the defaults; returns the result. */
static int load_text(config *c, const char *text, char *path, char *err, size_t errlen)
{
    write_file(path, text);
    config_defaults(c);
    return config_load_file(c, path, err, errlen);
}

static void expect_file_error(const char *text, const char *expected_after_path)
{
    config c;
    char path[32], err[512], want[600];
    cr_assert_eq(load_text(&c, text, path, err, sizeof err), -1, "accepted: %s", text);
    snprintf(want, sizeof want, "%s:%s", path, expected_after_path);
    cr_expect_str_eq(err, want);
    unlink(path);
}

static void expect_set_error(const char *name, const char *value, const char *message)
{
    config c, before;
    char err[512] = "";
    config_defaults(&c);
    before = c;
    cr_expect_eq(config_set(&c, name, value, err, sizeof err), -1, "%s = %s accepted", name, value);
    cr_expect_str_eq(err, message);
    cr_expect_eq(memcmp(&c, &before, sizeof c), 0, "%s changed on error", name);
}

Test(config, prefix_refuses_hash_tag_braces)
{
    expect_set_error("prefix", "app{1}",
                     "prefix \"app{1}\" contains '{' or '}', which would make it a Redis Cluster "
                     "hash tag of every key");
    expect_set_error("prefix", "a}", "prefix \"a}\" contains '{' or '}', which would make it a "
                                     "Redis Cluster hash tag of every key");
}

static char *usage_text(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    config_usage(f, "nearcached");
    fclose(f);
    return text;
}

/* ---- defaults and --help ------------------------------------------------ */

Test(config, defaults_are_the_documented_values)
{
    config c;
    config_defaults(&c);
    cr_expect_str_eq(c.listen, "ipc:///run/nearcache/nearcached.sock");
    cr_expect_str_eq(c.redis, "redis://127.0.0.1:6379");
    cr_expect_str_eq(c.prefix, "nc:v1");
    cr_expect_eq(c.l1_max_memory, 64ULL << 20);
    cr_expect_eq(c.l1_max_ttl_ms, 60000);
    cr_expect_eq(c.default_ttl_ms, 3600000);
    cr_expect_eq(c.max_ttl_ms, 30LL * 86400000);
    cr_expect_eq(c.max_key_size, 1024);
    cr_expect_eq(c.max_namespace_size, 128);
    cr_expect_eq(c.max_value_size, 1ULL << 20);
    cr_expect_eq(c.request_timeout_ms, 1000);
    cr_expect_eq(c.redis_timeout_ms, 500);
    cr_expect_eq(c.redis_connections, 4);
    cr_expect_eq(c.contexts, 256);
    cr_expect_eq(c.shutdown_timeout_ms, 5000);
    cr_expect_eq(c.log_level, CONFIG_LOG_INFO);
}

Test(config, defaults_pass_the_checks)
{
    config c;
    char err[512] = "";
    config_defaults(&c);
    cr_expect_eq(config_check(&c, err, sizeof err), 0, "%s", err);
}

/* Applies every "--flag ... (default: X)" of --help to a zeroed config:
 * the result must equal config_defaults(), so --help tells the truth. */
Test(config, help_shows_every_setting_with_its_true_default)
{
    char *text = usage_text();
    config want, got;
    char err[512] = "", flag[64], def[256];
    int n = 0;
    config_defaults(&want);
    memset(&got, 0, sizeof got);
    for (const char *p = strstr(text, "\n  --"); p != NULL; p = strstr(p + 1, "\n  --")) {
        if (sscanf(p, "\n  --%63s", flag) != 1 || strcmp(flag, "config") == 0 ||
            strcmp(flag, "version") == 0)
            continue;
        const char *d = strstr(p, "(default: "), *next = strstr(p + 1, "\n  --");
        for (char *q = flag; *q; q++)
            *q = *q == '-' ? '_' : *q;
        if (d == NULL || (next != NULL && d > next)) { /* no default shown: it is empty */
            cr_expect(strcmp(flag, "redis_password_file") == 0 || strcmp(flag, "near_ring") == 0 ||
                          strcmp(flag, "metrics_listen") == 0 ||
                          strcmp(flag, "sentinel_password") == 0 || strcmp(flag, "acl") == 0 ||
                          strncmp(flag, "redis_tls_", 10) == 0,
                      "no default for --%s", flag);
            cr_expect_eq(config_set(&got, flag, "", err, sizeof err), 0, "%s: %s", flag, err);
            n++;
            continue;
        }
        size_t len = strcspn(d + 10, ")");
        snprintf(def, sizeof def, "%.*s", (int)len, d + 10);
        cr_expect_eq(config_set(&got, flag, def, err, sizeof err), 0, "%s: %s", flag, err);
        n++;
    }
    cr_expect_eq(n, 45, "help lists %d settings", n);
    cr_expect_eq(memcmp(&want, &got, sizeof want), 0, "help defaults differ from the defaults");
    cr_expect_not_null(strstr(text, "--config FILE"));
    cr_expect_not_null(strstr(text, "--help"));
    cr_expect_not_null(strstr(text, "--version"));
    cr_expect_not_null(strstr(text, "--l1-max-memory SIZE"));
    free(text);
}

Test(config, help_lines_fit_in_100_columns)
{
    char *text = usage_text();
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        cr_expect_leq(strlen(line), 100, "too long: %s", line);
    free(text);
}

Test(config, help_and_version_print_and_return_1)
{
    char *argv_h[] = {"nearcached", "--l1-max-memory", "junk", "--help"};
    char *argv_v[] = {"nearcached", "--version"};
    char *argv_s[] = {"nearcached", "-h"};
    char *text = NULL, err[512] = "";
    size_t len = 0;
    config c, before;
    config_defaults(&c);
    before = c;
    FILE *f = open_memstream(&text, &len);
    cr_expect_eq(config_parse_args(&c, ARGC(argv_h), argv_h, f, err, sizeof err), 1);
    cr_expect_eq(config_parse_args(&c, ARGC(argv_s), argv_s, f, err, sizeof err), 1);
    fflush(f);
    cr_expect_not_null(strstr(text, "Usage: nearcached"));
    size_t help_len = len;
    cr_expect_eq(config_parse_args(&c, ARGC(argv_v), argv_v, f, err, sizeof err), 1);
    fclose(f);
    cr_expect_str_eq(text + help_len, "nearcached " NC_VERSION "\n");
    cr_expect_eq(memcmp(&c, &before, sizeof c), 0);
    free(text);
}

Test(config, log_level_names)
{
    cr_expect_str_eq(config_log_level_name(CONFIG_LOG_ERROR), "error");
    cr_expect_str_eq(config_log_level_name(CONFIG_LOG_WARN), "warn");
    cr_expect_str_eq(config_log_level_name(CONFIG_LOG_INFO), "info");
    cr_expect_str_eq(config_log_level_name(CONFIG_LOG_DEBUG), "debug");
    cr_expect_str_eq(config_log_level_name((enum config_log_level)42), "unknown");
}

/* ---- config_set --------------------------------------------------------- */

Test(config, set_parses_every_kind)
{
    config c;
    char err[512] = "";
    config_defaults(&c);
    cr_assert_eq(config_set(&c, "l1_max_memory", "1.5GB", err, sizeof err), 0, "%s", err);
    cr_assert_eq(config_set(&c, "redis_timeout", "250ms", err, sizeof err), 0, "%s", err);
    cr_assert_eq(config_set(&c, "contexts", " 1024 ", err, sizeof err), 0, "%s", err);
    cr_assert_eq(config_set(&c, "log_level", "DEBUG", err, sizeof err), 0, "%s", err);
    cr_assert_eq(config_set(&c, "prefix", "app:v2", err, sizeof err), 0, "%s", err);
    cr_assert_eq(config_set(&c, "listen", "tcp://127.0.0.1:7000", err, sizeof err), 0, "%s", err);
    cr_expect_eq(c.l1_max_memory, 3ULL << 29);
    cr_expect_eq(c.redis_timeout_ms, 250);
    cr_expect_eq(c.contexts, 1024);
    cr_expect_eq(c.log_level, CONFIG_LOG_DEBUG);
    cr_expect_str_eq(c.prefix, "app:v2");
    cr_expect_str_eq(c.listen, "tcp://127.0.0.1:7000");
}

Test(config, set_names_a_bad_size_and_its_value)
{
    expect_set_error("l1_max_memory", "64XB",
                     "invalid size \"64XB\" (expected a number with B, KB, MB, GB or TB)");
    expect_set_error("max_value_size", "-1",
                     "invalid size \"-1\" (expected a number with B, KB, "
                     "MB, GB or TB)");
}

Test(config, set_names_a_bad_duration_and_its_value)
{
    expect_set_error("max_ttl", "10 parsecs",
                     "invalid duration \"10 parsecs\" (expected a number with ms, s, m, h or d)");
}

Test(config, set_refuses_zero_sizes_and_durations)
{
    expect_set_error("max_key_size", "0", "size \"0\" must be greater than 0");
    expect_set_error("request_timeout", "0s", "duration \"0s\" must be greater than 0");
    expect_set_error("redis_timeout", "0.1ms", "duration \"0.1ms\" must be greater than 0");
}

Test(config, set_enforces_size_bounds)
{
    expect_set_error("l1_max_memory", "32KB", "size \"32KB\" is below the minimum 64KB");
    expect_set_error("max_value_size", "1GB", "size \"1GB\" is above the maximum 512MB");
    config c;
    char err[512];
    config_defaults(&c);
    cr_expect_eq(config_set(&c, "l1_max_memory", "64KB", err, sizeof err), 0);
    cr_expect_eq(config_set(&c, "max_value_size", "512MB", err, sizeof err), 0);
}

Test(config, set_enforces_count_bounds)
{
    expect_set_error("redis_connections", "0", "number \"0\" must be greater than 0");
    expect_set_error("redis_connections", "65", "number \"65\" is out of range (1..64)");
    expect_set_error("contexts", "15", "number \"15\" is out of range (16..65536)");
    expect_set_error("contexts", "65537", "number \"65537\" is out of range (16..65536)");
    expect_set_error("contexts", "1k", "invalid number \"1k\" (expected a whole number)");
    expect_set_error("contexts", "-20", "invalid number \"-20\" (expected a whole number)");
    expect_set_error("contexts", "99999999999999999999999",
                     "invalid number \"99999999999999999999999\" (expected a whole number)");
}

Test(config, set_refuses_unknown_log_levels)
{
    expect_set_error("log_level", "loud",
                     "invalid log level \"loud\" (expected error, warn, info or debug)");
}

Test(config, set_refuses_unknown_settings)
{
    expect_set_error("l1-max-memory", "1MB", "unknown setting \"l1-max-memory\"");
}

Test(config, set_refuses_bad_prefixes)
{
    char long_prefix[102];
    memset(long_prefix, 'p', 101);
    long_prefix[101] = '\0';
    expect_set_error("prefix", "", "empty prefix");
    expect_set_error("prefix", "nc v1", "prefix \"nc v1\" contains a space or control character");
    config c;
    char err[512] = "";
    config_defaults(&c);
    cr_expect_eq(config_set(&c, "prefix", long_prefix, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "longer than 100 bytes"), "%s", err);
    long_prefix[100] = '\0';
    cr_expect_eq(config_set(&c, "prefix", long_prefix, err, sizeof err), 0, "%s", err);
}

Test(config, set_refuses_bad_listen_urls)
{
    expect_set_error("listen", "/run/nc.sock",
                     "invalid listen URL \"/run/nc.sock\" (expected ipc://PATH, tcp://HOST:PORT "
                     "or inproc://NAME)");
    expect_set_error("listen", "ipc://", "listen URL \"ipc://\" has nothing after ipc://");
    config c;
    char err[512] = "";
    config_defaults(&c);
    cr_expect_eq(config_set(&c, "listen", "inproc://test", err, sizeof err), 0, "%s", err);
}

Test(config, metrics_listen_takes_host_and_port_or_nothing)
{
    const char *bad[] = {"9464",
                         ":9464",
                         "127.0.0.1:",
                         "127.0.0.1:0",
                         "127.0.0.1:65536",
                         "127.0.0.1:x",
                         "http://127.0.0.1:9464"};
    char want[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(want, sizeof want,
                 "invalid metrics_listen \"%s\" (expected HOST:PORT, e.g. 127.0.0.1:9464)", bad[i]);
        expect_set_error("metrics_listen", bad[i], want);
    }
    const char *good[] = {"127.0.0.1:9464", "[::1]:9464", "localhost:1", ""};
    config c;
    char err[512] = "";
    config_defaults(&c);
    cr_expect_str_empty(c.metrics_listen, "off by default");
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect_eq(config_set(&c, "metrics_listen", good[i], err, sizeof err), 0, "%s", err);
}

Test(config, set_says_when_a_string_does_not_fit_its_buffer)
{
    char url[600] = "tcp://";
    memset(url + 6, 'h', sizeof url - 7);
    url[sizeof url - 1] = '\0';
    expect_set_error("listen", url, "value is too long (599 bytes; the limit is 511)");
}

Test(config, set_checks_the_redis_url)
{
    expect_set_error("redis", "http://x",
                     "invalid Redis URL \"http://x\" (expected "
                     "redis[s]://[[user]:password@]host[:port][/db], unix:///path[?db=N], "
                     "sentinel[s]://[[user]:password@]host[:port][,host[:port]...]/master[/db] or "
                     "cluster[s]://[[user]:password@]host[:port][,host[:port]...])");
}

/* ---- config files ------------------------------------------------------- */

Test(config, file_with_comments_blank_lines_quotes_and_white_space)
{
    const char *text = "# nearcached test config\n"
                       "\n"
                       "   # indented comment\n"
                       "l1_max_memory = 128MB\n"
                       "\tmax_ttl=2d   \n"
                       "prefix = \"app:v3\"\n"
                       "redis   =   \"redis://:s3cret@cache.local:6380/2\"\n"
                       "log_level = warn\r\n"
                       "contexts = 512";
    config c;
    char path[32], err[512] = "";
    cr_assert_eq(load_text(&c, text, path, err, sizeof err), 0, "%s", err);
    cr_expect_eq(c.l1_max_memory, 128ULL << 20);
    cr_expect_eq(c.max_ttl_ms, 2LL * 86400000);
    cr_expect_str_eq(c.prefix, "app:v3");
    cr_expect_str_eq(c.redis, "redis://:s3cret@cache.local:6380/2");
    cr_expect_eq(c.log_level, CONFIG_LOG_WARN);
    cr_expect_eq(c.contexts, 512);
    cr_expect_eq(c.default_ttl_ms, 3600000, "unset settings keep their defaults");
    unlink(path);
}

Test(config, hash_inside_a_value_is_not_a_comment)
{
    config c;
    char path[32], err[512] = "";
    cr_assert_eq(load_text(&c, "redis = redis://:pa#ss@h:1\n", path, err, sizeof err), 0, "%s",
                 err);
    cr_expect_str_eq(c.redis, "redis://:pa#ss@h:1");
    unlink(path);
}

Test(config, trailing_comment_error_explains_comment_rule)
{
    expect_file_error("l1_max_memory = 64MB # per host\n",
                      "1: l1_max_memory: invalid size \"64MB # per host\" (expected a number with "
                      "B, KB, MB, GB or TB) ('#' starts a comment only at line start)");
}

Test(config, later_lines_override_earlier_ones)
{
    config c;
    char path[32], err[512] = "";
    cr_assert_eq(load_text(&c, "max_ttl = 1d\nmax_ttl = 3d\n", path, err, sizeof err), 0, "%s",
                 err);
    cr_expect_eq(c.max_ttl_ms, 3LL * 86400000);
    unlink(path);
}

Test(config, file_error_names_file_line_and_setting)
{
    expect_file_error("# comment\n\nl1_max_memory = 64MB\nmax_ttl = 10 parsecs\n",
                      "4: max_ttl: invalid duration \"10 parsecs\" (expected a number with ms, s, "
                      "m, h or d)");
    expect_file_error("\n\nl1_max_memory = 64XB\n", "3: l1_max_memory: invalid size \"64XB\" "
                                                    "(expected a number with B, KB, MB, GB or TB)");
    expect_file_error("contexts = 8\n", "1: contexts: number \"8\" is out of range (16..65536)");
}

Test(config, file_error_for_unknown_setting)
{
    expect_file_error("prefix = a\nfoo = bar\n", "2: unknown setting \"foo\"");
    expect_file_error("l1-max-memory = 1MB\n",
                      "1: unknown setting \"l1-max-memory\" (did you mean l1_max_memory?)");
}

Test(config, file_error_for_missing_equals_sign)
{
    expect_file_error("\nredis redis://h\n", "2: redis: missing '=' (expected NAME = VALUE)");
}

Test(config, file_error_for_empty_value_and_name)
{
    expect_file_error("prefix =   \n", "1: prefix: empty value");
    expect_file_error(" = 5\n", "1: missing setting name before '='");
}

Test(config, file_error_for_unclosed_quote)
{
    expect_file_error("prefix = \"abc\n", "1: prefix: missing closing '\"'");
    expect_file_error("prefix = \"\n", "1: prefix: missing closing '\"'");
}

Test(config, quoted_empty_value_reaches_the_setting_check)
{
    expect_file_error("prefix = \"\"\n", "1: prefix: empty prefix");
}

Test(config, file_error_leaves_config_unchanged)
{
    config c, before;
    char path[32], err[512];
    write_file(path, "max_ttl = 2d\nbogus = 1\n");
    config_defaults(&c);
    before = c;
    cr_expect_eq(config_load_file(&c, path, err, sizeof err), -1);
    cr_expect_eq(memcmp(&c, &before, sizeof c), 0, "line 1 was applied before the error");
    unlink(path);
}

Test(config, missing_file_says_cannot_open)
{
    config c;
    char err[512];
    config_defaults(&c);
    cr_expect_eq(config_load_file(&c, "/nonexistent/nc.conf", err, sizeof err), -1);
    cr_expect_str_eq(err, "/nonexistent/nc.conf: cannot open: No such file or directory");
}

Test(config, directory_instead_of_file_is_an_error)
{
    config c;
    char err[512] = "";
    config_defaults(&c);
    cr_expect_eq(config_load_file(&c, "/tmp", err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "/tmp: cannot"), "%s", err);
}

/* ---- flags -------------------------------------------------------------- */

Test(config, flags_override_the_file_whatever_the_order)
{
    config c;
    char path[32], err[512] = "";
    write_file(path, "l1_max_memory = 32MB\nmax_ttl = 2d\n");
    char *before[] = {"nearcached", "--l1-max-memory", "16MB", "--config", path};
    char *after[] = {"nearcached", "--config", path, "--l1-max-memory", "16MB"};
    config_defaults(&c);
    cr_assert_eq(config_parse_args(&c, ARGC(before), before, stdout, err, sizeof err), 0, "%s",
                 err);
    cr_expect_eq(c.l1_max_memory, 16ULL << 20);
    cr_expect_eq(c.max_ttl_ms, 2LL * 86400000, "the file applies where no flag overrides it");
    config_defaults(&c);
    cr_assert_eq(config_parse_args(&c, ARGC(after), after, stdout, err, sizeof err), 0, "%s", err);
    cr_expect_eq(c.l1_max_memory, 16ULL << 20);
    cr_expect_eq(c.max_ttl_ms, 2LL * 86400000);
    unlink(path);
}

Test(config, flags_take_the_equals_form)
{
    config c;
    char err[512] = "";
    char *argv[] = {"nearcached",
                    "--l1-max-memory=64KB",
                    "--redis=redis://[::1]:7000/3",
                    "--log-level=debug",
                    "--prefix",
                    "x:y"};
    config_defaults(&c);
    cr_assert_eq(config_parse_args(&c, ARGC(argv), argv, stdout, err, sizeof err), 0, "%s", err);
    cr_expect_eq(c.l1_max_memory, 64 * 1024);
    cr_expect_str_eq(c.redis, "redis://[::1]:7000/3");
    cr_expect_eq(c.log_level, CONFIG_LOG_DEBUG);
    cr_expect_str_eq(c.prefix, "x:y");
}

Test(config, config_file_given_with_equals)
{
    config c;
    char path[32], arg[48], err[512] = "";
    write_file(path, "shutdown_timeout = 30s\n");
    snprintf(arg, sizeof arg, "--config=%s", path);
    char *argv[] = {"nearcached", arg};
    config_defaults(&c);
    cr_assert_eq(config_parse_args(&c, ARGC(argv), argv, stdout, err, sizeof err), 0, "%s", err);
    cr_expect_eq(c.shutdown_timeout_ms, 30000);
    unlink(path);
}

static void expect_args_error(int argc, char **argv, const char *message)
{
    config c, before;
    char err[512] = "";
    config_defaults(&c);
    before = c;
    cr_expect_eq(config_parse_args(&c, argc, argv, stdout, err, sizeof err), -1);
    cr_expect_str_eq(err, message);
    cr_expect_eq(memcmp(&c, &before, sizeof c), 0, "config changed on error");
}

Test(config, flag_error_names_the_flag_and_value)
{
    char *argv[] = {"nearcached", "--max-ttl", "2d", "--l1-max-memory", "64XB"};
    expect_args_error(ARGC(argv), argv,
                      "--l1-max-memory: invalid size \"64XB\" (expected a number with B, KB, MB, "
                      "GB or TB)");
    char *eq[] = {"nearcached", "--contexts=3"};
    expect_args_error(ARGC(eq), eq, "--contexts: number \"3\" is out of range (16..65536)");
}

Test(config, unknown_option_points_to_help)
{
    char *argv[] = {"nearcached", "--foo", "1"};
    expect_args_error(ARGC(argv), argv, "unknown option --foo (see --help)");
    char *eq[] = {"nearcached", "--foo=secret"};
    expect_args_error(ARGC(eq), eq, "unknown option --foo (see --help)");
    char *underscore[] = {"nearcached", "--l1_max_memory", "1MB"};
    expect_args_error(ARGC(underscore), underscore, "unknown option --l1_max_memory (see --help)");
    char *single[] = {"nearcached", "-x"};
    expect_args_error(ARGC(single), single, "unknown option -x (see --help)");
}

Test(config, positional_argument_is_an_error)
{
    char *argv[] = {"nearcached", "extra"};
    expect_args_error(ARGC(argv), argv, "unexpected argument \"extra\" (see --help)");
}

Test(config, missing_flag_value_is_an_error)
{
    char *at_end[] = {"nearcached", "--max-ttl"};
    expect_args_error(ARGC(at_end), at_end, "--max-ttl: missing value");
    char *before_flag[] = {"nearcached", "--prefix", "--max-ttl", "1d"};
    expect_args_error(ARGC(before_flag), before_flag, "--prefix: missing value");
    char *config_at_end[] = {"nearcached", "--config"};
    expect_args_error(ARGC(config_at_end), config_at_end, "--config: missing value");
}

Test(config, config_file_errors_surface_through_args)
{
    char *argv[] = {"nearcached", "--config", "/nonexistent/nc.conf"};
    expect_args_error(ARGC(argv), argv,
                      "/nonexistent/nc.conf: cannot open: No such file or directory");
    char *twice[] = {"nearcached", "--config", "a", "--config", "b"};
    expect_args_error(ARGC(twice), twice, "--config given more than once");
    char *version_value[] = {"nearcached", "--version=2"};
    expect_args_error(ARGC(version_value), version_value, "--version takes no value");
}

Test(config, args_check_settings_against_each_other)
{
    char *argv[] = {"nearcached", "--default-ttl", "2h", "--max-ttl", "1h"};
    expect_args_error(ARGC(argv), argv, "default_ttl (2h) is longer than max_ttl (1h)");
}

Test(config, no_arguments_keep_the_defaults)
{
    char *argv[] = {"nearcached"};
    config c, want;
    char err[512] = "";
    config_defaults(&c);
    want = c;
    cr_expect_eq(config_parse_args(&c, ARGC(argv), argv, stdout, err, sizeof err), 0, "%s", err);
    cr_expect_eq(memcmp(&c, &want, sizeof c), 0);
}

/* ---- config_check ------------------------------------------------------- */

static void expect_check_error(config *c, const char *message)
{
    char err[512] = "";
    cr_expect_eq(config_check(c, err, sizeof err), -1);
    cr_expect_str_eq(err, message);
}

Test(config, check_default_ttl_within_max_ttl)
{
    config c;
    config_defaults(&c);
    c.default_ttl_ms = 31LL * 86400000;
    expect_check_error(&c, "default_ttl (31d) is longer than max_ttl (30d)");
    c.default_ttl_ms = c.max_ttl_ms;
    cr_expect_eq(config_check(&c, NULL, 0), 0);
}

Test(config, check_allows_l1_max_ttl_above_max_ttl)
{
    config c;
    char err[512] = "";
    config_defaults(&c);
    c.max_ttl_ms = 2 * 3600000;
    c.default_ttl_ms = 3600000;
    c.l1_max_ttl_ms = 3 * 3600000;
    cr_expect_eq(config_check(&c, err, sizeof err), 0, "%s", err);
}

Test(config, check_contexts_exceed_redis_connections_plus_16)
{
    config c;
    config_defaults(&c);
    c.redis_connections = 64;
    c.contexts = 80;
    expect_check_error(&c, "contexts (80) must be greater than redis_connections + 16 (64 + 16)");
    c.contexts = 81;
    cr_expect_eq(config_check(&c, NULL, 0), 0);
    c.redis_connections = UINT64_MAX;
    c.contexts = 16;
    cr_expect_eq(config_check(&c, NULL, 0), -1, "no wrap-around in redis_connections + 16");
}

Test(config, check_max_value_size_at_most_512MB)
{
    config c;
    config_defaults(&c);
    c.max_value_size = (512ULL << 20) + 1;
    expect_check_error(&c, "max_value_size (536870913B) is above 512MB, Redis's largest value");
    c.max_value_size = 1ULL << 30;
    expect_check_error(&c, "max_value_size (1GB) is above 512MB, Redis's largest value");
}

/* ---- Redis URLs --------------------------------------------------------- */

static config_redis_url url_ok(const char *url)
{
    config_redis_url u;
    char err[512] = "";
    memset(&u, 0x5a, sizeof u);
    cr_assert_eq(config_parse_redis_url(url, &u, err, sizeof err), 0, "%s: %s", url, err);
    return u;
}

static void url_bad(const char *url, const char *message)
{
    config_redis_url u;
    char err[512] = "";
    memset(&u, 0x5a, sizeof u);
    cr_expect_eq(config_parse_redis_url(url, &u, err, sizeof err), -1, "accepted %s", url);
    cr_expect_str_eq(err, message, "for %s", url);
    cr_expect_eq(u.port, 0x5a5a5a5a, "output changed on error for %s", url);
}

Test(config, redis_url_host_only_gets_default_port_and_db)
{
    config_redis_url u = url_ok("redis://127.0.0.1");
    cr_expect_eq(u.is_unix, 0);
    cr_expect_str_eq(u.host, "127.0.0.1");
    cr_expect_eq(u.port, 6379);
    cr_expect_eq(u.db, 0);
    cr_expect_str_eq(u.password, "");
    u = url_ok("redis://cache-1.example.com/");
    cr_expect_str_eq(u.host, "cache-1.example.com");
    cr_expect_eq(u.port, 6379);
}

Test(config, redis_url_with_port_and_db)
{
    config_redis_url u = url_ok("redis://10.0.0.5:6380/15");
    cr_expect_str_eq(u.host, "10.0.0.5");
    cr_expect_eq(u.port, 6380);
    cr_expect_eq(u.db, 15);
}

Test(config, redis_url_passwords)
{
    config_redis_url u = url_ok("redis://:s3cret@localhost:6379/1");
    cr_expect_str_eq(u.password, "s3cret");
    cr_expect_str_eq(u.host, "localhost");
    cr_expect_eq(u.db, 1);
    u = url_ok("redis://s3cret@localhost");
    cr_expect_str_eq(u.password, "s3cret");
    u = url_ok("redis://default:pw@localhost");
    cr_expect_str_eq(u.password, "pw");
    u = url_ok("redis://:p@ss:w/rd#1@h:7");
    cr_expect_str_eq(u.password, "p@ss:w/rd#1", "the last '@' ends the password");
    cr_expect_str_eq(u.host, "h");
    cr_expect_eq(u.port, 7);
    u = url_ok("redis://:a%40b%25c@h");
    cr_expect_str_eq(u.password, "a@b%c", "percent-escapes are decoded");
}

Test(config, redis_url_reads_acl_user_names)
{
    config_redis_url u = url_ok("redis://alice:pw@h");
    cr_expect_str_eq(u.user, "alice");
    cr_expect_str_eq(u.password, "pw");
    u = url_ok("sentinels://bob:s%40cret@h1,h2/m");
    cr_expect_str_eq(u.user, "bob");
    cr_expect_str_eq(u.password, "s@cret");
    u = url_ok("redis://default:pw@h");
    cr_expect_str_eq(u.user, "", "default is the bare AUTH password");
    url_bad("redis://al ice:pw@h", "invalid Redis user name \"al ice\" (printable, no spaces or '%')");
}

Test(config, tls_schemes_ask_for_tls)
{
    config_redis_url u = url_ok("rediss://alice:pw@cache.example:6380/2");
    cr_expect(u.tls);
    cr_expect_str_eq(u.host, "cache.example");
    cr_expect_eq(u.port, 6380);
    cr_expect_eq(u.db, 2);
    u = url_ok("sentinels://h1:26380,h2/mymaster");
    cr_expect(u.tls);
    cr_expect_eq(u.nsentinels, 2);
    u = url_ok("clusters://h1:7000,h2:7001");
    cr_expect(u.tls);
    cr_expect_eq(u.nseeds, 2);
    cr_expect_not(url_ok("redis://h").tls);
    cr_expect_not(url_ok("cluster://h").tls);
}

Test(config, redis_url_refuses_bad_passwords)
{
    url_bad("redis://:@h", "empty password before '@' in the Redis URL");
    url_bad("redis://:50%@h",
            "invalid %-escape in the Redis password (write %25 for a literal '%')");
    url_bad("redis://:a%00b@h", "the Redis password contains a NUL byte");
}

Test(config, redis_url_ipv6_in_brackets)
{
    config_redis_url u = url_ok("redis://[::1]:7000/2");
    cr_expect_str_eq(u.host, "::1");
    cr_expect_eq(u.port, 7000);
    cr_expect_eq(u.db, 2);
    u = url_ok("redis://:pw@[fe80::1:2]");
    cr_expect_str_eq(u.host, "fe80::1:2");
    cr_expect_eq(u.port, 6379);
    cr_expect_str_eq(u.password, "pw");
}

Test(config, redis_url_unix_socket)
{
    config_redis_url u = url_ok("unix:///run/redis/redis.sock");
    cr_expect_eq(u.is_unix, 1);
    cr_expect_str_eq(u.host, "/run/redis/redis.sock");
    cr_expect_eq(u.db, 0);
    u = url_ok("unix:///tmp/r.sock?db=3");
    cr_expect_str_eq(u.host, "/tmp/r.sock");
    cr_expect_eq(u.db, 3);
}

Test(config, redis_url_refuses_bad_ports_and_dbs)
{
    url_bad("redis://h:0", "invalid Redis port \"0\" (expected 1..65535)");
    url_bad("redis://h:65536", "invalid Redis port \"65536\" (expected 1..65535)");
    url_bad("redis://h:abc/1", "invalid Redis port \"abc\" (expected 1..65535)");
    url_bad("redis://h:", "invalid Redis port \"\" (expected 1..65535)");
    url_bad("redis://h/16", "invalid Redis db \"16\" (expected 0..15)");
    url_bad("redis://h/-1", "invalid Redis db \"-1\" (expected 0..15)");
    url_bad("redis://h/1?timeout=5", "invalid Redis db \"1?timeout=5\" (expected 0..15)");
    url_bad("unix:///tmp/r.sock?db=x", "invalid Redis db \"x\" (expected 0..15)");
    url_bad("unix:///tmp/r.sock?password=x",
            "unsupported option \"password=x\" in the Redis URL (only db=N)");
}

Test(config, redis_url_refuses_bad_hosts)
{
    url_bad("redis://", "missing host in the Redis URL");
    url_bad("redis://:6379", "missing host in the Redis URL");
    url_bad("redis://::1:6379",
            "an IPv6 address in a Redis URL needs brackets: redis://[::1]:6379");
    url_bad("redis://[::1:6379", "missing ']' after the IPv6 address in the Redis URL");
    url_bad("redis://[]:1", "missing host in the Redis URL");
    url_bad("redis://bad host", "invalid Redis host \"bad host\"");
    url_bad("redis://[::1]x", "unexpected \"x\" after the Redis host");
    url_bad("unix://relative.sock", "a Redis unix socket needs an absolute path: unix:///path");
}

Test(config, redis_url_refuses_other_schemes)
{
    url_bad("localhost:6379",
            "invalid Redis URL \"localhost:6379\" (expected "
            "redis[s]://[[user]:password@]host[:port][/db], unix:///path[?db=N], "
            "sentinel[s]://[[user]:password@]host[:port][,host[:port]...]/master[/db] or "
            "cluster[s]://[[user]:password@]host[:port][,host[:port]...])");
}

Test(config, redis_url_errors_do_not_show_the_password)
{
    url_bad("http://:hunter2@h",
            "invalid Redis URL \"http://***@h\" (expected "
            "redis[s]://[[user]:password@]host[:port][/db], unix:///path[?db=N], "
            "sentinel[s]://[[user]:password@]host[:port][,host[:port]...]/master[/db] or "
            "cluster[s]://[[user]:password@]host[:port][,host[:port]...])");
}

Test(config, sentinel_url_lists_sentinels_with_default_ports_then_the_master)
{
    config_redis_url u = url_ok("sentinel://h1:26380,h2,[::1]:7/mymaster");
    cr_expect_eq(u.nsentinels, 3);
    cr_expect_str_eq(u.sentinels[0].host, "h1");
    cr_expect_eq(u.sentinels[0].port, 26380);
    cr_expect_str_eq(u.sentinels[1].host, "h2");
    cr_expect_eq(u.sentinels[1].port, 26379, "a Sentinel's default port");
    cr_expect_str_eq(u.sentinels[2].host, "::1");
    cr_expect_eq(u.sentinels[2].port, 7);
    cr_expect_str_eq(u.master, "mymaster");
    cr_expect_str_eq(u.host, "", "the master's address comes from the Sentinels");
    cr_expect_eq(u.db, 0);
    cr_expect_str_eq(u.password, "");
    u = url_ok("SENTINEL://:p%40ss@10.0.0.1/cache-1.eu_w/3");
    cr_expect_eq(u.nsentinels, 1);
    cr_expect_str_eq(u.password, "p@ss", "the master's password, as for one server");
    cr_expect_str_eq(u.master, "cache-1.eu_w");
    cr_expect_eq(u.db, 3);
    u = url_ok("sentinel://h/m/");
    cr_expect_str_eq(u.master, "m");
    cr_expect_eq(u.db, 0);
    u = url_ok("redis://h");
    cr_expect_eq(u.nsentinels, 0, "one server has no Sentinels");
}

Test(config, sentinel_url_refuses_bad_forms)
{
    const char *need = "a sentinel:// URL names the master after its Sentinels: "
                       "sentinel://host:26379,host:26379/mymaster";
    url_bad("sentinel://h1:26379,h2:26379", need);
    url_bad("sentinel://h1/", need);
    url_bad("sentinel://h1//2", need);
    url_bad("sentinel://h1,/m", "missing host in the Redis URL");
    url_bad("sentinel:///m", "missing host in the Redis URL");
    url_bad("sentinel://h1,,h2/m", "missing host in the Redis URL");
    url_bad("sentinel://h1:0/m", "invalid Redis port \"0\" (expected 1..65535)");
    url_bad("sentinel://h1:x,h2/m", "invalid Redis port \"x\" (expected 1..65535)");
    url_bad("sentinel://::1,h2/m",
            "an IPv6 address in a Redis URL needs brackets: redis://[::1]:6379");
    url_bad("sentinel://h1/my master", "invalid Sentinel master name \"my master\" (letters, "
                                       "digits, '-', '.' and '_')");
    url_bad("sentinel://h1/m/16", "invalid Redis db \"16\" (expected 0..15)");
    url_bad("sentinel://h1/m/1/x", "invalid Redis db \"1/x\" (expected 0..15)");
    url_bad("sentinel://a,b,c,d,e,f,g,h,i/m", "more than 8 Sentinels in the Redis URL");
    char longname[200];
    memset(longname, 'n', sizeof longname);
    snprintf(longname, sizeof longname, "sentinel://h/%0150d", 0);
    url_bad(longname, "the Sentinel master name is longer than 127 bytes");
}

Test(config, sentinel_password_needs_a_sentinel_url)
{
    config c;
    config_redis_url u;
    char err[256] = "";
    config_defaults(&c);
    cr_assert_eq(config_set(&c, "sentinel_password", "spw", err, sizeof err), 0, "%s", err);
    cr_expect_eq(config_redis(&c, &u, err, sizeof err), -1);
    cr_expect_str_eq(err, "sentinel_password is set, but the redis URL names no Sentinels "
                          "(sentinel://...)");
    cr_assert_eq(config_set(&c, "redis", "sentinel://h/m", err, sizeof err), 0, "%s", err);
    cr_expect_eq(config_redis(&c, &u, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(u.sentinel_password, "spw");
    cr_expect_str_eq(u.password, "", "the master's password is another");
}

Test(config, tls_settings_need_a_tls_url_and_go_together)
{
    config c;
    config_redis_url u;
    char err[256] = "";
    config_defaults(&c);
    cr_assert_eq(config_set(&c, "redis_tls_ca_file", "/etc/ca.pem", err, sizeof err), 0, "%s", err);
    cr_expect_eq(config_redis(&c, &u, err, sizeof err), -1);
    cr_expect_str_eq(err, "redis_tls_* settings are given, but the redis URL does not ask for TLS "
                          "(rediss://, sentinels:// or clusters://)");
    cr_assert_eq(config_set(&c, "redis", "rediss://h:6380", err, sizeof err), 0, "%s", err);
    cr_expect_eq(config_redis(&c, &u, err, sizeof err), 0, "%s", err);
    cr_expect(u.tls);
    cr_expect_eq(config_set(&c, "redis_tls_verify", "some", err, sizeof err), -1);
    cr_expect_str_eq(err, "invalid redis_tls_verify \"some\" (expected full, ca or none)");
    cr_assert_eq(config_set(&c, "redis_tls_cert_file", "/etc/c.pem", err, sizeof err), 0);
    cr_expect_eq(config_check(&c, err, sizeof err), -1);
    cr_expect_str_eq(err, "redis_tls_cert_file and redis_tls_key_file go together: give both or "
                          "neither");
}

/* Splits a Markdown table row "| a | b | ..." into its first n cells
 * (trimmed, in place); returns how many it found. */
static int table_cells(char *line, char **cell, int n)
{
    int got = 0;
    char *p = strchr(line, '|');
    while (p != NULL && got < n) {
        char *end = strstr(p + 1, " |");
        if (end == NULL)
            break;
        *end = '\0';
        cell[got++] = p + 2;
        p = end + 1;
    }
    return got;
}

/* docs/configuration.md's settings table is the config table written out:
 * every setting in its order, with its flag, its default and (for sizes,
 * durations and counts) its range, so a change to one shows in the other. */
Test(config, the_configuration_docs_follow_the_settings_table)
{
    FILE *f = fopen(NC_CONFIGURATION_MD, "r");
    cr_assert_not_null(f, "cannot open %s", NC_CONFIGURATION_MD);
    char line[4096];
    size_t n = 0;
    int in_settings = 0;
    struct config_field field;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "## ", 3) == 0)
            in_settings = strcmp(line, "## Settings\n") == 0;
        if (in_settings && n > 0 && line[0] != '|')
            break; /* the end of the table */
        if (!in_settings || strncmp(line, "| `", 3) != 0)
            continue;
        char *cell[4], want[256], range[128];
        cr_assert_eq(table_cells(line, cell, 4), 4, "a short row: %s", line);
        cr_assert(config_setting_at(n, &field), "docs list %s beyond the table", cell[0]);
        snprintf(want, sizeof want, "`%s`", field.name);
        cr_expect_str_eq(cell[0], want, "docs row %zu", n);
        char flag[64];
        snprintf(flag, sizeof flag, "%s", field.name);
        for (char *p = flag; *p != '\0'; p++)
            *p = *p == '_' ? '-' : *p;
        snprintf(want, sizeof want, "`--%s %s`", flag, field.metavar);
        cr_expect_str_eq(cell[1], want, "%s: flag", field.name);
        if (field.def[0] != '\0') {
            snprintf(want, sizeof want, "`%s`", field.def);
            cr_expect(strncmp(cell[2], want, strlen(want)) == 0 &&
                          (cell[2][strlen(want)] == '\0' || cell[2][strlen(want)] == ' '),
                      "%s: the docs' default %s is not the table's %s", field.name, cell[2], want);
        } else {
            cr_expect(strncmp(cell[2], "none", 4) == 0 || strncmp(cell[2], "empty", 5) == 0,
                      "%s: no default in the table, %s in the docs", field.name, cell[2]);
        }
        config_setting_range(n, range, sizeof range);
        if (strcmp(field.name, "prefix") == 0) /* a string, checked against keyspace's limit */
            snprintf(range, sizeof range, "1–%d bytes", KS_PREFIX_MAX);
        cr_expect(strncmp(cell[3], range, strlen(range)) == 0,
                  "%s: the docs accept \"%s\"; the table: \"%s\"", field.name, cell[3], range);
        n++;
    }
    fclose(f);
    cr_expect_not(config_setting_at(n, &field), "docs list %zu settings; the table has more", n);
}

Test(config, cluster_url_lists_its_nodes_with_default_ports_and_db_0_only)
{
    config_redis_url u = url_ok("cluster://:p%40ss@h1:7000,h2,[::1]:7002");
    cr_expect_eq(u.nseeds, 3);
    cr_expect_str_eq(u.seeds[0].host, "h1");
    cr_expect_eq(u.seeds[0].port, 7000);
    cr_expect_str_eq(u.seeds[1].host, "h2");
    cr_expect_eq(u.seeds[1].port, 6379, "a node's default port");
    cr_expect_str_eq(u.seeds[2].host, "::1");
    cr_expect_eq(u.seeds[2].port, 7002);
    cr_expect_str_eq(u.host, "h1", "the first node, for messages");
    cr_expect_eq(u.port, 7000);
    cr_expect_str_eq(u.password, "p@ss", "every node's password, as for one server");
    cr_expect_eq(u.nsentinels, 0);
    cr_expect_eq(url_ok("CLUSTER://h:7000/0").db, 0);
    cr_expect_eq(url_ok("cluster://h:7000/").nseeds, 1);
    cr_expect_eq(url_ok("redis://h").nseeds, 0, "one server is no cluster");
    url_bad("cluster://h1:7000,h2:7001/3",
            "a Redis Cluster has db 0 only; drop \"/3\" from the cluster:// URL");
    url_bad("cluster://h1:7000/x", "invalid Redis db \"x\" (expected 0..15)");
    url_bad("cluster://", "missing host in the Redis URL");
    url_bad("cluster://h1,,h2", "missing host in the Redis URL");
    url_bad("cluster://h1:0", "invalid Redis port \"0\" (expected 1..65535)");
    url_bad("cluster://h1:7000/0/x", "invalid Redis db \"0/x\" (expected 0..15)");
    url_bad("cluster://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q",
            "more than 16 cluster nodes in the Redis URL");
}
