/* Parsing of the human units used in configuration and on command lines:
 * durations ("500ms", "30s", "5m", "1h", "2d"; a bare number is seconds) and
 * sizes ("512", "64KB", "64MB", "1GB"; powers of 1024; a bare number is bytes).
 * Pure functions: no allocation, no I/O. */
#ifndef NC_UNITS_H
#define NC_UNITS_H

#include <stdint.h>

/* Parses a duration into milliseconds. Returns 0 and sets *out_ms, or -1 when
 * the text is empty, has an unknown suffix or trailing bytes, is negative, or
 * overflows int64. A fractional duration ("1.5s") is accepted. */
int units_parse_duration_ms(const char *text, int64_t *out_ms);

/* Parses a size into bytes. Returns 0 and sets *out, or -1 as above. Suffixes
 * are case-insensitive: B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB. */
int units_parse_size(const char *text, uint64_t *out);

/* Monotonic clock in milliseconds, for deadlines and L1 expiry. */
int64_t units_now_ms(void);

#endif
