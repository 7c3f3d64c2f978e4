/* test_report.c - report aggregation over a real temporary SQLite store. Results
 * are inserted through ingest (the real write path); the report must produce the
 * hand-computed counts, success rates, nearest-rank percentiles and top errors,
 * and both output formats must show them. The operator rates and warnings are
 * tested on hand-built rows served by a fake storage backend (store_impl.h), so
 * each case states exactly the rows it aggregates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest.h"
#include "outcome.h"
#include "report.h"
#include "report_output.h"
#include "store.h"
#include "store_impl.h"
#include "tlsprobe.pb-c.h"

#define NOW_NS INT64_C(1700000000000000000)
#define MINUTE_NS INT64_C(60000000000)
#define MS_NS UINT64_C(1000000)

typedef struct fixture {
  char dir[64];
  char db[128];
  tp_store *store;
  uint64_t next_seq;
} fixture;

static int setup(void **state) {
  char err[512] = "";
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp_report_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->db, sizeof(f->db), "%s/r.db", f->dir);
  if (tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &f->store, err, sizeof(err)) != TP_E_OK)
    fail_msg("open store: %s", err);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char path[160];
  tp_store_close(f->store);
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof(path), "%s%s", f->db, suffixes[i]);
    unlink(path);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

/* Stores one result as its own batch through ingest (validation included). */
static void ingest_one(fixture *f, Tlsprobe__V1__ProbeResult *rp) {
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  b.agent_id = "agent-r";
  b.instance_id = 1;
  b.batch_seq = ++f->next_seq;
  if (rp->result_seq == 0)
    rp->result_seq = b.batch_seq; /* one result per batch: numbered like its batch */
  b.results = &rp;
  b.n_results = 1;
  size_t len = tlsprobe__v1__result_batch__get_packed_size(&b);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  assert_int_equal(tlsprobe__v1__result_batch__pack(&b, buf), len);
  tp_ingest_reply reply;
  tp_err rc = tp_ingest_batch(f->store, buf, len, NOW_NS, &reply);
  if (rc != TP_E_OK)
    fail_msg("ingest: %s", reply.reason);
  tp_ingest_reply_clear(&reply);
  free(buf);
}

/* A result as put() stores it; cls is the protobuf enum value. */
static Tlsprobe__V1__ProbeResult make_result(const char *target, const char *profile,
                                             const char *region, int cls, uint64_t handshake_ms,
                                             uint64_t lag_ms, int64_t age_ns) {
  Tlsprobe__V1__ProbeResult r = TLSPROBE__V1__PROBE_RESULT__INIT;
  r.target = (char *)target;
  r.profile = (char *)profile;
  r.region = (char *)region;
  r.host = "localhost";
  r.port = 443;
  r.started_unix_ns = NOW_NS - age_ns;
  r.handshake_ns = handshake_ms * MS_NS;
  r.loop_lag_ns = lag_ms * MS_NS;
  r.error_class = (Tlsprobe__V1__ErrorClass)cls;
  r.ok = cls == TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
  r.tls_version = "TLS1.3";
  r.cipher = "TLS_AES_256_GCM_SHA384";
  r.group = "X25519";
  r.alpn = "h2";
  r.error_detail = r.ok ? "" : "detail \"quoted\"";
  return r;
}

/* Stores one result as its own batch. */
static void put(fixture *f, const char *target, const char *profile, const char *region, int cls,
                uint64_t handshake_ms, uint64_t lag_ms, int64_t age_ns) {
  Tlsprobe__V1__ProbeResult r =
      make_result(target, profile, region, cls, handshake_ms, lag_ms, age_ns);
  ingest_one(f, &r);
}

enum { OK = 1, DNS = 2, REFUSED = 3, EXPIRED = 14, UNKNOWN_CA = 12 };

/* a/modern/eu: 8 ok (1..8 ms, lag 1 ms), 1 expired, 1 unknown_ca (lag 3 ms)
 * a/modern/us: 2 connection_refused, 1 dns_failure
 * b/modern/eu: 1 ok (5 ms), plus one 2-hour-old ok outside a 1h window */
static void load_fixture_data(fixture *f) {
  for (uint64_t ms = 8; ms >= 1; ms--) /* inserted unsorted on purpose */
    put(f, "a", "modern", "eu", OK, ms, 1, (int64_t)ms * MINUTE_NS);
  put(f, "a", "modern", "eu", EXPIRED, 0, 3, 20 * MINUTE_NS);
  put(f, "a", "modern", "eu", UNKNOWN_CA, 0, 3, 21 * MINUTE_NS);
  put(f, "a", "modern", "us", REFUSED, 0, 0, 5 * MINUTE_NS);
  put(f, "b", "modern", "eu", OK, 5, 0, 2 * MINUTE_NS);
  put(f, "a", "modern", "us", DNS, 0, 0, 6 * MINUTE_NS);
  put(f, "a", "modern", "us", REFUSED, 0, 0, 7 * MINUTE_NS);
  put(f, "b", "modern", "eu", OK, 900, 0, 120 * MINUTE_NS);
}

static tp_report *build(fixture *f, uint64_t window_ms, const char *target, bool facts) {
  char err[512] = "";
  tp_report *rep = NULL;
  tp_report_query q = {.now_unix_ns = NOW_NS,
                       .since_unix_ns = NOW_NS - (int64_t)window_ms * 1000000,
                       .until_unix_ns = NOW_NS,
                       .since_text = "1h",
                       .with_facts = facts};
  q.glob[TP_DIM_TARGET] = target;
  if (tp_report_build(f->store, &q, &rep, err, sizeof(err)) != TP_E_OK)
    fail_msg("report: %s", err);
  return rep;
}

static void assert_series_key(const tp_report_series *s, const char *t, const char *p,
                              const char *r) {
  assert_string_equal(s->target, t);
  assert_string_equal(s->profile, p);
  assert_string_equal(s->region, r);
}

static void test_aggregation(void **state) {
  fixture *f = *state;
  load_fixture_data(f);
  tp_report *rep = build(f, 3600 * 1000, NULL, false);
  assert_int_equal(tp_report_series_count(rep), 3);
  assert_int_equal(tp_report_total_probes(rep), 14);

  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_series_key(s, "a", "modern", "eu");
  assert_int_equal(s->probes, 10);
  assert_int_equal(s->successes, 8);
  assert_float_equal(s->success_rate.fraction, 80.0 / 100.0, 1e-9);
  assert_true(s->handshake.set);
  assert_int_equal(s->handshake.p50_ns, 4 * MS_NS); /* ceil(0.5 * 8) = 4 */
  assert_int_equal(s->handshake.p90_ns, 8 * MS_NS); /* ceil(7.2) = 8 */
  assert_int_equal(s->handshake.p99_ns, 8 * MS_NS);
  assert_float_equal(s->mean_loop_lag_ms, 1.4, 1e-9); /* (8*1 + 2*3) / 10 */
  assert_string_equal(s->top_error, "expired");       /* 1:1 tie with unknown_ca */
  assert_int_equal(s->top_error_count, 1);
  assert_int_equal(s->class_counts[EXPIRED], 1);
  assert_int_equal(s->class_counts[UNKNOWN_CA], 1);
  assert_int_equal(s->class_counts[OK], 8);

  s = tp_report_series_at(rep, 1);
  assert_series_key(s, "a", "modern", "us");
  assert_int_equal(s->probes, 3);
  assert_int_equal(s->successes, 0);
  assert_float_equal(s->success_rate.fraction, 0.0 / 100.0, 1e-9);
  assert_false(s->handshake.set);
  assert_string_equal(s->top_error, "connection_refused");
  assert_int_equal(s->top_error_count, 2);

  s = tp_report_series_at(rep, 2);
  assert_series_key(s, "b", "modern", "eu");
  assert_int_equal(s->probes, 1); /* the 2-hour-old probe is outside the window */
  assert_int_equal(s->handshake.p50_ns, 5 * MS_NS);
  assert_int_equal(s->handshake.p99_ns, 5 * MS_NS);
  assert_null(s->top_error);
  assert_false(s->have_facts);
  assert_null(tp_report_series_at(rep, 3));
  tp_report_free(rep);

  /* A 3-hour window includes the old probe: p99 of {5, 900} = 900. */
  rep = build(f, 3 * 3600 * 1000, "b", false);
  assert_int_equal(tp_report_series_count(rep), 1);
  s = tp_report_series_at(rep, 0);
  assert_int_equal(s->probes, 2);
  assert_int_equal(s->handshake.p50_ns, 5 * MS_NS);
  assert_int_equal(s->handshake.p99_ns, 900 * MS_NS);
  tp_report_free(rep);
}

