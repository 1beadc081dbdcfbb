/* Local single flight; see flight.h. A flight is a hash entry keyed by the
 * L1 key, or detached once a newer flight of its key took its place; its
 * leader holds it through call_scratch()[1], and the calls that join it are
 * chained through their own call_scratch()[1]. */
#include "flight.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

typedef struct flight {
    UT_hash_handle hh;
    call *joined, *last; /* chained through NEXT() */
    l1_ticket ticket;    /* the leader's: joiners must hold the same */
    int in_table;
    char key[];
} flight;

struct flights {
    pthread_mutex_t mu;
    flight *table; /* guarded by mu */
};

#define NEXT(c)   (call_scratch(c)[1])
#define FLIGHT(c) (call_scratch(c)[1]) /* of a leader */

int flights_create(flights **out)
{
    flights *f = calloc(1, sizeof *f);
    if (f == NULL)
        return ENOMEM;
    pthread_mutex_init(&f->mu, NULL);
    *out = f;
    return 0;
}

void flights_free(flights *f)
{
    if (f == NULL)
        return;
    flight *fl, *tmp;
    HASH_ITER(hh, f->table, fl, tmp) /* none should be left; leaders own detached ones */
    {
        HASH_DEL(f->table, fl);
        free(fl);
    }
    pthread_mutex_destroy(&f->mu);
    free(f);
}

int flight_join(flights *f, const void *key, size_t klen, l1_ticket ticket, call *c)
{
    NEXT(c) = 0;
    pthread_mutex_lock(&f->mu);
    flight *fl;
    HASH_FIND(hh, f->table, key, (unsigned)klen, fl);
    if (fl != NULL && fl->ticket == ticket) {
        if (fl->last != NULL)
            NEXT(fl->last) = (uint64_t)(uintptr_t)c;
        else
            fl->joined = c;
        fl->last = c;
        pthread_mutex_unlock(&f->mu);
        return 1;
    }
    if (fl != NULL) { /* began before the key changed: no one may join it now */
        HASH_DEL(f->table, fl);
        fl->in_table = 0;
    }
    if ((fl = malloc(sizeof *fl + klen)) != NULL) {
        memcpy(fl->key, key, klen);
        fl->joined = fl->last = NULL;
        fl->ticket = ticket;
        HASH_ADD_KEYPTR(hh, f->table, fl->key, (unsigned)klen, fl);
        fl->in_table = fl->hh.tbl != NULL;
    }
    FLIGHT(c) = (uint64_t)(uintptr_t)fl; /* NULL: reads alone */
    pthread_mutex_unlock(&f->mu);
    return 0;
}

call *flight_land(flights *f, call *leader)
{
    flight *fl = (flight *)(uintptr_t)FLIGHT(leader);
    if (fl == NULL)
        return NULL;
    pthread_mutex_lock(&f->mu);
    if (fl->in_table)
        HASH_DEL(f->table, fl);
    call *joined = fl->joined;
    pthread_mutex_unlock(&f->mu);
    free(fl);
    FLIGHT(leader) = 0;
    return joined;
}

call *flight_next(call *c)
{
    return (call *)(uintptr_t)NEXT(c);
}
