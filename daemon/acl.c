/* Access control by peer; see acl.h. The rules sit behind a read-write
 * lock (SIGHUP swaps them whole). A peer's supplementary groups come from
 * getgrouplist() for its uid's user name, cached per uid in a small table
 * (ACL_CACHE_SLOTS, the stalest slot taken over) for ACL_GROUPS_TTL_MS; the
 * lookup runs without the cache's lock held. */
#include "acl.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACL_CACHE_SLOTS 64
#define ACL_GROUPS_MAX  256 /* supplementary groups kept per peer */

struct groups {
    uid_t uid;
    int64_t until; /* 0: a free slot */
    int n;
    gid_t gids[ACL_GROUPS_MAX];
};

struct acl {
    pthread_rwlock_t lock; /* guards rules and nrules */
    acl_rule *rules;
    size_t nrules;
    atomic_size_t count; /* nrules, for acl_rules() without the lock */
    pthread_mutex_t cache_mu;
    struct groups cache[ACL_CACHE_SLOTS];
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Matches left to right; at a '*' it remembers where it stands in both, lets
 * the star match nothing first and, on a later mismatch, goes back there
 * with the star taking one more byte. Only the last star needs remembering:
 * an earlier one could take no more than what the last can take instead. */
int acl_glob(const char *pat, const void *s, size_t len)
{
    const unsigned char *str = s;
    size_t p = 0, i = 0, star_p = (size_t)-1, star_i = 0;
    while (i < len) {
        if (pat[p] == '*') {
            star_p = p++, star_i = i;
        } else if (pat[p] != '\0' && (pat[p] == '?' || (unsigned char)pat[p] == str[i])) {
            p++, i++;
        } else if (star_p != (size_t)-1) {
            p = star_p + 1, i = ++star_i; /* let the last '*' take one more byte */
        } else {
            return 0;
        }
    }
    while (pat[p] == '*')
        p++;
    return pat[p] == '\0';
}

const char *acl_rights_text(unsigned rights, char *buf)
{
    size_t n = 0;
    if (rights & ACL_READ)
        buf[n++] = 'r';
    if (rights & ACL_WRITE)
        buf[n++] = 'w';
    if (rights & ACL_ADMIN)
        buf[n++] = 'a';
    buf[n] = '\0';
    return buf;
}

/* Reads a decimal id (no sign, fits 32 bits) from s. */
static int parse_id(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s) || (v = v * 10 + (uint64_t)(*s - '0')) > UINT32_MAX - 1)
            return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_who(const char *w, acl_rule *r, char *err, size_t errlen)
{
    char buf[4096];
    if (strcmp(w, "*") == 0) {
        r->who = ACL_ANYONE;
        return 0;
    }
    if (strncmp(w, "uid:", 4) == 0 || strncmp(w, "gid:", 4) == 0) {
        r->who = w[0] == 'u' ? ACL_UID : ACL_GID;
        if (parse_id(w + 4, &r->id) != 0)
            return fail(err, errlen, "invalid %.3s \"%s\" (expected a number)", w, w + 4);
        return 0;
    }
    if (strncmp(w, "user:", 5) == 0) {
        struct passwd pw, *found = NULL;
        if (getpwnam_r(w + 5, &pw, buf, sizeof buf, &found) != 0 || found == NULL)
            return fail(err, errlen, "no user \"%s\" on this system", w + 5);
        r->who = ACL_UID, r->id = found->pw_uid;
        return 0;
    }
    if (strncmp(w, "group:", 6) == 0) {
        struct group g, *found = NULL;
        if (getgrnam_r(w + 6, &g, buf, sizeof buf, &found) != 0 || found == NULL)
            return fail(err, errlen, "no group \"%s\" on this system", w + 6);
        r->who = ACL_GID, r->id = found->gr_gid;
        return 0;
    }
    return fail(err, errlen,
                "invalid WHO \"%s\" (expected uid:N, user:NAME, gid:N, group:NAME or *)", w);
}

static int parse_rights(const char *s, unsigned *out, char *err, size_t errlen)
{
    unsigned v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        const char *at = strchr("rwa", *p);
        if (at == NULL)
            return fail(err, errlen, "invalid RIGHTS \"%s\" (expected letters of r, w, a)", s);
        v |= 1u << (at - "rwa");
    }
    *out = v;
    return 0;
}

int acl_rule_parse(const char *text, acl_rule *out, char *err, size_t errlen)
{
    char words[3][ACL_PATTERN_MAX + 2];
    int n = 0;
    const char *p = text;
    memset(out, 0, sizeof *out);
    for (;;) {
        p += strspn(p, " \t");
        if (*p == '\0')
            break;
        size_t len = strcspn(p, " \t");
        if (n == 3)
            return fail(err, errlen, "\"%s\": more than PATTERN WHO RIGHTS", text);
        if (len > ACL_PATTERN_MAX)
            return fail(err, errlen, "\"%.*s...\" is longer than %d bytes", 20, p,
                        ACL_PATTERN_MAX);
        memcpy(words[n], p, len);
        words[n++][len] = '\0';
        p += len;
    }
    if (n != 3)
        return fail(err, errlen, "\"%s\": expected PATTERN WHO RIGHTS (e.g. billing* group:billing rw)",
                    text);
    memcpy(out->pattern, words[0], strlen(words[0]) + 1);
    if (parse_who(words[1], out, err, errlen) != 0)
        return -1;
    return parse_rights(words[2], &out->rights, err, errlen);
}

