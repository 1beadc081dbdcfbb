/* Integration: the acl rules against real clients of other uids and gids.
 * nearcache-cli, and nc-acl-reader (acl_reader.c: a client with a near
 * tier), run under setpriv as users of the base system (daemon, uid 1;
 * bin, uid 2); the harness's own client is root's. The tests run as
 * root (CI does) to switch users, and make a throwaway user and group for
 * the supplementary-groups case. The socket is 0666 so that every uid can
 * connect: the rules, not the file mode, are under test. */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

TestSuite(aclpeer, .timeout = 60);

#define DAEMON_UID 1 /* Debian's daemon user and group */
#define BIN_UID    2 /* bin */
#define ROOT_RULE  "* uid:0 rwa"

static h_fleet fx;

/* Starts Redis and one daemon with the given flags (NULL-terminated, at
 * most 12), on a socket every uid may open. */
static h_daemon *start(const char *first, ...)
{
    char *flags[16] = {"--socket-mode", "0666"};
    int n = 2;
    va_list ap;
    va_start(ap, first);
    for (const char *f = first; f != NULL && n < 15; f = va_arg(ap, const char *))
        flags[n++] = (char *)f;
    va_end(ap);
    h_fleet_start(&fx, 0, NULL);
    h_daemon *d = h_fleet_add(&fx, &fx.redis, flags[0], flags[1], flags[2], flags[3], flags[4],
                              flags[5], flags[6], flags[7], flags[8], flags[9], flags[10],
                              flags[11], flags[12], flags[13], NULL);
    cr_assert_eq(chmod(d->dir, 0755), 0);
    return d;
}

/* Runs `nearcache-cli -s URL ARGS...` (NULL-terminated) as uid:gid with
 * no supplementary groups; returns its exit code, stdout into *out and
 * stderr into *err when not NULL (the caller frees them). */
