/* nearcached configuration: defaults, a `key = value` file, and command-line
 * flags that override it. One table (config.c) names every setting once; it
 * drives the file parser, the flags (`l1_max_memory` is `--l1-max-memory`),
 * `--help` and the checks between settings. */
#ifndef NC_CONFIG_H
#define NC_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum config_log_level { CONFIG_LOG_ERROR, CONFIG_LOG_WARN, CONFIG_LOG_INFO, CONFIG_LOG_DEBUG };

typedef struct config {
    char listen[512]; /* nng URL, e.g. ipc:///run/nearcache/nearcached.sock */
    char redis[512];  /* redis[s]://[[user]:password@]host:port[/db], unix://, sentinel[s]://, cluster[s]:// */
    char prefix[128]; /* Redis key prefix, default nc:v1 */
    uint64_t l1_max_memory;
    int64_t l1_max_ttl_ms;
    int64_t default_ttl_ms;
    int64_t max_ttl_ms;
    uint64_t max_key_size;
    uint64_t max_namespace_size;
    uint64_t max_value_size;
    uint64_t max_batch;            /* keys per MGet / MSet */
    int64_t request_timeout_ms;    /* default budget of a request without one */
    int64_t redis_timeout_ms;      /* connect and command timeout */
    uint64_t redis_connections;    /* L2 worker threads, one connection each */
    uint64_t redis_lane;           /* reads in flight on the read lane; 0: none */
    uint64_t contexts;             /* concurrent requests the server takes */
    int64_t shutdown_timeout_ms;   /* how long in-flight requests may finish */
    int64_t heartbeat_interval_ms; /* how often this node publishes a heartbeat */
    int64_t coherence_window_ms;   /* L1 serves only while caught up within it */
    uint64_t inval_batch;          /* 1: writes' invalidations go in the publisher's batches */
    int64_t inval_batch_delay_ms;  /* tests: each batch waits this long before its PUBLISH */
    int64_t stale_if_error_ms;     /* 0: off */
    int64_t lease_ttl_ms;          /* lifetime of a lease to fill a key */
    uint64_t ttl_jitter_pct;       /* spread of Set TTLs, percent */
    char near_ring[512];           /* the ring's file; "": beside an ipc socket; "off": none */
    uint64_t near_ring_slots;      /* a power of two */
    enum config_log_level log_level;
    char log_format[8];            /* "text" or "json" */
    unsigned socket_mode;          /* permissions of an ipc:// socket file */
    char socket_group[64];         /* group of an ipc:// socket file */
    char redis_password_file[512]; /* as given; empty: none */
    char metrics_listen[256];      /* HOST:PORT of the HTTP metrics endpoint; empty: none */
    uint64_t namespace_metrics;    /* busiest namespaces counted apart; 0: none */
    uint64_t hit_ratio_warn;       /* percent; a namespace below it warns; 0: off */
    uint64_t hit_ratio_min_gets;   /* Gets in an interval below which none warns */
    int64_t hit_ratio_interval_ms; /* how often the hit ratios are checked */
    char acl[8192];                /* the acl rules, one a line, in order given */
    char sentinel_password[256];   /* AUTH for Sentinels; never logged */
    uint64_t redis_wait_replicas;  /* WAIT for N replicas after each write; 0: no */
    int64_t redis_wait_timeout_ms; /* how long that WAIT may take */
    char redis_password[256];      /* read from that file; never logged */
    char redis_tls_ca_file[512];   /* CAs Redis's certificate must chain to; "": the system's */
    char redis_tls_cert_file[512]; /* client certificate (chain); "": none */
    char redis_tls_key_file[512];  /* its private key */
    char redis_tls_server_name[256]; /* SNI and the name checked; "": each server's host */
    char redis_tls_verify[8];      /* full, ca or none */
    uint64_t given;                /* bit i: the i-th setting came from the file or a flag */
} config;

#define CONFIG_MAX_SENTINELS 8
#define CONFIG_MAX_CLUSTER_SEEDS 16

/* A Sentinel's address. */
typedef struct config_redis_addr {
    char host[256];
    int port;
} config_redis_addr;

/* Parsed form of the `redis` setting. With Sentinels (nsentinels > 0),
 * host and port are empty until resolved, at every connect (l2conn.c), and
 * the order of `sentinels` is the one to ask them in. On a Redis Cluster
 * (nseeds > 0), `seeds` are the nodes the slot map is first asked of, host
 * and port the first of them, and db is 0. */
