/* hitwarn: the hit-ratio warning. Finds the namespaces whose Get hit ratio
 * stayed below a threshold over an interval, from two readings of the
 * namespaces' rows (nstop) taken an interval apart. Namespaces with fewer
 * Gets than a minimum in the interval are left alone, so idle ones never
 * warn. hitwarn_check() is pure (it keeps the last reading and takes no
 * clock); hitwarn_log() reads the rows and logs the warnings the settings
 * ask for. */
#ifndef NC_HITWARN_H
#define NC_HITWARN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
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

/* Reads the rows of `top` and logs a warning for each namespace whose hit
 * ratio since the previous call was below cfg's hit_ratio_warn (0: none
 * warns) over at least hit_ratio_min_gets Gets; the message calls that
 * interval_ms. Does nothing when w is NULL. */
void hitwarn_log(hitwarn *w, nstop *top, const config *cfg, int64_t interval_ms);

/* The row's namespace for a log line, into buf (size bytes): bytes that are
 * not printable ASCII, '"' and '\\' as \xNN, "..." after a cut name.
 * Returns buf. */
char *hitwarn_name(const nstop_row *row, char *buf, size_t size);

#endif
