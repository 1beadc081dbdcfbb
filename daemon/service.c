/* The service's lifecycle and its method table; see service.h. Each
 * method lives in its own file (get, write, batch, admin) over what they
 * share (method.h); this file only sets them up and routes requests to
 * them. */
#include "service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "acl.h"
#include "admin.h"
#include "batch.h"
#include "get.h"
#include "nearrep.h"
#include "ring.h"
#include "method.h"
#include "units.h"
#include "write.h"

typedef void (*method_fn)(service *svc, call *c);

/* The methods, by the request's method field. */
static const method_fn methods[] = {
    [METHOD(GET)] = get_handle,
    [METHOD(SET)] = write_handle_set,
    [METHOD(DELETE)] = write_handle_delete,
    [METHOD(STATS)] = admin_handle_stats,
    [METHOD(PING)] = admin_handle_ping,
    [METHOD(MGET)] = batch_handle_mget,
    [METHOD(MSET)] = batch_handle_mset,
    [METHOD(BUMP_NAMESPACE)] = write_handle_bump,
    [METHOD(NEAR_REPORT)] = admin_handle_near_report,
};

/* The namespace a request names into *ns, and the rights it needs (Get,
 * MGet r; Set, Delete, MSet w; BumpNamespace a); 0 for Ping, NearReport
 * and Stats (which names no namespace: see admitted()). */
static unsigned rights_needed(const pb_request *r, ProtobufCBinaryData *ns)
{
    switch (r->method_case) {
    case METHOD(GET):
        return *ns = r->get->ns, ACL_READ;
    case METHOD(MGET):
        return *ns = r->mget->ns, ACL_READ;
    case METHOD(SET):
        return *ns = r->set->ns, ACL_WRITE;
    case METHOD(DELETE):
        return *ns = r->delete_->ns, ACL_WRITE;
    case METHOD(MSET):
        return *ns = r->mset->ns, ACL_WRITE;
    case METHOD(BUMP_NAMESPACE):
        return *ns = r->bump_namespace->ns, ACL_ADMIN;
    default:
        return 0;
    }
}

static const char *const right_use[] = {"", "Get, MGet", "Set, Delete, MSet", "",
                                        "BumpNamespace, Stats"};

/* Answers PERMISSION_DENIED, counted in acl_denied and by namespace. */
static void deny(service *svc, call *c, const acl_peer *p, ProtobufCBinaryData ns,
                 unsigned missing)
{
    char who[48], letters[4];
    unsigned first = missing & -missing;
    stats_inc(&svc->st->acl_denied);
    if (ns.data != NULL && svc->st->namespaces != NULL)
        nstop_count_denied(svc->st->namespaces, ns.data, ns.len);
    if (p->known)
        snprintf(who, sizeof who, "uid %lu gid %lu", (unsigned long)p->uid, (unsigned long)p->gid);
    else
        snprintf(who, sizeof who, "a peer of unknown uid");
    if (ns.data == NULL)
        call_fail(c, CODE(PERMISSION_DENIED),
                  "no acl rule gives %s the right '%s' (%s) on any namespace", who,
                  acl_rights_text(missing, letters), right_use[first]);
    else
        call_fail(c, CODE(PERMISSION_DENIED),
                  "namespace \"%.*s\": %s lacks the right '%s' (%s) in the acl rules",
                  (int)(ns.len > 200 ? 200 : ns.len), (const char *)ns.data, who,
                  acl_rights_text(missing, letters), right_use[first]);
}

/* Whether the peer may make this request; answers it PERMISSION_DENIED
 * when not. A Get asking for a lease without the right w is served as a
 * plain Get (its lease field cleared). */
static int admitted(service *svc, call *c)
{
    if (acl_rules(svc->acl) == 0)
        return 1;
    const pb_request *r = call_request(c);
    acl_peer p = {0};
    p.known = call_peer(c, &p.uid, &p.gid);
    int64_t now = units_now_ms();
    ProtobufCBinaryData ns = {0, NULL};
    if (r->method_case == METHOD(STATS)) {
        if (acl_any(svc->acl, &p, ACL_ADMIN, now))
            return 1;
        deny(svc, c, &p, ns, ACL_ADMIN);
        return 0;
    }
    unsigned want = rights_needed(r, &ns);
    if (want == 0)
        return 1;
    if (r->method_case == METHOD(GET) && r->get->lease)
        want |= ACL_WRITE;
    unsigned missing = acl_missing(svc->acl, &p, ns.data, ns.len, want, now);
    if (missing == ACL_WRITE && r->method_case == METHOD(GET)) {
        r->get->lease = 0; /* the request is the call's: read as a plain Get */
        return 1;
    }
    if (missing == 0)
        return 1;
    deny(svc, c, &p, ns, missing);
    return 0;
}

