/* ocsp.h - facts of the OCSP response the server stapled (RFC 6066 §8).
 * Whether the response is trusted is decided by GnuTLS during verification
 * (a valid "revoked" staple sets GNUTLS_CERT_REVOKED); this module only
 * reports what the staple says and how old it is. */
#ifndef TP_OCSP_H
#define TP_OCSP_H
#include <gnutls/gnutls.h>
#include <stdint.h>

#include "result.h"

/* Fills result->ocsp_* from the first stapled response, if any. */
void tp_ocsp_collect(gnutls_session_t session, int64_t now_unix, tp_result *result);

#endif
