/* nc-acl-reader URL: a libnearcache client with a near tier, run by
 * test_aclpeer under setpriv as a uid that may read the namespace "mine"
 * but not "secret" (Redis holds k in both); it stays 1.5 s, long enough to
 * send a NearReport, which any peer may. Exits 0, or with the number of
 * the check that failed, said on stderr. */
#include <stdio.h>
#include <unistd.h>

#include "nearcache.h"

static int fail(int check, const char *what)
{
    fprintf(stderr, "nc-acl-reader: check %d: %s: %s\n", check, what, nc_errmsg());
    return check;
}

int main(int argc, char **argv)
{
    nc_client *c;
    nc_open_opts o = {.near_bytes = 1 << 20};
    if (argc != 2 || nc_open_ex(&c, argv[1], &o) != NC_OK)
        return fail(1, "open");
    nc_near_stats ns = {0};
    for (int i = 0; i < 200 && !ns.serving; i++) { /* the ring is mapped */
        nc_stats_near(c, &ns);
        usleep(10000);
    }
    void *v;
    size_t len;
    nc_item *items;
    nc_bytes keys[] = {NC_STR("k")};
    for (int i = 0; i < 2; i++) { /* the second time too: nothing was kept */
        if (nc_get(c, NC_STR("secret"), NC_STR("k"), &v, &len, 3000) != NC_EPERM)
            return fail(2, "get secret k is not NC_EPERM");
        if (nc_mget(c, NC_STR("secret"), keys, 1, &items, 3000) != NC_EPERM)
            return fail(3, "mget secret k is not NC_EPERM");
    }
    if (nc_stats_near(c, &ns) != NC_OK || !ns.serving || ns.entries != 0)
        return fail(4, "the near tier is not serving, or holds an entry");
    if (nc_get(c, NC_STR("mine"), NC_STR("k"), &v, &len, 3000) != NC_OK)
        return fail(5, "get mine k");
    nc_free(v);
    if (nc_stats_near(c, &ns) != NC_OK || ns.entries != 1)
        return fail(6, "the near tier did not keep mine k"); /* so it would have kept secret */
    usleep(1500 * 1000); /* the client's NearReport, sent each second, is answered */
    nc_close(c);
    return 0;
}
