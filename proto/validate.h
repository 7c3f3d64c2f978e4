/* validate.h - what a valid result is: the wire contract both sides apply. The
 * collector checks a decoded ResultBatch before anything of it is stored; the
 * agent checks each result before batching it, so one bad result is dropped
 * alone instead of getting its whole batch rejected. protobuf-c only guarantees the wire format; it does not check UTF-8,
 * lengths, ranges or enum membership, and this collector stores nothing it could
 * not later report on. Limits are the TP_V_* constants of tp_limits.h. */
#ifndef TP_VALIDATE_H
#define TP_VALIDATE_H
#include <stddef.h>
#include <stdint.h>

#include "tlsprobe.pb-c.h"
#include "tp_limits.h"
#include "tp_error.h"


/* TP_E_OK, or TP_E_VALIDATE with a short specific reason in `reason`, e.g.
 * "results[3].port: 0 is out of range 1..65535". */
tp_err tp_validate_batch(const Tlsprobe__V1__ResultBatch *batch, char *reason, size_t len);

/* Which times the receiver believes: [now - max_age, now + max_skew]. */
typedef struct tp_time_window {
  int64_t now_unix_ns;
  uint64_t max_age_ns;
  uint64_t max_skew_ns;
} tp_time_window;

/* Checks every result's started_unix_ns and every drop report's first/last time
 * against the window (a forged year-2100 result would otherwise hide a series'
 * real state from `report`). Call after tp_validate_batch. TP_E_OK or TP_E_VALIDATE
 * with e.g. "results[0].started_unix_ns: 2262-04-11T23:47:16Z is more than 300 s
 * ahead of the collector's clock (...; max_clock_skew)". */
tp_err tp_validate_batch_window(const Tlsprobe__V1__ResultBatch *batch, const tp_time_window *w,
                                char *reason, size_t len);

/* The DropReport.reason values a collector accepts (tlsprobe.proto). */
#define TP_WIRE_DROP_REASONS 4
extern const char *const tp_wire_drop_reasons[TP_WIRE_DROP_REASONS];

/* Checks one result as part of a batch from batch_agent_id; the reason's
 * field path is relative to the result ("http.first_byte_ns: ..."). */
tp_err tp_validate_result(const char *batch_agent_id, const Tlsprobe__V1__ProbeResult *result,
                          char *reason, size_t len);

/* True if the n bytes at s are well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
int tp_utf8_valid(const unsigned char *s, size_t n);

/* The wire's rules for the identity every result repeats, for producers to
 * apply before any result exists (the agent's config loader): TP_E_OK, or
 * TP_E_VALIDATE with what is wrong, without a field name, in `reason`
 * ("must be printable ASCII without spaces", "300 bytes exceeds the limit of
 * 255"). Agent id: 1..TP_V_MAX_AGENT_ID bytes of printable ASCII, no spaces;
 * the others: non-empty UTF-8 of at most TP_V_MAX_REGION, TP_V_MAX_TARGET,
 * TP_V_MAX_PROFILE, TP_V_MAX_HOST (host and SNI) bytes. */
tp_err tp_wire_check_agent_id(const char *id, char *reason, size_t len);
tp_err tp_wire_check_region(const char *region, char *reason, size_t len);
tp_err tp_wire_check_target_name(const char *name, char *reason, size_t len);
tp_err tp_wire_check_profile_name(const char *name, char *reason, size_t len);
tp_err tp_wire_check_host(const char *host, char *reason, size_t len);

#endif
