/* answer: what a Get makes of what Redis holds for a key, decoded once for
 * every path that reads it (the Get and MGet scripts' callers in l2.c, and
 * the read lane). Redis holds the value with its PTTL, and two marks
 * (keyspace.h): `swr`, the time the value stops being fresh under
 * stale-while-revalidate, and `neg`, "known absent". A value past its swr
 * time is stale and keeps its PTTL; one before it has the time left until
 * then as its TTL. With no value, a neg mark makes the miss negative, with
 * the mark's PTTL. Pure. */
#ifndef NC_ANSWER_H
#define NC_ANSWER_H

#include <stdint.h>

#include "l2.h"

/* What Redis answered for one key, as read. */
typedef struct answer_raw {
    int has_value;
    int64_t pttl_ms;     /* PTTL of the data key (after any slide) */
    int has_fresh;       /* the swr mark exists */
    int64_t fresh_until; /* its value: ms since the epoch, Redis's clock */
    int64_t now_ms;      /* Redis's TIME, when has_fresh */
    int negative;        /* no value, and the neg mark exists */
    int64_t neg_pttl_ms; /* the neg mark's PTTL */
} answer_raw;

/* Sets v->pttl_ms, v->stale and v->negative from raw (nothing else of v).
 * Returns L2_OK when there is a value, else L2_NIL. */
l2_status answer_decode(const answer_raw *raw, l2_value *v);

struct redisReply;

/* An integer reply element, or a numeric string one; -1 when neither. */
int64_t answer_int(const struct redisReply *r);

/* The GET script's reply (l2.c): {version, value, pttl, lease, swr mark,
 * now, neg (0/1), neg pttl}. Fills v's version, lease, TTL and marks, and
 * on L2_OK its data, pointing into r (r stays the caller's). Returns L2_OK,
 * L2_NIL, or L2_EREPLY when r is not of that shape. */
l2_status answer_get_script(const struct redisReply *r, l2_value *v);

/* Item i of the MGET script's reply r, which has 2 + 4 * n elements
 * ({version, now} then {value, pttl, swr mark, neg} per key): fills v
 * (zeroed first; its version left 0, data pointing into r). Returns L2_OK
 * or L2_NIL. */
l2_status answer_mget_item(const struct redisReply *r, size_t i, l2_value *v);

#endif
