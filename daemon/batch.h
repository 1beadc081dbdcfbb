/* batch: the MGet and MSet methods; see batch.c. */
#ifndef NC_BATCH_H
#define NC_BATCH_H

#include "service.h"

/* MGet answers at once when L1 holds every key, else hands the misses to a
 * worker; MSet checks its entries and hands them to a worker. The call is
 * answered exactly once. */
void batch_handle_mget(service *svc, call *c);
void batch_handle_mset(service *svc, call *c);

#endif
