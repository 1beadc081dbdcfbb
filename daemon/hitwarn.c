/* The hit-ratio warning's check; see hitwarn.h. The previous reading is a
 * plain array searched by name: readings have tens of rows. */
#include "hitwarn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct hitwarn {
    nstop_row *prev;
    size_t nprev, max;
};

int hitwarn_create(hitwarn **out, size_t max)
{
    hitwarn *w = calloc(1, sizeof *w);
    if (w == NULL || (w->prev = calloc(max ? max : 1, sizeof *w->prev)) == NULL) {
        free(w);
        return ENOMEM;
    }
    w->max = max;
    *out = w;
    return 0;
}

void hitwarn_destroy(hitwarn *w)
{
    if (w == NULL)
        return;
    free(w->prev);
    free(w);
}

static const nstop_row *previous(const hitwarn *w, const nstop_row *r)
{
    for (size_t i = 0; i < w->nprev; i++)
        if (w->prev[i].len == r->len && memcmp(w->prev[i].name, r->name, r->len) == 0)
            return &w->prev[i];
    return NULL;
}

size_t hitwarn_check(hitwarn *w, const nstop_row *rows, size_t n, uint64_t min_gets,
                     unsigned warn_pct, hitwarn_fn warn, void *arg)
{
    size_t warned = 0;
    for (size_t i = 0; i < n; i++) {
        const nstop_row *p = previous(w, &rows[i]);
        if (p == NULL || rows[i].hits < p->hits || rows[i].misses < p->misses)
            continue;
        uint64_t hits = rows[i].hits - p->hits, gets = hits + rows[i].misses - p->misses;
        if (gets == 0 || gets < min_gets || hits * 100 >= (uint64_t)warn_pct * gets)
            continue;
        warn(arg, &rows[i], gets, hits);
        warned++;
    }
    w->nprev = n < w->max ? n : w->max;
    memcpy(w->prev, rows, w->nprev * sizeof *rows);
    return warned;
}

char *hitwarn_name(const nstop_row *row, char *buf, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < row->len && o + 8 < size; i++) {
        unsigned char b = (unsigned char)row->name[i];
        if (b < 0x20 || b >= 0x7f || b == '"' || b == '\\')
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", b);
        else
            buf[o++] = (char)b;
    }
    if (row->truncated && o + 4 < size)
        memcpy(buf + o, "...", 3), o += 3;
    buf[o < size ? o : size - 1] = '\0';
    return buf;
}

struct warn_ctx {
    const config *cfg;
    int64_t interval_ms;
};

static void warn_low_ratio(void *arg, const nstop_row *row, uint64_t gets, uint64_t hits)
{
    const struct warn_ctx *w = arg;
    char name[NSTOP_NAME_MAX * 4 + 4];
    int whole = w->interval_ms % 1000 == 0;
    log_warn("namespace \"%s\": hit ratio %.1f%% over the last %lld %s (%llu of %llu Gets hit), "
             "below hit_ratio_warn (%llu%%)",
             hitwarn_name(row, name, sizeof name), 100.0 * (double)hits / (double)gets,
             (long long)(whole ? w->interval_ms / 1000 : w->interval_ms), whole ? "s" : "ms",
             (unsigned long long)hits, (unsigned long long)gets,
             (unsigned long long)w->cfg->hit_ratio_warn);
}

void hitwarn_log(hitwarn *w, nstop *top, const config *cfg, int64_t interval_ms)
{
    if (w == NULL)
        return;
    size_t max = nstop_size(top);
    nstop_row *rows = malloc(max * sizeof *rows), other;
    if (rows == NULL)
        return;
    size_t n = nstop_read(top, rows, &other);
    struct warn_ctx ctx = {cfg, interval_ms};
    if (cfg->hit_ratio_warn > 0)
        hitwarn_check(w, rows, n, cfg->hit_ratio_min_gets, (unsigned)cfg->hit_ratio_warn,
                      warn_low_ratio, &ctx);
    free(rows);
}
