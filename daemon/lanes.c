/* The read lanes of a service; see lanes.h.
 * Invariant: owner[s] is -1 or an index into lane[], fixed once made. */
#include "lanes.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keyspace.h"
#include "l2cluster.h"
#include "log.h"

#define MAX_LANES 64

struct lanes {
    lane *lane[MAX_LANES];
    size_t n;
    int16_t *owner; /* on a Cluster: KS_SLOTS entries; NULL on one server */
};

/* The lanes of a cluster: the slot map asked of its nodes once, a lane per
 * master. Returns 0, or an errno value; no map (the cluster unreachable) is
 * 0 with no lanes. */
static int make_cluster_lanes(lanes *ls, const config_redis_url *url, int64_t connect_timeout_ms,
                              int64_t timeout_ms, size_t capacity, lane_done_fn done, void *arg)
{
    l2cluster *cl;
    config_redis_url *urls = calloc(MAX_LANES, sizeof *urls);
    ls->owner = malloc(sizeof *ls->owner * KS_SLOTS);
    if (urls == NULL || ls->owner == NULL || l2cluster_create(&cl, url, connect_timeout_ms,
                                                              "read lane") != 0) {
        free(urls);
        return ENOMEM;
    }
    int rv = 0;
    size_t n = 0;
    if (l2cluster_reload(cl) != L2_OK) {
        log_warn("read lanes: no slot map (%s); Gets go to the workers", l2cluster_error(cl));
        for (int s = 0; s < KS_SLOTS; s++)
            ls->owner[s] = -1;
    } else {
        n = l2cluster_layout(cl, ls->owner, urls, MAX_LANES);
        if (n > MAX_LANES)
            n = MAX_LANES; /* the slots of the others have owner -1 */
    }
    l2cluster_destroy(cl);
    for (size_t i = 0; i < n && rv == 0; i++) {
        rv = lane_create(&ls->lane[i], &urls[i], connect_timeout_ms, timeout_ms, capacity, done,
                         arg);
        if (rv == 0) {
            lane_assume_version(ls->lane[i]);
            ls->n++;
        }
    }
    free(urls);
    return rv;
}

int lanes_create(lanes **out, const config_redis_url *url, int64_t connect_timeout_ms,
                 int64_t timeout_ms, size_t capacity, lane_done_fn done, void *arg)
{
    lanes *ls = calloc(1, sizeof *ls);
    if (ls == NULL)
        return ENOMEM;
    int rv;
    if (url->nseeds > 0) {
        rv = make_cluster_lanes(ls, url, connect_timeout_ms, timeout_ms, capacity, done, arg);
    } else {
        rv = lane_create(&ls->lane[0], url, connect_timeout_ms, timeout_ms, capacity, done, arg);
        ls->n = rv == 0;
    }
    if (rv != 0) {
        lanes_destroy(ls);
        return rv;
    }
    *out = ls;
    return 0;
}

void lanes_destroy(lanes *ls)
{
    if (ls == NULL)
        return;
    for (size_t i = 0; i < ls->n; i++)
        lane_destroy(ls->lane[i]);
    free(ls->owner);
    free(ls);
}

lane *lanes_for(lanes *ls, const l2_key *k)
{
    if (ls == NULL || ls->n == 0)
        return NULL;
    lane *ln = ls->lane[0];
    if (ls->owner != NULL) {
        if (!k->known) /* the version is assumed: only while it is known and serving */
            return NULL;
        char tag[KS_TAG_LEN];
        ks_tag(tag, k->ns, k->nslen, k->key, k->klen);
        int i = ls->owner[ks_slot(tag, sizeof tag)];
        ln = i >= 0 ? ls->lane[i] : NULL;
    }
    return ln != NULL && lane_up(ln) ? ln : NULL;
}

int lanes_up(lanes *ls)
{
    int up = ls != NULL && ls->n > 0;
    for (size_t i = 0; up && i < ls->n; i++)
        up = lane_up(ls->lane[i]);
    return up;
}

uint64_t lanes_reads(lanes *ls)
{
    uint64_t reads = 0;
    for (size_t i = 0; ls != NULL && i < ls->n; i++)
        reads += lane_reads(ls->lane[i]);
    return reads;
}

int lanes_sharded(const lanes *ls)
{
    return ls != NULL && ls->owner != NULL && ls->n > 0;
}

size_t lanes_send(lanes *ls, const l2_key *keys, size_t n, uint64_t version, int64_t deadline,
                  void *const *reqs, lane_done_fn done, void *arg)
{
    lane **on = calloc(n ? n : 1, sizeof *on);
    const l2_key **ks = calloc(n ? n : 1, sizeof *ks);
    void **rs = calloc(n ? n : 1, sizeof *rs);
    size_t sent = 0;
    if (on == NULL || ks == NULL || rs == NULL) {
        free(on), free(ks), free(rs);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        on[i] = lanes_for(ls, &keys[i]);
    /* each lane's reads in one write, so each master answers them at once */
    for (size_t i = 0; i < n; i++) {
        lane *ln = on[i];
        if (ln == NULL)
            continue; /* no lane, or sent with an earlier key's */
        size_t g = 0;
        for (size_t j = i; j < n; j++)
            if (on[j] == ln)
                ks[g] = &keys[j], rs[g++] = reqs[j], on[j] = NULL;
        sent += lane_get_many(ln, ks, g, version, deadline, rs, done, arg);
    }
    free(on), free(ks), free(rs);
    return sent;
}