static int cli_as(const h_daemon *d, unsigned uid, unsigned gid, char **out, char **err, ...)
{
    char u[32], g[32];
    snprintf(u, sizeof u, "--reuid=%u", uid);
    snprintf(g, sizeof g, "--regid=%u", gid);
    char *argv[32] = {"setpriv", u, g, "--clear-groups", getenv("NC_CLI"), "-s", (char *)d->url,
                      "-t", "3s"};
    int n = 9;
    va_list ap;
    va_start(ap, err);
    for (char *a; n < 31 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    size_t len;
    return h_run(argv, NULL, 0, out, &len, err);
}

#define DENIED(err, what)                                                                          \
    do {                                                                                           \
        cr_assert(strstr(err, "PERMISSION_DENIED") != NULL, "stderr: %s", err);                    \
        cr_assert(strstr(err, what) != NULL, "stderr without \"%s\": %s", what, err);              \
    } while (0)

/* The refusals the Stats reply counts for namespace `name` (-1: no row). */
static int64_t ns_denied(nc_client *c, const char *name)
{
    nc_stat *st;
    nc_ns_stat *ns;
    size_t n, nns;
    cr_assert_eq(nc_stats_ex(c, &st, &n, &ns, &nns, 3000), NC_OK, "%s", nc_errmsg());
    int64_t denied = -1;
    for (size_t i = 0; i < nns; i++)
        if (!ns[i].other && strcmp(ns[i].ns, name) == 0)
            denied = (int64_t)ns[i].acl_denied;
    nc_stats_free(st, n);
    nc_ns_stats_free(ns, nns);
    return denied;
}

Test(aclpeer, runs_as_root)
{
    cr_assert_eq(geteuid(), 0, "these tests switch users: run them as root (CI does)");
}

Test(aclpeer, each_peer_gets_what_its_first_matching_rule_grants)
{
    h_daemon *d = start("--acl", ROOT_RULE, "--acl", "billing* uid:1 rw", "--acl", "public* * r",
                        NULL);
    char *out, *err;
    cr_assert_eq(cli_as(d, DAEMON_UID, DAEMON_UID, NULL, &err, "set", "billing", "k", "v", NULL),
                 0, "%s", err);
    free(err);
    cr_assert_eq(cli_as(d, DAEMON_UID, DAEMON_UID, &out, &err, "get", "billing-eu", "k", NULL), 1,
                 "a miss, allowed: %s", err);
    free(out), free(err);
    cr_assert_eq(cli_as(d, DAEMON_UID, DAEMON_UID, &out, NULL, "get", "billing", "k", NULL), 0);
    cr_assert_str_eq(out, "v");
    free(out);
    /* uid 1 may not write outside billing*, nor bump; uid 2 may only read public*. */
    cr_assert_eq(cli_as(d, DAEMON_UID, DAEMON_UID, NULL, &err, "set", "orders", "k", "v", NULL),
                 3);
    DENIED(err, "namespace \"orders\": uid 1 gid 1 lacks the right 'w'");
    free(err);
    cr_assert_eq(cli_as(d, DAEMON_UID, DAEMON_UID, NULL, &err, "bump", "billing", NULL), 3);
    DENIED(err, "lacks the right 'a'");
    free(err);
    cr_assert_eq(cli_as(d, BIN_UID, BIN_UID, NULL, &err, "get", "billing", "k", NULL), 3);
    DENIED(err, "namespace \"billing\": uid 2 gid 2 lacks the right 'r'");
    free(err);
    cr_assert_eq(cli_as(d, BIN_UID, BIN_UID, NULL, &err, "del", "public", "k", NULL), 3);
    DENIED(err, "'w'");
    free(err);
    cr_assert_eq(cli_as(d, BIN_UID, BIN_UID, &out, &err, "get", "public", "k", NULL), 1, "%s",
                 err);
    free(out), free(err);
    /* Stats needs 'a' on some rule; Ping always answers. */
    cr_assert_eq(cli_as(d, BIN_UID, BIN_UID, NULL, &err, "stats", NULL), 3);
    DENIED(err, "the right 'a'");
    free(err);
    cr_assert_eq(cli_as(d, BIN_UID, BIN_UID, NULL, NULL, "ping", NULL), 0);
    cr_assert_eq(h_stat(fx.cl[0], "acl_denied"), 5, "five refusals counted");
    /* by namespace too (Stats names none: it is counted only in the total) */
    cr_assert_eq(ns_denied(fx.cl[0], "orders"), 1);
    cr_assert_eq(ns_denied(fx.cl[0], "billing"), 2, "a Get and a bump");
    cr_assert_eq(ns_denied(fx.cl[0], "public"), 1);
    h_fleet_stop(&fx);
}

Test(aclpeer, a_denied_batch_is_answered_and_the_daemon_goes_on)
{
    h_daemon *d = start("--acl", ROOT_RULE, "--acl", "mine uid:1 rw", NULL);
    /* An MGet it may not make, then one it may. (test_acl.py makes both on
     * one connection.) */
    char *err;
    cr_assert_eq(cli_as(d, DAEMON_UID, DAEMON_UID, NULL, &err, "mget", "theirs", "a", NULL), 3);
    DENIED(err, "namespace \"theirs\"");
    free(err);
    cr_assert_eq(cli_as(d, DAEMON_UID, DAEMON_UID, NULL, NULL, "mget", "mine", "a", NULL), 1);
    cr_assert_eq(cli_as(d, DAEMON_UID, DAEMON_UID, NULL, NULL, "ping", NULL), 0);
    cr_assert(h_daemon_alive(d));
    h_fleet_stop(&fx);
}

Test(aclpeer, a_reader_that_is_denied_keeps_nothing_in_its_near_tier)
{
    h_daemon *d = start("--acl", ROOT_RULE, "--acl", "mine uid:1 r", NULL);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("secret"), NC_STR("k"), NC_STR("s"), 60000, 3000), NC_OK);
    cr_assert_eq(nc_set(fx.cl[0], NC_STR("mine"), NC_STR("k"), NC_STR("m"), 60000, 3000), NC_OK);
    char *argv[] = {"setpriv", "--reuid=1", "--regid=1", "--clear-groups", NC_ACL_READER,
                    d->url, NULL},
         *err;
    cr_assert_eq(h_run(argv, NULL, 0, NULL, NULL, &err), 0, "%s", err);
    free(err);
    cr_assert_eq(h_stat(fx.cl[0], "acl_denied"), 4, "two Gets and two MGets; its report let in");
    cr_assert_eq(h_stat(fx.cl[0], "near_clients"), 1, "its NearReport was taken");
    h_fleet_stop(&fx);
}