/* Runs a writer into a memory stream and returns the text (caller frees). */
/* noinline: once inlined, gcc -O0 takes the open_memstream buffer for a pointer to
 * render's local variable and reports callers' pointers into it as dangling. */
__attribute__((noinline)) static char *render(const tp_report *rep, bool json) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  tp_report_output o = {.view = TP_VIEW_SUMMARY, .format = json ? TP_FORMAT_JSON : TP_FORMAT_TEXT};
  assert_int_equal(tp_report_write(rep, &o, out), TP_E_OK);
  assert_int_equal(fclose(out), 0);
  return text;
}

static void test_text_format(void **state) {
  fixture *f = *state;
  load_fixture_data(f);
  tp_report *rep = build(f, 3600 * 1000, NULL, false);
  assert_int_equal(tp_report_worst_level(rep), TP_REPORT_WARN); /* success rates only */
  char *text = render(rep, false);
  const char *expected =
      "tlsprobe report: window 1h ending 2023-11-14T22:13:20Z, 3 series, 14 probes\n"
      "TARGET  PROFILE  REGION  PROBES  OK  SUCCESS%  P50_MS  P90_MS  P99_MS  P99.9_MS  TOP_ERROR\n"
      "a       modern   eu          10   8     80.00    4.00    8.00    8.00      8.00  expired:1\n"
      "a       modern   us           3   0      0.00       -       -       -         -  "
      "connection_refused:2\n"
      "b       modern   eu           1   1    100.00    5.00    5.00    5.00      5.00  -\n"
      "WARN a/modern/eu: success rate 80.00% (threshold 99.9%)\n"
      "WARN a/modern/us: success rate 0.00% (threshold 99.9%)\n"
      "delivery: 1 agents, 0 results reported lost in the window, 0 missing\n"
      "AGENT                    LAST DELIVERY           STORED      LOST   MISSING  STATUS\n"
      "agent-r                  2023-11-14T22:13:20Z        15         0         0  ok\n";
  assert_string_equal(text, expected);
  free(text);
  tp_report_free(rep);
}

static void test_json_format(void **state) {
  fixture *f = *state;
  load_fixture_data(f);
  tp_report *rep = build(f, 3600 * 1000, NULL, false);
  char *json = render(rep, true);
  assert_non_null(strstr(json, "{\"schema\":\"tlsprobe-report\",\"schema_version\":2,"
                               "\"view\":\"summary\",\"generated_unix\":1700000000,"
                               "\"window\":{\"since_unix\":1699996400,"
                               "\"until_unix\":1700000000,\"seconds\":3600},"
                               "\"source\":\"raw\",\"not_rolled_up\":0,\"by\":[\"target\",\"profile\",\"region\"],"));
  assert_non_null(strstr(json, "\"series\":[{\"target\":\"a\",\"profile\":\"modern\","
                               "\"region\":\"eu\",\"agent\":null,\"family\":null,"
                               "\"probes\":10,\"successes\":8,"
                               "\"divergent_successes\":0,\"emulation_checked_successes\":0,"
                               "\"success_rate\":0.800000,"
                               "\"handshake_ms\":{\"p50\":4.000,\"p90\":8.000,"
                               "\"p99\":8.000,\"p99_9\":8.000},"));
  assert_non_null(strstr(json, "\"loop_lag_ms\":{\"mean\":1.400,\"p99\":3.000},"
                               "\"saturated\":{\"results\":0,\"excluded_from_latency\":0},"
                               "\"top_error\":{\"class\":\"expired\",\"count\":1,"
                               "\"owner\":\"server\"},"
                               "\"errors\":[{\"class\":\"expired\",\"owner\":\"server\","
                               "\"count\":1,\"latest_detail\":\"detail \\\"quoted\\\"\"},"
                               "{\"class\":\"unknown_ca\",\"owner\":\"client\",\"count\":1,"
                               "\"latest_detail\":\"detail \\\"quoted\\\"\"}],"
                               "\"hrr\":0,\"resumption_probes\":0,\"resumed\":0,"));
  assert_non_null(strstr(json, "\"hrr_rate\":0.000000,\"resumption_rate\":null,"
                               "\"early_data_accept_rate\":null,\"ocsp_staple_rate\":0.000000,"
                               "\"min_days_to_expiry\":null,"
                               "\"ocsp_max_age_seconds\":null,\"divergence_example\":null,"
                               "\"early_data_policy_violations\":0,"));
  assert_non_null(strstr(json, "\"handshake_ms\":null,\"connect_ms\":null,\"total_ms\":null"));
  assert_non_null(strstr(json, "\"top_error\":{\"class\":\"connection_refused\",\"count\":2,"
                               "\"owner\":\"server\"},"
                               "\"errors\":[{\"class\":\"connection_refused\",\"owner\":"
                               "\"server\",\"count\":2,\"latest_detail\":\"detail \\\"quoted\\\"\"},"
                               "{\"class\":\"dns_failure\",\"owner\":\"network\",\"count\":1,"
                               "\"latest_detail\":\"detail \\\"quoted\\\"\"}],"));
  assert_non_null(strstr(json, "\"top_error\":null,\"errors\":[],"));
  assert_non_null(strstr(json, "}],\"warnings\":[{\"level\":\"WARN\",\"index\":0,"
                               "\"text\":\"success rate 80.00% (threshold 99.9%)\"},"
                               "{\"level\":\"WARN\",\"index\":1,"
                               "\"text\":\"success rate 0.00% (threshold 99.9%)\"}],"
                               "\"certificates\":[],\"slo\":[],\"slo_warnings\":[],"
                               "\"agents\":[{\"agent_id\":\"agent-r\",\"spools\":1,"
                               "\"results\":15,\"lost_total\":0,\"lost_in_window\":0,"
                               "\"lost_spool_full\":0,\"lost_spool_error\":0,"
                               "\"lost_invalid_result\":0,\"lost_too_old\":0,\"missing\":0,"
                               "\"last_delivery_unix\":1700000000,"
                               "\"last_result_started_unix\":1699999940,\"silent\":false}],"
                               "\"agent_warnings\":[]}\n"));
  assert_null(strstr(json, "tls_version")); /* facts only with --target */
  free(json);
  tp_report_free(rep);
}

static void test_target_facts(void **state) {
  fixture *f = *state;
  load_fixture_data(f);
  tp_report *rep = build(f, 3600 * 1000, "a", true);
  assert_int_equal(tp_report_series_count(rep), 2);
  const tp_report_series *s = tp_report_series_at(rep, 1);
  assert_true(s->have_facts);
  /* Latest in a/modern/us is the refused probe 5 minutes ago. */
  assert_int_equal(s->facts.started_unix_ns, NOW_NS - 5 * MINUTE_NS);
  assert_string_equal(s->facts.tls_version, "TLS1.3");
  assert_int_equal(s->facts.n_chain, 0);
  char *json = render(rep, true);
  /* A result without an OCSP staple or HTTP request: those objects are null. */
  assert_non_null(strstr(json, "\"tls_version\":\"TLS1.3\",\"cipher\":\"TLS_AES_256_GCM_SHA384\","
                               "\"group\":\"X25519\",\"alpn\":\"h2\","
                               "\"days_to_earliest_expiry\":null,"
                               "\"error_detail\":\"detail \\\"quoted\\\"\","
                               "\"resumed\":false,\"hello_retry_request\":false,"
                               "\"mode\":\"\",\"groups_offered\":[],\"key_shares_offered\":[],"
                               "\"fidelity_note\":\"\",\"ticket_received\":false,"
                               "\"resumption_handshake_ms\":0.000,"
                               "\"early_data_attempted\":false,\"early_data_accepted\":false,"
                               "\"chain_length_sent\":0,\"chain_complete\":false,"
                               "\"ocsp\":null,\"http\":null,\"address_family\":\"\","
                               "\"emulation_checked\":false,\"emulation_divergence\":\"\","
                               "\"early_data_policy_violation\":false,\"chain\":[]}"));
  free(json);
  tp_report_free(rep);
}

