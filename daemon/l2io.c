/* One Redis socket, plain or TLS, with hiredis's formatter and reader; see
 * l2io.h. The output buffer holds obuf[opos..olen): bytes formatted and not
 * written yet. A TLS write that must be retried is retried with the same
 * bytes at the front of that range, possibly moved (the context allows
 * moving write buffers), never fewer of them. */
#include "l2io.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "units.h"

#define READ_CHUNK 16384

struct l2io {
    int fd;
    SSL *ssl; /* NULL: plain */
    int blocking;
    int timed_out;
    redisReader *reader;
    char *obuf;
    size_t opos, olen, ocap;
    int port;
    char host[256];
    char key[300]; /* "host:port": the TLS session's name */
    char errstr[200];
};

static int fail(l2io *io, int timed_out, const char *fmt, const char *what)
{
    io->timed_out = timed_out;
    snprintf(io->errstr, sizeof io->errstr, fmt, what);
    return -1;
}

static void set_tv(int fd, int opt, int64_t ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

/* Waits for a non-blocking connect on fd to finish. Returns 0 or an errno. */
static int finish_connect(int fd, int64_t timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int64_t until = units_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = until - units_now_ms();
        int rv = poll(&p, 1, left > 0 ? (int)left : 0);
        if (rv < 0 && errno == EINTR)
            continue;
        if (rv < 0)
            return errno;
        if (rv == 0)
            return ETIMEDOUT;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            return errno;
        return err;
    }
}

/* A connected socket to one address, blocking again, or -1 with errno. */
static int dial_addr(const struct addrinfo *a, int64_t timeout_ms)
{
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0)
        return -1;
    int err = connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0
              : errno == EINPROGRESS                      ? finish_connect(fd, timeout_ms)
                                                          : errno;
    if (err == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        err = errno;
    if (err != 0) {
        close(fd);
        errno = err;
        return -1;
    }
    int one = 1, idle = 15, intvl = 5, cnt = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    return fd;
}

static int dial_tcp(const char *host, int port, int64_t timeout_ms, char *err, size_t errlen)
{
    char service[16];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list;
    snprintf(service, sizeof service, "%d", port);
    int rv = getaddrinfo(host, service, &hints, &list);
    if (rv != 0) {
        snprintf(err, errlen, "connect: %s", gai_strerror(rv));
        return -1;
    }
    int fd = -1;
    errno = ECONNREFUSED;
    for (const struct addrinfo *a = list; a != NULL && fd < 0; a = a->ai_next)
        fd = dial_addr(a, timeout_ms);
    if (fd < 0)
        snprintf(err, errlen, "connect: %s",
                 errno == ETIMEDOUT ? "Connection timed out" : strerror(errno));
    freeaddrinfo(list);
    return fd;
}

