/* make_batch.c - golden datasets for the report tests: reads results as text lines
 * and writes one protobuf ResultBatch (the wire format agents push) to stdout, for
 * curl to POST to a real collector. So a dataset with known rates, percentiles,
 * burn rates and expiry dates goes through the real ingest, validation and store.
 *
 *   make-batch AGENT INSTANCE BATCH_SEQ FIRST_SEQ NOW_UNIX_S < lines > batch.pb
 *
 * Each non-empty line not starting with '#':
 *   TARGET PROFILE REGION OUTCOME HANDSHAKE_MS AGE_S [key=value ...]
 * OUTCOME is "ok" or an error class name (outcome.h). AGE_S: started that many
 * seconds before NOW (a decimal). Optional keys: connect_ms, total_ms, version,
 * cipher, group, expiry_days (a one-certificate chain whose leaf expires that many
 * days after NOW; CN=TARGET), mode, resumed, hrr, family, divergence, ocsp_age,
 * detail, repeat=N (the line N times, each 1 ms older). Values contain no blanks. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"
#include "tlsprobe.pb-c.h"

#define MAX_RESULTS 10000
#define NS 1000000000LL

typedef struct line_result {
  Tlsprobe__V1__ProbeResult r;
  Tlsprobe__V1__CertificateFacts cert;
  Tlsprobe__V1__CertificateFacts *chain[1];
  Tlsprobe__V1__OcspFacts ocsp;
  char *subject;
} line_result;

static void die(const char *what, const char *line) {
  fprintf(stderr, "make-batch: %s: %s\n", what, line);
  exit(2);
}

static char *dup(const char *s) {
  char *d = strdup(s);
  if (d == NULL)
    die("out of memory", s);
  return d;
}

static void option(line_result *lr, const char *kv, int64_t now_s, unsigned *repeat) {
  Tlsprobe__V1__ProbeResult *r = &lr->r;
  const char *eq = strchr(kv, '=');
  if (eq == NULL)
    die("expected key=value", kv);
  size_t klen = (size_t)(eq - kv);
  const char *v = eq + 1;
#define KEY(name) (klen == strlen(name) && strncmp(kv, name, klen) == 0)
  if (KEY("connect_ms"))
    r->connect_ns = (uint64_t)(strtod(v, NULL) * 1e6);
  else if (KEY("total_ms"))
    r->total_ns = (uint64_t)(strtod(v, NULL) * 1e6);
  else if (KEY("version"))
    r->tls_version = dup(v);
  else if (KEY("cipher"))
    r->cipher = dup(v);
  else if (KEY("group"))
    r->group = dup(v);
  else if (KEY("mode"))
    r->mode = dup(v);
  else if (KEY("resumed"))
    r->resumed = atoi(v) != 0;
  else if (KEY("hrr"))
    r->hello_retry_request = atoi(v) != 0;
  else if (KEY("family"))
    r->address_family = dup(v);
  else if (KEY("divergence"))
    r->emulation_divergence = dup(v);
  else if (KEY("detail"))
    r->error_detail = dup(v);
  else if (KEY("repeat"))
    *repeat = (unsigned)strtoul(v, NULL, 10);
  else if (KEY("ocsp_age")) {
    tlsprobe__v1__ocsp_facts__init(&lr->ocsp);
    lr->ocsp.cert_status = "good";
    lr->ocsp.age_seconds = strtoll(v, NULL, 10);
    lr->ocsp.this_update_unix = now_s - lr->ocsp.age_seconds;
    lr->ocsp.next_update_unix = now_s + 86400;
    r->ocsp = &lr->ocsp;
  } else if (KEY("expiry_days")) {
    long days = strtol(v, NULL, 10);
    tlsprobe__v1__certificate_facts__init(&lr->cert);
    lr->cert.subject = lr->subject;
    lr->cert.issuer = "CN=Golden Test CA";
    lr->cert.not_before_unix = now_s - 86400 * 30;
    /* +1 h: a whole number of days left whatever the probe's age */
    lr->cert.not_after_unix = now_s + days * 86400 + 3600;
    lr->cert.key_type = "ECDSA";
    lr->cert.key_bits = 256;
    lr->cert.signature_algorithm = "ECDSA-SHA256";
    lr->chain[0] = &lr->cert;
    r->chain = lr->chain;
    r->n_chain = 1;
    r->chain_length_sent = 1;
    r->chain_complete = 1;
    r->days_to_earliest_expiry = (int32_t)days;
  } else
    die("unknown key", kv);