/* Parses text's rules into a new array. */
static int parse_all(const char *text, acl_rule **out, size_t *n, char *err, size_t errlen)
{
    size_t cap = 0;
    acl_rule *rules = NULL;
    *n = 0;
    for (const char *line = text; *line != '\0';) {
        size_t len = strcspn(line, "\n");
        char one[ACL_PATTERN_MAX * 2 + 64];
        if (len >= sizeof one) {
            free(rules);
            return fail(err, errlen, "rule \"%.20s...\" is too long", line);
        }
        memcpy(one, line, len);
        one[len] = '\0';
        line += len + (line[len] == '\n');
        if (one[strspn(one, " \t")] == '\0')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            acl_rule *more = realloc(rules, cap * sizeof *rules);
            if (more == NULL) {
                free(rules);
                return fail(err, errlen, "out of memory");
            }
            rules = more;
        }
        if (acl_rule_parse(one, &rules[*n], err, errlen) != 0) {
            free(rules);
            return -1;
        }
        (*n)++;
    }
    *out = rules;
    return 0;
}

int acl_create(acl **out, const char *text, char *err, size_t errlen)
{
    acl *a = calloc(1, sizeof *a);
    if (a == NULL)
        return fail(err, errlen, "out of memory");
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->cache_mu, NULL);
    if (acl_reload(a, text, err, errlen) != 0) {
        acl_destroy(a);
        return -1;
    }
    *out = a;
    return 0;
}

int acl_reload(acl *a, const char *text, char *err, size_t errlen)
{
    acl_rule *rules;
    size_t n;
    if (parse_all(text, &rules, &n, err, errlen) != 0)
        return -1;
    pthread_rwlock_wrlock(&a->lock);
    free(a->rules);
    a->rules = rules, a->nrules = n;
    atomic_store_explicit(&a->count, n, memory_order_relaxed);
    pthread_rwlock_unlock(&a->lock);
    pthread_mutex_lock(&a->cache_mu);
    memset(a->cache, 0, sizeof a->cache);
    pthread_mutex_unlock(&a->cache_mu);
    return 0;
}

void acl_destroy(acl *a)
{
    if (a == NULL)
        return;
    free(a->rules);
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->cache_mu);
    free(a);
}

size_t acl_rules(acl *a)
{
    return atomic_load_explicit(&a->count, memory_order_relaxed);
}

/* The groups of the peer's uid (its user's primary group and every group
 * that lists the user, as getgrouplist() says) into g, from the cache or
 * looked up now; none when the uid has no user. */
static void peer_groups(acl *a, const acl_peer *p, int64_t now, struct groups *g)
{
    pthread_mutex_lock(&a->cache_mu);
    struct groups *slot = &a->cache[0];
    for (size_t i = 0; i < ACL_CACHE_SLOTS; i++) {
        struct groups *s = &a->cache[i];
        if (s->until > now && s->uid == p->uid) {
            *g = *s;
            pthread_mutex_unlock(&a->cache_mu);
            return;
        }
        if (s->until < slot->until)
            slot = s;
    }
    pthread_mutex_unlock(&a->cache_mu);
    char buf[4096];
    struct passwd pw, *found = NULL;
    g->uid = p->uid;
    g->n = 0; /* a uid without a user: only the peer's own gid counts */
    if (getpwuid_r(p->uid, &pw, buf, sizeof buf, &found) == 0 && found != NULL) {
        int n = ACL_GROUPS_MAX; /* more groups than that: the first ACL_GROUPS_MAX count */
        g->n = getgrouplist(found->pw_name, found->pw_gid, g->gids, &n) < 0 ? ACL_GROUPS_MAX : n;
    }
    g->until = now + ACL_GROUPS_TTL_MS;
    pthread_mutex_lock(&a->cache_mu);
    *slot = *g;
    pthread_mutex_unlock(&a->cache_mu);
}

/* Whether rule r is for the peer (gs: its groups, looked up on first need). */
static int is_for(acl *a, const acl_rule *r, const acl_peer *p, int64_t now, struct groups *gs,
                  int *have_groups)
{
    if (r->who == ACL_ANYONE)
        return 1;
    if (!p->known)
        return 0;
    if (r->who == ACL_UID)
        return p->uid == r->id;
    if (p->gid == r->id)
        return 1;
    if (!*have_groups) {
        peer_groups(a, p, now, gs);
        *have_groups = 1;
    }
    for (int i = 0; i < gs->n; i++)
        if (gs->gids[i] == r->id)
            return 1;
    return 0;
}

unsigned acl_missing(acl *a, const acl_peer *p, const void *ns, size_t len, unsigned want,
                     int64_t now_ms)
{
    struct groups gs;
    int have_groups = 0;
    unsigned missing = want;
    pthread_rwlock_rdlock(&a->lock);
    if (a->nrules == 0)
        missing = 0;
    for (size_t i = 0; i < a->nrules; i++) {
        const acl_rule *r = &a->rules[i];
        if (acl_glob(r->pattern, ns, len) && is_for(a, r, p, now_ms, &gs, &have_groups)) {
            missing = want & ~r->rights;
            break;
        }
    }
    pthread_rwlock_unlock(&a->lock);
    return missing;
}

int acl_any(acl *a, const acl_peer *p, unsigned right, int64_t now_ms)
{
    struct groups gs;
    int have_groups = 0, ok;
    pthread_rwlock_rdlock(&a->lock);
    ok = a->nrules == 0;
    for (size_t i = 0; !ok && i < a->nrules; i++)
        ok = (a->rules[i].rights & right) != 0 &&
             is_for(a, &a->rules[i], p, now_ms, &gs, &have_groups);
    pthread_rwlock_unlock(&a->lock);
    return ok;
}
