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

/* The scripts. Every key a script touches comes in KEYS[] (keyspace.c
 * names them all): KEYS[1] is PREFIX:nsver:NS, then each entry's four keys
 * (value, lease, negative, stale-while-revalidate marks; one hash tag, so
 * one Cluster slot), under the version the caller assumes, ARGV[1]. A
 * script that finds another version in Redis does nothing and answers
 * {version}: the caller builds the keys under that one and runs it again
 * (the read lane's optimistic check, inside one script). So a write never
 * lands under a version that a bump has retired, and every script returns
 * the version it used. A write and its invalidation message are one
 * script, so the message is published if and only if the write happened.
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

/* An entry's keys after KEYS[1], in the scripts' order. */
#define ENTRY_KEYS 4
static const enum ks_kind entry_kind[ENTRY_KEYS] = {KS_DATA, KS_LEASE, KS_NEG, KS_SWR};

enum script { SCRIPT_GET, SCRIPT_SET, SCRIPT_DEL, SCRIPT_BUMP, SCRIPT_MGET, SCRIPT_MSET, NSCRIPTS };

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
    "redis.call('PUBLISH', ARGV[4], ARGV[5]) return {v, 1}",
    /* ARGV: version channel message token floor -> {version, deleted}. With
     * a token, only that lease is released (deleted = whether it was). */
    [SCRIPT_DEL] = VERSION VERSION_CHECK ENTRY
    "if ARGV[4] ~= '' then "
    "  if redis.call('GET', lease_k) ~= ARGV[4] then return {v, 0} end "
    "  redis.call('DEL', lease_k) redis.call('PUBLISH', ARGV[2], ARGV[3]) return {v, 1} "
    "end "
    "local n = redis.call('DEL', k) redis.call('DEL', lease_k, neg_k, swr_k) "
    "redis.call('PUBLISH', ARGV[2], ARGV[3]) return {v, n}",
    /* KEYS: the version only. ARGV: from channel message floor -> {version,
     * bumped}: from + 1 and 1 when Redis held `from` (the message, built by
     * the daemon, names from + 1); what it holds and 0 otherwise, writing and
     * publishing nothing. */
    [SCRIPT_BUMP] = VERSION "if v ~= ARGV[1] then return {v, 0} end "
                            "v = string.format('%d', tonumber(v) + 1) redis.call('SET', KEYS[1], v) "
                            "redis.call('PUBLISH', ARGV[2], ARGV[3]) return {v, 1}",
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
    "redis.call('PUBLISH', ARGV[2], ARGV[3]) return v",
};

struct l2 {
    l2conn *conn;
    char sha[NSCRIPTS][41];
    uint32_t stream;
};

/* l2conn_setup_fn: SCRIPT LOAD of every script on a new connection.
 * Returns 0 or -1. */
