/* pending: invalidations the daemon did not get (rule R2 of the client
 * rules, docs/protocol.md): Deletes without a lease token and namespace
 * bumps that failed because the daemon could not be reached, kept in
 * order, at most `max`, to be sent before any other request once it can.
 * When one more does not fit, its namespace joins a set of namespaces to
 * bump instead (sent first, before the kept entries). Thread-safe (one
 * mutex, held through a flush so that nothing overtakes it). Private to
 * the client library. */
#ifndef NC_PENDING_H
#define NC_PENDING_H

#include <stdatomic.h>
#include <stddef.h>

#include "nearcache.h"

#define PENDING_DEFAULT_MAX 1000

typedef struct pending pending;

/* Sends one invalidation: a bump of ns (key.data NULL) or a Delete of
 * (ns, key). Returns NC_OK, or an nc_err (the flush stops, keeping it). */
typedef int (*pending_send_fn)(void *arg, nc_bytes ns, nc_bytes key);

/* Makes an empty list of at most max entries (0: PENDING_DEFAULT_MAX).
 * Returns 0 and hands it to *out (the caller owns it; free with
 * pending_destroy()), or ENOMEM. */
int pending_create(pending **out, size_t max);

/* Frees the list and what it holds. Accepts NULL. */
void pending_destroy(pending *p);

/* Keeps a Delete of (ns, key), or with key.data NULL a bump of ns.
 * Returns NC_OK (kept, or folded into a namespace to bump) or NC_ENOMEM. */
int pending_add(pending *p, nc_bytes ns, nc_bytes key);

/* How many invalidations wait (bumps of overflowed namespaces included);
 * one relaxed load. */
size_t pending_count(pending *p);

/* Sends what waits, in order: the overflowed namespaces' bumps, then the
 * kept entries, each dropped once sent. Stops at the first failure and
 * returns it (what is left stays); NC_OK when all went. Any thread. */
int pending_flush(pending *p, pending_send_fn send, void *arg);

#endif
