/* Test harness: real redis-server and nearcached processes for integration
 * tests. Each process runs in its own temporary directory, on a free
 * loopback port or IPC path, dies with the test process (PR_SET_PDEATHSIG)
 * and is stopped by pid. Functions assert (criterion) on failure, so a test
 * reads as the story it tells. */
#ifndef NC_HARNESS_H
#define NC_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"
#include "nearcache.h"

/* Certificates for TLS tests, made by h_tls_make() with openssl in a
 * temporary directory: file paths. Every certificate but other_server is
 * signed by `ca`; server, other_server and expired name localhost and
 * 127.0.0.1; wrong names other.example only; expired ran out in 2020. */
typedef struct h_tls {
    char dir[256];
    char ca[300], other_ca[300];
    char server[300], server_key[300];
    char other_server[300], other_server_key[300]; /* signed by other_ca */
    char wrong[300], wrong_key[300];
    char expired[300], expired_key[300];
    char client[300], client_key[300];
} h_tls;

/* Makes the certificates (asserts success). */
void h_tls_make(h_tls *t);
/* Removes them. */
void h_tls_cleanup(h_tls *t);

typedef struct h_redis {
    pid_t pid;
    int port;
    char dir[256];
    char url[128];     /* redis://127.0.0.1:PORT, or as h_redis_protect() makes it */
    char password[32]; /* what h_redis_cmd() authenticates with; empty: none */
    char user[32];     /* the user h_redis_cmd() logs in as; empty: default */
    int least_privilege; /* h_redis_least_privilege() was called: kept on restart */
    /* TLS (h_redis_start_tls()): Redis serves TLS on tls_port with these
     * files; daemons started on it trust tls_ca (and present client/key
     * when set). tls_only: no plain port (port is tls_port, and
     * h_redis_cmd() goes over TLS too). */
    int tls_port, tls_only, tls_auth_clients;
    char tls_cert[300], tls_key[300], tls_ca[300], tls_client[300], tls_client_key[300];
} h_redis;

typedef struct h_daemon {
    pid_t pid;
    char dir[256];
    char url[300]; /* ipc://DIR/nc.sock */
    char log[300]; /* DIR/nearcached.log: its stderr */
} h_daemon;

/* Starts redis-server on a free port; waits until it answers PING. */
void h_redis_start(h_redis *r);
/* Starts redis-server with TLS, serving cert/key and trusting t->ca for
 * client certificates (required when auth_clients), and, unless tls_only,
 * a plain port as well for the test's own commands. r->url is
 * rediss://127.0.0.1:TLS_PORT. With $NC_TEST_REDIS_TLS set, h_redis_start()
 * does this (server certificate, a plain port too) with certificates made
 * once per process, so any test runs over TLS unchanged. */
void h_redis_start_tls(h_redis *r, const h_tls *t, const char *cert, const char *key, int tls_only,
                       int auth_clients);
/* Starts it again on the same port and directory (after a stop or kill). */
void h_redis_restart(h_redis *r);
/* SIGKILL (hard = 1) or SIGTERM, then waits for the process. */
void h_redis_stop(h_redis *r, int hard);
/* Stops it (SIGKILL) and removes its directory. */
void h_redis_cleanup(h_redis *r);
/* Sets a password on the running Redis (requirepass), and makes r->url
 * say it and database `db`, for the daemons started after. */
void h_redis_protect(h_redis *r, const char *password, int db);
/* Makes r's default user, the one a daemon's redis://:PASSWORD@ URL logs in
 * as, least-privileged: exactly the rules of docs/redis-acl.txt, with
 * `password`; the harness's own commands (h_redis_cmd()) go as the user
 * nc-admin from then on. r->url says the password, for the daemons started
 * after; h_redis_restart() applies it again. h_redis_sleep() cannot be
 * used with it. */
void h_redis_least_privilege(h_redis *r, const char *password);
/* Runs a Redis command (argv style, NULL-terminated) through redis-cli and
 * returns its output, trimmed (the caller frees it). */
char *h_redis_cmd(const h_redis *r, ...);
/* The version Redis holds for namespace `ns` under the prefix nc:v1 (its
 * PREFIX:nsver:NS key), or 0 when it holds none. */
uint64_t h_nsver(const h_redis *r, const char *ns);
/* The data key of (ns, key) under the prefix nc:v1 and the version Redis
 * holds (h_key_at() under nc:v1), into buf (n bytes); returns buf. A namespace
 * without a version is given 1 first, as a daemon would give it one. */
char *h_data_key(const h_redis *r, char *buf, size_t n, const char *ns, const char *key);
/* The Redis key of (ns, key) under `prefix` and `version`, as keyspace.c
 * names it, NUL-terminated into buf (n bytes); returns buf. */
char *h_key_at(char *buf, size_t n, const char *prefix, const char *ns, uint64_t version,
               const char *key);
/* h_data_key() into a buffer that lives until the end of the enclosing block. */
#define H_DATA_KEY(r, ns, key) h_data_key((r), (char[300]){0}, 300, (ns), (key))
/* Starts `redis-cli DEBUG SLEEP secs` in a child and gives Redis settle_ms
 * to fall asleep; returns the child's pid, for waitpid(). */
pid_t h_redis_sleep(const h_redis *r, const char *secs, int settle_ms);

/* Starts nearcached against `r` (NULL: an unreachable Redis) with extra
 * flags (NULL-terminated); waits until it answers Ping and, when `r` is
 * running, until it serves from L1 (subscribed and caught up). */
