/* nearcache-cli: a command-line client of nearcached, on libnearcache.
 * Exit codes: 0 success, 1 key not found (get), 2 usage error, 3 the daemon
 * is unreachable or answered an error (status and message on stderr). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_stats.h"
#include "nearcache.h"
#include "units.h"

enum { EXIT_NOTFOUND = 1, EXIT_USAGE = 2, EXIT_ERROR = 3 };

static const char usage_text[] =
    "usage: nearcache-cli [-s URL] [-t TIMEOUT] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  get NS KEY                   print the value's raw bytes (exit 1: not found)\n"
    "  set NS KEY VALUE [--ttl DUR] store VALUE ('-' reads stdin) for DUR (e.g. 30s, 5m)\n"
    "  mget NS KEY...               print \"KEY VALUE\" per key found (exit 1: any missing)\n"
    "  mset NS KEY VALUE... [--ttl DUR]  store every pair; on an error print\n"
    "                               \"KEY not stored\" or \"KEY maybe stored\" per key\n"
    "  del NS KEY                   delete the key\n"
    "  bump NS                      drop every key of namespace NS, on every host\n"
    "  ping                         check that the daemon answers\n"
    "  stats [--json]               print the daemon's counters, hit ratios, namespaces\n"
    "  stats --watch DUR [--count N]  one line of rates every DUR (N lines; else Ctrl-C)\n"
    "\n"
    "options:\n"
    "  -s, --socket URL   daemon URL (default: $NEARCACHE_URL, else\n"
    "                     ipc:///run/nearcache/nearcached.sock)\n"
    "  -t, --timeout DUR  per-request timeout (default 1s)\n"
    "  -h, --help         this text\n"
    "  --version          print the version and exit\n"
    "\n"
    "exit: 0 ok, 1 not found, 2 usage error, 3 daemon unreachable or error\n";

/* What a command needs to reach the daemon; it connects only once its own
 * arguments are known to be good, so a usage error is never reported as an
 * unreachable daemon. */
struct session {
    const char *url;
    int timeout;
    nc_client *client;
    int open_error; /* exit code when connecting failed */
};

/* Returns the connected client, or NULL (with the error reported and
 * s->open_error set). */
static nc_client *session_client(struct session *s)
{
    if (s->client != NULL)
        return s->client;
    int rv = nc_open(&s->client, s->url, 0);
    if (rv == NC_OK)
        return s->client;
    fprintf(stderr, "nearcache-cli: %s\n", nc_errmsg());
    s->open_error = rv == NC_EINVAL ? 2 : 3;
    s->client = NULL;
    return NULL;
}

static int usage(const char *problem)
{
    if (problem != NULL)
        fprintf(stderr, "nearcache-cli: %s\n", problem);
    fputs(usage_text, problem != NULL ? stderr : stdout);
    return problem != NULL ? EXIT_USAGE : 0;
}

/* Reports a failed call and returns its exit code. */
static int failed(const char *cmd, int err)
{
    if (err == NC_ENOTFOUND)
        return EXIT_NOTFOUND;
    if (nc_status() != 0)
        fprintf(stderr, "nearcache-cli: %s: %s: %s\n", cmd, nc_status_name(nc_status()),
                nc_errmsg());
    else
        fprintf(stderr, "nearcache-cli: %s: %s (%s)\n", cmd, nc_errmsg(), nc_strerror(err));
    return EXIT_ERROR;
}

