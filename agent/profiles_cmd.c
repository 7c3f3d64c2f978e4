/* profiles_cmd.c - the `profiles` subcommands (see profiles_cmd.h). */
#include "profiles_cmd.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "priority.h"
#include "profile_library.h"
#include "profile_yaml.h"
#include "testssl_import.h"

static int usage(void) {
  fprintf(stderr, "usage: tlsprobe-agent profiles list\n"
                  "       tlsprobe-agent profiles show NAME\n"
                  "       tlsprobe-agent profiles import-testssl FILE [--current-only] "
                  "> profiles.yaml\n");
  return 2;
}

static int list(void) {
  int status = 0;
  for (size_t i = 0; i < tp_profile_library_count(); i++) {
    const tp_builtin_profile *b = tp_profile_library_at(i);
    char err[1024];
    char *prio = tp__priority_build(&b->spec, err, sizeof(err));
    printf("%s\n  %s\n  priority: %s\n", b->spec.name, b->description, prio ? prio : err);
    if (prio == NULL)
      status = 1;
    free(prio);
  }
  return status;
}

static int show(const char *name) {
  const tp_builtin_profile *b = tp_profile_library_find(name);
  if (b == NULL) {
    char known[512];
    tp_profile_library_names(known, sizeof(known));
    fprintf(stderr, "tlsprobe-agent: no built-in profile \"%s\" (built-in: %s)\n", name, known);
    return 2;
  }
  char err[1024];
  char *prio = tp__priority_build(&b->spec, err, sizeof(err));
  if (prio == NULL) {
    fprintf(stderr, "tlsprobe-agent: built-in \"%s\" does not build: %s\n", name, err);
    return 1;
  }
  /* The comment carries only our own table's data; the profile itself goes
   * through the emitter like any other. */
  printf("# built-in profile \"%s\"; GnuTLS priority string:\n#   %s\n"
         "# To adapt it, use `base: %s` and override fields, or copy this entry under a new "
         "name.\n",
         name, prio, name);
  free(prio);
  tp_profile_yaml *w;
  if (tp_profile_yaml_open(stdout, &w, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "tlsprobe-agent: %s\n", err);
    return 1;
  }
  tp_err rc = tp_profile_yaml_add(w, &b->spec, b->description, err, sizeof(err));
  char close_err[256];
  tp_err crc = tp_profile_yaml_close(w, close_err, sizeof(close_err));
  if (rc != TP_E_OK || crc != TP_E_OK) {
    fprintf(stderr, "tlsprobe-agent: %s\n", rc != TP_E_OK ? err : close_err);
    return 1;
  }
  return fflush(stdout) == 0 ? 0 : 1;
}

static int import_testssl(int argc, char **argv) {
  const char *path = NULL;
  bool current_only = false;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--current-only") == 0)
      current_only = true;
    else if (path == NULL && argv[i][0] != '-')
      path = argv[i];
    else
      return usage();
  }
  if (path == NULL)
    return usage();
  char err[1024];
  if (tp_testssl_import(path, current_only, stdout, stderr, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  return fflush(stdout) == 0 ? 0 : 1;
}

int tp_profiles_command(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "list") == 0 && argc == 2)
    return list();
  if (argc == 3 && strcmp(argv[1], "show") == 0)
    return show(argv[2]);
  if (argc >= 2 && strcmp(argv[1], "import-testssl") == 0)
    return import_testssl(argc - 1, argv + 1);
  return usage();
}
