/* Redis Cluster routing over l2conn; see l2cluster.h.
 * Invariant: owner[s] is -1 or an index into nodes[], and nodes[] only
 * grows (a node the map no longer names keeps its idle connection). */
#include "l2cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyspace.h"
#include "log.h"

typedef struct node {
    char host[256];
    int port;
    char addr[280]; /* "host:port" */
    l2conn *conn;
} node;

struct l2cluster {
    config_redis_url url;
    char name[32];
    int64_t connect_timeout_ms;
    l2conn_setup_fn setup;
    void *setup_arg;
    node nodes[L2CLUSTER_MAX_NODES];
    int nnodes;
    int16_t owner[KS_SLOTS];
    int loaded;    /* the map was loaded once and is not known to be stale */
    int no_shards; /* a node refused CLUSTER SHARDS (Redis before 7.0): CLUSTER SLOTS */
    l2conn *last; /* the connection the last command was sent on */
    l2cluster_counts counts;
    char err[640];
};

int l2cluster_create(l2cluster **out, const config_redis_url *url, int64_t connect_timeout_ms,
                     const char *name)
{
    if (url->nseeds == 0)
        return EINVAL;
    l2cluster *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return ENOMEM;
    cl->url = *url;
    snprintf(cl->name, sizeof cl->name, "%s", name);
    cl->connect_timeout_ms = connect_timeout_ms;
    for (int s = 0; s < KS_SLOTS; s++)
        cl->owner[s] = -1;
    *out = cl;
    return 0;
}

void l2cluster_destroy(l2cluster *cl)
{
    if (cl == NULL)
        return;
    for (int i = 0; i < cl->nnodes; i++)
        l2conn_destroy(cl->nodes[i].conn);
    free(cl);
}

void l2cluster_set_setup(l2cluster *cl, l2conn_setup_fn fn, void *arg)
{
    cl->setup = fn;
    cl->setup_arg = arg;
    for (int i = 0; i < cl->nnodes; i++)
        l2conn_set_setup(cl->nodes[i].conn, fn, arg);
}

const char *l2cluster_error(const l2cluster *cl)
{
    return cl->err;
}

l2cluster_counts l2cluster_counters(const l2cluster *cl)
{
    return cl->counts;
}

l2conn *l2cluster_last(const l2cluster *cl)
{
    return cl->last;
}

int l2cluster_maybe_ran(const l2cluster *cl)
{
    return cl->last != NULL && l2conn_maybe_ran(cl->last);
}

/* The node at host:port, made (with its connection, not connected yet) if
 * new. Returns its index, or -1 with cl->err set. */
static int node_at(l2cluster *cl, const char *host, size_t hlen, int port)
{
    for (int i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].port == port && strlen(cl->nodes[i].host) == hlen &&
            memcmp(cl->nodes[i].host, host, hlen) == 0)
            return i;
    if (cl->nnodes == L2CLUSTER_MAX_NODES || hlen >= sizeof cl->nodes[0].host) {
        snprintf(cl->err, sizeof cl->err, "redis cluster: more than %d nodes, or a host name too long",
                 L2CLUSTER_MAX_NODES);
        return -1;
    }
    node *n = &cl->nodes[cl->nnodes];
    memcpy(n->host, host, hlen);
    n->host[hlen] = '\0';
    n->port = port;
    snprintf(n->addr, sizeof n->addr, strchr(n->host, ':') ? "[%s]:%d" : "%s:%d", n->host, port);
    config_redis_url one = cl->url;
    one.nseeds = 0;
    one.nsentinels = 0;
    memcpy(one.host, n->host, sizeof one.host);
    one.port = port;
    if (l2conn_create(&n->conn, &one, cl->connect_timeout_ms, cl->name) != 0) {
        snprintf(cl->err, sizeof cl->err, "out of memory");
        return -1;
    }
    if (cl->setup != NULL)
        l2conn_set_setup(n->conn, cl->setup, cl->setup_arg);
    return cl->nnodes++;
}

/* The node an "ADDR" of a MOVED or ASK answer names ("host:port", the
 * port after the last ':'). Returns its index or -1. */
