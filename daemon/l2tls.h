/* l2tls: the TLS side of the Redis connections (rediss://, sentinels://,
 * clusters://). It holds the OpenSSL context made from the redis_tls_*
 * settings (CA, client certificate, server name, verify mode; TLS 1.2 at
 * least), makes the handshake on a socket l2io has connected, names each way
 * a handshake fails in its own words, and keeps the last session of each
 * server so a reconnect resumes it. SIGHUP swaps the context for one read
 * from the files again (l2tls_reload()); connections made before keep the
 * one they started with. Every function may be called from any thread. */
#ifndef NC_L2TLS_H
#define NC_L2TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct l2tls l2tls;

/* Makes the TLS context from cfg's redis_tls_* settings, reading the files
 * they name. Returns 0 and hands it to *out (the caller owns it; free with
 * l2tls_destroy()), or -1 with a message naming the setting and the file in
 * err. Logs a warning when redis_tls_verify is none. */
int l2tls_create(l2tls **out, const config *cfg, char *err, size_t errlen);

/* Reads the CA and client certificate files again (cfg's paths), for
 * connections made from now on, and forgets the saved sessions. Returns 0,
 * or -1 with err set: the context in use then stays. */
int l2tls_reload(l2tls *t, const config *cfg, char *err, size_t errlen);

/* Frees t. Accepts NULL. */
void l2tls_destroy(l2tls *t);

/* Makes the TLS handshake on fd, a socket connected to host:port, within
 * timeout_ms in all. `key` names the server for session
 * reuse and must live as long as the returned SSL (l2io keeps it). Returns
 * the SSL (the caller frees it with SSL_free(); fd stays the caller's), or
 * NULL with err saying why in words of its own for each cause: the
 * handshake timed out, the certificate has expired, names another host,
 * does not verify against the CAs, or the server refused us. */
SSL *l2tls_handshake(l2tls *t, int fd, const char *host, const char *key, int64_t timeout_ms,
                     char *err, size_t errlen);

#endif
