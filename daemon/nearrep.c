/* The near-tier reports' table; see nearrep.h. Reporters live in a uthash
 * by id, each with its last counters and its namespaces sorted by name, so
 * a report is matched against the reporter's last one in one merge walk.
 * A report is checked and its namespaces copied before the lock is taken;
 * under the lock it is compared with the last one and the increase added. */
#include "nearrep.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "codec.h"

/* A namespace's counts in a reporter's last report; name is in the block
 * that holds the array. */
struct ns_count {
    const char *name;
    size_t len;
    uint64_t hits, misses;
};

struct reporter {
    uint64_t id;
    uint32_t pid;
    int64_t last_ms;
    uint64_t hits, misses, fills_refused;
    struct ns_count *ns; /* sorted by name; one block with the names */
    size_t n_ns;
    UT_hash_handle hh;
};

struct nearrep {
    pthread_mutex_t mu; /* guards everything below */
    nstop *namespaces;
    struct reporter *by_id;
    size_t count;
    uint64_t hits, misses, fills_refused;
};

int nearrep_create(nearrep **out, nstop *namespaces)
{
    nearrep *t = calloc(1, sizeof *t);
    if (t == NULL)
        return ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    t->namespaces = namespaces;
    *out = t;
    return 0;
}

static void reporter_free(struct reporter *p)
{
    free(p->ns);
    free(p);
}

