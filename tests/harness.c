/* Test harness; see harness.h. */
#include "harness.h"
#include "keyspace.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64

int64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

char *h_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes a test directory and everything in it. */
static void remove_dir(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_dir(char *dir, size_t size, const char *what)
{
    snprintf(dir, size, "/tmp/nc-test-%s-XXXXXX", what);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0, "bind: %s", strerror(errno));
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);
    return ntohs(a.sin_port);
}

pid_t h_spawn(char **argv, int in, int out, int err)
{
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid > 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_RDWR);
    dup2(in >= 0 ? in : null, 0);
    dup2(out >= 0 ? out : null, 1);
    dup2(err >= 0 ? err : null, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* h_spawn() with stdout and stderr appended to the file `log` (NULL:
 * /dev/null). */
static pid_t spawn_logged(char **argv, const char *log)
{
    int fd = log != NULL ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
    pid_t pid = h_spawn(argv, -1, fd, fd);
    if (fd >= 0)
        close(fd);
    return pid;
}

/* Appends the NULL-terminated list of strings in ap to argv (which has n
 * already), NULL-terminates it, and returns the new count. */
static int append_args(char **argv, int n, va_list ap)
{
    for (char *a; n < MAX_ARGS - 1 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    argv[n] = NULL;
    return n;
}

char *h_redis_cmd(const h_redis *r, ...)
{
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    char *argv[MAX_ARGS] = {"redis-cli", "-h", "127.0.0.1", "-p", port};
    int n = 5;
    if (r->tls_only) {
        /* the test's own commands need not check what the test made */
        argv[n++] = "--tls", argv[n++] = "--insecure";
        if (r->tls_client[0] != '\0') {
            argv[n++] = "--cert", argv[n++] = (char *)r->tls_client;
            argv[n++] = "--key", argv[n++] = (char *)r->tls_client_key;
        }
    }
    if (r->user[0] != '\0') {
        argv[n++] = "--user";
        argv[n++] = (char *)r->user;
    }
    if (r->password[0] != '\0') {
        argv[n++] = "--no-auth-warning";
        argv[n++] = "-a";
        argv[n++] = (char *)r->password;
    }
    va_list ap;
    va_start(ap, r);
    n = append_args(argv, n, ap);
    va_end(ap);
    char *out = NULL;
    size_t len = 0;
    h_run(argv, NULL, 0, &out, &len, NULL);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    return out;
}

uint64_t h_nsver(const h_redis *r, const char *ns)
{
    char key[256];
    snprintf(key, sizeof key, "nc:v1:nsver:%s", ns);
    char *out = h_redis_cmd(r, "GET", key, NULL);
    uint64_t v = strtoull(out, NULL, 10); /* "" when absent */
    free(out);
    return v;
}

char *h_data_key(const h_redis *r, char *buf, size_t n, const char *ns, const char *key)
{
    snprintf(buf, n, "nc:v1:nsver:%s", ns);
    free(h_redis_cmd(r, "SET", buf, "1", "NX", NULL));
    return h_key_at(buf, n, "nc:v1", ns, h_nsver(r, ns), key);
}

char *h_key_at(char *buf, size_t n, const char *prefix, const char *ns, uint64_t version,
               const char *key)
{
    size_t need = ks_data_key_max(prefix, strlen(ns), version, strlen(key)) + 1;
    cr_assert_leq(need, n, "h_key_at: a buffer of %zu bytes for a key of %zu", n, need);
    buf[ks_data_key(buf, prefix, ns, strlen(ns), version, KS_DATA, key, strlen(key))] = '\0';
    return buf;
}

void h_redis_protect(h_redis *r, const char *password, int db)
{
    free(h_redis_cmd(r, "CONFIG", "SET", "requirepass", password, NULL));
    snprintf(r->password, sizeof r->password, "%s", password);
    char *pong = h_redis_cmd(r, "PING", NULL);
    cr_assert_str_eq(pong, "PONG", "redis did not take the password");
    free(pong);
    snprintf(r->url, sizeof r->url, "redis%s://:%s@127.0.0.1:%d/%d", r->tls_port > 0 ? "s" : "",
             password, r->tls_port > 0 ? r->tls_port : r->port, db);
}

static int redis_answers(const h_redis *r)
{
    char *out = h_redis_cmd(r, "PING", NULL);
    int ok = strcmp(out, "PONG") == 0;
    free(out);
    return ok;
}

static int redis_launch_plain(h_redis *r);

#define ACL_ADMIN "nc-admin"

/* Gives a fresh Redis (default user without a password) the users of
 * h_redis_least_privilege(): nc-admin with every right, and the default
 * user with the rules of NC_REDIS_ACL. */
static void apply_least_privilege(h_redis *r, const char *password)
{
    char port[16], pass[40];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(pass, sizeof pass, ">%s", password);
    char *text = h_read_file(NC_REDIS_ACL, NULL);
    char *argv[MAX_ARGS] = {"redis-cli", "-h", "127.0.0.1", "-p", port, "ACL", "SETUSER",
                            ACL_ADMIN, "on", pass, "~*", "&*", "+@all", NULL};
    char *out;
    size_t len;
    cr_assert_eq(h_run(argv, NULL, 0, &out, &len, NULL), 0);
    cr_assert(strncmp(out, "OK", 2) == 0, "ACL SETUSER " ACL_ADMIN ": %s", out);
    free(out);
    int n = 7;
    argv[n++] = "default", argv[n++] = "reset", argv[n++] = "on", argv[n++] = pass;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[strspn(line, " \t")] == '#')
            continue;
        for (char *tok = line + strspn(line, " \t"); *tok != '\0' && n < MAX_ARGS - 1;) {
            size_t tl = strcspn(tok, " \t");
            argv[n++] = tok;
            tok += tl;
            if (*tok != '\0')
                *tok++ = '\0';
            tok += strspn(tok, " \t");
        }
    }
    argv[n] = NULL;
    cr_assert_eq(h_run(argv, NULL, 0, &out, &len, NULL), 0);
    cr_assert(strncmp(out, "OK", 2) == 0, "ACL SETUSER default (%s): %s", NC_REDIS_ACL, out);
    free(out);
    free(text);
    snprintf(r->user, sizeof r->user, ACL_ADMIN);
    snprintf(r->password, sizeof r->password, "%s", password);
}

