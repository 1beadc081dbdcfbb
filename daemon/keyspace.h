/* keyspace: every key format of the cache, in one place: nothing else
 * names a key, a companion or a channel (the scripts get every key in
 * KEYS[], built here). In L1 a key is "NS:KEY". In Redis, under the
 * configured PREFIX:
 *   PREFIX:nsver:NS                 the namespace's version (never goes
 *                                   back: l2.c)
 *   PREFIX:{TAG}:NS:VER:KEY         the value, under that version
 *   PREFIX:{TAG}:NS:VER<kind>:KEY   its companions: lease (a lease token),
 *                                   neg (known absent), swr (when a stale-
 *                                   while-revalidate value stops being fresh)
 *   PREFIX:inval                    the invalidation channel (one server)
 *   {PREFIX:inval:N}                the invalidation channels of a Cluster,
 *                                   one per bucket of slots (below)
 * TAG is eight hex digits of the FNV-1a hash of NS ":" KEY: a Redis Cluster
 * hash tag (a prefix has no braces, so it is the key's first), so an
 * entry's keys share one slot and a namespace's entries spread over all.
 * A namespace has no ':' and a version is digits, so no companion can be
 * another namespace's data key. Pure: no I/O, no allocation but
 * ks_l1_key's. */
#ifndef NC_KEYSPACE_H
#define NC_KEYSPACE_H

#include <stddef.h>
#include <stdint.h>

/* The longest key prefix (the `prefix` setting) and namespace (the ceiling
 * of `max_namespace_size`): config.c checks against these, and the buffers
 * below are sized from them. */
#define KS_PREFIX_MAX 100
#define KS_NS_MAX     1024
/* The longest PREFIX:nsver:NS, and the longest channel name (PREFIX:inval,
 * or a Cluster's {PREFIX:inval:N}) with its NUL. */
#define KS_NSVER_KEY_MAX (KS_PREFIX_MAX + sizeof ":nsver:" - 1 + KS_NS_MAX)
#define KS_CHANNEL_SIZE  (KS_PREFIX_MAX + sizeof "{:inval:4294967295}")
/* The longest {PREFIX:inval}:NODE (a node id is at most 64 bytes) with its NUL,
 * and the longest {PREFIX:inval:N}:NODE likewise. */
#define KS_OWN_CHANNEL_SIZE (KS_CHANNEL_SIZE + 3 + 64)

/* ---- L1 ---------------------------------------------------------------- */

/* An L1 key "NS:KEY", on the stack when it fits. */
typedef struct ks_l1_key {
    char *buf;
    size_t len;
    char inline_buf[1280];
} ks_l1_key;

/* Builds the L1 key of ns and key (klen 0: the namespace's prefix "NS:").
 * Returns 0, or ENOMEM. Free with ks_l1_key_free(). */
int ks_l1_key_make(ks_l1_key *k, const void *ns, size_t nslen, const void *key, size_t klen);
void ks_l1_key_free(ks_l1_key *k);

/* The length of the namespace in an L1 key (namespaces have no ':'). */
size_t ks_l1_key_ns_len(const void *l1key, size_t len);

/* ---- Redis ------------------------------------------------------------- */

/* The companions of a data key. */
enum ks_kind { KS_DATA, KS_SWR, KS_NEG, KS_LEASE };

/* PREFIX:nsver:NS into buf (at least KS_NSVER_KEY_MAX bytes). Returns its
 * length, or 0 (nothing written) when the prefix is longer than
 * KS_PREFIX_MAX or the namespace longer than KS_NS_MAX. */
size_t ks_nsver_key(char *buf, const char *prefix, const void *ns, size_t nslen);

/* The length of an entry's hash tag, "{xxxxxxxx}". */
#define KS_TAG_LEN 10

/* The hash tag of ns and key into buf (KS_TAG_LEN bytes, no NUL). */
void ks_tag(char *buf, const void *ns, size_t nslen, const void *key, size_t klen);

/* The length of PREFIX:{TAG}:NS:VER<kind>:KEY for the longest kind: a
 * buffer of this size holds any of them. */
size_t ks_data_key_max(const char *prefix, size_t nslen, uint64_t version, size_t klen);

/* PREFIX:{TAG}:NS:VER<kind>:KEY into buf (ks_data_key_max() bytes).
 * Returns its length. */
size_t ks_data_key(char *buf, const char *prefix, const void *ns, size_t nslen, uint64_t version,
                   enum ks_kind kind, const void *key, size_t klen);

/* Redis Cluster's hash slots, and the slot of a key: CRC16 (XMODEM) of
 * its hash tag (what is between the first '{' and the next '}', when that
 * is not empty) or else of the whole key, mod KS_SLOTS. */
#define KS_SLOTS 16384
unsigned ks_slot(const void *key, size_t len);

/* PREFIX:inval into buf. Returns what snprintf() returns. */
int ks_channel(char *buf, size_t size, const char *prefix);

/* {PREFIX:inval}:NODE into buf: the channel only node NODE subscribes to,
 * for its heartbeats to itself; its hash tag puts it in the slot of
 * PREFIX:inval, so that on a Cluster both are one shard's channels.
 * Returns what snprintf() returns. */
int ks_own_channel(char *buf, size_t size, const char *prefix, const char *node);


/* ---- a Cluster's invalidation channels ----------------------------------
 * On a Cluster the slots are cut into KS_INVAL_BUCKETS buckets of
 * consecutive slots, and bucket b has one channel, {PREFIX:inval:N} with the
 * smallest N whose slot lies in b, and one per node for its heartbeats to
 * itself, {PREFIX:inval:N}:NODE (same slot). The names do not depend on
 * the slot map: every daemon subscribes to all of them (on whichever master
 * serves each one's slot) and publishes a key's invalidation on a bucket
 * of the key's master, so daemons whose maps disagree for a moment still
 * hear each other (docs/coherence.md, "Invalidations on a Cluster"). */
#define KS_INVAL_BUCKETS 64

/* The bucket of a slot. */
unsigned ks_inval_bucket(unsigned slot);

/* Fills n_of[b], for every bucket b, with the N of its channel under
 * `prefix` (at most KS_PREFIX_MAX bytes). */
void ks_inval_tags(const char *prefix, unsigned n_of[KS_INVAL_BUCKETS]);

/* {PREFIX:inval:N} into buf (KS_OWN_CHANNEL_SIZE bytes hold it), or with
 * `node` not NULL {PREFIX:inval:N}:NODE. Returns what snprintf() returns. */
int ks_inval_channel(char *buf, size_t size, const char *prefix, unsigned n, const char *node);

#endif
