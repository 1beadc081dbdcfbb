/* Integration: the read lane against a real redis-server. A read answers
 * what the Get script answers (value, TTL, known absent, stale), refuses to
 * read under a version Redis no longer holds, keeps many reads in flight in
 * order, answers a deadline while Redis sleeps, drops a hung connection,
 * and reconnects after Redis restarts. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "l2.h"
#include "lane.h"

#define NREADS 200

/* What done() was told about one read. */
typedef struct landed {
    int count;
    int status;
    char value[64];
    int64_t pttl_ms;
    int stale, negative;
    uint64_t version;
} landed;

static h_redis redis;
static config_redis_url url;
static l2 *conn;
static lane *ln;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static landed reads[NREADS];
static int order[NREADS], norder;
static const l2_msg msg = {"nc:v1:inval", "hello", 5};

static void on_done(void *arg, void *req, lane_status status, l2_value *v, int64_t sent_at)
{
    (void)arg, (void)sent_at;
    landed *l = req;
    pthread_mutex_lock(&mu);
    l->count++;
    l->status = status;
    if (v != NULL) {
        snprintf(l->value, sizeof l->value, "%.*s", (int)v->len, v->data ? (char *)v->data : "");
        l->pttl_ms = v->pttl_ms;
        l->stale = v->stale;
        l->negative = v->negative;
        l->version = v->version;
        l2_value_free(v);
    }
    for (int i = 0; i < NREADS && norder < NREADS; i++)
        if (l == &reads[i])
            order[norder++] = i;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void start_lane(int64_t timeout_ms, size_t capacity)
{
    cr_assert_eq(lane_create(&ln, &url, 500, timeout_ms, capacity, on_done, NULL), 0);
    int64_t give_up = h_now_ms() + 5000;
    while (!lane_up(ln) && h_now_ms() < give_up)
        h_sleep_ms(5);
    cr_assert(lane_up(ln), "the lane did not connect");
}

static void up(void)
{
    h_redis_start(&redis);
    url = (config_redis_url){.port = redis.port};
    snprintf(url.host, sizeof url.host, "127.0.0.1");
    cr_assert_eq(l2_create(&conn, &url, 500, "test", 3), 0);
    memset(reads, 0, sizeof reads);
    norder = 0;
    start_lane(500, 256);
}

static void down(void)
{
    lane_destroy(ln);
    l2_destroy(conn);
    h_redis_cleanup(&redis);
}

TestSuite(lane, .init = up, .fini = down, .timeout = 30);

static l2_key key_of(const char *ns, const char *key)
{
    l2_key k = {"nc:v1", ns, strlen(ns), key, strlen(key), 0, 0};
    return k;
}

static uint64_t ver; /* the version set() wrote under; 0 before: Redis holds none */

static void set(const char *key, const char *value, int64_t ttl_ms, const l2_set_opts *o)
{
    l2_key k = key_of("ns", key);
    int stored;
    cr_assert_eq(l2_set(conn, &k, value, strlen(value), ttl_ms, o, &msg, 500, &ver, &stored), L2_OK,
                 "%s", l2_error(conn));
}

/* Waits until `n` reads have landed in reads[i], i < n; then returns read 0. */
static landed *wait_for(int n, int64_t timeout_ms)
{
    int64_t give_up = h_now_ms() + timeout_ms;
    pthread_mutex_lock(&mu);
    for (;;) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += reads[i].count > 0;
        if (done == n || h_now_ms() >= give_up)
            break;
        pthread_mutex_unlock(&mu);
        h_sleep_ms(2);
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < n; i++)
        cr_assert_eq(reads[i].count, 1, "read %d landed %d times", i, reads[i].count);
    return &reads[0];
}

static int read_key(const char *key, uint64_t version, int64_t deadline_ms, landed *into)
{
    l2_key k = key_of("ns", key);
    return lane_get(ln, &k, version, h_now_ms() + deadline_ms, into);
}