void h_redis_least_privilege(h_redis *r, const char *password)
{
    apply_least_privilege(r, password);
    r->least_privilege = 1;
    snprintf(r->url, sizeof r->url, "redis%s://:%s@127.0.0.1:%d", r->tls_port > 0 ? "s" : "",
             password, r->tls_port > 0 ? r->tls_port : r->port);
}

static int redis_launch(h_redis *r)
{
    if (r->least_privilege) { /* a fresh Redis: reached without a user first */
        char password[32];
        snprintf(password, sizeof password, "%s", r->password);
        r->user[0] = r->password[0] = '\0';
        int rv = redis_launch_plain(r);
        if (rv == 0)
            apply_least_privilege(r, password);
        else
            snprintf(r->password, sizeof r->password, "%s", password);
        return rv;
    }
    return redis_launch_plain(r);
}

static int redis_launch_plain(h_redis *r)
{
    char port[16], tls_port[16], log[300];
    snprintf(port, sizeof port, "%d", r->tls_only ? 0 : r->port);
    snprintf(tls_port, sizeof tls_port, "%d", r->tls_port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    char *argv[MAX_ARGS] = {"redis-server",
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    r->dir,
                    "--daemonize",
                    "no",
                    "--enable-debug-command",
                    "yes",
                    NULL};
    if (r->tls_port > 0) {
        char *tls[] = {"--tls-port",      tls_port,    "--tls-cert-file",    r->tls_cert,
                       "--tls-key-file",  r->tls_key,  "--tls-ca-cert-file", r->tls_ca,
                       "--tls-auth-clients", r->tls_auth_clients ? "yes" : "no", NULL};
        int n = 0;
        while (argv[n] != NULL)
            n++;
        for (int i = 0; tls[i] != NULL; i++)
            argv[n++] = tls[i];
        argv[n] = NULL;
    }
    r->pid = spawn_logged(argv, log);
    for (int i = 0; i < 200; i++) {
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid)
            return -1; /* exited: port taken, most likely */
        if (redis_answers(r))
            return 0;
        h_sleep_ms(10);
    }
    return -1;
}