static int node_of_addr(l2cluster *cl, const char *addr)
{
    const char *colon = strrchr(addr, ':');
    int port = colon != NULL ? atoi(colon + 1) : 0;
    if (colon == NULL || port <= 0 || port > 65535) {
        snprintf(cl->err, sizeof cl->err, "redis cluster: bad address \"%.100s\" in a redirection",
                 addr);
        return -1;
    }
    return node_at(cl, addr, (size_t)(colon - addr), port);
}

/* Reads one CLUSTER SLOTS answer, asked of node `from`, into cl->owner.
 * Returns 0, or -1 when its shape is not the one Redis documents. */
static int read_slots(l2cluster *cl, int from, const redisReply *r)
{
    int16_t owner[KS_SLOTS];
    for (int s = 0; s < KS_SLOTS; s++)
        owner[s] = -1;
    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
            e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            return -1;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        const redisReply *ip = e->element[2]->element[0];
        int port = (int)e->element[2]->element[1]->integer;
        if (lo < 0 || hi >= KS_SLOTS || lo > hi || port <= 0 || port > 65535)
            return -1;
        /* an empty or "?" address is the node asked (Redis 7 may not know
         * its own) */
        int n = ip->len == 0 || strcmp(ip->str, "?") == 0
                    ? node_at(cl, cl->nodes[from].host, strlen(cl->nodes[from].host), port)
                    : node_at(cl, ip->str, ip->len, port);
        if (n < 0)
            return -1;
        for (long long s = lo; s <= hi; s++)
            owner[s] = (int16_t)n;
    }
    memcpy(cl->owner, owner, sizeof owner);
    return 0;
}

/* The value of `name` in a RESP2 map (a flat array of names and values),
 * or NULL. */
static const redisReply *map_get(const redisReply *m, const char *name)
{
    if (m->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < m->elements; i += 2)
        if (m->element[i]->type == REDIS_REPLY_STRING && strcmp(m->element[i]->str, name) == 0)
            return m->element[i + 1];
    return NULL;
}

/* The master of one shard of a CLUSTER SHARDS answer (its "nodes" entry
 * whose role is master), as a node index; -1 when it names none usable.
 * (CLUSTER SLOTS and MOVED give a TLS client the TLS ports already.) */
static int shard_master(l2cluster *cl, int from, const redisReply *nodes)
{
    for (size_t j = 0; nodes != NULL && nodes->type == REDIS_REPLY_ARRAY && j < nodes->elements;
         j++) {
        const redisReply *n = nodes->element[j], *role = map_get(n, "role");
        /* over TLS, the node's TLS port (CLUSTER SHARDS gives both kinds) */
        const redisReply *port = map_get(n, cl->url.tls ? "tls-port" : "port");
        const redisReply *ep = map_get(n, "endpoint");
        if (ep == NULL || ep->type != REDIS_REPLY_STRING || ep->len == 0 || strcmp(ep->str, "?") == 0)
            ep = map_get(n, "ip"); /* no endpoint: its address */
        if (role == NULL || role->type != REDIS_REPLY_STRING || strcmp(role->str, "master") != 0 ||
            port == NULL || port->type != REDIS_REPLY_INTEGER || port->integer <= 0 ||
            port->integer > 65535)
            continue;
        /* an empty or "?" address is the node asked, as in CLUSTER SLOTS */
        if (ep == NULL || ep->type != REDIS_REPLY_STRING || ep->len == 0 ||
            strcmp(ep->str, "?") == 0)
            return node_at(cl, cl->nodes[from].host, strlen(cl->nodes[from].host),
                           (int)port->integer);
        return node_at(cl, ep->str, ep->len, (int)port->integer);
    }
    return -1;
}

/* Reads one CLUSTER SHARDS answer (Redis 7.0: per shard its slot ranges and
 * its nodes), asked of node `from`, into cl->owner. Returns 0, or -1 when
 * its shape is not the one Redis documents. */
