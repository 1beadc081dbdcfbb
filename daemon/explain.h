/* explain: start-up failures told to the operator who reads them, with
 * their cause and their fix, where the system's own words ("Entry not
 * found", "Permission denied") would leave them guessing. Pure but for
 * stat() and the user and group databases. */
#ifndef NC_EXPLAIN_H
#define NC_EXPLAIN_H

#include <stddef.h>

/* Why the daemon cannot listen on `url` (nng error rv), and what to do,
 * into buf (len bytes): "cannot listen on URL: CAUSE; FIX". */
void explain_listen(const char *url, int rv, char *buf, size_t len);

/* Why the file `path` (the setting `setting`, e.g. near_ring) cannot be
 * created (errno e), and what to do, into buf: "cannot create WHAT PATH
 * (SETTING): CAUSE; FIX". `alt` is a further way out (may be NULL). */
void explain_create(const char *what, const char *path, const char *setting, int e,
                    const char *alt, char *buf, size_t len);

#endif
