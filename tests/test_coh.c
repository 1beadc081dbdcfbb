/* Unit: coherence state without Redis: which messages drop what, own
 * messages, gaps, and the serving gate. */
#include <criterion/criterion.h>
#include <string.h>

#include "coherence.h"
#include "units.h"

static l1 *cache;
static stats st;
static coh *c;

static void up(void)
{
    memset(&st, 0, sizeof st);
    cr_assert_eq(l1_create(&cache, 1 << 20, 4), 0);
    cr_assert_eq(coh_create(&c, "self", cache, &st, 1000), 0);
    coh_subscribed(c);
}

static void down(void)
{
    coh_destroy(c);
    l1_destroy(cache);
}

TestSuite(coh, .init = up, .fini = down);

static void heartbeat(const char *origin, int64_t sent_ms, uint64_t stream0_seq)
{
    pb_heartbeat hb = NEARCACHE__V1__HEARTBEAT__INIT;
    uint64_t seqs[1] = {stream0_seq};
    hb.sent_ms = sent_ms;
    hb.n_stream_seqs = stream0_seq ? 1 : 0;
    hb.stream_seqs = seqs;
    pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
    m.origin = (char *)origin;
    m.heartbeat = &hb;
    coh_apply(c, &m);
}

static void drop_key(const char *origin, uint32_t stream, uint64_t seq, const char *key)
{
    pb_key_ref ref = NEARCACHE__V1__KEY_REF__INIT, *refs[1] = {&ref};
    ref.ns = (ProtobufCBinaryData){2, (uint8_t *)"ns"};
    ref.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
    pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
    m.origin = (char *)origin;
    m.stream = stream;
    m.seq = seq;
    m.n_keys = 1;
    m.keys = refs;
    coh_apply(c, &m);
}

static void put(const char *key)
{
    ks_l1_key k;
    ks_l1_key_make(&k, "ns", 2, key, strlen(key));
    cr_assert_eq(l1_set(cache, k.buf, k.len, "v", 1, 0, 1LL << 60, 0), 0);
    ks_l1_key_free(&k);
}

static int held(const char *key)
{
    ks_l1_key k;
    ks_l1_key_make(&k, "ns", 2, key, strlen(key));
    int hit = l1_get(cache, k.buf, k.len, 1, NULL, NULL);
    ks_l1_key_free(&k);
    return hit;
}

Test(coh, serves_only_after_hearing_its_own_recent_heartbeat)
{
    int64_t now = units_now_ms();
    cr_assert_not(coh_serving(c, now), "serving before any heartbeat");
    heartbeat("other", now, 0);
    cr_assert_not(coh_serving(c, now), "another node's heartbeat proves nothing here");
    heartbeat("self", now, 0);
    cr_assert(coh_serving(c, now));
    cr_assert_not(coh_serving(c, now + 1001), "serving while behind by more than the window");
    coh_lost(c);
    cr_assert_not(coh_serving(c, now));
    cr_assert_eq(st.subscription_losses, 1);
}

Test(coh, another_nodes_message_drops_the_key_and_own_messages_are_skipped)
{
    put("a");
    put("b");
    drop_key("self", 0, 1, "a");
    cr_assert(held("a"), "an own message was applied although the write was");
    drop_key("other", 0, 1, "a");
    cr_assert_not(held("a"));
    cr_assert(held("b"));
    cr_assert_eq(st.invalidations_received, 1);
}

Test(coh, own_message_of_a_write_with_unknown_outcome_is_applied)
{
    /* Regression: a Set whose answer was lost but which ran in Redis left
     * this node's L1 with the value it replaced. */
    put("a");
    coh_uncertain(c, 2, 7);
    drop_key("self", 2, 6, "a");
    cr_assert(held("a"));
    drop_key("self", 2, 7, "a");
    cr_assert_not(held("a"), "the own message of an uncertain write was skipped");
}

