/* secret: see secret.h. The file is opened once and every check is made on
 * the open descriptor (fstat), so what is checked is what is read. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes "DIR/path" (or path itself) into buf. Returns 0, or -1 when it does
 * not fit. */
static int resolve(const char *path, char *buf, size_t len)
{
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    int n = path[0] != '/' && dir != NULL && dir[0] != '\0' ? snprintf(buf, len, "%s/%s", dir, path)
                                                            : snprintf(buf, len, "%s", path);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Checks what fstat says of the open file. */
static int check_file(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "%s: group or others may read or write it (mode %04o); a secret file must be "
                 "private: chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        return -1;
    }
    return 0;
}

/* Reads at most len - 1 bytes of the file and checks the text. */
static int read_text(int fd, const char *path, char *out, size_t len, char *err, size_t errlen)
{
    size_t n = 0;
    char extra;
    for (ssize_t got; n < len - 1; n += (size_t)got) {
        got = read(fd, out + n, len - 1 - n);
        if (got < 0 && errno == EINTR)
            got = 0;
        else if (got < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            return -1;
        } else if (got == 0)
            break;
    }
    if (n == len - 1 && read(fd, &extra, 1) == 1) {
        snprintf(err, errlen, "%s: longer than %zu bytes", path, len - 1);
        return -1;
    }
    if (n > 0 && out[n - 1] == '\n')
        n--;
    out[n] = '\0';
    if (memchr(out, '\0', n) != NULL || memchr(out, '\n', n) != NULL ||
        memchr(out, '\r', n) != NULL) {
        snprintf(err, errlen, "%s: holds a NUL byte or more than one line", path);
        return -1;
    }
    return 0;
}

int secret_read(const char *path, char *out, size_t len, char *err, size_t errlen)
{
    char full[1024];
    if (len == 0)
        return -1;
    out[0] = '\0';
    if (resolve(path, full, sizeof full) != 0) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", full, strerror(errno));
        return -1;
    }
    int rc = check_file(fd, full, err, errlen);
    if (rc == 0)
        rc = read_text(fd, full, out, len, err, errlen);
    close(fd);
    if (rc != 0)
        memset(out, 0, len);
    return rc;
}
