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
  /* outcome */
  tp_outcome outcome;
  char *detail;
  /* negotiated facts (NULL when not reached) */
  char *tls_version, *cipher, *group, *alpn, *server_signature_algorithm;
  bool resumed, hello_retry_request;
  /* certificates as sent; facts are kept even when verification failed */
  tp_cert_facts *chain;
  size_t chain_len;
  int32_t days_to_earliest_expiry;
} tp_result;

tp_result *tp_result_new(void);
void tp_result_free(tp_result *result);

/* Fills `pb` (initialised by the caller) with pointers into `result`; `certs`
 * and `cert_ptrs` must have room for result->chain_len entries. The wire
 * message is only valid while `result` lives. */
void tp_result_to_proto(const tp_result *result, Tlsprobe__V1__ProbeResult *pb,
                        Tlsprobe__V1__CertificateFacts *certs,
                        Tlsprobe__V1__CertificateFacts **cert_ptrs);

#endif
