/* ingest_push.c - bench-ingest: how fast a running collector ingests. N pusher threads,
 * each with its own libcurl handle (HTTP keep-alive, one request in flight, as an agent
 * pushes), send realistic ResultBatches to POST /v1/results and wait for each BatchAck.
 * Prints results/s (stored results over the wall time of the run), the ack latency
 * p50/p99 (request sent -> ack read) and, with --db, the database's bytes per result.
 *
 *   bench-ingest --url URL [--token-file F] --pushers N --batches M --batch-size 500
 *                [--agents K] [--json] [--db PATH] [--agent-id NAME] [--ca-file F]
 *
 * --batches M is the total number of batches of the run, shared out among the pushers
 * (so 1, 4 and 8 pushers do the same work). K agents (default: one per pusher), each
 * with its own spool (instance_id, fresh every run, so a second run on the same
 * database stores new rows): agent ids NAME-1..NAME-K without a token; with
 * --token-file every agent is NAME (one token authenticates one agent) on its own
 * spool. Default NAME: "bench".
 *
 * What a batch holds, per agent: 240 series (60 targets x 4 profiles, one region);
 * every success carries its target's chain as sent -- a leaf with SANs, an
 * intermediate, and for a third of the targets the root too --, the profile's offered
 * groups and key shares, an OCSP staple for half the targets, HTTP facts for a quarter;
 * the two emulated profiles carry a fidelity note and are emulation-checked; three
 * targets fail (expired, hostname mismatch, refused) with their error detail. The
 * bytes on the wire are those of a real agent's batch (protobuf-c packs them).
 *
 * Cheap to produce, so the bench measures the collector, not itself: each agent's
 * batch is packed once, with 10-byte placeholder varints for result_seq,
 * started_unix_ns, batch_seq and sent_unix_ns; a push copies the template and writes
 * the real values as 10-byte (non-minimal, still valid) varints in place.
 *
 * A 503 or 429 is retried after its Retry-After (counted); any other answer, a
 * transport error or an ack whose stored count is not the batch's size fails the
 * run (exit 1). Exit 2: usage. */
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tlsprobe.pb-c.h"

#define TARGETS 60
#define PROFILES 4
#define MAX_BATCH 10000
#define VARINT_WIDTH 10
/* Placeholders: values whose varints are 10 bytes long (top bit set) and that cannot
 * occur in the batch otherwise (the strings are ASCII). */
#define MARK_SEQ UINT64_C(0xF1E2D3C4B5A69788)
#define MARK_STARTED UINT64_C(0xF0E1D2C3B4A59687)
#define MARK_BATCH UINT64_C(0xF2E3D4C5B6A79889)
#define MARK_SENT UINT64_C(0xF3E4D5C6B7A8998A)

typedef struct options {
  const char *url, *token_file, *db, *agent_id, *ca_file;
  unsigned pushers, agents;
  uint64_t batches;
  unsigned batch_size;
  bool json;
} options;

/* One agent: its packed template and where to patch it. */
typedef struct agent {
  char id[128];
  uint64_t instance_id;
  uint8_t *tmpl;
  size_t len;
  size_t *seq_at, *started_at; /* offsets of the 10-byte varints, one per result */
  size_t batch_at, sent_at;
  atomic_uint_fast64_t next_batch; /* batches handed out: seq = batch * size + i + 1 */
} agent;

typedef struct run {
  const options *opt;
  agent *agents;
  char auth_header[600];
  atomic_uint_fast64_t next;   /* batches handed out, all pushers */
  atomic_uint_fast64_t stored; /* results the acks said were stored */
  atomic_uint_fast64_t retries;
  atomic_int failed;
  char fail_msg[512];
  pthread_mutex_t fail_mu;
  double *lat_ms; /* one per batch, by batch number */
} run;

typedef struct pusher {
  run *run;
  unsigned index;
  pthread_t thread;
} pusher;

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) {
    fputs("bench-ingest: out of memory\n", stderr);
    exit(1);
  }
  return p;
}

static char *xstrdup(const char *s) {
  char *d = strdup(s);
  if (d == NULL) {
    fputs("bench-ingest: out of memory\n", stderr);
    exit(1);
  }
  return d;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof(buf), f, ap);
  va_end(ap);
  return xstrdup(buf);
}

/* ---- the realistic batch ------------------------------------------------------------ */