/* --target over a result carrying every schema version 2 and 3 fact. */
static void test_target_full_facts(void **state) {
  fixture *f = *state;
  Tlsprobe__V1__ProbeResult r = TLSPROBE__V1__PROBE_RESULT__INIT;
  Tlsprobe__V1__ProbeResult *rp = &r;
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  Tlsprobe__V1__OcspFacts ocsp = TLSPROBE__V1__OCSP_FACTS__INIT;
  Tlsprobe__V1__HttpFacts http = TLSPROBE__V1__HTTP_FACTS__INIT;
  Tlsprobe__V1__CertificateFacts cert = TLSPROBE__V1__CERTIFICATE_FACTS__INIT;
  Tlsprobe__V1__CertificateFacts *certs[1] = {&cert};
  char *groups[] = {"X25519", "SECP256R1"}, *shares[] = {"X25519"};
  r.target = "good";
  r.profile = "default";
  r.port = 443;
  r.started_unix_ns = NOW_NS - MINUTE_NS;
  r.handshake_ns = 2 * MS_NS;
  r.error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
  r.ok = 1;
  r.tls_version = "TLS1.3";
  r.resumed = 1;
  r.groups_offered = groups;
  r.n_groups_offered = 2;
  r.key_shares_offered = shares;
  r.n_key_shares_offered = 1;
  r.mode = "early_data";
  r.ticket_received = 1;
  r.resumption_handshake_ns = 1500000;
  r.early_data_attempted = 1;
  r.early_data_accepted = 1;
  r.fidelity_note = "no \"SSL 3.0\"";
  ocsp.cert_status = "good";
  ocsp.this_update_unix = 1699990000;
  ocsp.next_update_unix = 0;
  ocsp.age_seconds = 10000;
  r.ocsp = &ocsp;
  http.status = 301;
  http.first_byte_ns = 2500000;
  http.hsts = 1;
  r.http = &http;
  char *sans[] = {"good.test", "www.good.test"};
  cert.subject = "CN=good";
  cert.issuer = "CN=CA \"1\"";
  cert.san_dns = sans;
  cert.n_san_dns = 2;
  cert.not_before_unix = 1690000000;
  cert.not_after_unix = 1701036800;
  cert.key_type = "EC/ECDSA";
  cert.key_bits = 256;
  cert.signature_algorithm = "ECDSA-SHA256";
  r.chain = certs;
  r.n_chain = 1;
  r.chain_length_sent = 3;
  r.chain_complete = 1;
  r.days_to_earliest_expiry = 12;
  r.address_family = "ipv6";
  r.emulation_checked = 1; /* and exact */
  r.early_data_policy_violation = 1;
  r.result_seq = 1;
  b.agent_id = "agent-r";
  b.batch_seq = 1;
  b.results = &rp;
  b.n_results = 1;
  size_t len = tlsprobe__v1__result_batch__get_packed_size(&b);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  assert_int_equal(tlsprobe__v1__result_batch__pack(&b, buf), len);
  tp_ingest_reply reply;
  if (tp_ingest_batch(f->store, buf, len, NOW_NS, &reply) != TP_E_OK)
    fail_msg("ingest: %s", reply.reason);
  tp_ingest_reply_clear(&reply);
  free(buf);

  tp_report *rep = build(f, 3600 * 1000, "good", true);
  char *json = render(rep, true);
  assert_non_null(strstr(json, "\"resumption_rate\":1.000000,\"early_data_accept_rate\":1.000000,"
                               "\"ocsp_staple_rate\":1.000000,"
                               "\"min_days_to_expiry\":12,\"ocsp_max_age_seconds\":10000,"
                               "\"divergence_example\":null,\"early_data_policy_violations\":1,"));
  assert_non_null(strstr(json, "\"versions\":[{\"name\":\"TLS1.3\",\"count\":1}],"));
  assert_non_null(strstr(json, "\"latest\":{\"started_unix\":"));
  assert_non_null(strstr(json, ",\"tls_version\":\"TLS1.3\""));
  assert_non_null(strstr(json, "\"successes\":1,"
                               "\"divergent_successes\":0,\"emulation_checked_successes\":1,"
                               "\"success_rate\":1.000000,"));
  assert_non_null(strstr(json, "\"days_to_earliest_expiry\":12,\"error_detail\":\"\","
                               "\"resumed\":true,\"hello_retry_request\":false,"
                               "\"mode\":\"early_data\","
                               "\"groups_offered\":[\"X25519\",\"SECP256R1\"],"
                               "\"key_shares_offered\":[\"X25519\"],"
                               "\"fidelity_note\":\"no \\\"SSL 3.0\\\"\","
                               "\"ticket_received\":true,\"resumption_handshake_ms\":1.500,"
                               "\"early_data_attempted\":true,\"early_data_accepted\":true,"
                               "\"chain_length_sent\":3,\"chain_complete\":true,"
                               "\"ocsp\":{\"cert_status\":\"good\",\"this_update_unix\":1699990000,"
                               "\"next_update_unix\":0,\"age_seconds\":10000},"
                               "\"http\":{\"status\":301,\"first_byte_ms\":2.500,\"hsts\":true},"
                               "\"address_family\":\"ipv6\",\"emulation_checked\":true,"
                               "\"emulation_divergence\":\"\",\"early_data_policy_violation\":true,"
                               "\"chain\":[{\"subject\":\"CN=good\",\"issuer\":\"CN=CA \\\"1\\\"\","
                               "\"san_dns\":[\"good.test\",\"www.good.test\"],"
                               "\"not_before_unix\":1690000000,\"not_after_unix\":1701036800,"
                               "\"key_type\":\"EC/ECDSA\",\"key_bits\":256,"
                               "\"signature_algorithm\":\"ECDSA-SHA256\"}]}"));
  free(json);
  /* Structured facts, whatever the backend stores: the chain and the lists. */
  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_int_equal(s->facts.n_chain, 1);
  assert_string_equal(s->facts.chain[0].issuer, "CN=CA \"1\"");
  assert_int_equal(s->facts.chain[0].san_dns.n, 2);
  assert_string_equal(s->facts.chain[0].san_dns.items[1], "www.good.test");
  assert_int_equal(s->facts.chain[0].not_after_unix, 1701036800);
  assert_true(s->facts.groups_offered.set);
  assert_int_equal(s->facts.groups_offered.n, 2);
  assert_string_equal(s->facts.groups_offered.items[1], "SECP256R1");
  assert_int_equal(s->facts.key_shares_offered.n, 1);
  char *text = render(rep, false);
  assert_non_null(strstr(text, "\nWARN good/default: certificate expires in 12 days (threshold 14)\n"));
  free(text);
  tp_report_free(rep);
}

/* ---- operator rates and warnings over hand-built rows ----------------------------- */

typedef struct fake_store {
  tp_store base; /* first: the vtable contract */
  const tp_store_row *rows;
  size_t n;
} fake_store;

static tp_err fake_scan(tp_store *store, const tp_store_filter *filter, tp_store_row_fn fn,
                        void *ctx, char *err, size_t errlen) {
  fake_store *fs = (fake_store *)store;
  (void)err;
  (void)errlen;
  for (size_t i = 0; i < fs->n; i++) {
    if (fs->rows[i].started_unix_ns < filter->since_unix_ns ||
        fs->rows[i].started_unix_ns >= filter->until_unix_ns ||
        (filter->target != NULL && strcmp(filter->target, fs->rows[i].target) != 0))
      continue;
    tp_err rc = fn(&fs->rows[i], ctx);
    if (rc != TP_E_OK)
      return rc;
  }
  return TP_E_OK;
}

static tp_err fake_latest(tp_store *store, const char *target, const char *profile,
                          const char *region, int64_t since_unix_ns, tp_store_facts *out,
                          char *err, size_t errlen) {
  (void)store, (void)target, (void)profile, (void)region, (void)since_unix_ns, (void)err,
      (void)errlen;
  *out = (tp_store_facts){0};
  return TP_E_NOTFOUND;
}

static tp_err fake_spools(tp_store *store, tp_store_spool_fn fn, void *ctx, char *err,
                          size_t errlen) {
  (void)store, (void)fn, (void)ctx, (void)err, (void)errlen;
  return TP_E_OK;
}

static tp_err fake_drops(tp_store *store, int64_t since_unix_ns, tp_store_drop_fn fn, void *ctx,
                         char *err, size_t errlen) {
  (void)store, (void)since_unix_ns, (void)fn, (void)ctx, (void)err, (void)errlen;
  return TP_E_OK;
}

