/* Parsing of durations and sizes; see units.h. */
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct unit {
    const char *suffix;
    double factor;
};

static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1000},
};

static const struct unit size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1024.0},
    {"kb", 1024.0},
    {"kib", 1024.0},
    {"m", 1048576.0},
    {"mb", 1048576.0},
    {"mib", 1048576.0},
    {"g", 1073741824.0},
    {"gb", 1073741824.0},
    {"gib", 1073741824.0},
    {"t", 1099511627776.0},
    {"tb", 1099511627776.0},
    {"tib", 1099511627776.0},
};

/* Splits "12.5 ms" into a number and a unit from the table, then scales it.
 * Returns -1 on any malformed input; *out is untouched then. */
static int parse_scaled(const char *text, const struct unit *units, size_t nunits, double limit,
                        double *out)
{
    if (text == NULL)
        return -1;
    while (isspace((unsigned char)*text))
        text++;
    if (!isdigit((unsigned char)*text) && *text != '.')
        return -1; /* no sign, no "inf", no "nan" */
    /* Plain decimals only: strtod alone would also take "0x10" and "1e3". */
    size_t numlen = strspn(text, "0123456789.");
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (end == text || end != text + numlen || errno != 0)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    size_t ulen = strlen(end);
    while (ulen > 0 && isspace((unsigned char)end[ulen - 1]))
        ulen--;
    for (size_t i = 0; i < nunits; i++) {
        if (strlen(units[i].suffix) == ulen && strncasecmp(end, units[i].suffix, ulen) == 0) {
            double scaled = v * units[i].factor;
            if (!isfinite(scaled) || scaled < 0 || scaled > limit)
                return -1;
            *out = scaled;
            return 0;
        }
    }
    return -1;
}

int units_parse_duration_ms(const char *text, int64_t *out_ms)
{
    double v;
    if (parse_scaled(text, duration_units, sizeof duration_units / sizeof duration_units[0], 9.0e15,
                     &v) != 0)
        return -1;
    *out_ms = (int64_t)llround(v);
    return 0;
}

int units_parse_size(const char *text, uint64_t *out)
{
    double v;
    if (parse_scaled(text, size_units, sizeof size_units / sizeof size_units[0], 9.0e18, &v) != 0)
        return -1;
    *out = (uint64_t)llround(v);
    return 0;
}

int64_t units_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void units_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

int units_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    if (ms <= 0)
        return ETIMEDOUT;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return pthread_cond_timedwait(cv, mu, &ts);
}

int units_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
