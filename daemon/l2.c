/* The scripts and their replies; see l2.h. The connection under them is
 * l2conn.c's. */
#include "l2.h"

#include <errno.h>
#include <inttypes.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "l2cluster.h"
#include "units.h"

/* The scripts. Every key a script touches comes in KEYS[] (keyspace.c
 * names them all): KEYS[1] is PREFIX:nsver:NS, then each entry's four keys
 * (value, lease, negative, stale-while-revalidate marks; one hash tag, so
 * one Cluster slot), under the version the caller assumes, ARGV[1]. A
 * script that finds another version in Redis does nothing and answers
 * {version}: the caller builds the keys under that one and runs it again
 * (the read lane's optimistic check, inside one script). So a write never
 * lands under a version that a bump has retired, and every script returns
 * the version it used. With inval_batch = off a write and its invalidation
 * message are one script, so the message is published if and only if the
 * write happened; with it on (an empty channel), the daemon's publisher
 * sends the message after the script answered (publish.h).
 *
 * A namespace version never goes back. Redis can lose the version key
 * (eviction under an allkeys-* policy, FLUSHALL, a failover to a replica
 * that never got it), and reading that as an older version would make the
 * values written before a bump live again. So the last argument of every
 * script is a floor, the highest version the calling node has seen, and
 * VERSION recreates a version that is missing or below it as the larger of
 * the floor + 1 and Redis's clock in microseconds: above every version
 * handed out before, since versions start from that clock and a bump adds
 * one in a script that takes longer than a microsecond. Losing the key
 * costs misses (the namespace starts empty), never old data.
 *
 * A plain read (GET without a lease, MGET) of a namespace without a version
 * makes none: whatever Redis holds of it is under a lost version, so it
 * answers "not found" with version 0, which is never a namespace's, and a
 * read leaves no key behind. */
#define VERSION_READ                                                                               \
    "local floor = tonumber(ARGV[#ARGV]) "                                                         \
    "local v = redis.call('GET', KEYS[1]) "                                                        \
    "local function fresh_version() local t = redis.call('TIME') "                                 \
    "  v = string.format('%d', math.max(t[1] * 1000000 + t[2], floor + 1)) "                       \
    "  redis.call('SET', KEYS[1], v) end "                                                         \
    "if v and tonumber(v) < floor then fresh_version() end "
#define VERSION_MAKE  "if not v then fresh_version() end "
#define VERSION       VERSION_READ VERSION_MAKE
#define VERSION_CHECK "if v ~= ARGV[1] then return {v} end "
#define ENTRY         "local k, lease_k, neg_k, swr_k = KEYS[2], KEYS[3], KEYS[4], KEYS[5] "
#define NOW_MS                                                                                     \
    "local function now_ms() local t = redis.call('TIME') "                                        \
    "return t[1] * 1000 + math.floor(t[2] / 1000) end "

/* A write's invalidation: PUBLISH ARGV[ch] ARGV[msg], unless the channel is
 * empty (inval_batch = on: the daemon's publisher sends it in a batch once
 * the script has answered). */
#define PUBLISH(ch, msg)                                                                           \
    "if ARGV[" ch "] ~= '' then redis.call('PUBLISH', ARGV[" ch "], ARGV[" msg "]) end "

/* An entry's keys after KEYS[1], in the scripts' order. */
#define ENTRY_KEYS 4
static const enum ks_kind entry_kind[ENTRY_KEYS] = {KS_DATA, KS_LEASE, KS_NEG, KS_SWR};

enum script {
    SCRIPT_GET,
    SCRIPT_SET,
    SCRIPT_DEL,
    SCRIPT_BUMP,
    SCRIPT_MGET,
    SCRIPT_MSET,
    SCRIPT_VERSION,
    NSCRIPTS
};