Test(coh, a_sequence_gap_empties_l1)
{
    put("a");
    drop_key("other", 0, 1, "x");
    drop_key("other", 0, 2, "x");
    cr_assert(held("a"));
    drop_key("other", 0, 2, "x"); /* a repeat is no gap */
    cr_assert(held("a"));
    drop_key("other", 0, 4, "x");
    cr_assert_not(held("a"), "seq 3 went missing and L1 was kept");
    cr_assert_eq(st.sequence_gaps, 1);
}

Test(coh, a_heartbeat_ahead_of_the_messages_is_a_gap)
{
    drop_key("other", 0, 1, "x");
    put("a");
    heartbeat("other", 5, 1);
    cr_assert(held("a"));
    heartbeat("other", 5, 2);
    cr_assert_not(held("a"));
}

Test(coh, an_origin_no_daemon_would_send_empties_l1)
{
    put("a");
    char origin[300];
    memset(origin, 'o', sizeof origin - 1);
    origin[sizeof origin - 1] = '\0';
    drop_key(origin, 0, 1, "x");
    cr_assert_not(held("a"));
}

Test(coh, versions_only_go_up_and_a_bump_drops_the_namespace)
{
    uint64_t v = 0;
    cr_assert_not(coh_version(c, "ns", 2, &v));
    coh_version_seen(c, "ns", 2, 3);
    coh_version_seen(c, "ns", 2, 2);
    cr_assert(coh_version(c, "ns", 2, &v));
    cr_assert_eq(v, 3);
    coh_version_seen(c, "ns", 2, UINT64_MAX); /* an unreadable reply */
    cr_assert(coh_version(c, "ns", 2, &v));
    cr_assert_eq(v, 3);
    put("a");
    coh_bumped(c, "ns", 2, 4);
    cr_assert_not(held("a"));
    cr_assert(coh_version(c, "ns", 2, &v));
    cr_assert_eq(v, 4);
}

/* Issue 9: emptying L1 makes every version unknown (read from Redis again)
 * but keeps it as the floor the scripts raise Redis's version above. */
Test(coh, a_forgotten_version_stays_as_the_floor)
{
    uint64_t v = 0;
    cr_assert_eq(coh_version_floor(c, "ns", 2), 0, "no floor before any version");
    coh_version_seen(c, "ns", 2, 7);
    coh_message_lost(c); /* empties L1 */
    cr_assert_not(coh_version(c, "ns", 2, &v), "still trusted after L1 was emptied");
    cr_assert_eq(coh_version_floor(c, "ns", 2), 7);
    coh_version_seen(c, "ns", 2, 5); /* what a Redis that went back says */
    cr_assert_not(coh_version(c, "ns", 2, &v), "a version below the floor was taken");
    coh_version_seen(c, "ns", 2, 7);
    cr_assert(coh_version(c, "ns", 2, &v));
    cr_assert_eq(v, 7);
}

/* L1 compares the low 32 bits of versions: a version recreated from
 * Redis's clock could wrap onto an old entry's, so such a jump empties the
 * namespace. */
Test(coh, a_version_that_jumps_by_2_to_the_31_drops_the_namespace)
{
    coh_version_seen(c, "ns", 2, 4);
    put("a");
    coh_version_seen(c, "ns", 2, 4 + (UINT64_C(1) << 31) - 1);
    cr_assert(held("a"), "an ordinary move keeps L1: the tags tell the versions apart");
    coh_version_seen(c, "ns", 2, 4 + (UINT64_C(1) << 32));
    cr_assert_not(held("a"));
}