static const char *const PROFILE_NAMES[PROFILES] = {"modern", "intermediate", "android-7.0",
                                                    "firefox-115"};
static char *GROUPS_MODERN[] = {"X25519", "SECP256R1", "SECP384R1"};
static char *GROUPS_WIDE[] = {"X25519",    "SECP256R1", "SECP384R1",
                              "SECP521R1", "FFDHE2048", "FFDHE3072"};
static char *GROUPS_ANDROID[] = {"X25519", "SECP256R1", "SECP384R1"};
static char *GROUPS_FIREFOX[] = {"X25519",    "SECP256R1", "SECP384R1", "SECP521R1", "FFDHE2048",
                                 "FFDHE3072", "FFDHE4096", "FFDHE6144", "FFDHE8192"};
static char *SHARES_ONE[] = {"X25519"};
static char *SHARES_TWO[] = {"X25519", "SECP256R1"};

typedef struct target_facts {
  Tlsprobe__V1__CertificateFacts certs[3];
  Tlsprobe__V1__CertificateFacts *chain[3];
  char *sans[2];
  size_t n_chain;
  Tlsprobe__V1__OcspFacts ocsp;
  Tlsprobe__V1__HttpFacts http;
} target_facts;

static void make_target(target_facts *t, int n, int64_t now_s) {
  memset(t, 0, sizeof(*t));
  for (int i = 0; i < 3; i++)
    tlsprobe__v1__certificate_facts__init(&t->certs[i]);
  t->sans[0] = fmt("target-%02d.bench.example", n);
  t->sans[1] = fmt("www.target-%02d.bench.example", n);
  Tlsprobe__V1__CertificateFacts *leaf = &t->certs[0], *mid = &t->certs[1], *root = &t->certs[2];
  leaf->subject = fmt("CN=target-%02d.bench.example,O=Bench Example Ltd,C=GB", n);
  leaf->issuer = "CN=Bench Intermediate CA R3,O=Bench PKI,C=US";
  leaf->san_dns = t->sans;
  leaf->n_san_dns = 2;
  leaf->not_before_unix = now_s - 86400 * (10 + n);
  leaf->not_after_unix = now_s + 86400 * (80 - n);
  leaf->key_type = n % 2 ? "EC/ECDSA" : "RSA";
  leaf->key_bits = n % 2 ? 256 : 2048;
  leaf->signature_algorithm = "RSA-SHA256";
  mid->subject = "CN=Bench Intermediate CA R3,O=Bench PKI,C=US";
  mid->issuer = "CN=Bench Root CA X1,O=Bench PKI,C=US";
  mid->not_before_unix = now_s - 86400 * 700;
  mid->not_after_unix = now_s + 86400 * 400;
  mid->key_type = "RSA";
  mid->key_bits = 2048;
  mid->signature_algorithm = "RSA-SHA256";
  root->subject = "CN=Bench Root CA X1,O=Bench PKI,C=US";
  root->issuer = "CN=Bench Root CA X1,O=Bench PKI,C=US";
  root->not_before_unix = now_s - 86400 * 3000;
  root->not_after_unix = now_s + 86400 * 4000;
  root->key_type = "RSA";
  root->key_bits = 4096;
  root->signature_algorithm = "RSA-SHA256";
  t->n_chain = n % 3 == 0 ? 3 : 2;
  for (size_t i = 0; i < t->n_chain; i++)
    t->chain[i] = &t->certs[i];
  tlsprobe__v1__ocsp_facts__init(&t->ocsp);
  t->ocsp.cert_status = "good";
  t->ocsp.this_update_unix = now_s - 3600 * 5;
  t->ocsp.next_update_unix = now_s + 86400 * 6;
  t->ocsp.age_seconds = 3600 * 5;
  tlsprobe__v1__http_facts__init(&t->http);
  t->http.status = 200;
  t->http.hsts = n % 2 == 0;
}

