/* result.h - what one probe produces. The engine allocates a tp_result and
 * hands ownership to the completion callback; tp_result_free releases it and
 * every string it holds. Conversion to the wire message borrows the strings. */
#ifndef TP_RESULT_H
#define TP_RESULT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outcome.h"
#include "tlsprobe.pb-c.h"

/* What a probe does after TCP connect (set by the profile, carried by the result). */
typedef enum {
  TP_MODE_HANDSHAKE = 0, /* one full handshake */
  TP_MODE_RESUMPTION,    /* full handshake, take the ticket, reconnect and resume */
  TP_MODE_EARLY_DATA,    /* like resumption, sending an idempotent GET as 0-RTT data */
} tp_probe_mode;

typedef struct tp_cert_facts {
  char *subject;
  char *issuer;
  char **san_dns; /* leaf only */
  size_t n_san_dns;
  int64_t not_before_unix;
  int64_t not_after_unix;
  char *key_type;
  unsigned key_bits;
  char *signature_algorithm;
} tp_cert_facts;

typedef struct tp_result {
  /* identity (copied from target/profile so the result outlives config reloads) */
  char *target, *host, *sni, *profile, *address;
  uint16_t port;
  /* timing: monotonic ns, our own loop lag already subtracted */
  int64_t started_unix_ns;
  uint64_t dns_ns, connect_ns, handshake_ns, total_ns, loop_lag_ns;
  uint64_t schedule_lateness_ns; /* actual start - planned start (set by the scheduler) */
  bool saturated;                /* the agent's lag or lateness passed its threshold */
  /* outcome */
  tp_outcome outcome;
  char *detail;
  /* negotiated facts (NULL when not reached) */
  char *tls_version, *cipher, *group, *alpn, *server_signature_algorithm;
  bool resumed, hello_retry_request;
  char **groups_offered, **key_shares_offered; /* from our own ClientHello */
  size_t n_groups_offered, n_key_shares_offered;
  tp_probe_mode mode;
  bool ticket_received, early_data_attempted, early_data_accepted;
  /* An early-data request with a method that is not safe (POST, PUT, DELETE...)
   * was accepted as 0-RTT data and processed (no 425 Too Early). */
  bool early_data_policy_violation;
  uint64_t resumption_handshake_ns;
  char *fidelity_note;
  bool emulation_checked;
  char *emulation_divergence; /* NULL = exact (or not checked) */
  const char *address_family; /* static "ipv4" / "ipv6", NULL = unknown */
  /* stapled OCSP response */
  bool ocsp_stapled;
  char *ocsp_cert_status; /* "good", "revoked", "unknown" */
  int64_t ocsp_this_update_unix, ocsp_next_update_unix, ocsp_age_seconds;
  /* HTTP request after the handshake */
  bool http_done;
  unsigned http_status;
  uint64_t http_first_byte_ns;
  bool http_hsts;
  /* certificates as sent; facts are kept even when verification failed */
  tp_cert_facts *chain;
  size_t chain_len;
  int32_t days_to_earliest_expiry;
  unsigned chain_length_sent;
  bool chain_complete;
} tp_result;

tp_result *tp_result_new(void);
void tp_result_free(tp_result *result);

/* A minimal error result standing in for `broken`, a result that failed the wire
 * contract (`reason`): the same identity and start time, outcome other, a detail
 * that says what happened, and nothing else -- so the target still reports
 * instead of going silent. Every string is fitted to the limits. */
tp_result *tp_result_minimal_error(const tp_result *broken, const char *reason);

/* The wire form of one result. It borrows every string from the tp_result,
 * so it is only valid while that result lives; tp_result_pb_clear frees what
 * tp_result_pb_init allocated (the certificate arrays), never the strings. */
typedef struct tp_result_pb {
  Tlsprobe__V1__ProbeResult msg;
  Tlsprobe__V1__OcspFacts ocsp;
  Tlsprobe__V1__HttpFacts http;
  Tlsprobe__V1__CertificateFacts *certs;
  Tlsprobe__V1__CertificateFacts **cert_ptrs;
} tp_result_pb;

void tp_result_pb_init(tp_result_pb *pb, const tp_result *result);
void tp_result_pb_clear(tp_result_pb *pb);

#endif