/* Reads all of stdin into a new buffer (the caller frees it). */
static char *read_stdin(size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap)
            break;
        char *bigger = realloc(buf, cap *= 2);
        if (bigger == NULL)
            free(buf);
        buf = bigger;
    }
    if (buf == NULL || ferror(stdin)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int cmd_get(struct session *ss, char **args, int nargs)
{
    if (nargs != 2)
        return usage("get takes NS KEY");
    nc_client *c = session_client(ss);
    if (c == NULL)
        return ss->open_error;
    void *value;
    size_t len;
    int rv = nc_get(c, NC_STR(args[0]), NC_STR(args[1]), &value, &len, ss->timeout);
    if (rv != NC_OK)
        return failed("get", rv);
    int ok = fwrite(value, 1, len, stdout) == len && fflush(stdout) == 0;
    nc_free(value);
    if (!ok) {
        fprintf(stderr, "nearcache-cli: get: cannot write the value: %s\n", strerror(errno));
        return EXIT_ERROR;
    }
    return 0;
}

static int cmd_set(struct session *ss, char **args, int nargs)
{
    int64_t ttl = NC_TTL_DEFAULT;
    char *pos[3];
    int npos = 0;
    for (int i = 0; i < nargs; i++) {
        if (strcmp(args[i], "--ttl") == 0 && i + 1 < nargs) {
            if (units_parse_duration_ms(args[++i], &ttl) != 0)
                return usage("--ttl: not a duration (e.g. 500ms, 30s, 5m, 1h)");
        } else if (strncmp(args[i], "--ttl=", 6) == 0) {
            if (units_parse_duration_ms(args[i] + 6, &ttl) != 0)
                return usage("--ttl: not a duration (e.g. 500ms, 30s, 5m, 1h)");
        } else if (npos < 3) {
            pos[npos++] = args[i];
        } else {
            return usage("set takes NS KEY VALUE [--ttl DUR]");
        }
    }
    if (npos != 3)
        return usage("set takes NS KEY VALUE [--ttl DUR]");
    nc_client *c = session_client(ss);
    if (c == NULL)
        return ss->open_error;
    nc_bytes value = NC_STR(pos[2]);
    char *input = NULL;
    if (strcmp(pos[2], "-") == 0) {
        if ((input = read_stdin(&value.len)) == NULL) {
            fprintf(stderr, "nearcache-cli: set: cannot read stdin\n");
            return EXIT_ERROR;
        }
        value.data = input;
    }
    int rv = nc_set(c, NC_STR(pos[0]), NC_STR(pos[1]), value, ttl, ss->timeout);
    free(input);
    return rv == NC_OK ? 0 : failed("set", rv);
}

static int cmd_del(struct session *ss, char **args, int nargs)
{
    if (nargs != 2)
        return usage("del takes NS KEY");
    nc_client *c = session_client(ss);
    if (c == NULL)
        return ss->open_error;
    int rv = nc_del(c, NC_STR(args[0]), NC_STR(args[1]), NULL, ss->timeout);
    return rv == NC_OK ? 0 : failed("del", rv);
}

static int cmd_mget(struct session *ss, char **args, int nargs)
{
    if (nargs < 2)
        return usage("mget takes NS KEY...");
    nc_client *c = session_client(ss);
    if (c == NULL)
        return ss->open_error;
    size_t n = (size_t)nargs - 1;
    nc_bytes *keys = calloc(n, sizeof *keys);
    if (keys == NULL)
        return EXIT_ERROR;
    for (size_t i = 0; i < n; i++)
        keys[i] = NC_STR(args[1 + i]);
    nc_item *items;
    int rv = nc_mget(c, NC_STR(args[0]), keys, n, &items, ss->timeout);
    free(keys);
    if (rv != NC_OK)
        return failed("mget", rv);
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].found) {
            missing = 1;
            continue;
        }
        fputs(args[1 + i], stdout);
        fputc(' ', stdout);
        fwrite(items[i].value, 1, items[i].len, stdout);
        fputc('\n', stdout);
    }
    nc_items_free(items, n);
    return missing ? EXIT_NOTFOUND : 0;
}

/* A --ttl option at args[*i] into *ttl. Returns 1 when it was one (*i moved
 * past it), 0 when args[*i] is not one, -1 when its value is bad. */
static int ttl_option(char **args, int nargs, int *i, int64_t *ttl)
{
    const char *v = NULL;
    if (strcmp(args[*i], "--ttl") == 0 && *i + 1 < nargs)
        v = args[++*i];
    else if (strncmp(args[*i], "--ttl=", 6) == 0)
        v = args[*i] + 6;
    else
        return 0;
    return units_parse_duration_ms(v, ttl) == 0 ? 1 : -1;
}

