/* What a running daemon does with a configuration re-read on SIGHUP: the
 * settings the table marks live (log level and format, request limits,
 * TTL bounds, the hit-ratio warning) take their new values; every other
 * setting keeps the one it started with. The limits on sizes change only
 * within the message cap the socket was opened with. */
#include "config.h"
#include "config_util.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

/* Appends ", name" (or "name" first) to list, as room allows. */
static void list_add(char *list, size_t size, const char *name)
{
    size_t len = strlen(list);
    if (len < size)
        snprintf(list + len, size - len, "%s%s", len > 0 ? ", " : "", name);
}

static int is_size_limit(const char *name)
{
    return strcmp(name, "max_key_size") == 0 || strcmp(name, "max_namespace_size") == 0 ||
           strcmp(name, "max_value_size") == 0;
}

int config_apply_live(config *live, const config *fresh, uint64_t request_cap, char *applied,
                      size_t alen, char *kept, size_t klen)
{
    struct config_field f;
    int fits = config_max_request(fresh) <= request_cap;
    int changes = 0;
    applied[0] = kept[0] = '\0';
    for (size_t i = 0; config_setting_at(i, &f); i++) {
        char *to = (char *)live + f.offset;
        const char *from = (const char *)fresh + f.offset;
        if (memcmp(to, from, f.size) == 0)
            continue;
        changes++;
        if (!f.live || (is_size_limit(f.name) && !fits)) {
            list_add(kept, klen, f.name);
            continue;
        }
        /* One aligned store per number: readers see the old or the new value. */
        if (f.size == sizeof(uint64_t))
            __atomic_store_n((uint64_t *)(void *)to, *(const uint64_t *)(const void *)from,
                             __ATOMIC_RELAXED);
        else
            memcpy(to, from, f.size);
        list_add(applied, alen, f.name);
    }
    return changes;
}

void config_reload(config *live, int argc, char **argv, uint64_t request_cap)
{
    config fresh;
    char err[1024], applied[512], kept[512];
    config_defaults(&fresh);
    if (config_parse_args(&fresh, argc, argv, stdout, err, sizeof err) != 0) {
        log_error("SIGHUP: %s; the running configuration stays as it is", err);
        return;
    }
    int changes =
        config_apply_live(live, &fresh, request_cap, applied, sizeof applied, kept, sizeof kept);
    log_set_level(live->log_level);
    log_set_json(config_log_json(live));
    if (changes == 0)
        log_info("SIGHUP: configuration read again; nothing changed");
    if (applied[0] != '\0')
        log_info("SIGHUP: configuration read again; now in effect: %s", applied);
    if (kept[0] != '\0')
        log_warn("SIGHUP: %s changed, but cannot change while running (a size limit may not "
                 "outgrow the socket's message cap): the old values stay until a restart",
                 kept);
}
