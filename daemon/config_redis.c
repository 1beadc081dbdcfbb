/* nearcached configuration, part two: the Redis URL (config.h has the
 * prototypes), and the Redis settings put together with the password read
 * from redis_password_file. Passwords never appear in a message. */
#include "config.h"
#include "config_util.h"
#include "units.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* ---- redis URLs --------------------------------------------------------- */

#define REDIS_FORMS                                                                                \
    "redis[s]://[[user]:password@]host[:port][/db], unix:///path[?db=N], "                       \
    "sentinel[s]://[[user]:password@]host[:port][,host[:port]...]/master[/db] or "                 \
    "cluster[s]://[[user]:password@]host[:port][,host[:port]...]"
#define SENTINEL_PORT 26379

/* Copies url into buf with any password replaced by "***", for messages. */
static const char *redact(const char *url, char *buf, size_t len)
{
    const char *at = strrchr(url, '@'), *scheme_end = strstr(url, "://");
    if (at == NULL || scheme_end == NULL || scheme_end > at)
        snprintf(buf, len, "%s", url);
    else
        snprintf(buf, len, "%.*s***%s", (int)(scheme_end + 3 - url), url, at);
    return buf;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes the password (len bytes, %XX escapes allowed) into u->password. */
static int decode_password(const char *s, size_t len, config_redis_url *u, char *err, size_t errlen)
{
    size_t n = 0;
    if (len == 0)
        return config_fail(err, errlen, "empty password before '@' in the Redis URL");
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1, lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (lo < 0)
                return config_fail(err, errlen,
                                   "invalid %%-escape in the Redis password "
                                   "(write %%25 for a literal '%%')");
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch == '\0')
            return config_fail(err, errlen, "the Redis password contains a NUL byte");
        if (n + 1 >= sizeof u->password)
            return config_fail(err, errlen, "the Redis password is longer than %zu bytes",
                               sizeof u->password - 1);
        u->password[n++] = (char)ch;
    }
    u->password[n] = '\0';
    return 0;
}

/* userinfo is ":password", "password", or "user:password" (AUTH user
 * password, Redis 6 ACLs; "default:password" is the bare AUTH password). */
static int parse_userinfo(const char *s, size_t len, config_redis_url *u, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return decode_password(s, len, u, err, errlen);
    size_t ulen = (size_t)(colon - s);
    if (ulen >= sizeof u->user)
        return config_fail(err, errlen, "the Redis user name is longer than %zu bytes",
                           sizeof u->user - 1);
    for (size_t i = 0; i < ulen; i++)
        if (!isgraph((unsigned char)s[i]) || s[i] == '%')
            return config_fail(err, errlen,
                               "invalid Redis user name \"%.*s\" (printable, no spaces or '%%')",
                               (int)ulen, s);
    if (!(ulen == 7 && strncmp(s, "default", 7) == 0)) {
        memcpy(u->user, s, ulen);
        u->user[ulen] = '\0';
    }
    return decode_password(colon + 1, len - ulen - 1, u, err, errlen);
}

/* Reads "host", "[v6addr]" at *p into host (size bytes), up to ':' or one
 * of `stop`, and advances *p past it. */
static int parse_host(const char **p, const char *stop, char *host, size_t size, char *err,
                      size_t errlen)
{
    const char *s = *p, *allowed = "-._";
    char ends[8];
    snprintf(ends, sizeof ends, ":%s", stop);
    size_t len;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL)
            return config_fail(err, errlen, "missing ']' after the IPv6 address in the Redis URL");
        s++;
        len = (size_t)(end - s);
        allowed = ":.";
        *p = end + 1;
    } else {
        len = strcspn(s, ends);
        *p = s + len;
        if (**p == ':' && memchr(*p + 1, ':', strcspn(*p + 1, stop)) != NULL)
            return config_fail(err, errlen,
                               "an IPv6 address in a Redis URL needs brackets: "
                               "redis://[::1]:6379");
    }
    if (len == 0)
        return config_fail(err, errlen, "missing host in the Redis URL");
    if (len >= size)
        return config_fail(err, errlen, "the Redis host is longer than %zu bytes", size - 1);
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && strchr(allowed, s[i]) == NULL)
            return config_fail(err, errlen, "invalid Redis host \"%.*s\"", (int)len, s);
    memcpy(host, s, len);
    host[len] = '\0';
    return 0;
}

/* Reads ":port" at *p, if there is one, up to one of `stop`, into *port,
 * and advances *p past it. */
