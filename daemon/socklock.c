/* socklock: an ipc:// server owns its socket path through a lock file
 * beside it (PATH.lock, flock(2), holding the daemon's pid). The kernel
 * drops the lock the moment its holder's process is gone, so a daemon that
 * takes it knows the socket file is stale and removes it itself, and one
 * that cannot take it knows another daemon lives. */
#include "socklock.h"

#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "explain.h"
#include "log.h"
#include "units.h"

#define LOCK_SUFFIX  ".lock"
#define LOCK_WAIT_MS 1000 /* a killed holder may take a moment to be gone */

/* Whether fd is still the file at path (its holder did not remove it). */
static int same_file(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

int socklock_take(socklock *k, const char *url, char *err, size_t errlen)
{
    const char *path = url + 6;
    int n = snprintf(k->path, sizeof k->path, "%s" LOCK_SUFFIX, path);
    if (n < 0 || (size_t)n >= sizeof k->path) {
        explain_listen(url, NNG_EADDRINVAL, err, errlen);
        return NNG_EADDRINVAL;
    }
    int64_t give_up = units_now_ms() + LOCK_WAIT_MS;
    for (;;) {
        int fd = open(k->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) { /* as the socket itself would fail: say it so */
            int rv = errno == EACCES || errno == EPERM ? NNG_EPERM : NNG_ESYSERR | errno;
            explain_listen(url, rv, err, errlen);
            return rv;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            if (!same_file(fd, k->path)) { /* removed by its last holder: again */
                close(fd);
                continue;
            }
            char pid[24];
            int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
                log_warn("cannot write the pid in %s: %s", k->path, strerror(errno));
            k->fd = fd;
            if (unlink(path) == 0)
                log_info("removed the socket %s left by a daemon that is gone", path);
            return 0;
        }
        char holder[24] = "";
        ssize_t got = pread(fd, holder, sizeof holder - 1, 0);
        holder[got > 0 ? got : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        if (units_now_ms() >= give_up) {
            char why[1500];
            explain_listen(url, NNG_EADDRINUSE, why, sizeof why);
            snprintf(err, errlen, "%s (pid %s holds %s)", why, holder[0] ? holder : "?",
                     k->path);
            return NNG_EADDRINUSE;
        }
        nng_msleep(10);
    }
}

void socklock_drop(socklock *k)
{
    if (k->fd < 0)
        return;
    unlink(k->path);
    close(k->fd);
    k->fd = -1;
}