static int load_scripts(void *arg, l2conn *conn)
{
    l2 *c = arg;
    for (int i = 0; i < NSCRIPTS; i++) {
        const char *load[] = {"SCRIPT", "LOAD", script_text[i]};
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
    if (c == NULL || l2conn_create(&c->conn, url, connect_timeout_ms, name) != 0) {
        free(c);
        return ENOMEM;
    }
    l2conn_set_setup(c->conn, load_scripts, c);
    c->stream = stream;
    *out = c;
    return 0;
}

void l2_destroy(l2 *c)
{
    if (c == NULL)
        return;
    l2conn_destroy(c->conn);
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
    return l2conn_maybe_ran(c->conn);
}

const char *l2_error(const l2 *c)
{
    return l2conn_error(c->conn);
}

/* Reads an integer or a numeric string reply element; -1 when neither. */
static int64_t reply_int(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return -1;
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

/* Runs script `id` by EVALSHA, or by EVAL when Redis has lost its script
 * cache. KEYS: PREFIX:nsver:NS, then each entry's ENTRY_KEYS keys under
 * `version`; ARGV: `version`, the `nargs` arguments, then k->floor. Returns
 * the reply or NULL with *status set, as l2conn_run(), which sends it only
 * once when `once`. */
static redisReply *eval(l2 *c, enum script id, const l2_key *k, uint64_t version,
                        const entries *e, int64_t timeout_ms, int once, l2_status *status,
                        int nargs, const char **args, const size_t *lens)
{
    size_t nkeys = 1 + ENTRY_KEYS * e->n, argc = 3 + nkeys + 1 + (size_t)nargs + 1, room = 0;
    for (size_t i = 0; i < e->n; i++)
        room += ENTRY_KEYS * ks_data_key_max(k->prefix, k->nslen, version, e->lens[i]);
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
        r = l2conn_run(c->conn, timeout_ms, once, status, (int)a, argv, argl);
        if (r == NULL && *status == L2_EREPLY &&
            strncmp(l2conn_error(c->conn), "redis: NOSCRIPT", 15) == 0) {
            argv[0] = "EVAL", argl[0] = 4;
            argv[1] = script_text[id], argl[1] = strlen(script_text[id]);
            r = l2conn_run(c->conn, timeout_ms, once, status, (int)a, argv, argl);
        }
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
static redisReply *eval_current(l2 *c, enum script id, const l2_key *k, const entries *e,
                                int64_t timeout_ms, l2_status *status, int nargs,
                                const char **args, const size_t *lens)
{
    uint64_t version = k->floor;
    for (int i = 0; i < MOVED_TRIES; i++) {
        redisReply *r = eval(c, id, k, version, e, timeout_ms, 0, status, nargs, args, lens);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 1)
            return r;
        version = (uint64_t)reply_int(r->element[0]);
        freeReplyObject(r);
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
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 8)
        return unexpected(c, r, "the GET script");
    redisReply **el = r->element;
    out->version = (uint64_t)reply_int(el[0]);
    out->lease = (int)reply_int(el[3]);
    answer_raw raw = {.has_value = el[1]->type == REDIS_REPLY_STRING,
                      .pttl_ms = reply_int(el[2]),
                      .has_fresh = el[4]->type == REDIS_REPLY_STRING,
                      .fresh_until = reply_int(el[4]),
                      .now_ms = reply_int(el[5]),
                      .negative = reply_int(el[6]) == 1,
                      .neg_pttl_ms = reply_int(el[7])};
    if (answer_decode(&raw, out) != L2_OK) {
        freeReplyObject(r);
        return L2_NIL;
    }
    out->data = el[1]->str;
    out->len = el[1]->len;
    out->reply_ = r;
    return L2_OK;
}

l2_status l2_set(l2 *c, const l2_key *k, const void *value, size_t vlen, int64_t ttl_ms,
                 const l2_set_opts *o, const l2_msg *m, int64_t timeout_ms, uint64_t *version,
                 int *stored)
{
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
    *version = (uint64_t)reply_int(r->element[0]);
    *stored = reply_int(r->element[1]) == 1;
    freeReplyObject(r);
    return L2_OK;
}

l2_status l2_del(l2 *c, const l2_key *k, const void *token, size_t token_len, const l2_msg *m,
                 int64_t timeout_ms, int *existed, uint64_t *version)
{
    const char *args[] = {m->channel, m->data, token != NULL ? token : ""};
    size_t lens[] = {strlen(m->channel), m->len, token != NULL ? token_len : 0};
    entries e = {1, &k->key, &k->klen};
    l2_status status;
    redisReply *r = eval_current(c, SCRIPT_DEL, k, &e, timeout_ms, &status, 3, args, lens);
    if (r == NULL)
        return status;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return unexpected(c, r, "the DEL script");
    *version = (uint64_t)reply_int(r->element[0]);
    *existed = reply_int(r->element[1]) > 0;
    freeReplyObject(r);
    return L2_OK;
}

l2_status l2_bump(l2 *c, const l2_key *k, uint64_t from, const l2_msg *m, int64_t timeout_ms,
                  uint64_t *version, int *bumped)
{
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
    *version = (uint64_t)reply_int(r->element[0]);
    *bumped = reply_int(r->element[1]) == 1;
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

l2_status l2_mget(l2 *c, const l2_key *k, const l2_key *keys, size_t n, int64_t timeout_ms,
                  l2_batch *out)
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
    out->version = (uint64_t)reply_int(r->element[0]);
    out->n = n;
    out->reply_ = r;
    return L2_OK;
}

l2_status l2_batch_item(const l2_batch *b, size_t i, l2_value *v)
{
    const redisReply *r = b->reply_;
    redisReply **e = r->element + 2 + 4 * i;
    memset(v, 0, sizeof *v);
    v->version = b->version;
    /* a negative item's pttl is its neg mark's (the script's choice) */
    answer_raw raw = {.has_value = e[0]->type == REDIS_REPLY_STRING,
                      .pttl_ms = reply_int(e[1]),
                      .has_fresh = e[2]->type == REDIS_REPLY_STRING,
                      .fresh_until = reply_int(e[2]),
                      .now_ms = reply_int(r->element[1]),
                      .negative = reply_int(e[3]) == 1,
                      .neg_pttl_ms = reply_int(e[1])};
    if (answer_decode(&raw, v) != L2_OK)
        return L2_NIL;
    v->data = e[0]->str;
    v->len = e[0]->len;
    return L2_OK;
}

void l2_batch_free(l2_batch *b)
{
    if (b->reply_ != NULL)
        freeReplyObject(b->reply_);
    memset(b, 0, sizeof *b);
}

l2_status l2_mset(l2 *c, const l2_key *k, const l2_entry *en, size_t n, const l2_msg *m,
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
    *version = (uint64_t)reply_int(r);
    freeReplyObject(r);
    return L2_OK;
}

l2_status l2_wait(l2 *c, int replicas, int64_t wait_ms, int64_t timeout_ms, int *acked)
{
    char n[16], ms[24];
    int nl = snprintf(n, sizeof n, "%d", replicas);
    int ml = snprintf(ms, sizeof ms, "%lld", (long long)(wait_ms > 0 ? wait_ms : 1));
    const char *argv[] = {"WAIT", n, ms};
    size_t lens[] = {4, (size_t)nl, (size_t)ml};
    l2_status status;
    redisReply *r = l2conn_call(c->conn, timeout_ms, &status, 3, argv, lens);
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

void l2_value_free(l2_value *v)
{
    if (v->reply_ != NULL)
        freeReplyObject(v->reply_);
    memset(v, 0, sizeof *v);
}
