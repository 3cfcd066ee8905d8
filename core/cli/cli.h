/* core/cli/cli.h — the `herd` command's subcommands. Each lives in its own
 * file core/cli/<name>.c as `int herd_cli_<name>(int argc, char **argv)`
 * (argv[0] is the subcommand's name; returns the exit status: 0 success,
 * 1 failure, 2 bad usage) and has one line in the table in main.c. */
#ifndef HERD_CLI_H
#define HERD_CLI_H

#define HERD_CLI_EXIT_USAGE 2

int herd_cli_providers(int argc, char **argv);
int herd_cli_config(int argc, char **argv);
int herd_cli_scheduler(int argc, char **argv);
int herd_cli_worker(int argc, char **argv);
int herd_cli_status(int argc, char **argv);
int herd_cli_slurm(int argc, char **argv);

#endif
