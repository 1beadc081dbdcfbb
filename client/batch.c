/* libnearcache's batch calls, MGet and MSet: one request for many keys of
 * one namespace; with a near tier, MGet asks only for the keys it lacks. */
#include <stdlib.h>

#include "client.h"

/* An MGet from the daemon; with `ttl` (may be NULL), each found or
 * negative item's time left (0: the daemon did not say). */
static int mget_remote(nc_client *c, nc_bytes ns, const nc_bytes *keys, size_t n, nc_item **items,
                       uint64_t *ttl, int timeout_ms)
{
    ProtobufCBinaryData *ks = calloc(n ? n : 1, sizeof *ks);
    if (ks == NULL)
        return client_fail(NC_ENOMEM, 0, "out of memory");
    for (size_t i = 0; i < n; i++)
        ks[i] = client_bin(keys[i]);
    Nearcache__V1__MGetRequest m = NEARCACHE__V1__MGET_REQUEST__INIT;
    m.ns = client_bin(ns);
    m.n_keys = n;
    m.keys = ks;
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(MGET);
    req.mget = &m;
    pb_reply *r;
    int rv = client_call_expect(c, &req, timeout_ms, RESULT(MGET), &r);
    free(ks);
    if (rv != NC_OK)
        return rv;
    if (r->mget->n_items != n) {
        codec_reply_free(r);
        return client_fail(NC_EPROTO, 0, "MGet answered %zu items for %zu keys", r->mget->n_items,
                           n);
    }
    nc_item *out = calloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; out != NULL && i < n; i++) {
        const Nearcache__V1__MGetItem *it = r->mget->items[i];
        pb_get_reply *g = it->get;
        out[i].found = it->found;
        if (g == NULL)
            continue;
        out[i].negative = g->negative;
        out[i].stale = g->stale;
        out[i].source = (nc_source)g->source;
        if (ttl != NULL)
            ttl[i] = g->ttl_ms;
        if (!it->found)
            continue;
        out[i].len = g->value.len;
        if ((out[i].value = codec_reply_take_bytes(&g->value)) == NULL) {
            nc_items_free(out, n);
            out = NULL;
            break;
        }
    }
    codec_reply_free(r);
    if (out == NULL)
        return client_fail(NC_ENOMEM, 0, "out of memory");
    *items = out;
    return NC_OK;
}

/* With a near tier: the keys it holds are answered from it (a negative
 * entry as the daemon's negative item: not found, negative), the others in
 * one MGet, whose items fill it as near_keep_of() says. */
int nc_mget(nc_client *c, nc_bytes ns, const nc_bytes *keys, size_t n, nc_item **items,
            int timeout_ms)
{
    if (c->near == NULL)
        return mget_remote(c, ns, keys, n, items, NULL, timeout_ms);
    nc_item *out = calloc(n ? n : 1, sizeof *out);
    nc_bytes *missing = calloc(n ? n : 1, sizeof *missing);
    size_t *where = calloc(n ? n : 1, sizeof *where);
    uint64_t *ttl = calloc(n ? n : 1, sizeof *ttl);
    size_t m = 0;
    int rv = NC_OK;
    if (out == NULL || missing == NULL || where == NULL || ttl == NULL) {
        rv = client_fail(NC_ENOMEM, 0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t left;
        int negative;
        if (near_get(c->near, ns, keys[i], &out[i].value, &out[i].len, &left, &negative))
            out[i].found = !negative, out[i].negative = negative, out[i].source = NC_SOURCE_NEAR;
        else
            missing[m] = keys[i], where[m++] = i;
    }
    if (m > 0) {
        near_ticket t = near_take_ticket(c->near);
        nc_item *got;
        if ((rv = mget_remote(c, ns, missing, m, &got, ttl, timeout_ms)) != NC_OK)
            goto done;
        for (size_t j = 0; j < m; j++) {
            near_keep k = near_keep_of(got[j].found, got[j].negative, got[j].stale, 0, ttl[j]);
            if (k == NEAR_KEEP_VALUE)
                near_fill(c->near, &t, ns, missing[j], got[j].value, got[j].len, ttl[j]);
            else if (k == NEAR_KEEP_NEGATIVE)
                near_fill_negative(c->near, &t, ns, missing[j], ttl[j]);
            out[where[j]] = got[j];
        }
        free(got); /* its values moved to out */
    }
done:
    if (rv != NC_OK) {
        nc_items_free(out, n);
        out = NULL;
    }
    *items = out;
    free(missing);
    free(where);
    free(ttl);
    return rv;
}

void nc_items_free(nc_item *items, size_t n)
{
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(items[i].value);
    free(items);
}

int nc_mset(nc_client *c, nc_bytes ns, const nc_entry *entries, size_t n, int timeout_ms)
{
    return nc_mset_stored(c, ns, entries, n, NULL, timeout_ms);
}

/* Fills stored[] (n, may be NULL) from an MSet's answer r (NULL: none). */
static void mset_stored(const pb_reply *r, int rv, size_t n, int *stored)
{
    if (stored == NULL)
        return;
    /* refused as a whole before any write, or never sent */
    int refused = rv == NC_EINVAL || rv == NC_ETOOBIG || rv == NC_EPERM ||
                  rv == NC_EUNIMPLEMENTED || rv == NC_ECONNECT || rv == NC_ENOMEM;
    int all = rv == NC_OK || (r != NULL && r->mset != NULL) ? NC_STORED
              : refused                                     ? NC_NOT_STORED
                                                            : NC_STORED_UNKNOWN;
    for (size_t i = 0; i < n; i++)
        stored[i] = all;
    if (rv == NC_OK || r == NULL || r->mset == NULL)
        return;
    for (size_t f = 0; f < r->mset->n_failed; f++) {
        const Nearcache__V1__MSetFailure *fail = r->mset->failed[f];
        for (size_t j = 0; j < fail->n_index; j++)
            if (fail->index[j] < n)
                stored[fail->index[j]] = fail->maybe_stored ? NC_STORED_UNKNOWN : NC_NOT_STORED;
    }
}

int nc_mset_stored(nc_client *c, nc_bytes ns, const nc_entry *entries, size_t n, int *stored,
                   int timeout_ms)
{
    Nearcache__V1__MSetEntry *es = calloc(n ? n : 1, sizeof *es);
    Nearcache__V1__MSetEntry **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (es == NULL || ptrs == NULL) {
        free(es);
        free(ptrs);
        return client_fail(NC_ENOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (c->near != NULL)
            near_drop(c->near, ns, entries[i].key);
        nearcache__v1__mset_entry__init(&es[i]);
        es[i].key = client_bin(entries[i].key);
        es[i].value = client_bin(entries[i].value);
        es[i].ttl_ms = entries[i].ttl_ms;
        ptrs[i] = &es[i];
    }
    Nearcache__V1__MSetRequest m = NEARCACHE__V1__MSET_REQUEST__INIT;
    m.ns = client_bin(ns);
    m.n_entries = n;
    m.entries = ptrs;
    pb_request req = NEARCACHE__V1__REQUEST__INIT;
    req.method_case = METHOD(MSET);
    req.mset = &m;
    pb_reply *r;
    int rv = client_call_result(c, &req, timeout_ms, RESULT(MSET), 1, &r);
    free(es);
    free(ptrs);
    mset_stored(r, rv, n, stored);
    codec_reply_free(r);
    return rv;
}