pid_t h_redis_sleep(const h_redis *r, const char *secs, int settle_ms)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        char port[16];
        snprintf(port, sizeof port, "%d", r->port);
        freopen("/dev/null", "w", stdout);
        execlp("redis-cli", "redis-cli", "-p", port, "DEBUG", "SLEEP", secs, (char *)NULL);
        _exit(127);
    }
    /* Asleep: a PING goes unanswered. A loaded machine may take a while to
     * run redis-cli, so wait for that, then give the caller settle_ms. */
    for (int i = 0; i < 200; i++) {
        redisContext *ctx =
            redisConnectWithTimeout("127.0.0.1", r->port, (struct timeval){0, 50000});
        int asleep = ctx == NULL || ctx->err != 0;
        if (!asleep) {
            redisSetTimeout(ctx, (struct timeval){0, 50000});
            redisReply *pong = redisCommand(ctx, "PING");
            asleep = pong == NULL;
            freeReplyObject(pong);
        }
        redisFree(ctx);
        if (asleep)
            break;
        h_sleep_ms(10);
    }
    h_sleep_ms(settle_ms);
    return pid;
}

/* The script h_tls_make() runs in its directory. */
static const char tls_script[] =
    "set -e\n"
    "cat > ca.cnf <<X\n"
    "[ca]\ndefault_ca = tca\n"
    "[tca]\ndir = .\ndatabase = index.txt\nserial = serial\nnew_certs_dir = .\n"
    "default_md = sha256\npolicy = pol\nunique_subject = no\n"
    "[pol]\ncommonName = supplied\n"
    "[srv]\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n"
    "[wrong]\nsubjectAltName = DNS:other.example\n"
    "[cli]\nextendedKeyUsage = clientAuth\n"
    "X\n"
    ": > index.txt; echo 1000 > serial\n"
    "key='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
    "for c in ca other_ca; do\n"
    "  openssl req -x509 $key -keyout $c.key -out $c.crt -days 3650 -subj \"/CN=test $c\"\n"
    "done\n"
    "mk() {\n"
    "  n=$1 ca=$2 ext=$3; shift 3\n"
    "  openssl req $key -keyout $n.key -out $n.csr -subj \"/CN=$n\"\n"
    "  openssl ca -batch -config ca.cnf -cert $ca.crt -keyfile $ca.key -in $n.csr -out $n.crt \\\n"
    "    -extensions $ext -notext \"$@\"\n"
    "}\n"
    "mk server ca srv -days 3650\n"
    "mk other_server other_ca srv -days 3650\n"
    "mk wrong ca wrong -days 3650\n"
    "mk client ca cli -days 3650\n"
    /* OpenSSL 3 refuses a negative -days: dates in the past instead */
    "mk expired ca srv -startdate 20200101000000Z -enddate 20200201000000Z\n"
    "chmod 600 *.key\n";