/* Writes text to path. */
static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(aclpeer, sighup_reloads_the_rules)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/nc-aclpeer-%d.conf", (int)getpid());
    write_file(path, "acl = " ROOT_RULE "\n");
    h_daemon *d = start("--config", path, NULL);
    char *err;
    cr_assert_eq(cli_as(d, BIN_UID, BIN_UID, NULL, &err, "get", "ns", "k", NULL), 3);
    DENIED(err, "'r'");
    free(err);
    write_file(path, "acl = " ROOT_RULE "\nacl = ns user:bin r\n");
    kill(d->pid, SIGHUP);
    int code = 3;
    for (int64_t t0 = h_now_ms(); code == 3 && h_now_ms() - t0 < 20000;) {
        h_sleep_ms(50);
        code = cli_as(d, BIN_UID, BIN_UID, NULL, NULL, "get", "ns", "k", NULL);
    }
    cr_assert_eq(code, 1, "after SIGHUP, bin may read ns (a miss)");
    char *log = h_read_file(d->log, NULL);
    cr_assert(strstr(log, "SIGHUP: acl: 2 rules") != NULL, "log:\n%s", log);
    free(log);
    /* A rule naming an unknown user: logged, and the old rules stay. */
    write_file(path, "acl = " ROOT_RULE "\nacl = ns user:no-such-user-nc r\n");
    kill(d->pid, SIGHUP);
    for (int64_t t0 = h_now_ms();;) {
        h_sleep_ms(50);
        log = h_read_file(d->log, NULL);
        int seen = strstr(log, ":2: acl: no user \"no-such-user-nc\"") != NULL;
        free(log);
        if (seen)
            break;
        cr_assert_lt(h_now_ms() - t0, 20000, "no error line for the bad rule in 20 s");
    }
    cr_assert_eq(cli_as(d, BIN_UID, BIN_UID, NULL, NULL, "get", "ns", "k", NULL), 1);
    unlink(path);
    h_fleet_stop(&fx);
}

Test(aclpeer, config_errors_name_the_file_line_and_setting)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/nc-aclpeer-bad-%d.conf", (int)getpid());
    static const char *const cases[][2] = {
        {"acl = * user:no-such-user-nc r", "no user \"no-such-user-nc\""},
        {"acl = * group:no-such-group-nc r", "no group \"no-such-group-nc\""},
        {"acl = * uid:1 rwx", "invalid RIGHTS \"rwx\""},
        {"acl = billing*", "expected PATTERN WHO RIGHTS"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256], want[256];
        snprintf(text, sizeof text, "acl = * uid:0 rwa\n%s\n", cases[i][0]);
        write_file(path, text);
        char *argv[] = {getenv("NC_DAEMON"), "--config", path, NULL}, *err;
        cr_assert_eq(h_run(argv, NULL, 0, NULL, NULL, &err), 2, "%s", cases[i][0]);
        snprintf(want, sizeof want, "%s:2: acl: ", path);
        cr_assert(strstr(err, want) != NULL && strstr(err, cases[i][1]) != NULL, "%s", err);
        free(err);
    }
    unlink(path);
}

/* Runs a command line through sh; asserts it exits 0. */
static void sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char *argv[] = {"sh", "-c", cmd, NULL}, *err;
    cr_assert_eq(h_run(argv, NULL, 0, NULL, NULL, &err), 0, "%s: %s", cmd, err);
    free(err);
}

