/* The decoder of a Get's answer; see answer.h. */
#include "answer.h"

l2_status answer_decode(const answer_raw *raw, l2_value *v)
{
    v->stale = 0;
    v->negative = 0;
    if (raw->has_value) {
        v->pttl_ms = raw->pttl_ms;
        if (raw->has_fresh) { /* stale-while-revalidate */
            if (raw->now_ms >= raw->fresh_until)
                v->stale = 1;
            else
                v->pttl_ms = raw->fresh_until - raw->now_ms;
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
