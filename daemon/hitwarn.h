/* hitwarn: finds the namespaces whose Get hit ratio stayed below a
 * threshold over an interval, from two readings of the namespaces' rows
 * (nstop) taken an interval apart. Namespaces with fewer Gets than a
 * minimum in the interval are left alone, so idle ones never warn. Pure:
 * it keeps the last reading and takes no clock. */
#ifndef NC_HITWARN_H
#define NC_HITWARN_H

#include <stddef.h>
#include <stdint.h>

#include "nstop.h"

typedef struct hitwarn hitwarn;

/* Called for each namespace that warns: its row now, its Gets and hits in
 * the interval. row is valid during the call only. */
typedef void (*hitwarn_fn)(void *arg, const nstop_row *row, uint64_t gets, uint64_t hits);

/* Makes a checker for up to max rows a reading. Returns 0 and hands it to
 * *out (the caller owns it; free with hitwarn_destroy()), or ENOMEM. */
int hitwarn_create(hitwarn **out, size_t max);

void hitwarn_destroy(hitwarn *w);

/* Compares rows[0..n) with the reading of the previous call and calls
 * warn() for each namespace with at least min_gets Gets since then whose
 * hit ratio was below warn_pct percent; then keeps rows as the previous
 * reading. A namespace absent from the previous reading, or whose counts
 * went down (it lost its row and took one again), is only remembered.
 * Returns how many warned. */
size_t hitwarn_check(hitwarn *w, const nstop_row *rows, size_t n, uint64_t min_gets,
                     unsigned warn_pct, hitwarn_fn warn, void *arg);

/* The row's namespace for a log line, into buf (size bytes): bytes that are
 * not printable ASCII, '"' and '\\' as \xNN, "..." after a cut name.
 * Returns buf. */
char *hitwarn_name(const nstop_row *row, char *buf, size_t size);

#endif
