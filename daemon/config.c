/* nearcached configuration; see config.h. One table, `settings`, names every
 * setting once (kind, field, default, help, bounds); the defaults, config_set,
 * the file parser, the flags and --help all walk it. The Redis URL is parsed
 * in config_redis.c. In a config file, '#'
 * starts a comment only as the first non-blank character of a line, so values
 * (Redis passwords, say) may contain '#'. No function keeps state between calls. */
#include "config.h"
#include "acl.h"
#include "config_util.h"
#include "keyspace.h"
#include "ring.h"
#include "secret.h"
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef NC_VERSION
#define NC_VERSION "0.0.0"
#endif

#define KiB           1024ULL
#define MiB           (1024ULL * KiB)
#define MAX_REDIS_STR (512 * MiB) /* Redis's largest string value */

enum kind { KIND_STRING, KIND_SIZE, KIND_DURATION, KIND_COUNT, KIND_LOG_LEVEL, KIND_MODE };

typedef int (*string_check_fn)(const char *value, char *err, size_t errlen);
/* Runs only for a setting given in the file or as a flag (not for its
 * default), after it is set: checks that look at the system. */
typedef int (*given_fn)(config *c, char *err, size_t errlen);

struct setting {
    const char *name;      /* name in the file; the flag is --name with '_' -> '-' */
    enum kind kind;        /* decides the field's type, checked by FIELD() */
    size_t offset;         /* of the field in struct config */
    size_t size;           /* of the field: the buffer, for strings */
    const char *def;       /* default, as text */
    const char *metavar;   /* placeholder shown by --help */
    const char *help;      /* one line for --help */
    uint64_t min, max;     /* sizes, counts, durations (ms): accepted range */
    string_check_fn check; /* strings: extra validation, or NULL */
    given_fn given;        /* or NULL */
    int live;              /* SIGHUP may change it in a running daemon */
    int repeat;            /* strings: each line adds one more, newline-separated */
};

/* Offset and size of a field, failing to compile unless it has type `type`. */
#define FIELD(f, type)                                                                             \
    .offset = offsetof(config, f) + 0 * sizeof(_Generic(((config *)0)->f, type : 1)),              \
    .size = sizeof(((config *)0)->f)
#define STRING(f) .kind = KIND_STRING, FIELD(f, char *)
#define SIZE(f)   .kind = KIND_SIZE, .metavar = "SIZE", FIELD(f, uint64_t)
#define COUNT(f)  .kind = KIND_COUNT, .metavar = "N", FIELD(f, uint64_t)
#define DURATION_FROM(f, lo)                                                                       \
    .kind = KIND_DURATION, .metavar = "DURATION", .min = (lo), .max = INT64_MAX, FIELD(f, int64_t)
#define DURATION(f) DURATION_FROM(f, 1)

static int check_listen(const char *value, char *err, size_t errlen);
static int check_redis(const char *value, char *err, size_t errlen);
static int check_prefix(const char *value, char *err, size_t errlen);
static int check_log_format(const char *value, char *err, size_t errlen);
static int check_metrics_listen(const char *value, char *err, size_t errlen);
static int check_group_name(const char *value, char *err, size_t errlen);
static int check_acl(const char *value, char *err, size_t errlen);
static int check_tls_verify(const char *value, char *err, size_t errlen);
static int given_socket_group(config *c, char *err, size_t errlen);
static int given_password_file(config *c, char *err, size_t errlen);

/* The settings, in --help order. Kept one setting per line or two: clang-format
 * would give each field its own line. */
