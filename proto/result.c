/* result.c - tp_result lifetime and conversion to the protobuf message. */
#include "result.h"

#include <stdio.h>
#include <stdlib.h>

#include "tp_limits.h"
#include "tp_mem.h"
#include "tp_text.h"

tp_result *tp_result_new(void) {
  tp_result *r = tp_xcalloc(1, sizeof(*r));
  r->outcome = TP_OUTCOME_OTHER;
  return r;
}

tp_result *tp_result_minimal_error(const tp_result *broken, const char *reason) {
  tp_result *r = tp_result_new();
  r->target = tp_text_fit_str(broken->target ? broken->target : "?", TP_V_MAX_TARGET);
  r->host = tp_text_fit_str(broken->host, TP_V_MAX_HOST);
  r->sni = tp_text_fit_str(broken->sni, TP_V_MAX_HOST);
  r->profile = tp_text_fit_str(broken->profile ? broken->profile : "?", TP_V_MAX_PROFILE);
  r->address = tp_text_fit_str(broken->address, TP_V_MAX_SHORT);
  r->address_family = broken->address_family;
  r->port = broken->port;
  r->mode = broken->mode;
  r->started_unix_ns = broken->started_unix_ns;
  r->total_ns = broken->total_ns <= TP_V_MAX_DURATION_NS ? broken->total_ns : 0;
  r->outcome = TP_OUTCOME_OTHER;
  char detail[TP_V_MAX_DETAIL];
  snprintf(detail, sizeof(detail),
           "the agent's result for this probe broke the wire contract (%s; was %s) and was "
           "replaced by this minimal record: please report it",
           reason, tp_outcome_name(broken->outcome) ? tp_outcome_name(broken->outcome) : "?");
  r->detail = tp_text_fit_str(detail, TP_V_MAX_DETAIL);
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

static void free_strings(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void tp_result_free(tp_result *r) {
  if (r == NULL)
    return;
  free_strings(r->groups_offered, r->n_groups_offered);
  free_strings(r->key_shares_offered, r->n_key_shares_offered);
  free(r->fidelity_note);
  free(r->emulation_divergence);
  free(r->ocsp_cert_status);
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

static const char *mode_name(tp_probe_mode mode) {
  switch (mode) {
  case TP_MODE_HANDSHAKE:
    return "handshake";
  case TP_MODE_RESUMPTION:
    return "resumption";
  case TP_MODE_EARLY_DATA:
    return "early_data";
  }
  return "handshake";
}

static void certs_to_proto(const tp_result *r, tp_result_pb *out) {
  out->certs = r->chain_len ? tp_xcalloc(r->chain_len, sizeof(*out->certs)) : NULL;
  out->cert_ptrs = r->chain_len ? tp_xcalloc(r->chain_len, sizeof(*out->cert_ptrs)) : NULL;
  for (size_t i = 0; i < r->chain_len; i++) {
    const tp_cert_facts *c = &r->chain[i];
    Tlsprobe__V1__CertificateFacts *pc = &out->certs[i];
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
    out->cert_ptrs[i] = pc;
  }
  out->msg.n_chain = r->chain_len;
  out->msg.chain = out->cert_ptrs;
  out->msg.days_to_earliest_expiry = r->days_to_earliest_expiry;
  out->msg.chain_length_sent = r->chain_length_sent;
  out->msg.chain_complete = r->chain_complete;
}

void tp_result_pb_init(tp_result_pb *out, const tp_result *r) {
  Tlsprobe__V1__ProbeResult *pb = &out->msg;
  tlsprobe__v1__probe_result__init(pb);
  tlsprobe__v1__ocsp_facts__init(&out->ocsp);
  tlsprobe__v1__http_facts__init(&out->http);
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
  pb->schedule_lateness_ns = r->schedule_lateness_ns;
  pb->saturated = r->saturated;
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
  pb->n_groups_offered = r->n_groups_offered;
  pb->groups_offered = r->groups_offered;
  pb->n_key_shares_offered = r->n_key_shares_offered;
  pb->key_shares_offered = r->key_shares_offered;
  pb->mode = (char *)mode_name(r->mode);
  pb->ticket_received = r->ticket_received;
  pb->resumption_handshake_ns = r->resumption_handshake_ns;
  pb->early_data_attempted = r->early_data_attempted;
  pb->early_data_accepted = r->early_data_accepted;
  pb->fidelity_note = str_or_empty(r->fidelity_note);
  pb->emulation_checked = r->emulation_checked;
  pb->emulation_divergence = str_or_empty(r->emulation_divergence);
  pb->address_family = (char *)(r->address_family != NULL ? r->address_family : "");
  pb->early_data_policy_violation = r->early_data_policy_violation;
  if (r->ocsp_stapled) {
    out->ocsp.cert_status = str_or_empty(r->ocsp_cert_status);
    out->ocsp.this_update_unix = r->ocsp_this_update_unix;
    out->ocsp.next_update_unix = r->ocsp_next_update_unix;
    out->ocsp.age_seconds = r->ocsp_age_seconds;
    pb->ocsp = &out->ocsp;
  }
  if (r->http_done) {
    out->http.status = r->http_status;
    out->http.first_byte_ns = r->http_first_byte_ns;
    out->http.hsts = r->http_hsts;
    pb->http = &out->http;
  }
  certs_to_proto(r, out);
}

void tp_result_pb_clear(tp_result_pb *out) {
  free(out->certs);
  free(out->cert_ptrs);
  out->certs = NULL;
  out->cert_ptrs = NULL;
}
