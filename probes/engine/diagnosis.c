/* diagnosis.c - what a handshake_failure alert means. Servers send alert 40
 * both when no cipher suite and when no group is shared, so the alert alone
 * blames nobody. Evidence decides: one attempt that offers every group, then
 * one that offers every cipher suite this GnuTLS build can negotiate (both
 * priority caches built once per profile). The first that succeeds proves
 * no_shared_group / no_shared_cipher; if neither does, the alert stands.
 * Diagnostic attempts never change the probe's timings or facts. */
#include <stdio.h>

#include "probe_internal.h"

bool tp__diagnosis_wanted(const tp_conn *c, tp_outcome outcome) {
  return outcome == TP_OUTCOME_ALERT && gnutls_alert_get(c->session) == GNUTLS_A_HANDSHAKE_FAILURE;
}

void tp__diagnosis_begin(tp_probe *p, const tp_verdict *primary) {
  p->primary = *primary;
  p->timings_fixed = true;
  tp__probe_end_timings(p);
  tp__probe_start_attempt(p, TP_ATTEMPT_DIAG_GROUPS);
}

void tp__diagnosis_next(tp_probe *p, tp_attempt_kind kind, const tp_verdict *v) {
  const char *dimension = kind == TP_ATTEMPT_DIAG_GROUPS ? "group" : "cipher suite";
  char detail[sizeof(v->detail) + 256];
  if (v->outcome == TP_OUTCOME_OK) {
    snprintf(detail, sizeof(detail),
             "%s; a diagnostic handshake offering every %s succeeded (server chose %s): the "
             "profile and the server share no %s",
             p->primary.detail, dimension, v->chosen[0] ? v->chosen : "?", dimension);
    tp__probe_finish(p,
                   kind == TP_ATTEMPT_DIAG_GROUPS ? TP_OUTCOME_NO_SHARED_GROUP
                                                  : TP_OUTCOME_NO_SHARED_CIPHER,
                   detail);
    return;
  }
  if (kind == TP_ATTEMPT_DIAG_GROUPS) {
    tp__probe_start_attempt(p, TP_ATTEMPT_DIAG_CIPHERS);
    return;
  }
  /* Neither widened handshake succeeded: the evidence proves nothing and the
   * primary failure stands. */
  snprintf(detail, sizeof(detail),
           "%s (diagnostic handshakes widening groups and ciphers failed too)", p->primary.detail);
  tp__probe_finish(p, p->primary.outcome, detail);
}