Test(coh, own_stream_sequence_numbers_advance_only_when_confirmed)
{
    cr_assert_eq(coh_next_seq(c, 3), 1);
    uint64_t seqs[5] = {9, 9, 9, 9, 9};
    cr_assert_eq(coh_stream_seqs(c, seqs, 4), 4);
    cr_assert_eq(seqs[3], 0);
    cr_assert_eq(seqs[4], 9, "only the streams asked for are filled");
    coh_confirm_seq(c, 3, 1);
    cr_assert_eq(coh_next_seq(c, 3), 2);
    cr_assert_eq(coh_next_seq(c, 2), 1, "streams count apart");
    coh_stream_seqs(c, seqs, 4);
    cr_assert_eq(seqs[3], 1);
    uint64_t all[100];
    cr_assert_eq(coh_stream_seqs(c, all, 100), 65, "at most 65 streams (64 workers, the publisher)");
}

/* The rule for writers that die between a write and its batch: silence
 * (measured against this node's own heartbeats), bye, and the wait after a
 * new subscription. */
static void silence_on(int64_t silence_ms)
{
    coh_set_silence(c, silence_ms);
    coh_subscribed(c);
}

/* A bye as a daemon sends it: with a heartbeat sent at sent_ms. */
static void bye_at(const char *origin, int64_t sent_ms)
{
    pb_heartbeat hb = NEARCACHE__V1__HEARTBEAT__INIT;
    hb.sent_ms = sent_ms;
    pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
    m.origin = (char *)origin;
    m.bye = 1;
    m.heartbeat = &hb;
    coh_apply(c, &m);
}

static void bye(const char *origin)
{
    bye_at(origin, units_now_ms());
}

Test(coh, after_subscribing_l1_waits_out_the_silence_bound)
{
    silence_on(100);
    int64_t now = units_now_ms();
    heartbeat("self", now, 0);
    cr_assert_not(coh_serving(c, now), "serving before every live writer could be heard");
    heartbeat("self", now + 150, 0);
    cr_assert(coh_serving(c, now + 150));
}

Test(coh, a_writer_silent_past_the_bound_empties_l1_once)
{
    silence_on(100);
    int64_t now = units_now_ms();
    heartbeat("writer", now, 0); /* heard now (or a moment later) */
    heartbeat("self", now + 100, 0);
    put("a");
    heartbeat("self", now + 100, 0);
    cr_assert(held("a"), "emptied before the writer was silent long enough");
    heartbeat("self", now + 300, 0);
    cr_assert_not(held("a"), "a silent writer's lost batch could hide the old value");
    cr_assert_eq(st.origins_silent, 1);
    put("b");
    heartbeat("self", now + 600, 0);
    cr_assert(held("b"), "the silent writer is counted once");
    cr_assert_eq(st.origins_silent, 1);
}

Test(coh, a_writer_that_says_bye_costs_nothing)
{
    silence_on(100);
    int64_t now = units_now_ms();
    heartbeat("self", now + 150, 0);
    heartbeat("writer", now, 0);
    bye("writer");
    put("a");
    heartbeat("self", now + 400, 0);
    cr_assert(held("a"));
    cr_assert_eq(st.origins_bye, 1);
    cr_assert_eq(st.origins_silent, 0);
}

/* On a Cluster a bye goes to every master, and a lagging master's copy can
 * come after the heartbeat with which the writer started again: that
 * copy must not stop the watch, or the writer's death would go unseen. */
Test(coh, a_bye_older_than_a_heartbeat_heard_changes_nothing)
{
    silence_on(100);
    int64_t now = units_now_ms();
    heartbeat("writer", now + 50, 0); /* writing again */
    bye_at("writer", now);            /* its quiet's bye, from a lagging master */
    cr_assert_eq(st.origins_bye, 0, "a late bye was taken");
    put("a");
    heartbeat("self", now + 400, 0); /* the writer died: silent past the bound */
    cr_assert_not(held("a"), "the writer was forgotten by its late bye");
    cr_assert_eq(st.origins_silent, 1);
}

