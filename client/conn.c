/* The dial rule and its messages; see conn.h. An ipc:// dial is first
 * tried with a plain connect() of our own: it fails in microseconds, where
 * nng's blocking dial takes several thread hand-offs (tens of ms on a
 * loaded machine), and says ENOENT where nng says only "connection
 * refused". Only when it connects does nng dial. A failure is explained
 * from stat() of the path (and of its directory when the path cannot be
 * reached). */
#include "conn.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "units.h"

#define PROBE_HANDSHAKE_MS 100 /* then a probe lingers (conn_reap) */



int conn_init(conn *k, nng_socket sock, const char *url)
{
    memset(k, 0, sizeof *k);
    k->sock = sock;
    k->backoff_ms = CONN_BACKOFF_MIN_MS;
    snprintf(k->url, sizeof k->url, "%s", url);
    return pthread_mutex_init(&k->mu, NULL);
}

void conn_fini(conn *k)
{
    for (size_t i = 0; i < k->nlinger; i++)
        close(k->linger[i]);
    pthread_mutex_destroy(&k->mu);
}

/* "user:group 0660" of a file's stat, into buf. */
static void owner_mode(const struct stat *st, char *buf, size_t len)
{
    struct passwd *pw = getpwuid(st->st_uid);
    struct group *gr = getgrgid(st->st_gid);
    char u[32], g[32];
    snprintf(u, sizeof u, "%u", (unsigned)st->st_uid);
    snprintf(g, sizeof g, "%u", (unsigned)st->st_gid);
    snprintf(buf, len, "%s:%s %04o", pw != NULL ? pw->pw_name : u, gr != NULL ? gr->gr_name : g,
             (unsigned)(st->st_mode & 07777));
}

static const char *group_name(gid_t gid, char *buf, size_t len)
{
    struct group *gr = getgrgid(gid);
    if (gr != NULL)
        return gr->gr_name;
    snprintf(buf, len, "%u", (unsigned)gid);
    return buf;
}

/* Explains a permission error on path: the socket's (or, when it cannot
 * be reached, its directory's) owner, group and mode, and the fix. */
static void explain_denied(conn *k, const char *path)
{
    struct passwd *me = getpwuid(geteuid());
    char user[64]; /* copied: the next getpwuid() reuses its buffer */
    snprintf(user, sizeof user, "%s", me != NULL ? me->pw_name : "this process's user");
    char om[200], gbuf[32], dir[400];
    struct stat st;
    snprintf(dir, sizeof dir, "%s", path);
    const char *what = "the socket", *where = path;
    if (stat(path, &st) != 0) {
        where = dirname(dir);
        what = "its directory";
        if (stat(where, &st) != 0)
            memset(&st, 0, sizeof st);
    }
    owner_mode(&st, om, sizeof om);
    const char *group = group_name(st.st_gid, gbuf, sizeof gbuf);
    snprintf(k->msg, sizeof k->msg,
             "permission denied connecting to nearcached at %.200s: %s %.200s is %.80s and this "
             "process runs as %.32s; add %.32s to group %.32s (usermod -aG %.32s %.32s, then "
             "start the process again), or set socket_group in the daemon's config to a group "
             "%.32s is in",
             k->url, what, where, om, user, user, group, group, user, user);
}

/* Explains a refused dial to an ipc:// path: a missing file or a stale one. */
static void explain_refused(conn *k, const char *path)
{
    struct stat st;
    char dir[400];
    snprintf(dir, sizeof dir, "%s", path);
    const char *d = dirname(dir);
    const char *fix = "start nearcached there, or point this client at the daemon's socket with "
                      "NEARCACHE_URL=ipc:///path/to/nearcached.sock";
    if (stat(path, &st) == 0)
        snprintf(k->msg, sizeof k->msg,
                 "no daemon is listening at %.200s: the socket file is there but nothing accepts "
                 "on it (a stale socket: nearcached is not running); %s",
                 k->url, fix);
    else if (stat(d, &st) != 0)
        snprintf(k->msg, sizeof k->msg,
                 "no daemon is listening at %.200s: neither %.200s nor its directory %.200s "
                 "exists; %s",
                 k->url, path, d, fix);
    else
        snprintf(k->msg, sizeof k->msg,
                 "no daemon is listening at %.200s: there is no socket file %.200s; %s", k->url,
                 path, fix);
}