static const char *const script_text[NSCRIPTS] = {
    /* ARGV: version lease(0/1) token lease_ttl_ms slide_ms floor -> {version,
     * value or nil, pttl, lease state, swr mark or nil, now, negative, pttl
     * of the neg mark}: what Redis holds, decoded by answer_decode(); the
     * script itself only decides the lease (taken on a miss, or on a stale
     * value) and the slide (of a value without a swr mark) */
    [SCRIPT_GET] = VERSION_READ
    "if not v and ARGV[2] ~= '1' then return {'0', false, -2, 0, false, 0, 0, 0} end " VERSION_MAKE
        VERSION_CHECK ENTRY NOW_MS
    "local function lease() return redis.call('SET', lease_k, ARGV[3], 'NX', 'PX', ARGV[4]) end "
    "local val = redis.call('GET', k) "
    "if val then "
    "  local state, now = 0, 0 "
    "  local fresh = redis.call('GET', swr_k) "
    "  local pttl = redis.call('PTTL', k) "
    "  if fresh then "
    "    now = now_ms() "
    "    if now >= tonumber(fresh) and ARGV[2] == '1' and lease() then state = 1 end "
    "  elseif ARGV[5] ~= '0' then redis.call('PEXPIRE', k, ARGV[5]) pttl = tonumber(ARGV[5]) end "
    "  return {v, val, pttl, state, fresh, now, 0, 0} "
    "end "
    "if redis.call('EXISTS', neg_k) == 1 then "
    "  return {v, false, -2, 0, false, 0, 1, redis.call('PTTL', neg_k)} end "
    "if ARGV[2] == '1' then "
    "  if lease() then return {v, false, -2, 1, false, 0, 0, 0} end "
    "  return {v, false, -2, 3, false, 0, 0, 0} "
    "end "
    "return {v, false, -2, 0, false, 0, 0, 0}",
    /* ARGV: version value ttl_ms channel message token negative(0/1) swr_ms
     * floor -> {version, stored (0: the lease was no longer valid)} */
    [SCRIPT_SET] = VERSION VERSION_CHECK ENTRY NOW_MS
    "if ARGV[6] ~= '' and redis.call('GET', lease_k) ~= ARGV[6] then return {v, 0} end "
    "redis.call('DEL', lease_k) "
    "local ttl = tonumber(ARGV[3]) local swr = tonumber(ARGV[8]) "
    "if ARGV[7] == '1' then "
    "  redis.call('DEL', k, swr_k) "
    "  redis.call('SET', neg_k, '1', 'PX', ARGV[3]) "
    "else "
    "  redis.call('DEL', neg_k) "
    "  redis.call('SET', k, ARGV[2], 'PX', string.format('%d', ttl + swr)) "
    "  if swr > 0 then "
    "    redis.call('SET', swr_k, string.format('%d', now_ms() + ttl), 'PX', "
    "               string.format('%d', ttl + swr)) "
    "  else redis.call('DEL', swr_k) end "
    "end "
    PUBLISH("4", "5") "return {v, 1}",
    /* ARGV: version channel message token floor -> {version, deleted}. With
     * a token, only that lease is released (deleted = whether it was). */
    [SCRIPT_DEL] = VERSION VERSION_CHECK ENTRY
    "if ARGV[4] ~= '' then "
    "  if redis.call('GET', lease_k) ~= ARGV[4] then return {v, 0} end "
    "  redis.call('DEL', lease_k) " PUBLISH("2", "3") "return {v, 1} "
    "end "
    "local n = redis.call('DEL', k) redis.call('DEL', lease_k, neg_k, swr_k) "
    PUBLISH("2", "3") "return {v, n}",
    /* KEYS: the version only. ARGV: from channel message floor -> {version,
     * bumped}: from + 1 and 1 when Redis held `from` (the message, built by
     * the daemon, names from + 1); what it holds and 0 otherwise, writing and
     * publishing nothing. */
    [SCRIPT_BUMP] = VERSION "if v ~= ARGV[1] then return {v, 0} end "
                            "v = string.format('%d', tonumber(v) + 1) redis.call('SET', KEYS[1], v) "
                            PUBLISH("2", "3") "return {v, 1}",
    /* ARGV: version floor -> {version, now, then per entry: value or nil,
     * pttl (of the neg mark when negative), swr mark or nil, negative
     * (0/1)}, decoded by answer_decode() */
    [SCRIPT_MGET] = VERSION_READ "local n = (#KEYS - 1) / 4 "
    "if not v then local out = {'0', 0} "
    "  for i = 1, n do "
    "    out[#out + 1] = false out[#out + 1] = -2 out[#out + 1] = false out[#out + 1] = 0 "
    "  end "
    "  return out "
    "end " VERSION_CHECK NOW_MS "local out = {v, now_ms()} "
    "for i = 0, n - 1 do "
    "  local k, neg_k, swr_k = KEYS[2 + 4 * i], KEYS[4 + 4 * i], KEYS[5 + 4 * i] "
    "  local val = redis.call('GET', k) "
    "  local fresh, neg = false, 0 "
    "  local pttl = redis.call('PTTL', k) "
    "  if val then fresh = redis.call('GET', swr_k) "
    "  else neg = redis.call('EXISTS', neg_k) "
    "    if neg == 1 then pttl = redis.call('PTTL', neg_k) end end "
    "  out[#out + 1] = val out[#out + 1] = pttl out[#out + 1] = fresh out[#out + 1] = neg "
    "end "
    "return out",
    /* ARGV: version channel message, then value ttl_ms per entry, then floor
     * -> version. One message names every key. */
    [SCRIPT_MSET] = VERSION VERSION_CHECK
    "for i = 0, (#KEYS - 1) / 4 - 1 do "
    "  local b = 2 + 4 * i "
    "  redis.call('SET', KEYS[b], ARGV[4 + 2 * i], 'PX', ARGV[5 + 2 * i]) "
    "  redis.call('DEL', KEYS[b + 1], KEYS[b + 2], KEYS[b + 3]) "
    "end "
    PUBLISH("2", "3") "return v",
    /* KEYS: the version only, on a Cluster. ARGV: unused make(0/1) floor ->
     * the version, made when missing if make is 1, else '0' */
    [SCRIPT_VERSION] = VERSION_READ "if not v and ARGV[2] ~= '1' then return '0' end " VERSION_MAKE
                                    "return v",
};

/* On a Redis Cluster the version key is on a slot of its own, so the
 * scripts that touch an entry cannot read it: their cluster form takes the
 * version the caller assumes as the one (VERSION_READ, VERSION_MAKE and
 * VERSION_CHECK replaced as below), and KEYS[1] is the entry's own value
 * key, in its slot, in place of the version key. l2.c reads the version
 * with SCRIPT_VERSION before, and checks it after a write (docs/coherence.md,
 * "Versions on Redis Cluster"). */
#define CLUSTER_VERSION "local floor = tonumber(ARGV[#ARGV]) local v = ARGV[1] "
static const int uses_entries[NSCRIPTS] = {[SCRIPT_GET] = 1, [SCRIPT_SET] = 1, [SCRIPT_DEL] = 1,
                                           [SCRIPT_MGET] = 1, [SCRIPT_MSET] = 1};

