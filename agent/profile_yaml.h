/* profile_yaml.h - writes a tp_profile_spec as one entry of agent.yaml's
 * `profiles:` list (for `profiles show` and `profiles import-testssl`). The
 * output loads back through agent/config.c unchanged: every string is
 * double-quoted and escaped, so names and notes from imported data cannot
 * break the YAML. */
#ifndef TP_AGENT_PROFILE_YAML_H
#define TP_AGENT_PROFILE_YAML_H
#include <stdio.h>

#include "profile.h"

/* Writes "  # comment..." lines (wrapped; comment may be NULL) and then
 * "  - name: ..." with the spec's fields, indented under a top-level
 * `profiles:` key. */
void tp_profile_yaml_write(FILE *out, const tp_profile_spec *spec, const char *comment);

#endif
