/* Logging to stderr: one line per event, "TIME LEVEL message", where TIME is
 * UTC with milliseconds, or with log_format = json one object per line:
 * {"time":"...","level":"info","message":"..."}. The level threshold is the one piece of
 * process-wide state in the daemon (like nng's and Redis's logger); it is atomic, so any thread may
 * log. */
#ifndef NC_LOG_H
#define NC_LOG_H

#include "config.h"

void log_set_level(enum config_log_level level);
/* Non-zero: JSON lines from now on. */
void log_set_json(int json);
int log_enabled(enum config_log_level level);

/* Formats and writes one line if `level` is enabled. */
void log_write(enum config_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(CONFIG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_write(CONFIG_LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_write(CONFIG_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(CONFIG_LOG_DEBUG))                                                         \
            log_write(CONFIG_LOG_DEBUG, __VA_ARGS__);                                              \
    } while (0)

#endif
