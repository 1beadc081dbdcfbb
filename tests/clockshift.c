/* An LD_PRELOAD shim for the wall-clock test (test_clock.c): CLOCK_REALTIME,
 * time() and gettimeofday() read the real clock plus the seconds written in
 * the file $NC_CLOCK_SHIFT_FILE (0 while it is absent), read at every call,
 * so that a test steps the wall clock by rewriting the file. Every other
 * clock passes through. Processes named redis-* keep the real clock: Redis
 * stands for another host. Unlike libfaketime, it wraps nothing else (no
 * condition waits, no sleeps): what it changes is the wall clock alone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The shift in seconds; keeps errno. */
static long long shift_s(void)
{
    const char *path = getenv("NC_CLOCK_SHIFT_FILE");
    if (path == NULL || strncmp(program_invocation_short_name, "redis-", 6) == 0)
        return 0;
    int saved = errno;
    long long s = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[32];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = '\0';
            s = strtoll(buf, NULL, 10);
        }
        close(fd);
    }
    errno = saved;
    return s;
}

static int is_wall(clockid_t id)
{
    return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int rv = (int)syscall(SYS_clock_gettime, id, ts);
    if (rv == 0 && is_wall(id))
        ts->tv_sec += shift_s();
    return rv;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    struct timespec ts;
    int rv = clock_gettime(CLOCK_REALTIME, &ts);
    if (rv == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rv;
}

time_t time(time_t *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out != NULL)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
