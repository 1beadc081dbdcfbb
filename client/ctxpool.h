/* The (nng context, aio) pairs of one libnearcache client: a call takes a
 * pair, runs one request and reply on it and puts it back, so contexts and
 * aios are made once instead of per call. Thread-safe (one mutex). An idle
 * pair has no request outstanding: nng's REQ resets a context when its
 * receive completes, fails or is cancelled, and a new send cancels any old
 * request. Private to the client library. */
#ifndef NC_CTXPOOL_H
#define NC_CTXPOOL_H

#include <nng/nng.h>
#include <pthread.h>
#include <stddef.h>

typedef struct ctxpool_pair {
    nng_ctx ctx;
    nng_aio *aio; /* no callback: the caller waits on it */
    struct ctxpool_pair *next;
} ctxpool_pair;

typedef struct ctxpool {
    nng_socket sock;
    pthread_mutex_t mu;
    pthread_cond_t returned; /* signalled when the last pair out comes back */
    ctxpool_pair *idle;
    size_t nidle;
    size_t out; /* pairs taken and not yet put back */
} ctxpool;

/* Sets up an empty pool of pairs on `sock` (the caller keeps owning the
 * socket). Returns 0, or an errno value. */
int ctxpool_init(ctxpool *p, nng_socket sock);

/* Takes an idle pair, or opens a new one when none is idle; takes the
 * pool's lock. Returns 0 with *out (the pool owns it; give it back with
 * ctxpool_put()), or an nng error: NNG_ECLOSED when the socket is closed,
 * NNG_ENOMEM. */
int ctxpool_take(ctxpool *p, ctxpool_pair **out);

/* Gives a pair back; takes the pool's lock. With `reusable` 0 (an error
 * that may leave its context in a state we do not know) the pair is closed
 * instead of kept; so are pairs beyond the most the pool keeps idle. */
void ctxpool_put(ctxpool *p, ctxpool_pair *pair, int reusable);

/* Waits until every pair taken has been put back, then closes and frees
 * them all. Call it after closing the socket, which makes the calls still
 * running finish at once. */
void ctxpool_fini(ctxpool *p);

#endif
