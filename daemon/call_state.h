/* call_state: what the service keeps on a call between the server thread,
 * the workers, the read lane and the waits table, typed. The server embeds
 * one in every call, zeroes it when a request arrives and never reads it;
 * call_state_of() and call_of_state() go between the two. */
#ifndef NC_CALL_STATE_H
#define NC_CALL_STATE_H

#include "flight.h"
#include "l1.h"

typedef struct call_state {
    l1_ticket ticket;   /* Get: taken before Redis is read; its fill keeps it */
    flight_link flight; /* Get: the single flight it leads or joined */
    int waited;         /* Get with a lease: it already waited for another's fill */
    struct mget *mget;  /* MGet: its keys, owned by batch.c until answered */
} call_state;

#endif