static uint64_t rng(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Result i of an agent's batch: series i mod 240 (target, profile). */
static void make_result(Tlsprobe__V1__ProbeResult *r, size_t i, target_facts *targets,
                        const char *region, uint64_t *seed) {
  int target = (int)(i % TARGETS), profile = (int)((i / TARGETS) % PROFILES);
  target_facts *t = &targets[target];
  tlsprobe__v1__probe_result__init(r);
  r->region = (char *)region;
  r->target = t->sans[0];
  r->host = t->sans[0];
  r->port = 443;
  r->sni = t->sans[0];
  r->profile = (char *)PROFILE_NAMES[profile];
  r->address = fmt("10.%d.%d.%d", target / 50, target % 50, 10 + (int)(i % 2));
  r->address_family = "ipv4";
  r->result_seq = MARK_SEQ;
  r->started_unix_ns = (int64_t)MARK_STARTED;
  r->mode = "handshake";
  r->dns_ns = 200000 + rng(seed) % 800000;
  r->connect_ns = 150000 + rng(seed) % 900000;
  r->handshake_ns = 900000 + rng(seed) % 4000000;
  r->loop_lag_ns = rng(seed) % 40000;
  r->schedule_lateness_ns = rng(seed) % 300000;
  r->total_ns = r->dns_ns + r->connect_ns + r->handshake_ns + 300000 + rng(seed) % 2000000;
  r->saturated = rng(seed) % 200 == 0;
  switch (profile) {
  case 0:
    r->groups_offered = GROUPS_MODERN, r->n_groups_offered = 3;
    r->key_shares_offered = SHARES_ONE, r->n_key_shares_offered = 1;
    break;
  case 1:
    r->groups_offered = GROUPS_WIDE, r->n_groups_offered = 6;
    r->key_shares_offered = SHARES_ONE, r->n_key_shares_offered = 1;
    break;
  case 2:
    r->groups_offered = GROUPS_ANDROID, r->n_groups_offered = 3;
    r->key_shares_offered = SHARES_ONE, r->n_key_shares_offered = 1;
    r->fidelity_note = "emulated from testssl.sh client simulation \"Android 7.0 (native)\":"
                       " extension order and GREASE values are not reproduced";
    r->emulation_checked = true;
    break;
  default:
    r->groups_offered = GROUPS_FIREFOX, r->n_groups_offered = 9;
    r->key_shares_offered = SHARES_TWO, r->n_key_shares_offered = 2;
    r->fidelity_note = "emulated from testssl.sh client simulation \"Firefox 115 ESR\":"
                       " record size limit and delegated credentials are not offered";
    r->emulation_checked = true;
    break;
  }
  if (target >= TARGETS - 3) { /* the three failing targets */
    static const Tlsprobe__V1__ErrorClass CLASS[3] = {
        TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_EXPIRED,
        TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_HOSTNAME_MISMATCH,
        TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_CONNECTION_REFUSED};
    static const char *const DETAIL[3] = {
        "certificate expired 12 days ago (notAfter 2026-11-20T00:00:00Z)",
        "certificate is valid for target-56.bench.example, www.target-56.bench.example",
        "connect to 10.1.9.10:443: Connection refused"};
    int k = target - (TARGETS - 3);
    r->ok = false;
    r->error_class = CLASS[k];
    r->error_detail = (char *)DETAIL[k];
    r->emulation_checked = false;
    if (k == 2) { /* refused: no handshake at all */
      r->handshake_ns = 0;
      r->groups_offered = NULL, r->n_groups_offered = 0;
      r->key_shares_offered = NULL, r->n_key_shares_offered = 0;
      return;
    }
  } else {
    r->ok = true;
    r->error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
    r->tls_version = profile == 2 && target % 4 == 0 ? "TLS1.2" : "TLS1.3";
    r->cipher = r->tls_version[5] == '2' ? "ECDHE-RSA-AES128-GCM-SHA256" : "TLS_AES_128_GCM_SHA256";
    r->group = "X25519";
    r->alpn = "h2";
    r->server_signature_algorithm = target % 2 ? "ECDSA-SECP256R1-SHA256" : "RSA-PSS-RSAE-SHA256";
  }
  r->chain = t->chain;
  r->n_chain = t->n_chain;
  r->chain_length_sent = (uint32_t)t->n_chain;
  r->chain_complete = true;
  r->days_to_earliest_expiry = 80 - target;
  if (target % 2 == 0)
    r->ocsp = &t->ocsp;
  if (target % 4 == 1) {
    r->http = &t->http;
    t->http.first_byte_ns = 400000;
  }
}

static void put_varint10(uint8_t *p, uint64_t v) {
  for (int i = 0; i < VARINT_WIDTH - 1; i++, v >>= 7)
    p[i] = (uint8_t)(0x80 | (v & 0x7F));
  p[VARINT_WIDTH - 1] = (uint8_t)(v & 0x01);
}

/* Offsets of every occurrence of mark's 10-byte varint, in order. */
static size_t find_marks(const uint8_t *buf, size_t len, uint64_t mark, size_t *out, size_t max) {
  uint8_t pat[VARINT_WIDTH];
  put_varint10(pat, mark);
  size_t n = 0;
  for (size_t i = 0; i + VARINT_WIDTH <= len; i++)
    if (buf[i] == pat[0] && memcmp(buf + i, pat, VARINT_WIDTH) == 0) {
      if (n < max)
        out[n] = i;
      n++;
      i += VARINT_WIDTH - 1;
    }
  return n;
}

static void build_agent(agent *a, unsigned k, const options *opt, uint64_t run_id, int64_t now_s) {
  if (opt->token_file != NULL)
    snprintf(a->id, sizeof(a->id), "%s", opt->agent_id);
  else
    snprintf(a->id, sizeof(a->id), "%s-%u", opt->agent_id, k + 1);
  a->instance_id = run_id + k;
  target_facts *targets = xcalloc(TARGETS, sizeof(*targets));
  for (int t = 0; t < TARGETS; t++)
    make_target(&targets[t], t, now_s);
  char *region = fmt("region-%u", k % 3);
  size_t n = opt->batch_size;
  Tlsprobe__V1__ProbeResult *results = xcalloc(n, sizeof(*results));
  Tlsprobe__V1__ProbeResult **rp = xcalloc(n, sizeof(*rp));
  uint64_t seed = 0x9E3779B97F4A7C15u ^ (k + 1);
  for (size_t i = 0; i < n; i++) {
    make_result(&results[i], i, targets, region, &seed);
    rp[i] = &results[i];
  }
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  b.agent_id = a->id;
  b.instance_id = a->instance_id;
  b.batch_seq = MARK_BATCH;
  b.sent_unix_ns = (int64_t)MARK_SENT;
  b.results = rp;
  b.n_results = n;
  a->len = tlsprobe__v1__result_batch__get_packed_size(&b);
  a->tmpl = xcalloc(a->len, 1);
  if (tlsprobe__v1__result_batch__pack(&b, a->tmpl) != a->len) {
    fputs("bench-ingest: cannot pack the batch\n", stderr);
    exit(1);
  }
  a->seq_at = xcalloc(n, sizeof(size_t));
  a->started_at = xcalloc(n, sizeof(size_t));
  size_t one;
  if (find_marks(a->tmpl, a->len, MARK_SEQ, a->seq_at, n) != n ||
      find_marks(a->tmpl, a->len, MARK_STARTED, a->started_at, n) != n ||
      find_marks(a->tmpl, a->len, MARK_BATCH, &one, 1) != 1 ||
      (a->batch_at = one, find_marks(a->tmpl, a->len, MARK_SENT, &one, 1) != 1)) {
    fputs("bench-ingest: placeholders not found exactly once per field\n", stderr);
    exit(1);
  }
  a->sent_at = one;
  /* The template's strings live on (the bench is short-lived); only the packed bytes
   * are used from here on. */
}

/* The agent's batch number b (from 0) into buf: results seq b*size+1 .. (b+1)*size,
 * started over the last few seconds, oldest first. */
static void fill_batch(const agent *a, uint8_t *buf, uint64_t b, unsigned size) {
  memcpy(buf, a->tmpl, a->len);
  int64_t now = wall_ns();
  put_varint10(buf + a->batch_at, b + 1);
  put_varint10(buf + a->sent_at, (uint64_t)now);
  for (unsigned i = 0; i < size; i++) {
    put_varint10(buf + a->seq_at[i], b * size + i + 1);
    put_varint10(buf + a->started_at[i], (uint64_t)(now - (int64_t)(size - i) * 2000000));
  }
}

/* ---- pushing -------------------------------------------------------------------------- */

typedef struct body_buf {
  uint8_t data[64];
  size_t len;
  bool overflow;
} body_buf;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ctx) {
  body_buf *b = ctx;
  size_t n = size * nmemb;
  if (b->len + n > sizeof(b->data)) {
    b->overflow = true;
    return n;
  }
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  return n;
}

