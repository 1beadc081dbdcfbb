/* Read-through caching with nearcache: the C form of a @cached(ttl, key)
 * decorator. A "database" that takes 100 ms per query is put behind
 * nc_fetch(); eight threads ask for the same user at once, and the query
 * runs once. Then the TTL policies: negative caching for a user that does
 * not exist, and a sliding TTL.
 *
 *   build/examples/nearcache-example-fetch [URL]   (default: $NEARCACHE_URL)
 */
#include <nearcache.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int queries;

/* The loader: "SELECT name FROM users WHERE id = KEY", slowly. */
static int load_user(void *arg, nc_bytes ns, nc_bytes key, void **value, size_t *len)
{
    (void)arg, (void)ns;
    atomic_fetch_add(&queries, 1);
    struct timespec ts = {0, 100 * 1000000};
    nanosleep(&ts, NULL);
    char *row = malloc(64);
    if (row == NULL)
        return -1;
    *len = (size_t)snprintf(row, 64, "{\"id\": %.*s, \"name\": \"user %.*s\"}", (int)key.len,
                            (const char *)key.data, (int)key.len, (const char *)key.data);
    *value = row;
    return 0;
}

static nc_client *client;

static void *reader(void *arg)
{
    (void)arg;
    void *v;
    size_t len;
    int rv =
        nc_fetch(client, NC_STR("users"), NC_STR("42"), 60000, load_user, NULL, &v, &len, 3000);
    if (rv == NC_OK)
        nc_free(v);
    else
        fprintf(stderr, "fetch: %s: %s\n", nc_strerror(rv), nc_errmsg());
    return NULL;
}

int main(int argc, char **argv)
{
    /* A near tier: hot keys are answered in this process, kept coherent by
     * the daemon's ring. */
    nc_open_opts o = {.near_bytes = 16u << 20};
    if (nc_open_ex(&client, argc > 1 ? argv[1] : NULL, &o) != NC_OK) {
        fprintf(stderr, "nearcache: %s\n", nc_errmsg());
        return 1;
    }
    nc_del(client, NC_STR("users"), NC_STR("42"), NULL, 0); /* start cold */

    /* 1. Eight callers miss at once; one of them loads, the others wait for
     *    its value (a lease), and the database sees one query. */
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, reader, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    printf("8 concurrent fetches, %d database query\n", atomic_load(&queries));

    void *v;
    size_t len;
    nc_get_info info;
    nc_get_ex(client, NC_STR("users"), NC_STR("42"), &v, &len, &info, 0);
    printf("cached: %s (from %s)\n", (char *)v,
           info.source == NC_SOURCE_NEAR ? "the near tier"
           : info.source == NC_SOURCE_L1 ? "L1"
                                         : "Redis");
    nc_free(v);

    /* 2. Negative caching: remember for 30 s that user 7 does not exist. */
    nc_set_opts absent = {.negative = 1};
    nc_set_opt(client, NC_STR("users"), NC_STR("7"), NC_STR(""), 30000, &absent, 0);
    int rv = nc_get_ex(client, NC_STR("users"), NC_STR("7"), &v, &len, &info, 0);
    printf("user 7: %s%s\n", nc_strerror(rv), info.negative ? " (known absent)" : "");

    /* 3. Sliding TTL: a session that lives 2 s past its last read. */
    nc_set(client, NC_STR("sessions"), NC_STR("abc"), NC_STR("alice"), 2000, 0);
    nc_get_opts slide = {.slide_ttl_ms = 2000};
    for (int i = 0; i < 6; i++) { /* 3 s of reads: it outlives its first TTL */
        struct timespec ts = {0, 500 * 1000000};
        nanosleep(&ts, NULL);
        if (nc_get_opt(client, NC_STR("sessions"), NC_STR("abc"), &slide, &v, &len, NULL, 0) ==
            NC_OK)
            nc_free(v);
    }
    rv = nc_get(client, NC_STR("sessions"), NC_STR("abc"), &v, &len, 0);
    printf("session after 3 s of reads: %s\n", rv == NC_OK ? "alive" : "expired");
    if (rv == NC_OK)
        nc_free(v);
    nc_close(client);
    return atomic_load(&queries) == 1 ? 0 : 1;
}