/* No rollups: the report reads the rows. */
static tp_err fake_horizon(tp_store *store, tp_store_horizon *out, char *err, size_t errlen) {
  (void)store, (void)err, (void)errlen;
  *out = (tp_store_horizon){0};
  return TP_E_OK;
}

static const tp_store_ops fake_ops = {.name = "fake",
                                      .horizon = fake_horizon,
                                      .scan = fake_scan,
                                      .latest = fake_latest,
                                      .scan_spools = fake_spools,
                                      .scan_drops = fake_drops};

/* A successful plain handshake of series t/p (no region), 1 minute old. */
static tp_store_row ok_row(const char *target) {
  return (tp_store_row){.target = target,
                        .profile = "p",
                        .region = "",
                        .ok = true,
                        .error_class = "ok",
                        .handshake_ns = MS_NS,
                        .started_unix_ns = NOW_NS - MINUTE_NS,
                        .mode = "handshake",
                        .agent_id = "agent",
                        .error_detail = "",
                        .tls_version = "TLS1.3",
                        .cipher = "AES-128-GCM",
                        .group = "X25519",
                        .address_family = "ipv4",
                        .emulation_divergence = ""};
}

static tp_store_row failed_row(const char *target, const char *cls) {
  tp_store_row r = ok_row(target);
  r.ok = false;
  r.error_class = cls;
  return r;
}

/* Builds the report over rows (series order, oldest first, as the store contract
 * says). */
static tp_report *build_rows(const tp_store_row *rows, size_t n) {
  fake_store fs = {.base = {.ops = &fake_ops}, .rows = rows, .n = n};
  char err[256] = "";
  tp_report *rep = NULL;
  tp_report_query q = {.now_unix_ns = NOW_NS,
                       .since_unix_ns = NOW_NS - 3600 * 1000000000LL,
                       .until_unix_ns = NOW_NS,
                       .since_text = "1h"};
  if (tp_report_build(&fs.base, &q, &rep, err, sizeof(err)) != TP_E_OK)
    fail_msg("report: %s", err);
  return rep;
}

/* ---- the negotiated mix from rollups ------------------------------------------------ */

typedef struct fake_rollups {
  tp_store base; /* first: the vtable contract */
  tp_store_rollup_row rows[3];
  size_t n;
} fake_rollups;

static tp_err fake_scan_rollups(tp_store *store, tp_store_rollup_span span, int64_t since_unix_ns,
                                int64_t until_unix_ns, const tp_store_rollup_filter *filter,
                                tp_store_rollup_order order, tp_store_rollup_fn fn, void *ctx,
                                char *err, size_t errlen) {
  fake_rollups *fr = (fake_rollups *)store;
  (void)filter, (void)order, (void)err, (void)errlen;
  for (size_t i = 0; i < fr->n; i++) {
    const tp_store_rollup_row *row = &fr->rows[i];
    if (row->span_ns != tp_store_rollup_span_ns(span) ||
        row->start_unix_ns + row->span_ns <= since_unix_ns || row->start_unix_ns >= until_unix_ns)
      continue;
    tp_err rc = fn(row, ctx);
    if (rc != TP_E_OK)
      return rc;
  }
  return TP_E_OK;
}

static const tp_store_ops fake_rollup_ops = {.name = "fake-rollups",
                                             .horizon = fake_horizon,
                                             .scan = fake_scan,
                                             .scan_rollups = fake_scan_rollups,
                                             .latest = fake_latest,
                                             .scan_spools = fake_spools,
                                             .scan_drops = fake_drops};

/* Three minute spans of one series: one with its mix (3 x TLS1.3, 1 x TLS1.2), one
 * rolled up before schema version 7 (no mix, 5 successes), and one such span that 2
 * later results were merged into (mix of 2, 6 successes): the distributions hold the
 * recorded 6, and the report says 4 + 5 = 9 were not recorded. */
static void test_rollup_mix(void **state) {
  (void)state;
  tp_mix *mixed = tp_mix_new(), *merged = tp_mix_new();
  assert_int_equal(tp_mix_add(mixed, "TLS1.3", "AES-128-GCM", "X25519", 3), TP_E_OK);
  assert_int_equal(tp_mix_add(mixed, "TLS1.2", "AES-256-GCM", "SECP256R1", 1), TP_E_OK);
  assert_int_equal(tp_mix_add(merged, "TLS1.3", "AES-128-GCM", "X25519", 2), TP_E_OK);
  tp_sketch *empty = tp_sketch_new();
  tp_store_rollup_row base = {.span_ns = TP_STORE_ROLLUP_MINUTE_NS,
                              .target = "t",
                              .profile = "p",
                              .region = "eu",
                              .agent_id = "a",
                              .address_family = "ipv4",
                              .handshake_ns = empty,
                              .connect_ns = empty,
                              .total_ns = empty};
  fake_rollups fr = {.base = {.ops = &fake_rollup_ops}, .n = 3};
  int64_t minute0 = NOW_NS - NOW_NS % MINUTE_NS - 10 * MINUTE_NS;
  uint64_t successes[3] = {4, 5, 6};
  const tp_mix *mixes[3] = {mixed, NULL, merged};
  for (size_t i = 0; i < 3; i++) {
    fr.rows[i] = base;
    fr.rows[i].start_unix_ns = minute0 + (int64_t)i * MINUTE_NS;
    fr.rows[i].probes = fr.rows[i].successes = successes[i];
    fr.rows[i].classes.n[TP_OUTCOME_OK] = successes[i];
    fr.rows[i].negotiated = mixes[i];
  }
  char err[256] = "";
  tp_report *rep = NULL;
  tp_report_query q = {.now_unix_ns = NOW_NS,
                       .since_unix_ns = NOW_NS - 3600 * 1000000000LL,
                       .until_unix_ns = NOW_NS,
                       .since_text = "1h",
                       .source = TP_REPORT_SOURCE_ROLLUP,
                       .skip_delivery = true};
  if (tp_report_build(&fr.base, &q, &rep, err, sizeof(err)) != TP_E_OK)
    fail_msg("report: %s", err);
  assert_true(tp_report_from_rollups(rep));
  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_int_equal(s->successes, 15);
  assert_int_equal(s->versions.n, 2);
  assert_string_equal(s->versions.items[0].name, "TLS1.3");
  assert_int_equal(s->versions.items[0].count, 5);
  assert_string_equal(s->versions.items[1].name, "TLS1.2");
  assert_int_equal(s->versions.items[1].count, 1);
  assert_int_equal(s->groups.items[0].count, 5);
  char *text = render(rep, false);
  assert_non_null(strstr(text, "negotiated mix: not recorded for 9 successes"));
  free(text);
  tp_report_free(rep);
  tp_sketch_free(empty);
  tp_mix_free(mixed);
  tp_mix_free(merged);
}

/* All warning texts joined as the text report prints them (caller frees). */
static char *warnings_text(const tp_report *rep) {
  char *text = render(rep, false);
  /* offsets, not pointers into text: gcc -O0 flags those as dangling */
  const char *warn = strstr(text, "\nWARN ");
  const char *crit = strstr(text, "\nCRIT ");
  size_t len = strlen(text), at = len;
  if (warn != NULL)
    at = (size_t)(warn - text) + 1;
  if (crit != NULL && (size_t)(crit - text) + 1 < at)
    at = (size_t)(crit - text) + 1;
  char *out = strdup(text + at);
  free(text);
  return out;
}

static void assert_rate(tp_report_rate r, double percent) { /* percent: 0..100 */
  assert_true(r.set);
  assert_float_equal(100.0 * r.fraction, percent, 1e-9);
}

static void test_rates_no_rows(void **state) {
  (void)state;
  tp_report *rep = build_rows(NULL, 0);
  assert_int_equal(tp_report_series_count(rep), 0);
  assert_int_equal(tp_report_warning_count(rep), 0);
  assert_null(tp_report_warning_at(rep, 0));
  tp_report_free(rep);
}

