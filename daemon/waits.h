/* waits: Gets parked until another caller fills their key (a lease held
 * elsewhere). A parked call is woken when the key is invalidated or written
 * here (waits_wake), or when its deadline comes; one sweeper thread keeps
 * the deadlines. No polling of Redis: the invalidation is the signal. */
#ifndef NC_WAITS_H
#define NC_WAITS_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

typedef struct waits waits;

/* Called, without the lock, for each call that leaves the table: timed_out
 * is 1 when its deadline came first (or the table is being freed). */
typedef void (*waits_wake_fn)(void *arg, call *c, int timed_out);

/* Starts the sweeper. Returns 0 and hands the table to *out (caller owns it;
 * waits_destroy()), or an errno value. */
int waits_create(waits **out, waits_wake_fn wake, void *arg);

/* Wakes every parked call as timed out, stops the sweeper, frees the
 * table. Accepts NULL. */
void waits_destroy(waits *w);

/* Parks c under `key` until woken or `deadline` (units_now_ms() time).
 * Returns 0, or ENOMEM, or ECANCELED for a NULL table (c is not parked; the
 * caller answers it). waits_wake() and waits_parked() accept NULL too. */
int waits_park(waits *w, const void *key, size_t klen, call *c, int64_t deadline);

/* Wakes every call parked under `key` (all calls when key is NULL). */
void waits_wake(waits *w, const void *key, size_t klen);

/* How many calls are parked now. */
size_t waits_parked(waits *w);

#endif