/* text with its first `from` replaced by `to` (or a copy, when from is not
 * in it and `need` is 0). Returns a new string, or NULL (out of memory, or a
 * needed `from` missing: a script of an unexpected shape). */
static char *replace(char *text, const char *from, const char *to, int need)
{
    char *at = strstr(text, from);
    if (at == NULL)
        return need ? (free(text), NULL) : text;
    size_t head = (size_t)(at - text), fl = strlen(from), tl = strlen(to);
    char *out = malloc(strlen(text) - fl + tl + 1);
    if (out != NULL) {
        memcpy(out, text, head);
        memcpy(out + head, to, tl);
        strcpy(out + head + tl, at + fl);
    }
    free(text);
    return out;
}

/* The cluster form of script id (a new string), or NULL. */
static char *cluster_text(enum script id)
{
    char *t = strdup(script_text[id]);
    if (t == NULL || !uses_entries[id])
        return t;
    t = replace(t, VERSION_READ, CLUSTER_VERSION, 1);
    t = t != NULL ? replace(t, VERSION_MAKE, "", 0) : NULL;
    return t != NULL ? replace(t, VERSION_CHECK, "", 1) : NULL;
}

struct l2 {
    l2conn *conn;        /* one server; on a Cluster, any node (for health) */
    l2cluster *cl;       /* on a Cluster: the routing; NULL on one server */
    char *text[NSCRIPTS]; /* the scripts' text as this handle runs them */
    l2conn **wrote;       /* on a Cluster, for WAIT: the masters the last write's scripts */
    int nwrote, wrote_cap; /* ran on (an MSet may span several); the array is owned, the */
                          /* connections are cl's */
    int wrote_lost;       /* one of them could not be noted (out of memory) */
    int landed;           /* on a Cluster: the last write's script ran, whatever came after */
    char sha[NSCRIPTS][41];
    uint32_t stream;
};

/* l2conn_setup_fn: SCRIPT LOAD of every script on a new connection.
 * Returns 0 or -1. */
static int load_scripts(void *arg, l2conn *conn)
{
    l2 *c = arg;
    for (int i = 0; i < NSCRIPTS; i++) {
        const char *load[] = {"SCRIPT", "LOAD", c->text[i]};
        l2_status status;
        redisReply *sha = l2conn_call(conn, 0, &status, 3, load, NULL);
        if (sha == NULL)
            return -1;
        if (sha->type == REDIS_REPLY_ERROR) {
            l2conn_set_error(conn, "redis: SCRIPT LOAD failed: %s", sha->str);
            freeReplyObject(sha);
            return -1;
        }
        snprintf(c->sha[i], sizeof c->sha[i], "%s",
                 sha->type == REDIS_REPLY_STRING ? sha->str : "");
        freeReplyObject(sha);
    }
    return 0;
}

int l2_create(l2 **out, const config_redis_url *url, int64_t connect_timeout_ms, const char *name,
              uint32_t stream)
{
    l2 *c = calloc(1, sizeof *c);
    if (c == NULL || l2conn_create(&c->conn, url, connect_timeout_ms, name) != 0 ||
        (url->nseeds > 0 && l2cluster_create(&c->cl, url, connect_timeout_ms, name) != 0)) {
        l2_destroy(c);
        return ENOMEM;
    }
    for (int i = 0; i < NSCRIPTS; i++)
        if ((c->text[i] = c->cl != NULL ? cluster_text(i) : strdup(script_text[i])) == NULL) {
            l2_destroy(c);
            return ENOMEM;
        }
    l2conn_set_setup(c->conn, load_scripts, c);
    if (c->cl != NULL)
        l2cluster_set_setup(c->cl, load_scripts, c);
    c->stream = stream;
    *out = c;
    return 0;
}

void l2_destroy(l2 *c)
{
    if (c == NULL)
        return;
    l2conn_destroy(c->conn);
    l2cluster_destroy(c->cl);
    for (int i = 0; i < NSCRIPTS; i++)
        free(c->text[i]);
    free(c->wrote);
    free(c);
}

l2conn *l2_conn(l2 *c)
{
    return c->conn;
}

uint32_t l2_stream(const l2 *c)
{
    return c->stream;
}

int l2_maybe_ran(const l2 *c)
{
    if (c->cl != NULL)
        return l2cluster_maybe_ran(c->cl);
    return l2conn_maybe_ran(c->conn);
}

const char *l2_error(const l2 *c)
{
    return l2conn_error(c->conn);
}

static l2_status unexpected(l2 *c, redisReply *r, const char *what)
{
    freeReplyObject(r);
    return l2conn_set_error(c->conn, "redis: unexpected reply to %s", what);
}

/* The entries a script's KEYS name: keys[i] (lens[i] bytes) of k's
 * namespace; n may be 0. */
typedef struct entries {
    size_t n;
    const void *const *keys;
    const size_t *lens;
} entries;

/* l2conn_run() on one server; on a Cluster, l2cluster_run() on the master
 * of the slot of argv[key], its error copied to the handle's connection
 * (l2_error()). */
static redisReply *run(l2 *c, size_t key, int64_t timeout_ms, int once, l2_status *status,
                       int argc, const char **argv, const size_t *lens)
{
    if (c->cl == NULL)
        return l2conn_run(c->conn, timeout_ms, once, status, argc, argv, lens);
    redisReply *r = l2cluster_run(c->cl, ks_slot(argv[key], lens[key]), timeout_ms, once, status,
                                  argc, argv, lens);
    if (r == NULL)
        l2conn_set_error(c->conn, "%s", l2cluster_error(c->cl));
    return r;
}

