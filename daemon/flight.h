/* flight: local single flight. Concurrent Gets that miss L1 for the same key
 * share one Redis read: the first becomes the flight's leader and reads;
 * the others join and are answered with the leader's result when it lands.
 * A Get may join only a read that began after the key's last invalidation
 * or write here: each flight carries its leader's L1 ticket, and a joiner
 * whose ticket differs starts a new flight (the old one is detached and
 * lands by itself). Thread-safe (one mutex; flights are short). */
#ifndef NC_FLIGHT_H
#define NC_FLIGHT_H

#include <stddef.h>

#include "l1.h"
#include "server.h"

typedef struct flights flights;

/* Returns 0 and hands a table to *out (caller owns it; flights_free()), or
 * ENOMEM. */
int flights_create(flights **out);

/* Frees the table. Every flight must have landed. Accepts NULL. */
void flights_free(flights *f);

/* If a flight of `key` with the same `ticket` (l1_reserve() now) is in the
 * air, queues c on it and returns 1: c will be in the list that flight_land()
 * returns to the leader. Otherwise starts one led by c and returns 0 (also
 * when out of memory: c then reads alone). */
int flight_join(flights *f, const void *key, size_t klen, l1_ticket ticket, call *c);

/* Ends the flight led by `leader`: returns the calls that joined it (walk
 * them with flight_next()), which the caller must now answer. NULL when
 * none did. */
call *flight_land(flights *f, call *leader);

/* The next call in a landed flight's list, or NULL. */
call *flight_next(call *c);

#endif
