/* profiles_cmd.h - `tlsprobe-agent profiles list | show NAME |
 * import-testssl FILE [--current-only]`: the built-in profile library and the
 * testssl.sh importer on the command line. Output goes to stdout (YAML for
 * show and import), diagnostics to stderr. */
#ifndef TP_AGENT_PROFILES_CMD_H
#define TP_AGENT_PROFILES_CMD_H

/* argv[0] is "profiles". Returns the process exit status (0, 1 or 2). */
int tp_profiles_command(int argc, char **argv);

#endif