/* Runs script `id` by EVALSHA, or by EVAL when Redis has lost its script
 * cache. KEYS: PREFIX:nsver:NS, then each entry's ENTRY_KEYS keys under
 * `version`; ARGV: `version`, the `nargs` arguments, then k->floor. Returns
 * the reply or NULL with *status set, as l2conn_run(), which sends it only
 * once when `once`. */
/* The scripts that write, whose masters a WAIT asks. */
static const int writes[NSCRIPTS] = {[SCRIPT_SET] = 1, [SCRIPT_DEL] = 1, [SCRIPT_MSET] = 1,
                                     [SCRIPT_BUMP] = 1};

/* Notes that a write's script ran on conn, once per master. */
static void wrote_add(l2 *c, l2conn *conn)
{
    for (int i = 0; i < c->nwrote; i++)
        if (c->wrote[i] == conn)
            return;
    if (c->nwrote == c->wrote_cap) {
        int cap = c->wrote_cap ? 2 * c->wrote_cap : 4;
        l2conn **w = realloc(c->wrote, sizeof *w * (size_t)cap);
        if (w == NULL) {
            c->wrote_lost = 1;
            return;
        }
        c->wrote = w, c->wrote_cap = cap;
    }
    c->wrote[c->nwrote++] = conn;
}

/* A write starts: the masters of the one before are not its own. */
static void wrote_reset(l2 *c)
{
    c->nwrote = 0;
    c->wrote_lost = 0;
}

static redisReply *eval(l2 *c, enum script id, const l2_key *k, uint64_t version,
                        const entries *e, int64_t timeout_ms, int once, l2_status *status,
                        int nargs, const char **args, const size_t *lens)
{
    size_t nkeys = 1 + ENTRY_KEYS * e->n, argc = 3 + nkeys + 1 + (size_t)nargs + 1, room = 0;
    for (size_t i = 0; i < e->n; i++)
        room += ENTRY_KEYS * ks_data_key_max(k->prefix, k->nslen, version, e->lens[i]);
    /* on a Cluster, KEYS[1] of an entry's script is its value key */
    int in_slot = c->cl != NULL && uses_entries[id] && e->n > 0;
    const char **argv = malloc(sizeof *argv * argc);
    size_t *argl = malloc(sizeof *argl * argc);
    char *keys = malloc(room + 1), vkey[KS_NSVER_KEY_MAX], ver[24], floor[24], numkeys[24];
    redisReply *r = NULL;
    *status = l2conn_set_error(c->conn, "out of memory");
    if (argv != NULL && argl != NULL && keys != NULL) {
        size_t a = 0, used = 0;
        argv[a] = "EVALSHA", argl[a++] = 7;
        argv[a] = c->sha[id], argl[a++] = strlen(c->sha[id]);
        argv[a] = numkeys, argl[a++] = (size_t)snprintf(numkeys, sizeof numkeys, "%zu", nkeys);
        size_t first = a;
        argv[a] = vkey, argl[a++] = ks_nsver_key(vkey, k->prefix, k->ns, k->nslen);
        for (size_t i = 0; i < e->n; i++)
            for (int j = 0; j < ENTRY_KEYS; j++) {
                argv[a] = keys + used;
                argl[a] = ks_data_key(keys + used, k->prefix, k->ns, k->nslen, version,
                                      entry_kind[j], e->keys[i], e->lens[i]);
                used += argl[a++];
            }
        argv[a] = ver, argl[a++] = (size_t)snprintf(ver, sizeof ver, "%" PRIu64, version);
        for (int i = 0; i < nargs; i++, a++)
            argv[a] = args[i], argl[a] = lens[i];
        argv[a] = floor, argl[a++] = (size_t)snprintf(floor, sizeof floor, "%" PRIu64, k->floor);
        if (in_slot)
            argv[first] = argv[first + 1], argl[first] = argl[first + 1];
        r = run(c, first, timeout_ms, once, status, (int)a, argv, argl);
        if (r == NULL && *status == L2_EREPLY &&
            strncmp(l2conn_error(c->conn), "redis: NOSCRIPT", 15) == 0) {
            argv[0] = "EVAL", argl[0] = 4;
            argv[1] = c->text[id], argl[1] = strlen(c->text[id]);
            r = run(c, first, timeout_ms, once, status, (int)a, argv, argl);
        }
        if (r != NULL && c->cl != NULL && writes[id])
            wrote_add(c, l2cluster_last(c->cl));
    }
    free(argv);
    free(argl);
    free(keys);
    return r;
}

/* How many times a script is run again under the version Redis holds: a
 * version moves only by a bump (or a lost key raised above the floor), so
 * one more run nearly always suffices. */
#define MOVED_TRIES 4

/* eval() under the version the caller assumes (k->floor: the highest it
 * has seen), then under the one Redis answered while it answers {version}
 * (a bump this node has not heard of yet). Returns the reply, or NULL with
 * *status set; L2_EREPLY when the version kept moving. */
static redisReply *eval_cluster(l2 *c, enum script id, const l2_key *k, const entries *e,
                                int64_t timeout_ms, l2_status *status, int nargs,
                                const char **args, const size_t *lens);

