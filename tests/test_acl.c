/* The acl module: rule parsing, globs, first match wins, and groups. */
#include <criterion/criterion.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"

static acl *make(const char *rules)
{
    acl *a;
    char err[256];
    cr_assert_eq(acl_create(&a, rules, err, sizeof err), 0, "%s", err);
    return a;
}

static unsigned missing(acl *a, uid_t uid, gid_t gid, const char *ns, unsigned want)
{
    acl_peer p = {1, uid, gid};
    return acl_missing(a, &p, ns, strlen(ns), want, 0);
}

Test(acl, globs_match_whole_namespaces)
{
    cr_assert(acl_glob("*", "", 0));
    cr_assert(acl_glob("billing*", "billing", 7));
    cr_assert(acl_glob("billing*", "billing-eu", 10));
    cr_assert_not(acl_glob("billing*", "bill", 4));
    cr_assert_not(acl_glob("billing", "billing2", 8));
    cr_assert(acl_glob("*-eu", "billing-eu", 10));
    cr_assert(acl_glob("a*b*c", "aXXbYbZc", 8));
    cr_assert_not(acl_glob("a*b*c", "aXXbYbZ", 7));
    cr_assert(acl_glob("u?ers", "users", 5));
    cr_assert(acl_glob("a*", "a\0b", 3), "a namespace's NUL is one more byte");
}

Test(acl, rules_parse_and_bad_ones_say_why)
{
    acl_rule r;
    char err[256];
    cr_assert_eq(acl_rule_parse("billing* uid:1000 rw", &r, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(r.pattern, "billing*");
    cr_assert_eq(r.who, ACL_UID);
    cr_assert_eq(r.id, 1000);
    cr_assert_eq(r.rights, ACL_READ | ACL_WRITE);
    cr_assert_eq(acl_rule_parse("* user:root a", &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.who, ACL_UID);
    cr_assert_eq(r.id, 0);
    cr_assert_eq(acl_rule_parse("* group:daemon r", &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.who, ACL_GID);
    cr_assert_eq(r.id, 1);
    cr_assert_eq(acl_rule_parse("*  *\t\"\"", &r, err, sizeof err), -1);
    cr_assert_eq(acl_rule_parse("* * rx", &r, err, sizeof err), -1);
    cr_assert(strstr(err, "invalid RIGHTS \"rx\"") != NULL, "%s", err);
    cr_assert_eq(acl_rule_parse("* user:no-such-user-here r", &r, err, sizeof err), -1);
    cr_assert(strstr(err, "no user \"no-such-user-here\"") != NULL, "%s", err);
    cr_assert_eq(acl_rule_parse("* group:no-such-group-here r", &r, err, sizeof err), -1);
    cr_assert(strstr(err, "no group \"no-such-group-here\"") != NULL, "%s", err);
    cr_assert_eq(acl_rule_parse("* uid:-1 r", &r, err, sizeof err), -1);
    cr_assert_eq(acl_rule_parse("* someone r", &r, err, sizeof err), -1);
    cr_assert(strstr(err, "invalid WHO") != NULL, "%s", err);
    cr_assert_eq(acl_rule_parse("* uid:1", &r, err, sizeof err), -1);
    cr_assert_eq(acl_rule_parse("* uid:1 r w", &r, err, sizeof err), -1);
}

Test(acl, no_rules_allow_everything)
{
    acl *a = make("");
    cr_assert_eq(acl_rules(a), 0);
    cr_assert_eq(missing(a, 1234, 1234, "any", ACL_READ | ACL_WRITE | ACL_ADMIN), 0);
    acl_peer nobody = {0};
    cr_assert(acl_any(a, &nobody, ACL_ADMIN, 0));
    acl_destroy(a);
}

Test(acl, the_first_matching_rule_decides_and_the_rest_is_denied)
{
    acl *a = make("billing* uid:1000 r\n* uid:1000 rwa\n\nusers gid:50 rw\n");
    cr_assert_eq(acl_rules(a), 3);
    cr_assert_eq(missing(a, 1000, 1000, "billing", ACL_WRITE), ACL_WRITE,
                 "the billing rule came first: no fall-through to the wider one");
    cr_assert_eq(missing(a, 1000, 1000, "billing", ACL_READ), 0);
    cr_assert_eq(missing(a, 1000, 1000, "users", ACL_WRITE | ACL_ADMIN), 0);
    cr_assert_eq(missing(a, 2000, 50, "users", ACL_READ | ACL_WRITE), 0, "by primary gid");
    cr_assert_eq(missing(a, 2000, 50, "users", ACL_ADMIN), ACL_ADMIN);
    cr_assert_eq(missing(a, 2000, 50, "orders", ACL_READ), ACL_READ, "no rule: denied");
    acl_peer unknown = {0};
    cr_assert_eq(acl_missing(a, &unknown, "users", 5, ACL_READ, 0), ACL_READ,
                 "a peer of unknown uid matches only '*' rules");
    acl_destroy(a);
}

Test(acl, stats_needs_a_on_some_rule_for_the_peer)
{
    acl *a = make("billing* uid:1000 rwa\n* uid:2000 rw\n");
    acl_peer p1 = {1, 1000, 1000}, p2 = {1, 2000, 2000};
    cr_assert(acl_any(a, &p1, ACL_ADMIN, 0));
    cr_assert_not(acl_any(a, &p2, ACL_ADMIN, 0));
    acl_destroy(a);
}

Test(acl, groups_match_the_users_supplementary_groups)
{
    /* root's groups by getgrouplist(): at least its primary group, 0. Take
     * a user listed as a member of some group in /etc/group, if any. */
    struct group *g;
    setgrent();
    while ((g = getgrent()) != NULL && (g->gr_mem[0] == NULL || getpwnam(g->gr_mem[0]) == NULL))
        ;
    if (g == NULL) {
        endgrent();
        cr_skip_test("no group on this system lists a member");
    }
    struct passwd *pw = getpwnam(g->gr_mem[0]);
    uid_t uid = pw->pw_uid;
    gid_t gid = g->gr_gid, other = pw->pw_gid == 65534 ? 65533 : 65534;
    endgrent();
    char rules[64];
    snprintf(rules, sizeof rules, "team gid:%u r\n", (unsigned)gid);
    acl *a = make(rules);
    cr_assert_eq(missing(a, uid, other, "team", ACL_READ), 0,
                 "uid %u is listed in group %u: a peer with another gid still matches",
                 (unsigned)uid, (unsigned)gid);
    cr_assert_eq(missing(a, 54321, other, "team", ACL_READ), ACL_READ, "a uid without a user");
    acl_destroy(a);
}

Test(acl, reload_replaces_the_rules_and_a_bad_one_keeps_the_old)
{
    char err[256];
    acl *a = make("* uid:7 r\n");
    cr_assert_eq(acl_reload(a, "* uid:7 w\n* uid:8 r\n", err, sizeof err), 0, "%s", err);
    cr_assert_eq(acl_rules(a), 2);
    cr_assert_eq(missing(a, 7, 7, "x", ACL_READ), ACL_READ);
    cr_assert_eq(acl_reload(a, "* user:no-such-user-here r\n", err, sizeof err), -1);
    cr_assert_eq(acl_rules(a), 2);
    cr_assert_eq(missing(a, 8, 8, "x", ACL_READ), 0);
    acl_destroy(a);
}
