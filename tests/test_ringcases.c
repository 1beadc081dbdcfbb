/* Conformance: the C near tier (client/near.c over common/ring.c) runs
 * tests/conformance/ring.json as docs/protocol.md ("The reader's
 * scenarios") says a runner does: its layout table against ring.h, its
 * hash and stamp vectors, its reply table against near_keep_of(), and every
 * scenario's steps with the small writer below. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "near.h"
#include "ring.h"
#include "units.h"

static json_t *spec;

static void load(void)
{
    json_error_t e;
    spec = json_load_file(NC_CONFORMANCE_DIR "/ring.json", 0, &e);
    cr_assert_not_null(spec, "ring.json:%d: %s", e.line, e.text);
}

static void unload(void)
{
    json_decref(spec);
}

TestSuite(ringcases, .init = load, .fini = unload, .timeout = 60);

static uint64_t hex64(const char *s)
{
    return strtoull(s, NULL, 16);
}

/* The hash the file gives for a name (never the reader's own function). */
static uint64_t hash_of(const char *name)
{
    json_t *h = json_object_get(json_object_get(spec, "hashes"), name);
    cr_assert(json_is_string(h), "ring.json has no hash for \"%s\"", name);
    return hex64(json_string_value(h));
}

Test(ringcases, the_layout_table_is_ring_h)
{
    static const struct {
        const char *name;
        uint64_t value;
    } ours[] = {
        {"layout", RING_LAYOUT},
        {"slot_size", RING_SLOT_SIZE},
        {"slots_at", RING_SLOTS_AT},
        {"slots_min", RING_SLOTS_MIN},
        {"slots_max", RING_SLOTS_MAX},
        {"layout_at", RING_LAYOUT_AT},
        {"slot_size_at", RING_SLOT_SIZE_AT},
        {"slot_count_at", RING_SLOT_COUNT_AT},
        {"epoch_at", RING_EPOCH_AT},
        {"flush_gen_at", RING_FLUSH_GEN_AT},
        {"head_at", RING_HEAD_AT},
        {"serving_until_at", RING_SERVING_UNTIL_AT},
        {"slot_seq_at", RING_SLOT_SEQ_AT},
        {"slot_kind_at", RING_SLOT_KIND_AT},
        {"slot_ns_hash_at", RING_SLOT_NS_HASH_AT},
        {"slot_key_hash_at", RING_SLOT_KEY_HASH_AT},
        {"kind_key", RING_KEY},
        {"kind_namespace", RING_NAMESPACE},
        {"stamps", RING_STAMPS},
        {"recheck_ms", RING_RECHECK_MS},
    };
    json_t *layout = json_object_get(spec, "layout");
    size_t n = sizeof ours / sizeof ours[0];
    cr_assert_eq(json_object_size(layout), n + 1, "ring.json's layout has names ring.h lacks");
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(layout, ours[i].name);
        cr_assert(json_is_integer(v), "ring.json's layout lacks %s", ours[i].name);
        cr_assert_eq((uint64_t)json_integer_value(v), ours[i].value, "%s: ring.json %lld, ring.h %llu",
                     ours[i].name, json_integer_value(v), (unsigned long long)ours[i].value);
    }
    char magic[17];
    for (int i = 0; i < 8; i++)
        snprintf(magic + 2 * i, 3, "%02x", (unsigned char)RING_MAGIC[i]);
    cr_assert_str_eq(json_string_value(json_object_get(layout, "magic")), magic);
}

Test(ringcases, the_hash_vectors_are_ring_hash)
{
    const char *name;
    json_t *h;
    json_object_foreach(json_object_get(spec, "hashes"), name, h)
    {
        cr_assert_eq(ring_hash(name, strlen(name)), hex64(json_string_value(h)), "\"%s\"", name);
    }
}

Test(ringcases, the_stamp_vectors_are_ring_key_mix)
{
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(spec, "stamps"), i, row)
    {
        const char *ns = json_string_value(json_object_get(row, "ns"));
        uint64_t nsh = ring_hash(ns, strlen(ns));
        cr_assert_eq(nsh % RING_STAMPS, json_integer_value(json_object_get(row, "ns_stamp")), "%s",
                     ns);
        json_t *key = json_object_get(row, "key");
        if (key == NULL)
            continue;
        const char *k = json_string_value(key);
        uint64_t mix = ring_key_mix(nsh, ring_hash(k, strlen(k)));
        cr_assert_eq(mix, hex64(json_string_value(json_object_get(row, "mix"))), "%s/%s", ns, k);
        cr_assert_eq(mix % RING_STAMPS, json_integer_value(json_object_get(row, "key_stamp")),
                     "%s/%s", ns, k);
    }
}

