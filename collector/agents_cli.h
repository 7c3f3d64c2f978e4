/* agents_cli.h - `tlsprobe-collector agents add|list|revoke`: the operator's tool for
 * the tokens file named by auth.tokens_file in collector.yaml. */
#ifndef TP_AGENTS_CLI_H
#define TP_AGENTS_CLI_H

/* argv after "agents"; returns the exit status (0, 1 runtime, 2 usage/config). */
int tp_agents_command(int argc, char **argv);

#endif