static void test_rates_one_row(void **state) {
  (void)state;
  tp_store_row ok = ok_row("t");
  tp_report *rep = build_rows(&ok, 1);
  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_rate(s->hrr_rate, 0.0);
  assert_false(s->resumption_rate.set);       /* no resumption-mode probe */
  assert_false(s->early_data_accept_rate.set); /* nothing attempted */
  assert_false(s->min_days_to_expiry.set);     /* no chain */
  assert_false(s->ocsp_max_age_seconds.set);   /* no staple */
  assert_null(s->top_error);
  assert_null(s->top_error_category);
  assert_int_equal(tp_report_warning_count(rep), 0);
  tp_report_free(rep);

  /* One failure: no success, so no HRR rate; 0 % success warns. */
  tp_store_row bad = failed_row("t", "unknown_ca");
  bad.hello_retry_request = true; /* a failed probe's HRR counts nowhere */
  rep = build_rows(&bad, 1);
  s = tp_report_series_at(rep, 0);
  assert_false(s->hrr_rate.set);
  assert_string_equal(s->top_error, "unknown_ca");
  assert_string_equal(s->top_error_category, "client");
  char *w = warnings_text(rep);
  assert_string_equal(w, "WARN t/p: success rate 0.00% (threshold 99.9%)\n");
  free(w);
  tp_report_free(rep);
}

static void test_top_error_categories(void **state) {
  (void)state;
  static const struct {
    const char *cls, *category;
  } cases[] = {{"dns_failure", "network"},    {"connection_refused", "server"},
               {"unknown_ca", "client"},      {"no_shared_group", "policy"},
               {"other", "internal"},         {"expired", "server"}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    tp_store_row rows[2] = {failed_row("t", cases[i].cls), ok_row("t")};
    tp_report *rep = build_rows(rows, 2);
    const tp_report_series *s = tp_report_series_at(rep, 0);
    assert_string_equal(s->top_error, cases[i].cls);
    assert_string_equal(s->top_error_category, cases[i].category);
    char *json = render(rep, true);
    char want[128];
    snprintf(want, sizeof(want), "\"top_error\":{\"class\":\"%s\",\"count\":1,\"owner\":\"%s\"}",
             cases[i].cls, cases[i].category);
    assert_non_null(strstr(json, want));
    free(json);
    tp_report_free(rep);
  }
}

static void test_hrr_rate(void **state) {
  (void)state;
  tp_store_row rows[21];
  /* 2 successes, 1 with HRR: 50 %, warns; the failed probe's HRR is not counted. */
  rows[0] = ok_row("t");
  rows[1] = ok_row("t");
  rows[1].hello_retry_request = true;
  rows[2] = failed_row("t", "expired");
  rows[2].hello_retry_request = true;
  tp_report *rep = build_rows(rows, 3);
  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_int_equal(s->hrr, 1);
  assert_rate(s->hrr_rate, 50.0);
  char *w = warnings_text(rep);
  assert_string_equal(w, "WARN t/p: success rate 66.67% (threshold 99.9%)\n"
                         "WARN t/p: HelloRetryRequest rate 50.00% (threshold 5%)\n");
  free(w);
  tp_report_free(rep);

  /* 1 of 20 = exactly 5 %: not above the threshold. 1 of 19 is. */
  for (size_t i = 0; i < 20; i++)
    rows[i] = ok_row("t");
  rows[7].hello_retry_request = true;
  rep = build_rows(rows, 20);
  assert_rate(tp_report_series_at(rep, 0)->hrr_rate, 5.0);
  assert_int_equal(tp_report_warning_count(rep), 0);
  tp_report_free(rep);
  rep = build_rows(rows, 19);
  assert_int_equal(tp_report_warning_count(rep), 1);
  assert_string_equal(tp_report_warning_at(rep, 0)->text,
                      "HelloRetryRequest rate 5.26% (threshold 5%)");
  tp_report_free(rep);
}

static void test_resumption_rate(void **state) {
  (void)state;
  tp_store_row rows[6];
  /* Denominator: successful probes in resumption or early_data mode. */
  rows[0] = ok_row("t");
  rows[0].mode = "resumption";
  rows[0].resumed = true;
  rows[1] = ok_row("t");
  rows[1].mode = "early_data";
  rows[2] = failed_row("t", "handshake_timeout"); /* failed: not counted */
  rows[2].mode = "resumption";
  rows[3] = ok_row("t"); /* handshake mode: not counted, even if resumed */
  rows[3].resumed = true;
  tp_report *rep = build_rows(rows, 4);
  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_int_equal(s->resumption_probes, 2);
  assert_int_equal(s->resumed, 1);
  assert_rate(s->resumption_rate, 50.0);
  assert_int_equal(tp_report_warning_count(rep), 2);
  assert_string_equal(tp_report_warning_at(rep, 1)->text,
                      "resumption rate 50.00% (threshold 80%)");
  tp_report_free(rep);

  /* 4 of 5 = 80 %: on the threshold, no warning; 3 of 4 = 75 % warns. */
  for (size_t i = 0; i < 5; i++) {
    rows[i] = ok_row("t");
    rows[i].mode = "resumption";
    rows[i].resumed = i != 0;
  }
  rep = build_rows(rows, 5);
  assert_rate(tp_report_series_at(rep, 0)->resumption_rate, 80.0);
  assert_int_equal(tp_report_warning_count(rep), 0);
  tp_report_free(rep);
  rep = build_rows(rows, 4);
  assert_rate(tp_report_series_at(rep, 0)->resumption_rate, 75.0);
  char *w = warnings_text(rep);
  assert_string_equal(w, "WARN t/p: resumption rate 75.00% (threshold 80%)\n");
  free(w);
  tp_report_free(rep);
}

static void test_early_data_accept_rate(void **state) {
  (void)state;
  tp_store_row rows[4];
  rows[0] = ok_row("t");
  rows[0].mode = "early_data";
  rows[0].early_data_attempted = true;
  rows[0].early_data_accepted = true;
  rows[1] = ok_row("t");
  rows[1].mode = "early_data";
  rows[1].early_data_attempted = true;
  rows[2] = ok_row("t"); /* did not attempt: not counted */
  rows[2].mode = "early_data";
  rows[3] = failed_row("t", "connection_reset"); /* failed: not counted */
  rows[3].early_data_attempted = true;
  tp_report *rep = build_rows(rows, 4);
  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_int_equal(s->early_data_attempts, 2);
  assert_int_equal(s->early_data_accepts, 1);
  assert_rate(s->early_data_accept_rate, 50.0);
  char *json = render(rep, true);
  assert_non_null(strstr(json, "\"early_data_accept_rate\":0.500000,"));
  free(json);
  tp_report_free(rep);
  rep = build_rows(rows, 1);
  assert_rate(tp_report_series_at(rep, 0)->early_data_accept_rate, 100.0);
  tp_report_free(rep);
}

static void test_success_rate_threshold(void **state) {
  (void)state;
  tp_store_row *rows = calloc(1000, sizeof(*rows));
  assert_non_null(rows);
  for (size_t i = 0; i < 1000; i++)
    rows[i] = ok_row("t");
  rows[500] = failed_row("t", "expired");
  tp_report *rep = build_rows(rows, 1000); /* 99.9 %: on the threshold */
  assert_int_equal(tp_report_warning_count(rep), 0);
  tp_report_free(rep);
  rows[501] = failed_row("t", "expired");
  rep = build_rows(rows, 1000); /* 99.8 % */
  assert_int_equal(tp_report_warning_count(rep), 1);
  assert_string_equal(tp_report_warning_at(rep, 0)->text,
                      "success rate 99.80% (threshold 99.9%)");
  tp_report_free(rep);
  free(rows);
}

/* min_days_to_expiry comes from the latest result that had a chain. */
static void test_expiry_latest_chain(void **state) {
  (void)state;
  tp_store_row rows[3];
  rows[0] = ok_row("t");
  rows[0].started_unix_ns = NOW_NS - 3 * MINUTE_NS;
  rows[0].days_to_earliest_expiry = (tp_store_opt){.set = true, .v = 5};
  rows[1] = ok_row("t"); /* renewed since */
  rows[1].started_unix_ns = NOW_NS - 2 * MINUTE_NS;
  rows[1].days_to_earliest_expiry = (tp_store_opt){.set = true, .v = 90};
  rows[2] = failed_row("t", "connection_refused"); /* latest, but no chain */
  tp_report *rep = build_rows(rows, 2);
  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_true(s->min_days_to_expiry.set);
  assert_int_equal(s->min_days_to_expiry.v, 90);
  assert_int_equal(tp_report_warning_count(rep), 0);
  tp_report_free(rep);
  rep = build_rows(rows, 3);
  assert_int_equal(tp_report_series_at(rep, 0)->min_days_to_expiry.v, 90);
  tp_report_free(rep);
  rep = build_rows(rows, 1);
  assert_int_equal(tp_report_series_at(rep, 0)->min_days_to_expiry.v, 5);
  tp_report_free(rep);
}