Test(lane, a_read_answers_what_the_get_script_answers)
{
    set("k", "value", 10000, NULL);
    cr_assert_eq(h_nsver(&redis, "ns"), ver);
    cr_assert_eq(read_key("k", ver, 2000, &reads[0]), 0);
    landed *l = wait_for(1, 5000);
    cr_assert_eq(l->status, L2_OK);
    cr_assert_str_eq(l->value, "value");
    cr_assert_eq(l->version, ver);
    l2_key k = key_of("ns", "k");
    l2_value v = {0};
    cr_assert_eq(l2_get(conn, &k, NULL, 500, &v), L2_OK);
    cr_assert(l->pttl_ms > 0 && l->pttl_ms <= 10000, "pttl %lld", (long long)l->pttl_ms);
    cr_assert(l->pttl_ms >= v.pttl_ms, "the lane read came first: %lld < %lld",
              (long long)l->pttl_ms, (long long)v.pttl_ms);
    cr_assert_eq(l->stale, v.stale);
    cr_assert_eq(l->negative, v.negative);
    l2_value_free(&v);
    cr_assert_eq(lane_reads(ln), 1);
}

Test(lane, missing_and_known_absent_keys_are_nil)
{
    l2_set_opts neg = {.negative = 1};
    set("gone", "", 5000, &neg);
    cr_assert_eq(read_key("never", ver, 2000, &reads[0]), 0);
    cr_assert_eq(read_key("gone", ver, 2000, &reads[1]), 0);
    wait_for(2, 5000);
    cr_assert_eq(reads[0].status, L2_NIL);
    cr_assert_not(reads[0].negative);
    cr_assert_eq(reads[1].status, L2_NIL);
    cr_assert(reads[1].negative, "a negative entry reads as known absent");
    cr_assert(reads[1].pttl_ms > 0 && reads[1].pttl_ms <= 5000);
}

Test(lane, a_stale_while_revalidate_value_is_fresh_then_stale)
{
    l2_set_opts swr = {.swr_ms = 10000};
    set("s", "old", 200, &swr);
    cr_assert_eq(read_key("s", ver, 2000, &reads[0]), 0);
    wait_for(1, 5000);
    cr_assert_eq(reads[0].status, L2_OK);
    cr_assert_not(reads[0].stale);
    cr_assert(reads[0].pttl_ms <= 200, "pttl is the fresh part: %lld", (long long)reads[0].pttl_ms);
    h_sleep_ms(300);
    cr_assert_eq(read_key("s", ver, 2000, &reads[1]), 0);
    wait_for(2, 5000);
    cr_assert_eq(reads[1].status, L2_OK);
    cr_assert_str_eq(reads[1].value, "old");
    cr_assert(reads[1].stale, "past its TTL, the value is stale");
}

Test(lane, a_version_redis_no_longer_holds_is_not_read)
{
    set("k", "under-v", 10000, NULL);
    uint64_t v = h_nsver(&redis, "ns");
    free(h_redis_cmd(&redis, "INCR", "nc:v1:nsver:ns", NULL)); /* a bump this node missed */
    cr_assert_eq(read_key("k", v, 2000, &reads[0]), 0);
    wait_for(1, 5000);
    cr_assert_eq(reads[0].status, LANE_MOVED, "read under version v after a bump to v + 1");
    cr_assert_eq(reads[0].version, v + 1, "the version Redis holds");
    cr_assert_eq(read_key("k", v + 1, 2000, &reads[1]), 0);
    wait_for(2, 5000);
    cr_assert_eq(reads[1].status, L2_NIL, "version v + 1 has no value yet");
    /* Redis loses the version key: the lane does not read, the script will. */
    free(h_redis_cmd(&redis, "DEL", "nc:v1:nsver:ns", NULL));
    cr_assert_eq(read_key("k", v + 1, 2000, &reads[2]), 0);
    wait_for(3, 5000);
    cr_assert_eq(reads[2].status, LANE_FELL);
    cr_assert_eq(reads[2].version, 0, "Redis holds no version");
    /* An older version, as on a lagging replica made master. */
    free(h_redis_cmd(&redis, "SET", "nc:v1:nsver:ns", "3", NULL));
    cr_assert_eq(read_key("k", v + 1, 2000, &reads[3]), 0);
    wait_for(4, 5000);
    cr_assert_eq(reads[3].status, LANE_FELL);
    cr_assert_eq(reads[3].version, 3);
}

