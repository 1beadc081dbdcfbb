/* The TLS context of the Redis connections; see l2tls.h.
 * Invariant: `ctx` is replaced whole under `mu`; an SSL made from an old
 * one holds its own reference, so freeing the old one here is safe. The
 * session cache maps "host:port" to the last session that server gave. */
#include "l2tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "units.h"

#define MAX_SESSIONS 64

typedef struct saved {
    char key[300];
    SSL_SESSION *sess;
} saved;

struct l2tls {
    pthread_mutex_t mu;        /* guards ctx, sessions, server_name and verify */
    pthread_mutex_t verify_mu; /* one chain verification at a time (below) */
    SSL_CTX *ctx;
    char server_name[256]; /* "": each server's own host */
    int verify;            /* 0 full, 1 ca, 2 none */
    saved sessions[MAX_SESSIONS];
};

enum { VERIFY_FULL, VERIFY_CA, VERIFY_NONE };

/* The first OpenSSL error queued, as text, into buf; the queue is emptied. */
static const char *ssl_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, len, "%s", errno != 0 ? strerror(errno) : "unknown error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

static void forget_sessions_locked(l2tls *t)
{
    for (int i = 0; i < MAX_SESSIONS; i++) {
        SSL_SESSION_free(t->sessions[i].sess);
        t->sessions[i].sess = NULL;
        t->sessions[i].key[0] = '\0';
    }
}

/* OpenSSL hands every new session here (after the handshake in TLS 1.2,
 * with the server's ticket in TLS 1.3). Returns 1: we keep the reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    l2tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const char *key = SSL_get_app_data(ssl);
    if (t == NULL || key == NULL)
        return 0;
    pthread_mutex_lock(&t->mu);
    if (SSL_get_SSL_CTX(ssl) != t->ctx) { /* made before a reload: not to be resumed */
        pthread_mutex_unlock(&t->mu);
        return 0;
    }
    int at = -1;
    for (int i = 0; i < MAX_SESSIONS && at < 0; i++)
        if (t->sessions[i].sess == NULL || strcmp(t->sessions[i].key, key) == 0)
            at = i;
    if (at < 0)
        at = (int)(((uintptr_t)sess >> 4) % MAX_SESSIONS); /* full: replace one */
    SSL_SESSION_free(t->sessions[at].sess);
    snprintf(t->sessions[at].key, sizeof t->sessions[at].key, "%s", key);
    t->sessions[at].sess = sess;
    pthread_mutex_unlock(&t->mu);
    return 1;
}

/* Verifies a server's chain, one at a time: OpenSSL 3.0's lookups in a
 * shared X509_STORE race (ThreadSanitizer sees a read of the store's
 * objects outside its lock while another handshake fills them). Handshakes
 * are rare and this step is CPU only, so it costs nothing that shows. */
static int verify_one_at_a_time(X509_STORE_CTX *x, void *arg)
{
    l2tls *t = arg;
    pthread_mutex_lock(&t->verify_mu);
    int ok = X509_verify_cert(x);
    pthread_mutex_unlock(&t->verify_mu);
    return ok;
}

static int verify_of(const config *cfg)
{
    return strcmp(cfg->redis_tls_verify, "none") == 0 ? VERIFY_NONE
           : strcmp(cfg->redis_tls_verify, "ca") == 0 ? VERIFY_CA
                                                       : VERIFY_FULL;
}

/* A new SSL_CTX from cfg's files and verify mode; NULL with err naming the
 * setting. */
static SSL_CTX *make_ctx(l2tls *t, const config *cfg, char *err, size_t errlen)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "TLS: %s", ssl_error(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1); /* one read() per reply, not one per record header and body */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    SSL_CTX_set_app_data(ctx, t);
    SSL_CTX_set_verify(ctx, verify_of(cfg) == VERIFY_NONE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                       NULL);
    SSL_CTX_set_cert_verify_callback(ctx, verify_one_at_a_time, t);
    const char *ca = cfg->redis_tls_ca_file, *cert = cfg->redis_tls_cert_file;
    const char *key = cfg->redis_tls_key_file;
    int ok = ca[0] != '\0' ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
                           : SSL_CTX_set_default_verify_paths(ctx);
    if (!ok) {
        snprintf(err, errlen, "redis_tls_ca_file: cannot read CA certificates from %s: %s",
                 ca[0] != '\0' ? ca : "the system's store", ssl_error(why, sizeof why));
        goto fail;
    }
    if (cert[0] != '\0' && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "redis_tls_cert_file: cannot read a certificate from %s: %s", cert,
                 ssl_error(why, sizeof why));
        goto fail;
    }
    if (key[0] != '\0' && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "redis_tls_key_file: cannot read a private key from %s: %s", key,
                 ssl_error(why, sizeof why));
        goto fail;
    }
    if (cert[0] != '\0' && SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "redis_tls_key_file: %s is not the key of the certificate in %s",
                 key, cert);
        goto fail;
    }
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

int l2tls_create(l2tls **out, const config *cfg, char *err, size_t errlen)
{
    l2tls *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->verify_mu, NULL);
    snprintf(t->server_name, sizeof t->server_name, "%s", cfg->redis_tls_server_name);
    t->verify = verify_of(cfg);
    if ((t->ctx = make_ctx(t, cfg, err, errlen)) == NULL) {
        l2tls_destroy(t);
        return -1;
    }
    if (t->verify == VERIFY_NONE)
        log_warn("redis_tls_verify = none: Redis's certificate is not checked, so anyone on the "
                 "path can pose as Redis; use it only to try things out");
    *out = t;
    return 0;
}

