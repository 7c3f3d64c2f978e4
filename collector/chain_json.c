/* chain_json.c - CertificateFacts -> JSON, field order fixed so stored text is
 * stable across collector versions. */
#include "chain_json.h"

#include <inttypes.h>

#include "json_out.h"

static tp_err encode_one(const Tlsprobe__V1__CertificateFacts *cert, tp_buf *out) {
  tp_err rc = tp_json_raw(out, "{\"subject\":");
  if (rc == TP_E_OK)
    rc = tp_json_str(out, cert->subject);
  if (rc == TP_E_OK)
    rc = tp_json_raw(out, ",\"issuer\":");
  if (rc == TP_E_OK)
    rc = tp_json_str(out, cert->issuer);
  if (rc == TP_E_OK)
    rc = tp_json_raw(out, ",\"san_dns\":[");
  for (size_t i = 0; rc == TP_E_OK && i < cert->n_san_dns; i++) {
    if (i > 0)
      rc = tp_json_raw(out, ",");
    if (rc == TP_E_OK)
      rc = tp_json_str(out, cert->san_dns[i]);
  }
  if (rc == TP_E_OK)
    rc = tp_json_raw(
        out, "],\"not_before_unix\":%" PRId64 ",\"not_after_unix\":%" PRId64 ",\"key_type\":",
        cert->not_before_unix, cert->not_after_unix);
  if (rc == TP_E_OK)
    rc = tp_json_str(out, cert->key_type);
  if (rc == TP_E_OK)
    rc = tp_json_raw(out, ",\"key_bits\":%" PRIu32 ",\"signature_algorithm\":", cert->key_bits);
  if (rc == TP_E_OK)
    rc = tp_json_str(out, cert->signature_algorithm);
  if (rc == TP_E_OK)
    rc = tp_json_raw(out, "}");
  return rc;
}

tp_err tp_chain_json_encode(Tlsprobe__V1__CertificateFacts *const *chain, size_t n, tp_buf *out) {
  tp_err rc = tp_json_raw(out, "[");
  for (size_t i = 0; rc == TP_E_OK && i < n; i++) {
    if (i > 0)
      rc = tp_json_raw(out, ",");
    if (rc == TP_E_OK)
      rc = encode_one(chain[i], out);
  }
  if (rc == TP_E_OK)
    rc = tp_json_raw(out, "]");
  return rc;
}