Test(lane, a_lane_that_assumes_the_version_reads_under_the_one_it_is_given)
{
    /* as on a Cluster, where the version key is on another slot */
    lane_destroy(ln);
    cr_assert_eq(lane_create(&ln, &url, 500, 500, 256, on_done, NULL), 0);
    lane_assume_version(ln);
    for (int i = 0; i < 1000 && !lane_up(ln); i++)
        h_sleep_ms(5);
    set("k", "under-v", 10000, NULL);
    uint64_t v = h_nsver(&redis, "ns");
    free(h_redis_cmd(&redis, "INCR", "nc:v1:nsver:ns", NULL)); /* not read: not seen */
    cr_assert_eq(read_key("k", v, 2000, &reads[0]), 0);
    wait_for(1, 5000);
    cr_assert_eq(reads[0].status, L2_OK);
    cr_expect_str_eq(reads[0].value, "under-v");
    cr_expect_eq(reads[0].version, v);
    cr_assert_eq(read_key("k", v + 1, 2000, &reads[1]), 0);
    wait_for(2, 5000);
    cr_expect_eq(reads[1].status, L2_NIL, "nothing under v + 1");
    cr_expect_eq(reads[1].version, v + 1);
}

Test(lane, a_key_of_the_wrong_type_is_left_to_the_script)
{
    char list[128];
    free(h_redis_cmd(&redis, "LPUSH", h_key_at(list, sizeof list, "nc:v1", "ns", 0, "list"), "x",
                     NULL));
    cr_assert_eq(read_key("list", ver, 2000, &reads[0]), 0);
    wait_for(1, 5000);
    cr_assert_eq(reads[0].status, LANE_RETRY, "WRONGTYPE read as %d", reads[0].status);
}

Test(lane, many_reads_in_flight_land_in_order_each_with_its_own_value)
{
    char key[16], value[16];
    for (int i = 0; i < NREADS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(value, sizeof value, "v%d", i);
        set(key, value, 10000, NULL);
    }
    for (int i = 0; i < NREADS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_eq(read_key(key, ver, 5000, &reads[i]), 0, "read %d turned away", i);
    }
    wait_for(NREADS, 10000);
    for (int i = 0; i < NREADS; i++) {
        snprintf(value, sizeof value, "v%d", i);
        cr_assert_eq(reads[i].status, L2_OK);
        cr_assert_str_eq(reads[i].value, value);
        cr_assert_eq(order[i], i, "landing %d was read %d", i, order[i]);
    }
}

Test(lane, a_deadline_is_answered_while_redis_sleeps)
{
    set("k", "v", 10000, NULL);
    pid_t sleeper = h_redis_sleep(&redis, "1.5", 300);
    int64_t t0 = h_now_ms();
    cr_assert_eq(read_key("k", ver, 100, &reads[0]), 0);
    wait_for(1, 5000);
    cr_assert_eq(reads[0].status, LANE_TIMEOUT);
    /* at its deadline, not when Redis wakes (1.2 s after t0 at the earliest:
     * it fell asleep for 1.5 s 300 ms before); the rest is the machine's */
    cr_assert_lt(h_now_ms() - t0, 1000, "a 100 ms deadline answered after %lld ms",
                 (long long)(h_now_ms() - t0));
    waitpid(sleeper, NULL, 0);
    /* The expired read's answer is dropped (or its connection, Redis having
     * slept past the timeout); the next read gets its own answer. */
    int64_t give_up = h_now_ms() + 5000;
    while (!lane_up(ln) && h_now_ms() < give_up)
        h_sleep_ms(5);
    cr_assert_eq(read_key("k", ver, 2000, &reads[1]), 0);
    wait_for(2, 5000);
    cr_assert_eq(reads[1].status, L2_OK);
    cr_assert_str_eq(reads[1].value, "v");
}

/* Reads that expired still hold their places until Redis answers them; a
 * Redis silent past the timeout loses the connection, which frees them.
 * The lane stays down (Gets go to the workers) until Redis answers PING. */
