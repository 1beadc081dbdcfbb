/* secret: reads a secret (a Redis password) from a file that only its owner
 * may read, as systemd's LoadCredential= hands it over. The secret never
 * appears in a message; the file's path always does. */
#ifndef NC_SECRET_H
#define NC_SECRET_H

#include <stddef.h>

/* Reads the secret in `path` into out (len bytes, NUL-terminated). A
 * relative path is looked up in $CREDENTIALS_DIRECTORY when that is set.
 * The file must be a regular file that neither group nor others may read or
 * write, hold at most len - 1 bytes, and have no NUL or line break except
 * one final newline, which is dropped. An empty file is an empty secret.
 * Returns 0, or -1 with a message naming the file in err. */
int secret_read(const char *path, char *out, size_t len, char *err, size_t errlen);

#endif