int l2tls_reload(l2tls *t, const config *cfg, char *err, size_t errlen)
{
    SSL_CTX *fresh = make_ctx(t, cfg, err, errlen);
    if (fresh == NULL)
        return -1;
    pthread_mutex_lock(&t->mu);
    SSL_CTX *old = t->ctx;
    int was = t->verify;
    t->ctx = fresh;
    snprintf(t->server_name, sizeof t->server_name, "%s", cfg->redis_tls_server_name);
    t->verify = verify_of(cfg);
    forget_sessions_locked(t); /* resumed sessions would skip the new CA's check */
    pthread_mutex_unlock(&t->mu);
    SSL_CTX_free(old);
    if (was != VERIFY_NONE && verify_of(cfg) == VERIFY_NONE)
        log_warn("redis_tls_verify = none: Redis's certificate is not checked, so anyone on the "
                 "path can pose as Redis; use it only to try things out");
    return 0;
}

void l2tls_destroy(l2tls *t)
{
    if (t == NULL)
        return;
    forget_sessions_locked(t);
    SSL_CTX_free(t->ctx);
    pthread_mutex_destroy(&t->verify_mu);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Sets what the handshake sends as SNI and checks the certificate
 * against. Returns 0 or -1. */
static int set_name(SSL *ssl, const char *name, int verify)
{
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    if (!is_ip && SSL_set_tlsext_host_name(ssl, name) != 1) /* SNI takes no addresses */
        return -1;
    if (verify != VERIFY_FULL)
        return 0;
    if (is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? 0 : -1;
    return SSL_set1_host(ssl, name) == 1 ? 0 : -1;
}

/* Why a handshake failed, in words that tell the causes apart; `name` is
 * the one the certificate was checked against. */
static void explain(SSL *ssl, int rc, const char *name, char *err, size_t errlen)
{
    char why[256];
    int e = SSL_get_error(ssl, rc);
    long v = SSL_get_verify_result(ssl);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        snprintf(err, errlen, "TLS handshake timed out (no TLS server there?)");
    else if (v == X509_V_ERR_CERT_HAS_EXPIRED)
        snprintf(err, errlen, "TLS: the server's certificate has expired");
    else if (v == X509_V_ERR_CERT_NOT_YET_VALID)
        snprintf(err, errlen, "TLS: the server's certificate is not valid yet (check the clock)");
    else if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
        snprintf(err, errlen,
                 "TLS: the server's certificate is not for \"%s\" (redis_tls_server_name sets "
                 "the name to expect)",
                 name);
    else if (v != X509_V_OK)
        snprintf(err, errlen,
                 "TLS: the server's certificate is not signed by a trusted CA "
                 "(redis_tls_ca_file): %s",
                 X509_verify_cert_error_string(v));
    else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        snprintf(err, errlen, "TLS: the server closed the connection in the handshake");
    else if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE ||
             ERR_GET_REASON(ERR_peek_error()) == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
        snprintf(err, errlen, "TLS: the server refused the handshake%s: %s",
                 SSL_get_certificate(ssl) == NULL ? " (does it want a client certificate?)" : "",
                 ssl_error(why, sizeof why));
    else
        snprintf(err, errlen, "TLS: the server refused the handshake: %s",
                 ssl_error(why, sizeof why));
    ERR_clear_error();
}

/* SSL_connect() on fd, made non-blocking meanwhile, within timeout_ms in
 * all: a server that sends its part a byte at a time cannot stretch it.
 * Returns as SSL_connect() does; out of time, SSL_get_error() says
 * SSL_ERROR_WANT_READ or _WRITE. */
static int connect_within(SSL *ssl, int fd, int64_t timeout_ms)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return SSL_connect(ssl); /* each step within the socket's timeouts */
    int64_t deadline = units_now_ms() + timeout_ms;
    int rc;
    while ((rc = SSL_connect(ssl)) != 1) {
        int e = SSL_get_error(ssl, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            break;
        struct pollfd p = {.fd = fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
        int64_t left = deadline - units_now_ms();
        int n = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    fcntl(fd, F_SETFL, fl);
    return rc;
}

SSL *l2tls_handshake(l2tls *t, int fd, const char *host, const char *key, int64_t timeout_ms,
                     char *err, size_t errlen)
{
    char why[256];
    ERR_clear_error();
    char name[256];
    pthread_mutex_lock(&t->mu);
    snprintf(name, sizeof name, "%s", t->server_name[0] != '\0' ? t->server_name : host);
    int verify = t->verify;
    SSL *ssl = SSL_new(t->ctx);
    SSL_SESSION *sess = NULL;
    for (int i = 0; ssl != NULL && i < MAX_SESSIONS; i++)
        if (t->sessions[i].sess != NULL && strcmp(t->sessions[i].key, key) == 0)
            sess = t->sessions[i].sess;
    if (sess != NULL)
        SSL_set_session(ssl, sess); /* takes its own reference */
    pthread_mutex_unlock(&t->mu);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || set_name(ssl, name, verify) != 0) {
        snprintf(err, errlen, "TLS: %s", ssl_error(why, sizeof why));
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_app_data(ssl, (void *)key);
    errno = 0;
    int rc = connect_within(ssl, fd, timeout_ms);
    if (rc != 1) {
        explain(ssl, rc, name, err, errlen);
        SSL_free(ssl);
        return NULL;
    }
    log_debug("redis %s: %s, %s", key, SSL_get_version(ssl),
              SSL_session_reused(ssl) ? "TLS session resumed" : "new TLS session");
    return ssl;
}
