/* Fuzz target: the config file parser (config_load_file), then what start-up
 * does with what it read (config_check, config_redis). The input is the
 * file; it is handed over as a memfd, so no file is left behind. A refused
 * file gets a message, and leaves the config as it was. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("nearcache.conf", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64], err[1024] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    config c, before;
    config_defaults(&c);
    before = c;
    if (config_load_file(&c, path, err, sizeof err) == 0) {
        config_redis_url u;
        if (config_check(&c, err, sizeof err) == 0)
            (void)config_redis(&c, &u, err, sizeof err);
    } else {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(memcmp(&c, &before, sizeof c) == 0);
    }
    close(fd);
    return 0;
}
