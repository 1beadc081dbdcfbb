/* The read lanes of a service; see lanes.h.
 * Invariants: lane[0..n) are made once and live until lanes_destroy();
 * owner[s] is -1 or an index below n. Only the reload thread (on a
 * Cluster) adds lanes and changes owner[]; callers read both without a
 * lock, so each is atomic. */
#include "lanes.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyspace.h"
#include "l2cluster.h"
#include "log.h"
#include "units.h"

#define MAX_LANES 64
#define RELOAD_EVERY_MS 1000 /* at most one slot map a second */

struct lanes {
    _Atomic(lane *) lane[MAX_LANES]; /* owned, the first n; freed by lanes_destroy() */
    atomic_size_t n;
    _Atomic int16_t *owner; /* owned; on a Cluster: KS_SLOTS entries; NULL on one server */
    atomic_int used[MAX_LANES]; /* on a Cluster: the lane serves a slot of the last map */
    /* on a Cluster: where each lane goes (the reload thread's alone), and
     * what a new lane is made with */
    struct {
        char host[256];
        int port;
    } at[MAX_LANES];
    l2cluster *cl; /* owned: the reload thread's handle for the slot map */
    int64_t connect_timeout_ms, timeout_ms;
    size_t capacity;
    lane_done_fn done;
    void *arg;
    pthread_t thread; /* the reload thread, when has_thread */
    int has_thread;   /* set before any other thread runs */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int poked, stopping; /* under mu */
    atomic_int pending;  /* a poke the thread has not taken yet */
};

/* The lane to url's address, made if new; returns its index, or -1 (no
 * room, or it could not start). Only the reload thread (or the creator,
 * before it) calls this. */
static int lane_to(lanes *ls, const config_redis_url *url)
{
    size_t n = atomic_load(&ls->n);
    for (size_t i = 0; i < n; i++)
        if (ls->at[i].port == url->port && strcmp(ls->at[i].host, url->host) == 0)
            return (int)i;
    lane *ln;
    if (n == MAX_LANES ||
        lane_create(&ln, url, ls->connect_timeout_ms, ls->timeout_ms, ls->capacity, ls->done,
                    ls->arg) != 0)
        return -1;
    lane_assume_version(ln); /* the version key is on another slot */
    snprintf(ls->at[n].host, sizeof ls->at[n].host, "%s", url->host);
    ls->at[n].port = url->port;
    atomic_store(&ls->lane[n], ln);
    atomic_store(&ls->n, n + 1); /* after the lane: a reader that sees n sees it */
    return (int)n;
}

/* Loads the cluster's slot map and points every slot at its master's lane,
 * making lanes for masters new to it. Lanes no map names any more stay
 * (a read in flight on one lands all the same) but serve no slot. */
static void relayout(lanes *ls)
{
    config_redis_url *urls = calloc(MAX_LANES, sizeof *urls);
    int16_t *owner = malloc(sizeof *owner * KS_SLOTS);
    if (urls == NULL || owner == NULL) {
        log_warn("read lanes: out of memory reloading the slot map");
    } else if (l2cluster_reload(ls->cl) != L2_OK) {
        log_warn("read lanes: no slot map (%s); Gets go to the workers", l2cluster_error(ls->cl));
    } else {
        size_t m = l2cluster_layout(ls->cl, owner, urls, MAX_LANES);
        int16_t index[MAX_LANES];
        int used[MAX_LANES] = {0}, changed = 0;
        for (size_t i = 0; i < m && i < MAX_LANES; i++)
            index[i] = (int16_t)lane_to(ls, &urls[i]);
        for (int s = 0; s < KS_SLOTS; s++) {
            int16_t o = owner[s] >= 0 ? index[owner[s]] : -1;
            changed |= atomic_exchange_explicit(&ls->owner[s], o, memory_order_relaxed) != o;
            if (o >= 0)
                used[o] = 1;
        }
        for (size_t i = 0; i < MAX_LANES; i++)
            atomic_store(&ls->used[i], used[i]);
        if (changed)
            log_info("read lanes: slot map loaded, %zu masters", m);
    }
    free(urls);
    free(owner);
}

/* The reload thread: a slot map each time a caller found a slot without a
 * live lane or a lane read failed (lanes_poke()), at most one a second. */
static void *reload_main(void *arg)
{
    lanes *ls = arg;
    pthread_mutex_lock(&ls->mu);
    while (!ls->stopping) {
        if (!ls->poked) {
            pthread_cond_wait(&ls->cv, &ls->mu);
            continue;
        }
        ls->poked = 0;
        pthread_mutex_unlock(&ls->mu);
        atomic_store(&ls->pending, 0); /* pokes from now on ask for another */
        relayout(ls);
        int64_t until = units_now_ms() + RELOAD_EVERY_MS;
        pthread_mutex_lock(&ls->mu);
        for (int64_t left; !ls->stopping && (left = until - units_now_ms()) > 0;)
            units_cond_wait_ms(&ls->cv, &ls->mu, left);
    }
    pthread_mutex_unlock(&ls->mu);
    return NULL;
}

