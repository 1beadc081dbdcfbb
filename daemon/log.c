/* Logging to stderr; see log.h. Each line is built in a buffer and written
 * with one write(2), so lines from different threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = CONFIG_LOG_INFO;

/* syslog priorities of the levels, for journald's "<N>" line prefix. */
static const char journal_prefix[][4] = {"<3>", "<4>", "<6>", "<7>"};

void log_set_level(enum config_log_level level)
{
    atomic_store(&log_level, (int)level);
}

int log_enabled(enum config_log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_write(enum config_log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = 0;
    if (getenv("JOURNAL_STREAM") != NULL) /* under systemd: journald reads the level */
        n = (size_t)snprintf(line, sizeof line, "%s", journal_prefix[level]);
    n += strftime(line + n, sizeof line - n, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000,
                          config_log_level_name(level));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2; /* truncated */
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