// clang-format off
static const struct setting settings[] = {
    {.name = "listen", STRING(listen), .def = "ipc:///run/nearcache/nearcached.sock",
     .metavar = "URL", .help = "nng URL to serve on: ipc://PATH, tcp://HOST:PORT or inproc://NAME",
     .check = check_listen},
    {.name = "redis", STRING(redis), .def = "redis://127.0.0.1:6379", .metavar = "URL",
     .help = "L2: a redis[s]://, unix://, sentinel[s]:// or cluster[s]:// URL",
     .check = check_redis},
    {.name = "prefix", STRING(prefix), .def = "nc:v1", .metavar = "TEXT",
     .help = "prefix of every Redis key (a new one orphans all old keys)",
     .check = check_prefix},
    {.name = "l1_max_memory", SIZE(l1_max_memory), .def = "64MB", .min = 64 * KiB,
     .max = UINT64_MAX, .help = "memory the in-process L1 may use"},
    {.name = "l1_max_ttl", DURATION(l1_max_ttl_ms), .def = "60s",
     .help = "longest an entry stays in L1"},
    {.name = "default_ttl", DURATION(default_ttl_ms), .def = "1h",
     .help = "TTL of a Set that gives none", .live = 1},
    {.name = "max_ttl", DURATION(max_ttl_ms), .def = "30d", .help = "longest TTL a Set may ask for", .live = 1},
    {.name = "max_key_size", SIZE(max_key_size), .def = "1KB", .min = 1, .max = MAX_REDIS_STR,
     .help = "longest key accepted", .live = 1},
    {.name = "max_namespace_size", SIZE(max_namespace_size), .def = "128", .min = 1,
     .max = KS_NS_MAX, .help = "longest namespace accepted", .live = 1},
    {.name = "max_value_size", SIZE(max_value_size), .def = "1MB", .min = 1, .max = MAX_REDIS_STR,
     .help = "largest value accepted", .live = 1},
    {.name = "max_batch", COUNT(max_batch), .def = "1000", .min = 1, .max = 100000,
     .help = "most keys one MGet or MSet may name", .live = 1},
    {.name = "request_timeout", DURATION(request_timeout_ms), .def = "1s",
     .help = "budget of a request without one"},
    {.name = "redis_timeout", DURATION(redis_timeout_ms), .def = "500ms",
     .help = "Redis connect/command timeout"},
    {.name = "redis_connections", COUNT(redis_connections), .def = "4", .min = 1, .max = 64,
     .help = "Redis connections, 1 thread each"},
    {.name = "redis_lane", COUNT(redis_lane), .def = "256", .min = 0, .max = 65536,
     .help = "plain Gets pipelined on one more connection, N at most (0: off)"},
    {.name = "contexts", COUNT(contexts), .def = "256", .min = 16, .max = 65536,
     .help = "requests the server takes at once"},
    {.name = "shutdown_timeout", DURATION(shutdown_timeout_ms), .def = "5s",
     .help = "grace for requests on shutdown"},
    {.name = "heartbeat_interval", DURATION(heartbeat_interval_ms), .def = "200ms",
     .help = "how often this node proves its pub/sub path"},
    {.name = "coherence_window", DURATION(coherence_window_ms), .def = "1s",
     .help = "L1 serves only while invalidations are this fresh"},
    {.name = "inval_batch", COUNT(inval_batch), .def = "1", .min = 0, .max = 1,
     .help = "1: batch writes' invalidations; 0: each script publishes"},
    {.name = "inval_batch_delay", DURATION_FROM(inval_batch_delay_ms, 0), .def = "0",
     .help = "hold each batch this long before publishing it (for tests)"},
    {.name = "lease_ttl", DURATION(lease_ttl_ms), .def = "3s",
     .help = "how long a lease to fill a missing key lasts", .live = 1},
    {.name = "ttl_jitter", COUNT(ttl_jitter_pct), .def = "0", .min = 0, .max = 50,
     .help = "spread Set TTLs by up to +-N percent", .live = 1},
    {.name = "stale_if_error", DURATION_FROM(stale_if_error_ms, 0), .def = "0",
     .help = "serve L1 up to this stale while Redis is down (0: off)"},
    {.name = "near_ring", STRING(near_ring), .def = "", .metavar = "PATH",
     .help = "the near tiers' ring file ('': socket path + .ring; off: none)"},
    {.name = "near_ring_slots", COUNT(near_ring_slots), .def = "65536", .min = 64,
     .max = 1 << 24, .help = "slots of the ring, a power of two: a burst it holds"},
    {.name = "log_level", .kind = KIND_LOG_LEVEL, FIELD(log_level, enum config_log_level),
     .def = "info", .metavar = "LEVEL", .help = "error, warn, info or debug", .live = 1},
    {.name = "log_format", STRING(log_format), .def = "text", .metavar = "FORMAT",
     .help = "text (TIME LEVEL message) or json (one object a line)", .check = check_log_format, .live = 1},
    {.name = "socket_mode", .kind = KIND_MODE, FIELD(socket_mode, unsigned), .def = "0660",
     .metavar = "MODE", .help = "permissions of an ipc:// socket file, octal"},
    {.name = "socket_group", STRING(socket_group), .def = "nearcache", .metavar = "GROUP",
     .help = "group whose members may use an ipc:// socket (if missing: daemon's)",
     .check = check_group_name, .given = given_socket_group},
    {.name = "redis_password_file", STRING(redis_password_file), .def = "", .metavar = "FILE",
     .help = "read the Redis password from this private file",
     .given = given_password_file},
    {.name = "sentinel_password", STRING(sentinel_password), .def = "", .metavar = "PASSWORD",
     .help = "AUTH password of the Sentinels of a sentinel:// URL"},
    {.name = "redis_wait_replicas", COUNT(redis_wait_replicas), .def = "0", .min = 0, .max = 64,
     .help = "a write is OK once N replicas have it (WAIT; 0: once the master has)"},
    {.name = "redis_wait_timeout", DURATION(redis_wait_timeout_ms), .def = "100ms",
     .help = "how long a write waits for redis_wait_replicas"},
    {.name = "redis_tls_ca_file", STRING(redis_tls_ca_file), .def = "", .metavar = "FILE",
     .help = "CAs (PEM) Redis's certificate must chain to ('': the system's)",
     .live = 1},
    {.name = "redis_tls_cert_file", STRING(redis_tls_cert_file), .def = "", .metavar = "FILE",
     .help = "client certificate (PEM) for a Redis with tls-auth-clients ('': none)", .live = 1},
    {.name = "redis_tls_key_file", STRING(redis_tls_key_file), .def = "", .metavar = "FILE",
     .help = "the private key (PEM) of redis_tls_cert_file", .live = 1},
    {.name = "redis_tls_server_name", STRING(redis_tls_server_name), .def = "", .metavar = "NAME",
     .help = "name Redis's certificate must carry, sent as SNI ('': the host's)", .live = 1},
    {.name = "redis_tls_verify", STRING(redis_tls_verify), .def = "full", .metavar = "MODE",
     .help = "full (CA and name), ca (CA only) or none (nothing: warns)",
     .check = check_tls_verify, .live = 1},
    {.name = "metrics_listen", STRING(metrics_listen), .def = "", .metavar = "HOST:PORT",
     .help = "serve /metrics, /healthz and /readyz over HTTP here ('': off)",
     .check = check_metrics_listen},
    {.name = "namespace_metrics", COUNT(namespace_metrics), .def = "20", .min = 0, .max = 1000,
     .help = "count Gets of the N busiest namespaces apart (0: off)"},
    {.name = "hit_ratio_warn", COUNT(hit_ratio_warn), .def = "80", .min = 0, .max = 100,
     .help = "warn when fewer than N % of a namespace's Gets hit (0: off)", .live = 1},
    {.name = "hit_ratio_min_gets", COUNT(hit_ratio_min_gets), .def = "100", .min = 1,
     .max = UINT64_MAX, .help = "Gets in an interval below which a namespace never warns", .live = 1},
    {.name = "hit_ratio_interval", DURATION(hit_ratio_interval_ms), .def = "1m",
     .help = "the interval over which hit ratios are checked", .live = 1},
    {.name = "acl", STRING(acl), .def = "", .metavar = "RULE",
     .help = "who may use which namespaces: PATTERN WHO RIGHTS (repeatable)",
     .check = check_acl, .live = 1, .repeat = 1},
};
// clang-format on

