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

/* A setting's name, where its field is in struct config, and whether a
 * running daemon may change it (SIGHUP). */
struct config_field {
    const char *name;
    size_t offset, size;
    int live;
};

/* The i-th setting of the table into *out; returns 0 past the last. */
int config_setting_at(size_t i, struct config_field *out);

#endif