static void fail_run(run *r, const char *fmt_, ...) __attribute__((format(printf, 2, 3)));
static void fail_run(run *r, const char *fmt_, ...) {
  pthread_mutex_lock(&r->fail_mu);
  if (!atomic_load(&r->failed)) {
    va_list ap;
    va_start(ap, fmt_);
    vsnprintf(r->fail_msg, sizeof(r->fail_msg), fmt_, ap);
    va_end(ap);
    atomic_store(&r->failed, 1);
  }
  pthread_mutex_unlock(&r->fail_mu);
}

/* One batch until it is acknowledged (retrying 503/429); false = the run failed. */
static bool push_one(run *r, CURL *curl, struct curl_slist *headers, uint8_t *buf, agent *a,
                     uint64_t global) {
  const options *opt = r->opt;
  for (;;) {
    body_buf resp = {.len = 0};
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, buf);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->len);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    double t0 = mono_s();
    CURLcode cc = curl_easy_perform(curl);
    double took = mono_s() - t0;
    if (cc != CURLE_OK) {
      fail_run(r, "POST %s: %s", opt->url, curl_easy_strerror(cc));
      return false;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 503 || status == 429) {
      curl_off_t retry = 0;
      curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry);
      atomic_fetch_add(&r->retries, 1);
      usleep(retry > 0 && retry < 10 ? (useconds_t)retry * 1000000u : 100000u);
      continue;
    }
    if (status != 200 || resp.overflow) {
      fail_run(r, "POST %s: HTTP %ld: %.*s", opt->url, status, (int)resp.len, resp.data);
      return false;
    }
    Tlsprobe__V1__BatchAck *ack = tlsprobe__v1__batch_ack__unpack(NULL, resp.len, resp.data);
    if (ack == NULL) {
      fail_run(r, "POST %s: 200 without a BatchAck", opt->url);
      return false;
    }
    uint32_t stored = ack->stored;
    tlsprobe__v1__batch_ack__free_unpacked(ack, NULL);
    if (stored != opt->batch_size) {
      fail_run(r, "ack of %s batch: stored %" PRIu32 " of %u new results", a->id, stored,
               opt->batch_size);
      return false;
    }
    atomic_fetch_add(&r->stored, stored);
    r->lat_ms[global] = took * 1000.0;
    return true;
  }
}