#define NSETTINGS (sizeof settings / sizeof settings[0])

int config_setting_at(size_t i, struct config_field *out)
{
    if (i >= NSETTINGS)
        return 0;
    *out = (struct config_field){settings[i].name, settings[i].offset, settings[i].size,
                                 settings[i].live, settings[i].def,    settings[i].metavar};
    return 1;
}

/* A size in the largest unit that divides it: "512 MB", "1 KB", "7 B". */
static void format_size(uint64_t v, char *buf, size_t len)
{
    static const char *const unit[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (u < 4 && v >= KiB && v % KiB == 0)
        v /= KiB, u++;
    snprintf(buf, len, "%" PRIu64 " %s", v, unit[u]);
}

void config_setting_range(size_t i, char *buf, size_t len)
{
    char lo[32], hi[32];
    buf[0] = '\0';
    if (i >= NSETTINGS)
        return;
    const struct setting *s = &settings[i];
    switch (s->kind) {
    case KIND_SIZE:
        format_size(s->min, lo, sizeof lo), format_size(s->max, hi, sizeof hi);
        if (s->max == UINT64_MAX)
            snprintf(buf, len, "size, at least %s", lo);
        else
            snprintf(buf, len, "size, %s – %s", lo, hi);
        break;
    case KIND_DURATION:
        if (s->min == 0)
            snprintf(buf, len, "duration, 0 or more");
        else
            snprintf(buf, len, "duration, at least %" PRIu64 " ms", s->min);
        break;
    case KIND_COUNT:
        if (s->max == UINT64_MAX)
            snprintf(buf, len, "whole number, at least %" PRIu64, s->min);
        else
            snprintf(buf, len, "whole number, %" PRIu64 "–%" PRIu64, s->min, s->max);
        break;
    default:
        break;
    }
}

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

int config_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const struct setting *find_setting(const char *name)
{
    for (size_t i = 0; name != NULL && i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

/* Finds the setting whose flag is `flag` (without "--", len bytes). */
static const struct setting *find_flag(const char *flag, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *n = settings[i].name;
        size_t j = 0;
        while (j < len && n[j] != '\0' && flag[j] == (n[j] == '_' ? '-' : n[j]))
            j++;
        if (j == len && n[j] == '\0')
            return &settings[i];
    }
    return NULL;
}

/* Writes "--l1-max-memory" for l1_max_memory into buf. */
static void flag_name(const struct setting *s, char *buf, size_t len)
{
    size_t j = 0;
    if (len < 3)
        return;
    buf[j++] = '-';
    buf[j++] = '-';
    for (const char *p = s->name; *p != '\0' && j + 1 < len; p++)
        buf[j++] = *p == '_' ? '-' : *p;
    buf[j] = '\0';
}

/* Formats a byte count with the largest unit that divides it ("64KB"). */
static const char *fmt_size(uint64_t v, char *buf, size_t len)
{
    static const char *const names[] = {"B", "KB", "MB", "GB", "TB"};
    size_t u = 0;
    while (v != 0 && v % 1024 == 0 && u + 1 < sizeof names / sizeof names[0]) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%llu%s", (unsigned long long)v, names[u]);
    return buf;
}

/* Formats milliseconds with the largest unit that divides them ("1h"). */
static const char *fmt_duration(int64_t ms, char *buf, size_t len)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, len, "%lld%s", (long long)(ms / units[i].ms), units[i].name);
            return buf;
        }
    }
    snprintf(buf, len, "%lldms", (long long)ms);
    return buf;
}

