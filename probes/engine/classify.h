/* classify.h - maps what went wrong in a probe to exactly one outcome class
 * plus a detail string. Pure functions of their inputs, so the taxonomy can be
 * unit-tested without a network. */
#ifndef TP_CLASSIFY_H
#define TP_CLASSIFY_H
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

#include "outcome.h"

/* A socket-level failure while connecting (the errno from SO_ERROR/connect). */
tp_outcome tp_classify_connect_errno(int err, char *detail, size_t len);

/* gnutls_handshake() returned the fatal `rc`; `alert` is gnutls_alert_get()
 * (only meaningful for GNUTLS_E_FATAL_ALERT_RECEIVED), `sys_errno` the errno
 * captured right after the call (for GNUTLS_E_PULL/PUSH_ERROR). */
tp_outcome tp_classify_handshake(int rc, gnutls_alert_description_t alert, int sys_errno,
                                 char *detail, size_t len);

/* Refines a fatal alert received after the server asked for a client
 * certificate (CertificateRequest):
 *  - no certificate configured: certificate_required (116) or
 *    handshake_failure (40) -> client_cert_required;
 *  - configured but not sent (GnuTLS sends none when it does not chain to a
 *    CA the server lists): the same alerts -> client_cert_rejected;
 *  - sent: certificate alerts (bad_certificate, unsupported/revoked/expired/
 *    unknown certificate, unknown_ca, access_denied) and 40/116 ->
 *    client_cert_rejected.
 * Anything else keeps `outcome`. Rewrites detail when it refines. */
tp_outcome tp_classify_client_cert_alert(tp_outcome outcome, gnutls_alert_description_t alert,
                                         bool configured, bool sent, char *detail, size_t len);

/* Certificate verification status from gnutls_certificate_verify_peers3();
 * returns TP_OUTCOME_OK when status == 0. */
tp_outcome tp_classify_verify_status(unsigned status, char *detail, size_t len);

#endif