static redisReply *eval_current(l2 *c, enum script id, const l2_key *k, const entries *e,
                                int64_t timeout_ms, l2_status *status, int nargs,
                                const char **args, const size_t *lens)
{
    if (c->cl != NULL)
        return eval_cluster(c, id, k, e, timeout_ms, status, nargs, args, lens);
    uint64_t version = k->floor;
    for (int i = 0; i < MOVED_TRIES; i++) {
        redisReply *r = eval(c, id, k, version, e, timeout_ms, 0, status, nargs, args, lens);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 1)
            return r;
        version = (uint64_t)answer_int(r->element[0]);
        freeReplyObject(r);
    }
    *status = l2conn_set_error(c->conn, "redis: the namespace's version moved %d times in a row",
                               MOVED_TRIES);
    return NULL;
}

/* On a Cluster: the namespace's version as its own master holds it, raised
 * above k->floor as every script does, and made when missing if `make`
 * (else 0). Returns L2_OK or an error. */
static l2_status cluster_version(l2 *c, const l2_key *k, int make, int64_t timeout_ms,
                                 uint64_t *version)
{
    entries none = {0, NULL, NULL};
    const char *args[] = {make ? "1" : "0"};
    size_t lens[] = {1};
    l2_status status;
    redisReply *r = eval(c, SCRIPT_VERSION, k, 0, &none, timeout_ms, 0, &status, 1, args, lens);
    if (r == NULL)
        return status;
    if (r->type != REDIS_REPLY_STRING)
        return unexpected(c, r, "the version script");
    *version = (uint64_t)answer_int(r);
    freeReplyObject(r);
    return L2_OK;
}

/* eval_current() on a Cluster, in the two steps of docs/coherence.md
 * ("Versions on Redis Cluster"): the entry's script runs under the version
 * the node assumes (k->floor; read first from the version's master when it
 * knows none); a write then reads the version again, and runs once more
 * under a newer one if a bump came in between. */
static redisReply *eval_cluster(l2 *c, enum script id, const l2_key *k, const entries *e,
                                int64_t timeout_ms, l2_status *status, int nargs,
                                const char **args, const size_t *lens)
{
    int write = id == SCRIPT_SET || id == SCRIPT_DEL || id == SCRIPT_MSET;
    int make = write || (id == SCRIPT_GET && nargs > 0 && args[0][0] == '1'); /* a lease */
    uint64_t version = k->floor;
    c->landed = 0;
    if ((!k->known || version == 0) &&
        (*status = cluster_version(c, k, make, timeout_ms, &version)) != L2_OK)
        return NULL;
    for (int i = 0; i < MOVED_TRIES; i++) {
        redisReply *r = eval(c, id, k, version, e, timeout_ms, 0, status, nargs, args, lens);
        if (r == NULL || !write)
            return r;
        c->landed = 1;
        l2_key now = *k;
        uint64_t current;
        now.floor = version;
        if ((*status = cluster_version(c, &now, 1, timeout_ms, &current)) != L2_OK) {
            freeReplyObject(r);
            return NULL;
        }
        if (current == version)
            return r;
        freeReplyObject(r); /* a bump came in between: write under the new one too */
        version = current;
    }
    *status = l2conn_set_error(c->conn, "redis: the namespace's version moved %d times in a row",
                               MOVED_TRIES);
    return NULL;
}

l2_status l2_get(l2 *c, const l2_key *k, const l2_get_opts *o, int64_t timeout_ms, l2_value *out)
{
    static const l2_get_opts plain = {0};
    char ttl[24], slide[24];
    if (o == NULL)
        o = &plain;
    int tl = snprintf(ttl, sizeof ttl, "%lld", (long long)o->lease_ttl_ms);
    int sl = snprintf(slide, sizeof slide, "%lld", (long long)o->slide_ms);
    const char *token = o->token != NULL ? o->token : "";
    const char *args[] = {o->lease ? "1" : "0", token, ttl, slide};
    size_t lens[] = {1, strlen(token), (size_t)tl, (size_t)sl};
    entries e = {1, &k->key, &k->klen};
    l2_status status;
    redisReply *r = eval_current(c, SCRIPT_GET, k, &e, timeout_ms, &status, 4, args, lens);
    if (r == NULL)
        return status;
    l2_status st = answer_get_script(r, out);
    if (st == L2_EREPLY)
        return unexpected(c, r, "the GET script");
    if (st != L2_OK) {
        freeReplyObject(r);
        return st;
    }
    out->reply_ = r;
    return L2_OK;
}

l2_status l2_set(l2 *c, const l2_key *k, const void *value, size_t vlen, int64_t ttl_ms,
                 const l2_set_opts *o, const l2_msg *m, int64_t timeout_ms, uint64_t *version,
                 int *stored)
{
    wrote_reset(c);
    static const l2_set_opts plain = {0};
    char px[24], swr[24];
    if (o == NULL)
        o = &plain;
    int pxlen = snprintf(px, sizeof px, "%lld", (long long)ttl_ms);
    int swrlen = snprintf(swr, sizeof swr, "%lld", (long long)o->swr_ms);
    const char *args[] = {value,   px, m->channel, m->data, o->token != NULL ? o->token : "",
                          o->negative ? "1" : "0", swr};
    size_t lens[] = {vlen,   (size_t)pxlen, strlen(m->channel), m->len,
                     o->token != NULL ? o->token_len : 0, 1, (size_t)swrlen};
    entries e = {1, &k->key, &k->klen};
    l2_status status;
    redisReply *r = eval_current(c, SCRIPT_SET, k, &e, timeout_ms, &status, 7, args, lens);
    if (r == NULL)
        return status;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return unexpected(c, r, "the SET script");
    *version = (uint64_t)answer_int(r->element[0]);
    *stored = answer_int(r->element[1]) == 1;
    freeReplyObject(r);
    return L2_OK;
}