void nearrep_destroy(nearrep *t)
{
    if (t == NULL)
        return;
    struct reporter *p, *tmp;
    HASH_ITER(hh, t->by_id, p, tmp)
    {
        HASH_DEL(t->by_id, p);
        reporter_free(p);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static int name_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static int ns_order(const void *a, const void *b)
{
    const struct ns_count *x = a, *y = b;
    return name_cmp(x->name, x->len, y->name, y->len);
}

static int is_live(const struct reporter *p, int64_t now_ms)
{
    return now_ms - p->last_ms <= (int64_t)NEARREP_LIVE_INTERVALS * NEARREP_INTERVAL_MS;
}

/* Checks what a report says on its own. Returns 0, or INVALID_ARGUMENT
 * with why in err. */
static int check(const nearrep_report *r, size_t max_ns_len, char *err, size_t errlen)
{
    if (r->reporter == 0)
        return snprintf(err, errlen, "near report: reporter is 0; a client takes a random, "
                                     "non-zero id"),
               CODE(INVALID_ARGUMENT);
    if (r->hits > NEARREP_MAX_COUNT || r->misses > NEARREP_MAX_COUNT ||
        r->fills_refused > NEARREP_MAX_COUNT)
        return snprintf(err, errlen, "near report: a counter is past 2^62, which no near tier "
                                     "reaches"),
               CODE(INVALID_ARGUMENT);
    if (r->n_ns > NEARREP_MAX_NAMESPACES)
        return snprintf(err, errlen,
                        "near report: %zu namespaces; at most %d (report the busiest, the rest "
                        "count in the totals only)",
                        r->n_ns, NEARREP_MAX_NAMESPACES),
               CODE(INVALID_ARGUMENT);
    uint64_t hits = 0, misses = 0;
    for (size_t i = 0; i < r->n_ns; i++) {
        const nearrep_ns *n = &r->ns[i];
        const char *why = NULL;
        if (n->len == 0)
            why = "is empty";
        else if (n->len > max_ns_len)
            why = "is longer than max_namespace_size";
        else if (memchr(n->ns, ':', n->len) != NULL)
            why = "contains ':'";
        else if (n->hits > NEARREP_MAX_COUNT || n->misses > NEARREP_MAX_COUNT)
            why = "has a counter past 2^62";
        if (why != NULL)
            return snprintf(err, errlen, "near report: namespace %zu %s", i, why),
                   CODE(INVALID_ARGUMENT);
        hits += n->hits; /* each step adds at most 2^62 to at most 2^62: no overflow */
        misses += n->misses;
        if (hits > r->hits || misses > r->misses)
            return snprintf(err, errlen,
                            "near report: the namespaces' hits or misses add up to more than "
                            "the report's own"),
                   CODE(INVALID_ARGUMENT);
    }
    return 0;
}

/* The report's namespaces as a new sorted block (the caller frees it), in
 * *out; NULL with n 0. Returns 0, ENOMEM, or INVALID_ARGUMENT for a
 * namespace named twice. */
static int copy_sorted(const nearrep_report *r, struct ns_count **out, char *err, size_t errlen)
{
    *out = NULL;
    if (r->n_ns == 0)
        return 0;
    size_t names = 0;
    for (size_t i = 0; i < r->n_ns; i++)
        names += r->ns[i].len;
    struct ns_count *a = malloc(r->n_ns * sizeof *a + names);
    if (a == NULL)
        return snprintf(err, errlen, "near report: out of memory"), CODE(RESOURCE_EXHAUSTED);
    char *at = (char *)(a + r->n_ns);
    for (size_t i = 0; i < r->n_ns; i++) {
        memcpy(at, r->ns[i].ns, r->ns[i].len);
        a[i] = (struct ns_count){at, r->ns[i].len, r->ns[i].hits, r->ns[i].misses};
        at += r->ns[i].len;
    }
    qsort(a, r->n_ns, sizeof *a, ns_order);
    for (size_t i = 1; i < r->n_ns; i++)
        if (ns_order(&a[i - 1], &a[i]) == 0) {
            free(a);
            return snprintf(err, errlen, "near report: a namespace is named twice"),
                   CODE(INVALID_ARGUMENT);
        }
    *out = a;
    return 0;
}

/* The reporter's last namespace entry named like n, or NULL. */
static const struct ns_count *last_ns(const struct reporter *p, const struct ns_count *n)
{
    return p->n_ns == 0 ? NULL : bsearch(n, p->ns, p->n_ns, sizeof *n, ns_order);
}

/* Names the first counter of the report lower than in p's last, into err;
 * returns 1, or 0 when none went down. */
static int went_down(const struct reporter *p, const nearrep_report *r, const struct ns_count *ns,
                     char *err, size_t errlen)
{
    const char *what = NULL;
    uint64_t was = 0, now = 0;
    if (r->hits < p->hits)
        what = "hits", was = p->hits, now = r->hits;
    else if (r->misses < p->misses)
        what = "misses", was = p->misses, now = r->misses;
    else if (r->fills_refused < p->fills_refused)
        what = "fills_refused", was = p->fills_refused, now = r->fills_refused;
    for (size_t i = 0; what == NULL && i < r->n_ns; i++) {
        const struct ns_count *o = last_ns(p, &ns[i]);
        if (o != NULL && (ns[i].hits < o->hits || ns[i].misses < o->misses))
            what = "a namespace's hits or misses", was = o->hits + o->misses,
            now = ns[i].hits + ns[i].misses;
    }
    if (what == NULL)
        return 0;
    snprintf(err, errlen,
             "near report: %s of reporter %016llx went down, from %llu to %llu (counters are "
             "cumulative; a restarted client takes a new id); taken as its new starting point, "
             "nothing added",
             what, (unsigned long long)p->id, (unsigned long long)was, (unsigned long long)now);
    return 1;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a + b < a || a + b > INT64_MAX ? INT64_MAX : a + b;
}

/* Adds what the report has beyond p's last to the totals and the
 * namespaces' table. Called with the lock held. */
static void add_increase_locked(nearrep *t, const struct reporter *p, const nearrep_report *r,
                                const struct ns_count *ns)
{
    t->hits = sat_add(t->hits, r->hits - p->hits);
    t->misses = sat_add(t->misses, r->misses - p->misses);
    t->fills_refused = sat_add(t->fills_refused, r->fills_refused - p->fills_refused);
    for (size_t i = 0; t->namespaces != NULL && i < r->n_ns; i++) {
        const struct ns_count *o = last_ns(p, &ns[i]);
        uint64_t dh = ns[i].hits - (o != NULL ? o->hits : 0);
        uint64_t dm = ns[i].misses - (o != NULL ? o->misses : 0);
        if (dh != 0 || dm != 0)
            nstop_count_near(t->namespaces, ns[i].name, ns[i].len, dh, dm);
    }
}

/* A namespace left out of a report keeps its last counts (a client sends
 * only its busiest, so one may be back in the next report, cumulative all
 * along): at most this many per reporter, the busiest first. */
#define KEPT_NAMESPACES (2 * NEARREP_MAX_NAMESPACES)

static int busier(const void *a, const void *b)
{
    const struct ns_count *x = a, *y = b;
    uint64_t nx = x->hits + x->misses, ny = y->hits + y->misses;
    return (nx < ny) - (nx > ny);
}

/* The namespaces to keep as p's last: the report's n (sorted, in ns), and
 * p's last ones it left out, as one new sorted block in *out with its
 * count in *n_out. Frees ns, or on ENOMEM hands it over as it is. Called
 * with the lock held. */
static void merge_last_locked(const struct reporter *p, struct ns_count *ns, size_t n,
                              struct ns_count **out, size_t *n_out)
{
    *out = ns, *n_out = n;
    size_t left_out = 0, names = 0;
    for (size_t i = 0; i < p->n_ns; i++)
        if (n == 0 || bsearch(&p->ns[i], ns, n, sizeof *ns, ns_order) == NULL)
            left_out++;
    if (left_out == 0 || n >= KEPT_NAMESPACES)
        return;
    struct ns_count *gone = malloc(left_out * sizeof *gone);
    if (gone == NULL)
        return;
    left_out = 0;
    for (size_t i = 0; i < p->n_ns; i++)
        if (n == 0 || bsearch(&p->ns[i], ns, n, sizeof *ns, ns_order) == NULL)
            gone[left_out++] = p->ns[i];
    if (n + left_out > KEPT_NAMESPACES) {
        qsort(gone, left_out, sizeof *gone, busier);
        left_out = KEPT_NAMESPACES - n;
    }
    for (size_t i = 0; i < n; i++)
        names += ns[i].len;
    for (size_t i = 0; i < left_out; i++)
        names += gone[i].len;
    struct ns_count *a = malloc((n + left_out) * sizeof *a + names);
    if (a != NULL) {
        char *at = (char *)(a + n + left_out);
        for (size_t i = 0; i < n + left_out; i++) {
            const struct ns_count *from = i < n ? &ns[i] : &gone[i - n];
            memcpy(at, from->name, from->len);
            a[i] = (struct ns_count){at, from->len, from->hits, from->misses};
            at += from->len;
        }
        qsort(a, n + left_out, sizeof *a, ns_order);
        free(ns);
        *out = a, *n_out = n + left_out;
    }
    free(gone);
}

/* Makes room for one more reporter: drops the least recently heard one
 * that is no longer live. Returns 0, or -1 when all are live. Called with
 * the lock held. */
static int make_room_locked(nearrep *t, int64_t now_ms)
{
    struct reporter *p, *tmp, *oldest = NULL;
    HASH_ITER(hh, t->by_id, p, tmp)
    if (oldest == NULL || p->last_ms < oldest->last_ms)
        oldest = p;
    if (oldest == NULL || is_live(oldest, now_ms))
        return -1;
    HASH_DEL(t->by_id, oldest);
    reporter_free(oldest);
    t->count--;
    return 0;
}

/* The reporter a report is from, found or made (with nothing counted yet;
 * *made says so). Returns it, or NULL with a status code in *code and why
 * in err. Called with the lock held. */
static struct reporter *reporter_of_locked(nearrep *t, const nearrep_report *r, int64_t now_ms,
                                           int *made, int *code, char *err, size_t errlen)
{
    *made = 0;
    struct reporter *p;
    HASH_FIND(hh, t->by_id, &r->reporter, sizeof r->reporter, p);
    if (p != NULL && p->pid != 0 && r->pid != 0 && p->pid != r->pid) {
        if (is_live(p, now_ms)) {
            *code = CODE(FAILED_PRECONDITION);
            snprintf(err, errlen,
                     "near report: reporter %016llx is pid %u's (heard %lld ms ago); pid %u "
                     "must take an id of its own (a forked child takes a new one)",
                     (unsigned long long)r->reporter, p->pid, (long long)(now_ms - p->last_ms),
                     r->pid);
            return NULL;
        }
        free(p->ns); /* the old process is gone: the id starts again */
        p->ns = NULL, p->n_ns = 0;
        p->hits = p->misses = p->fills_refused = 0;
        return p;
    }
    if (p != NULL)
        return p;
    if (t->count >= NEARREP_MAX_REPORTERS && make_room_locked(t, now_ms) != 0) {
        *code = CODE(RESOURCE_EXHAUSTED);
        snprintf(err, errlen, "near report: %d clients report already; this one is not counted",
                 NEARREP_MAX_REPORTERS);
        return NULL;
    }
    if ((p = calloc(1, sizeof *p)) == NULL) {
        *code = CODE(RESOURCE_EXHAUSTED);
        snprintf(err, errlen, "near report: out of memory");
        return NULL;
    }
    p->id = r->reporter;
    HASH_ADD(hh, t->by_id, id, sizeof p->id, p);
    t->count++;
    *made = 1;
    return p;
}

int nearrep_take(nearrep *t, const nearrep_report *r, size_t max_ns_len, int64_t now_ms, char *err,
                 size_t errlen)
{
    struct ns_count *ns;
    int code = check(r, max_ns_len, err, errlen);
    if (code != 0 || (code = copy_sorted(r, &ns, err, errlen)) != 0)
        return code;
    pthread_mutex_lock(&t->mu);
    int made;
    struct reporter *p = reporter_of_locked(t, r, now_ms, &made, &code, err, errlen);
    if (p != NULL) {
        if (went_down(p, r, ns, err, errlen))
            code = CODE(INVALID_ARGUMENT);
        else if (!made || !r->reported_before) /* else a daemon before this one counted it */
            add_increase_locked(t, p, r, ns);
        struct ns_count *last;
        size_t n_last;
        merge_last_locked(p, ns, r->n_ns, &last, &n_last);
        free(p->ns); /* this report is the reporter's last from now on */
        p->ns = last, ns = NULL;
        p->n_ns = n_last;
        p->pid = r->pid;
        p->last_ms = now_ms;
        p->hits = r->hits, p->misses = r->misses, p->fills_refused = r->fills_refused;
    }
    pthread_mutex_unlock(&t->mu);
    free(ns);
    return code;
}

void nearrep_read(nearrep *t, int64_t now_ms, nearrep_totals *out)
{
    pthread_mutex_lock(&t->mu);
    *out = (nearrep_totals){t->hits, t->misses, t->fills_refused, 0};
    struct reporter *p, *tmp;
    HASH_ITER(hh, t->by_id, p, tmp)
    out->clients += is_live(p, now_ms);
    pthread_mutex_unlock(&t->mu);
}
