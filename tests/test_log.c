/* Logging: the text and JSON line formats, written by log_write() into a
 * file that stands in for stderr, and a real nearcached with
 * --log-format json whose every line python3's json module must parse. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "log.h"

TestSuite(log, .timeout = 60);

/* Runs log_write(level, "%s", msg) with stderr on a temporary file and
 * returns what was written (caller frees). */
static char *capture(int json, enum config_log_level level, const char *msg)
{
    char path[] = "/tmp/nc-test-log-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    unsetenv("JOURNAL_STREAM");
    log_set_json(json);
    log_write(level, "%s", msg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    char *text = h_read_file(path, NULL);
    unlink(path);
    return text;
}

/* Asserts that line starts with a UTC time with milliseconds and returns
 * what follows it. */
static const char *after_time(const char *line)
{
    int y, mo, d, h, mi, s, ms, n = 0;
    cr_assert_eq(sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &s, &ms, &n),
                 7, "no time in [%s]", line);
    cr_assert_eq(n, 24, "time of odd length in [%s]", line);
    return line + n;
}

Test(log, text_lines_are_time_level_message)
{
    char *out = capture(0, CONFIG_LOG_WARN, "listener \"x\" restarted");
    cr_assert_str_eq(after_time(out), " warn  listener \"x\" restarted\n");
    free(out);
}

Test(log, json_lines_hold_time_level_and_the_escaped_message)
{
    char *out = capture(1, CONFIG_LOG_ERROR, "a \"quoted\" \\ path\tand\nline, caf\xc3\xa9");
    const char *head = "{\"time\":\"";
    cr_assert(strncmp(out, head, strlen(head)) == 0, "[%s]", out);
    cr_assert_str_eq(after_time(out + strlen(head)),
                     "\",\"level\":\"error\",\"message\":\"a \\\"quoted\\\" \\\\ "
                     "path\\u0009and\\u000aline, caf\xc3\xa9\"}\n");
    free(out);
}

Test(log, json_replaces_bytes_that_are_not_utf8)
{
    /* a lone continuation byte, a truncated sequence, an overlong '/' and a
     * surrogate */
    char *out = capture(1, CONFIG_LOG_INFO, "x\x80y\xe2\x82z\xc0\xafw\xed\xa0\x80!");
    const char *msg = strstr(out, "\"message\":\"");
    cr_assert_not_null(msg, "[%s]", out);
    cr_assert_str_eq(msg, "\"message\":\"x\\ufffdy\\ufffd\\ufffdz\\ufffd\\ufffdw\\ufffd\\ufffd"
                          "\\ufffd!\"}\n");
    free(out);
}

/* Checks every line of a log with python3's json module; prints the
 * messages, one a line, or fails naming the line. */
static const char check_json[] =
    "import json, sys\n"
    "for n, line in enumerate(open(sys.argv[1], encoding='utf-8'), 1):\n"
    "    o = json.loads(line)\n"
    "    assert sorted(o) == ['level', 'message', 'time'], (n, line)\n"
    "    assert o['level'] in ('error', 'warn', 'info', 'debug'), (n, line)\n"
    "    print(o['message'])\n";

Test(log, json_daemon_log_is_one_json_object_per_line)
{
    h_fleet fx;
    h_fleet_start(&fx, 1, "--log-format", "json", NULL);
    h_daemon *d = &fx.node[0];
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("ns"), NC_STR("k\"\n\x80"), NC_STR("v"), 1000, 0), NC_OK);
    kill(d->pid, SIGTERM); /* not h_daemon_stop(): the log must stay */
    int status;
    waitpid(d->pid, &status, 0);
    d->pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nearcached did not exit 0");
    char *argv[] = {"python3", "-c", (char *)check_json, d->log, NULL}, *out = NULL, *err = NULL;
    size_t len;
    int code = h_run(argv, NULL, 0, &out, &len, &err);
    cr_assert_eq(code, 0, "a line is not JSON: %s\nlog:\n%s", err, h_read_file(d->log, NULL));
    cr_assert(strstr(out, "listening on ipc://") != NULL, "messages:\n%s", out);
    cr_assert(strstr(out, "\nstopped\n") != NULL, "messages:\n%s", out);
    free(out);
    free(err);
    char *rm[] = {"rm", "-rf", d->dir, NULL};
    h_run(rm, NULL, 0, NULL, NULL, NULL);
    h_fleet_stop(&fx);
}