static int cmd_mset(struct session *ss, char **args, int nargs)
{
    static const char use[] = "mset takes NS KEY VALUE [KEY VALUE]... [--ttl DUR]";
    int64_t ttl = NC_TTL_DEFAULT;
    char **pos = calloc((size_t)nargs + 1, sizeof *pos);
    nc_entry *e = calloc((size_t)nargs + 1, sizeof *e);
    int *stored = calloc((size_t)nargs + 1, sizeof *stored);
    int npos = 0, rv = 0;
    if (pos == NULL || e == NULL || stored == NULL) {
        rv = EXIT_ERROR;
        goto out;
    }
    for (int i = 0; i < nargs && rv == 0; i++) {
        int opt = ttl_option(args, nargs, &i, &ttl);
        if (opt < 0)
            rv = usage("--ttl: not a duration (e.g. 500ms, 30s, 5m, 1h)");
        else if (opt == 0)
            pos[npos++] = args[i];
    }
    if (rv == 0 && (npos < 3 || npos % 2 == 0))
        rv = usage(use);
    nc_client *c = rv == 0 ? session_client(ss) : NULL;
    if (rv == 0 && c == NULL)
        rv = ss->open_error;
    if (rv != 0)
        goto out;
    size_t n = (size_t)(npos - 1) / 2;
    if (ttl == NC_TTL_DEFAULT)
        ttl = 0; /* an MSet entry's default */
    for (size_t i = 0; i < n; i++)
        e[i] = (nc_entry){NC_STR(pos[1 + 2 * i]), NC_STR(pos[2 + 2 * i]), ttl};
    int st = nc_mset_stored(c, NC_STR(pos[0]), e, n, stored, ss->timeout);
    if (st == NC_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (stored[i] != NC_STORED)
            printf("%s %s\n", pos[1 + 2 * i],
                   stored[i] == NC_NOT_STORED ? "not stored" : "maybe stored");
    fflush(stdout);
    rv = failed("mset", st);
out:
    free(pos);
    free(e);
    free(stored);
    return rv;
}

static int cmd_bump(struct session *ss, char **args, int nargs)
{
    if (nargs != 1)
        return usage("bump takes NS");
    nc_client *c = session_client(ss);
    if (c == NULL)
        return ss->open_error;
    uint64_t version = 0;
    int rv = nc_bump(c, NC_STR(args[0]), &version, ss->timeout);
    if (rv != NC_OK)
        return failed("bump", rv);
    printf("%llu\n", (unsigned long long)version);
    return 0;
}

static int cmd_ping(struct session *ss, char **args, int nargs)
{
    if (nargs != 0)
        return usage("ping takes no arguments");
    nc_client *c = session_client(ss);
    if (c == NULL)
        return ss->open_error;
    nc_ping_info p;
    int rv = nc_ping_ex(c, &p, ss->timeout);
    if (rv != NC_OK)
        return failed("ping", rv);
    char redis[360];
    if (p.redis_up || p.redis_error[0] == '\0')
        snprintf(redis, sizeof redis, "%s", p.redis_up ? "up" : "down");
    else
        snprintf(redis, sizeof redis, "down: %s", p.redis_error);
    printf("PONG (redis %s, nearcached %s, protocol %u)\n", redis, p.version, p.protocol_version);
    return 0;
}

static int cmd_stats(struct session *ss, char **args, int nargs)
{
    int json = 0;
    int64_t watch_ms = 0;
    uint64_t count = 0;
    for (int i = 0; i < nargs; i++) {
        if (strcmp(args[i], "--json") == 0)
            json = 1;
        else if (strcmp(args[i], "--watch") == 0 && i + 1 < nargs &&
                 units_parse_duration_ms(args[i + 1], &watch_ms) == 0 && watch_ms > 0)
            i++;
        else if (strcmp(args[i], "--count") == 0 && i + 1 < nargs &&
                 units_parse_uint(args[i + 1], strlen(args[i + 1]), 1000000000, &count) == 0 &&
                 count > 0)
            i++;
        else
            return usage("stats takes --json, or --watch DURATION [--count N]");
    }
    if ((json && watch_ms > 0) || (count > 0 && watch_ms == 0))
        return usage("stats takes --json, or --watch DURATION [--count N]");
    nc_client *c = session_client(ss);
    if (c == NULL)
        return ss->open_error;
    if (watch_ms > 0) {
        int rv = cli_stats_watch(stdout, c, watch_ms, (long)count, ss->timeout);
        return rv == NC_OK ? 0 : failed("stats", rv);
    }
    nc_stat *st;
    nc_ns_stat *ns;
    size_t n, nns;
    int rv = nc_stats_ex(c, &st, &n, &ns, &nns, ss->timeout);
    if (rv != NC_OK)
        return failed("stats", rv);
    cli_stats_print(stdout, st, n, ns, nns, json);
    nc_stats_free(st, n);
    nc_ns_stats_free(ns, nns);
    return 0;
}

struct command {
    const char *name;
    int (*run)(struct session *ss, char **args, int nargs);
};

static const struct command commands[] = {
    {"get", cmd_get},   {"set", cmd_set},   {"mget", cmd_mget},   {"mset", cmd_mset},
    {"del", cmd_del},   {"bump", cmd_bump}, {"ping", cmd_ping},   {"stats", cmd_stats},
};

int main(int argc, char **argv)
{
    const char *url = NULL;
    int64_t timeout = NC_TIMEOUT_DEFAULT;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0)
            return usage(NULL);
        if (strcmp(opt, "--version") == 0) {
            printf("nearcache-cli %s\n", NC_VERSION);
            return 0;
        }
        if (i + 1 >= argc)
            return usage("option needs a value");
        if (strcmp(opt, "-s") == 0 || strcmp(opt, "--socket") == 0)
            url = argv[++i];
        else if (strcmp(opt, "-t") == 0 || strcmp(opt, "--timeout") == 0) {
            if (units_parse_duration_ms(argv[++i], &timeout) != 0 || timeout <= 0 ||
                timeout > 3600000)
                return usage("--timeout: not a duration between 1ms and 1h");
        } else
            return usage("unknown option");
    }
    if (i >= argc)
        return usage("no command");
    const struct command *cmd = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(argv[i], commands[k].name) == 0)
            cmd = &commands[k];
    if (cmd == NULL)
        return usage("unknown command");
    struct session ss = {.url = url, .timeout = (int)timeout};
    int code = cmd->run(&ss, argv + i + 1, argc - i - 1);
    nc_close(ss.client);
    return code;
}
