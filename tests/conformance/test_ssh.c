/* tests/conformance/test_ssh.c — ssh.SSHCluster through the provider
 * conformance suite (conformance.h), against two real OpenSSH servers this
 * test starts on 127.0.0.1 high ports (tests/support/sshd.h). The hosts are
 * this machine, so the workers' pids that status reports are local pids and
 * the suite's "a worker is killed" and "nothing left after close" steps
 * apply for real. Run twice: the scheduler in this process, and on a host
 * (scheduler_host). Skips, loudly, only when sshd or ssh is not installed. */
#include "conformance.h"
#include "../support/sshd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tssh_keys keys;
static tsshd hosts[2];
static char kwargs[2048], kwargs_rs[2048];   /* scheduler in this process / on hosts[1] */
static bool have_sshd;
static char skip_why[512];

static int setup(void **state)
{
    if (!tssh_available(skip_why, sizeof skip_why)) return 0;
    if (tssh_keys_make(&keys, skip_why, sizeof skip_why)) { fprintf(stderr, "%s\n", skip_why); return -1; }
    for (int i = 0; i < 2; i++)
        if (tsshd_start(&hosts[i], &keys, NULL, "127.0.0.1", 0, true, skip_why, sizeof skip_why)) {
            fprintf(stderr, "%s\n", skip_why);
            return -1;
        }
    snprintf(kwargs, sizeof kwargs,
             "{hosts: ['%s', '%s'], n_workers: 2, name: conf,"
             " connect_options: {identity_file: '%s', known_hosts: '%s', strict_host_key_checking: 'yes'}}",
             hosts[0].host, hosts[1].host, keys.key, keys.known_hosts);
    snprintf(kwargs_rs, sizeof kwargs_rs,
             "{hosts: ['%s', '%s'], n_workers: 2, name: confrs, scheduler_host: '%s',"
             " connect_options: {identity_file: '%s', known_hosts: '%s', strict_host_key_checking: 'yes'}}",
             hosts[0].host, hosts[1].host, hosts[1].host, keys.key, keys.known_hosts);
    have_sshd = true;
    return 0;
}

static int teardown(void **state)
{
    for (int i = 0; i < 2; i++) tsshd_stop(&hosts[i]);
    tssh_keys_remove(&keys);
    return 0;
}

static void need_sshd(void)
{
    if (!have_sshd) {
        fprintf(stderr, "\n*** SKIPPED: ssh.SSHCluster conformance needs OpenSSH: %s ***\n\n", skip_why);
        skip();
    }
}

static conf_opts opts(const char *cls, const char *kw)
{
    need_sshd();
    return (conf_opts){ .cluster_class = cls, .kwargs = kw, .n_initial = 2, .pids = HERD_CONF_PIDS_LOCAL, .timeout = 30 };
}

static void test_basic(void **state)
{
    conf_opts o = opts("ssh.SSHCluster", kwargs);
    conf_run_basic(&o);
}

static void test_lifecycle(void **state)
{
    conf_opts o = opts("ssh.SSHCluster", kwargs);
    conf_run_lifecycle(&o);
}

/* The same suite with the scheduler on a host (scheduler_host). */
static void test_basic_scheduler_host(void **state)
{
    conf_opts o = opts("ssh.SSHCluster", kwargs_rs);
    conf_run_basic(&o);
}

static void test_lifecycle_scheduler_host(void **state)
{
    conf_opts o = opts("ssh.SSHCluster", kwargs_rs);
    conf_run_lifecycle(&o);
}

static void test_alias(void **state)
{
    conf_opts o = opts("distributed.SSHCluster", kwargs);
    conf_run_basic(&o);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);   /* the hosts re-run this binary as a worker */
    const struct CMUnitTest suite[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_basic_scheduler_host),
        cmocka_unit_test(test_lifecycle_scheduler_host),
        cmocka_unit_test(test_alias),
    };
    return cmocka_run_group_tests_name("ssh.SSHCluster conformance", suite, setup, teardown);
}
