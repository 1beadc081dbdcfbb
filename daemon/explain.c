/* Start-up failures with their cause and fix; see explain.h. */
#include "explain.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <nng/nng.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory of path, into buf. */
static const char *dir_of(const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s", path);
    return dirname(buf);
}

/* "the directory D is user:group 0755 and the daemon runs as U", into buf. */
static void dir_owner(const char *dir, char *buf, size_t len)
{
    struct stat st;
    struct passwd *me = getpwuid(geteuid());
    char user[64]; /* copied: the next getpwuid() reuses its buffer */
    snprintf(user, sizeof user, "%s", me != NULL ? me->pw_name : "?");
    if (stat(dir, &st) != 0) {
        snprintf(buf, len, "the directory %s cannot be reached by the user %s", dir, user);
        return;
    }
    struct passwd *pw = getpwuid(st.st_uid);
    struct group *gr = getgrgid(st.st_gid);
    char u[16], g[16];
    snprintf(u, sizeof u, "%u", (unsigned)st.st_uid);
    snprintf(g, sizeof g, "%u", (unsigned)st.st_gid);
    snprintf(buf, len, "the directory %s is %s:%s %04o and the daemon runs as %s", dir,
             pw != NULL ? pw->pw_name : u, gr != NULL ? gr->gr_name : g,
             (unsigned)(st.st_mode & 07777), user);
}

/* The cause and fix of a file that cannot be made at path: its directory
 * is missing, or refuses (e is EACCES or EPERM); "" when neither. */
static void cause_of(const char *path, const char *setting, int e, char *buf, size_t len)
{
    char dbuf[512], owner[700];
    const char *dir = dir_of(path, dbuf, sizeof dbuf);
    struct stat st;
    buf[0] = '\0';
    if (stat(dir, &st) != 0 && errno == ENOENT)
        snprintf(buf, len,
                 "the directory %s does not exist; create it (mkdir -p %s, owned by the user the "
                 "daemon runs as), or set %s to a path in a directory that exists",
                 dir, dir, setting);
    else if (e == EACCES || e == EPERM)
        dir_owner(dir, owner, sizeof owner),
            snprintf(buf, len,
                     "permission denied: %s; run the daemon as a user who may create files "
                     "there, or set %s to a directory it owns (the packaged service uses "
                     "/run/nearcache, which its tmpfiles.d entry makes)",
                     owner, setting);
}

void explain_listen(const char *url, int rv, char *buf, size_t len)
{
    char cause[1400] = "";
    int ipc = strncmp(url, "ipc://", 6) == 0;
    if (ipc && rv == NNG_EADDRINUSE)
        snprintf(cause, sizeof cause,
                 "another daemon is serving this socket (it accepted a connection); stop that "
                 "one first, or give this one another listen path");
    else if (rv == NNG_EADDRINUSE)
        snprintf(cause, sizeof cause,
                 "the address is in use by another process; stop it, or set listen to another "
                 "port");
    else if (ipc)
        cause_of(url + 6, "listen", rv == NNG_EPERM ? EACCES : 0, cause, sizeof cause);
    if (ipc && cause[0] == '\0' && rv == NNG_EADDRINVAL && strlen(url + 6) > 107)
        snprintf(cause, sizeof cause,
                 "the socket path is %zu bytes, longer than a Unix socket's 107; set listen to "
                 "a shorter path",
                 strlen(url + 6));
    if (cause[0] == '\0')
        snprintf(cause, sizeof cause, "%s", nng_strerror(rv));
    snprintf(buf, len, "cannot listen on %s: %s", url, cause);
}

void explain_create(const char *what, const char *path, const char *setting, int e,
                    const char *alt, char *buf, size_t len)
{
    char cause[1400];
    cause_of(path, setting, e, cause, sizeof cause);
    if (cause[0] == '\0')
        snprintf(cause, sizeof cause, "%s", strerror(e));
    snprintf(buf, len, "cannot create %s %s (%s): %s%s%s", what, path, setting, cause,
             alt != NULL ? "; or " : "", alt != NULL ? alt : "");
}