/* The throwaway user and group carry the test process's pid, so that two
 * runs at once (two checkouts, or a run beside a crashed one's leftovers)
 * never add, use or delete each other's. */
#define TEAM_GROUP "nc-acl-team-"
#define TEAM_USER  "nc-acl-user-"

static char team_user[32], team_group[32];

/* Removes the user and group of run `pid` and bin's membership; each step
 * may fail (nothing to undo). */
static void drop_team_of(long pid)
{
    char user[32], group[32];
    snprintf(user, sizeof user, TEAM_USER "%ld", pid);
    snprintf(group, sizeof group, TEAM_GROUP "%ld", pid);
    char *u[] = {"userdel", user, NULL}, *g[] = {"groupdel", group, NULL};
    char *leave[] = {"gpasswd", "-d", "bin", group, NULL};
    h_run(leave, NULL, 0, NULL, NULL, NULL);
    h_run(u, NULL, 0, NULL, NULL, NULL);
    h_run(g, NULL, 0, NULL, NULL, NULL);
}

static void drop_team(void)
{
    if (team_group[0] != '\0')
        drop_team_of((long)getpid());
}

/* Removes what runs that are gone (killed at their timeout) left behind:
 * the groups named for a pid that no longer runs. */
static void drop_dead_teams(void)
{
    long dead[64];
    size_t n = 0;
    setgrent();
    for (struct group *gr; n < 64 && (gr = getgrent()) != NULL;) {
        char *end;
        if (strncmp(gr->gr_name, TEAM_GROUP, strlen(TEAM_GROUP)) != 0)
            continue;
        long pid = strtol(gr->gr_name + strlen(TEAM_GROUP), &end, 10);
        if (*end == '\0' && pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            dead[n++] = pid;
    }
    endgrent();
    for (size_t i = 0; i < n; i++)
        drop_team_of(dead[i]);
}

Test(aclpeer, group_rules_match_the_peers_supplementary_groups, .fini = drop_team)
{
    drop_dead_teams();
    snprintf(team_group, sizeof team_group, TEAM_GROUP "%ld", (long)getpid());
    snprintf(team_user, sizeof team_user, TEAM_USER "%ld", (long)getpid());
    sh("groupadd %s && useradd -M -N -g nogroup -G %s -s /usr/sbin/nologin %s", team_group,
       team_group, team_user);
    char rule[96];
    snprintf(rule, sizeof rule, "team* group:%s rw", team_group);
    h_daemon *d = start("--acl", ROOT_RULE, "--acl", rule, NULL);
    struct passwd *pw = getpwnam(team_user);
    cr_assert_not_null(pw);
    /* Its process has gid nogroup and no supplementary groups: the group
     * is found by the daemon's lookup of the uid's groups. */
    char *err;
    cr_assert_eq(cli_as(d, pw->pw_uid, 65534, NULL, &err, "set", "team", "k", "v", NULL), 0, "%s",
                 err);
    free(err);
    cr_assert_eq(cli_as(d, BIN_UID, BIN_UID, NULL, &err, "get", "team", "k", NULL), 3);
    DENIED(err, "namespace \"team\"");
    free(err);
    /* bin joins the group: seen once its cached groups run out (5 s),
     * without a SIGHUP. The wait is not that bound: on a loaded machine one
     * setpriv and nearcache-cli can take seconds; 20 s is for that. */
    sh("usermod -aG %s bin", team_group);
    int64_t start = h_now_ms();
    int code = 3;
    while (code == 3 && h_now_ms() - start < 20000) {
        h_sleep_ms(200);
        code = cli_as(d, BIN_UID, BIN_UID, NULL, NULL, "get", "team", "k", NULL);
    }
    cr_assert_eq(code, 0, "bin still refused %lld ms after joining the group",
                 (long long)(h_now_ms() - start));
    h_fleet_stop(&fx);
}
