/* Secrets: secret_read() on files of every kind, and a real nearcached that
 * reads its Redis password from redis_password_file (or systemd's
 * $CREDENTIALS_DIRECTORY), refuses a file others may read, and never logs
 * the password or a value. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "secret.h"

TestSuite(secret, .timeout = 60);

#define PASSWORD "pw-Nine/Quail#7"
#define VALUE    "value-that-must-not-be-logged-4711"

/* Makes a temporary directory (path into dir). */
static void temp_dir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/nc-test-secret-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

/* Removes a temporary directory and what is in it. */
static void remove_tree(const char *dir)
{
    char *rm[] = {"rm", "-rf", (char *)dir, NULL};
    h_run(rm, NULL, 0, NULL, NULL, NULL);
}

/* Writes `text` to DIR/name with `mode`; the path goes into path. */
static void write_file(const char *dir, const char *name, const char *text, mode_t mode, char *path,
                       size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
}

/* secret_read() of a file holding `text` with `mode`: returns its result;
 * out gets the secret, err the message. */
static int read_back(const char *text, mode_t mode, char *out, size_t len, char *err, size_t errlen,
                     char *path, size_t pathlen)
{
    char dir[64];
    temp_dir(dir, sizeof dir);
    write_file(dir, "secret", text, mode, path, pathlen);
    err[0] = '\0';
    int rv = secret_read(path, out, len, err, errlen);
    remove_tree(dir);
    return rv;
}

Test(secret, reads_a_private_file_without_its_final_newline)
{
    char out[64], err[256], path[128];
    cr_assert_eq(
        read_back(PASSWORD "\n", 0600, out, sizeof out, err, sizeof err, path, sizeof path), 0,
        "%s", err);
    cr_assert_str_eq(out, PASSWORD);
    cr_assert_eq(read_back(PASSWORD, 0400, out, sizeof out, err, sizeof err, path, sizeof path), 0,
                 "%s", err);
    cr_assert_str_eq(out, PASSWORD);
}

Test(secret, empty_file_is_an_empty_secret)
{
    char out[64] = "x", err[256], path[128];
    cr_assert_eq(read_back("", 0600, out, sizeof out, err, sizeof err, path, sizeof path), 0);
    cr_assert_str_eq(out, "");
    out[0] = 'x'; /* the unit's fallback credential is one newline */
    cr_assert_eq(read_back("\n", 0600, out, sizeof out, err, sizeof err, path, sizeof path), 0);
    cr_assert_str_eq(out, "");
}

Test(secret, refuses_a_file_group_or_others_may_read_naming_it_and_not_the_secret)
{
    static const mode_t modes[] = {0640, 0604, 0660, 0602};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char out[64], err[256], path[128], want[256];
        int rv = read_back(PASSWORD, modes[i], out, sizeof out, err, sizeof err, path, sizeof path);
        cr_assert_eq(rv, -1, "mode %o accepted", modes[i]);
        snprintf(want, sizeof want, "%s: group or others may read or write it (mode %04o)", path,
                 modes[i]);
        cr_assert(strstr(err, want) != NULL, "error: %s", err);
        cr_assert(strstr(err, PASSWORD) == NULL, "the error shows the secret: %s", err);
        cr_assert_str_empty(out);
    }
}

Test(secret, refuses_two_lines_a_nul_and_a_secret_too_long)
{
    char out[16], err[256], path[128];
    cr_assert_eq(read_back("one\ntwo\n", 0600, out, sizeof out, err, sizeof err, path, sizeof path),
                 -1);
    cr_assert(strstr(err, "more than one line") != NULL, "%s", err);
    cr_assert_eq(
        read_back("0123456789abcdefXYZ", 0600, out, sizeof out, err, sizeof err, path, sizeof path),
        -1);
    cr_assert(strstr(err, "longer than 15 bytes") != NULL, "%s", err);
    char dir[64];
    temp_dir(dir, sizeof dir);
    cr_assert_eq(secret_read(dir, out, sizeof out, err, sizeof err), -1);
    cr_assert(strstr(err, "not a regular file") != NULL, "%s", err);
    remove_tree(dir);
}

Test(secret, missing_file_is_named)
{
    char out[16], err[256];
    cr_assert_eq(secret_read("/nonexistent/nc-secret", out, sizeof out, err, sizeof err), -1);
    cr_assert_str_eq(err, "/nonexistent/nc-secret: cannot open: No such file or directory");
}