static int dial_unix(const char *path, int64_t timeout_ms, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        set_tv(fd, SO_SNDTIMEO, timeout_ms);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
    }
    snprintf(err, errlen, "connect: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int l2io_connect(l2io **out, const char *host, int port, int is_unix, l2tls *tls,
                 int64_t timeout_ms, char *err, size_t errlen)
{
    l2io *io = calloc(1, sizeof *io);
    if (io == NULL || (io->reader = redisReaderCreate()) == NULL) {
        free(io);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    io->blocking = 1;
    io->port = port;
    snprintf(io->host, sizeof io->host, "%s", host);
    snprintf(io->key, sizeof io->key, "%s:%d", host, port);
    io->fd = is_unix ? dial_unix(host, timeout_ms, err, errlen)
                     : dial_tcp(host, port, timeout_ms, err, errlen);
    if (io->fd >= 0)
        l2io_set_timeout(io, timeout_ms);
    if (io->fd >= 0 && tls != NULL &&
        (io->ssl = l2tls_handshake(tls, io->fd, host, io->key, timeout_ms, err, errlen)) ==
            NULL) {
        l2io_free(io);
        return -1;
    }
    if (io->fd < 0) {
        l2io_free(io);
        return -1;
    }
    *out = io;
    return 0;
}

void l2io_free(l2io *io)
{
    if (io == NULL)
        return;
    if (io->ssl != NULL) {
        SSL_set_shutdown(io->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); /* no close_notify wait */
        SSL_free(io->ssl);
    }
    if (io->fd >= 0)
        close(io->fd);
    redisReaderFree(io->reader);
    free(io->obuf);
    free(io);
}

int l2io_fd(const l2io *io)
{
    return io->fd;
}

const char *l2io_host(const l2io *io)
{
    return io->host;
}

int l2io_port(const l2io *io)
{
    return io->port;
}

int l2io_is_tls(const l2io *io)
{
    return io->ssl != NULL;
}

const char *l2io_errstr(const l2io *io)
{
    return io->errstr;
}

int l2io_timed_out(const l2io *io)
{
    return io->timed_out;
}

int l2io_set_timeout(l2io *io, int64_t ms)
{
    set_tv(io->fd, SO_RCVTIMEO, ms);
    set_tv(io->fd, SO_SNDTIMEO, ms);
    return 0;
}

int l2io_set_nonblocking(l2io *io)
{
    int fl = fcntl(io->fd, F_GETFL);
    if (fl < 0 || fcntl(io->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    io->blocking = 0;
    return 0;
}

int l2io_append(l2io *io, int argc, const char **argv, const size_t *lens)
{
    char *cmd;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0)
        return fail(io, 0, "%s", "out of memory");
    if (io->opos == io->olen)
        io->opos = io->olen = 0;
    if (io->olen + (size_t)n > io->ocap) {
        if (io->opos > 0) { /* move the unwritten bytes to the front first */
            memmove(io->obuf, io->obuf + io->opos, io->olen - io->opos);
            io->olen -= io->opos, io->opos = 0;
        }
        size_t cap = io->ocap > 0 ? io->ocap : 1024;
        while (cap < io->olen + (size_t)n)
            cap *= 2;
        char *grown = cap > io->ocap ? realloc(io->obuf, cap) : io->obuf;
        if (grown == NULL) {
            redisFreeCommand(cmd);
            return fail(io, 0, "%s", "out of memory");
        }
        io->obuf = grown, io->ocap = cap;
    }
    memcpy(io->obuf + io->olen, cmd, (size_t)n);
    io->olen += (size_t)n;
    redisFreeCommand(cmd);
    return 0;
}

/* What an SSL call that returned rc <= 0 came to: 0 when it would block
 * (non-blocking), else -1 with errstr set. */
static int ssl_fail(l2io *io, int rc, const char *what)
{
    int e = SSL_get_error(io->ssl, rc);
    char why[160];
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (!io->blocking)
            return 0;
        return fail(io, 1, "%s timed out", what);
    }
    unsigned long reason = ERR_GET_REASON(ERR_peek_error());
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        snprintf(why, sizeof why, "connection closed");
    else if (e == SSL_ERROR_SYSCALL)
        snprintf(why, sizeof why, "%s", strerror(errno));
    else if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
        snprintf(why, sizeof why, "the server wants a client certificate (redis_tls_cert_file)");
    else if (reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA || reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
             reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED)
        snprintf(why, sizeof why, "the server refused our client certificate (%s)",
                 ERR_reason_error_string(ERR_peek_error()));
    else
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
    ERR_clear_error();
    io->timed_out = 0;
    snprintf(io->errstr, sizeof io->errstr, "%s: TLS: %s", what, why);
    return -1;
}

/* Writes up to n bytes: how many (> 0), 0 when the socket takes none now
 * (non-blocking), or -1 with errstr set. */
static ssize_t io_write(l2io *io, const char *p, size_t n)
{
    for (;;) {
        if (io->ssl != NULL) {
            errno = 0;
            int rc = SSL_write(io->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            return rc > 0 ? rc : ssl_fail(io, rc, "write");
        }
        ssize_t rc = write(io->fd, p, n);
        if (rc >= 0)
            return rc;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return io->blocking ? fail(io, 1, "%s", "write timed out") : 0;
        return fail(io, 0, "write: %s", strerror(errno));
    }
}

/* Reads into buf: how many bytes (> 0), 0 when there are none now
 * (non-blocking), or -1 with errstr set (the peer closing is one). */
static ssize_t io_read(l2io *io, char *buf, size_t n)
{
    for (;;) {
        if (io->ssl != NULL) {
            errno = 0;
            int rc = SSL_read(io->ssl, buf, (int)n);
            return rc > 0 ? rc : ssl_fail(io, rc, "read");
        }
        ssize_t rc = read(io->fd, buf, n);
        if (rc > 0)
            return rc;
        if (rc == 0)
            return fail(io, 0, "%s", "connection closed");
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return io->blocking ? fail(io, 1, "%s", "read timed out") : 0;
        return fail(io, 0, "read: %s", strerror(errno));
    }
}

int l2io_flush(l2io *io, int *done)
{
    while (io->opos < io->olen) {
        ssize_t n = io_write(io, io->obuf + io->opos, io->olen - io->opos);
        if (n < 0)
            return -1;
        if (n == 0) {
            *done = 0;
            return 0;
        }
        io->opos += (size_t)n;
    }
    io->opos = io->olen = 0;
    *done = 1;
    return 0;
}

int l2io_fill(l2io *io)
{
    char buf[READ_CHUNK];
    for (;;) {
        ssize_t n = io_read(io, buf, sizeof buf);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (redisReaderFeed(io->reader, buf, (size_t)n) != REDIS_OK)
            return fail(io, 0, "%s", "out of memory");
        /* Non-blocking: read on while there may be more: a full buffer, or
         * bytes TLS has read ahead from the socket (poll() would not say so). */
        if (io->blocking ||
            ((size_t)n < sizeof buf && (io->ssl == NULL || !SSL_has_pending(io->ssl))))
            return 0;
    }
}

int l2io_next(l2io *io, redisReply **r)
{
    *r = NULL;
    if (redisReaderGetReply(io->reader, (void **)r) != REDIS_OK)
        return fail(io, 0, "bad reply: %s", io->reader->errstr);
    return 0;
}

int l2io_get_reply(l2io *io, redisReply **r)
{
    for (;;) {
        if (l2io_next(io, r) != 0)
            return -1;
        if (*r != NULL)
            return 0;
        if (l2io_fill(io) != 0)
            return -1;
    }
}

redisReply *l2io_command(l2io *io, int argc, const char **argv, const size_t *lens)
{
    int done;
    redisReply *r = NULL;
    if (l2io_append(io, argc, argv, lens) != 0 || l2io_flush(io, &done) != 0 ||
        l2io_get_reply(io, &r) != 0)
        return NULL;
    return r;
}
