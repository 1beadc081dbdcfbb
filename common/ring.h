/* The near tier's invalidation ring: a file in shared memory with one
 * writer (the daemon) and any number of readers (client processes that map
 * it read-only), after Aeron's broadcast buffer. The writer drops an entry
 * from its L1 before it publishes the slot that names it; a reader applies
 * every slot since its cursor before it serves from its near tier.
 *
 * The layout (little-endian) is the RING_* constants below: the header's
 * 8-byte magic at 0, u32 layout version and slot size, u64 fields
 * (serving_until an i64); slot s at RING_SLOTS_AT + RING_SLOT_SIZE *
 * (s mod count), with u64 seq, u32 kind, u32 0, u64 hashes. docs/protocol.md ("The near-tier ring")
 * says what each field means. Slots are written and read seqlock-style:
 * seq is cleared, the fields written, then seq set, and then head; a reader
 * takes a slot only when seq reads the same before and after its fields. */
#ifndef NC_RING_H
#define NC_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The layout: the one table of it. tests/conformance/ring.json copies it
 * for other languages, and tests/test_ringcases.c checks that copy. */
#define RING_MAGIC            "NCRING\0\0"
#define RING_LAYOUT           1
#define RING_SLOT_SIZE        32
#define RING_SLOTS_AT         192
#define RING_SLOTS_MIN        64
#define RING_SLOTS_MAX        (1u << 24)
#define RING_LAYOUT_AT        8
#define RING_SLOT_SIZE_AT     12
#define RING_SLOT_COUNT_AT    16
#define RING_EPOCH_AT         24
#define RING_FLUSH_GEN_AT     32
#define RING_HEAD_AT          64
#define RING_SERVING_UNTIL_AT 128
#define RING_SLOT_SEQ_AT      0 /* a slot's fields, from the slot's start */
#define RING_SLOT_KIND_AT     8
#define RING_SLOT_NS_HASH_AT  16
#define RING_SLOT_KEY_HASH_AT 24
#define RING_RECHECK_MS       100 /* how often a reader looks for a new file when it cannot serve */
/* A reader's stamps (docs/protocol.md, "The reader"): RING_STAMPS key
 * stamps indexed by ring_key_mix(ns hash, key hash) mod RING_STAMPS, and
 * RING_STAMPS namespace stamps indexed by the ns hash mod RING_STAMPS. */
#define RING_STAMPS 4096
/* The ring's file name is the daemon's ipc:// socket path + this. */
#define RING_SUFFIX ".ring"

enum ring_kind {
    RING_KEY = 1,       /* one key: ns hash and key hash */
    RING_NAMESPACE = 2, /* every key of a namespace (a bump): ns hash */
};

/* One slot as a reader sees it. */
typedef struct ring_slot {
    uint64_t seq;
    uint32_t kind;
    uint64_t ns_hash, key_hash;
} ring_slot;

/* FNV-1a, 64 bits, of n bytes: the hash of a namespace or a key in slots. */
uint64_t ring_hash(const void *p, size_t n);

/* The mix of a key's two hashes that indexes its stamp:
 * x = ns_hash ^ (key_hash * 0x9e3779b97f4a7c15 mod 2^64), then x ^ (x >> 29). */
uint64_t ring_key_mix(uint64_t ns_hash, uint64_t key_hash);

/* The default ring file of a daemon listening on `url`: an ipc:// socket's
 * path + RING_SUFFIX. Returns 1 with it in buf (len bytes), or 0 (buf "")
 * when url is not ipc:// or buf is too small. */
int ring_default_path(const char *url, char *buf, size_t len);

/* The writer. Thread-safe. */
typedef struct ring ring;

/* Creates the ring file at `path` (replacing any old one atomically: it is
 * written under a temporary name, then renamed) with `slots` slots (a power
 * of two in [RING_SLOTS_MIN, RING_SLOTS_MAX]), permissions `mode` and group
 * `gid` if the caller may give it ((gid_t)-1: its own), with a new random
 * epoch, serving_until 0. Returns 0 and hands the ring to *out
 * (the caller owns it; ring_close()), or an errno value with a message
 * naming the file in err. */
int ring_open(ring **out, const char *path, uint64_t slots, mode_t mode, gid_t gid, char *err,
              size_t errlen);

/* Poisons the ring (epoch and serving_until 0, so readers stop serving and
 * look for a new file), unlinks it and frees the writer. Accepts NULL. */
void ring_close(ring *r);

/* Publishes one slot. Call it after the L1 drop it announces. */
void ring_publish(ring *r, enum ring_kind kind, uint64_t ns_hash, uint64_t key_hash);

/* Raises the flush generation: every reader empties its near tier. Call it
 * after L1 was emptied. */
void ring_flush(ring *r);

/* Sets serving_until (CLOCK_MONOTONIC ms; 0: not serving). */
void ring_serve_until(ring *r, int64_t until_ms);

/* Counters, for Stats: slots published, flushes, and the slot count. */
uint64_t ring_published(const ring *r);
uint64_t ring_flushes(const ring *r);
uint64_t ring_slots(const ring *r);

/* A reader: the file mapped read-only. One thread at a time. */
typedef struct ring_reader ring_reader;

/* Maps the ring at `path` and checks its header (magic, layout version,
 * slot size, slot count, file size). Returns 0 and hands the reader to *out
 * (the caller owns it; ring_reader_close()), or an errno value (EPROTO for
 * a file that is not a ring of this layout) with a message in err. */
int ring_reader_open(ring_reader **out, const char *path, char *err, size_t errlen);
void ring_reader_close(ring_reader *r);

/* The header's fields, each read atomically (acquire). */
uint64_t ring_reader_epoch(const ring_reader *r);
uint64_t ring_reader_flush_gen(const ring_reader *r);
uint64_t ring_reader_head(const ring_reader *r);
int64_t ring_reader_serving_until(const ring_reader *r);
uint64_t ring_reader_slots(const ring_reader *r);

/* Reads slot `seq` (1 <= seq <= head) into *out. Returns 1 when it is
 * whole and still that slot, 0 when the writer has overwritten it (the
 * reader was lapped) or is rewriting it. */
int ring_reader_slot(const ring_reader *r, uint64_t seq, ring_slot *out);

/* Whether the file at the reader's path is no longer the one mapped (the
 * daemon restarted and made a new ring). */
int ring_reader_replaced(const ring_reader *r);

#endif