l2_status l2_del(l2 *c, const l2_key *k, const void *token, size_t token_len, const l2_msg *m,
                 int64_t timeout_ms, int *existed, uint64_t *version)
{
    wrote_reset(c);
    const char *args[] = {m->channel, m->data, token != NULL ? token : ""};
    size_t lens[] = {strlen(m->channel), m->len, token != NULL ? token_len : 0};
    entries e = {1, &k->key, &k->klen};
    l2_status status;
    redisReply *r = eval_current(c, SCRIPT_DEL, k, &e, timeout_ms, &status, 3, args, lens);
    if (r == NULL)
        return status;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return unexpected(c, r, "the DEL script");
    *version = (uint64_t)answer_int(r->element[0]);
    *existed = answer_int(r->element[1]) > 0;
    freeReplyObject(r);
    return L2_OK;
}

l2_status l2_bump(l2 *c, const l2_key *k, uint64_t from, const l2_msg *m, int64_t timeout_ms,
                  uint64_t *version, int *bumped)
{
    wrote_reset(c);
    const char *args[] = {m->channel, m->data};
    size_t lens[] = {strlen(m->channel), m->len};
    entries none = {0, NULL, NULL};
    l2_status status;
    /* once: a retry after a lost answer would bump twice */
    redisReply *r = eval(c, SCRIPT_BUMP, k, from, &none, timeout_ms, 1, &status, 2, args, lens);
    if (r == NULL)
        return status;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return unexpected(c, r, "the bump script");
    *version = (uint64_t)answer_int(r->element[0]);
    *bumped = answer_int(r->element[1]) == 1;
    freeReplyObject(r);
    return L2_OK;
}

/* Room for n entries' keys, filled by the caller. Returns 0, or -1 out of
 * memory. Free with entries_free(). */
static int entries_alloc(entries *e, size_t n, const void ***keys, size_t **lens)
{
    *keys = malloc(sizeof **keys * (n ? n : 1));
    *lens = malloc(sizeof **lens * (n ? n : 1));
    *e = (entries){n, *keys, *lens};
    return *keys != NULL && *lens != NULL ? 0 : -1;
}

static void entries_free(entries *e)
{
    free((void *)e->keys);
    free((void *)e->lens);
}

static l2_status mget_one(l2 *c, const l2_key *k, const l2_key *keys, size_t n,
                         int64_t timeout_ms, l2_batch *out);

/* l2_mget() on a Cluster: one script per slot, under one version, the
 * answers moved into one reply in the caller's order (its `now` is the
 * first slot's). */
static l2_status mget_split(l2 *c, const l2_key *k, const l2_key *keys, size_t n,
                            int64_t timeout_ms, l2_batch *out)
{
    l2_key at = *k;
    l2_status st;
    if ((!at.known || at.floor == 0) &&
        (st = cluster_version(c, k, 0, timeout_ms, &at.floor)) != L2_OK)
        return st;
    at.known = 1; /* one version for every slot */
    unsigned *slot = malloc(sizeof *slot * n);
    size_t *pick = malloc(sizeof *pick * n);
    l2_key *group = malloc(sizeof *group * n);
    char *done = calloc(n, 1);
    redisReply *all = calloc(1, sizeof *all);
    redisReply **el = calloc(2 + 4 * n, sizeof *el);
    st = L2_OK;
    if (slot == NULL || pick == NULL || group == NULL || done == NULL || all == NULL ||
        el == NULL) {
        st = l2conn_set_error(c->conn, "out of memory");
        goto out;
    }
    all->type = REDIS_REPLY_ARRAY, all->elements = 2 + 4 * n, all->element = el;
    for (size_t i = 0; i < n; i++) {
        char tag[KS_TAG_LEN];
        ks_tag(tag, k->ns, k->nslen, keys[i].key, keys[i].klen);
        slot[i] = ks_slot(tag, sizeof tag);
    }
    for (size_t i = 0; i < n && st == L2_OK; i++) {
        if (done[i])
            continue;
        size_t m = 0;
        for (size_t j = i; j < n; j++)
            if (!done[j] && slot[j] == slot[i])
                pick[m] = j, group[m++] = keys[j], done[j] = 1;
        l2_batch part;
        if ((st = mget_one(c, &at, group, m, timeout_ms, &part)) != L2_OK)
            break;
        redisReply *r = part.reply_;
        for (size_t x = 0; x < 2; x++)
            if (el[x] == NULL)
                el[x] = r->element[x], r->element[x] = NULL;
        for (size_t j = 0; j < m; j++)
            for (size_t x = 0; x < 4; x++) {
                el[2 + 4 * pick[j] + x] = r->element[2 + 4 * j + x];
                r->element[2 + 4 * j + x] = NULL;
            }
        l2_batch_free(&part);
    }
    if (st == L2_OK) {
        out->version = (uint64_t)answer_int(el[0]);
        out->n = n;
        out->reply_ = all;
        all = NULL;
    }
out:
    if (all != NULL)
        freeReplyObject(all); /* frees el and what was moved into it */
    else if (st != L2_OK)
        free(el);
    free(slot);
    free(pick);
    free(group);
    free(done);
    return st;
}

