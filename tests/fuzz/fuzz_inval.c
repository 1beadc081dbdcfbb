/* Fuzz target: the invalidation message decoder, as the subscriber uses it:
 * a pub/sub payload from Redis (anyone who may PUBLISH on the channel can
 * send one) decoded by codec_inval_unpack() and applied by coh_apply() to a
 * real L1 and the near tiers' ring. L1 holds a few entries first, so the
 * drops have something to find. */
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "coherence.h"
#include "fuzz.h"
#include "l1.h"
#include "ring.h"
#include "stats.h"

static l1 *cache;
static coh *state;
static stats st;
static ring *rg;

static void setup(void)
{
    char path[64], err[256];
    snprintf(path, sizeof path, "/tmp/nc-fuzz-inval-%d.ring", (int)getpid());
    if (l1_create(&cache, 1 << 20, 4) != 0 || coh_create(&state, "fuzznode00000000", cache, &st, 5000) != 0 ||
        ring_open(&rg, path, RING_SLOTS_MIN, 0600, (gid_t)-1, err, sizeof err) != 0)
        abort();
    unlink(path); /* mapped: the file need not stay */
    coh_set_ring(state, rg);
    coh_subscribed(state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cache == NULL)
        setup();
    static const char *keys[] = {"users:42", "users:43", "orders:1"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        l1_set(cache, keys[i], strlen(keys[i]), "v", 1, 1, INT64_MAX, 0);
    pb_invalidation *m = codec_inval_unpack(data, size);
    if (m == NULL) {
        coh_message_lost(state); /* what the subscriber does with it */
        coh_subscribed(state);
        return 0;
    }
    coh_apply(state, m);
    codec_inval_free(m);
    return 0;
}
