/* A free list of (nng context, aio) pairs for libnearcache's calls; see
 * ctxpool.h. */
#include "ctxpool.h"

#include <errno.h>
#include <stdlib.h>

/* The most pairs kept idle: as many as calls ran at once, up to this; a
 * burst of more threads opens and closes the rest per call. */
#define CTXPOOL_MAX_IDLE 64

int ctxpool_init(ctxpool *p, nng_socket sock)
{
    p->sock = sock;
    p->idle = NULL;
    p->nidle = 0;
    p->out = 0;
    int rv = pthread_mutex_init(&p->mu, NULL);
    if (rv != 0)
        return rv;
    if ((rv = pthread_cond_init(&p->returned, NULL)) != 0)
        pthread_mutex_destroy(&p->mu);
    return rv;
}

static void pair_free(ctxpool_pair *pair)
{
    nng_ctx_close(pair->ctx); /* NNG_ECLOSED once the socket is closed: harmless */
    nng_aio_free(pair->aio);
    free(pair);
}

/* Opens a new pair. Returns 0 with *out (owned by the caller), or an nng
 * error. */
static int pair_open(nng_socket sock, ctxpool_pair **out)
{
    ctxpool_pair *pair = malloc(sizeof *pair);
    if (pair == NULL)
        return NNG_ENOMEM;
    int rv = nng_ctx_open(&pair->ctx, sock);
    if (rv != 0) {
        free(pair);
        return rv;
    }
    if ((rv = nng_aio_alloc(&pair->aio, NULL, NULL)) != 0) {
        nng_ctx_close(pair->ctx);
        free(pair);
        return rv;
    }
    pair->next = NULL;
    *out = pair;
    return 0;
}

int ctxpool_take(ctxpool *p, ctxpool_pair **out)
{
    pthread_mutex_lock(&p->mu);
    ctxpool_pair *pair = p->idle;
    if (pair != NULL) {
        p->idle = pair->next;
        p->nidle--;
    }
    p->out++;
    pthread_mutex_unlock(&p->mu);
    if (pair != NULL) {
        *out = pair;
        return 0;
    }
    int rv = pair_open(p->sock, out);
    if (rv != 0)
        ctxpool_put(p, NULL, 0);
    return rv;
}

void ctxpool_put(ctxpool *p, ctxpool_pair *pair, int reusable)
{
    pthread_mutex_lock(&p->mu);
    if (pair != NULL && reusable && p->nidle < CTXPOOL_MAX_IDLE) {
        pair->next = p->idle;
        p->idle = pair;
        p->nidle++;
        pair = NULL;
    }
    if (--p->out == 0)
        pthread_cond_broadcast(&p->returned);
    pthread_mutex_unlock(&p->mu);
    if (pair != NULL)
        pair_free(pair);
}

void ctxpool_fini(ctxpool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->out > 0)
        pthread_cond_wait(&p->returned, &p->mu);
    ctxpool_pair *pair = p->idle;
    p->idle = NULL;
    p->nidle = 0;
    pthread_mutex_unlock(&p->mu);
    while (pair != NULL) {
        ctxpool_pair *next = pair->next;
        pair_free(pair);
        pair = next;
    }
    pthread_cond_destroy(&p->returned);
    pthread_mutex_destroy(&p->mu);
}