static void *pusher_main(void *arg) {
  pusher *p = arg;
  run *r = p->run;
  const options *opt = r->opt;
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = NULL;
  size_t max_len = 0;
  for (unsigned k = 0; k < opt->agents; k++)
    if (r->agents[k].len > max_len)
      max_len = r->agents[k].len;
  uint8_t *buf = xcalloc(max_len, 1);
  if (curl == NULL) {
    fail_run(r, "curl_easy_init failed");
    goto out;
  }
  headers = curl_slist_append(headers, "Content-Type: application/x-protobuf");
  headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
  if (r->auth_header[0] != '\0')
    headers = curl_slist_append(headers, r->auth_header);
  curl_easy_setopt(curl, CURLOPT_URL, opt->url);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
  if (opt->ca_file != NULL)
    curl_easy_setopt(curl, CURLOPT_CAINFO, opt->ca_file);
  /* Agents are shared out: pusher p pushes for agents p, p+N, ... (or, with fewer
   * agents than pushers, agent p mod K, whose batch numbers it takes atomically). */
  unsigned mine = 0;
  for (;;) {
    uint64_t global = atomic_fetch_add(&r->next, 1);
    if (global >= opt->batches || atomic_load(&r->failed))
      break;
    unsigned k;
    if (opt->agents >= opt->pushers) {
      unsigned per = (opt->agents - p->index + opt->pushers - 1) / opt->pushers;
      k = p->index + (mine++ % per) * opt->pushers;
    } else {
      k = p->index % opt->agents;
    }
    agent *a = &r->agents[k];
    uint64_t b = atomic_fetch_add(&a->next_batch, 1);
    fill_batch(a, buf, b, opt->batch_size);
    if (!push_one(r, curl, headers, buf, a, global))
      break;
  }
out:
  curl_slist_free_all(headers);
  if (curl != NULL)
    curl_easy_cleanup(curl);
  free(buf);
  return NULL;
}

/* ---- figures -------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest rank, as the report computes percentiles. */
static double percentile(const double *sorted, size_t n, double p) {
  if (n == 0)
    return 0;
  size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999999);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return sorted[rank - 1];
}