static void test_expiry_thresholds(void **state) {
  (void)state;
  static const char *const names[] = {"d31", "d30", "d15", "d14", "d12", "d8",
                                      "d7",  "d4",  "d3",  "d0",  "dm2"};
  static const int days[] = {31, 30, 15, 14, 12, 8, 7, 4, 3, 0, -2};
  tp_store_row rows[11];
  for (size_t i = 0; i < 11; i++) {
    rows[i] = ok_row(names[i]);
    rows[i].profile = "default";
    rows[i].days_to_earliest_expiry = (tp_store_opt){.set = true, .v = days[i]};
  }
  /* Series are reported in the store's (byte) order; build them sorted. */
  static const size_t order[] = {9, 4, 3, 2, 8, 1, 0, 7, 6, 5, 10}; /* d0 d12 d14 d15 d3 ... */
  tp_store_row sorted[11];
  for (size_t i = 0; i < 11; i++)
    sorted[i] = rows[order[i]];
  tp_report *rep = build_rows(sorted, 11);
  char *w = warnings_text(rep);
  assert_string_equal(w, "CRIT d0/default: certificate expires in 0 days (threshold 3)\n"
                         "WARN d12/default: certificate expires in 12 days (threshold 14)\n"
                         "WARN d14/default: certificate expires in 14 days (threshold 14)\n"
                         "WARN d15/default: certificate expires in 15 days (threshold 30)\n"
                         "CRIT d3/default: certificate expires in 3 days (threshold 3)\n"
                         "WARN d30/default: certificate expires in 30 days (threshold 30)\n"
                         "CRIT d4/default: certificate expires in 4 days (threshold 7)\n"
                         "CRIT d7/default: certificate expires in 7 days (threshold 7)\n"
                         "WARN d8/default: certificate expires in 8 days (threshold 14)\n"
                         "CRIT dm2/default: certificate expired 2 days ago\n");
  free(w);
  tp_report_free(rep);
}

static void test_ocsp_age(void **state) {
  (void)state;
  tp_store_row rows[4];
  rows[0] = ok_row("t");
  rows[0].ocsp_age_seconds = (tp_store_opt){.set = true, .v = 3600};
  rows[1] = ok_row("t");
  rows[1].ocsp_age_seconds = (tp_store_opt){.set = true, .v = 90000};
  rows[2] = ok_row("t"); /* no staple: ignored */
  rows[3] = ok_row("t");
  rows[3].ocsp_age_seconds = (tp_store_opt){.set = true, .v = 86400};
  tp_report *rep = build_rows(rows, 4);
  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_int_equal(s->ocsp_max_age_seconds.v, 90000);
  char *w = warnings_text(rep);
  assert_string_equal(w, "WARN t/p: OCSP staple is 25.0 h old (threshold 24 h)\n");
  free(w);
  tp_report_free(rep);
  /* Exactly 24 h is not older than 24 h; one unstapled row gives null. */
  rep = build_rows(&rows[3], 1);
  assert_int_equal(tp_report_series_at(rep, 0)->ocsp_max_age_seconds.v, 86400);
  assert_int_equal(tp_report_warning_count(rep), 0);
  tp_report_free(rep);
  rep = build_rows(&rows[2], 1);
  assert_false(tp_report_series_at(rep, 0)->ocsp_max_age_seconds.set);
  char *json = render(rep, true);
  assert_non_null(strstr(json, "\"ocsp_max_age_seconds\":null,"));
  free(json);
  tp_report_free(rep);
}

/* Every warning of one series, in the documented order, with its region. */
static void test_warning_order_and_region(void **state) {
  (void)state;
  tp_store_row rows[3];
  rows[0] = ok_row("good");
  rows[0].profile = "default";
  rows[0].region = "eu";
  rows[0].mode = "resumption";
  rows[0].hello_retry_request = true;
  rows[0].days_to_earliest_expiry = (tp_store_opt){.set = true, .v = 12};
  rows[0].ocsp_age_seconds = (tp_store_opt){.set = true, .v = 36 * 3600};
  rows[1] = failed_row("good", "expired");
  rows[1].profile = "default";
  rows[1].region = "eu";
  rows[2] = ok_row("good"); /* divergent, and a processed 0-RTT POST */
  rows[2].profile = "default";
  rows[2].region = "eu";
  rows[2].emulation_checked = true;
  rows[2].emulation_divergence = "cipher X not offered by the real client";
  rows[2].mode = "early_data";
  rows[2].early_data_attempted = rows[2].early_data_accepted = true;
  rows[2].early_data_policy_violation = true;
  tp_report *rep = build_rows(rows, 3);
  char *w = warnings_text(rep);
  assert_string_equal(w, "WARN good/default/eu: certificate expires in 12 days (threshold 14)\n"
                         "WARN good/default/eu: OCSP staple is 36.0 h old (threshold 24 h)\n"
                         "WARN good/default/eu: success rate 33.33% (threshold 99.9%)\n"
                         "WARN good/default/eu: 1 success only through suites/groups the real"
                         " client never offers (counted apart from OK); latest: \"cipher X not"
                         " offered by the real client\"\n"
                         "WARN good/default/eu: HelloRetryRequest rate 100.00% (threshold 5%)\n"
                         "WARN good/default/eu: resumption rate 0.00% (threshold 80%): below"
                         " 50%, session-ticket keys are likely not shared between the servers"
                         " behind this name\n"
                         "CRIT good/default/eu: 1 non-safe request (POST/PUT/DELETE) accepted as"
                         " 0-RTT early data and processed instead of refused with 425 Too Early:"
                         " replayable\n");
  free(w);
  tp_report_free(rep);
}

/* ---- real-client emulation and the early-data policy ------------------------------- */

static tp_store_row divergent_row(const char *target, const char *divergence) {
  tp_store_row r = ok_row(target);
  r.emulation_checked = true;
  r.emulation_divergence = divergence;
  return r;
}

/* A success only through what the real client never offers is counted apart:
 * not in OK, not in the success rate, not in latencies or the success-based
 * rates; the latest divergence is the example. */
static void test_divergent_counted_apart(void **state) {
  (void)state;
  tp_store_row rows[4];
  rows[0] = ok_row("t");
  rows[0].emulation_checked = true; /* checked, exact */
  rows[1] = ok_row("t");            /* not checked (no recorded offer): exact */
  rows[2] = divergent_row("t", "group SECP521R1 not offered by the real client");
  rows[2].handshake_ns = 900 * MS_NS;
  rows[2].hello_retry_request = true;
  rows[2].mode = "resumption"; /* not resumed: would warn if it counted */
  rows[2].early_data_attempted = true;
  rows[3] = divergent_row("t", "cipher TLS_RSA_AES_128_CBC_SHA1 not offered by the real client");
  rows[3].handshake_ns = 800 * MS_NS;
  tp_report *rep = build_rows(rows, 4);
  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_int_equal(s->probes, 4);
  assert_int_equal(s->successes, 2);
  assert_int_equal(s->divergent, 2);
  assert_int_equal(s->emulation_checked, 1);
  assert_float_equal(s->success_rate.fraction, 50.0 / 100.0, 1e-9);
  assert_int_equal(s->handshake.p99_ns, MS_NS); /* divergent latencies are not the client's */
  assert_int_equal(s->hrr, 0);
  assert_rate(s->hrr_rate, 0.0);
  assert_false(s->resumption_rate.set);
  assert_false(s->early_data_accept_rate.set);
  assert_int_equal(s->class_counts[OK], 4); /* the outcome class is still ok */
  assert_null(s->top_error);
  assert_string_equal(s->divergence_example,
                      "cipher TLS_RSA_AES_128_CBC_SHA1 not offered by the real client");
  char *w = warnings_text(rep);
  assert_string_equal(w, "WARN t/p: success rate 50.00% (threshold 99.9%)\n"
                         "WARN t/p: 2 successes only through suites/groups the real client"
                         " never offers (counted apart from OK); latest: \"cipher"
                         " TLS_RSA_AES_128_CBC_SHA1 not offered by the real client\"\n");
  free(w);
  char *text = render(rep, false);
  assert_non_null(strstr(text, "TARGET  PROFILE  REGION  PROBES  OK  DIVERGENT  SUCCESS%  P50_MS"
                               "  P90_MS  P99_MS  P99.9_MS  TOP_ERROR\n"
                               "t       p        -            4   2          2     50.00    1.00"
                               "    1.00    1.00      1.00  -\n"));
  free(text);
  char *json = render(rep, true);
  assert_non_null(strstr(json, "\"probes\":4,\"successes\":2,"
                               "\"divergent_successes\":2,\"emulation_checked_successes\":1,"
                               "\"success_rate\":0.500000,\"handshake_ms\":{\"p50\":1.000,"));
  assert_non_null(strstr(json, "\"divergence_example\":\"cipher TLS_RSA_AES_128_CBC_SHA1 not"
                               " offered by the real client\",\"early_data_policy_violations\":0,"));
  free(json);
  tp_report_free(rep);

  /* Only divergent successes: no latency, no top error, 0 % -- and a divergent
   * success on a failed probe cannot exist (ok is part of the definition). */
  rep = build_rows(&rows[2], 2);
  s = tp_report_series_at(rep, 0);
  assert_int_equal(s->successes, 0);
  assert_false(s->handshake.set);
  assert_false(s->hrr_rate.set);
  text = render(rep, false);
  assert_non_null(strstr(text, "\nt       p        -            2   0          2      0.00       -"
                               "       -       -         -  -\n"));
  free(text);
  tp_report_free(rep);
  tp_store_row failed = failed_row("t", "no_shared_cipher");
  failed.emulation_checked = true;
  failed.emulation_divergence = "cipher X not offered by the real client";
  rep = build_rows(&failed, 1);
  assert_int_equal(tp_report_series_at(rep, 0)->divergent, 0);
  assert_null(tp_report_series_at(rep, 0)->divergence_example);
  text = render(rep, false);
  assert_null(strstr(text, "DIVERGENT")); /* the column only when a series has one */
  free(text);
  tp_report_free(rep);
}