void h_tls_make(h_tls *t)
{
    memset(t, 0, sizeof *t);
    make_dir(t->dir, sizeof t->dir, "tls");
    char script[4096];
    snprintf(script, sizeof script, "cd '%s' && { %s}", t->dir, tls_script);
    char *argv[] = {"sh", "-c", script, NULL}, *err = NULL;
    int rv = h_run(argv, NULL, 0, NULL, NULL, &err);
    cr_assert_eq(rv, 0, "making the test certificates failed: %s", err);
    free(err);
#define TLS_FILE(field, name) snprintf(t->field, sizeof t->field, "%s/" name, t->dir)
    TLS_FILE(ca, "ca.crt"), TLS_FILE(other_ca, "other_ca.crt");
    TLS_FILE(server, "server.crt"), TLS_FILE(server_key, "server.key");
    TLS_FILE(other_server, "other_server.crt"), TLS_FILE(other_server_key, "other_server.key");
    TLS_FILE(wrong, "wrong.crt"), TLS_FILE(wrong_key, "wrong.key");
    TLS_FILE(expired, "expired.crt"), TLS_FILE(expired_key, "expired.key");
    TLS_FILE(client, "client.crt"), TLS_FILE(client_key, "client.key");
#undef TLS_FILE
}

void h_tls_cleanup(h_tls *t)
{
    remove_dir(t->dir);
    t->dir[0] = '\0';
}

/* Starts r as set up (plain, or TLS with r's tls_* fields), on free ports. */
static void redis_start_as_set(h_redis *r)
{
    make_dir(r->dir, sizeof r->dir, "redis");
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = h_free_port();
        if (r->tls_port > 0 || r->tls_only) {
            r->tls_port = r->tls_only ? r->port : h_free_port();
            snprintf(r->url, sizeof r->url, "rediss://127.0.0.1:%d", r->tls_port);
        } else {
            snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
        }
        if (redis_launch(r) == 0)
            return;
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
    }
    cr_assert_fail("redis-server did not start (see %s/redis.log)", r->dir);
}

void h_redis_start_tls(h_redis *r, const h_tls *t, const char *cert, const char *key, int tls_only,
                       int auth_clients)
{
    memset(r, 0, sizeof *r);
    r->tls_port = 1; /* chosen at start */
    r->tls_only = tls_only;
    r->tls_auth_clients = auth_clients;
    snprintf(r->tls_cert, sizeof r->tls_cert, "%s", cert);
    snprintf(r->tls_key, sizeof r->tls_key, "%s", key);
    snprintf(r->tls_ca, sizeof r->tls_ca, "%s", t->ca);
    if (auth_clients) {
        snprintf(r->tls_client, sizeof r->tls_client, "%s", t->client);
        snprintf(r->tls_client_key, sizeof r->tls_client_key, "%s", t->client_key);
    }
    redis_start_as_set(r);
}

/* The certificates of $NC_TEST_REDIS_TLS runs, made once per process. */
static h_tls env_tls;

static void remove_env_tls(void)
{
    h_tls_cleanup(&env_tls);
}

void h_redis_start(h_redis *r)
{
    const char *tls = getenv("NC_TEST_REDIS_TLS");
    if (tls != NULL && tls[0] != '\0' && strcmp(tls, "0") != 0) {
        if (env_tls.dir[0] == '\0') {
            h_tls_make(&env_tls);
            atexit(remove_env_tls);
        }
        h_redis_start_tls(r, &env_tls, env_tls.server, env_tls.server_key, 0, 0);
        return;
    }
    memset(r, 0, sizeof *r);
    redis_start_as_set(r);
}

void h_redis_restart(h_redis *r)
{
    for (int i = 0; i < 100; i++) { /* the port may linger briefly */
        if (redis_launch(r) == 0)
            return;
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        h_sleep_ms(20);
    }
    cr_assert_fail("redis-server did not restart on port %d", r->port);
}

void h_redis_stop(h_redis *r, int hard)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, hard ? SIGKILL : SIGTERM);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

void h_redis_cleanup(h_redis *r)
{
    h_redis_stop(r, 1);
    remove_dir(r->dir);
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : fallback;
}

/* Spawns argv as d's process, its output in d->log, and waits until it
 * answers Ping at d->url and, when `r` is running, serves from L1. */