static int check_range(const struct setting *s, const char *what, const char *text, uint64_t v,
                       char *err, size_t errlen)
{
    char lim[32];
    if (v >= s->min && v <= s->max)
        return 0;
    if (v < s->min && s->min == 1)
        return config_fail(err, errlen, "%s \"%s\" must be greater than 0", what, text);
    if (s->kind == KIND_COUNT)
        return config_fail(err, errlen, "%s \"%s\" is out of range (%llu..%llu)", what, text,
                           (unsigned long long)s->min, (unsigned long long)s->max);
    if (v < s->min)
        return config_fail(err, errlen, "%s \"%s\" is below the minimum %s", what, text,
                           fmt_size(s->min, lim, sizeof lim));
    return config_fail(err, errlen, "%s \"%s\" is above the maximum %s", what, text,
                       fmt_size(s->max, lim, sizeof lim));
}

/* Parses `text` as the setting's kind into a uint64_t, int64_t or enum and
 * stores it in `field`. Returns 0, or -1 with the field untouched. */
static int set_number(const struct setting *s, void *field, const char *text, char *err,
                      size_t errlen)
{
    uint64_t u = 0;
    int64_t ms = 0;
    switch (s->kind) {
    case KIND_SIZE:
        if (units_parse_size(text, &u) != 0)
            return config_fail(err, errlen,
                               "invalid size \"%s\" (expected a number with B, KB, MB, GB or TB)",
                               text);
        break;
    case KIND_DURATION:
        if (units_parse_duration_ms(text, &ms) != 0)
            return config_fail(err, errlen,
                               "invalid duration \"%s\" (expected a number with ms, s, m, h or d)",
                               text);
        u = (uint64_t)ms;
        break;
    case KIND_COUNT: {
        size_t start = strspn(text, " \t"), len = strlen(text + start);
        while (len > 0 && isspace((unsigned char)text[start + len - 1]))
            len--;
        if (units_parse_uint(text + start, len, UINT64_MAX, &u) != 0)
            return config_fail(err, errlen, "invalid number \"%s\" (expected a whole number)",
                               text);
        break;
    }
    default:
        return config_fail(err, errlen, "internal error: not a number setting");
    }
    const char *what = s->kind == KIND_SIZE    ? "size"
                       : s->kind == KIND_COUNT ? "number"
                                               : "duration";
    if (check_range(s, what, text, u, err, errlen) != 0)
        return -1;
    if (s->kind == KIND_DURATION)
        memcpy(field, &ms, sizeof ms);
    else
        memcpy(field, &u, sizeof u);
    return 0;
}

static int set_log_level(void *field, const char *text, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof log_level_names / sizeof log_level_names[0]; i++) {
        if (strcasecmp(text, log_level_names[i]) == 0) {
            enum config_log_level level = (enum config_log_level)i;
            memcpy(field, &level, sizeof level);
            return 0;
        }
    }
    return config_fail(err, errlen,
                       "invalid log level \"%s\" (expected error, warn, info or debug)", text);
}

/* Parses an octal permission mode ("0660") that lets the owner read and
 * write (the daemon's own probe connects to its socket). */
static int set_mode(void *field, const char *text, char *err, size_t errlen)
{
    size_t len = strlen(text);
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '7' || len > 4)
            return config_fail(err, errlen, "invalid mode \"%s\" (expected octal, like 0660)",
                               text);
        v = v * 8 + (unsigned)(text[i] - '0');
    }
    if (len == 0 || v > 0777)
        return config_fail(err, errlen, "invalid mode \"%s\" (expected octal up to 0777)", text);
    if ((v & 0600) != 0600)
        return config_fail(err, errlen, "mode %s must let the owner read and write (0600)", text);
    memcpy(field, &v, sizeof v);
    return 0;
}

