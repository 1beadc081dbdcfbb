/* Integration: the examples in examples/ run against a real daemon and say
 * what docs/read-through.md says they say. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

Test(examples, fetch_example_loads_once_and_shows_the_ttl_policies, .timeout = 30)
{
    h_fleet fx;
    h_fleet_start(&fx, 1, NULL);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s", getenv("NC_EXAMPLE_FETCH"), fx.node[0].url);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    cr_assert_eq(status, 0, "the example failed:\n%s", out);
    cr_assert_not_null(strstr(out, "8 concurrent fetches, 1 database query"), "%s", out);
    cr_assert_not_null(strstr(out, "\"name\": \"user 42\""), "%s", out);
    cr_assert_not_null(strstr(out, "user 7: not found (known absent)"), "%s", out);
    cr_assert_not_null(strstr(out, "session after 3 s of reads: alive"), "%s", out);
    h_fleet_stop(&fx);
}
