/* Undelivered invalidations; see pending.h. The kept entries are a FIFO
 * (a singly linked list with a tail); the overflowed namespaces a list of
 * distinct names, as many as the application has namespaces. */
#include "pending.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One invalidation: a bump of ns (klen 0, bump 1) or a Delete of (ns, key);
 * the bytes follow the struct, ns then key. */
struct entry {
    struct entry *next;
    int bump;
    size_t nslen, klen;
    unsigned char bytes[];
};

struct pending {
    pthread_mutex_t mu;
    size_t max, n;
    struct entry *head, *tail; /* kept entries, oldest first */
    struct entry *bumps;       /* namespaces to bump for entries that did not fit */
    atomic_size_t count;       /* n + bumps, for pending_count() */
};

int pending_create(pending **out, size_t max)
{
    pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    p->max = max > 0 ? max : PENDING_DEFAULT_MAX;
    *out = p;
    return 0;
}

static void free_list(struct entry *e)
{
    while (e != NULL) {
        struct entry *next = e->next;
        free(e);
        e = next;
    }
}

void pending_destroy(pending *p)
{
    if (p == NULL)
        return;
    free_list(p->head);
    free_list(p->bumps);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static struct entry *entry_new(nc_bytes ns, nc_bytes key, int bump)
{
    size_t klen = bump ? 0 : key.len;
    struct entry *e = malloc(sizeof *e + ns.len + klen);
    if (e == NULL)
        return NULL;
    *e = (struct entry){.bump = bump, .nslen = ns.len, .klen = klen};
    memcpy(e->bytes, ns.data, ns.len);
    if (klen > 0)
        memcpy(e->bytes + ns.len, key.data, klen);
    return e;
}

static size_t total_locked(const pending *p)
{
    size_t n = p->n;
    for (const struct entry *b = p->bumps; b != NULL; b = b->next)
        n++;
    return n;
}

/* Adds ns to the namespaces to bump, once. Called with the lock held. */
static int add_bump_locked(pending *p, nc_bytes ns)
{
    for (struct entry *b = p->bumps; b != NULL; b = b->next)
        if (b->nslen == ns.len && memcmp(b->bytes, ns.data, ns.len) == 0)
            return NC_OK;
    struct entry *e = entry_new(ns, ns, 1);
    if (e == NULL)
        return NC_ENOMEM;
    e->next = p->bumps;
    p->bumps = e;
    return NC_OK;
}

int pending_add(pending *p, nc_bytes ns, nc_bytes key)
{
    int bump = key.data == NULL;
    int rv = NC_OK;
    pthread_mutex_lock(&p->mu);
    if (p->n >= p->max) {
        rv = add_bump_locked(p, ns);
    } else {
        struct entry *e = entry_new(ns, key, bump);
        if (e == NULL) {
            rv = NC_ENOMEM;
        } else {
            if (p->tail != NULL)
                p->tail->next = e;
            else
                p->head = e;
            p->tail = e;
            p->n++;
        }
    }
    atomic_store_explicit(&p->count, total_locked(p), memory_order_release);
    pthread_mutex_unlock(&p->mu);
    return rv;
}

size_t pending_count(pending *p)
{
    return atomic_load_explicit(&p->count, memory_order_acquire);
}

static int send_entry(const struct entry *e, pending_send_fn send, void *arg)
{
    nc_bytes ns = {e->bytes, e->nslen};
    nc_bytes key = {e->bump ? NULL : e->bytes + e->nslen, e->klen};
    return send(arg, ns, key);
}

int pending_flush(pending *p, pending_send_fn send, void *arg)
{
    int rv = NC_OK;
    pthread_mutex_lock(&p->mu);
    while (rv == NC_OK && p->bumps != NULL) {
        if ((rv = send_entry(p->bumps, send, arg)) == NC_OK) {
            struct entry *e = p->bumps;
            p->bumps = e->next;
            free(e);
        }
    }
    while (rv == NC_OK && p->head != NULL) {
        if ((rv = send_entry(p->head, send, arg)) == NC_OK) {
            struct entry *e = p->head;
            if ((p->head = e->next) == NULL)
                p->tail = NULL;
            p->n--;
            free(e);
        }
    }
    atomic_store_explicit(&p->count, total_locked(p), memory_order_release);
    pthread_mutex_unlock(&p->mu);
    return rv;
}
