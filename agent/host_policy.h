/* host_policy.h - keeps the host's GnuTLS system policy out of the probes.
 *
 * GnuTLS reads the system priority file (/etc/gnutls/config, or the file
 * named by GNUTLS_SYSTEM_PRIORITY_FILE) when the library loads -- in a
 * constructor, before main -- and rechecks it on every priority init. Its
 * [overrides] section (disabled-version = tls1.0, insecure-hash = sha1...)
 * removes algorithms from every priority string, and an application cannot
 * re-enable them. A prober that must say "a TLS 1.0 client can still
 * connect" cannot live with that, so the agent re-executes itself once with
 * GNUTLS_SYSTEM_PRIORITY_FILE=/dev/null: GnuTLS 3.7.9 loads the empty file
 * ("cfg: loaded system config /dev/null") and applies no overrides. A marker
 * variable prevents a loop. Operators who want the host policy to apply opt
 * out with --honour-host-policy or TLSPROBE_HOST_POLICY=honour.
 *
 * The libcurl push to the collector shares the process, so it ignores the
 * host policy too. */
#ifndef TP_AGENT_HOST_POLICY_H
#define TP_AGENT_HOST_POLICY_H
#include <stdbool.h>

#include "tp_log.h"

/* The variable the agent sets, and its value. */
#define TP_HOST_POLICY_FILE "/dev/null"
/* Set before the re-exec to the policy file that was in effect; its presence
 * also marks "already re-executed". */
#define TP_HOST_POLICY_WAS_ENV "TLSPROBE_HOST_POLICY_WAS"
/* "honour" = opt out. */
#define TP_HOST_POLICY_ENV "TLSPROBE_HOST_POLICY"

typedef enum {
  TP_HOST_POLICY_IGNORED,   /* GNUTLS_SYSTEM_PRIORITY_FILE=/dev/null is in effect */
  TP_HOST_POLICY_HONOURED,  /* operator opted out */
  TP_HOST_POLICY_EXEC_FAILED, /* could not re-exec: the host policy applies */
} tp_host_policy_mode;

typedef struct tp_host_policy_state {
  tp_host_policy_mode mode;
  char file[512]; /* the host policy file that is ignored / honoured */
  int exec_errno; /* TP_HOST_POLICY_EXEC_FAILED only */
} tp_host_policy_state;

/* Call first in main, before GnuTLS is used. Re-executes /proc/self/exe
 * with the same argv when needed (does not return then); otherwise fills
 * *st. `honour` is the --honour-host-policy flag. */
void tp_host_policy_isolate(char **argv, bool honour, tp_host_policy_state *st);

/* One info (or warn, on exec failure) line saying what was done. */
void tp_host_policy_log(const tp_host_policy_state *st, const tp_log *log);

#endif