void service_handle(void *arg, call *c)
{
    int m = call_request(c)->method_case;
    if (!admitted(arg, c))
        return;
    if (m >= 0 && (size_t)m < sizeof methods / sizeof methods[0] && methods[m] != NULL)
        methods[m](arg, c);
    else
        call_fail(c, CODE(UNIMPLEMENTED), "method %d is not implemented", m);
}

int service_reload_acl(service *svc, const char *rules, char *err, size_t errlen)
{
    return acl_reload(svc->acl, rules, err, errlen);
}

size_t service_acl_rules(service *svc)
{
    return acl_rules(svc->acl);
}

static void on_invalidated(void *arg, const void *key, size_t klen);

int service_create(service **out, const config *cfg, const config_redis_url *url, l1 *cache,
                   jobq *q, stats *st, char *err, size_t errlen)
{
    service *svc = calloc(1, sizeof *svc);
    if (svc == NULL) {
        snprintf(err, errlen, "cannot allocate the service");
        return ENOMEM;
    }
    svc->cfg = cfg;
    svc->cache = cache;
    svc->q = q;
    svc->st = st;
    svc->started_ms = units_now_ms();
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != sizeof id)
        id = (uint64_t)units_now_ms() ^ ((uint64_t)getpid() << 32);
    snprintf(svc->node_id, sizeof svc->node_id, "%016" PRIx64, id);
    if (url->nseeds > 0) { /* a Cluster: bumps go on bucket 0's channel (publish.h) */
        unsigned n_of[KS_INVAL_BUCKETS];
        ks_inval_tags(cfg->prefix, n_of);
        ks_inval_channel(svc->channel, sizeof svc->channel, cfg->prefix, n_of[0], NULL);
    } else {
        ks_channel(svc->channel, sizeof svc->channel, cfg->prefix);
    }
    int rv;
    char acl_err[256];
    const char *what = NULL;
    if ((rv = coh_create(&svc->coh, svc->node_id, cache, st, cfg->coherence_window_ms)) != 0)
        what = "the coherence state";
    else if ((rv = flights_create(&svc->flights)) != 0)
        what = "the single-flight table";
    else if ((rv = waits_create(&svc->waits, get_on_wake, svc)) != 0)
        what = "the lease waits' sweeper thread";
    else if ((rv = nearrep_create(&svc->near, st->namespaces)) != 0)
        what = "the near-tier reports' table";
    else if (acl_create(&svc->acl, cfg->acl, acl_err, sizeof acl_err) != 0)
        rv = EINVAL, what = acl_err; /* a name the config check resolved is gone */
    if (rv == 0) {
        coh_set_hook(svc->coh, on_invalidated, svc);
        size_t depth = cfg->redis_lane < cfg->contexts ? cfg->redis_lane : cfg->contexts;
        if (depth > 0 && (rv = lanes_create(&svc->lanes, url, cfg->redis_timeout_ms,
                                            cfg->redis_timeout_ms, depth, get_on_lane, svc)) != 0)
            what = "the read lane";
    }
    if (rv != 0) {
        snprintf(err, errlen, "cannot start %s: %s", what, strerror(rv));
        service_destroy(svc);
        return rv;
    }
    *out = svc;
    return 0;
}

/* coh_hook: a key (or, with NULL, every key) was invalidated here. */
static void on_invalidated(void *arg, const void *key, size_t klen)
{
    service *svc = arg;
    waits_wake(svc->waits, key, klen);
}

void service_quiesce(service *svc)
{
    if (svc == NULL)
        return;
    lanes_destroy(svc->lanes); /* hands the reads in flight to the workers */
    svc->lanes = NULL;
    waits_destroy(svc->waits); /* answers every parked Get */
    svc->waits = NULL;
}

void service_destroy(service *svc)
{
    if (svc == NULL)
        return;
    lanes_destroy(svc->lanes); /* in reverse order of service_create() */
    acl_destroy(svc->acl);
    nearrep_destroy(svc->near);
    waits_destroy(svc->waits);
    flights_destroy(svc->flights);
    coh_destroy(svc->coh);
    free(svc);
}

const char *service_node_id(const service *svc)
{
    return svc->node_id;
}

const char *service_channel(const service *svc)
{
    return svc->channel;
}

void service_set_publisher(service *svc, struct publisher *pub)
{
    svc->pub = pub;
}

coh *service_coherence(service *svc)
{
    return svc->coh;
}

void service_set_ring(service *svc, ring *r)
{
    atomic_store_explicit(&svc->ring, r, memory_order_release);
    coh_set_ring(svc->coh, r);
}