/* Keeps fd open until the daemon's side of the handshake arrives: closed
 * before, it would wedge an nng 1.5.2 listener (bug #1518). When the list
 * is full the oldest goes. Called with k->mu held. */
static void linger_locked(conn *k, int fd)
{
    if (k->nlinger == CONN_LINGER) {
        close(k->linger[0]);
        memmove(k->linger, k->linger + 1, (CONN_LINGER - 1) * sizeof k->linger[0]);
        k->nlinger--;
    }
    k->linger[k->nlinger++] = fd;
}

/* Closes the lingering probes that became readable (the daemon's header,
 * or the end). Called with k->mu held. */
static void reap_locked(conn *k)
{
    size_t kept = 0;
    for (size_t i = 0; i < k->nlinger; i++) {
        struct pollfd p = {.fd = k->linger[i], .events = POLLIN};
        if (poll(&p, 1, 0) != 0)
            close(k->linger[i]);
        else
            k->linger[kept++] = k->linger[i];
    }
    k->nlinger = kept;
}

void conn_reap(conn *k)
{
    pthread_mutex_lock(&k->mu);
    reap_locked(k);
    pthread_mutex_unlock(&k->mu);
}

/* A plain connect() to the ipc:// path: 0 when something accepts there (or
 * it is not for us to say: too long a path, no socket left), else its
 * errno. A connection is taken through the SP handshake before it is
 * closed; one the daemon does not answer within PROBE_HANDSHAKE_MS (a
 * loaded or stuck daemon) lingers until it does, and *lingers is set.
 * Called with k->mu held. */
static int probe_locked(conn *k, const char *path, int *lingers)
{
    static const unsigned char req_header[8] = {0, 'S', 'P', 0, 0x00, 0x30, 0, 0};
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return 0;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        return e == EAGAIN ? 0 : e;
    }
    struct timeval tv = {0, PROBE_HANDSHAKE_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    unsigned char theirs[8];
    size_t got = 0;
    ssize_t n = write(fd, req_header, sizeof req_header);
    while (n == (ssize_t)sizeof req_header && got < sizeof theirs &&
           (n = read(fd, theirs + got, sizeof theirs - got)) > 0)
        got += (size_t)n, n = sizeof req_header;
    if (got == sizeof theirs || n == 0)
        close(fd);
    else
        linger_locked(k, fd), *lingers = 1;
    return 0;
}

/* The nng error that stands for a probe's errno. */
static int nng_of_errno(int e)
{
    switch (e) {
    case EACCES:
    case EPERM:
        return NNG_EPERM;
    case ENOENT:
    case ECONNREFUSED:
        return NNG_ECONNREFUSED;
    default:
        return NNG_ESYSERR + e;
    }
}

/* Records why a dial failed with nng error rv in k->err, status and msg. */
static void explain(conn *k, int rv)
{
    const char *path = strncmp(k->url, "ipc://", 6) == 0 ? k->url + 6 : NULL;
    k->err = NC_ECONNECT;
    k->status = CODE(UNAVAILABLE);
    if (rv == NNG_EPERM) {
        k->status = CODE(PERMISSION_DENIED);
        if (path != NULL)
            explain_denied(k, path);
        else
            snprintf(k->msg, sizeof k->msg, "permission denied connecting to nearcached at %.200s",
                     k->url);
    } else if ((rv == NNG_ECONNREFUSED || rv == NNG_ENOENT) && path != NULL) {
        explain_refused(k, path);
    } else if (rv == NNG_ECONNREFUSED) {
        snprintf(k->msg, sizeof k->msg,
                 "no daemon is listening at %.200s (connection refused); start nearcached, or "
                 "point this client at it with NEARCACHE_URL",
                 k->url);
    } else {
        int bad_url = rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL;
        if (bad_url)
            k->err = NC_EINVAL, k->status = 0;
        snprintf(k->msg, sizeof k->msg, "cannot connect to nearcached at %.200s: %s", k->url,
                 nng_strerror(rv));
    }
}