static void daemon_run(h_daemon *d, char **argv, const h_redis *r)
{
    d->pid = spawn_logged(argv, d->log);
    int ready = 0;
    for (int i = 0; i < 500 && !ready; i++) {
        cr_assert(h_daemon_alive(d), "nearcached exited at start; log:\n%s",
                  h_read_file(d->log, NULL));
        nc_client *c = NULL;
        nc_ping_info info;
        ready = nc_open(&c, d->url, 0) == NC_OK && nc_ping_ex(c, &info, 200) == NC_OK &&
                (r == NULL || r->pid <= 0 || info.l1_serving);
        nc_close(c);
        if (!ready)
            h_sleep_ms(10);
    }
    cr_assert(ready, "nearcached did not get ready; log:\n%s", h_read_file(d->log, NULL));
}

/* Starts nearcached in d's directory, on d's URL, against `r`, with the
 * harness's flags and then those in ap; waits until it is ready. */
static void daemon_launch(h_daemon *d, const h_redis *r, va_list ap)
{
    /* Generous timeouts by default: a loaded 2-core machine can stall any
     * process for a while. Tests that need short ones pass their own. */
    char *argv[MAX_ARGS] = {(char *)env_or("NC_DAEMON", "nearcached"),
                            "--listen",
                            d->url,
                            "--redis",
                            r != NULL ? (char *)r->url : "redis://127.0.0.1:1",
                            "--log-level",
                            "debug",
                            "--redis-timeout",
                            "2s",
                            "--request-timeout",
                            "5s"};
    int n = 11;
    if (r != NULL && strncmp(r->url, "rediss://", 9) == 0) { /* not a proxy's plain url */
        argv[n++] = "--redis-tls-ca-file", argv[n++] = (char *)r->tls_ca;
        if (r->tls_client[0] != '\0') {
            argv[n++] = "--redis-tls-cert-file", argv[n++] = (char *)r->tls_client;
            argv[n++] = "--redis-tls-key-file", argv[n++] = (char *)r->tls_client_key;
        }
    }
    append_args(argv, n, ap);
    daemon_run(d, argv, r);
}

void h_daemon_prepare(h_daemon *d)
{
    memset(d, 0, sizeof *d);
    make_dir(d->dir, sizeof d->dir, "daemon");
    snprintf(d->url, sizeof d->url, "ipc://%s/nc.sock", d->dir);
    snprintf(d->log, sizeof d->log, "%s/nearcached.log", d->dir);
}

static void daemon_startv(h_daemon *d, const h_redis *r, va_list ap)
{
    h_daemon_prepare(d);
    daemon_launch(d, r, ap);
}

void h_daemon_start(h_daemon *d, const h_redis *r, ...)
{
    va_list ap;
    va_start(ap, r);
    daemon_startv(d, r, ap);
    va_end(ap);
}

void h_daemon_restart(h_daemon *d, const h_redis *r, ...)
{
    cr_assert_not(h_daemon_alive(d), "the daemon is still running");
    va_list ap;
    va_start(ap, r);
    daemon_launch(d, r, ap);
    va_end(ap);
}

void h_daemon_exec(h_daemon *d, ...)
{
    char *argv[MAX_ARGS] = {(char *)env_or("NC_DAEMON", "nearcached")};
    va_list ap;
    va_start(ap, d);
    append_args(argv, 1, ap);
    va_end(ap);
    daemon_run(d, argv, NULL);
}

int h_daemon_alive(const h_daemon *d)
{
    return d->pid > 0 && waitpid(d->pid, NULL, WNOHANG) == 0;
}

int h_daemon_stop_with(h_daemon *d, int sig)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, sig);
    int status = 0;
    waitpid(d->pid, &status, 0);
    d->pid = 0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 0)
        remove_dir(d->dir); /* kept, with its log, when something went wrong */
    return code;
}

int h_daemon_stop(h_daemon *d)
{
    return h_daemon_stop_with(d, SIGTERM);
}