static int set_string(const struct setting *s, char *field, const char *text, char *err,
                      size_t errlen)
{
    size_t len = strlen(text);
    if (len >= s->size)
        return config_fail(err, errlen, "value is too long (%zu bytes; the limit is %zu)", len,
                           s->size - 1);
    if (s->check != NULL && s->check(text, err, errlen) != 0)
        return -1;
    if (s->repeat && field[0] != '\0' && len > 0) { /* one more line */
        size_t have = strlen(field);
        if (have + 1 + len >= s->size)
            return config_fail(err, errlen, "too many %s lines (%zu bytes of them at most)",
                               s->name, s->size - 1);
        field[have] = '\n';
        memcpy(field + have + 1, text, len + 1);
        return 0;
    }
    memcpy(field, text, len + 1);
    return 0;
}

int config_set(config *c, const char *name, const char *value, char *err, size_t errlen)
{
    const struct setting *s = find_setting(name);
    if (s == NULL)
        return config_fail(err, errlen, "unknown setting \"%s\"", name != NULL ? name : "(null)");
    if (value == NULL)
        return config_fail(err, errlen, "missing value");
    char *field = (char *)c + s->offset;
    switch (s->kind) {
    case KIND_STRING:
        return set_string(s, field, value, err, errlen);
    case KIND_LOG_LEVEL:
        return set_log_level(field, value, err, errlen);
    case KIND_MODE:
        return set_mode(field, value, err, errlen);
    default:
        return set_number(s, field, value, err, errlen);
    }
}

void config_defaults(config *c)
{
    char err[CONFIG_MSG_LEN];
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (config_set(c, settings[i].name, settings[i].def, err, sizeof err) != 0) {
            fprintf(stderr, "nearcached: bad built-in default of %s: %s\n", settings[i].name, err);
            abort(); /* a bug in the table, caught by the tests */
        }
    }
    c->given = 0;
}

int config_given(const config *c, const char *name)
{
    const struct setting *s = find_setting(name);
    return s != NULL && (c->given >> (s - settings) & 1) != 0;
}

/* Marks s as given and runs its system checks. */
static int set_given(config *c, const struct setting *s, char *err, size_t errlen)
{
    c->given |= 1ULL << (s - settings);
    return s->given != NULL ? s->given(c, err, errlen) : 0;
}

const char *config_log_level_name(enum config_log_level level)
{
    if ((unsigned)level < sizeof log_level_names / sizeof log_level_names[0])
        return log_level_names[level];
    return "unknown";
}

/* ---- string settings ---------------------------------------------------- */

/* HOST:PORT (an IPv6 host in brackets), or empty. */
static int check_metrics_listen(const char *value, char *err, size_t errlen)
{
    const char *colon = strrchr(value, ':');
    if (value[0] == '\0')
        return 0;
    uint64_t port = 0;
    if (colon == NULL || colon == value ||
        units_parse_uint(colon + 1, strlen(colon + 1), 65535, &port) != 0 || port == 0 ||
        strchr(value, '/') != NULL)
        return config_fail(err, errlen,
                           "invalid metrics_listen \"%s\" (expected HOST:PORT, e.g. "
                           "127.0.0.1:9464)",
                           value);
    return 0;
}

static int check_listen(const char *value, char *err, size_t errlen)
{
    static const char *const schemes[] = {"ipc://", "tcp://", "inproc://"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(value, schemes[i], n) != 0)
            continue;
        if (value[n] == '\0')
            return config_fail(err, errlen, "listen URL \"%s\" has nothing after %s", value,
                               schemes[i]);
        if (i == 0 && strlen(value + n) > CONFIG_MAX_SUN_PATH)
            return config_fail(err, errlen, "IPC path \"%s\" is longer than %d bytes", value + n,
                               CONFIG_MAX_SUN_PATH);
        return 0;
    }
    return config_fail(
        err, errlen,
        "invalid listen URL \"%s\" (expected ipc://PATH, tcp://HOST:PORT or inproc://NAME)", value);
}

static int check_log_format(const char *value, char *err, size_t errlen)
{
    if (strcmp(value, "text") == 0 || strcmp(value, "json") == 0)
        return 0;
    return config_fail(err, errlen, "invalid log format \"%s\" (expected text or json)", value);
}

int config_log_json(const config *c)
{
    return strcmp(c->log_format, "json") == 0;
}

static int check_group_name(const char *value, char *err, size_t errlen)
{
    if (*value == '\0')
        return config_fail(err, errlen, "empty group name");
    return 0;
}

