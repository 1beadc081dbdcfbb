/* flight: local single flight. Concurrent Gets that miss L1 for the same key
 * share one Redis read: the first becomes the flight's leader and reads;
 * the others join and are answered with the leader's result when it lands.
 * A Get may join only a read that began after the key's last invalidation
 * or write here: each flight carries its leader's L1 ticket, and a joiner
 * whose ticket differs starts a new flight (the old one is detached and
 * lands by itself). Callers are reached through a flight_link each embeds
 * (in its call_state); the module knows nothing else of them. Thread-safe
 * (one mutex; flights are short). */
#ifndef NC_FLIGHT_H
#define NC_FLIGHT_H

#include <stddef.h>

#include "l1.h"

typedef struct flights flights;
typedef struct flight flight;

/* A caller's place in a flight, embedded in the caller's own state: a
 * leader holds its flight in `fl`, a joiner is chained through `next`.
 * Owned by the caller; the table only links them while the flight is up. */
typedef struct flight_link {
    struct flight_link *next; /* of a joiner: the next that joined */
    flight *fl;               /* of a leader: its flight, or NULL */
} flight_link;

/* Returns 0 and hands a table to *out (caller owns it; flights_destroy()), or
 * ENOMEM. */
int flights_create(flights **out);

/* Frees the table. Every flight must have landed. Accepts NULL. */
void flights_destroy(flights *f);

/* If a flight of `key` with the same `ticket` (l1_reserve() now) is in the
 * air, queues `me` on it and returns 1: me will be in the list that
 * flight_land() returns to the leader. Otherwise starts one led by `me` and
 * returns 0 (also when out of memory: the caller then reads alone). `me`
 * stays owned by the caller and must outlive the flight. */
int flight_join(flights *f, const void *key, size_t klen, l1_ticket ticket, flight_link *me);

/* Ends the flight led by `leader` (nothing for one that led none): returns
 * the links that joined it (walk them with flight_next()), whose callers
 * the caller must now answer. NULL when none did. */
flight_link *flight_land(flights *f, flight_link *leader);

/* The next link in a landed flight's list, or NULL. */
flight_link *flight_next(const flight_link *l);

#endif
