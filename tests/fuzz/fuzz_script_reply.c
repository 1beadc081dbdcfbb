/* Fuzz target: the scripts' reply decoder (answer.c): what hiredis reads
 * from the input as Redis's answer to the GET script, and, when it is an
 * array of the MGET script's shape, every item of it. A value decoded must
 * lie inside the reply. */
#include "answer.h"
#include "fuzz.h"

static void check_value(const redisReply *r, const l2_value *v)
{
    (void)r;
    FUZZ_CHECK(v->data != NULL || v->len == 0);
    if (v->len > 0)
        FUZZ_CHECK(((const char *)v->data)[v->len] == '\0'); /* hiredis's terminator */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReply *r = fuzz_resp(data, size);
    if (r == NULL)
        return 0;
    l2_value v = {0};
    l2_status st = answer_get_script(r, &v);
    FUZZ_CHECK(st == L2_OK || st == L2_NIL || st == L2_EREPLY);
    if (st == L2_OK)
        check_value(r, &v);
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && (r->elements - 2) % 4 == 0) {
        for (size_t i = 0; i < (r->elements - 2) / 4; i++) {
            st = answer_mget_item(r, i, &v);
            FUZZ_CHECK(st == L2_OK || st == L2_NIL);
            if (st == L2_OK)
                check_value(r, &v);
        }
    }
    freeReplyObject(r);
    return 0;
}
