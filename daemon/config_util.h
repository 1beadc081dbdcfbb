/* Helpers shared by the files of the config module (config.c and
 * config_redis.c); no other module includes this. */
#ifndef NC_CONFIG_UTIL_H
#define NC_CONFIG_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_SUN_PATH 107 /* sizeof(sockaddr_un.sun_path) - 1 on Linux */
#define CONFIG_MSG_LEN      512

/* Writes a message into err (when there is room) and returns -1. */
int config_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
