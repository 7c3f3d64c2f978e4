/* chain_json.h - encodes a result's certificate chain (repeated CertificateFacts)
 * as the JSON array stored in results.chain_json:
 *   [{"subject":..,"issuer":..,"san_dns":[..],"not_before_unix":N,"not_after_unix":N,
 *     "key_type":..,"key_bits":N,"signature_algorithm":..}, ...]
 * The report emits this text verbatim. */
#ifndef TP_CHAIN_JSON_H
#define TP_CHAIN_JSON_H
#include <stddef.h>

#include "tlsprobe.pb-c.h"
#include "tp_buf.h"

/* Appends the array to out ("[]" for an empty chain). */
tp_err tp_chain_json_encode(Tlsprobe__V1__CertificateFacts *const *chain, size_t n, tp_buf *out);

#endif
