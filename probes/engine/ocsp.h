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
/* The same from one DER OCSPResponse (RFC 6960 §4.2.1): what tp_ocsp_collect
 * does with the staple, and the entry point of the fuzz target
 * (tests/fuzz/fuzz_ocsp.c). Returns 0, or -1 when the response cannot be
 * read (recorded as stapled with status "unknown" when it got that far). */
int tp_ocsp_collect_der(const gnutls_datum_t *der, int64_t now_unix, tp_result *result);

#endif
