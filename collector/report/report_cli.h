/* report_cli.h - the `report` subcommand of tlsprobe-collector. */
#ifndef TP_REPORT_CLI_H
#define TP_REPORT_CLI_H
#include <stdio.h>

/* argv after "report". Exit status: 0, 1 runtime error, 2 usage; with --check
 * 0 healthy, 1 warning, 2 critical, 3 no report. */
int tp_report_command(int argc, char **argv);
/* The usage lines of `report`, for the binary's --help. */
void tp_report_usage(FILE *out);

#endif