typedef struct config_redis_url {
    int is_unix;
    int tls;        /* rediss://, sentinels://, clusters://: every connection is TLS */
    struct l2tls *tls_ctx; /* the TLS context (l2tls.h) when tls; set and owned by main */
    char host[256]; /* host name or address; the socket path when is_unix */
    int port;
    char user[128];     /* ACL user for AUTH; empty: the default user */
    char password[256]; /* empty: no AUTH */
    int db;
    int nsentinels; /* sentinel://: how many of `sentinels` there are */
    config_redis_addr sentinels[CONFIG_MAX_SENTINELS];
    char master[128];            /* the master's name at the Sentinels */
    char sentinel_password[256]; /* AUTH for the Sentinels; empty: none */
    int nseeds;                  /* cluster://: how many of `seeds` there are */
    config_redis_addr seeds[CONFIG_MAX_CLUSTER_SEEDS];
} config_redis_url;

/* Fills *c with the defaults. */
void config_defaults(config *c);

/* Sets one setting by its file name (`l1_max_memory`) from text. Returns 0,
 * or -1 with a message naming the problem (not the setting) in err. */
int config_set(config *c, const char *name, const char *value, char *err, size_t errlen);

/* Reads a config file: `key = value` lines, `#` comments, blank lines.
 * Returns 0, or -1 with "FILE:LINE: SETTING: problem" in err. */
int config_load_file(config *c, const char *path, char *err, size_t errlen);

/* Parses argv: --config FILE (read first, wherever it stands), then every
 * `--setting VALUE` or `--setting=VALUE` in order, then checks the settings
 * against each other. Returns 0 to run, 1 when --help or --version printed
 * to `out` (exit 0), -1 with a message in err (exit 2). */
int config_parse_args(config *c, int argc, char **argv, FILE *out, char *err, size_t errlen);

/* Checks settings against each other (default_ttl <= max_ttl, ...).
 * Returns 0, or -1 with a message naming the settings in err. */
int config_check(const config *c, char *err, size_t errlen);

/* Parses a redis URL. Returns 0, or -1 with a message in err. */
int config_parse_redis_url(const char *url, config_redis_url *out, char *err, size_t errlen);

/* Admission: the server contexts kept free of calls that wait for Redis
 * (queued for a worker, on the read lane or parked for a lease), so that
 * L1 hits, Pings and Stats always find one. */
#define CONFIG_RESERVED_CONTEXTS 16

/* How many calls may wait for Redis at once (the jobq's capacity, shared
 * with the read lane): contexts less the workers and the reserved ones. */
uint64_t config_redis_capacity(const config *c);

/* The Redis to use: the `redis` URL, with the password read from
 * redis_password_file when there is one. Returns 0, or -1 with a message
 * (never the password) in err. */
int config_redis(const config *c, config_redis_url *out, char *err, size_t errlen);

/* Whether the setting `name` was given in the config file or as a flag. */
int config_given(const config *c, const char *name);

/* Looks up socket_group: returns 1 and sets *gid, or 0 when no such group
 * exists (config_parse_args() refuses that when socket_group was given, so
 * 0 means the default group is missing and the socket keeps the daemon's
 * own group). */
int config_socket_gid(const config *c, gid_t *gid);

/* Whether log_format is json. */
int config_log_json(const config *c);

/* The largest request message the daemon reads: a value, key and namespace
 * of the largest sizes plus 64 KiB of envelope. */
uint64_t config_max_request(const config *c);

/* The near tier's ring file into buf: near_ring, or by default the ipc
 * socket's path + ".ring". Returns 1, or 0 when there is none (near_ring
 * "off", or a listen URL that is not ipc:// and no near_ring). */
int config_near_ring(const config *c, char *buf, size_t len);

/* Writes the usage text with every setting and its default to `out`. */
void config_usage(FILE *out, const char *argv0);

/* The name of a log level ("info"). */
const char *config_log_level_name(enum config_log_level level);

/* Reads a setting that SIGHUP may change (config_apply_live()) while
 * other threads run: one relaxed atomic load, so the value is whole. */
#define CONFIG_LIVE(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Applies a configuration re-read on SIGHUP (`fresh`, checked) to the
 * running one: each changed setting that may change live gets its new
 * value and is named in `applied`; each other changed setting keeps its
 * value and is named in `kept` (comma-separated lists, cut to fit). The
 * size limits change only if the largest request they allow stays within
 * request_cap, the cap the socket was opened with. Returns how many
 * settings differ. Readers of `live` see each number whole. */
int config_apply_live(config *live, const config *fresh, uint64_t request_cap, char *applied,
                      size_t alen, char *kept, size_t klen);

/* SIGHUP: reads the configuration again as at start (the file, then the
 * flags of argv), applies what may change live (config_apply_live()), sets
 * the log level and format, and logs what took effect and what stays until
 * a restart. A configuration that does not parse changes nothing (an error
 * line says why). */
void config_reload(config *live, int argc, char **argv, uint64_t request_cap);

#endif
