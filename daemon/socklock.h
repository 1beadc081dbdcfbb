/* socklock: the lock file that makes an ipc:// socket path one daemon's
 * (see socklock.c). */
#ifndef NC_SOCKLOCK_H
#define NC_SOCKLOCK_H

#include <stddef.h>

typedef struct socklock {
    int fd; /* PATH.lock, held; -1: none */
    char path[600];
} socklock;

/* Takes PATH.lock of the ipc:// socket of url (ipc://PATH), waiting up to
 * 1 s for a holder that is going away; then writes this pid in it and
 * removes the stale socket file. Returns 0 with k holding it, or an nng
 * error with the reason (the live holder's pid, or the file that cannot be
 * made) in err. */
int socklock_take(socklock *k, const char *url, char *err, size_t errlen);

/* Lets go of the lock file, removing it first (a daemon waiting on the
 * removed file sees that and takes a new one). Accepts one not taken. */
void socklock_drop(socklock *k);

#endif