static int parse_port(const char **p, const char *stop, int *port, char *err, size_t errlen)
{
    if (**p != ':')
        return 0;
    const char *s = *p + 1;
    size_t len = strcspn(s, stop);
    uint64_t n;
    if (units_parse_uint(s, len, 65535, &n) != 0 || n == 0)
        return config_fail(err, errlen, "invalid Redis port \"%.*s\" (expected 1..65535)",
                           (int)len, s);
    *port = (int)n;
    *p = s + len;
    return 0;
}

static int parse_db(const char *s, size_t len, config_redis_url *u, char *err, size_t errlen)
{
    uint64_t db;
    if (units_parse_uint(s, len, 15, &db) != 0)
        return config_fail(err, errlen, "invalid Redis db \"%.*s\" (expected 0..15)", (int)len, s);
    u->db = (int)db;
    return 0;
}

/* Reads "userinfo@" at the start of *rest, if there is one (the last '@'
 * ends it), and advances *rest past it. */
static int parse_userinfo_at(const char **rest, config_redis_url *u, char *err, size_t errlen)
{
    const char *at = strrchr(*rest, '@');
    if (at == NULL)
        return 0;
    if (parse_userinfo(*rest, (size_t)(at - *rest), u, err, errlen) != 0)
        return -1;
    *rest = at + 1;
    return 0;
}

/* Reads what ends a URL after `what`: nothing, "/", or "/db". */
static int parse_db_tail(const char *rest, const char *what, config_redis_url *u, char *err,
                         size_t errlen)
{
    if (*rest == '/' && rest[1] != '\0')
        return parse_db(rest + 1, strlen(rest + 1), u, err, errlen);
    if (*rest != '\0' && strcmp(rest, "/") != 0)
        return config_fail(err, errlen, "unexpected \"%s\" after the %s", rest, what);
    return 0;
}

/* rest is what follows "redis://". */
static int parse_tcp_url(const char *rest, config_redis_url *u, char *err, size_t errlen)
{
    if (parse_userinfo_at(&rest, u, err, errlen) != 0 ||
        parse_host(&rest, "/", u->host, sizeof u->host, err, errlen) != 0 ||
        parse_port(&rest, "/", &u->port, err, errlen) != 0)
        return -1;
    return parse_db_tail(rest, "Redis host", u, err, errlen);
}

/* rest is what follows "sentinel://": [userinfo@]host[:port][,host[:port]...]
 * then /master and optionally /db. The password is the master's, as for
 * one server (Sentinels get sentinel_password). */
static int parse_sentinel_url(const char *rest, config_redis_url *u, char *err, size_t errlen)
{
    if (parse_userinfo_at(&rest, u, err, errlen) != 0)
        return -1;
    u->host[0] = '\0';
    u->port = 0;
    do {
        if (u->nsentinels == CONFIG_MAX_SENTINELS)
            return config_fail(err, errlen, "more than %d Sentinels in the Redis URL",
                               CONFIG_MAX_SENTINELS);
        config_redis_addr *a = &u->sentinels[u->nsentinels++];
        a->port = SENTINEL_PORT;
        if (parse_host(&rest, ",/", a->host, sizeof a->host, err, errlen) != 0 ||
            parse_port(&rest, ",/", &a->port, err, errlen) != 0)
            return -1;
    } while (*rest == ',' && *++rest != '\0');
    if (*rest != '/' || rest[1] == '\0' || rest[1] == '/')
        return config_fail(err, errlen,
                           "a sentinel:// URL names the master after its Sentinels: "
                           "sentinel://host:26379,host:26379/mymaster");
    size_t len = strcspn(++rest, "/");
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)rest[i]) && strchr("-._", rest[i]) == NULL)
            return config_fail(err, errlen,
                               "invalid Sentinel master name \"%.*s\" (letters, digits, "
                               "'-', '.' and '_')",
                               (int)len, rest);
    if (len >= sizeof u->master)
        return config_fail(err, errlen, "the Sentinel master name is longer than %zu bytes",
                           sizeof u->master - 1);
    memcpy(u->master, rest, len);
    u->master[len] = '\0';
    return parse_db_tail(rest + len, "Sentinel master name", u, err, errlen);
}

/* rest is what follows "cluster://": [userinfo@]host[:port][,host[:port]...]
 * (any nodes of the cluster; the slot map names the rest), then nothing,
 * "/" or "/0": a Cluster has db 0 only. */