/* h_fleet_add() with the flags in ap. */
static h_daemon *fleet_addv(h_fleet *f, const h_redis *r, va_list ap)
{
    cr_assert_lt(f->n, H_MAX_NODES, "a fleet has at most %d daemons", H_MAX_NODES);
    int i = f->n++;
    daemon_startv(&f->node[i], r, ap);
    f->cl[i] = h_client(&f->node[i]);
    return &f->node[i];
}

void h_fleet_start(h_fleet *f, int n, ...)
{
    cr_assert(n >= 0 && n <= H_MAX_NODES, "a fleet has at most %d daemons", H_MAX_NODES);
    memset(f, 0, sizeof *f);
    h_redis_start(&f->redis);
    for (int i = 0; i < n; i++) {
        va_list ap;
        va_start(ap, n);
        fleet_addv(f, &f->redis, ap);
        va_end(ap);
    }
}

h_daemon *h_fleet_add(h_fleet *f, const h_redis *r, ...)
{
    va_list ap;
    va_start(ap, r);
    h_daemon *d = fleet_addv(f, r, ap);
    va_end(ap);
    return d;
}

void h_fleet_stop(h_fleet *f)
{
    for (int i = 0; i < f->n; i++) {
        nc_close(f->cl[i]);
        f->cl[i] = NULL;
        if (f->node[i].pid <= 0)
            continue;
        kill(f->node[i].pid, SIGCONT); /* a test may have frozen it */
        int code = h_daemon_stop(&f->node[i]);
        if (code != 0) {
            char *log = h_read_file(f->node[i].log, NULL);
            cr_expect_eq(code, 0, "node %d exited %d; log:\n%s", i, code, log);
            free(log);
        }
    }
    f->n = 0;
    h_redis_cleanup(&f->redis);
}

nc_client *h_client(const h_daemon *d)
{
    nc_client *c = NULL;
    int rv = nc_open(&c, d->url, 0);
    cr_assert_eq(rv, NC_OK, "nc_open(%s): %s", d->url, nc_errmsg());
    nc_set_timeout(c, 5000); /* a loaded 2-core machine can stall a process for a second */
    return c;
}

int64_t h_stat(nc_client *c, const char *name)
{
    nc_stat *st;
    size_t n;
    cr_assert_eq(nc_stats(c, &st, &n, 5000), NC_OK, "stats: %s", nc_errmsg());
    int64_t value = -1;
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(st[i].name, name) == 0)
            value = st[i].value, found = 1;
    nc_stats_free(st, n);
    cr_assert(found, "no stat named %s", name);
    return value;
}

pb_reply *h_raw(const h_daemon *d, const void *buf, size_t len, int timeout_ms)
{
    nng_socket s;
    nng_msg *m = NULL;
    cr_assert_eq(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
    /* No redial: after the daemon drops a message too big for it, REQ would
     * otherwise send it again on each new connection, and nng 1.5.2 can
     * hang in nng_close() on a socket doing that. */
    nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 600000);
    nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 600000);
    cr_assert_eq(nng_dial(s, d->url, NULL, 0), 0, "dial %s", d->url);
    cr_assert_eq(nng_msg_alloc(&m, len), 0);
    if (len > 0)
        memcpy(nng_msg_body(m), buf, len);
    pb_reply *r = NULL;
    if (nng_sendmsg(s, m, 0) != 0)
        nng_msg_free(m);
    else if (nng_recvmsg(s, &m, 0) == 0) {
        r = codec_reply_unpack(nng_msg_body(m), nng_msg_len(m));
        cr_assert_not_null(r, "the daemon's reply does not decode");
        nng_msg_free(m);
    }
    nng_close(s);
    return r;
}