int config_socket_gid(const config *c, gid_t *gid)
{
    struct group g, *found = NULL;
    char buf[4096];
    if (getgrnam_r(c->socket_group, &g, buf, sizeof buf, &found) != 0 || found == NULL)
        return 0;
    *gid = found->gr_gid;
    return 1;
}

/* One rule, its user or group names resolved now; "" adds none. */
static int check_acl(const char *value, char *err, size_t errlen)
{
    acl_rule r;
    return *value == '\0' ? 0 : acl_rule_parse(value, &r, err, errlen);
}

static int given_socket_group(config *c, char *err, size_t errlen)
{
    gid_t gid;
    if (config_socket_gid(c, &gid))
        return 0;
    return config_fail(err, errlen,
                       "no group \"%s\" on this system: create it (groupadd %s) and add the "
                       "client users to it, or leave socket_group out (then the socket goes to "
                       "group nearcache, or stays in the daemon's own group where there is none)",
                       c->socket_group, c->socket_group);
}

static int given_password_file(config *c, char *err, size_t errlen)
{
    return secret_read(c->redis_password_file, c->redis_password, sizeof c->redis_password, err,
                       errlen);
}

static int check_tls_verify(const char *value, char *err, size_t errlen)
{
    if (strcmp(value, "full") == 0 || strcmp(value, "ca") == 0 || strcmp(value, "none") == 0)
        return 0;
    return config_fail(err, errlen, "invalid redis_tls_verify \"%s\" (expected full, ca or none)",
                       value);
}

static int check_redis(const char *value, char *err, size_t errlen)
{
    config_redis_url u;
    return config_parse_redis_url(value, &u, err, errlen);
}

/* The buffer is larger than the limit, so that a longer prefix reaches
 * check_prefix() and gets its message. */
_Static_assert(sizeof(((config *)0)->prefix) > KS_PREFIX_MAX + 1,
               "config.prefix holds a prefix longer than check_prefix() accepts");

