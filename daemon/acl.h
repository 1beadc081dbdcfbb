/* acl: who may do what to which namespace, from the `acl = PATTERN WHO
 * RIGHTS` lines of the configuration. The first rule whose PATTERN matches
 * the namespace and whose WHO matches the peer decides; once any rule
 * exists, what no rule grants is denied. User and group names are resolved
 * when the rules are loaded; a peer's supplementary groups are looked up
 * (getgrouplist) and cached for ACL_GROUPS_TTL_MS. */
#ifndef NC_ACL_H
#define NC_ACL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Rights, as letters in a rule. */
enum {
    ACL_READ = 1,  /* r: Get, MGet */
    ACL_WRITE = 2, /* w: Set, Delete, MSet; and a Get's lease */
    ACL_ADMIN = 4, /* a: BumpNamespace, Stats */
};

#define ACL_GROUPS_TTL_MS 5000 /* how long a peer's groups are cached */
#define ACL_PATTERN_MAX   256  /* bytes of a rule's namespace glob */

/* Who a rule is for. */
enum acl_who { ACL_ANYONE, ACL_UID, ACL_GID };

typedef struct acl_rule {
    char pattern[ACL_PATTERN_MAX + 1]; /* '*' any run of bytes, '?' one byte */
    enum acl_who who;
    uint32_t id; /* the uid or gid */
    unsigned rights;
} acl_rule;

/* A peer: the uid and gid of the process at the other end of its
 * connection; known = 0 when the transport cannot tell (tcp://). */
typedef struct acl_peer {
    int known;
    uid_t uid;
    gid_t gid;
} acl_peer;

typedef struct acl acl;

/* Parses one rule, "PATTERN WHO RIGHTS" (WHO uid:N, user:NAME, gid:N,
 * group:NAME or *; RIGHTS letters of rwa), resolving names now. Returns 0,
 * or -1 with a message in err. */
int acl_rule_parse(const char *text, acl_rule *out, char *err, size_t errlen);

/* Makes a rule set from `text`, rules one a line as acl_rule_parse() reads
 * them ("" : no rules, everything allowed). Returns 0 and hands it to *out
 * (the caller owns it; free with acl_destroy()), or -1 with a message in err. */
int acl_create(acl **out, const char *text, char *err, size_t errlen);

/* Replaces a's rules with those of `text`, resolving names again; the
 * group cache is emptied. Returns 0, or -1 with a message in err and the
 * old rules kept. Any thread; checks in flight see the old or new rules. */
int acl_reload(acl *a, const char *text, char *err, size_t errlen);

/* Frees a. Accepts NULL. */
void acl_destroy(acl *a);

/* How many rules a holds (0: everything is allowed): one relaxed load, no
 * lock, so a request of a daemon without rules costs nothing more. A check
 * racing a reload may see the old count. */
size_t acl_rules(acl *a);

/* Which of the rights `want` the peer lacks on namespace ns (len bytes):
 * 0 when it has them all. Any thread; takes a's read lock, and the group
 * cache's lock when a group rule needs the peer's groups. */
unsigned acl_missing(acl *a, const acl_peer *p, const void *ns, size_t len, unsigned want,
                     int64_t now_ms);

/* Whether some rule for the peer (any pattern) grants `right`; 1 without
 * rules. */
int acl_any(acl *a, const acl_peer *p, unsigned right, int64_t now_ms);

/* The letters of `rights` ("rw") into buf (at least 4 bytes). */
const char *acl_rights_text(unsigned rights, char *buf);

/* Whether glob `pat` (NUL-terminated) matches the len bytes at s. Pure. */
int acl_glob(const char *pat, const void *s, size_t len);

#endif