/* Drains fd into a growing buffer until EOF. */
static char *slurp(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t got;
    while ((got = read(fd, buf + n, cap - n)) > 0 || (got < 0 && errno == EINTR)) {
        if (got > 0 && (n += (size_t)got) == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int h_run(char **argv, const void *in, size_t inlen, char **out, size_t *outlen, char **err)
{
    int pin[2], pout[2], perr[2];
    cr_assert(pipe(pin) == 0 && pipe(pout) == 0 && pipe(perr) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pin[0], 0), dup2(pout[1], 1), dup2(perr[1], 2);
        close(pin[1]), close(pout[0]), close(perr[0]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pin[0]), close(pout[1]), close(perr[1]);
    signal(SIGPIPE, SIG_IGN);
    for (size_t off = 0; in != NULL && off < inlen;) { /* the CLI reads stdin before writing */
        ssize_t w = write(pin[1], (const char *)in + off, inlen - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(pin[1]);
    size_t olen, elen;
    char *o = slurp(pout[0], &olen);
    char *e = slurp(perr[0], &elen);
    close(pout[0]), close(perr[0]);
    int status;
    waitpid(pid, &status, 0);
    if (out != NULL)
        *out = o, *outlen = olen;
    else
        free(o);
    if (err != NULL)
        *err = e;
    else
        free(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int h_cli(const h_daemon *d, const void *in, size_t inlen, char **out, size_t *outlen, char **err,
          ...)
{
    char *argv[MAX_ARGS] = {(char *)env_or("NC_CLI", "nearcache-cli"), "-s", (char *)d->url};
    int n = 3;
    va_list ap;
    va_start(ap, err);
    n = append_args(argv, n, ap);
    va_end(ap);
    return h_run(argv, in, inlen, out, outlen, err);
}

void h_proxy_start(h_proxy *p, const h_redis *r, int64_t delay_us)
{
    memset(p, 0, sizeof *p);
    char port[16], target[16], delay[32];
    p->port = h_free_port();
    snprintf(port, sizeof port, "%d", p->port);
    snprintf(target, sizeof target, "%d", r->port);
    snprintf(delay, sizeof delay, "%lld", (long long)delay_us);
    char *argv[] = {(char *)env_or("NC_PROXY", "nc-delay-proxy"),
                    port,
                    "127.0.0.1",
                    target,
                    "--delay-us",
                    delay,
                    NULL};
    p->pid = spawn_logged(argv, NULL);
    p->via = *r;
    p->via.port = p->port;
    snprintf(p->via.url, sizeof p->via.url, "redis://127.0.0.1:%d", p->port);
    for (int i = 0; i < 200 && !redis_answers(&p->via); i++)
        h_sleep_ms(10);
    cr_assert(redis_answers(&p->via), "nc-delay-proxy did not come up");
}

void h_proxy_stop(h_proxy *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

/* A cluster node on a free port, its bus on another (a free port may be
 * above 55535, so not port + 10000). */
static void cluster_node_start(h_redis *r)
{
    memset(r, 0, sizeof *r);
    make_dir(r->dir, sizeof r->dir, "cluster");
    r->port = h_free_port();
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    char port[16], bus[16], log[300];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(bus, sizeof bus, "%d", h_free_port());
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--cluster-enabled",
                    "yes", "--cluster-port", bus, "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "2000", "--dir", r->dir, "--save", "",
                    "--appendonly", "no", NULL};
    FILE *f = fopen(log, "w");
    cr_assert_not_null(f);
    r->pid = h_spawn(argv, -1, fileno(f), fileno(f));
    fclose(f);
    for (int i = 0; i < 200; i++) {
        char *pong = h_redis_cmd(r, "PING", NULL);
        int up = strcmp(pong, "PONG") == 0;
        free(pong);
        if (up)
            return;
        h_sleep_ms(20);
    }
    cr_assert_fail("a cluster node did not start (see %s)", log);
}

static int cluster_ok(const h_redis *r)
{
    char *info = h_redis_cmd(r, "CLUSTER", "INFO", NULL);
    int ok = strstr(info, "cluster_state:ok") != NULL;
    free(info);
    return ok;
}

int h_cluster_start(h_redis *nodes, int masters, int replicas)
{
    int n = masters * (1 + replicas), a = 3;
    char(*addr)[32] = calloc((size_t)n, sizeof *addr);
    char **argv = calloc((size_t)n + 8, sizeof *argv);
    cr_assert(addr != NULL && argv != NULL);
    argv[0] = "redis-cli", argv[1] = "--cluster", argv[2] = "create";
    for (int i = 0; i < n; i++) {
        cluster_node_start(&nodes[i]);
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", nodes[i].port);
        argv[a++] = addr[i];
    }
    char nrep[16];
    snprintf(nrep, sizeof nrep, "%d", replicas);
    argv[a++] = "--cluster-replicas";
    argv[a++] = nrep;
    argv[a++] = "--cluster-yes";
    char *out = NULL, *err = NULL;
    size_t len = 0;
    int rc = h_run(argv, NULL, 0, &out, &len, &err);
    cr_assert_eq(rc, 0, "redis-cli --cluster create: %s %s", out, err);
    free(out);
    free(err);
    free(argv);
    free(addr);
    for (int i = 0; i < 500; i++) {
        int ok = 1;
        for (int j = 0; j < n; j++)
            ok = ok && cluster_ok(&nodes[j]);
        if (ok)
            return n;
        h_sleep_ms(20);
    }
    cr_assert_fail("the cluster did not reach cluster_state:ok");
    return n;
}

void h_cluster_stop(h_redis *nodes, int n)
{
    for (int i = 0; i < n; i++)
        h_redis_cleanup(&nodes[i]);
}

static int keys_in_slot(const h_redis *r, const char *slot)
{
    char *out = h_redis_cmd(r, "CLUSTER", "COUNTKEYSINSLOT", slot, NULL);
    int n = atoi(out);
    free(out);
    return n;
}

int h_cluster_move_slot(h_redis *masters, int n, unsigned slot_no, int pause_ms, int *src_out)
{
    char slot[16], port[16];
    snprintf(slot, sizeof slot, "%u", slot_no);
    int src = -1;
    for (int i = 0; i < n; i++)
        if (keys_in_slot(&masters[i], slot) > 0)
            src = i;
    cr_assert_geq(src, 0, "no master holds keys of slot %s", slot);
    int dst = (src + 1) % n;
    char *src_id = h_redis_cmd(&masters[src], "CLUSTER", "MYID", NULL);
    char *dst_id = h_redis_cmd(&masters[dst], "CLUSTER", "MYID", NULL);
    snprintf(port, sizeof port, "%d", masters[dst].port);
    free(h_redis_cmd(&masters[dst], "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id, NULL));
    free(h_redis_cmd(&masters[src], "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id, NULL));
    for (int round = 0; round < 100 && keys_in_slot(&masters[src], slot) > 0; round++) {
        char *keys = h_redis_cmd(&masters[src], "CLUSTER", "GETKEYSINSLOT", slot, "100", NULL);
        for (char *save = NULL, *k = strtok_r(keys, "\n", &save); k != NULL;
             k = strtok_r(NULL, "\n", &save)) {
            free(h_redis_cmd(&masters[src], "MIGRATE", "127.0.0.1", port, k, "0", "5000", NULL));
            h_sleep_ms(pause_ms);
        }
        free(keys);
    }
    cr_expect_eq(keys_in_slot(&masters[src], slot), 0, "the source kept keys of slot %s", slot);
    /* the target first, then the source, as redis-cli --cluster does */
    free(h_redis_cmd(&masters[dst], "CLUSTER", "SETSLOT", slot, "NODE", dst_id, NULL));
    free(h_redis_cmd(&masters[src], "CLUSTER", "SETSLOT", slot, "NODE", dst_id, NULL));
    for (int i = 0; i < n; i++)
        if (i != src && i != dst)
            free(h_redis_cmd(&masters[i], "CLUSTER", "SETSLOT", slot, "NODE", dst_id, NULL));
    free(src_id);
    free(dst_id);
    if (src_out != NULL)
        *src_out = src;
    return dst;
}
