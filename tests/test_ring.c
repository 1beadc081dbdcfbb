/* Unit: the near tier's invalidation ring (common/ring.c) without a daemon:
 * slots read whole while a writer publishes, lapping, epochs. What a
 * reader must answer to any ring file is tests/conformance/ring.json
 * (test_ringcases.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring.h"

static char dir[64], path[128];
static char err[512];

static void up(void)
{
    snprintf(dir, sizeof dir, "/tmp/nc-test-ring-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/r.ring", dir);
}

static void down(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(ring, .init = up, .fini = down, .timeout = 60);

/* What the writer thread puts in slot `seq`: fields a reader can check. */
static uint64_t ns_of(uint64_t seq)
{
    return seq * UINT64_C(0x9e3779b97f4a7c15);
}

static uint64_t key_of(uint64_t seq)
{
    return ~seq;
}

enum { WRITES = 2000000 };

static ring *writer;
static atomic_int writing;

static void *write_all(void *arg)
{
    (void)arg;
    for (uint64_t seq = 1; seq <= WRITES; seq++)
        ring_publish(writer, seq % 2 ? RING_KEY : RING_NAMESPACE, ns_of(seq), key_of(seq));
    atomic_store(&writing, 0);
    return NULL;
}

typedef struct reader_result {
    uint64_t taken, laps, torn;
} reader_result;

/* Follows the ring like a near tier: every slot it takes must be whole. */
static void *follow(void *arg)
{
    reader_result *res = arg;
    ring_reader *rd;
    char e[256];
    cr_assert_eq(ring_reader_open(&rd, path, e, sizeof e), 0, "%s", e);
    uint64_t cursor = 0;
    while (atomic_load(&writing) || cursor < ring_reader_head(rd)) {
        uint64_t head = ring_reader_head(rd);
        if (head - cursor > ring_reader_slots(rd)) { /* lapped: go on a little behind the head */
            res->laps++;
            cursor = head - 16;
        }
        for (; cursor < head; cursor++) {
            ring_slot s;
            if (!ring_reader_slot(rd, cursor + 1, &s)) {
                res->laps++;
                cursor = ring_reader_head(rd) - 16;
                break;
            }
            if (s.ns_hash != ns_of(s.seq) || s.key_hash != key_of(s.seq) ||
                s.kind != (s.seq % 2 ? RING_KEY : RING_NAMESPACE) || s.seq != cursor + 1)
                res->torn++;
            res->taken++;
        }
    }
    ring_reader_close(rd);
    return NULL;
}

Test(ring, readers_take_every_slot_whole_while_a_writer_publishes)
{
    cr_assert_eq(ring_open(&writer, path, 256, 0644, (gid_t)-1, err, sizeof err), 0, "%s", err);
    atomic_store(&writing, 1);
    reader_result res[3] = {{0}};
    pthread_t w, r[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&r[i], NULL, follow, &res[i]);
    pthread_create(&w, NULL, write_all, NULL);
    pthread_join(w, NULL);
    for (int i = 0; i < 3; i++) {
        pthread_join(r[i], NULL);
        cr_assert_eq(res[i].torn, 0, "reader %d took %llu torn slots", i,
                     (unsigned long long)res[i].torn);
        cr_assert_gt(res[i].taken, 0);
    }
    cr_assert_eq(ring_published(writer), WRITES);
    ring_close(writer);
}

Test(ring, a_reader_overtaken_by_the_writer_is_told_it_was_lapped)
{
    cr_assert_eq(ring_open(&writer, path, 64, 0644, (gid_t)-1, err, sizeof err), 0, "%s", err);
    ring_reader *rd;
    cr_assert_eq(ring_reader_open(&rd, path, err, sizeof err), 0, "%s", err);
    ring_slot s;
    for (uint64_t i = 1; i <= 64; i++)
        ring_publish(writer, RING_KEY, i, i);
    cr_assert(ring_reader_slot(rd, 1, &s), "slot 1 is still there after 64 writes");
    ring_publish(writer, RING_KEY, 65, 65);
    cr_assert_not(ring_reader_slot(rd, 1, &s), "slot 1 was overwritten by slot 65");
    cr_assert(ring_reader_slot(rd, 65, &s));
    cr_assert_eq(s.ns_hash, 65);
    cr_assert_eq(ring_reader_head(rd), 65);
    ring_reader_close(rd);
    ring_close(writer);
}

Test(ring, a_new_writer_makes_a_new_epoch_and_a_closed_one_poisons_its_ring)
{
    cr_assert_eq(ring_open(&writer, path, 64, 0644, (gid_t)-1, err, sizeof err), 0, "%s", err);
    ring_reader *rd;
    cr_assert_eq(ring_reader_open(&rd, path, err, sizeof err), 0, "%s", err);
    uint64_t first = ring_reader_epoch(rd);
    cr_assert_neq(first, 0);
    cr_assert_eq(ring_reader_serving_until(rd), 0, "a new ring serves nothing");
    ring_serve_until(writer, 12345);
    cr_assert_eq(ring_reader_serving_until(rd), 12345);
    ring_flush(writer);
    cr_assert_eq(ring_reader_flush_gen(rd), 1);
    cr_assert_not(ring_reader_replaced(rd));
    ring_close(writer);
    cr_assert_eq(ring_reader_epoch(rd), 0, "a closed ring is poisoned");
    cr_assert_eq(ring_reader_serving_until(rd), 0);
    cr_assert(ring_reader_replaced(rd), "a closed ring's file is gone");
    cr_assert_eq(access(path, F_OK), -1);
    cr_assert_eq(ring_open(&writer, path, 64, 0644, (gid_t)-1, err, sizeof err), 0, "%s", err);
    ring_reader *again;
    cr_assert_eq(ring_reader_open(&again, path, err, sizeof err), 0, "%s", err);
    cr_assert_neq(ring_reader_epoch(again), first, "a restarted writer's epoch is new");
    cr_assert(ring_reader_replaced(rd));
    ring_reader_close(again);
    ring_reader_close(rd);
    ring_close(writer);
}

Test(ring, a_slot_count_that_is_not_a_power_of_two_is_refused)
{
    cr_assert_eq(ring_open(&writer, path, 100, 0644, (gid_t)-1, err, sizeof err), EINVAL);
    cr_assert_not_null(strstr(err, "power of two"), "%s", err);
    cr_assert_eq(access(path, F_OK), -1, "nothing was created");
}
