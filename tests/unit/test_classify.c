/* test_classify.c - the decision table from GnuTLS/socket failures to
 * outcome classes (docs/errors.md). Integration tests produce the same
 * classes from real servers; this pins the mapping itself. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "classify.h"

static void test_connect_errnos(void **state) {
  (void)state;
  char d[128];
  assert_int_equal(tp_classify_connect_errno(ECONNREFUSED, d, sizeof(d)), TP_OUTCOME_CONNECTION_REFUSED);
  assert_non_null(strstr(d, "refused"));
  assert_int_equal(tp_classify_connect_errno(ETIMEDOUT, d, sizeof(d)), TP_OUTCOME_CONNECT_TIMEOUT);
  assert_int_equal(tp_classify_connect_errno(ECONNRESET, d, sizeof(d)), TP_OUTCOME_CONNECTION_RESET);
  assert_int_equal(tp_classify_connect_errno(ENETUNREACH, d, sizeof(d)), TP_OUTCOME_NETWORK_UNREACHABLE);
  assert_int_equal(tp_classify_connect_errno(EACCES, d, sizeof(d)), TP_OUTCOME_OTHER);
}

static void test_handshake_errors(void **state) {
  (void)state;
  char d[256];
  static const struct {
    int rc;
    gnutls_alert_description_t alert;
    int sys_errno;
    tp_outcome expect;
    const char *detail;
  } rows[] = {
      {GNUTLS_E_FATAL_ALERT_RECEIVED, GNUTLS_A_PROTOCOL_VERSION, 0, TP_OUTCOME_PROTOCOL_VERSION, "protocol"},
      {GNUTLS_E_FATAL_ALERT_RECEIVED, GNUTLS_A_INSUFFICIENT_SECURITY, 0, TP_OUTCOME_NO_SHARED_CIPHER, "insufficient"},
      {GNUTLS_E_FATAL_ALERT_RECEIVED, GNUTLS_A_HANDSHAKE_FAILURE, 0, TP_OUTCOME_ALERT, "handshake_failure (40)"},
      {GNUTLS_E_FATAL_ALERT_RECEIVED, GNUTLS_A_CERTIFICATE_REQUIRED, 0, TP_OUTCOME_CLIENT_CERT_REQUIRED, "certificate"},
      {GNUTLS_E_UNSUPPORTED_VERSION_PACKET, 0, 0, TP_OUTCOME_PROTOCOL_VERSION, "version"},
      {GNUTLS_E_UNKNOWN_CIPHER_SUITE, 0, 0, TP_OUTCOME_NO_SHARED_CIPHER, "cipher"},
      {GNUTLS_E_NO_COMMON_KEY_SHARE, 0, 0, TP_OUTCOME_NO_SHARED_GROUP, "group"},
      {GNUTLS_E_PREMATURE_TERMINATION, 0, 0, TP_OUTCOME_UNEXPECTED_EOF, "closed"},
      {GNUTLS_E_UNEXPECTED_PACKET_LENGTH, 0, 0, TP_OUTCOME_NOT_TLS, "TLS"},
      {GNUTLS_E_PULL_ERROR, 0, ECONNRESET, TP_OUTCOME_CONNECTION_RESET, "reset"},
      {GNUTLS_E_PULL_ERROR, 0, EIO, TP_OUTCOME_OTHER, "GNUTLS_E_PULL_ERROR"},
      {GNUTLS_E_DECRYPTION_FAILED, 0, 0, TP_OUTCOME_OTHER, "GNUTLS_E_DECRYPTION_FAILED"},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    tp_outcome got = tp_classify_handshake(rows[i].rc, rows[i].alert, rows[i].sys_errno, d, sizeof(d));
    if (got != rows[i].expect || strstr(d, rows[i].detail) == NULL)
      fail_msg("row %zu: got %s \"%s\", want %s containing \"%s\"", i, tp_outcome_name((int)got), d,
               tp_outcome_name((int)rows[i].expect), rows[i].detail);
  }
}

static void test_verify_status(void **state) {
  (void)state;
  char d[512];
  assert_int_equal(tp_classify_verify_status(0, d, sizeof(d)), TP_OUTCOME_OK);
  assert_int_equal(tp_classify_verify_status(GNUTLS_CERT_INVALID | GNUTLS_CERT_EXPIRED, d, sizeof(d)),
                   TP_OUTCOME_EXPIRED);
  assert_non_null(strstr(d, "expired"));
  assert_int_equal(tp_classify_verify_status(GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND, d, sizeof(d)),
                   TP_OUTCOME_UNKNOWN_CA);
  assert_int_equal(tp_classify_verify_status(GNUTLS_CERT_INVALID | GNUTLS_CERT_NOT_ACTIVATED, d, sizeof(d)),
                   TP_OUTCOME_NOT_YET_VALID);
  assert_int_equal(tp_classify_verify_status(GNUTLS_CERT_INVALID | GNUTLS_CERT_UNEXPECTED_OWNER, d, sizeof(d)),
                   TP_OUTCOME_HOSTNAME_MISMATCH);
  assert_int_equal(tp_classify_verify_status(GNUTLS_CERT_INVALID | GNUTLS_CERT_REVOKED | GNUTLS_CERT_EXPIRED, d,
                                             sizeof(d)),
                   TP_OUTCOME_REVOKED);
  /* the root is unknown: expiry of the leaf is not the actionable cause */
  assert_int_equal(tp_classify_verify_status(GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND |
                                                 GNUTLS_CERT_EXPIRED,
                                             d, sizeof(d)),
                   TP_OUTCOME_UNKNOWN_CA);
  assert_int_equal(tp_classify_verify_status(GNUTLS_CERT_INVALID | GNUTLS_CERT_INSECURE_ALGORITHM, d, sizeof(d)),
                   TP_OUTCOME_INSECURE_ALGORITHM);
  assert_int_equal(tp_classify_verify_status(GNUTLS_CERT_INVALID, d, sizeof(d)), TP_OUTCOME_OTHER);
}