Test(lane, a_hung_connection_is_dropped_even_when_every_read_has_expired)
{
    lane_destroy(ln);
    start_lane(300, 2);
    pid_t sleeper = h_redis_sleep(&redis, "2", 300);
    cr_assert_eq(read_key("a", ver, 50, &reads[0]), 0);
    cr_assert_eq(read_key("b", ver, 50, &reads[1]), 0);
    wait_for(2, 5000);
    cr_assert_eq(reads[0].status, LANE_TIMEOUT);
    cr_assert_eq(reads[1].status, LANE_TIMEOUT);
    cr_assert_eq(read_key("c", ver, 5000, &reads[2]), -1, "a full lane takes a third read");
    int64_t give_up = h_now_ms() + 1000;
    while (lane_up(ln) && h_now_ms() < give_up)
        h_sleep_ms(5);
    cr_assert_not(lane_up(ln), "still up on a connection Redis left unanswered");
    h_sleep_ms(200);
    cr_assert_not(lane_up(ln), "reconnected to a Redis that does not answer PING");
    waitpid(sleeper, NULL, 0);
    give_up = h_now_ms() + 8000;
    while (!lane_up(ln) && h_now_ms() < give_up)
        h_sleep_ms(10);
    cr_assert(lane_up(ln), "no reconnect after Redis woke");
    cr_assert_eq(read_key("c", ver, 5000, &reads[2]), 0);
    wait_for(3, 5000);
    cr_assert_eq(reads[2].status, L2_NIL);
}

/* A read Redis leaves unanswered past the timeout fails as timed out: the
 * caller answers it (stale, or an error), not the workers all over again. */
Test(lane, reads_in_flight_on_a_hung_connection_time_out)
{
    lane_destroy(ln);
    start_lane(300, 256);
    pid_t sleeper = h_redis_sleep(&redis, "1.5", 300);
    int64_t t0 = h_now_ms();
    cr_assert_eq(read_key("k", ver, 5000, &reads[0]), 0);
    wait_for(1, 5000);
    cr_assert_eq(reads[0].status, LANE_TIMEOUT);
    cr_assert_lt(h_now_ms() - t0, 1000, "dropped after %lld ms", (long long)(h_now_ms() - t0));
    waitpid(sleeper, NULL, 0);
}

Test(lane, a_full_lane_turns_reads_away)
{
    lane_destroy(ln);
    start_lane(5000, 2);
    pid_t sleeper = h_redis_sleep(&redis, "1", 300);
    cr_assert_eq(read_key("a", ver, 3000, &reads[0]), 0);
    cr_assert_eq(read_key("b", ver, 3000, &reads[1]), 0);
    cr_assert_eq(read_key("c", ver, 3000, &reads[2]), -1, "a third read fits in a lane of two");
    waitpid(sleeper, NULL, 0);
    wait_for(2, 5000);
    cr_assert_eq(reads[0].status, L2_NIL);
    cr_assert_eq(reads[1].status, L2_NIL);
}

Test(lane, redis_restart_is_survived)
{
    set("k", "v", 10000, NULL);
    h_redis_stop(&redis, 1);
    int sent = read_key("k", ver, 2000, &reads[0]) == 0;
    if (sent) { /* before the lane saw the connection go */
        wait_for(1, 5000);
        cr_assert_eq(reads[0].status, LANE_RETRY);
    }
    int64_t give_up = h_now_ms() + 5000;
    while (lane_up(ln) && h_now_ms() < give_up)
        h_sleep_ms(10);
    cr_assert_not(lane_up(ln), "the lane still says it is up with Redis gone");
    cr_assert_eq(read_key("k", ver, 2000, &reads[sent]), -1, "a down lane takes no reads");
    h_redis_restart(&redis); /* empty: no persistence */
    give_up = h_now_ms() + 10000;
    while (!lane_up(ln) && h_now_ms() < give_up)
        h_sleep_ms(20);
    cr_assert(lane_up(ln), "no reconnect within 10 s");
    cr_assert_eq(read_key("k", ver, 2000, &reads[sent]), 0);
    wait_for(sent + 1, 5000);
    cr_assert_eq(reads[sent].status, LANE_FELL, "the new Redis holds no version: the script reads");
}

/* Readers with many reads in flight, while Redis keeps pausing (reads
 * expire, the connection is dropped as hung) and killing the lane's
 * connection: every value that lands is the one of its own key. */
#define STRESS_KEYS    100
#define STRESS_THREADS 4
#define STRESS_BATCH   8

typedef struct stress {
    landed batch[STRESS_BATCH];
    int key[STRESS_BATCH];
    int ok, expired, retried, refused, wrong;
    unsigned seed;
} stress;