void lanes_poke(lanes *ls)
{
    if (ls == NULL || ls->cl == NULL || atomic_exchange(&ls->pending, 1))
        return;
    pthread_mutex_lock(&ls->mu);
    ls->poked = 1;
    pthread_cond_signal(&ls->cv);
    pthread_mutex_unlock(&ls->mu);
}

/* The lanes of a cluster: the slot map asked of its nodes now, a lane per
 * master, and the thread that reloads the map. Returns 0, or an errno
 * value; no map (the cluster unreachable) is 0 with no lanes yet. */
static int make_cluster_lanes(lanes *ls, const config_redis_url *url)
{
    ls->owner = malloc(sizeof *ls->owner * KS_SLOTS);
    if (ls->owner == NULL || l2cluster_create(&ls->cl, url, ls->connect_timeout_ms,
                                              "read lane") != 0)
        return ENOMEM;
    for (int s = 0; s < KS_SLOTS; s++)
        atomic_init(&ls->owner[s], -1);
    relayout(ls);
    int rv = pthread_create(&ls->thread, NULL, reload_main, ls);
    ls->has_thread = rv == 0;
    return rv;
}

int lanes_create(lanes **out, const config_redis_url *url, int64_t connect_timeout_ms,
                 int64_t timeout_ms, size_t capacity, lane_done_fn done, void *arg)
{
    lanes *ls = calloc(1, sizeof *ls);
    if (ls == NULL)
        return ENOMEM;
    ls->connect_timeout_ms = connect_timeout_ms, ls->timeout_ms = timeout_ms;
    ls->capacity = capacity, ls->done = done, ls->arg = arg;
    pthread_mutex_init(&ls->mu, NULL);
    units_cond_init(&ls->cv);
    int rv;
    if (url->nseeds > 0) {
        rv = make_cluster_lanes(ls, url);
    } else {
        lane *ln;
        rv = lane_create(&ln, url, connect_timeout_ms, timeout_ms, capacity, done, arg);
        if (rv == 0) {
            atomic_store(&ls->lane[0], ln);
            atomic_store(&ls->n, 1);
        }
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
    if (ls->has_thread) {
        pthread_mutex_lock(&ls->mu);
        ls->stopping = 1;
        pthread_cond_signal(&ls->cv);
        pthread_mutex_unlock(&ls->mu);
        pthread_join(ls->thread, NULL);
    }
    for (size_t i = 0; i < atomic_load(&ls->n); i++)
        lane_destroy(atomic_load(&ls->lane[i]));
    l2cluster_destroy(ls->cl);
    free(ls->owner);
    pthread_cond_destroy(&ls->cv);
    pthread_mutex_destroy(&ls->mu);
    free(ls);
}

lane *lanes_for(lanes *ls, const l2_key *k)
{
    if (ls == NULL || atomic_load_explicit(&ls->n, memory_order_acquire) == 0) {
        lanes_poke(ls); /* a cluster that gave no map yet */
        return NULL;
    }
    if (ls->owner == NULL) {
        lane *ln = atomic_load(&ls->lane[0]);
        return lane_up(ln) ? ln : NULL;
    }
    if (!k->known) /* the version is assumed: only while it is known and serving */
        return NULL;
    char tag[KS_TAG_LEN];
    ks_tag(tag, k->ns, k->nslen, k->key, k->klen);
    int i = atomic_load_explicit(&ls->owner[ks_slot(tag, sizeof tag)], memory_order_relaxed);
    lane *ln = i >= 0 ? atomic_load_explicit(&ls->lane[i], memory_order_acquire) : NULL;
    if (ln != NULL && lane_up(ln))
        return ln;
    lanes_poke(ls); /* the slot's master may have changed */
    return NULL;
}

int lanes_up(lanes *ls)
{
    size_t n = ls != NULL ? atomic_load(&ls->n) : 0;
    int up = n > 0;
    for (size_t i = 0; up && i < n; i++)
        up = (ls->owner != NULL && !atomic_load(&ls->used[i])) ||
             lane_up(atomic_load(&ls->lane[i]));
    return up;
}

uint64_t lanes_reads(lanes *ls)
{
    uint64_t reads = 0;
    for (size_t i = 0; ls != NULL && i < atomic_load(&ls->n); i++)
        reads += lane_reads(atomic_load(&ls->lane[i]));
    return reads;
}

int lanes_sharded(const lanes *ls)
{
    return ls != NULL && ls->owner != NULL && atomic_load(&ls->n) > 0;
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
