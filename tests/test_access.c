/* Integration: who may connect to nearcached's ipc:// socket. The socket
 * file gets socket_mode (0660 by default: never world-writable) and
 * socket_group; a group given explicitly must exist. Connections are tried
 * by nearcache-cli running as another user (the tests run as root, as CI
 * does, to switch users). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(access, .timeout = 30);

#define NOBODY 65534 /* Debian's nobody and nogroup */

/* Runs `nearcache-cli -s URL ping` as uid/gid with no other groups; returns
 * its exit code (0: answered, 3: could not connect). */
static int ping_as(const char *url, uid_t uid, gid_t gid)
{
    const char *cli = getenv("NC_CLI");
    cr_assert(cli != NULL, "$NC_CLI is not set (run the test through ctest)");
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0), dup2(null, 1), dup2(null, 2);
        if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
            _exit(126);
        execl(cli, cli, "-s", url, "-t", "2s", "ping", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static struct stat socket_stat(const h_daemon *d)
{
    struct stat st;
    cr_assert_eq(stat(d->url + strlen("ipc://"), &st), 0, "stat %s: %s", d->url, strerror(errno));
    return st;
}

/* The daemon's directory must let other users reach the socket in it. */
static void open_dir(const h_daemon *d)
{
    cr_assert_eq(chmod(d->dir, 0755), 0);
}

Test(access, runs_as_root)
{
    cr_assert_eq(geteuid(), 0, "these tests switch users: run them as root (CI does)");
}

Test(access, default_socket_is_0660_and_not_open_to_others)
{
    h_daemon d;
    h_daemon_start(&d, NULL, NULL);
    open_dir(&d);
    struct stat st = socket_stat(&d);
    cr_assert_eq(st.st_mode & 0777, 0660, "socket mode %o", st.st_mode & 0777);
    struct group *g = getgrnam("nearcache");
    char *log = h_read_file(d.log, NULL);
    if (g != NULL) { /* the package made the group on this machine */
        cr_assert_eq(st.st_gid, g->gr_gid);
    } else { /* the documented fallback: the daemon's own group, and a warning */
        cr_assert_eq(st.st_gid, getegid());
        cr_assert(strstr(log, "no group \"nearcache\" on this system") != NULL, "log:\n%s", log);
    }
    free(log);
    cr_assert_eq(ping_as(d.url, NOBODY, NOBODY), 3, "nobody could connect");
    cr_assert_eq(ping_as(d.url, 0, 0), 0, "root could not connect");
    cr_assert_eq(h_daemon_stop(&d), 0);
}

Test(access, members_of_socket_group_may_connect_and_others_not)
{
    h_daemon d;
    h_daemon_start(&d, NULL, "--socket-group", "daemon", NULL);
    open_dir(&d);
    struct stat st = socket_stat(&d);
    cr_assert_eq(st.st_gid, 1, "socket group %d, not daemon's (1)", (int)st.st_gid);
    cr_assert_eq(ping_as(d.url, NOBODY, 1), 0, "a member of the group could not connect");
    cr_assert_eq(ping_as(d.url, NOBODY, NOBODY), 3, "a user outside the group could connect");
    cr_assert_eq(h_daemon_stop(&d), 0);
}

Test(access, socket_mode_0666_opens_it_to_every_local_user)
{
    h_daemon d;
    h_daemon_start(&d, NULL, "--socket-mode", "0666", NULL);
    open_dir(&d);
    cr_assert_eq(socket_stat(&d).st_mode & 0777, 0666);
    cr_assert_eq(ping_as(d.url, NOBODY, NOBODY), 0, "nobody could not connect to a 0666 socket");
    cr_assert_eq(h_daemon_stop(&d), 0);
}

Test(access, socket_mode_0600_keeps_out_the_group)
{
    h_daemon d;
    h_daemon_start(&d, NULL, "--socket-mode", "600", "--socket-group", "daemon", NULL);
    open_dir(&d);
    cr_assert_eq(socket_stat(&d).st_mode & 0777, 0600);
    cr_assert_eq(ping_as(d.url, NOBODY, 1), 3, "a group member could connect to a 0600 socket");
    cr_assert_eq(h_daemon_stop(&d), 0);
}

/* Runs nearcached as nobody (uid and gid 65534) in a directory of nobody's,
 * with --socket-group `group` unless it is NULL, stderr into DIR/log. Waits
 * until its socket exists or it exits; returns its pid, or -1 with *code
 * set when it exited. */
static pid_t start_as_nobody(char *dir, size_t len, const char *group, int *code)
{
    snprintf(dir, len, "/tmp/nc-test-access-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chown(dir, NOBODY, NOBODY), 0);
    char url[128], log[128], sock[128];
    snprintf(url, sizeof url, "ipc://%s/nc.sock", dir);
    snprintf(sock, sizeof sock, "%s/nc.sock", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
            _exit(126);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1), dup2(fd, 2);
        char *d = getenv("NC_DAEMON");
        execl(d, d, "--listen", url, "--redis", "redis://127.0.0.1:1",
              group != NULL ? "--socket-group" : NULL, group, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            return -1;
        }
        if (access(sock, F_OK) == 0)
            return pid;
        h_sleep_ms(10);
    }
    cr_assert_fail("nearcached as nobody made no socket in 5 s");
    return -1;
}

static void remove_tree(const char *dir)
{
    char *rm[] = {"rm", "-rf", (char *)dir, NULL};
    h_run(rm, NULL, 0, NULL, NULL, NULL);
}

Test(access, default_group_the_daemon_may_not_use_leaves_its_own_group_and_a_warning)
{
    char dir[64], sock[96], log[96];
    int code = 0;
    pid_t pid = start_as_nobody(dir, sizeof dir, NULL, &code);
    snprintf(log, sizeof log, "%s/log", dir);
    cr_assert_gt(pid, 0, "exited %d; log:\n%s", code, h_read_file(log, NULL));
    h_sleep_ms(200); /* the socket exists before its group is set */
    snprintf(sock, sizeof sock, "%s/nc.sock", dir);
    struct stat st;
    cr_assert_eq(stat(sock, &st), 0);
    cr_assert_eq(st.st_gid, NOBODY, "socket group %d", (int)st.st_gid);
    cr_assert_eq(st.st_mode & 0777, 0660);
    char *text = h_read_file(log, NULL);
    const char *want = getgrnam("nearcache") != NULL ? "cannot give the socket" : "no group";
    cr_assert(strstr(text, want) != NULL, "log lacks \"%s\":\n%s", want, text);
    free(text);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    remove_tree(dir);
}

Test(access, socket_group_given_that_the_daemon_may_not_use_stops_start_up)
{
    char dir[64], log[96];
    int code = 0;
    pid_t pid = start_as_nobody(dir, sizeof dir, "daemon", &code);
    snprintf(log, sizeof log, "%s/log", dir);
    if (pid > 0) { /* the socket appeared just before the daemon gave up */
        int status;
        waitpid(pid, &status, 0);
        code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    char *text = h_read_file(log, NULL);
    cr_assert_eq(code, 1, "exit %d; log:\n%s", code, text);
    cr_assert(strstr(text, "cannot give the socket") != NULL &&
                  strstr(text, "to group 1 (socket_group): Operation not permitted") != NULL,
              "log:\n%s", text);
    free(text);
    remove_tree(dir);
}

/* Runs nearcached with a config file holding `line` as line 2; returns its
 * exit code and puts its stderr in *err (the caller frees it). */
static int start_with_line(const char *line, char **err)
{
    char dir[] = "/tmp/nc-test-access-XXXXXX", path[64], text[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/bad.conf", dir);
    snprintf(text, sizeof text, "listen = ipc://%s/x.sock\n%s\n", dir, line);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    char *argv[] = {getenv("NC_DAEMON"), "--config", path, "--redis", "redis://127.0.0.1:1", NULL};
    char *out = NULL;
    size_t len;
    int code = h_run(argv, NULL, 0, &out, &len, err);
    free(out);
    char where[96];
    snprintf(where, sizeof where, "%s:2: ", path);
    cr_assert(strstr(*err, where) != NULL, "stderr does not name %s: %s", where, *err);
    unlink(path);
    rmdir(dir);
    return code;
}

Test(access, missing_socket_group_given_explicitly_stops_start_up)
{
    char *err = NULL;
    int code = start_with_line("socket_group = no-such-group-nc", &err);
    cr_assert_eq(code, 2, "exit %d; stderr: %s", code, err);
    cr_assert(strstr(err, "socket_group: no group \"no-such-group-nc\"") != NULL, "stderr: %s",
              err);
    free(err);
}

Test(access, bad_socket_modes_stop_start_up)
{
    static const char *const lines[][2] = {
        {"socket_mode = 0999", "invalid mode"},
        {"socket_mode = 01660", "invalid mode"},
        {"socket_mode = 0066", "must let the owner read and write"},
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char *err = NULL;
        int code = start_with_line(lines[i][0], &err);
        cr_assert_eq(code, 2, "%s: exit %d; stderr: %s", lines[i][0], code, err);
        cr_assert(strstr(err, "socket_mode: ") != NULL && strstr(err, lines[i][1]) != NULL,
                  "%s: stderr: %s", lines[i][0], err);
        free(err);
    }
}