static void test_client_cert_alerts(void **state) {
  (void)state;
  char d[256];
  const tp_outcome base = TP_OUTCOME_ALERT;
  /* no certificate configured */
  assert_int_equal(tp_classify_client_cert_alert(base, GNUTLS_A_CERTIFICATE_REQUIRED, false, false, d, sizeof(d)),
                   TP_OUTCOME_CLIENT_CERT_REQUIRED);
  assert_int_equal(tp_classify_client_cert_alert(base, GNUTLS_A_HANDSHAKE_FAILURE, false, false, d, sizeof(d)),
                   TP_OUTCOME_CLIENT_CERT_REQUIRED);
  assert_non_null(strstr(d, "has none"));
  assert_int_equal(tp_classify_client_cert_alert(base, GNUTLS_A_PROTOCOL_VERSION, false, false, d, sizeof(d)),
                   base);
  /* configured but not acceptable to the server, so GnuTLS sent none */
  assert_int_equal(tp_classify_client_cert_alert(base, GNUTLS_A_CERTIFICATE_REQUIRED, true, false, d, sizeof(d)),
                   TP_OUTCOME_CLIENT_CERT_REJECTED);
  assert_non_null(strstr(d, "none was sent"));
  assert_int_equal(tp_classify_client_cert_alert(base, GNUTLS_A_BAD_RECORD_MAC, true, false, d, sizeof(d)), base);
  /* sent and refused */
  static const gnutls_alert_description_t refusals[] = {
      GNUTLS_A_BAD_CERTIFICATE, GNUTLS_A_UNSUPPORTED_CERTIFICATE, GNUTLS_A_CERTIFICATE_REVOKED,
      GNUTLS_A_CERTIFICATE_EXPIRED, GNUTLS_A_CERTIFICATE_UNKNOWN, GNUTLS_A_UNKNOWN_CA,
      GNUTLS_A_ACCESS_DENIED, GNUTLS_A_HANDSHAKE_FAILURE};
  for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
    assert_int_equal(tp_classify_client_cert_alert(base, refusals[i], true, true, d, sizeof(d)),
                     TP_OUTCOME_CLIENT_CERT_REJECTED);
  assert_non_null(strstr(d, "refused"));
  assert_int_equal(tp_classify_client_cert_alert(base, GNUTLS_A_DECODE_ERROR, true, true, d, sizeof(d)), base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_errnos),
      cmocka_unit_test(test_handshake_errors),
      cmocka_unit_test(test_verify_status),
      cmocka_unit_test(test_client_cert_alerts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
