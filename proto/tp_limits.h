/* tp_limits.h - the wire contract's limits, in one place. The collector rejects a
 * result that exceeds them (validate.c); the engine includes the same header and
 * fits what it records to them at the source (tp_text.h), so it cannot build a
 * result its own contract rejects (curl's CURL_MAX_* shared by every protocol).
 * Changing a limit is a wire change: raise, never lower, once agents are deployed. */
#ifndef TP_LIMITS_H
#define TP_LIMITS_H
#include <stdint.h>

#define TP_V_MAX_RESULTS 10000
#define TP_V_MAX_DROPS 1000 /* drop reports per batch */
#define TP_V_MAX_DROP_COUNT (UINT64_C(1) << 48) /* results one drop report may count */
#define TP_V_MAX_AGENT_ID 128
#define TP_V_MAX_TARGET 255
#define TP_V_MAX_PROFILE 128
#define TP_V_MAX_HOST 255 /* host, sni, each SAN */
#define TP_V_MAX_REGION 64
#define TP_V_MAX_DETAIL 1024
#define TP_V_MAX_SHORT 128 /* address, tls_version, cipher, group, alpn, key_type... */
#define TP_V_MAX_CHAIN 32
#define TP_V_MAX_CERT_TEXT 1024 /* subject, issuer */
#define TP_V_MAX_SANS 1000
#define TP_V_MAX_DURATION_NS (3600ULL * 1000000000ULL) /* total_ns, loop_lag_ns, schedule_lateness_ns */
/* One phase (dns_ns, connect_ns, handshake_ns, resumption_handshake_ns,
 * http.first_byte_ns) runs under one deadline, and no agent timeout can be set above
 * 5 minutes (agent/config.c): twice that leaves room for a deadline timer that fires
 * late on a saturated loop, and still refuses the forged 1-hour handshake. */
#define TP_V_MAX_PHASE_NS (600ULL * 1000000000ULL)
#define TP_V_MAX_OFFERED 64 /* groups_offered, key_shares_offered entries */
#define TP_V_MAX_NOTE 1024  /* fidelity_note */
#define TP_V_MAX_HTTP_STATUS 999
/* OCSP times are what a server stapled, not what the agent computed: a broken
 * responder's dates are a finding to store, not a reason to drop the batch. Only
 * values no calendar can hold (beyond year 9999 either way) are rejected. */
#define TP_V_MAX_OCSP_TIME INT64_C(253402300799)

#endif
