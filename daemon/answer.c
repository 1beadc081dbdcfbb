/* The decoder of a Get's answer; see answer.h. */
#include "answer.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

l2_status answer_decode(const answer_raw *raw, l2_value *v)
{
    v->stale = 0;
    v->negative = 0;
    if (raw->has_value) {
        v->pttl_ms = raw->pttl_ms;
        if (raw->has_fresh) { /* stale-while-revalidate */
            if (raw->now_ms >= raw->fresh_until)
                v->stale = 1;
            else if (__builtin_sub_overflow(raw->fresh_until, raw->now_ms, &v->pttl_ms))
                v->pttl_ms = INT64_MAX; /* marks that far apart are not Redis's: no UB */
        }
        return L2_OK;
    }
    if (raw->negative) {
        v->negative = 1;
        v->pttl_ms = raw->neg_pttl_ms;
    } else {
        v->pttl_ms = -2;
    }
    return L2_NIL;
}

int64_t answer_int(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return -1;
}

l2_status answer_get_script(const redisReply *r, l2_value *v)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 8)
        return L2_EREPLY;
    redisReply **e = r->element;
    v->version = (uint64_t)answer_int(e[0]);
    v->lease = (int)answer_int(e[3]);
    answer_raw raw = {.has_value = e[1]->type == REDIS_REPLY_STRING,
                      .pttl_ms = answer_int(e[2]),
                      .has_fresh = e[4]->type == REDIS_REPLY_STRING,
                      .fresh_until = answer_int(e[4]),
                      .now_ms = answer_int(e[5]),
                      .negative = answer_int(e[6]) == 1,
                      .neg_pttl_ms = answer_int(e[7])};
    if (answer_decode(&raw, v) != L2_OK)
        return L2_NIL;
    v->data = e[1]->str;
    v->len = e[1]->len;
    return L2_OK;
}

l2_status answer_mget_item(const redisReply *r, size_t i, l2_value *v)
{
    redisReply **e = r->element + 2 + 4 * i;
    memset(v, 0, sizeof *v);
    /* a negative item's pttl is its neg mark's (the script's choice) */
    answer_raw raw = {.has_value = e[0]->type == REDIS_REPLY_STRING,
                      .pttl_ms = answer_int(e[1]),
                      .has_fresh = e[2]->type == REDIS_REPLY_STRING,
                      .fresh_until = answer_int(e[2]),
                      .now_ms = answer_int(r->element[1]),
                      .negative = answer_int(e[3]) == 1,
                      .neg_pttl_ms = answer_int(e[1])};
    if (answer_decode(&raw, v) != L2_OK)
        return L2_NIL;
    v->data = e[0]->str;
    v->len = e[0]->len;
    return L2_OK;
}
