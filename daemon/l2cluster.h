/* l2cluster: routing over a Redis Cluster, on top of l2conn (hiredis 0.14
 * knows no Cluster). A handle keeps the slot map (which master serves each
 * of the 16384 slots, from CLUSTER SHARDS, or CLUSTER SLOTS where a node
 * refuses that) and one l2conn per master, and
 * sends each command to the master of its key's slot (keyspace's
 * ks_slot()). A MOVED answer (the slot has moved for good) records the new
 * owner, reloads the whole map and sends the command again; an ASK answer
 * (the slot is being migrated, and this key is already on the target) sends
 * ASKING then the command on the target, once, leaving the map as it is; a
 * TRYAGAIN (a multi-key command whose keys the migration split) waits a
 * moment and sends it again, as does a second MOVED for one command (the
 * nodes disagree while a migration's SETSLOT NODE reaches them one by
 * one) and a CLUSTERDOWN (a failover under way; the map is loaded again
 * first). At most L2CLUSTER_REDIRECTS redirections per
 * command. A connection that fails makes the next command reload the map
 * first (the master may have failed over to its replica). A handle is used
 * by one thread at a time, like an l2conn. */
#ifndef NC_L2CLUSTER_H
#define NC_L2CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "l2conn.h"

#define L2CLUSTER_REDIRECTS 5
#define L2CLUSTER_MAX_NODES 128

typedef struct l2cluster l2cluster;

/* What a handle has done since it was made, for tests and Stats. */
typedef struct l2cluster_counts {
    uint64_t moved;    /* MOVED answers followed */
    uint64_t asked;    /* ASK answers followed */
    uint64_t tryagain; /* TRYAGAIN and CLUSTERDOWN answers waited out */
    uint64_t reloads;  /* slot maps loaded */
} l2cluster_counts;

/* Makes a handle for a cluster:// url (url->nseeds > 0; copied), with the
 * connect timeout of every node's connection. Connects to nothing yet.
 * Returns 0 and hands it to *out (free with l2cluster_destroy()), or ENOMEM
 * or EINVAL (not a cluster:// url). */
int l2cluster_create(l2cluster **out, const config_redis_url *url, int64_t connect_timeout_ms,
                     const char *name);
void l2cluster_destroy(l2cluster *cl);

/* Runs fn on every node connection when it connects (l2conn_set_setup()),
 * those made later included. */
void l2cluster_set_setup(l2cluster *cl, l2conn_setup_fn fn, void *arg);

/* Loads the slot map from the first node that answers CLUSTER SHARDS (or,
 * once one refused it, CLUSTER SLOTS): the
 * masters known, then the URL's nodes. Returns L2_OK, or L2_EDOWN with the
 * reason in l2cluster_error(). */
l2_status l2cluster_reload(l2cluster *cl);

/* l2conn_run() on the master of `slot` (loading the map first if it has
 * none), following MOVED, ASK and TRYAGAIN as above. `once`: the command
 * must never run twice (a redirection is sent again: Redis refused it, so it
 * did not run). Returns the reply or NULL with *status set and the message
 * in l2cluster_error(). */
redisReply *l2cluster_run(l2cluster *cl, unsigned slot, int64_t timeout_ms, int once,
                          l2_status *status, int argc, const char **argv, const size_t *lens);

/* The connection to the master of `slot` as the map says (NULL: the map
 * names none), for a caller that sends several commands there itself. */
l2conn *l2cluster_conn(l2cluster *cl, unsigned slot);

/* The distinct masters the map names, into addrs (at most n; "host:port"
 * strings owned by the handle, valid until its next reload). Returns how
 * many there are. */
size_t l2cluster_masters(l2cluster *cl, const char **addrs, size_t n);

/* The map as it stands: the URL of each distinct master into urls[] (at
 * most n, each the cluster URL's settings with that master's address) and,
 * for each of the KS_SLOTS slots, the index of its master in urls[] into
 * owner[] (-1: none, or past n). Returns how many masters there are. */
size_t l2cluster_layout(const l2cluster *cl, int16_t *owner, config_redis_url *urls, size_t n);

/* The map as it stands, by node: for each of the KS_SLOTS slots, an index
 * that is the same for every slot of one master and stays that node's for
 * the handle's life (-1: no master serves it), into owner[]. Returns how
 * many indexes may appear (every one is below it). */
int l2cluster_owners(const l2cluster *cl, int16_t *owner);

/* The message of the last failure. */
const char *l2cluster_error(const l2cluster *cl);

l2cluster_counts l2cluster_counters(const l2cluster *cl);

/* l2conn_maybe_ran() of the connection the last command was sent on. */
int l2cluster_maybe_ran(const l2cluster *cl);

/* The connection the last command was sent on (NULL: none), for a WAIT
 * after a write. */
l2conn *l2cluster_last(const l2cluster *cl);

#endif
