/* Fuzz target: libnearcache's near tier reading a ring file that someone
 * else writes and that changes under it. The input is a program of steps
 * run in one thread, so every crash reproduces: the daemon's side (publish
 * a key or a namespace, flush, set serving_until, replace the file as a
 * restart does) and a hostile writer's (any bytes at any offset of the
 * file, header or slots), interleaved with the reader's (lookups, tickets,
 * fills, drops). While only the daemon's side has written, the near tier
 * must never serve a key after a slot named it, unless a fill with a
 * ticket taken after that slot put it back. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "near.h"
#include "ring.h"
#include "units.h"

#define KEYS 4

static char path[128];
static ring *writer;
static int fd = -1;

static void remove_ring(void)
{
    ring_close(writer);
}

/* (Re)creates the ring file, as a daemon's start does. */
static void new_ring(void)
{
    char err[256];
    ring_close(writer);
    if (fd >= 0)
        close(fd);
    if (ring_open(&writer, path, RING_SLOTS_MIN, 0600, (gid_t)-1, err, sizeof err) != 0 ||
        (fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
        abort();
}

static const char *ns_of(unsigned k)
{
    return k < KEYS / 2 ? "users" : "orders";
}

static const char *key_of(unsigned k)
{
    static const char *keys[KEYS] = {"42", "43", "1", "2"};
    return keys[k];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (path[0] == '\0') {
        snprintf(path, sizeof path, "/tmp/nc-fuzz-ring-%d.ring", (int)getpid());
        atexit(remove_ring);
    }
    new_ring();
    ring_serve_until(writer, units_now_ms() + 60000);
    near *n;
    if (near_open(&n, path, 1 << 16, 60000) != NC_OK)
        abort();
    int hostile = 0;               /* the file holds bytes the daemon did not write */
    uint64_t step = 0, ticket_step = 0, named_at[KEYS] = {0};
    near_ticket ticket = near_take_ticket(n);
    for (size_t i = 0; i + 1 < size; i += 2, step++) {
        unsigned op = data[i] % 10, k = (data[i + 1] >> 4) % KEYS;
        nc_bytes ns = NC_STR(ns_of(k)), key = NC_STR(key_of(k));
        void *value;
        size_t len;
        uint64_t ttl;
        int negative;
        switch (op) {
        case 0: /* a lookup */
            if (near_get(n, ns, key, &value, &len, &ttl, &negative)) {
                if (!hostile)
                    FUZZ_CHECK(named_at[k] == 0);
                free(value);
            }
            break;
        case 1: /* a ticket, taken before a request is sent */
            ticket = near_take_ticket(n);
            ticket_step = step;
            break;
        case 2: /* the reply comes: fill with the ticket */
            near_fill(n, &ticket, ns, key, "value", 5, 60000);
            if (named_at[k] <= ticket_step)
                named_at[k] = 0;
            break;
        case 3:
            near_fill_negative(n, &ticket, ns, key, 60000);
            if (named_at[k] <= ticket_step)
                named_at[k] = 0;
            break;
        case 4: /* the daemon invalidates the key */
            ring_publish(writer, RING_KEY, ring_hash(ns.data, ns.len), ring_hash(key.data, key.len));
            named_at[k] = step + 1;
            break;
        case 5: /* ... or its namespace */
            ring_publish(writer, RING_NAMESPACE, ring_hash(ns.data, ns.len), 0);
            for (unsigned j = 0; j < KEYS; j++)
                if (strcmp(ns_of(j), ns_of(k)) == 0)
                    named_at[j] = step + 1;
            break;
        case 6: /* ... or empties its L1 */
            ring_flush(writer);
            for (unsigned j = 0; j < KEYS; j++)
                named_at[j] = step + 1;
            break;
        case 7: /* serving or not */
            ring_serve_until(writer, data[i + 1] & 1 ? units_now_ms() + 60000 : 0);
            break;
        case 8: { /* a hostile writer: the low nibble's bytes at an offset */
            size_t at = (size_t)data[i + 1] * 11 % (RING_SLOTS_AT + RING_SLOTS_MIN * RING_SLOT_SIZE);
            size_t nb = data[i + 1] & 15;
            if (nb > size - i - 2)
                nb = size - i - 2;
            if (pwrite(fd, data + i + 2, nb, (off_t)at) != (ssize_t)nb)
                abort();
            i += nb;
            hostile = 1;
            break;
        }
        case 9: /* the daemon restarts: a new file, the old one poisoned */
            new_ring();
            ring_serve_until(writer, units_now_ms() + 60000);
            hostile = 0;
            break;
        }
        if (op == 0 || op == 2 || op == 3)
            continue;
        if (data[i + 1] & 1)
            near_drop(n, ns, key);
    }
    near_close(n);
    return 0;
}
