/* classify.c - the error taxonomy's decision table (docs/errors.md). */
#include "classify.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tp_error.h"

tp_outcome tp_classify_connect_errno(int err, char *detail, size_t len) {
  char text[128];
  snprintf(detail, len, "connect: %s", tp_errno_text(err, text, sizeof(text)));
  switch (err) {
  case ECONNREFUSED:
    return TP_OUTCOME_CONNECTION_REFUSED;
  case ETIMEDOUT:
    return TP_OUTCOME_CONNECT_TIMEOUT;
  case ECONNRESET:
  case EPIPE:
    return TP_OUTCOME_CONNECTION_RESET;
  case ENETUNREACH:
  case EHOSTUNREACH:
  case EADDRNOTAVAIL:
    return TP_OUTCOME_NETWORK_UNREACHABLE;
  default:
    return TP_OUTCOME_OTHER;
  }
}

/* "GNUTLS_A_HANDSHAKE_FAILURE" -> "handshake_failure", the RFC 8446 §6 name. */
static void alert_rfc_name(gnutls_alert_description_t alert, char *out, size_t len) {
  const char *name = gnutls_alert_get_strname(alert);
  if (name == NULL)
    name = "unknown";
  if (strncmp(name, "GNUTLS_A_", 9) == 0)
    name += 9;
  size_t i = 0;
  for (; name[i] != '\0' && i + 1 < len; i++)
    out[i] = (char)tolower((unsigned char)name[i]);
  out[i] = '\0';
}

static tp_outcome classify_alert(gnutls_alert_description_t alert, char *detail, size_t len) {
  char name[64];
  alert_rfc_name(alert, name, sizeof(name));
  snprintf(detail, len, "fatal alert %s (%d) from server", name, (int)alert);
  switch (alert) {
  case GNUTLS_A_PROTOCOL_VERSION:
    return TP_OUTCOME_PROTOCOL_VERSION;
  case GNUTLS_A_INSUFFICIENT_SECURITY:
    /* RFC 5246 §7.2.2: sent when the server requires ciphers more secure than
     * the client's -- a cipher policy mismatch. */
    return TP_OUTCOME_NO_SHARED_CIPHER;
  case GNUTLS_A_CERTIFICATE_REQUIRED: /* RFC 8446 §6.2 */
    return TP_OUTCOME_CLIENT_CERT_REQUIRED;
  default:
    /* handshake_failure (40) is what servers send both for "no shared cipher"
     * and "no shared group"; without more evidence we report the alert as is. */
    return TP_OUTCOME_ALERT;
  }
}

tp_outcome tp_classify_handshake(int rc, gnutls_alert_description_t alert, int sys_errno,
                                 char *detail, size_t len) {
  switch (rc) {
  case GNUTLS_E_FATAL_ALERT_RECEIVED:
    return classify_alert(alert, detail, len);
  case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
    snprintf(detail, len, "server selected a TLS version the profile does not offer (%s)",
             gnutls_strerror_name(rc));
    return TP_OUTCOME_PROTOCOL_VERSION;
  case GNUTLS_E_UNKNOWN_CIPHER_SUITE:
  case GNUTLS_E_NO_CIPHER_SUITES:
    snprintf(detail, len, "no cipher suite in common (%s)", gnutls_strerror_name(rc));
    return TP_OUTCOME_NO_SHARED_CIPHER;
  case GNUTLS_E_NO_COMMON_KEY_SHARE:
    snprintf(detail, len, "no key-exchange group in common (%s)", gnutls_strerror_name(rc));
    return TP_OUTCOME_NO_SHARED_GROUP;
  case GNUTLS_E_PREMATURE_TERMINATION:
    snprintf(detail, len, "server closed the connection during the handshake");
    return TP_OUTCOME_UNEXPECTED_EOF;
  case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
  case GNUTLS_E_UNEXPECTED_PACKET:
    snprintf(detail, len, "peer does not speak TLS as expected (%s)", gnutls_strerror_name(rc));
    return TP_OUTCOME_NOT_TLS;
  case GNUTLS_E_PULL_ERROR:
  case GNUTLS_E_PUSH_ERROR:
    if (sys_errno == ECONNRESET || sys_errno == EPIPE) {
      snprintf(detail, len, "connection reset during the handshake");
      return TP_OUTCOME_CONNECTION_RESET;
    }
    snprintf(detail, len, "%s: %s", gnutls_strerror_name(rc), strerror(sys_errno));
    return TP_OUTCOME_OTHER;
  default:
    snprintf(detail, len, "%s: %s", gnutls_strerror_name(rc) ? gnutls_strerror_name(rc) : "?",
             gnutls_strerror(rc));
    return TP_OUTCOME_OTHER;
  }
}

