/* The near tier's invalidation ring; see ring.h. The writer serializes
 * publishers with a mutex; readers take no lock, only the seqlock per slot. */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct header {
    char magic[8];
    uint32_t layout;
    uint32_t slot_size;
    uint64_t slots;
    _Atomic uint64_t epoch;
    _Atomic uint64_t flush_gen;
    char pad0[24];
    _Atomic uint64_t head; /* its own cache line: written at every publish */
    char pad1[56];
    _Atomic int64_t serving_until;
    char pad2[56];
} header;

typedef struct slot {
    _Atomic uint64_t seq;
    _Atomic uint32_t kind;
    uint32_t zero;
    _Atomic uint64_t ns_hash;
    _Atomic uint64_t key_hash;
} slot;

_Static_assert(sizeof(header) == RING_SLOTS_AT, "the header is 192 bytes");
_Static_assert(offsetof(header, layout) == RING_LAYOUT_AT &&
                   offsetof(header, slot_size) == RING_SLOT_SIZE_AT &&
                   offsetof(header, slots) == RING_SLOT_COUNT_AT,
               "the header's offsets are ring.h's");
_Static_assert(offsetof(header, epoch) == RING_EPOCH_AT &&
                   offsetof(header, flush_gen) == RING_FLUSH_GEN_AT &&
                   offsetof(header, head) == RING_HEAD_AT &&
                   offsetof(header, serving_until) == RING_SERVING_UNTIL_AT,
               "the header's offsets are ring.h's");
_Static_assert(sizeof(slot) == RING_SLOT_SIZE && offsetof(slot, seq) == RING_SLOT_SEQ_AT &&
                   offsetof(slot, kind) == RING_SLOT_KIND_AT &&
                   offsetof(slot, ns_hash) == RING_SLOT_NS_HASH_AT &&
                   offsetof(slot, key_hash) == RING_SLOT_KEY_HASH_AT,
               "a slot is ring.h's 32 bytes");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the ring needs lock-free 64-bit atomics");

struct ring {
    pthread_mutex_t mu; /* serializes publishers */
    header *h;
    slot *s;
    size_t len;
    uint64_t mask;
    dev_t dev;
    ino_t ino;
    _Atomic uint64_t published, flushes;
    char path[];
};

struct ring_reader {
    const header *h;
    const slot *s;
    size_t len;
    uint64_t mask;
    dev_t dev;
    ino_t ino;
    char path[];
};

uint64_t ring_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(1099511628211);
    return h;
}

uint64_t ring_key_mix(uint64_t ns_hash, uint64_t key_hash)
{
    uint64_t x = ns_hash ^ (key_hash * UINT64_C(0x9e3779b97f4a7c15));
    return x ^ (x >> 29);
}

int ring_default_path(const char *url, char *buf, size_t len)
{
    if (len > 0)
        buf[0] = '\0';
    if (strncmp(url, "ipc://", 6) != 0)
        return 0;
    if (snprintf(buf, len, "%s%s", url + 6, RING_SUFFIX) < (int)len)
        return 1;
    if (len > 0)
        buf[0] = '\0';
    return 0;
}

static size_t ring_size(uint64_t slots)
{
    return RING_SLOTS_AT + (size_t)slots * RING_SLOT_SIZE;
}

static uint64_t new_epoch(void)
{
    uint64_t e = 0;
    while (e == 0)
        if (getrandom(&e, sizeof e, 0) != (ssize_t)sizeof e)
            e = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL); /* no entropy yet: still new */
    return e;
}

int ring_open(ring **out, const char *path, uint64_t slots, mode_t mode, gid_t gid, char *err,
              size_t errlen)
{
    if (slots < RING_SLOTS_MIN || slots > RING_SLOTS_MAX || (slots & (slots - 1)) != 0) {
        snprintf(err, errlen, "near ring %s: %llu slots: not a power of two in [%u, %u]", path,
                 (unsigned long long)slots, RING_SLOTS_MIN, RING_SLOTS_MAX);
        return EINVAL;
    }
    size_t plen = strlen(path), len = ring_size(slots);
    ring *r = calloc(1, sizeof *r + plen + 1);
    char *tmp = malloc(plen + 32);
    int fd = -1, rv = ENOMEM;
    struct stat st;
    if (r == NULL || tmp == NULL)
        goto fail;
    memcpy(r->path, path, plen + 1);
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    unlink(tmp);
    /* Allocated, not a sparse ftruncate(): on a full file system a write
     * to a page of a hole in the mapping is a SIGBUS, not an error. */
    if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
        fchmod(fd, mode) != 0 || (errno = posix_fallocate(fd, 0, (off_t)len)) != 0 ||
        fstat(fd, &st) != 0)
        goto fail_errno;
    if (gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) != 0)
        gid = (gid_t)-1; /* not the caller's to give: the ring keeps the caller's group */
    r->h = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (r->h == MAP_FAILED) {
        r->h = NULL;
        goto fail_errno;
    }
    memcpy(r->h->magic, RING_MAGIC, 8);
    r->h->layout = RING_LAYOUT;
    r->h->slot_size = RING_SLOT_SIZE;
    r->h->slots = slots;
    atomic_store(&r->h->epoch, new_epoch());
    if (rename(tmp, path) != 0)
        goto fail_errno;
    close(fd);
    free(tmp);
    r->s = (slot *)((char *)r->h + RING_SLOTS_AT);
    r->len = len;
    r->mask = slots - 1;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return 0;
fail_errno:
    rv = errno;
    snprintf(err, errlen, "near ring %s: %s", path, strerror(rv));
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    if (r->h != NULL)
        munmap(r->h, len);
