/* nc-soak-client: one C client of bench/soak.sh. A writer sets its own keys
 * (w<ID>-<K>) to increasing sequence numbers; a reader gets random keys of
 * every writer. Each acknowledged write and each read goes to a log line
 * with CLOCK_MONOTONIC microseconds, which bench/soak_check.py checks for
 * stale reads (the clock is the same in every process of the host):
 *   W KEY SEQ START ACK     an acknowledged write
 *   R KEY SEQ|- START END   a read and what it found
 * Failed calls are counted, not logged (a failed write may still apply). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nearcache.h"

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(FILE *to, int code)
{
    fprintf(to, "usage: nc-soak-client URL LOG writer|reader ID WRITERS KEYS RATE "
                    "NEAR_BYTES\n"
                    "  ID: this writer's number; WRITERS, KEYS: the keys readers read;\n"
                    "  RATE: calls per second; NEAR_BYTES: 0 for no near tier\n"
                    "(run by bench/soak.sh)\n");
    exit(code);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--help") == 0)
        usage(stdout, 0);
    if (argc != 9)
        usage(stderr, 2);
    const char *url = argv[1];
    int writer = strcmp(argv[3], "writer") == 0;
    if (!writer && strcmp(argv[3], "reader") != 0)
        usage(stderr, 2);
    int id = atoi(argv[4]), writers = atoi(argv[5]), keys = atoi(argv[6]), rate = atoi(argv[7]);
    long near = atol(argv[8]);
    if (writers < 1 || keys < 1 || rate < 1 || near < 0)
        usage(stderr, 2);
    FILE *log = fopen(argv[2], "a");
    if (log == NULL) {
        perror(argv[2]);
        return 1;
    }
    setvbuf(log, NULL, _IOLBF, 0);
    nc_client *c = NULL;
    nc_open_opts o = {.flags = NC_OPEN_BACKGROUND, .near_bytes = (size_t)near};
    if (nc_open_ex(&c, url, &o) != NC_OK) {
        fprintf(stderr, "nc-soak-client: %s\n", nc_errmsg());
        return 1;
    }
    unsigned seed = (unsigned)getpid();
    static char value[4200];
    long long seq = now_us(); /* increasing across restarts of this writer */
    long long errors = 0, calls = 0;
    long long next = now_us();
    for (;;) {
        char key[32];
        long long start = now_us();
        if (writer) {
            int k = (int)(calls % keys);
            snprintf(key, sizeof key, "w%d-%d", id, k);
            int n = snprintf(value, sizeof value, "%lld:", ++seq);
            size_t pad = (size_t)(rand_r(&seed) % 4096);
            memset(value + n, 'x', pad);
            int rv = nc_set(c, NC_STR("soak"), (nc_bytes){key, strlen(key)},
                            (nc_bytes){value, n + pad}, 600000, 1000);
            if (rv == NC_OK)
                fprintf(log, "W %s %lld %lld %lld\n", key, seq, start, now_us());
            else
                errors++;
        } else {
            snprintf(key, sizeof key, "w%d-%d", rand_r(&seed) % writers, rand_r(&seed) % keys);
            void *v = NULL;
            size_t len = 0;
            int rv = nc_get(c, NC_STR("soak"), (nc_bytes){key, strlen(key)}, &v, &len, 1000);
            long long end = now_us();
            if (rv == NC_OK)
                fprintf(log, "R %s %lld %lld %lld\n", key, strtoll(v, NULL, 10), start, end);
            else if (rv == NC_ENOTFOUND)
                fprintf(log, "R %s - %lld %lld\n", key, start, end);
            else
                errors++;
            nc_free(v);
        }
        if (++calls % 1000 == 0)
            fprintf(stderr, "%lld calls, %lld errors\n", calls, errors);
        next += 1000000 / rate;
        long long wait = next - now_us();
        if (wait > 0)
            usleep((useconds_t)wait);
        else if (wait < -1000000)
            next = now_us(); /* fell behind (a fault): do not burst */
    }
}
