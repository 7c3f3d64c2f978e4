/* host_policy.c - re-exec with GNUTLS_SYSTEM_PRIORITY_FILE=/dev/null (see
 * host_policy.h for why). */
#include "host_policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* GnuTLS's compiled-in default (Debian: --with-system-priority-file). */
#define GNUTLS_DEFAULT_POLICY "/etc/gnutls/config"

void tp_host_policy_isolate(char **argv, bool honour, tp_host_policy_state *st) {
  memset(st, 0, sizeof(*st));
  const char *current = getenv("GNUTLS_SYSTEM_PRIORITY_FILE");
  const char *opt = getenv(TP_HOST_POLICY_ENV);
  const char *was = getenv(TP_HOST_POLICY_WAS_ENV);
  snprintf(st->file, sizeof(st->file), "%s", current ? current : GNUTLS_DEFAULT_POLICY);

  if (honour || (opt != NULL && strcmp(opt, "honour") == 0)) {
    st->mode = TP_HOST_POLICY_HONOURED;
    return;
  }
  if (current != NULL && strcmp(current, TP_HOST_POLICY_FILE) == 0) {
    st->mode = TP_HOST_POLICY_IGNORED;
    /* Say which file is ignored: the one before our re-exec, if we did it. */
    snprintf(st->file, sizeof(st->file), "%s", was ? was : TP_HOST_POLICY_FILE);
    if (was != NULL)
      unsetenv(TP_HOST_POLICY_WAS_ENV);
    return;
  }
  if (was != NULL) {
    /* We already re-executed and the variable is still not ours: something
     * rewrote the environment. Never loop. */
    st->mode = TP_HOST_POLICY_EXEC_FAILED;
    st->exec_errno = 0;
    return;
  }
  if (setenv(TP_HOST_POLICY_WAS_ENV, st->file, 1) != 0 ||
      setenv("GNUTLS_SYSTEM_PRIORITY_FILE", TP_HOST_POLICY_FILE, 1) != 0) {
    st->mode = TP_HOST_POLICY_EXEC_FAILED;
    st->exec_errno = errno;
    return;
  }
  /* /proc/self/exe, not argv[0]: the binary itself, whatever PATH says. */
  execv("/proc/self/exe", argv);
  st->mode = TP_HOST_POLICY_EXEC_FAILED;
  st->exec_errno = errno;
  /* Leave the environment as we found it for anything we start later. */
  unsetenv(TP_HOST_POLICY_WAS_ENV);
  if (current != NULL)
    setenv("GNUTLS_SYSTEM_PRIORITY_FILE", current, 1);
  else
    unsetenv("GNUTLS_SYSTEM_PRIORITY_FILE");
}

void tp_host_policy_log(const tp_host_policy_state *st, const tp_log *log) {
  switch (st->mode) {
  case TP_HOST_POLICY_IGNORED:
    tp_log_info(log, "host GnuTLS policy ignored",
                "policy_file=\"%s\" GNUTLS_SYSTEM_PRIORITY_FILE=%s why=\"profiles must not "
                "depend on the host's crypto policy\" opt_out=\"--honour-host-policy or "
                "%s=honour\"",
                st->file, TP_HOST_POLICY_FILE, TP_HOST_POLICY_ENV);
    break;
  case TP_HOST_POLICY_HONOURED:
    tp_log_info(log, "host GnuTLS policy honoured",
                "policy_file=\"%s\" why=\"--honour-host-policy or %s=honour\" "
                "effect=\"versions and algorithms it disables fail in every profile\"",
                st->file, TP_HOST_POLICY_ENV);
    break;
  case TP_HOST_POLICY_EXEC_FAILED:
    tp_log_warn(log, "cannot ignore the host GnuTLS policy",
                "policy_file=\"%s\" error=\"%s\" effect=\"versions and algorithms the host "
                "policy disables fail in every profile\" fix=\"start the agent with "
                "GNUTLS_SYSTEM_PRIORITY_FILE=%s\"",
                st->file,
                st->exec_errno ? strerror(st->exec_errno) : "re-exec did not take effect",
                TP_HOST_POLICY_FILE);
    break;
  }
}