/* Agent-supplied text never reaches the terminal raw: series names in the table
 * and the warning prefix, and the quoted divergence, are escaped. */
static void test_untrusted_text_escaped(void **state) {
  (void)state;
  /* \xff is not UTF-8: ingest refuses it, a hand-edited database may not. */
  tp_store_row row = divergent_row("evil\x1b]0;x\x07", "cipher \"X\" \\ off\n\x1b[2J\xc2\x9b\x7f\xff"
                                                     " caf\xc3\xa9");
  row.region = "eu\r";
  tp_report *rep = build_rows(&row, 1);
  char *text = render(rep, false);
  assert_non_null(strstr(text, "\nevil\\x1B]0;x\\x07  p        eu\\x0D"));
  assert_non_null(strstr(text, "\nWARN evil\\x1B]0;x\\x07/p/eu\\x0D: 1 success only through"
                               " suites/groups the real client never offers (counted apart from"
                               " OK); latest: \"cipher \\\"X\\\" \\\\ off\\x0A\\x1B[2J\\u009B"
                               "\\x7F\\xFF caf\xc3\xa9\"\n"));
  /* Nothing a terminal would act on: no C0 but the line ends, no DEL, no C1. */
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    assert_true(*p >= 0x20 || *p == '\n');
    assert_true(*p != 0x7f);
    assert_false(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f);
  }
  free(text);
  tp_report_free(rep);
}

/* A processed 0-RTT request with a non-safe method is CRIT at the first one,
 * counted over every probe (a later failure or a divergent success does not undo
 * what the server did). */
static void test_early_data_policy_violations(void **state) {
  (void)state;
  tp_store_row rows[4];
  rows[0] = ok_row("t");
  rows[1] = failed_row("t", "http_status");
  rows[2] = divergent_row("t", "group X not offered by the real client");
  rows[3] = ok_row("t"); /* refused with 425, or GET only: no violation */
  for (size_t i = 0; i < 4; i++) {
    rows[i].mode = "early_data";
    rows[i].resumed = true;
    rows[i].early_data_attempted = rows[i].early_data_accepted = true;
    rows[i].early_data_policy_violation = i < 3;
  }
  tp_report *rep = build_rows(rows, 4);
  const tp_report_series *s = tp_report_series_at(rep, 0);
  assert_int_equal(s->early_data_violations, 3);
  assert_int_equal(tp_report_warning_count(rep), 3);
  const tp_report_warning *w = tp_report_warning_at(rep, 2);
  assert_int_equal(w->level, TP_REPORT_CRIT);
  assert_string_equal(w->text, "3 non-safe requests (POST/PUT/DELETE) accepted as 0-RTT early data"
                               " and processed instead of refused with 425 Too Early: replayable");
  char *json = render(rep, true);
  assert_non_null(strstr(json, ",\"early_data_policy_violations\":3,"));
  free(json);
  tp_report_free(rep);

  rep = build_rows(&rows[3], 1); /* no violation: no line */
  assert_int_equal(tp_report_series_at(rep, 0)->early_data_violations, 0);
  assert_int_equal(tp_report_warning_count(rep), 0);
  tp_report_free(rep);
}

/* The same through ingest and SQLite, as `report` prints it. */
static void test_emulation_and_early_data_end_to_end(void **state) {
  fixture *f = *state;
  static const uint64_t exact_ms[] = {2, 4};
  for (size_t i = 0; i < 2; i++) {
    Tlsprobe__V1__ProbeResult r =
        make_result("shop", "android-7", "eu", OK, exact_ms[i], 0, (int64_t)(20 - i) * MINUTE_NS);
    r.address_family = "ipv4";
    r.emulation_checked = i == 0;
    ingest_one(f, &r);
  }
  Tlsprobe__V1__ProbeResult d =
      make_result("shop", "android-7", "eu", OK, 50, 0, 10 * MINUTE_NS);
  d.address_family = "ipv6";
  d.emulation_checked = 1;
  d.emulation_divergence = "group SECP521R1 not offered by the real client";
  ingest_one(f, &d);
  d = make_result("shop", "android-7", "eu", OK, 60, 0, 3 * MINUTE_NS);
  d.emulation_checked = 1;
  d.emulation_divergence = "cipher TLS_RSA_AES_128_CBC_SHA1 not offered by the real client";
  ingest_one(f, &d);
  put(f, "shop", "android-7", "eu", 9 /* no_shared_cipher */, 0, 0, 8 * MINUTE_NS);
  Tlsprobe__V1__ProbeResult e = make_result("shop", "modern", "eu", OK, 3, 0, 5 * MINUTE_NS);
  e.mode = "early_data";
  e.resumed = e.ticket_received = 1;
  e.early_data_attempted = e.early_data_accepted = 1;
  e.early_data_policy_violation = 1;
  ingest_one(f, &e);
  put(f, "shop", "modern", "eu", OK, 5, 0, 4 * MINUTE_NS);

  tp_report *rep = build(f, 3600 * 1000, NULL, false);
  char *text = render(rep, false);
  assert_string_equal(
      text,
      "tlsprobe report: window 1h ending 2023-11-14T22:13:20Z, 2 series, 7 probes\n"
      "TARGET  PROFILE    REGION  PROBES  OK  DIVERGENT  SUCCESS%  P50_MS  P90_MS  P99_MS"
      "  P99.9_MS  TOP_ERROR\n"
      "shop    android-7  eu           5   2          2     40.00    2.00    4.00    4.00"
      "      4.00  no_shared_cipher:1\n"
      "shop    modern     eu           2   2          0    100.00    3.00    5.00    5.00"
      "      5.00  -\n"
      "WARN shop/android-7/eu: success rate 40.00% (threshold 99.9%)\n"
      "WARN shop/android-7/eu: 2 successes only through suites/groups the real client never"
      " offers (counted apart from OK); latest: \"cipher TLS_RSA_AES_128_CBC_SHA1 not offered"
      " by the real client\"\n"
      "CRIT shop/modern/eu: 1 non-safe request (POST/PUT/DELETE) accepted as 0-RTT early data"
      " and processed instead of refused with 425 Too Early: replayable\n"
      "delivery: 1 agents, 0 results reported lost in the window, 0 missing\n"
      "AGENT                    LAST DELIVERY           STORED      LOST   MISSING  STATUS\n"
      "agent-r                  2023-11-14T22:13:20Z         7         0         0  ok\n");
  free(text);
  tp_report_free(rep);

  /* --target: the latest result's version 3 facts. */
  rep = build(f, 3600 * 1000, "shop", true);
  char *json = render(rep, true);
  assert_non_null(strstr(json, "\"divergence_example\":\"cipher TLS_RSA_AES_128_CBC_SHA1 not"
                               " offered by the real client\",\"early_data_policy_violations\":0,"));
  /* android-7's latest result is the divergent success 3 minutes ago. */
  assert_non_null(strstr(json, "\"address_family\":\"\",\"emulation_checked\":true,"
                               "\"emulation_divergence\":\"cipher TLS_RSA_AES_128_CBC_SHA1 not"
                               " offered by the real client\","
                               "\"early_data_policy_violation\":false,"));
  assert_non_null(strstr(json, "\"early_data_policy_violations\":1,"));
  free(json);
  tp_report_free(rep);
}