fail:
    if (rv == ENOMEM)
        snprintf(err, errlen, "near ring %s: out of memory", path);
    free(tmp);
    free(r);
    return rv;
}

void ring_close(ring *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->h->serving_until, 0);
    atomic_store(&r->h->epoch, 0);
    struct stat st;
    if (stat(r->path, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino)
        unlink(r->path); /* only our own file: another daemon may have replaced it */
    munmap(r->h, r->len);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void ring_publish(ring *r, enum ring_kind kind, uint64_t ns_hash, uint64_t key_hash)
{
    pthread_mutex_lock(&r->mu);
    uint64_t seq = atomic_load_explicit(&r->h->head, memory_order_relaxed) + 1;
    slot *s = &r->s[seq & r->mask];
    atomic_store_explicit(&s->seq, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* a reader seeing new fields sees seq 0 */
    atomic_store_explicit(&s->kind, (uint32_t)kind, memory_order_relaxed);
    atomic_store_explicit(&s->ns_hash, ns_hash, memory_order_relaxed);
    atomic_store_explicit(&s->key_hash, key_hash, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq, memory_order_release);
    atomic_store_explicit(&r->h->head, seq, memory_order_release);
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add_explicit(&r->published, 1, memory_order_relaxed);
}

void ring_flush(ring *r)
{
    atomic_fetch_add_explicit(&r->h->flush_gen, 1, memory_order_release);
    atomic_fetch_add_explicit(&r->flushes, 1, memory_order_relaxed);
}

void ring_serve_until(ring *r, int64_t until_ms)
{
    atomic_store_explicit(&r->h->serving_until, until_ms, memory_order_release);
}

uint64_t ring_published(const ring *r)
{
    return atomic_load_explicit(&((ring *)r)->published, memory_order_relaxed);
}

uint64_t ring_flushes(const ring *r)
{
    return atomic_load_explicit(&((ring *)r)->flushes, memory_order_relaxed);
}

uint64_t ring_slots(const ring *r)
{
    return r->mask + 1;
}

int ring_reader_open(ring_reader **out, const char *path, char *err, size_t errlen)
{
    size_t plen = strlen(path);
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        int rv = errno;
        snprintf(err, errlen, "near ring %s: %s", path, strerror(rv));
        if (fd >= 0)
            close(fd);
        return rv;
    }
    size_t len = (size_t)st.st_size;
    const header *h = len >= RING_SLOTS_AT ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) : NULL;
    close(fd);
    const char *problem = NULL;
    if (h == NULL)
        problem = "too short for a ring header";
    else if (h == MAP_FAILED)
        problem = strerror(errno), h = NULL;
    else if (memcmp(h->magic, RING_MAGIC, 8) != 0)
        problem = "not a near ring (bad magic)";
    else if (h->layout != RING_LAYOUT)
        problem = "a ring of another layout version";
    else if (h->slot_size != RING_SLOT_SIZE || h->slots < RING_SLOTS_MIN ||
             h->slots > RING_SLOTS_MAX || (h->slots & (h->slots - 1)) != 0)
        problem = "a ring header with a bad slot size or count";
    else if (len < ring_size(h->slots))
        problem = "truncated: shorter than its slots";
    ring_reader *r = problem == NULL ? calloc(1, sizeof *r + plen + 1) : NULL;
    if (r == NULL) {
        snprintf(err, errlen, "near ring %s: %s", path, problem ? problem : "out of memory");
        if (h != NULL)
            munmap((void *)h, len);
        return problem ? EPROTO : ENOMEM;
    }
    r->h = h;
    r->s = (const slot *)((const char *)h + RING_SLOTS_AT);
    r->len = len;
    r->mask = h->slots - 1;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    memcpy(r->path, path, plen + 1);
    *out = r;
    return 0;
}

void ring_reader_close(ring_reader *r)
{
    if (r == NULL)
        return;
    munmap((void *)r->h, r->len);
    free(r);
}

/* The mapping is read-only: loads only, through a non-const view. */
#define LOAD(field) atomic_load_explicit((__typeof__(field) *)&(field), memory_order_acquire)

uint64_t ring_reader_epoch(const ring_reader *r)
{
    return LOAD(r->h->epoch);
}

uint64_t ring_reader_flush_gen(const ring_reader *r)
{
    return LOAD(r->h->flush_gen);
}

uint64_t ring_reader_head(const ring_reader *r)
{
    return LOAD(r->h->head);
}

int64_t ring_reader_serving_until(const ring_reader *r)
{
    return LOAD(r->h->serving_until);
}

uint64_t ring_reader_slots(const ring_reader *r)
{
    return r->mask + 1;
}

int ring_reader_slot(const ring_reader *r, uint64_t seq, ring_slot *out)
{
    slot *s = (slot *)&r->s[seq & r->mask];
    if (atomic_load_explicit(&s->seq, memory_order_acquire) != seq)
        return 0;
    out->seq = seq;
    out->kind = atomic_load_explicit(&s->kind, memory_order_relaxed);
    out->ns_hash = atomic_load_explicit(&s->ns_hash, memory_order_relaxed);
    out->key_hash = atomic_load_explicit(&s->key_hash, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire); /* the fields are read before seq again */
    return atomic_load_explicit(&s->seq, memory_order_relaxed) == seq;
}

int ring_reader_replaced(const ring_reader *r)
{
    struct stat st;
    return stat(r->path, &st) != 0 || st.st_dev != r->dev || st.st_ino != r->ino;
}