Test(coh, a_tools_unnumbered_message_is_not_watched)
{
    silence_on(100);
    int64_t now = units_now_ms();
    heartbeat("self", now + 150, 0);
    drop_key("tool", 0, 0, "x");
    put("a");
    heartbeat("self", now + 400, 0);
    cr_assert(held("a"), "a tool that published once is not a writer that died");
}

Test(coh, a_batch_with_a_heartbeat_drops_its_keys_and_checks_its_streams)
{
    put("a");
    pb_key_ref ref = NEARCACHE__V1__KEY_REF__INIT, *refs[1] = {&ref};
    ref.ns = (ProtobufCBinaryData){2, (uint8_t *)"ns"};
    ref.key = (ProtobufCBinaryData){1, (uint8_t *)"a"};
    pb_heartbeat hb = NEARCACHE__V1__HEARTBEAT__INIT;
    uint64_t seqs[2] = {0, 1};
    hb.sent_ms = units_now_ms();
    hb.n_stream_seqs = 2;
    hb.stream_seqs = seqs;
    pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
    m.origin = "writer";
    m.stream = 1;
    m.seq = 1;
    m.n_keys = 1;
    m.keys = refs;
    m.heartbeat = &hb;
    coh_apply(c, &m);
    cr_assert_not(held("a"));
    cr_assert_eq(st.sequence_gaps, 0, "its own seq in its heartbeat is no gap");
}

/* A Cluster's subscription: one source per master, a channel per bucket. */
static void heartbeat_on(const char *origin, int64_t sent_ms, int source, unsigned channel)
{
    pb_heartbeat hb = NEARCACHE__V1__HEARTBEAT__INIT;
    hb.sent_ms = sent_ms;
    pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
    m.origin = (char *)origin;
    m.heartbeat = &hb;
    coh_apply_from(c, &m, source, channel);
}

static void drop_key_on(const char *origin, uint64_t seq, const char *key, unsigned channel)
{
    pb_key_ref ref = NEARCACHE__V1__KEY_REF__INIT, *refs[1] = {&ref};
    ref.ns = (ProtobufCBinaryData){2, (uint8_t *)"ns"};
    ref.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
    pb_invalidation m = NEARCACHE__V1__INVALIDATION__INIT;
    m.origin = (char *)origin;
    m.stream = 4;
    m.seq = seq;
    m.n_keys = 1;
    m.keys = refs;
    coh_apply_from(c, &m, channel % 3, channel);
}

Test(coh, on_a_cluster_serves_only_once_its_heartbeat_came_back_from_every_master)
{
    coh_subscribed_to(c, 3);
    int64_t now = units_now_ms();
    heartbeat_on("self", now, 0, 0);
    heartbeat_on("self", now, 1, 5);
    cr_assert_not(coh_serving(c, now), "serving without hearing master 2");
    heartbeat_on("self", now - 600, 2, 9);
    cr_assert(coh_serving(c, now));
    /* the oldest master's heartbeat bounds it */
    cr_assert_not(coh_serving(c, now + 500), "master 2's heartbeat is 1.1 s old by then");
    heartbeat_on("self", now + 400, 2, 9);
    cr_assert(coh_serving(c, now + 500));
    coh_lost(c);
    cr_assert_not(coh_serving(c, now + 500));
}

Test(coh, on_a_cluster_sequence_numbers_count_per_channel)
{
    coh_subscribed_to(c, 3);
    put("a");
    put("b");
    drop_key_on("other", 7, "a", 1);
    drop_key_on("other", 3, "x", 2); /* another channel's numbers: no gap */
    drop_key_on("other", 8, "y", 1);
    drop_key_on("other", 4, "z", 2);
    cr_assert_eq(st.sequence_gaps, 0);
    cr_assert_not(held("a"));
    cr_assert(held("b"));
    drop_key_on("other", 10, "w", 1); /* 9 lost on channel 1 */
    cr_assert_eq(st.sequence_gaps, 1);
    cr_assert_not(held("b"), "a gap empties L1");
}
