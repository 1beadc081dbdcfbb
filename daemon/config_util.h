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

/* A setting's name, where its field is in struct config, whether a running
 * daemon may change it (SIGHUP), and what --help shows of it. */
struct config_field {
    const char *name;
    size_t offset, size;
    int live;
    const char *def;     /* the default as text; "" when none */
    const char *metavar; /* --help's placeholder: SIZE, DURATION, N, URL... */
};

/* The i-th setting of the table into *out; returns 0 past the last. */
int config_setting_at(size_t i, struct config_field *out);

/* The i-th setting's kind and accepted range, as the "accepted values" of
 * docs/configuration.md begin ("size, 1 B – 512 MB", "duration, at least
 * 1 ms", "whole number, 0–50"), into buf; "" for a setting without a
 * numeric range (strings and the like, checked by their own functions). */
void config_setting_range(size_t i, char *buf, size_t len);

#endif