Test(secret, relative_path_is_looked_up_in_credentials_directory)
{
    char dir[64], path[128], out[64], err[256] = "";
    temp_dir(dir, sizeof dir);
    write_file(dir, "redis_password", PASSWORD "\n", 0400, path, sizeof path);
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    cr_assert_eq(secret_read("redis_password", out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(out, PASSWORD);
    remove_tree(dir);
}

/* ---- a real daemon ------------------------------------------------------ */

/* A fleet whose Redis requires PASSWORD, without daemons yet; plain_url
 * gets its URL without the password. */
static void protected_redis(h_fleet *f, char *plain_url, size_t len)
{
    h_fleet_start(f, 0, NULL);
    snprintf(plain_url, len, "redis://127.0.0.1:%d", f->redis.port);
    h_redis_protect(&f->redis, PASSWORD, 0);
}

/* Sets and reads back a key through the daemon, so that VALUE passes
 * through every path that might log it. */
static void set_and_get(const h_daemon *d)
{
    nc_client *c = h_client(d);
    cr_assert_eq(nc_set(c, NC_STR("ns"), NC_STR("k"), NC_STR(VALUE), 60000, 0), NC_OK, "set: %s",
                 nc_errmsg());
    void *v = NULL;
    size_t len = 0;
    for (int i = 0; i < 2; i++) { /* from Redis, then from L1 */
        cr_assert_eq(nc_get(c, NC_STR("ns"), NC_STR("k"), &v, &len, 0), NC_OK, "get: %s",
                     nc_errmsg());
        cr_assert_eq(len, strlen(VALUE));
        nc_free(v);
    }
    nc_close(c);
}

static void expect_log_without_secrets(const h_daemon *d)
{
    char *log = h_read_file(d->log, NULL);
    cr_assert_not_null(log);
    cr_assert(strstr(log, "connected to redis") != NULL, "log:\n%s", log);
    cr_assert(strstr(log, PASSWORD) == NULL, "the log shows the password:\n%s", log);
    cr_assert(strstr(log, VALUE) == NULL, "the log shows a value:\n%s", log);
    free(log);
}

Test(secret, daemon_authenticates_with_the_password_file_and_never_logs_it)
{
    h_fleet fx;
    char url[64], dir[64], path[128];
    protected_redis(&fx, url, sizeof url);
    temp_dir(dir, sizeof dir);
    write_file(dir, "redis.pw", PASSWORD "\n", 0600, path, sizeof path);
    /* h_fleet_add waits until L1 serves: the workers, the subscriber and
     * the heartbeat all authenticated. Debug logging shows the most. */
    h_daemon *d = h_fleet_add(&fx, &fx.redis, "--redis", url, "--redis-password-file", path, NULL);
    set_and_get(d);
    expect_log_without_secrets(d);
    h_fleet_stop(&fx);
    remove_tree(dir);
}

Test(secret, daemon_reads_the_credential_systemd_hands_it)
{
    h_fleet fx;
    char url[64], dir[64], path[128];
    protected_redis(&fx, url, sizeof url);
    temp_dir(dir, sizeof dir);
    write_file(dir, "redis_password", PASSWORD, 0400, path, sizeof path);
    setenv("CREDENTIALS_DIRECTORY", dir, 1); /* as LoadCredential= does */
    h_daemon *d = h_fleet_add(&fx, &fx.redis, "--redis", url, "--redis-password-file",
                              "redis_password", "--log-format", "json", NULL);
    set_and_get(d);
    expect_log_without_secrets(d);
    h_fleet_stop(&fx);
    remove_tree(dir);
}

/* Runs nearcached with a config file of `lines`; returns its exit code and
 * its stderr in *err (caller frees). */
static int run_with_config(const char *lines, const char *conf, char **err)
{
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs(lines, f);
    fclose(f);
    char *argv[] = {getenv("NC_DAEMON"), "--config", (char *)conf, NULL}, *out = NULL;
    size_t len;
    int code = h_run(argv, NULL, 0, &out, &len, err);
    free(out);
    return code;
}

Test(secret, password_file_others_may_read_stops_start_up_naming_file_line_and_setting)
{
    char dir[64], pw[128], conf[128], text[512], want[512];
    temp_dir(dir, sizeof dir);
    write_file(dir, "redis.pw", PASSWORD, 0644, pw, sizeof pw);
    snprintf(conf, sizeof conf, "%s/nearcached.conf", dir);
    snprintf(text, sizeof text,
             "listen = ipc://%s/x.sock\nredis = redis://127.0.0.1:1\nredis_password_file = %s\n",
             dir, pw);
    char *err = NULL;
    int code = run_with_config(text, conf, &err);
    cr_assert_eq(code, 2, "exit %d; stderr: %s", code, err);
    snprintf(want, sizeof want,
             "%s:3: redis_password_file: %s: group or others may read or write it (mode 0644)",
             conf, pw);
    cr_assert(strstr(err, want) != NULL, "stderr: %s", err);
    cr_assert(strstr(err, PASSWORD) == NULL, "stderr shows the password: %s", err);
    free(err);
    remove_tree(dir);
}

Test(secret, password_in_the_url_and_in_a_file_is_refused)
{
    char dir[64], pw[128], conf[128], text[512];
    temp_dir(dir, sizeof dir);
    write_file(dir, "redis.pw", PASSWORD, 0600, pw, sizeof pw);
    snprintf(conf, sizeof conf, "%s/nearcached.conf", dir);
    snprintf(text, sizeof text,
             "listen = ipc://%s/x.sock\nredis = redis://:other@127.0.0.1:1\n"
             "redis_password_file = %s\n",
             dir, pw);
    char *err = NULL;
    int code = run_with_config(text, conf, &err);
    cr_assert_eq(code, 2, "exit %d; stderr: %s", code, err);
    cr_assert(strstr(err, "both the redis URL and redis_password_file give a password") != NULL,
              "stderr: %s", err);
    cr_assert(strstr(err, PASSWORD) == NULL && strstr(err, "other") == NULL, "stderr: %s", err);
    free(err);
    remove_tree(dir);
}
