/* Integration: SIGHUP makes a real nearcached read its config file again.
 * Settings that may change live take effect and are logged; the others
 * are named in a warning and keep their values; a bad file changes
 * nothing. */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static h_fleet fx; /* one daemon */
static char conf[300];

static void write_conf(const char *text)
{
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void up(void)
{
    snprintf(conf, sizeof conf, "/tmp/nc-reload-%d.conf", (int)getpid());
    write_conf("max_value_size = 1KB\nprefix = nc:v1\nhit_ratio_warn = 80\n");
    h_fleet_start(&fx, 1, "--config", conf, NULL);
}

static void down(void)
{
    h_fleet_stop(&fx);
    unlink(conf);
}

TestSuite(reload, .init = up, .fini = down, .timeout = 60);

/* Sends SIGHUP and waits until the log has `want` in it; returns the log. */
static char *hup_until(const char *want)
{
    kill(fx.node[0].pid, SIGHUP);
    char *log = NULL;
    for (int i = 0; i < 100; i++) {
        free(log);
        log = h_read_file(fx.node[0].log, NULL);
        if (strstr(log, want) != NULL)
            return log;
        h_sleep_ms(50);
    }
    cr_assert_fail("no \"%s\" in the log after SIGHUP:\n%s", want, log);
    return NULL;
}

static int set_bytes(nc_client *c, size_t n)
{
    char value[2048];
    memset(value, 'v', sizeof value);
    return nc_set(c, NC_STR("ns"), NC_STR("k"), (nc_bytes){value, n}, 60000, 2000);
}

Test(reload, a_live_limit_changes_and_is_logged)
{
    nc_client *c = h_client(&fx.node[0]);
    cr_assert_eq(set_bytes(c, 600), NC_OK, "600 bytes fit in 1KB");
    write_conf("max_value_size = 500\nprefix = nc:v1\nhit_ratio_warn = 50\n");
    free(hup_until("SIGHUP: configuration read again; now in effect: max_value_size, "
                   "hit_ratio_warn"));
    cr_assert_neq(set_bytes(c, 600), NC_OK, "600 bytes no longer fit");
    cr_assert_eq(set_bytes(c, 400), NC_OK);
    nc_close(c);
}

Test(reload, a_setting_that_cannot_change_live_is_named_and_kept)
{
    write_conf("max_value_size = 1KB\nprefix = nc:v2\nhit_ratio_warn = 80\n");
    char *log = hup_until("SIGHUP: prefix changed, but cannot change while running");
    cr_expect_null(strstr(log, "now in effect"), "nothing else changed:\n%s", log);
    free(log);
    nc_client *c = h_client(&fx.node[0]);
    cr_assert_eq(set_bytes(c, 10), NC_OK);
    nc_close(c);
    char *k = h_redis_cmd(&fx.redis, "EXISTS", H_DATA_KEY(&fx.redis, "ns", "k"), NULL);
    cr_expect_str_eq(k, "1", "the value went under the old prefix, nc:v1");
    free(k);
}

Test(reload, a_size_limit_beyond_the_sockets_cap_is_kept)
{
    write_conf("max_value_size = 64MB\nprefix = nc:v1\nhit_ratio_warn = 80\n");
    free(hup_until("SIGHUP: max_value_size changed, but cannot change while running"));
    nc_client *c = h_client(&fx.node[0]);
    cr_assert_neq(set_bytes(c, 1500), NC_OK, "still 1KB");
    nc_close(c);
}

Test(reload, a_bad_file_changes_nothing_and_the_daemon_keeps_serving)
{
    write_conf("max_value_size = 10\nbogus = 1\n");
    free(hup_until("the running configuration stays as it is"));
    cr_assert(h_daemon_alive(&fx.node[0]));
    nc_client *c = h_client(&fx.node[0]);
    cr_assert_eq(set_bytes(c, 600), NC_OK, "still 1KB");
    nc_close(c);
}

Test(reload, the_same_file_again_changes_nothing)
{
    free(hup_until("SIGHUP: configuration read again; nothing changed"));
}