typedef struct db_figures {
  bool ok;
  int64_t rows, bytes, schema;
  char err[256];
} db_figures;

static int64_t db_int(sqlite3 *db, const char *sql, bool *ok) {
  sqlite3_stmt *st = NULL;
  int64_t v = 0;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  else
    *ok = false;
  sqlite3_finalize(st);
  return v;
}

/* page_count x page_size (the WAL's pages included: a reader sees them) over the rows
 * stored: what a result costs on disk, indexes and dictionaries included. */
static void measure_db(const char *path, db_figures *f) {
  sqlite3 *db = NULL;
  memset(f, 0, sizeof(*f));
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    snprintf(f->err, sizeof(f->err), "%s: %s", path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return;
  }
  sqlite3_busy_timeout(db, 5000);
  bool ok = true;
  f->schema = db_int(db, "PRAGMA user_version", &ok);
  /* The raw table's own count: version 6 keeps results in result_rows (results is a
   * view that joins its dictionaries). */
  bool v6 = db_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'result_rows'", &ok) > 0;
  f->rows =
      db_int(db, v6 ? "SELECT count(*) FROM result_rows" : "SELECT count(*) FROM results", &ok);
  f->bytes =
      db_int(db, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size", &ok);
  f->ok = ok;
  if (!ok)
    snprintf(f->err, sizeof(f->err), "%s: %s", path, sqlite3_errmsg(db));
  sqlite3_close(db);
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage(FILE *out) {
  fputs("usage: bench-ingest --url URL [--token-file F] --pushers N --batches M\n"
        "                    --batch-size 500 [--agents K] [--json] [--db PATH]\n"
        "                    [--agent-id NAME] [--ca-file F]\n"
        "  M batches in all, shared out among N pushers (one request in flight each);\n"
        "  K agents (default N), each its own spool; --db: bytes per stored result\n",
        out);
}

static bool parse_u64(const char *s, uint64_t *out) {
  char *end = NULL;
  if (s == NULL || *s < '0' || *s > '9')
    return false;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end != '\0')
    return false;
  *out = v;
  return true;
}

static int parse_args(int argc, char **argv, options *o) {
  uint64_t v;
  *o = (options){.pushers = 1, .batches = 100, .batch_size = 500, .agent_id = "bench"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define IS(name) (strcmp(a, name) == 0)
    if (IS("--help")) {
      usage(stdout);
      exit(0);
    } else if (IS("--json")) {
      o->json = true;
      continue;
    } else if (val == NULL) {
      fprintf(stderr, "bench-ingest: %s needs a value\n", a);
      return 2;
    }
    i++;
    if (IS("--url"))
      o->url = val;
    else if (IS("--token-file"))
      o->token_file = val;
    else if (IS("--db"))
      o->db = val;
    else if (IS("--agent-id"))
      o->agent_id = val;
    else if (IS("--ca-file"))
      o->ca_file = val;
    else if (IS("--pushers") && parse_u64(val, &v) && v >= 1 && v <= 256)
      o->pushers = (unsigned)v;
    else if (IS("--agents") && parse_u64(val, &v) && v >= 1 && v <= 4096)
      o->agents = (unsigned)v;
    else if (IS("--batches") && parse_u64(val, &v) && v >= 1)
      o->batches = v;
    else if (IS("--batch-size") && parse_u64(val, &v) && v >= 1 && v <= MAX_BATCH)
      o->batch_size = (unsigned)v;
    else {
      fprintf(stderr, "bench-ingest: bad option or value: %s %s\n", a, val);
      return 2;
    }
#undef IS
  }
  if (o->url == NULL) {
    usage(stderr);
    return 2;
  }
  if (o->agents == 0)
    o->agents = o->pushers;
  return 0;
}

static bool read_token(const char *path, char *header, size_t len) {
  FILE *f = fopen(path, "r");
  char tok[512];
  if (f == NULL)
    return false;
  bool ok = fgets(tok, sizeof(tok), f) != NULL;
  fclose(f);
  if (!ok)
    return false;
  tok[strcspn(tok, "\r\n \t")] = '\0';
  snprintf(header, len, "Authorization: Bearer %s", tok);
  return tok[0] != '\0';
}

int main(int argc, char **argv) {
  options opt;
  int rc = parse_args(argc, argv, &opt);
  if (rc != 0)
    return rc;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
    fputs("bench-ingest: curl_global_init failed\n", stderr);
    return 1;
  }
  run r = {.opt = &opt};
  pthread_mutex_init(&r.fail_mu, NULL);
  if (opt.token_file != NULL && !read_token(opt.token_file, r.auth_header, sizeof(r.auth_header))) {
    fprintf(stderr, "bench-ingest: cannot read a token from %s\n", opt.token_file);
    return 2;
  }
  int64_t now_s = wall_ns() / 1000000000;
  /* Fresh spools every run: the seconds since the epoch, shifted past any agent count. */
  uint64_t run_id = ((uint64_t)now_s << 16) ^ ((uint64_t)getpid() << 40);
  r.agents = xcalloc(opt.agents, sizeof(agent));
  for (unsigned k = 0; k < opt.agents; k++)
    build_agent(&r.agents[k], k, &opt, run_id, now_s);
  r.lat_ms = xcalloc(opt.batches, sizeof(double));
  pusher *ps = xcalloc(opt.pushers, sizeof(pusher));
  double t0 = mono_s();
  for (unsigned i = 0; i < opt.pushers; i++) {
    ps[i] = (pusher){.run = &r, .index = i};
    if (pthread_create(&ps[i].thread, NULL, pusher_main, &ps[i]) != 0) {
      fputs("bench-ingest: cannot start a pusher thread\n", stderr);
      return 1;
    }
  }
  for (unsigned i = 0; i < opt.pushers; i++)
    pthread_join(ps[i].thread, NULL);
  double wall = mono_s() - t0;
  if (atomic_load(&r.failed)) {
    fprintf(stderr, "bench-ingest: %s\n", r.fail_msg);
    return 1;
  }
  uint64_t stored = atomic_load(&r.stored);
  qsort(r.lat_ms, opt.batches, sizeof(double), cmp_double);
  double p50 = percentile(r.lat_ms, opt.batches, 50), p99 = percentile(r.lat_ms, opt.batches, 99);
  double rate = wall > 0 ? (double)stored / wall : 0;
  size_t bytes_per_batch = r.agents[0].len;
  db_figures dbf = {.ok = false};
  if (opt.db != NULL)
    measure_db(opt.db, &dbf);
  if (opt.json) {
    printf("{\"pushers\":%u,\"agents\":%u,\"batches\":%" PRIu64 ",\"batch_size\":%u,"
           "\"batch_bytes\":%zu,\"results\":%" PRIu64 ",\"seconds\":%.3f,"
           "\"results_per_second\":%.0f,\"ack_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
           "\"retries\":%" PRIu64,
           opt.pushers, opt.agents, opt.batches, opt.batch_size, bytes_per_batch, stored, wall,
           rate, p50, p99, r.lat_ms[opt.batches - 1], (uint64_t)atomic_load(&r.retries));
    if (opt.db != NULL && dbf.ok)
      printf(",\"db\":{\"schema\":%" PRId64 ",\"rows\":%" PRId64 ",\"bytes\":%" PRId64
             ",\"bytes_per_result\":%.1f}",
             dbf.schema, dbf.rows, dbf.bytes, dbf.rows ? (double)dbf.bytes / (double)dbf.rows : 0);
    printf("}\n");
  } else {
    printf("bench-ingest: %u pushers, %u agents, %" PRIu64 " batches of %u (%zu bytes each):"
           " %" PRIu64 " results in %.2f s = %.0f results/s; ack p50 %.2f ms, p99 %.2f ms,"
           " max %.2f ms; retries %" PRIu64 "\n",
           opt.pushers, opt.agents, opt.batches, opt.batch_size, bytes_per_batch, stored, wall,
           rate, p50, p99, r.lat_ms[opt.batches - 1], (uint64_t)atomic_load(&r.retries));
    if (opt.db != NULL && dbf.ok)
      printf("bench-ingest: database schema %" PRId64 ": %" PRId64 " rows, %" PRId64
             " bytes = %.1f bytes per result\n",
             dbf.schema, dbf.rows, dbf.bytes, dbf.rows ? (double)dbf.bytes / (double)dbf.rows : 0);
  }
  if (opt.db != NULL && !dbf.ok)
    fprintf(stderr, "bench-ingest: cannot measure the database: %s\n", dbf.err);
  curl_global_cleanup();
  return 0;
}