void h_daemon_start(h_daemon *d, const h_redis *r, ...);
/* Starts it again, after a stop or a kill, in the same directory and on the
 * same URL, with the given flags. */
void h_daemon_restart(h_daemon *d, const h_redis *r, ...);
/* Makes d's directory and names its URL and log, starting nothing: for a
 * test that writes files there before h_daemon_exec(). */
void h_daemon_prepare(h_daemon *d);
/* Starts nearcached with exactly these arguments (NULL-terminated; none of
 * the harness's own), its output in d->log, and waits until it answers Ping
 * at d->url. */
void h_daemon_exec(h_daemon *d, ...);
/* SIGTERM, waits, and returns the exit status (-1: killed by a signal). On
 * exit 0 its directory is removed; otherwise it stays for the log. */
int h_daemon_stop(h_daemon *d);
/* The same with another signal (SIGINT...). */
int h_daemon_stop_with(h_daemon *d, int sig);
/* Whether the daemon process is still running. */
int h_daemon_alive(const h_daemon *d);

/* What most integration tests stand on: one redis-server and daemons on it,
 * each with a client (h_client()). node[i] and cl[i] go together. */
/* A Redis Cluster on loopback: `masters` nodes and `replicas` replicas of
 * each (redis-cli --cluster create), into nodes[] (the masters first),
 * waited for until every node says cluster_state:ok. Returns how many
 * nodes it started. */
int h_cluster_start(h_redis *nodes, int masters, int replicas);
/* Stops and removes the n nodes. */
void h_cluster_stop(h_redis *nodes, int n);
/* Moves `slot` (which must hold keys) from the master of masters[0..n)
 * holding it to the next one, as redis-cli --cluster reshard does:
 * IMPORTING and MIGRATING, MIGRATE of its keys until the source holds none
 * (pause_ms after each key: a load may run between), then SETSLOT NODE on
 * the target, the source and the others. Returns the target's index and
 * the source's in *src. */
int h_cluster_move_slot(h_redis *masters, int n, unsigned slot, int pause_ms, int *src);

#define H_MAX_NODES 4
typedef struct h_fleet {
    h_redis redis;
    int n; /* daemons started */
    h_daemon node[H_MAX_NODES];
    nc_client *cl[H_MAX_NODES];
} h_fleet;

/* Starts Redis, then n daemons (0 to H_MAX_NODES) on it, each with the
 * same extra flags (NULL-terminated) and a client. */
void h_fleet_start(h_fleet *f, int n, ...);
/* Starts one more daemon, and its client, against `r` (&f->redis, or
 * another: a proxy's `via`, a copy with a wrong password) with the given
 * flags; returns it. */
h_daemon *h_fleet_add(h_fleet *f, const h_redis *r, ...);
/* Closes the clients, stops every daemon still running (waking one a test
 * froze) and expects each to exit 0, showing its log when not; then stops
 * Redis and removes its directory. */
void h_fleet_stop(h_fleet *f);

/* A nc-delay-proxy in front of a Redis: `via` is a copy of the Redis whose
 * url points at the proxy, for h_daemon_start(). */
typedef struct h_proxy {
    pid_t pid;
    int port;
    h_redis via;
} h_proxy;

/* Starts a proxy to `r` that holds replies on command connections for
 * delay_us (pub/sub connections pass straight through). */
void h_proxy_start(h_proxy *p, const h_redis *r, int64_t delay_us);
void h_proxy_stop(h_proxy *p);

/* Opens a client to the daemon (asserts success). */
nc_client *h_client(const h_daemon *d);

/* One counter from the daemon's Stats (asserts it exists). */
int64_t h_stat(nc_client *c, const char *name);

/* Sends raw bytes as one request and waits up to timeout_ms for the reply.
 * Returns the decoded reply (free with codec_reply_free()) or NULL when no
 * reply came. */
pb_reply *h_raw(const h_daemon *d, const void *buf, size_t len, int timeout_ms);

/* Forks and execs argv (NULL-terminated) with stdin, stdout and stderr on
 * the given descriptors (-1: /dev/null); the child dies with the test.
 * Returns its pid. */
pid_t h_spawn(char **argv, int in, int out, int err);

/* Runs argv (NULL-terminated) with stdin, stdout and stderr on pipes; `in`
 * (inlen bytes, may be NULL) is fed to stdin. Returns the exit code (128 +
 * signal when killed). *out (with *outlen) and *err, where not NULL, get
 * NUL-terminated copies of stdout and stderr (the caller frees them). */
int h_run(char **argv, const void *in, size_t inlen, char **out, size_t *outlen, char **err);

/* Runs nearcache-cli against the daemon with the given arguments
 * (NULL-terminated), feeding `in` (may be NULL) to its stdin. Returns the
 * exit code; *out (may be NULL) gets its stdout (caller frees), *outlen its
 * length, *err (may be NULL) its stderr. */
int h_cli(const h_daemon *d, const void *in, size_t inlen, char **out, size_t *outlen, char **err,
          ...);

/* A loopback TCP port that was free a moment ago. */
int h_free_port(void);

/* Milliseconds on the monotonic clock. */
int64_t h_now_ms(void);
void h_sleep_ms(int64_t ms);

/* Reads a whole file into a new NUL-terminated buffer (caller frees). */
char *h_read_file(const char *path, size_t *len);

#endif