static void test_empty_window(void **state) {
  fixture *f = *state;
  tp_report *rep = build(f, 3600 * 1000, NULL, false);
  assert_int_equal(tp_report_series_count(rep), 0);
  assert_int_equal(tp_report_worst_level(rep), -1); /* report --check: healthy */
  char *text = render(rep, false);
  assert_string_equal(text, "tlsprobe report: window 1h ending 2023-11-14T22:13:20Z, 0 series,"
                            " 0 probes\nno probes in window\n");
  free(text);
  char *json = render(rep, true);
  assert_string_equal(json, "{\"schema\":\"tlsprobe-report\",\"schema_version\":2,"
                            "\"view\":\"summary\",\"generated_unix\":1700000000,"
                            "\"window\":{\"since_unix\":1699996400,\"until_unix\":1700000000,"
                            "\"seconds\":3600},\"source\":\"raw\",\"not_rolled_up\":0,"
                            "\"by\":[\"target\",\"profile\",\"region\"],"
                            "\"filters\":{\"target\":null,\"profile\":null,\"region\":null,"
                            "\"agent\":null,\"family\":null},\"include_saturated\":false,"
                            "\"total_probes\":0,"
                            "\"series\":[],\"warnings\":[],\"certificates\":[],"
                            "\"slo\":[],\"slo_warnings\":[],\"agents\":[],\"agent_warnings\":[]}\n");
  free(json);
  tp_report_free(rep);
}

static void test_readonly_store(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *ro = NULL;
  tp_report *rep = NULL;
  load_fixture_data(f);
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READONLY, &ro, err, sizeof(err)), TP_E_OK);
  tp_report_query q = {.now_unix_ns = NOW_NS,
                       .since_unix_ns = NOW_NS - 3600 * 1000000000LL,
                       .until_unix_ns = NOW_NS,
                       .since_text = "1h"};
  assert_int_equal(tp_report_build(ro, &q, &rep, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_report_total_probes(rep), 14);
  tp_report_free(rep);
  tp_store_close(ro);
}

/* Sends one batch of agent `agent`, spool 5: results numbered `seqs` and drop
 * reports `drops`, received at `received_ns`. */
static void ingest_delivery(fixture *f, const char *agent, const uint64_t *seqs, size_t n,
                            Tlsprobe__V1__DropReport **drops, size_t n_drops,
                            int64_t received_ns) {
  Tlsprobe__V1__ProbeResult r[8];
  Tlsprobe__V1__ProbeResult *rp[8];
  assert_true(n <= 8);
  for (size_t i = 0; i < n; i++) {
    r[i] = make_result("d", "modern", "eu", TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK, 1, 0, 0);
    r[i].started_unix_ns = received_ns - MINUTE_NS;
    r[i].result_seq = seqs[i];
    rp[i] = &r[i];
  }
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  b.agent_id = (char *)agent;
  b.instance_id = 5;
  b.batch_seq = ++f->next_seq;
  b.results = rp;
  b.n_results = n;
  b.drops = drops;
  b.n_drops = n_drops;
  size_t len = tlsprobe__v1__result_batch__get_packed_size(&b);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  assert_int_equal(tlsprobe__v1__result_batch__pack(&b, buf), len);
  tp_ingest_reply reply;
  if (tp_ingest_batch(f->store, buf, len, received_ns, &reply) != TP_E_OK)
    fail_msg("ingest: %s", reply.reason);
  tp_ingest_reply_clear(&reply);
  free(buf);
}

/* Loss and silence reach the report: an agent that reported 3 results lost and
 * has 2 numbers unaccounted for, and one that stopped delivering an hour ago. A
 * re-sent batch changes nothing. */
static void test_delivery_loss_and_silence(void **state) {
  fixture *f = *state;
  const uint64_t first[] = {1, 2}, last[] = {8}, old[] = {1};
  Tlsprobe__V1__DropReport d = TLSPROBE__V1__DROP_REPORT__INIT;
  Tlsprobe__V1__DropReport *dp = &d;
  d.drop_id = 1;
  d.count = 3;
  d.reason = "spool_full";
  d.first_seq = 3;
  d.last_seq = 5;
  d.first_unix_ns = NOW_NS - 10 * MINUTE_NS;
  d.last_unix_ns = NOW_NS - 9 * MINUTE_NS;
  ingest_delivery(f, "lossy", first, 2, NULL, 0, NOW_NS - 2 * MINUTE_NS);
  ingest_delivery(f, "lossy", NULL, 0, &dp, 1, NOW_NS - MINUTE_NS);
  ingest_delivery(f, "lossy", NULL, 0, &dp, 1, NOW_NS - MINUTE_NS); /* a re-send */
  ingest_delivery(f, "lossy", last, 1, NULL, 0, NOW_NS);
  ingest_delivery(f, "quiet", old, 1, NULL, 0, NOW_NS - 60 * MINUTE_NS);
  tp_report *rep = build(f, 3 * 3600 * 1000, NULL, false);
  assert_int_equal(tp_report_agent_count(rep), 2);
  const tp_report_agent *lossy = tp_report_agent_at(rep, 0);
  const tp_report_agent *quiet = tp_report_agent_at(rep, 1);
  assert_string_equal(lossy->agent_id, "lossy");
  assert_int_equal(lossy->results, 3);
  assert_int_equal(lossy->lost_in_window, 3);
  assert_int_equal(lossy->lost_full, 3);
  assert_int_equal(lossy->lost_total, 3);
  assert_int_equal(lossy->missing, 2); /* 6 and 7 */
  assert_false(lossy->silent);
  assert_string_equal(quiet->agent_id, "quiet");
  assert_true(quiet->silent);
  char *text = render(rep, false);
  assert_non_null(strstr(text, "delivery: 2 agents, 3 results reported lost in the window, 2 missing"));
  assert_non_null(strstr(text, "CRIT agent quiet: silent for 1h (last delivery 2023-11-14T21:13:20Z)"));
  assert_non_null(strstr(text, "WARN agent lossy: 3 results lost in the window (spool_full 3,"
                               " spool_error 0, invalid_result 0, too_old 0), produced"
                               " 2023-11-14T22:03:20Z..2023-11-14T22:04:20Z"));
  assert_non_null(strstr(text, "WARN agent lossy: 2 numbered results neither received"));
  assert_int_equal(tp_report_worst_level(rep), TP_REPORT_CRIT); /* the silent agent */
  free(text);
  tp_report_free(rep);
  /* A window after the loss: the drop is outside it, the gap is still there. */
  rep = build(f, 5 * 60 * 1000, NULL, false);
  assert_int_equal(tp_report_agent_at(rep, 0)->lost_in_window, 0);
  assert_int_equal(tp_report_agent_at(rep, 0)->missing, 2);
  tp_report_free(rep);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_aggregation),
      T(test_text_format),
      T(test_json_format),
      T(test_target_facts),
      T(test_target_full_facts),
      T(test_empty_window),
      T(test_readonly_store),
      T(test_emulation_and_early_data_end_to_end),
      T(test_delivery_loss_and_silence),
      cmocka_unit_test(test_rates_no_rows),
      cmocka_unit_test(test_rollup_mix),
      cmocka_unit_test(test_rates_one_row),
      cmocka_unit_test(test_top_error_categories),
      cmocka_unit_test(test_hrr_rate),
      cmocka_unit_test(test_resumption_rate),
      cmocka_unit_test(test_early_data_accept_rate),
      cmocka_unit_test(test_success_rate_threshold),
      cmocka_unit_test(test_expiry_latest_chain),
      cmocka_unit_test(test_expiry_thresholds),
      cmocka_unit_test(test_ocsp_age),
      cmocka_unit_test(test_warning_order_and_region),
      cmocka_unit_test(test_divergent_counted_apart),
      cmocka_unit_test(test_untrusted_text_escaped),
      cmocka_unit_test(test_early_data_policy_violations),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