Test(ringcases, the_replies_that_may_fill_the_tier_are_near_keep_of)
{
    static const char *names[] = {"nothing", "value", "negative"};
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(spec, "replies"), i, row)
    {
        near_keep k = near_keep_of(json_is_true(json_object_get(row, "found")),
                                   json_is_true(json_object_get(row, "negative")),
                                   json_is_true(json_object_get(row, "stale")),
                                   strcmp(json_string_value(json_object_get(row, "lease")), "NONE"),
                                   (uint64_t)json_integer_value(json_object_get(row, "ttl_ms")));
        cr_assert_str_eq(names[k], json_string_value(json_object_get(row, "keep")), "%s",
                         json_string_value(json_object_get(row, "name")));
    }
}

/* ---- the scenarios ------------------------------------------------------ */

/* One scenario's world: a directory, the ring file the writer keeps mapped
 * (NULL after raw or before create), the tier, its named tickets. */
typedef struct world {
    char dir[64], path[128];
    unsigned char *map;
    size_t len;
    uint64_t slots;
    near *tier;
    struct {
        char name[16];
        near_ticket t;
    } tickets[8];
    int ntickets;
    const char *where; /* "scenario name, step N" for failures */
} world;

static const char *str(json_t *step, const char *field)
{
    json_t *v = json_object_get(step, field);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t num(json_t *step, const char *field, int64_t def)
{
    json_t *v = json_object_get(step, field);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

static nc_bytes bytes_of(json_t *step, const char *field)
{
    const char *s = str(step, field);
    cr_assert_not_null(s, "a step without \"%s\"", field);
    return (nc_bytes){s, strlen(s)};
}

static void put(world *w, size_t at, uint64_t v, size_t size)
{
    cr_assert_not_null(w->map, "%s: no ring file to write", w->where);
    memcpy(w->map + at, &v, size); /* little-endian, as the layout */
}

static uint64_t get64(world *w, size_t at)
{
    uint64_t v;
    memcpy(&v, w->map + at, 8);
    return v;
}

static void unmap(world *w)
{
    if (w->map != NULL)
        munmap(w->map, w->len);
    w->map = NULL;
}

/* Writes `len` bytes of buf as the ring file: under a temporary name, then
 * renamed over the path (a new file for readers), and maps it. */
static void replace_file(world *w, const void *buf, size_t len)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", w->path);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, buf, len), (ssize_t)len);
    cr_assert_eq(rename(tmp, w->path), 0);
    unmap(w); /* the reader keeps its own mapping of the old file */
    w->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert_neq(w->map, MAP_FAILED);
    w->len = len;
    close(fd);
}

static void w_create(world *w, json_t *step)
{
    w->slots = (uint64_t)num(step, "slots", 64);
    size_t len = (size_t)num(step, "length", (int64_t)(RING_SLOTS_AT + w->slots * RING_SLOT_SIZE));
    unsigned char *buf = calloc(1, len > RING_SLOTS_AT ? len : RING_SLOTS_AT);
    memcpy(buf, RING_MAGIC, 8);
    uint32_t layout = (uint32_t)num(step, "layout", RING_LAYOUT);
    uint32_t slot_size = (uint32_t)num(step, "slot_size", RING_SLOT_SIZE);
    uint64_t epoch = (uint64_t)num(step, "epoch", 1);
    int64_t until = units_now_ms() + num(step, "serving_in_ms", 0);
    memcpy(buf + RING_LAYOUT_AT, &layout, 4);
    memcpy(buf + RING_SLOT_SIZE_AT, &slot_size, 4);
    memcpy(buf + RING_SLOT_COUNT_AT, &w->slots, 8);
    memcpy(buf + RING_EPOCH_AT, &epoch, 8);
    memcpy(buf + RING_SERVING_UNTIL_AT, &until, 8);
    replace_file(w, buf, len);
    free(buf);
}

static void w_raw(world *w, json_t *step)
{
    const char *text = bytes_of(step, "text").data;
    size_t n = strlen(text), times = (size_t)num(step, "repeat", 1);
    char *buf = malloc(n * times + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(buf + i * n, text, n);
    replace_file(w, buf, n * times);
    free(buf);
}

/* The writer's seqlock: seq 0, the fields, seq, then the head. */
static void w_publish(world *w, json_t *step)
{
    const char *key = str(step, "key");
    uint64_t nsh = hash_of(str(step, "ns")), kh = key ? hash_of(key) : 0;
    for (int64_t i = 0, times = num(step, "times", 1); i < times; i++) {
        uint64_t seq = get64(w, RING_HEAD_AT) + 1;
        size_t at = RING_SLOTS_AT + (seq % w->slots) * RING_SLOT_SIZE;
        put(w, at + RING_SLOT_SEQ_AT, 0, 8);
        put(w, at + RING_SLOT_KIND_AT, key ? RING_KEY : RING_NAMESPACE, 4);
        put(w, at + RING_SLOT_NS_HASH_AT, nsh, 8);
        put(w, at + RING_SLOT_KEY_HASH_AT, kh, 8);
        put(w, at + RING_SLOT_SEQ_AT, seq, 8);
        put(w, RING_HEAD_AT, seq, 8);
    }
}

/* Runs one writer step; returns 0 when `op` is not the writer's. */
static int writer_step(world *w, const char *op, json_t *step)
{
    if (strcmp(op, "create") == 0)
        w_create(w, step);
    else if (strcmp(op, "raw") == 0)
        w_raw(w, step);
    else if (strcmp(op, "publish") == 0)
        w_publish(w, step);
    else if (strcmp(op, "flush") == 0)
        put(w, RING_FLUSH_GEN_AT, get64(w, RING_FLUSH_GEN_AT) + 1, 8);
    else if (strcmp(op, "epoch") == 0)
        put(w, RING_EPOCH_AT, (uint64_t)num(step, "epoch", 0), 8);
    else if (strcmp(op, "serve") == 0)
        put(w, RING_SERVING_UNTIL_AT,
            json_object_get(step, "until") ? (uint64_t)num(step, "until", 0)
                                           : (uint64_t)(units_now_ms() + num(step, "in_ms", 0)),
            8);
    else if (strcmp(op, "stop") == 0) {
        put(w, RING_SERVING_UNTIL_AT, 0, 8);
        put(w, RING_EPOCH_AT, 0, 8);
        cr_assert_eq(unlink(w->path), 0);
    } else if (strcmp(op, "tear") == 0)
        put(w, RING_SLOTS_AT + ((uint64_t)num(step, "seq", 0) % w->slots) * RING_SLOT_SIZE, 0, 8);
    else if (strcmp(op, "head") == 0)
        put(w, RING_HEAD_AT, (uint64_t)num(step, "head", 0), 8);
    else
        return 0;
    return 1;
}

static near_ticket *ticket_named(world *w, const char *name)
{
    for (int i = 0; i < w->ntickets; i++)
        if (strcmp(w->tickets[i].name, name) == 0)
            return &w->tickets[i].t;
    cr_assert_lt(w->ntickets, 8);
    snprintf(w->tickets[w->ntickets].name, sizeof w->tickets[0].name, "%s", name);
    return &w->tickets[w->ntickets++].t;
}

static void t_get(world *w, json_t *step)
{
    void *v = NULL;
    size_t len = 0;
    uint64_t ttl = 0;
    int negative = 0;
    int hit = near_get(w->tier, bytes_of(step, "ns"), bytes_of(step, "key"), &v, &len, &ttl,
                       &negative);
    json_t *want = json_object_get(step, "want");
    if (json_is_true(json_object_get(step, "negative")))
        cr_assert(hit && negative, "%s: not a hit of a negative entry", w->where);
    else if (json_is_null(want))
        cr_assert_not(hit, "%s: a hit (%.*s), want a miss", w->where, (int)len,
                      negative ? "negative" : (char *)v);
    else {
        cr_assert(hit && !negative, "%s: a miss, want \"%s\"", w->where, json_string_value(want));
        cr_assert(len == strlen(json_string_value(want)) &&
                      memcmp(v, json_string_value(want), len) == 0,
                  "%s: \"%.*s\", want \"%s\"", w->where, (int)len, (char *)v,
                  json_string_value(want));
    }
    int64_t ttl_max = num(step, "ttl_max", 0);
    if (ttl_max > 0)
        cr_assert(ttl > 0 && ttl <= (uint64_t)ttl_max, "%s: ttl %llu, want (0, %lld]", w->where,
                  (unsigned long long)ttl, (long long)ttl_max);
    free(v);
}

static void t_fill(world *w, json_t *step)
{
    near_ticket fresh, *t = &fresh;
    if (str(step, "ticket") != NULL)
        t = ticket_named(w, str(step, "ticket"));
    else
        fresh = near_take_ticket(w->tier);
    uint64_t ttl = (uint64_t)num(step, "ttl_ms", -1);
    if (json_is_true(json_object_get(step, "negative"))) {
        near_fill_negative(w->tier, t, bytes_of(step, "ns"), bytes_of(step, "key"), ttl);
        return;
    }
    const char *text = bytes_of(step, "value").data;
    size_t n = strlen(text), times = (size_t)num(step, "repeat", 1);
    char *value = malloc(n * times + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(value + i * n, text, n);
    near_fill(w->tier, t, bytes_of(step, "ns"), bytes_of(step, "key"), value, n * times, ttl);
    free(value);
}

static void t_stats(world *w, json_t *step)
{
    nc_near_stats s;
    near_stats(w->tier, &s);
    static const char *names[] = {"hits", "misses", "entries", "flushes", "laps", "fills_refused"};
    uint64_t got[] = {s.hits, s.misses, s.entries, s.flushes, s.laps, s.fills_refused};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (json_object_get(step, names[i]) != NULL)
            cr_assert_eq(got[i], (uint64_t)num(step, names[i], 0), "%s: %s %llu, want %lld",
                         w->where, names[i], (unsigned long long)got[i],
                         (long long)num(step, names[i], 0));
    json_t *serving = json_object_get(step, "serving");
    if (serving != NULL)
        cr_assert_eq(s.serving, json_is_true(serving), "%s: serving %d (%s)", w->where, s.serving,
                     s.problem);
    json_t *problem = json_object_get(step, "problem");
    if (json_is_string(problem))
        cr_assert_str_eq(s.problem, "", "%s: a problem: %s", w->where, s.problem);
    if (json_is_array(problem)) {
        cr_assert_not_null(strstr(s.problem, w->path), "%s: %s", w->where, s.problem);
        size_t i;
        json_t *word;
        json_array_foreach(problem, i, word)
        {
            cr_assert_not_null(strcasestr(s.problem, json_string_value(word)),
                               "%s: \"%s\" does not say \"%s\"", w->where, s.problem,
                               json_string_value(word));
        }
    }
}

/* Runs one step of the tier under test. */
static void tier_step(world *w, const char *op, json_t *step)
{
    if (strcmp(op, "open") == 0)
        cr_assert_eq(near_open(&w->tier, w->path, (size_t)num(step, "max_bytes", 1 << 20),
                               num(step, "max_ttl_ms", 60000)),
                     NC_OK);
    else if (strcmp(op, "get") == 0)
        t_get(w, step);
    else if (strcmp(op, "ticket") == 0)
        *ticket_named(w, str(step, "name")) = near_take_ticket(w->tier);
    else if (strcmp(op, "fill") == 0)
        t_fill(w, step);
    else if (strcmp(op, "drop") == 0)
        near_drop(w->tier, bytes_of(step, "ns"), bytes_of(step, "key"));
    else if (strcmp(op, "drop_ns") == 0)
        near_drop_ns(w->tier, bytes_of(step, "ns"));
    else if (strcmp(op, "forget") == 0)
        near_forget(w->tier);
    else if (strcmp(op, "sleep") == 0)
        usleep((useconds_t)num(step, "ms", 0) * 1000);
    else if (strcmp(op, "stats") == 0)
        t_stats(w, step);
    else
        cr_assert_fail("%s: unknown op \"%s\"", w->where, op);
}

static void run_scenario(json_t *sc)
{
    world w = {0};
    snprintf(w.dir, sizeof w.dir, "/tmp/nc-test-ringcases-XXXXXX");
    cr_assert_not_null(mkdtemp(w.dir));
    snprintf(w.path, sizeof w.path, "%s/nc.sock.ring", w.dir);
    char where[256];
    w.where = where;
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(sc, "steps"), i, step)
    {
        const char *op = str(step, "op");
        snprintf(where, sizeof where, "%s, step %zu (%s)",
                 json_string_value(json_object_get(sc, "name")), i + 1, op ? op : "no op");
        cr_assert_not_null(op, "%s", where);
        if (!writer_step(&w, op, step)) {
            cr_assert(w.tier != NULL || strcmp(op, "open") == 0, "%s: no tier open", where);
            tier_step(&w, op, step);
        }
    }
    near_close(w.tier);
    unmap(&w);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", w.dir);
    cr_assert_eq(system(cmd), 0);
}

Test(ringcases, every_scenario_runs_as_the_file_says)
{
    size_t i;
    json_t *sc;
    json_t *all = json_object_get(spec, "scenarios");
    cr_assert_gt(json_array_size(all), 0);
    json_array_foreach(all, i, sc)
    {
        run_scenario(sc);
    }
}
