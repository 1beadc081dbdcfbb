/* Fuzz target: the Redis URL parser (config_parse_redis_url), every scheme
 * it reads (its seeds hold each), from a flag or a config file. A URL it
 * accepts comes out whole (terminated strings, a database >= 0); one it
 * refuses gets a message. */
#include <string.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1), err[512];
    if (url == NULL)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    config_redis_url u;
    memset(&u, 0, sizeof u);
    if (config_parse_redis_url(url, &u, err, sizeof err) == 0) {
        FUZZ_CHECK(memchr(u.host, '\0', sizeof u.host) != NULL);
        FUZZ_CHECK(memchr(u.password, '\0', sizeof u.password) != NULL);
        FUZZ_CHECK(memchr(u.user, '\0', sizeof u.user) != NULL);
        FUZZ_CHECK(u.tls == 0 || u.tls == 1);
        FUZZ_CHECK(u.tls_ctx == NULL); /* the parser makes no TLS context */
        FUZZ_CHECK(u.user[0] == '\0' || u.password[0] != '\0'); /* a user comes with a password */
        FUZZ_CHECK(u.db >= 0);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    free(url);
    return 0;
}