static int read_shards(l2cluster *cl, int from, const redisReply *r)
{
    int16_t owner[KS_SLOTS];
    for (int s = 0; s < KS_SLOTS; s++)
        owner[s] = -1;
    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *slots = map_get(r->element[i], "slots");
        if (slots == NULL || slots->type != REDIS_REPLY_ARRAY || slots->elements % 2 != 0)
            return -1;
        if (slots->elements == 0)
            continue; /* a shard without slots */
        int n = shard_master(cl, from, map_get(r->element[i], "nodes"));
        if (n < 0)
            continue; /* no master yet (a failover): its slots stay unserved */
        for (size_t j = 0; j < slots->elements; j += 2) {
            const redisReply *lo = slots->element[j], *hi = slots->element[j + 1];
            if (lo->type != REDIS_REPLY_INTEGER || hi->type != REDIS_REPLY_INTEGER ||
                lo->integer < 0 || hi->integer >= KS_SLOTS || lo->integer > hi->integer)
                return -1;
            for (long long s = lo->integer; s <= hi->integer; s++)
                owner[s] = (int16_t)n;
        }
    }
    memcpy(cl->owner, owner, sizeof owner);
    return 0;
}

/* Asks node i for the map, by CLUSTER SHARDS, or CLUSTER SLOTS where that
 * is unknown; returns 0 when it answered one. */
static int reload_from(l2cluster *cl, int i, char *why, size_t whylen)
{
    const char *shards[] = {"CLUSTER", "SHARDS"}, *slots[] = {"CLUSTER", "SLOTS"};
    l2_status status;
    int by_shards = !cl->no_shards;
    /* a node in its backoff fails at once: the next is asked */
    redisReply *r = l2conn_run(cl->nodes[i].conn, cl->connect_timeout_ms, 0, &status, 2,
                               by_shards ? shards : slots, NULL);
    if (r == NULL && by_shards && status == L2_EREPLY) { /* before Redis 7.0 */
        cl->no_shards = 1, by_shards = 0;
        r = l2conn_run(cl->nodes[i].conn, cl->connect_timeout_ms, 0, &status, 2, slots, NULL);
    }
    if (r == NULL) {
        snprintf(why, whylen, "%s", l2conn_error(cl->nodes[i].conn));
        return -1;
    }
    int rv = by_shards ? read_shards(cl, i, r) : read_slots(cl, i, r);
    if (rv != 0)
        snprintf(why, whylen, "%s: unexpected reply to CLUSTER %s", cl->nodes[i].addr,
                 by_shards ? "SHARDS" : "SLOTS");
    freeReplyObject(r);
    return rv;
}

l2_status l2cluster_reload(l2cluster *cl)
{
    char why[640] = "";
    /* the seeds first join the nodes, so that they are asked too */
    for (int i = 0; i < cl->url.nseeds; i++)
        node_at(cl, cl->url.seeds[i].host, strlen(cl->url.seeds[i].host), cl->url.seeds[i].port);
    /* the masters of the last map first: they are the likeliest to answer */
    int tried[L2CLUSTER_MAX_NODES] = {0};
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < cl->nnodes; i++) {
            int is_master = 0;
            for (int s = 0; s < KS_SLOTS && !is_master; s += 1)
                is_master = cl->owner[s] == i;
            if (tried[i] || (pass == 0 && !is_master))
                continue;
            tried[i] = 1;
            if (reload_from(cl, i, why, sizeof why) == 0) {
                cl->loaded = 1;
                cl->counts.reloads++;
                return L2_OK;
            }
        }
    snprintf(cl->err, sizeof cl->err, "redis cluster: no node gave the slot map (last: %.500s)",
             why);
    cl->loaded = 0;
    return L2_EDOWN;
}

l2conn *l2cluster_conn(l2cluster *cl, unsigned slot)
{
    if (!cl->loaded && l2cluster_reload(cl) != L2_OK)
        return NULL;
    int n = cl->owner[slot % KS_SLOTS];
    return n >= 0 ? cl->nodes[n].conn : NULL;
}

size_t l2cluster_layout(const l2cluster *cl, int16_t *owner, config_redis_url *urls, size_t n)
{
    int16_t index[L2CLUSTER_MAX_NODES];
    size_t count = 0;
    for (int i = 0; i < L2CLUSTER_MAX_NODES; i++)
        index[i] = -1;
    for (int s = 0; s < KS_SLOTS; s++) {
        int i = cl->owner[s];
        if (i >= 0 && index[i] < 0) {
            if (count < n) {
                urls[count] = cl->url;
                urls[count].nseeds = 0;
                urls[count].nsentinels = 0;
                memcpy(urls[count].host, cl->nodes[i].host, sizeof urls[count].host);
                urls[count].port = cl->nodes[i].port;
            }
            index[i] = (int16_t)count++;
        }
        owner[s] = i >= 0 && index[i] < (int16_t)n ? index[i] : -1;
    }
    return count;
}

