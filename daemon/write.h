/* write: the Set, Delete and BumpNamespace methods; see write.c. */
#ifndef NC_WRITE_H
#define NC_WRITE_H

#include "service.h"

/* Each checks its request and hands it to a worker; the call is answered
 * now (refused) or by the worker, exactly once. */
void write_handle_set(service *svc, call *c);
void write_handle_delete(service *svc, call *c);
void write_handle_bump(service *svc, call *c);

#endif
