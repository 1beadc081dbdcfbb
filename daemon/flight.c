/* Local single flight; see flight.h. A flight is a hash entry keyed by the
 * L1 key, or detached once a newer flight of its key took its place; its
 * leader holds it through its link's `fl`, and the links that join it are
 * chained through their `next`. */
#include "flight.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

struct flight {
    UT_hash_handle hh;
    flight_link *joined, *last; /* chained through next */
    l1_ticket ticket;           /* the leader's: joiners must hold the same */
    int in_table;
    char key[];
};

struct flights {
    pthread_mutex_t mu;
    flight *table; /* guarded by mu */
};

int flights_create(flights **out)
{
    flights *f = calloc(1, sizeof *f);
    if (f == NULL)
        return ENOMEM;
    pthread_mutex_init(&f->mu, NULL);
    *out = f;
    return 0;
}

void flights_destroy(flights *f)
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

int flight_join(flights *f, const void *key, size_t klen, l1_ticket ticket, flight_link *me)
{
    me->next = NULL;
    me->fl = NULL;
    pthread_mutex_lock(&f->mu);
    flight *fl;
    HASH_FIND(hh, f->table, key, (unsigned)klen, fl);
    if (fl != NULL && fl->ticket == ticket) {
        if (fl->last != NULL)
            fl->last->next = me;
        else
            fl->joined = me;
        fl->last = me;
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
    me->fl = fl; /* NULL: reads alone */
    pthread_mutex_unlock(&f->mu);
    return 0;
}

flight_link *flight_land(flights *f, flight_link *leader)
{
    flight *fl = leader->fl;
    if (fl == NULL)
        return NULL;
    pthread_mutex_lock(&f->mu);
    if (fl->in_table)
        HASH_DEL(f->table, fl);
    flight_link *joined = fl->joined;
    pthread_mutex_unlock(&f->mu);
    free(fl);
    leader->fl = NULL;
    return joined;
}

flight_link *flight_next(const flight_link *l)
{
    return l->next;
}