int l2cluster_owners(const l2cluster *cl, int16_t *owner)
{
    memcpy(owner, cl->owner, sizeof cl->owner);
    return cl->nnodes;
}

size_t l2cluster_masters(l2cluster *cl, const char **addrs, size_t n)
{
    int seen[L2CLUSTER_MAX_NODES] = {0};
    size_t count = 0;
    for (int s = 0; s < KS_SLOTS; s++) {
        int i = cl->owner[s];
        if (i < 0 || seen[i])
            continue;
        seen[i] = 1;
        if (count < n)
            addrs[count] = cl->nodes[i].addr;
        count++;
    }
    return count;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

redisReply *l2cluster_run(l2cluster *cl, unsigned slot, int64_t timeout_ms, int once,
                          l2_status *status, int argc, const char **argv, const size_t *lens)
{
    slot %= KS_SLOTS;
    cl->last = NULL;
    l2conn *c = l2cluster_conn(cl, slot);
    int asking = 0;
    for (int i = 0; i <= L2CLUSTER_REDIRECTS; i++) {
        if (c == NULL) {
            if (cl->loaded)
                snprintf(cl->err, sizeof cl->err, "redis cluster: no master serves slot %u", slot);
            *status = L2_EDOWN;
            return NULL;
        }
        if (asking) {
            const char *ask[] = {"ASKING"};
            redisReply *r = l2conn_run(c, timeout_ms, 1, status, 1, ask, NULL);
            if (r == NULL) {
                snprintf(cl->err, sizeof cl->err, "%s", l2conn_error(c));
                return NULL;
            }
            freeReplyObject(r);
        }
        cl->last = c;
        redisReply *r = l2conn_run(c, timeout_ms, once, status, argc, argv, lens);
        if (r != NULL)
            return r;
        snprintf(cl->err, sizeof cl->err, "%s", l2conn_error(c));
        if (*status != L2_EREPLY) { /* the node may be gone: ask for the map next time */
            cl->loaded = 0;
            return NULL;
        }
        const char *e = cl->err;
        if (strncmp(e, "redis: ", 7) == 0)
            e += 7;
        char addr[300];
        unsigned to;
        asking = 0;
        if (sscanf(e, "MOVED %u %299s", &to, addr) == 2) {
            int n = node_of_addr(cl, addr);
            if (n < 0)
                break;
            cl->counts.moved++;
            /* a second MOVED: the nodes disagree for a moment (a slot's
             * SETSLOT NODE reached one and not yet the other): let them agree */
            if (i > 0)
                sleep_ms(10 << (i < 4 ? i : 4));
            cl->owner[to % KS_SLOTS] = (int16_t)n;
            l2cluster_reload(cl); /* the rest of the map has likely moved too */
            cl->owner[to % KS_SLOTS] = (int16_t)n; /* what the node said wins */
            c = cl->nodes[n].conn;
        } else if (sscanf(e, "ASK %u %299s", &to, addr) == 2) {
            int n = node_of_addr(cl, addr);
            if (n < 0)
                break;
            cl->counts.asked++;
            c = cl->nodes[n].conn;
            asking = 1;
        } else if (strncmp(e, "TRYAGAIN", 8) == 0) {
            cl->counts.tryagain++;
            sleep_ms(10 << (i < 4 ? i : 4));
            c = l2cluster_conn(cl, slot);
        } else if (strncmp(e, "CLUSTERDOWN", 11) == 0) {
            /* a failover under way: the map is likely to change */
            cl->counts.tryagain++;
            sleep_ms(10 << (i < 4 ? i : 4));
            cl->loaded = 0;
            c = l2cluster_conn(cl, slot);
        } else {
            return NULL; /* Redis's own error: the caller's */
        }
    }
    if (strncmp(cl->err, "redis cluster:", 14) != 0) {
        char last[200];
        snprintf(last, sizeof last, "%.180s", cl->err);
        snprintf(cl->err, sizeof cl->err,
                 "redis cluster: slot %u still redirected after %d tries (last: %s)", slot,
                 L2CLUSTER_REDIRECTS + 1, last);
    }
    *status = L2_EREPLY;
    return NULL;
}
