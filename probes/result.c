/* result.c - tp_result lifetime and conversion to the protobuf message. */
#include "result.h"

#include <stdlib.h>

#include "tp_mem.h"

tp_result *tp_result_new(void) {
  tp_result *r = tp_xcalloc(1, sizeof(*r));
  r->outcome = TP_OUTCOME_OTHER;
  return r;
}

static void cert_facts_clear(tp_cert_facts *c) {
  free(c->subject);
  free(c->issuer);
  for (size_t i = 0; i < c->n_san_dns; i++)
    free(c->san_dns[i]);
  free(c->san_dns);
  free(c->key_type);
  free(c->signature_algorithm);
}

void tp_result_free(tp_result *r) {
  if (r == NULL)
    return;
  free(r->target);
  free(r->host);
  free(r->sni);
  free(r->profile);
  free(r->address);
  free(r->detail);
  free(r->tls_version);
  free(r->cipher);
  free(r->group);
  free(r->alpn);
  free(r->server_signature_algorithm);
  for (size_t i = 0; i < r->chain_len; i++)
    cert_facts_clear(&r->chain[i]);
  free(r->chain);
  free(r);
}

/* protobuf-c packs a NULL string as absent only for optional fields; proto3
 * scalars need a valid pointer, so map NULL to the shared empty string. */
static char *str_or_empty(char *s) {
  return s != NULL ? s : (char *)protobuf_c_empty_string;
}

void tp_result_to_proto(const tp_result *r, Tlsprobe__V1__ProbeResult *pb,
                        Tlsprobe__V1__CertificateFacts *certs,
                        Tlsprobe__V1__CertificateFacts **cert_ptrs) {
  pb->target = str_or_empty(r->target);
  pb->host = str_or_empty(r->host);
  pb->sni = str_or_empty(r->sni);
  pb->profile = str_or_empty(r->profile);
  pb->address = str_or_empty(r->address);
  pb->port = r->port;
  pb->started_unix_ns = r->started_unix_ns;
  pb->dns_ns = r->dns_ns;
  pb->connect_ns = r->connect_ns;
  pb->handshake_ns = r->handshake_ns;
  pb->total_ns = r->total_ns;
  pb->loop_lag_ns = r->loop_lag_ns;
  pb->ok = r->outcome == TP_OUTCOME_OK;
  pb->error_class = (Tlsprobe__V1__ErrorClass)r->outcome;
  pb->error_detail = str_or_empty(r->detail);
  pb->tls_version = str_or_empty(r->tls_version);
  pb->cipher = str_or_empty(r->cipher);
  pb->group = str_or_empty(r->group);
  pb->alpn = str_or_empty(r->alpn);
  pb->server_signature_algorithm = str_or_empty(r->server_signature_algorithm);
  pb->resumed = r->resumed;
  pb->hello_retry_request = r->hello_retry_request;
  pb->days_to_earliest_expiry = r->days_to_earliest_expiry;
  pb->n_chain = r->chain_len;
  pb->chain = r->chain_len ? cert_ptrs : NULL;
  for (size_t i = 0; i < r->chain_len; i++) {
    const tp_cert_facts *c = &r->chain[i];
    Tlsprobe__V1__CertificateFacts *pc = &certs[i];
    tlsprobe__v1__certificate_facts__init(pc);
    pc->subject = str_or_empty(c->subject);
    pc->issuer = str_or_empty(c->issuer);
    pc->n_san_dns = c->n_san_dns;
    pc->san_dns = c->san_dns;
    pc->not_before_unix = c->not_before_unix;
    pc->not_after_unix = c->not_after_unix;
    pc->key_type = str_or_empty(c->key_type);
    pc->key_bits = c->key_bits;
    pc->signature_algorithm = str_or_empty(c->signature_algorithm);
    cert_ptrs[i] = pc;
  }
}
