/* validate.h - what a valid result is: the wire contract both sides apply. The
 * collector checks a decoded ResultBatch before anything of it is stored; the
 * agent checks each result before batching it, so one bad result is dropped
 * alone instead of getting its whole batch rejected. protobuf-c only guarantees the wire format; it does not check UTF-8,
 * lengths, ranges or enum membership, and this collector stores nothing it could
 * not later report on. Limits are the TP_V_* constants below. */
#ifndef TP_VALIDATE_H
#define TP_VALIDATE_H
#include <stddef.h>
#include <stdint.h>

#include "tlsprobe.pb-c.h"
#include "tp_error.h"

#define TP_V_MAX_RESULTS 10000
#define TP_V_MAX_AGENT_ID 128
#define TP_V_MAX_TARGET 255
#define TP_V_MAX_PROFILE 128
#define TP_V_MAX_HOST 255
#define TP_V_MAX_REGION 64
#define TP_V_MAX_DETAIL 1024
#define TP_V_MAX_SHORT 128 /* sni is 255; address, tls_version, cipher, group, alpn... */
#define TP_V_MAX_CHAIN 32
#define TP_V_MAX_CERT_TEXT 1024 /* subject, issuer */
#define TP_V_MAX_SANS 1000
#define TP_V_MAX_DURATION_NS (3600ULL * 1000000000ULL)
#define TP_V_MAX_OFFERED 64   /* groups_offered, key_shares_offered entries */
#define TP_V_MAX_NOTE 1024    /* fidelity_note */
#define TP_V_MAX_HTTP_STATUS 999
/* OCSP times are what a server stapled, not what the agent computed: a broken
 * responder's dates are a finding to store, not a reason to drop the batch. Only
 * values no calendar can hold (beyond year 9999 either way) are rejected. */
#define TP_V_MAX_OCSP_TIME INT64_C(253402300799)

/* TP_E_OK, or TP_E_VALIDATE with a short specific reason in `reason`, e.g.
 * "results[3].port: 0 is out of range 1..65535". */
tp_err tp_validate_batch(const Tlsprobe__V1__ResultBatch *batch, char *reason, size_t len);

/* Checks one result as part of a batch from batch_agent_id; the reason's
 * field path is relative to the result ("http.first_byte_ns: ..."). */
tp_err tp_validate_result(const char *batch_agent_id, const Tlsprobe__V1__ProbeResult *result,
                          char *reason, size_t len);

/* True if the n bytes at s are well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
int tp_utf8_valid(const unsigned char *s, size_t n);

#endif
