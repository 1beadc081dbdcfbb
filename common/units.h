/* Parsing of the human units used in configuration and on command lines:
 * durations ("500ms", "30s", "5m", "1h", "2d"; a bare number is seconds) and
 * sizes ("512", "64KB", "64MB", "1GB"; powers of 1024; a bare number is bytes).
 * Pure functions: no allocation, no I/O. */
#ifndef NC_UNITS_H
#define NC_UNITS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a duration into milliseconds. Returns 0 and sets *out_ms, or -1 when
 * the text is empty, has an unknown suffix or trailing bytes, is negative, or
 * overflows int64. A fractional duration ("1.5s") is accepted. */
int units_parse_duration_ms(const char *text, int64_t *out_ms);

/* Parses a size into bytes. Returns 0 and sets *out, or -1 as above. Suffixes
 * are case-insensitive: B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB. */
int units_parse_size(const char *text, uint64_t *out);

/* Parses the len bytes at s as a whole decimal number of at most max (no
 * sign, no suffix, no blanks). Returns 0 and sets *out, or -1. */
int units_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Monotonic clock in milliseconds, for deadlines and L1 expiry. */
int64_t units_now_ms(void);

/* Initializes a condition variable whose timed waits use the monotonic
 * clock, so that a wall-clock jump cannot stretch or cut them. */
void units_cond_init(pthread_cond_t *cv);

/* Waits on cv, with mu held, for at most ms milliseconds (none if ms <= 0).
 * Returns as pthread_cond_timedwait() does (0 when signalled). */
int units_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

#endif