static int check_prefix(const char *value, char *err, size_t errlen)
{
    if (*value == '\0')
        return config_fail(err, errlen, "empty prefix");
    if (strlen(value) > KS_PREFIX_MAX)
        return config_fail(err, errlen, "prefix \"%s\" is longer than %d bytes", value,
                           KS_PREFIX_MAX);
    for (const char *p = value; *p != '\0'; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return config_fail(err, errlen, "prefix \"%s\" contains a space or control character",
                               value);
    if (strpbrk(value, "{}") != NULL)
        return config_fail(err, errlen,
                           "prefix \"%s\" contains '{' or '}', which would make it a Redis "
                           "Cluster hash tag of every key",
                           value);
    return 0;
}

/* ---- checks between settings ------------------------------------------- */

uint64_t config_max_request(const config *c)
{
    return CONFIG_LIVE(c->max_value_size) + CONFIG_LIVE(c->max_key_size) +
           CONFIG_LIVE(c->max_namespace_size) + 64 * KiB;
}

uint64_t config_redis_capacity(const config *c)
{
    return c->contexts - c->redis_connections - CONFIG_RESERVED_CONTEXTS;
}

int config_check(const config *c, char *err, size_t errlen)
{
    char a[32], b[32];
    if (c->default_ttl_ms > c->max_ttl_ms)
        return config_fail(err, errlen, "default_ttl (%s) is longer than max_ttl (%s)",
                           fmt_duration(c->default_ttl_ms, a, sizeof a),
                           fmt_duration(c->max_ttl_ms, b, sizeof b));
    /* l1_max_ttl may exceed max_ttl: an L1 entry lives at most until its
     * Redis TTL runs out, so the smaller of the two applies. */
    if (c->contexts <= c->redis_connections ||
        c->contexts - c->redis_connections <= CONFIG_RESERVED_CONTEXTS)
        return config_fail(
            err, errlen, "contexts (%llu) must be greater than redis_connections + %d (%llu + %d)",
            (unsigned long long)c->contexts, CONFIG_RESERVED_CONTEXTS,
            (unsigned long long)c->redis_connections, CONFIG_RESERVED_CONTEXTS);
    if (c->coherence_window_ms < 2 * c->heartbeat_interval_ms)
        return config_fail(err, errlen,
                           "coherence_window (%s) must be at least twice heartbeat_interval (%s)",
                           fmt_duration(c->coherence_window_ms, a, sizeof a),
                           fmt_duration(c->heartbeat_interval_ms, b, sizeof b));
    if (c->max_value_size > MAX_REDIS_STR)
        return config_fail(err, errlen, "max_value_size (%s) is above 512MB, Redis's largest value",
                           fmt_size(c->max_value_size, a, sizeof a));
    if ((c->near_ring_slots & (c->near_ring_slots - 1)) != 0)
        return config_fail(err, errlen, "near_ring_slots (%llu) must be a power of two",
                           (unsigned long long)c->near_ring_slots);
    if ((c->redis_tls_cert_file[0] != '\0') != (c->redis_tls_key_file[0] != '\0'))
        return config_fail(err, errlen,
                           "redis_tls_cert_file and redis_tls_key_file go together: give both "
                           "or neither");
    return 0;
}

int config_near_ring(const config *c, char *buf, size_t len)
{
    if (strcmp(c->near_ring, "off") == 0)
        return 0;
    if (c->near_ring[0] != '\0')
        return snprintf(buf, len, "%s", c->near_ring) < (int)len;
    return ring_default_path(c->listen, buf, len);
}

/* ---- config file -------------------------------------------------------- */

/* Returns s without leading and trailing white space (trimmed in place). */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

static int unknown_setting(const char *where, const char *name, char *err, size_t errlen)
{
    char alt[64];
    size_t n = strlen(name);
    if (n < sizeof alt) {
        for (size_t i = 0; i <= n; i++)
            alt[i] = name[i] == '-' ? '_' : name[i];
        if (strchr(name, '-') != NULL && find_setting(alt) != NULL)
            return config_fail(err, errlen, "%s: unknown setting \"%s\" (did you mean %s?)", where,
                               name, alt);
    }
    return config_fail(err, errlen, "%s: unknown setting \"%s\"", where, name);
}

/* Applies one line of a config file (`line` is modified). */
static int parse_line(config *c, const char *where, char *line, char *err, size_t errlen)
{
    char *p = trim(line), msg[CONFIG_MSG_LEN];
    if (*p == '\0' || *p == '#')
        return 0;
    char *eq = strchr(p, '=');
    if (eq == NULL)
        return config_fail(err, errlen, "%s: %.*s: missing '=' (expected NAME = VALUE)", where,
                           (int)strcspn(p, " \t"), p);
    *eq = '\0';
    char *name = trim(p), *value = trim(eq + 1);
    size_t vlen = strlen(value);
    if (*name == '\0')
        return config_fail(err, errlen, "%s: missing setting name before '='", where);
    if (find_setting(name) == NULL)
        return unknown_setting(where, name, err, errlen);
    if (vlen == 0)
        return config_fail(err, errlen, "%s: %s: empty value", where, name);
    if (value[0] == '"') {
        if (vlen < 2 || value[vlen - 1] != '"')
            return config_fail(err, errlen, "%s: %s: missing closing '\"'", where, name);
        value[vlen - 1] = '\0';
        value++;
    }
    if (config_set(c, name, value, msg, sizeof msg) != 0)
        return config_fail(err, errlen, "%s: %s: %s%s", where, name, msg,
                           strchr(value, '#') != NULL ? " ('#' starts a comment only at line start)"
                                                      : "");
    if (set_given(c, find_setting(name), msg, sizeof msg) != 0)
        return config_fail(err, errlen, "%s: %s: %s", where, name, msg);
    return 0;
}

int config_load_file(config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return config_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    config tmp = *c; /* applied only if the whole file is good */
    char *line = NULL, where[CONFIG_MSG_LEN];
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    for (unsigned lineno = 1; rc == 0 && (n = getline(&line, &cap, f)) >= 0; lineno++) {
        snprintf(where, sizeof where, "%s:%u", path, lineno);
        if (memchr(line, '\0', (size_t)n) != NULL)
            rc = config_fail(err, errlen, "%s: NUL byte in line (not a text file?)", where);
        else
            rc = parse_line(&tmp, where, line, err, errlen);
    }
    if (rc == 0 && ferror(f))
        rc = config_fail(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (rc == 0)
        *c = tmp;
    return rc;
}

/* ---- command line ------------------------------------------------------- */

enum opt_kind { OPT_SETTING, OPT_CONFIG, OPT_HELP, OPT_VERSION };

struct opt {
    enum opt_kind kind;
    const char *flag; /* as written, up to any '=' */
    int flag_len;
    const char *value;       /* OPT_SETTING, OPT_CONFIG */
    const struct setting *s; /* OPT_SETTING */
};

/* Reads the option at argv[*i] and its value; advances *i past both. */
static int next_opt(int argc, char **argv, int *i, struct opt *o, char *err, size_t errlen)
{
    const char *arg = argv[(*i)++], *eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    memset(o, 0, sizeof *o);
    o->flag = arg;
    o->flag_len = (int)len;
    if (arg[0] != '-' || strcmp(arg, "--") == 0)
        return config_fail(err, errlen, "unexpected argument \"%s\" (see --help)", arg);
    if ((len == 2 && strncmp(arg, "-h", 2) == 0) || (len == 6 && strncmp(arg, "--help", 6) == 0))
        o->kind = OPT_HELP;
    else if (len == 9 && strncmp(arg, "--version", 9) == 0)
        o->kind = OPT_VERSION;
    else if (len == 8 && strncmp(arg, "--config", 8) == 0)
        o->kind = OPT_CONFIG;
    else if (arg[1] == '-' && (o->s = find_flag(arg + 2, len - 2)) != NULL)
        o->kind = OPT_SETTING;
    else
        return config_fail(err, errlen, "unknown option %.*s (see --help)", (int)len, arg);
    if (o->kind == OPT_HELP || o->kind == OPT_VERSION)
        return eq == NULL ? 0 : config_fail(err, errlen, "%.*s takes no value", (int)len, arg);
    if (eq != NULL) {
        o->value = eq + 1;
        return 0;
    }
    if (*i >= argc || strncmp(argv[*i], "--", 2) == 0)
        return config_fail(err, errlen, "%s: missing value", arg);
    o->value = argv[(*i)++];
    return 0;
}

/* First pass: handles --help and --version and finds --config. */
static int scan_args(int argc, char **argv, FILE *out, const char **config_path, char *err,
                     size_t errlen)
{
    struct opt o;
    for (int i = 1; i < argc;) {
        if (next_opt(argc, argv, &i, &o, err, errlen) != 0)
            return -1;
        if (o.kind == OPT_HELP) {
            config_usage(out, argv[0]);
            return 1;
        }
        if (o.kind == OPT_VERSION) {
            fprintf(out, "nearcached %s\n", NC_VERSION);
            return 1;
        }
        if (o.kind == OPT_CONFIG && *config_path != NULL)
            return config_fail(err, errlen, "--config given more than once");
        if (o.kind == OPT_CONFIG && *o.value == '\0')
            return config_fail(err, errlen, "--config: empty file name");
        if (o.kind == OPT_CONFIG)
            *config_path = o.value;
    }
    return 0;
}

int config_parse_args(config *c, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
    const char *config_path = NULL;
    char msg[CONFIG_MSG_LEN];
    struct opt o;
    int rc = scan_args(argc, argv, out, &config_path, err, errlen);
    if (rc != 0)
        return rc;
    config tmp = *c; /* *c changes only on success */
    if (config_path != NULL && config_load_file(&tmp, config_path, err, errlen) != 0)
        return -1;
    for (int i = 1; i < argc;) {
        if (next_opt(argc, argv, &i, &o, err, errlen) != 0)
            return -1; /* cannot happen: scan_args read the same argv */
        if (o.kind != OPT_SETTING)
            continue;
        if (config_set(&tmp, o.s->name, o.value, msg, sizeof msg) != 0 ||
            set_given(&tmp, o.s, msg, sizeof msg) != 0)
            return config_fail(err, errlen, "%.*s: %s", o.flag_len, o.flag, msg);
    }
    if (config_check(&tmp, err, errlen) != 0)
        return -1;
    *c = tmp;
    return 0;
}

/* ---- usage -------------------------------------------------------------- */

/* Prints "  LEFT  HELP (default: X)", moving the default to its own line
 * when the line would pass 80 columns. */
static void print_entry(FILE *out, const char *left, const char *help, const char *def)
{
    int n = fprintf(out, "  %-28s %s", left, help);
    if (def == NULL)
        fputc('\n', out);
    else if (n + (int)strlen(def) + 12 <= 80)
        fprintf(out, " (default: %s)\n", def);
    else
        fprintf(out, "\n  %-28s (default: %s)\n", "", def);
}

void config_usage(FILE *out, const char *argv0)
{
    char flag[64], left[96];
    fprintf(out, "Usage: %s [--config FILE] [--SETTING VALUE | --SETTING=VALUE]...\n\n",
            argv0 != NULL ? argv0 : "nearcached");
    fputs("nearcached: per-host cache daemon, an in-memory L1 in front of Redis.\n\nOptions:\n",
          out);
    print_entry(out, "--config FILE", "read `name = value` settings from FILE first", NULL);
    print_entry(out, "-h, --help", "print this help and exit", NULL);
    print_entry(out, "--version", "print the version and exit", NULL);
    fputs("\nSettings (in a config file, write the name with '_' for '-'):\n", out);
    for (size_t i = 0; i < NSETTINGS; i++) {
        flag_name(&settings[i], flag, sizeof flag);
        snprintf(left, sizeof left, "%s %s", flag, settings[i].metavar);
        print_entry(out, left, settings[i].help,
                    settings[i].def[0] != '\0' ? settings[i].def : NULL);
    }
    fputs("\nSizes take B, KB, MB, GB or TB (powers of 1024; a bare number is bytes).\n"
          "Durations take ms, s, m, h or d (a bare number is seconds).\n"
          "Flags override the config file wherever --config stands.\n",
          out);
}
