/* core/cli/main.c — the `herd` command: global options (--version, help) and
 * the table of subcommands. Adding a subcommand is one line in `commands`
 * plus its file core/cli/<name>.c (see cli.h). */
#include <herd/herd.h>

#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    { "providers", herd_cli_providers, "list cluster providers, show one's parameters, print the search path" },
    { "config",    herd_cli_config,    "herd.yaml cluster profiles: search paths, list, check, show" },
    { "scheduler", herd_cli_scheduler, "run a long-running scheduler (default 127.0.0.1:8786)" },
    { "worker",    herd_cli_worker,    "run a long-running worker for a scheduler, reconnecting when it restarts" },
    { "status",    herd_cli_status,    "what a scheduler is doing: workers, tasks (its dashboard address, default 127.0.0.1:8787)" },
    { "slurm",     herd_cli_slurm,     "slurm.SLURMCluster: print the batch script a profile's cluster_kwargs submit" },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: herd <command> [args]\n"
                 "       herd --version\n"
                 "       herd help [command]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun `herd <command> --help` for a command's options.\n");
}

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    /* a process the runtime started as a worker runs it here and exits */
    if (herd_init(&argc, &argv) != 0) return 1;
    if (argc < 2) {
        usage(stderr);
        return HERD_CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("herd %s (provider ABI %d.%d)\n", HERD_VERSION_STRING,
               HERD_PROVIDER_ABI_MAJOR, HERD_PROVIDER_ABI_MINOR);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc > 2 && strcmp(cmd, "help") == 0) {
            const struct command *c = find(argv[2]);
            if (!c) {
                fprintf(stderr, "herd: unknown command \"%s\"\n\n", argv[2]);
                usage(stderr);
                return HERD_CLI_EXIT_USAGE;
            }
            char help[] = "--help";
            char *av[] = { argv[2], help, NULL };
            return c->run(2, av);
        }
        usage(stdout);
        return 0;
    }
    const struct command *c = find(cmd);
    if (!c) {
        fprintf(stderr, "herd: unknown command \"%s\"\n\n", cmd);
        usage(stderr);
        return HERD_CLI_EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