static int parse_cluster_url(const char *rest, config_redis_url *u, char *err, size_t errlen)
{
    if (parse_userinfo_at(&rest, u, err, errlen) != 0)
        return -1;
    do {
        if (u->nseeds == CONFIG_MAX_CLUSTER_SEEDS)
            return config_fail(err, errlen, "more than %d cluster nodes in the Redis URL",
                               CONFIG_MAX_CLUSTER_SEEDS);
        config_redis_addr *a = &u->seeds[u->nseeds++];
        a->port = 6379;
        if (parse_host(&rest, ",/", a->host, sizeof a->host, err, errlen) != 0 ||
            parse_port(&rest, ",/", &a->port, err, errlen) != 0)
            return -1;
    } while (*rest == ',' && *++rest != '\0');
    memcpy(u->host, u->seeds[0].host, sizeof u->host);
    u->port = u->seeds[0].port;
    if (parse_db_tail(rest, "cluster nodes", u, err, errlen) != 0)
        return -1;
    if (u->db != 0)
        return config_fail(err, errlen,
                           "a Redis Cluster has db 0 only; drop \"/%d\" from the cluster:// URL",
                           u->db);
    return 0;
}

/* rest is what follows "unix://": an absolute path, then optionally ?db=N. */
static int parse_unix_url(const char *rest, config_redis_url *u, char *err, size_t errlen)
{
    size_t len = strcspn(rest, "?");
    if (rest[0] != '/' || len < 2)
        return config_fail(err, errlen, "a Redis unix socket needs an absolute path: unix:///path");
    if (len > CONFIG_MAX_SUN_PATH)
        return config_fail(err, errlen, "the Redis socket path is longer than %d bytes",
                           CONFIG_MAX_SUN_PATH);
    memcpy(u->host, rest, len);
    u->host[len] = '\0';
    u->is_unix = 1;
    u->port = 0;
    if (rest[len] == '\0')
        return 0;
    const char *query = rest + len + 1;
    if (strncmp(query, "db=", 3) != 0)
        return config_fail(err, errlen, "unsupported option \"%s\" in the Redis URL (only db=N)",
                           query);
    return parse_db(query + 3, strlen(query + 3), u, err, errlen);
}

int config_parse_redis_url(const char *url, config_redis_url *out, char *err, size_t errlen)
{
    config_redis_url u;
    char shown[CONFIG_MSG_LEN];
    int rc;
    memset(&u, 0, sizeof u);
    u.port = 6379;
    if (url == NULL)
        return config_fail(err, errlen, "missing Redis URL");
    if (strncasecmp(url, "redis://", 8) == 0)
        rc = parse_tcp_url(url + 8, &u, err, errlen);
    else if (strncasecmp(url, "rediss://", 9) == 0)
        u.tls = 1, rc = parse_tcp_url(url + 9, &u, err, errlen);
    else if (strncasecmp(url, "unix://", 7) == 0)
        rc = parse_unix_url(url + 7, &u, err, errlen);
    else if (strncasecmp(url, "sentinel://", 11) == 0)
        rc = parse_sentinel_url(url + 11, &u, err, errlen);
    else if (strncasecmp(url, "sentinels://", 12) == 0)
        u.tls = 1, rc = parse_sentinel_url(url + 12, &u, err, errlen);
    else if (strncasecmp(url, "cluster://", 10) == 0)
        rc = parse_cluster_url(url + 10, &u, err, errlen);
    else if (strncasecmp(url, "clusters://", 11) == 0)
        u.tls = 1, rc = parse_cluster_url(url + 11, &u, err, errlen);
    else
        rc = config_fail(err, errlen, "invalid Redis URL \"%s\" (expected " REDIS_FORMS ")",
                         redact(url, shown, sizeof shown));
    if (rc == 0)
        *out = u;
    return rc;
}

int config_redis(const config *c, config_redis_url *out, char *err, size_t errlen)
{
    config_redis_url u;
    if (config_parse_redis_url(c->redis, &u, err, errlen) != 0)
        return -1;
    if (c->redis_password[0] != '\0' && u.password[0] != '\0')
        return config_fail(err, errlen,
                           "both the redis URL and redis_password_file give a password; keep one");
    if (c->redis_password[0] != '\0')
        memcpy(u.password, c->redis_password, sizeof u.password);
    if (c->sentinel_password[0] != '\0' && u.nsentinels == 0)
        return config_fail(err, errlen,
                           "sentinel_password is set, but the redis URL names no Sentinels "
                           "(sentinel://...)");
    memcpy(u.sentinel_password, c->sentinel_password, sizeof u.sentinel_password);
    if (!u.tls && (c->redis_tls_ca_file[0] != '\0' || c->redis_tls_cert_file[0] != '\0' ||
                   c->redis_tls_server_name[0] != '\0' || strcmp(c->redis_tls_verify, "full") != 0))
        return config_fail(err, errlen,
                           "redis_tls_* settings are given, but the redis URL does not ask for "
                           "TLS (rediss://, sentinels:// or clusters://)");
    *out = u;
    return 0;
}
