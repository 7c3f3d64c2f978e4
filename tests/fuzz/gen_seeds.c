/* gen_seeds.c - writes the ingest seed corpus (tests/fuzz/corpus/ingest): a few
 * valid batches covering every ProbeResult field (ok-*), and broken ones that
 * each exercise one rejection path (reject-*). Run it again when the wire schema
 * grows and commit the files:
 *   build/tests/fuzz/fuzz_gen_seeds tests/fuzz/corpus/ingest */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsprobe.pb-c.h"

#define STARTED_NS INT64_C(1700000000000000000)

static int write_file(const char *dir, const char *name, const void *data, size_t len) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
    perror(path);
    return 1;
  }
  return 0;
}

/* Packs the batch; truncate_by bytes are cut off the end. */
static int write_batch(const char *dir, const char *name, const Tlsprobe__V1__ResultBatch *b,
                       size_t truncate_by) {
  size_t len = tlsprobe__v1__result_batch__get_packed_size(b);
  uint8_t *buf = malloc(len + 1);
  if (buf == NULL || tlsprobe__v1__result_batch__pack(b, buf) != len) {
    free(buf);
    return 1;
  }
  int rc = write_file(dir, name, buf, len > truncate_by ? len - truncate_by : 0);
  free(buf);
  return rc;
}

typedef struct seed {
  Tlsprobe__V1__ResultBatch batch;
  Tlsprobe__V1__ProbeResult results[3];
  Tlsprobe__V1__ProbeResult *ptrs[3];
  Tlsprobe__V1__CertificateFacts certs[2];
  Tlsprobe__V1__CertificateFacts *cert_ptrs[2];
  Tlsprobe__V1__OcspFacts ocsp;
  Tlsprobe__V1__HttpFacts http;
} seed;

static char *groups[] = {"X25519MLKEM768", "X25519", "SECP256R1", "SECP384R1"};
static char *shares[] = {"X25519MLKEM768", "X25519"};
static char *sans[] = {"example.test", "*.example.test"};

/* One plain success (what an agent older than schema field 37 sends). */
static void minimal(seed *s) {
  memset(s, 0, sizeof(*s));
  tlsprobe__v1__result_batch__init(&s->batch);
  s->batch.agent_id = "seed-agent";
  s->batch.instance_id = 42;
  s->batch.batch_seq = 1;
  s->batch.sent_unix_ns = STARTED_NS;
  Tlsprobe__V1__ProbeResult *r = &s->results[0];
  tlsprobe__v1__probe_result__init(r);
  r->target = "web";
  r->profile = "modern";
  r->host = "web.test";
  r->port = 443;
  r->result_seq = 1;
  r->started_unix_ns = STARTED_NS;
  r->handshake_ns = 2000000;
  r->total_ns = 3000000;
  r->ok = 1;
  r->error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
  r->tls_version = "TLS1.3";
  r->cipher = "TLS_AES_128_GCM_SHA256";
  r->group = "X25519";
  s->ptrs[0] = r;
  s->batch.results = s->ptrs;
  s->batch.n_results = 1;
}

/* Every field set: resumption with early data (a processed POST: a policy
 * violation), HRR, a 2-certificate chain, an OCSP staple, an HTTP request and a
 * real-client emulation divergence carrying control characters (the report must
 * escape them); then a failure and a refused connection. */