tp_outcome tp_classify_client_cert_alert(tp_outcome outcome, gnutls_alert_description_t alert,
                                         bool configured, bool sent, char *detail, size_t len) {
  char name[64];
  alert_rfc_name(alert, name, sizeof(name));
  bool demands_one = alert == GNUTLS_A_CERTIFICATE_REQUIRED || alert == GNUTLS_A_HANDSHAKE_FAILURE;
  if (!configured) {
    if (!demands_one)
      return outcome;
    snprintf(detail, len,
             "the server requires a client certificate and the profile has none "
             "(fatal alert %s (%d) after its CertificateRequest)",
             name, (int)alert);
    return TP_OUTCOME_CLIENT_CERT_REQUIRED;
  }
  if (!sent) {
    if (!demands_one)
      return outcome;
    snprintf(detail, len,
             "the profile's client certificate does not chain to a CA the server accepts, so none "
             "was sent (fatal alert %s (%d))",
             name, (int)alert);
    return TP_OUTCOME_CLIENT_CERT_REJECTED;
  }
  switch (alert) {
  case GNUTLS_A_BAD_CERTIFICATE:
  case GNUTLS_A_UNSUPPORTED_CERTIFICATE:
  case GNUTLS_A_CERTIFICATE_REVOKED:
  case GNUTLS_A_CERTIFICATE_EXPIRED:
  case GNUTLS_A_CERTIFICATE_UNKNOWN:
  case GNUTLS_A_UNKNOWN_CA:
  case GNUTLS_A_ACCESS_DENIED:
  case GNUTLS_A_CERTIFICATE_REQUIRED:
  case GNUTLS_A_HANDSHAKE_FAILURE:
    snprintf(detail, len, "the server refused the profile's client certificate (fatal alert %s (%d))",
             name, (int)alert);
    return TP_OUTCOME_CLIENT_CERT_REJECTED;
  default:
    return outcome;
  }
}

tp_outcome tp_classify_verify_status(unsigned status, char *detail, size_t len) {
  /* Order matters: the most actionable, most specific cause wins. A chain that
   * does not reach a trusted root makes every other check moot. */
  static const struct {
    unsigned flag;
    tp_outcome outcome;
  } order[] = {
      {GNUTLS_CERT_REVOKED, TP_OUTCOME_REVOKED},
      {GNUTLS_CERT_SIGNER_NOT_FOUND, TP_OUTCOME_UNKNOWN_CA},
      {GNUTLS_CERT_EXPIRED, TP_OUTCOME_EXPIRED},
      {GNUTLS_CERT_NOT_ACTIVATED, TP_OUTCOME_NOT_YET_VALID},
      {GNUTLS_CERT_INSECURE_ALGORITHM, TP_OUTCOME_INSECURE_ALGORITHM},
      {GNUTLS_CERT_UNEXPECTED_OWNER, TP_OUTCOME_HOSTNAME_MISMATCH},
  };
  if (status == 0) {
    detail[0] = '\0';
    return TP_OUTCOME_OK;
  }
  gnutls_datum_t text = {NULL, 0};
  if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
    snprintf(detail, len, "%s", (const char *)text.data);
    gnutls_free(text.data);
  } else {
    snprintf(detail, len, "certificate verification failed (status 0x%x)", status);
  }
  for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
    if (status & order[i].flag)
      return order[i].outcome;
  return TP_OUTCOME_OTHER;
}