static _Atomic int stress_stop;

static void *stress_main(void *arg)
{
    stress *st = arg;
    char key[16];
    while (!stress_stop) {
        for (int b = 0; b < STRESS_BATCH; b++) {
            st->key[b] = (int)(rand_r(&st->seed) % STRESS_KEYS);
            snprintf(key, sizeof key, "k%d", st->key[b]);
            pthread_mutex_lock(&mu);
            memset(&st->batch[b], 0, sizeof st->batch[b]);
            pthread_mutex_unlock(&mu);
            int64_t deadline = 20 + rand_r(&st->seed) % 300;
            if (read_key(key, ver, deadline, &st->batch[b]) != 0) {
                st->batch[b].count = -1;
                st->refused++;
            }
        }
        for (int b = 0; b < STRESS_BATCH; b++) {
            int64_t give_up = h_now_ms() + 5000;
            pthread_mutex_lock(&mu);
            while (st->batch[b].count == 0 && h_now_ms() < give_up) {
                pthread_mutex_unlock(&mu);
                h_sleep_ms(1);
                pthread_mutex_lock(&mu);
            }
            landed l = st->batch[b];
            pthread_mutex_unlock(&mu);
            char want[16];
            snprintf(want, sizeof want, "v%d", st->key[b]);
            if (l.count == -1)
                continue;
            if (l.count != 1 || (l.status == L2_OK && strcmp(l.value, want) != 0) ||
                l.status == L2_NIL)
                st->wrong++;
            st->ok += l.status == L2_OK;
            st->expired += l.status == LANE_TIMEOUT;
            st->retried += l.status == LANE_RETRY;
        }
    }
    return NULL;
}

Test(lane, answers_never_cross_while_redis_pauses_and_drops_connections)
{
    char key[16], value[16];
    for (int i = 0; i < STRESS_KEYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(value, sizeof value, "v%d", i);
        set(key, value, 600000, NULL);
    }
    lane_destroy(ln);
    start_lane(150, 64);
    stress st[STRESS_THREADS] = {0};
    pthread_t t[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++) {
        st[i].seed = 1234u + (unsigned)i;
        cr_assert_eq(pthread_create(&t[i], NULL, stress_main, &st[i]), 0);
    }
    for (int round = 0; round < 6; round++) {
        h_sleep_ms(300);
        if (round % 2 == 0) {
            waitpid(h_redis_sleep(&redis, "0.25", 0), NULL, 0);
        } else {
            char *out = h_redis_cmd(&redis, "CLIENT", "KILL", "TYPE", "normal", NULL);
            free(out);
        }
    }
    h_sleep_ms(500);
    stress_stop = 1;
    int ok = 0, expired = 0, retried = 0, wrong = 0;
    for (int i = 0; i < STRESS_THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += st[i].ok, expired += st[i].expired, retried += st[i].retried;
        wrong += st[i].wrong;
    }
    cr_log_info("lane stress: %d ok, %d expired, %d retried", ok, expired, retried);
    cr_assert_eq(wrong, 0, "%d reads landed with another key's answer, twice, or as absent", wrong);
    cr_assert_gt(ok, 100, "only %d reads were answered", ok);
    cr_assert_gt(expired + retried, 0, "the pauses and kills disturbed nothing");
}

/* Found by tests/fuzz (lane_reply): a TIME of INT64_MAX seconds overflowed
 * seconds * 1000 (UBSan). The reply still decodes; its clock is taken as 0. */
Test(lane, a_time_reply_too_large_for_ms_does_not_overflow)
{
    static const char resp[] = "*7\r\n$1\r\n1\r\n$3\r\nbob\r\n:5000\r\n$-1\r\n:0\r\n:-2\r\n"
                               "*2\r\n$19\r\n9223372036854775807\r\n$1\r\n1\r\n";
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    cr_assert_eq(redisReaderFeed(rd, resp, sizeof resp - 1), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(rd, &reply), REDIS_OK);
    cr_assert_not_null(reply);
    redisReaderFree(rd);
    l2_value v;
    cr_assert_eq(lane_parse(reply, 1, &v), LANE_OK);
    cr_assert_eq(v.len, 3);
    cr_assert_eq(v.pttl_ms, 5000);
    l2_value_free(&v);
}