static void full(seed *s) {
  minimal(s);
  Tlsprobe__V1__ProbeResult *r = &s->results[0];
  r->agent_id = "seed-agent";
  r->region = "eu-west";
  r->sni = "web.test";
  r->address = "127.0.0.1";
  r->result_seq = 7;
  r->dns_ns = 100000;
  r->connect_ns = 200000;
  r->loop_lag_ns = 5000;
  r->alpn = "h2";
  r->resumed = 1;
  r->hello_retry_request = 1;
  r->server_signature_algorithm = "ECDSA-SECP256R1-SHA256";
  r->groups_offered = groups;
  r->n_groups_offered = 4;
  r->key_shares_offered = shares;
  r->n_key_shares_offered = 2;
  r->mode = "early_data";
  r->ticket_received = 1;
  r->resumption_handshake_ns = 900000;
  r->early_data_attempted = 1;
  r->early_data_accepted = 1;
  r->fidelity_note = "SSL 3.0 unsupported; 4 export ciphers dropped";
  r->address_family = "ipv4";
  r->emulation_checked = 1;
  r->emulation_divergence =
      "cipher TLS_RSA_AES_128_CBC_SHA1 not offered\n\x1b[2J by \"the\" client";
  r->early_data_policy_violation = 1;
  for (int i = 0; i < 2; i++) {
    Tlsprobe__V1__CertificateFacts *c = &s->certs[i];
    tlsprobe__v1__certificate_facts__init(c);
    c->subject = i == 0 ? "CN=web.test, O=\"Caf\xc3\xa9\"" : "CN=Seed CA";
    c->issuer = "CN=Seed CA";
    if (i == 0) {
      c->san_dns = sans;
      c->n_san_dns = 2;
    }
    c->not_before_unix = 1690000000;
    c->not_after_unix = 1701000000;
    c->key_type = "EC/ECDSA";
    c->key_bits = 256;
    c->signature_algorithm = "ECDSA-SHA256";
    s->cert_ptrs[i] = c;
  }
  r->chain = s->cert_ptrs;
  r->n_chain = 2;
  r->days_to_earliest_expiry = 11;
  r->chain_length_sent = 3;
  r->chain_complete = 1;
  tlsprobe__v1__ocsp_facts__init(&s->ocsp);
  s->ocsp.cert_status = "good";
  s->ocsp.this_update_unix = 1699900000;
  s->ocsp.next_update_unix = 1700500000;
  s->ocsp.age_seconds = 100000;
  r->ocsp = &s->ocsp;
  tlsprobe__v1__http_facts__init(&s->http);
  s->http.status = 200;
  s->http.first_byte_ns = 1200000;
  s->http.hsts = 1;
  r->http = &s->http;

  Tlsprobe__V1__ProbeResult *f = &s->results[1];
  tlsprobe__v1__probe_result__init(f);
  f->target = "web";
  f->profile = "legacy";
  f->port = 443;
  f->result_seq = 8;
  f->started_unix_ns = STARTED_NS + 1000;
  f->error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_NO_SHARED_GROUP;
  f->error_detail = "fatal alert handshake_failure (40)";
  f->mode = "handshake";
  f->groups_offered = &groups[3];
  f->n_groups_offered = 1;
  f->address_family = "ipv6";
  f->emulation_checked = 1;
  s->ptrs[1] = f;

  Tlsprobe__V1__ProbeResult *x = &s->results[2];
  tlsprobe__v1__probe_result__init(x);
  x->target = "down";
  x->profile = "modern";
  x->port = 8443;
  x->result_seq = 9;
  x->started_unix_ns = STARTED_NS + 2000;
  x->error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_CONNECTION_REFUSED;
  x->mode = "resumption";
  s->ptrs[2] = x;
  s->batch.n_results = 3;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  seed s;
  int rc = 0;
  minimal(&s);
  rc |= write_batch(dir, "ok-minimal", &s.batch, 0);
  full(&s);
  rc |= write_batch(dir, "ok-full", &s.batch, 0);
  full(&s);
  s.batch.results = &s.ptrs[1]; /* failures only */
  s.batch.n_results = 2;
  rc |= write_batch(dir, "ok-failures", &s.batch, 0);

  full(&s);
  rc |= write_batch(dir, "reject-truncated", &s.batch, 5);
  full(&s);
  s.results[0].mode = "zero_rtt";
  rc |= write_batch(dir, "reject-mode", &s.batch, 0);
  full(&s);
  s.ocsp.cert_status = "maybe";
  rc |= write_batch(dir, "reject-ocsp-status", &s.batch, 0);
  full(&s);
  s.http.status = 1000;
  rc |= write_batch(dir, "reject-http-status", &s.batch, 0);
  full(&s);
  s.results[0].early_data_attempted = 0;
  rc |= write_batch(dir, "reject-early-data", &s.batch, 0);
  full(&s);
  s.results[0].early_data_accepted = 0; /* a violation needs processed early data */
  rc |= write_batch(dir, "reject-early-data-policy", &s.batch, 0);
  full(&s);
  s.results[0].emulation_checked = 0; /* a divergence needs a comparison */
  rc |= write_batch(dir, "reject-divergence-unchecked", &s.batch, 0);
  full(&s);
  s.results[1].address_family = "ipv5";
  rc |= write_batch(dir, "reject-address-family", &s.batch, 0);
  full(&s);
  s.certs[0].subject = "bad \xc0\xaf utf-8";
  rc |= write_batch(dir, "reject-utf8", &s.batch, 0);
  char *many[65];
  for (int i = 0; i < 65; i++)
    many[i] = "X25519";
  full(&s);
  s.results[0].groups_offered = many;
  s.results[0].n_groups_offered = 65;
  rc |= write_batch(dir, "reject-groups-count", &s.batch, 0);
  full(&s);
  s.results[1].result_seq = 7; /* repeats results[0]'s number */
  rc |= write_batch(dir, "reject-seq-repeated", &s.batch, 0);
  /* Drop reports: alone (a batch may carry only drops), and a miscounted one. */
  Tlsprobe__V1__DropReport drop = TLSPROBE__V1__DROP_REPORT__INIT;
  Tlsprobe__V1__DropReport *drop_ptr = &drop;
  drop.drop_id = 1;
  drop.count = 3;
  drop.reason = "spool_full";
  drop.first_seq = 2;
  drop.last_seq = 4;
  drop.first_unix_ns = STARTED_NS;
  drop.last_unix_ns = STARTED_NS + 1000;
  minimal(&s);
  s.batch.n_results = 0;
  s.batch.drops = &drop_ptr;
  s.batch.n_drops = 1;
  rc |= write_batch(dir, "ok-drops-only", &s.batch, 0);
  full(&s);
  s.batch.drops = &drop_ptr;
  s.batch.n_drops = 1;
  rc |= write_batch(dir, "ok-results-and-drops", &s.batch, 0);
  drop.count = 5;
  rc |= write_batch(dir, "reject-drop-miscounted", &s.batch, 0);
  drop.count = 3;
  drop.reason = "bored";
  rc |= write_batch(dir, "reject-drop-reason", &s.batch, 0);
  minimal(&s);
  s.results[0].result_seq = 0;
  rc |= write_batch(dir, "reject-seq-zero", &s.batch, 0);
  minimal(&s);
  s.batch.n_results = 0;
  rc |= write_batch(dir, "reject-empty-batch", &s.batch, 0);
  rc |= write_file(dir, "reject-zero-length", "", 0);
  /* Wire-level damage: a varint where a string is expected (field 1, wire type 0),
   * and a length prefix far beyond the end of the body. */
  static const uint8_t wrong_type[] = {0x08, 0x01};
  rc |= write_file(dir, "reject-wire-type", wrong_type, sizeof(wrong_type));
  static const uint8_t long_len[] = {0x2a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x1a, 0x01, 0x41};
  rc |= write_file(dir, "reject-length-overrun", long_len, sizeof(long_len));
  return rc ? 1 : 0;
}
