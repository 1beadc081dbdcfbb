/* admin: the Stats and Ping methods; see admin.c. */
#ifndef NC_ADMIN_H
#define NC_ADMIN_H

#include "service.h"

/* Each answers the call at once. */
void admin_handle_stats(service *svc, call *c);
void admin_handle_ping(service *svc, call *c);

#endif
