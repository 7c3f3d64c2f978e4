/* ocsp.c - stapled OCSP response -> status, thisUpdate, nextUpdate, age. */
#include "ocsp.h"

#include <gnutls/ocsp.h>

#include "tp_mem.h"

static const char *status_name(unsigned status) {
  switch (status) {
  case GNUTLS_OCSP_CERT_GOOD:
    return "good";
  case GNUTLS_OCSP_CERT_REVOKED:
    return "revoked";
  default:
    return "unknown";
  }
}

void tp_ocsp_collect(gnutls_session_t session, int64_t now_unix, tp_result *result) {
  gnutls_datum_t der;
  if (gnutls_ocsp_status_request_get2(session, 0, &der) < 0)
    return; /* nothing stapled */
  (void)tp_ocsp_collect_der(&der, now_unix, result); /* unreadable is a fact, not an error */
}

int tp_ocsp_collect_der(const gnutls_datum_t *der, int64_t now_unix, tp_result *result) {
  gnutls_ocsp_resp_t resp;
  if (gnutls_ocsp_resp_init(&resp) < 0)
    return -1;
  unsigned cert_status = 0;
  time_t this_update = 0, next_update = 0, revoked_at = 0;
  unsigned reason = 0;
  int rc = -1;
  result->ocsp_stapled = true;
  if (gnutls_ocsp_resp_import(resp, der) < 0 ||
      gnutls_ocsp_resp_get_single(resp, 0, NULL, NULL, NULL, NULL, &cert_status, &this_update,
                                  &next_update, &revoked_at, &reason) < 0) {
    result->ocsp_cert_status = tp_xstrdup("unknown"); /* stapled but unreadable */
    goto out;
  }
  result->ocsp_cert_status = tp_xstrdup(status_name(cert_status));
  result->ocsp_this_update_unix = (int64_t)this_update;
  result->ocsp_next_update_unix = next_update == (time_t)-1 ? 0 : (int64_t)next_update;
  result->ocsp_age_seconds = now_unix - (int64_t)this_update;
  rc = 0;
out:
  gnutls_ocsp_resp_deinit(resp);
  return rc;
}
