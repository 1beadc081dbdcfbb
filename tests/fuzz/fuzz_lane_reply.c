/* Fuzz target: the read lane's reply parser (lane_parse), fed what hiredis
 * reads from the input as Redis's answer to the lane's MULTI ... EXEC. The
 * first input byte picks the version the read assumed (0..3), so the
 * version checks are reached both ways. */
#include "fuzz.h"
#include "lane.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    redisReply *r = fuzz_resp(data + 1, size - 1);
    if (r == NULL)
        return 0;
    uint64_t version = data[0] & 3;
    l2_value v;
    lane_status st = lane_parse(r, version, &v); /* takes r */
    if (st == LANE_OK || st == LANE_NIL) {
        FUZZ_CHECK(v.version == version);
        FUZZ_CHECK(st == LANE_NIL || v.data != NULL || v.len == 0);
        l2_value_free(&v);
    } else {
        FUZZ_CHECK(st == LANE_RETRY || st == LANE_MOVED || st == LANE_FELL);
    }
    return 0;
}