/* The ipc:// socket file's inode and change time, or 0s when it is absent
 * (or the URL is not ipc://). */
static void file_sig(const conn *k, ino_t *ino, int64_t *mtime_ns)
{
    struct stat st;
    *ino = 0, *mtime_ns = 0;
    if (strncmp(k->url, "ipc://", 6) == 0 && stat(k->url + 6, &st) == 0)
        *ino = st.st_ino, *mtime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

/* Whether the socket file is not what it was at the last failure. */
static int file_changed(const conn *k)
{
    ino_t ino;
    int64_t t;
    file_sig(k, &ino, &t);
    return ino != k->ino || t != k->mtime_ns;
}

/* A wait of d/2 to d ms, so that many clients do not dial in step. */
static int64_t jitter(int64_t d)
{
    static _Thread_local uint64_t x; /* xorshift64 */
    if (x == 0)
        x = (uint64_t)units_now_ms() << 20 ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&x;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return d / 2 + (int64_t)(x % (uint64_t)(d / 2 + 1));
}

/* One dial: a probe of an ipc:// socket, then, once, the dialer (which
 * connects before this returns unless `background` or the probe lingers,
 * a stuck daemon; and keeps connecting from then on). Returns NC_OK or the
 * recorded error. Called with k->mu held. */
static int dial_locked(conn *k, int background)
{
    int rv = 0, ipc = strncmp(k->url, "ipc://", 6) == 0 && k->url[6] != '\0', stuck = 0;
    if (ipc && (rv = probe_locked(k, k->url + 6, &stuck)) != 0)
        rv = nng_of_errno(rv);
    else if (!k->has_dialer && /* a stuck daemon would hold a blocking dial 10 s */
             (rv = nng_dial(k->sock, k->url, &k->dialer,
                            background || stuck ? NNG_FLAG_NONBLOCK : 0)) == 0)
        k->has_dialer = 1;
    if (rv == 0) {
        k->backoff_ms = CONN_BACKOFF_MIN_MS;
        k->due_ms = 0;
        k->err = NC_OK;
        return NC_OK;
    }
    explain(k, rv);
    file_sig(k, &k->ino, &k->mtime_ns);
    k->due_ms = units_now_ms() + jitter(k->backoff_ms);
    k->backoff_ms = k->backoff_ms * 2 < CONN_BACKOFF_MAX_MS ? k->backoff_ms * 2
                                                             : CONN_BACKOFF_MAX_MS;
    return client_fail(k->err, k->status, "%s", k->msg);
}

int conn_open(conn *k, int background)
{
    pthread_mutex_lock(&k->mu);
    int rv = dial_locked(k, background);
    pthread_mutex_unlock(&k->mu);
    return rv;
}

int conn_ready_slow(conn *k)
{
    pthread_mutex_lock(&k->mu);
    reap_locked(k);
    int rv = NC_OK;
    if (atomic_load(&k->pipes) > 0)
        rv = NC_OK;
    else if (k->err != NC_OK && units_now_ms() < k->due_ms && !file_changed(k))
        rv = client_fail(k->err, k->status, "%s", k->msg);
    else
        rv = dial_locked(k, 1); /* a daemon is there: the call waits for nng's pipe */
    pthread_mutex_unlock(&k->mu);
    return rv;
}
