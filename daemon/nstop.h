/* nstop: per-namespace hits and misses of Gets with bounded cardinality:
 * the busiest namespaces keep a row each, everything else adds up in
 * `other`. It is the Space-Saving algorithm (Metwally et al., 2005) over
 * a table of n rows: a namespace not in the table takes the row with the
 * least traffic, inheriting that traffic as its rank (so a newcomer must
 * outdo it to stay), while the row's own hits and misses move to `other`;
 * every count stays exact in sum (rows + other = all Gets counted). The
 * near tiers' lookups that clients report (nearrep.h) are counted beside
 * the Gets, in the same rows, and rank with them. */
#ifndef NC_NSTOP_H
#define NC_NSTOP_H

#include <stddef.h>
#include <stdint.h>

#define NSTOP_NAME_MAX 128 /* bytes of a namespace kept for display */

typedef struct nstop nstop;

/* One row of a reading. name holds the namespace's first len bytes (at
 * most NSTOP_NAME_MAX; longer ones are cut, truncated = 1). */
typedef struct nstop_row {
    char name[NSTOP_NAME_MAX];
    size_t len;
    int truncated;
    uint64_t hits, misses;
    uint64_t near_hits, near_misses; /* reported by the clients' near tiers */
    uint64_t denied;                 /* requests refused by the acl rules */
} nstop_row;

/* Makes a table of n rows (n >= 1). Returns 0 and hands it to *out (the
 * caller owns it; free with nstop_destroy()), or ENOMEM. */
int nstop_create(nstop **out, size_t n);

/* Frees the table. Accepts NULL. */
void nstop_destroy(nstop *t);

/* Counts one Get of namespace ns (len bytes): a hit or a miss. A namespace
 * that has a row costs a hash, a probe and a relaxed increment; one that
 * has none tries the table's lock once (never waits: when it is busy, the
 * Get counts in `other`). Any thread. A Get that races with its row being
 * taken over may be counted under the newcomer. */
void nstop_count(nstop *t, const void *ns, size_t len, int hit);

/* Adds a client's near-tier lookups of namespace ns (len bytes): hits and
 * misses since its last report. Takes the table's lock (reports are rare),
 * so it always finds or takes a row. Any thread. */
void nstop_count_near(nstop *t, const void *ns, size_t len, uint64_t hits, uint64_t misses);

/* Counts one request of namespace ns (len bytes) that the acl rules
 * refused. Takes the table's lock (refusals are rare), like
 * nstop_count_near(); a refusal ranks as one lookup. Any thread. */
void nstop_count_denied(nstop *t, const void *ns, size_t len);

/* Reads the rows in use into rows[0..n) (n as made), busiest first, and
 * the rest into *other. Returns how many rows it filled. Any thread. */
size_t nstop_read(nstop *t, nstop_row *rows, nstop_row *other);

/* The n the table was made with. */
size_t nstop_size(const nstop *t);

#endif