l2_status l2_mget(l2 *c, const l2_key *k, const l2_key *keys, size_t n, int64_t timeout_ms,
                  l2_batch *out)
{
    if (c->cl != NULL && n > 1)
        return mget_split(c, k, keys, n, timeout_ms, out);
    return mget_one(c, k, keys, n, timeout_ms, out);
}

static l2_status mget_one(l2 *c, const l2_key *k, const l2_key *keys, size_t n,
                         int64_t timeout_ms, l2_batch *out)
{
    entries e;
    const void **ek;
    size_t *el;
    if (entries_alloc(&e, n, &ek, &el) != 0) {
        entries_free(&e);
        return l2conn_set_error(c->conn, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        ek[i] = keys[i].key, el[i] = keys[i].klen;
    l2_status status;
    redisReply *r = eval_current(c, SCRIPT_MGET, k, &e, timeout_ms, &status, 0, NULL, NULL);
    entries_free(&e);
    if (r == NULL)
        return status;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 + 4 * n)
        return unexpected(c, r, "the MGET script");
    out->version = (uint64_t)answer_int(r->element[0]);
    out->n = n;
    out->reply_ = r;
    return L2_OK;
}

l2_status l2_batch_item(const l2_batch *b, size_t i, l2_value *v)
{
    l2_status st = answer_mget_item(b->reply_, i, v);
    v->version = b->version;
    return st;
}

void l2_batch_free(l2_batch *b)
{
    if (b->reply_ != NULL)
        freeReplyObject(b->reply_);
    memset(b, 0, sizeof *b);
}

static l2_status mset_one(l2 *c, const l2_key *k, const l2_entry *en, size_t n, const l2_msg *m,
                          int64_t timeout_ms, uint64_t *version);

/* Records the failure of the entries pick[0..g) (failure f of res) as the
 * last command left it. */
static void mset_failed(l2 *c, l2_mset_result *res, l2_status st, const size_t *pick, size_t g)
{
    l2_mset_fail *f = &res->fails[res->nfails];
    f->status = st;
    f->maybe_ran = st == L2_ETIMEOUT || l2_maybe_ran(c) || (c->cl != NULL && c->landed);
    snprintf(f->message, sizeof f->message, "%s", l2conn_error(c->conn));
    for (size_t j = 0; j < g; j++)
        res->fail[pick[j]] = (int)res->nfails;
    res->nfails++;
}

/* l2_mset() on a Cluster: one script per slot, in the order of each slot's
 * first entry, all within one deadline; each publishes the whole message
 * after its own writes, so the last one comes after every write. A slot
 * that fails does not stop the others: atomic per slot only, and res says
 * which slots' entries were stored. */
static l2_status mset_split(l2 *c, const l2_key *k, const l2_entry *en, size_t n,
                            const l2_msg *m, int64_t timeout_ms, uint64_t *version,
                            l2_mset_result *res)
{
    unsigned *slot = malloc(sizeof *slot * n);
    l2_entry *group = malloc(sizeof *group * n);
    size_t *pick = malloc(sizeof *pick * n);
    char *done = calloc(n, 1);
    l2_status first = L2_OK;
    char why[sizeof res->fails[0].message] = "";
    if (slot == NULL || group == NULL || pick == NULL || done == NULL) {
        free(slot), free(group), free(pick), free(done);
        return l2conn_set_error(c->conn, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        char tag[KS_TAG_LEN];
        ks_tag(tag, k->ns, k->nslen, en[i].key, en[i].klen);
        slot[i] = ks_slot(tag, sizeof tag);
    }
    l2_key at = *k;
    int64_t deadline = units_now_ms() + timeout_ms;
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        size_t g = 0;
        for (size_t j = i; j < n; j++)
            if (!done[j] && slot[j] == slot[i])
                pick[g] = j, group[g++] = en[j], done[j] = 1;
        int64_t left = deadline - units_now_ms();
        l2_status st;
        if (left > 0) {
            st = mset_one(c, &at, group, g, m, left, version);
        } else { /* never sent */
            l2conn_set_error(c->conn, "redis: out of time before the slot's turn");
            st = L2_ETIMEOUT;
        }
        if (st == L2_OK) {
            res->stored += g;
            at.floor = *version; /* the next slots under the version written */
            at.known = 1;
            continue;
        }
        mset_failed(c, res, st, pick, g);
        res->fails[res->nfails - 1].maybe_ran &= left > 0;
        if (first == L2_OK) {
            first = st;
            snprintf(why, sizeof why, "%s", l2conn_error(c->conn));
        }
    }
    free(slot);
    free(group);
    free(pick);
    free(done);
    if (first != L2_OK)
        l2conn_set_error(c->conn, "%s (%zu of %zu entries stored, one hash slot at a time)", why,
                         res->stored, n);
    return first;
}

l2_status l2_mset(l2 *c, const l2_key *k, const l2_entry *en, size_t n, const l2_msg *m,
                  int64_t timeout_ms, uint64_t *version, l2_mset_result *res)
{
    wrote_reset(c);
    memset(res, 0, sizeof *res);
    res->fail = malloc(sizeof *res->fail * (n ? n : 1));
    res->fails = malloc(sizeof *res->fails * (n ? n : 1));
    if (res->fail == NULL || res->fails == NULL) {
        l2_mset_result_free(res);
        return l2conn_set_error(c->conn, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        res->fail[i] = -1;
    if (c->cl != NULL && n > 1)
        return mset_split(c, k, en, n, m, timeout_ms, version, res);
    l2_status st = mset_one(c, k, en, n, m, timeout_ms, version);
    if (st == L2_OK) {
        res->stored = n;
    } else {
        for (size_t i = 0; i < n; i++)
            res->fail[i] = 0;
        mset_failed(c, res, st, NULL, 0);
    }
    return st;
}

void l2_mset_result_free(l2_mset_result *res)
{
    free(res->fail);
    free(res->fails);
    memset(res, 0, sizeof *res);
}

static l2_status mset_one(l2 *c, const l2_key *k, const l2_entry *en, size_t n, const l2_msg *m,
                          int64_t timeout_ms, uint64_t *version)
{
    size_t nargs = 2 + 2 * n;
    const char **args = malloc(sizeof *args * nargs);
    size_t *lens = malloc(sizeof *lens * nargs);
    char(*ttl)[24] = malloc(sizeof *ttl * (n ? n : 1));
    entries e;
    const void **ek;
    size_t *el;
    l2_status status = L2_EREPLY;
    redisReply *r = NULL;
    if (entries_alloc(&e, n, &ek, &el) == 0 && args != NULL && lens != NULL && ttl != NULL) {
        args[0] = m->channel, lens[0] = strlen(m->channel);
        args[1] = m->data, lens[1] = m->len;
        for (size_t i = 0; i < n; i++) {
            int tl = snprintf(ttl[i], sizeof ttl[i], "%lld", (long long)en[i].ttl_ms);
            ek[i] = en[i].key, el[i] = en[i].klen;
            args[2 + 2 * i] = en[i].value, lens[2 + 2 * i] = en[i].vlen;
            args[3 + 2 * i] = ttl[i], lens[3 + 2 * i] = (size_t)tl;
        }
        r = eval_current(c, SCRIPT_MSET, k, &e, timeout_ms, &status, (int)nargs, args, lens);
    } else {
        l2conn_set_error(c->conn, "out of memory");
    }
    entries_free(&e);
    free(args);
    free(lens);
    free(ttl);
    if (r == NULL)
        return status;
    *version = (uint64_t)answer_int(r);
    freeReplyObject(r);
    return L2_OK;
}

/* WAIT on one connection: *acked is how many replicas confirmed. */
static l2_status wait_on(l2 *c, l2conn *on, int replicas, int64_t wait_ms, int64_t timeout_ms,
                         int *acked)
{
    char n[16], ms[24];
    int nl = snprintf(n, sizeof n, "%d", replicas);
    int ml = snprintf(ms, sizeof ms, "%lld", (long long)(wait_ms > 0 ? wait_ms : 1));
    const char *argv[] = {"WAIT", n, ms};
    size_t lens[] = {4, (size_t)nl, (size_t)ml};
    l2_status status;
    redisReply *r = l2conn_call(on, timeout_ms, &status, 3, argv, lens);
    if (r == NULL && on != c->conn)
        l2conn_set_error(c->conn, "%s", l2conn_error(on));
    if (r == NULL) {
        if (status == L2_EDOWN)
            l2conn_set_error(c->conn, "the connection closed after the write");
        return status;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        l2conn_set_error(c->conn, "redis: %s", r->str);
        freeReplyObject(r);
        return L2_EREPLY;
    }
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(c, r, "WAIT");
    *acked = (int)r->integer;
    freeReplyObject(r);
    return L2_OK;
}

l2_status l2_wait(l2 *c, int replicas, int64_t wait_ms, int64_t timeout_ms, int *acked)
{
    if (c->cl == NULL)
        return wait_on(c, c->conn, replicas, wait_ms, timeout_ms, acked);
    /* on a Cluster, on every master the write ran on, within one wait_ms:
     * the write is as replicated as its least replicated part */
    if (c->wrote_lost)
        return l2conn_set_error(c->conn, "out of memory noting where the write ran");
    if (c->nwrote == 0) {
        l2conn_set_error(c->conn, "no write to wait for");
        return L2_EDOWN;
    }
    int64_t until = units_now_ms() + wait_ms;
    *acked = replicas;
    for (int i = 0; i < c->nwrote; i++) {
        int64_t left = until - units_now_ms();
        left = left > 1 ? left : 1;
        int n = 0;
        l2_status st = wait_on(c, c->wrote[i], replicas, left, timeout_ms - wait_ms + left, &n);
        if (st != L2_OK)
            return st;
        *acked = n < *acked ? n : *acked;
    }
    return L2_OK;
}

l2_status l2_publish(l2 *c, const char *channel, const void *msg, size_t len, int64_t timeout_ms)
{
    /* on a Cluster, on the master of the channel's slot (sharded pub/sub) */
    const char *argv[] = {c->cl != NULL ? "SPUBLISH" : "PUBLISH", channel, msg};
    size_t lens[] = {strlen(argv[0]), strlen(channel), len};
    l2_status status;
    redisReply *r = run(c, 1, timeout_ms, 0, &status, 3, argv, lens);
    if (r == NULL)
        return status;
    if (r->type == REDIS_REPLY_ERROR) {
        l2conn_set_error(c->conn, "redis: %s", r->str);
        freeReplyObject(r);
        return L2_EREPLY;
    }
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(c, r, argv[0]);
    freeReplyObject(r);
    return L2_OK;
}

int l2_sharded(const l2 *c)
{
    return c->cl != NULL;
}

struct l2cluster *l2_cluster(l2 *c)
{
    return c->cl;
}

void l2_value_free(l2_value *v)
{
    if (v->reply_ != NULL)
        freeReplyObject(v->reply_);
    memset(v, 0, sizeof *v);
}
