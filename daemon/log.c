/* Logging to stderr; see log.h. Each line is built in a buffer and written
 * with one write(2), so lines from different threads never interleave. In
 * JSON, the message is escaped: quotes, backslashes and control characters,
 * and every byte that is not part of valid UTF-8 becomes U+FFFD, so each
 * line is one valid JSON object whatever the message holds. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX  1024
#define LINE_MAX (MSG_MAX * 6 + 128) /* every byte escaped as \uXXXX */

static _Atomic int log_level = CONFIG_LOG_INFO;
static _Atomic int log_json = 0;

/* syslog priorities of the levels, for journald's "<N>" line prefix. */
static const char journal_prefix[][4] = {"<3>", "<4>", "<6>", "<7>"};

void log_set_level(enum config_log_level level)
{
    atomic_store(&log_level, (int)level);
}

void log_set_json(int json)
{
    atomic_store(&log_json, json != 0);
}

int log_enabled(enum config_log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (s[0] >= 0xf8 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((len == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (len == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (len == 4 && s[0] == 0xf0 && s[1] < 0x90) || (len == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate or above U+10FFFF */
    return len;
}

/* Appends msg (len bytes) to out as the inside of a JSON string. out must
 * have room for len * 6 bytes. Returns the bytes written. */
static size_t json_escape(char *out, const char *msg, size_t len)
{
    const unsigned char *s = (const unsigned char *)msg;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char ch = s[i];
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)sprintf(out + n, "\\u%04x", ch);
        } else if (ch >= 0x80) {
            size_t k = utf8_len(s + i, len - i);
            if (k == 0) {
                n += (size_t)sprintf(out + n, "\\ufffd");
                i++;
                continue;
            }
            memcpy(out + n, s + i, k);
            n += k;
            i += k;
            continue;
        } else {
            out[n++] = (char)ch;
        }
        i++;
    }
    return n;
}

/* Writes the time as 2026-12-03T08:22:13.123Z into buf. */
static size_t format_time(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return n;
}

void log_write(enum config_log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[MSG_MAX], when[40], line[LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t mlen = m < 0 ? 0 : (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1; /* truncated */
    format_time(when, sizeof when);
    size_t n = 0;
    if (getenv("JOURNAL_STREAM") != NULL) /* under systemd: journald reads the level */
        n = (size_t)snprintf(line, sizeof line, "%s", journal_prefix[level]);
    const char *name = config_log_level_name(level);
    if (atomic_load_explicit(&log_json, memory_order_relaxed)) {
        n += (size_t)snprintf(line + n, sizeof line - n,
                              "{\"time\":\"%s\",\"level\":\"%s\",\"message\":\"", when, name);
        n += json_escape(line + n, msg, mlen);
        n += (size_t)snprintf(line + n, sizeof line - n, "\"}");
    } else {
        n += (size_t)snprintf(line + n, sizeof line - n, "%s %-5s ", when, name);
        memcpy(line + n, msg, mlen);
        n += mlen;
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