#undef KEY
}

/* Parses one line into lr; returns how many copies to emit (0 for a comment). */
static unsigned parse_line(char *line, int64_t now_s, line_result *lr) {
  char *save = NULL;
  char *f[6];
  for (int i = 0; i < 6; i++) {
    f[i] = strtok_r(i ? NULL : line, " \t\r\n", &save);
    if (f[i] == NULL) {
      if (i == 0 || f[0][0] == '#')
        return 0;
      die("need TARGET PROFILE REGION OUTCOME HANDSHAKE_MS AGE_S", f[0]);
    }
  }
  if (f[0][0] == '#')
    return 0;
  tp_outcome outcome;
  if (!tp_outcome_from_name(f[3], &outcome))
    die("unknown outcome", f[3]);
  Tlsprobe__V1__ProbeResult *r = &lr->r;
  tlsprobe__v1__probe_result__init(r);
  r->target = dup(f[0]);
  r->profile = dup(f[1]);
  r->region = strcmp(f[2], "-") == 0 ? "" : dup(f[2]);
  r->host = "127.0.0.1";
  r->port = 443;
  r->address = "127.0.0.1";
  r->error_class = (Tlsprobe__V1__ErrorClass)outcome;
  r->ok = outcome == TP_OUTCOME_OK;
  r->handshake_ns = (uint64_t)(strtod(f[4], NULL) * 1e6);
  r->connect_ns = r->handshake_ns / 4;
  r->total_ns = r->handshake_ns + r->connect_ns;
  r->started_unix_ns = now_s * NS - (int64_t)(strtod(f[5], NULL) * 1e9);
  r->error_detail = r->ok ? "" : "golden failure";
  if (r->ok) {
    r->tls_version = "TLS1.3";
    r->cipher = "TLS_AES_128_GCM_SHA256";
    r->group = "X25519";
  }
  r->mode = "handshake";
  size_t n = strlen(f[0]) + 4;
  lr->subject = malloc(n);
  if (lr->subject == NULL)
    die("out of memory", f[0]);
  snprintf(lr->subject, n, "CN=%s", f[0]);
  unsigned repeat = 1;
  for (char *kv = strtok_r(NULL, " \t\r\n", &save); kv; kv = strtok_r(NULL, " \t\r\n", &save))
    option(lr, kv, now_s, &repeat);
  if (r->total_ns < r->handshake_ns)
    r->total_ns = r->handshake_ns + r->connect_ns;
  return repeat;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fputs("usage: make-batch AGENT INSTANCE BATCH_SEQ FIRST_SEQ NOW_UNIX_S < lines\n", stderr);
    return 2;
  }
  int64_t now_s = strtoll(argv[5], NULL, 10);
  uint64_t seq = strtoull(argv[4], NULL, 10);
  static line_result items[MAX_RESULTS];
  static Tlsprobe__V1__ProbeResult *results[MAX_RESULTS];
  size_t n = 0;
  char line[4096];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    line_result lr;
    unsigned copies = parse_line(line, now_s, &lr);
    for (unsigned c = 0; c < copies; c++) {
      if (n == MAX_RESULTS)
        die("more than 10000 results in one batch", line);
      items[n] = lr;
      items[n].r.agent_id = argv[1];
      items[n].r.result_seq = seq++;
      items[n].r.started_unix_ns -= (int64_t)c * 1000000; /* each copy 1 ms older */
      if (lr.r.n_chain) {
        items[n].chain[0] = &items[n].cert;
        items[n].r.chain = items[n].chain;
      }
      if (lr.r.ocsp)
        items[n].r.ocsp = &items[n].ocsp;
      results[n] = &items[n].r;
      n++;
    }
  }
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  b.agent_id = argv[1];
  b.instance_id = strtoull(argv[2], NULL, 10);
  b.batch_seq = strtoull(argv[3], NULL, 10);
  b.sent_unix_ns = now_s * NS;
  b.results = results;
  b.n_results = n;
  size_t len = tlsprobe__v1__result_batch__get_packed_size(&b);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf == NULL || tlsprobe__v1__result_batch__pack(&b, buf) != len)
    die("cannot encode", "batch");
  if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0)
    die("cannot write", "stdout");
  free(buf);
  return 0; /* the process ends: the line strings need no freeing */
}
