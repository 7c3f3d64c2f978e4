/* test_metrics_collector.c - the collector's metric registry fed through the real
 * ingest path (protobuf bytes -> tp_ingest_batch_ex -> SQLite in a temporary
 * directory), as the HTTP layer feeds it: only results the store newly committed
 * count (a batch that repeats some results counts the new ones only), a refused
 * batch counts nothing but its refusal, results are classified as the report does
 * (divergent successes apart), gauges show the newest probe, and the series cap
 * holds and counts what it refused. The rendered text is checked line by line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../collector/config.h" /* agent/config.h shares the name */
#include "ingest.h"
#include "metrics.h"
#include "store.h"
#include "tlsprobe.pb-c.h"

#define NOW_NS INT64_C(1700000000000000000)
#define MAX_RESULTS 8

typedef struct fixture {
  char dir[64];
  char db[128];
  tp_store *store;
  tp_metrics *metrics;
  int64_t now_ns; /* the wall clock renders see */
} fixture;

static int setup_with(void **state, size_t max_series) {
  fixture *f = calloc(1, sizeof(*f));
  char err[512] = "";
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp_metrics_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
  if (tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &f->store, err, sizeof(err)) != TP_E_OK)
    fail_msg("open store: %s", err);
  f->metrics = tp_metrics_new(max_series);
  assert_non_null(f->metrics);
  f->now_ns = NOW_NS + 60 * INT64_C(1000000000);
  *state = f;
  return 0;
}

static int setup(void **state) {
  return setup_with(state, 0);
}

static int setup_small(void **state) {
  return setup_with(state, 8);
}

static int teardown(void **state) {
  fixture *f = *state;
  char path[160];
  tp_metrics_free(f->metrics);
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

/* ---- batches ------------------------------------------------------------------------ */

typedef struct test_batch {
  Tlsprobe__V1__ResultBatch batch;
  Tlsprobe__V1__ProbeResult results[MAX_RESULTS];
  Tlsprobe__V1__ProbeResult *ptrs[MAX_RESULTS];
  Tlsprobe__V1__CertificateFacts certs[3];
  Tlsprobe__V1__CertificateFacts *cert_ptrs[3];
  Tlsprobe__V1__OcspFacts ocsp;
  Tlsprobe__V1__DropReport drop;
  Tlsprobe__V1__DropReport *drop_ptrs[1];
} test_batch;

/* n ok results of target "web" (profile modern, region eu), result_seq first_seq...,
 * each with a chain of chain_len certificates (notAfter 1800000000 + position). */
static void make_batch(test_batch *t, uint64_t batch_seq, size_t n, uint64_t first_seq,
                       size_t chain_len) {
  memset(t, 0, sizeof(*t));
  tlsprobe__v1__result_batch__init(&t->batch);
  t->batch.agent_id = "agent-1";
  t->batch.instance_id = 42;
  t->batch.batch_seq = batch_seq;
  for (size_t c = 0; c < 3; c++) {
    tlsprobe__v1__certificate_facts__init(&t->certs[c]);
    t->certs[c].subject = "CN=x";
    t->certs[c].issuer = "CN=y";
    t->certs[c].not_after_unix = 1800000000 + (int64_t)c;
    t->cert_ptrs[c] = &t->certs[c];
  }
  tlsprobe__v1__ocsp_facts__init(&t->ocsp);
  t->ocsp.cert_status = "good";
  t->ocsp.age_seconds = 3600;
  for (size_t i = 0; i < n; i++) {
    Tlsprobe__V1__ProbeResult *r = &t->results[i];
    tlsprobe__v1__probe_result__init(r);
    r->region = "eu";
    r->target = "web";
    r->host = "localhost";
    r->port = 443;
    r->profile = "modern";
    r->result_seq = first_seq + i;
    r->started_unix_ns = NOW_NS + (int64_t)(first_seq + i) * 1000;
    r->handshake_ns = 3000000; /* 3 ms: in the 0.005 bucket */
    r->total_ns = 4000000;
    r->ok = 1;
    r->error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
    r->chain = t->cert_ptrs;
    r->n_chain = chain_len;
    if (chain_len > 0)
      r->chain_length_sent = (uint32_t)chain_len;
    t->ptrs[i] = r;
  }
  t->batch.results = t->ptrs;
  t->batch.n_results = n;
}

static tp_ingest_reply ingest(fixture *f, const test_batch *t) {
  size_t len = tlsprobe__v1__result_batch__get_packed_size(&t->batch);
  uint8_t *bytes = malloc(len + 1);
  assert_non_null(bytes);
  assert_int_equal(tlsprobe__v1__result_batch__pack(&t->batch, bytes), len);
  tp_ingest_reply reply;
  tp_ingest_params params = {.received_unix_ns = NOW_NS + 999, .metrics = f->metrics};
  (void)tp_ingest_batch_ex(f->store, bytes, len, &params, &reply);
  free(bytes);
  tp_ingest_reply_clear(&reply);
  return reply;
}

/* ---- the rendered text ----------------------------------------------------------------- */

/* The value of the sample whose line starts with `series ` (name and labels exactly
 * as rendered), or -1 when there is none. */
static double value_of(fixture *f, const char *series) {
  tp_buf b;
  tp_buf_init(&b, 1 << 20);
  assert_int_equal(tp_metrics_render_at(f->metrics, f->now_ns, &b), TP_E_OK);
  double v = -1;
  size_t n = strlen(series);
  for (const char *line = (const char *)b.data; line != NULL && *line != '\0';) {
    if (strncmp(line, series, n) == 0 && line[n] == ' ') {
      v = strtod(line + n + 1, NULL);
      break;
    }
    line = strchr(line, '\n');
    line = line ? line + 1 : NULL;
  }
  tp_buf_free(&b);
  return v;
}

#define WEB "target=\"web\",profile=\"modern\",region=\"eu\""
#define EXPIRY(pos) "tlsprobe_cert_expiry_timestamp_seconds{target=\"web\",position=\"" pos "\"}"

static void test_counts_only_new_results(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1, 2, 1, 1); /* results 1, 2 */
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(value_of(f, "tlsprobe_probes_total{" WEB ",result=\"ok\"}") == 2);
  /* The same batch again: a re-send, nothing counts. */
  assert_true(ingest(f, &t).duplicate);
  assert_true(value_of(f, "tlsprobe_probes_total{" WEB ",result=\"ok\"}") == 2);
  /* A new batch repeating result 2 and adding 3 and 4: only 3 and 4 count. */
  make_batch(&t, 2, 3, 2, 1);
  tp_ingest_reply r = ingest(f, &t);
  assert_int_equal(r.http_status, 200);
  assert_int_equal(r.stored, 2);
  assert_true(value_of(f, "tlsprobe_probes_total{" WEB ",result=\"ok\"}") == 4);
  assert_true(value_of(f, "tlsprobe_handshake_duration_seconds_count{" WEB "}") == 4);
  assert_true(value_of(f, "tlsprobe_handshake_duration_seconds_bucket{" WEB ",le=\"0.0025\"}") ==
              0);
  assert_true(value_of(f, "tlsprobe_handshake_duration_seconds_bucket{" WEB ",le=\"0.005\"}") ==
              4);
  assert_true(value_of(f, "tlsprobe_handshake_duration_seconds_sum{" WEB "}") == 0.012);
  assert_true(value_of(f, "tlsprobe_collector_ingest_results_total{outcome=\"stored\"}") == 4);
  assert_true(value_of(f, "tlsprobe_collector_ingest_results_total{outcome=\"duplicate\"}") == 3);
  assert_true(value_of(f, "tlsprobe_collector_ingest_duplicate_batches_total") == 1);
  assert_true(value_of(f, "tlsprobe_agent_last_seen_timestamp_seconds{agent=\"agent-1\"}") ==
              (double)(NOW_NS + 999) / 1e9);
}

static void test_classes_and_facts(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1, 5, 1, 1);
  /* 0: ok with HRR, mode resumption, resumed; 1: ok, resumption, not resumed;
   * 2: ok through an emulation divergence; 3: expired; 4: connection refused. */
  t.results[0].hello_retry_request = 1;
  t.results[0].mode = "resumption";
  t.results[0].resumed = 1;
  t.results[1].mode = "resumption";
  t.results[2].emulation_checked = 1;
  t.results[2].emulation_divergence = "cipher X not offered by the real client";
  t.results[3].ok = 0;
  t.results[3].error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_EXPIRED;
  t.results[4].ok = 0;
  t.results[4].error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_CONNECTION_REFUSED;
  t.results[4].n_chain = 0;
  t.results[4].chain_length_sent = 0;
  t.results[4].handshake_ns = 0;
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(value_of(f, "tlsprobe_probes_total{" WEB ",result=\"ok\"}") == 2);
  assert_true(value_of(f, "tlsprobe_probes_total{" WEB ",result=\"divergent\"}") == 1);
  assert_true(value_of(f, "tlsprobe_probes_total{" WEB ",result=\"expired\"}") == 1);
  assert_true(value_of(f, "tlsprobe_probes_total{" WEB ",result=\"connection_refused\"}") == 1);
  /* Latency, HRR and resumption over ok successes only, as the report computes them. */
  assert_true(value_of(f, "tlsprobe_handshake_duration_seconds_count{" WEB "}") == 2);
  assert_true(value_of(f, "tlsprobe_hrr_total{" WEB "}") == 1);
  assert_true(value_of(f, "tlsprobe_resumption_total{" WEB ",resumed=\"true\"}") == 1);
  assert_true(value_of(f, "tlsprobe_resumption_total{" WEB ",resumed=\"false\"}") == 1);
  assert_true(value_of(f, EXPIRY("0")) == 1800000000);
}

/* Gauges show the newest probe: a longer chain, then a shorter newer one withdraws the
 * positions it no longer has; an older result arriving late changes nothing; a staple
 * that goes away withdraws the OCSP gauge, a probe without a certificate does not. */
static void test_gauges_follow_the_newest_probe(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1, 1, 10, 3);
  t.results[0].ocsp = &t.ocsp;
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(value_of(f, EXPIRY("2")) == 1800000002);
  assert_true(value_of(f, "tlsprobe_ocsp_staple_age_seconds{" WEB "}") == 3600);
  make_batch(&t, 2, 1, 11, 1); /* newer, one certificate, no staple */
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(value_of(f, EXPIRY("0")) == 1800000000);
  assert_true(value_of(f, EXPIRY("1")) == -1);
  assert_true(value_of(f, "tlsprobe_ocsp_staple_age_seconds{" WEB "}") == -1);
  make_batch(&t, 3, 1, 5, 3); /* older (result_seq 5 started earlier), three certificates */
  t.results[0].ocsp = &t.ocsp;
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(value_of(f, EXPIRY("1")) == -1);
  assert_true(value_of(f, "tlsprobe_ocsp_staple_age_seconds{" WEB "}") == -1);
  make_batch(&t, 4, 1, 12, 0); /* newer, no certificate: nothing to say about either */
  t.results[0].ok = 0;
  t.results[0].error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_CONNECTION_REFUSED;
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(value_of(f, EXPIRY("0")) == 1800000000);
}

static void test_refused_and_drops(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1, 2, 1, 0);
  t.results[1].port = 0; /* invalid: the whole batch is refused */
  assert_int_equal(ingest(f, &t).http_status, 400);
  assert_true(value_of(f, "tlsprobe_probes_total{" WEB ",result=\"ok\"}") == -1);
  assert_true(value_of(f, "tlsprobe_collector_ingest_results_total{outcome=\"refused\"}") == 2);
  assert_true(value_of(f, "tlsprobe_collector_ingest_results_total{outcome=\"stored\"}") == 0);
  /* A drop report, sent twice: counted once, by agent and reason. */
  make_batch(&t, 2, 0, 1, 0);
  tlsprobe__v1__drop_report__init(&t.drop);
  t.drop.drop_id = 1;
  t.drop.count = 17;
  t.drop.reason = "spool_full";
  t.drop.first_seq = 1;
  t.drop.last_seq = 17;
  t.drop.first_unix_ns = NOW_NS - 1000;
  t.drop.last_unix_ns = NOW_NS;
  t.drop_ptrs[0] = &t.drop;
  t.batch.drops = t.drop_ptrs;
  t.batch.n_drops = 1;
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(ingest(f, &t).duplicate);
  assert_true(value_of(f, "tlsprobe_agent_dropped_results_total{agent=\"agent-1\","
                          "reason=\"spool_full\"}") == 17);
  assert_true(value_of(f, "tlsprobe_collector_drop_reports_total") == 1);
}

/* max_series 8: the agent's last-seen comes first, then web takes probes, histogram,
 * hrr, the expiry gauge and its objective and quorum (7 in all), api gets probes; the
 * rest is refused. */
static void test_series_cap(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1, 3, 1, 1);
  t.results[1].target = "api";
  t.results[2].target = "db";
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_int_equal(tp_metrics_series(f->metrics), 8);
  assert_true(value_of(f, "tlsprobe_collector_metrics_series") == 8);
  assert_true(value_of(f, "tlsprobe_collector_metrics_series_limit") == 8);
  assert_true(value_of(f, "tlsprobe_slo_objective_ratio{target=\"web\"}") == 0.999);
  assert_true(value_of(f, "tlsprobe_slo_objective_ratio{target=\"api\"}") == -1);
  assert_true(value_of(f, "tlsprobe_probes_total{target=\"api\",profile=\"modern\",region=\"eu\","
                          "result=\"ok\"}") == 1);
  assert_true(value_of(f, "tlsprobe_probes_total{target=\"db\",profile=\"modern\",region=\"eu\","
                          "result=\"ok\"}") == -1);
  /* api: histogram, hrr, expiry refused (3); db: all four refused. */
  assert_true(value_of(f, "tlsprobe_collector_metrics_series_refused_total{family=\""
                          "tlsprobe_probes_total\"}") == 1);
  assert_true(value_of(f, "tlsprobe_collector_metrics_series_refused_total{family=\""
                          "tlsprobe_handshake_duration_seconds\"}") == 2);
  /* Every result is still in the collector's own totals. */
  assert_true(value_of(f, "tlsprobe_collector_ingest_results_total{outcome=\"stored\"}") == 3);
}

/* The alert rules burn against the configured objective of each target: the first
 * matching slo.targets glob, else the slo: fallback; without a config 99.9 %, quorum 1. */
static void test_slo_objectives(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1, 3, 1, 0);
  t.results[1].target = "api-canary";
  t.results[2].target = "db";
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(value_of(f, "tlsprobe_slo_objective_ratio{target=\"web\"}") == 0.999);
  assert_true(value_of(f, "tlsprobe_slo_quorum_regions{target=\"web\"}") == 1);

  tp_slo_objective api = {.target = (char *)"api*", .success = 0.99, .quorum = 2};
  tp_collector_slo slo = {.fallback = {.success = 0.995, .quorum = 1}, .targets = &api,
                          .n_targets = 1};
  tp_metrics_free(f->metrics);
  f->metrics = tp_metrics_new(0);
  assert_non_null(f->metrics);
  tp_metrics_set_slo(f->metrics, &slo);
  make_batch(&t, 2, 3, 4, 0);
  t.results[1].target = "api-canary";
  t.results[2].target = "db";
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(value_of(f, "tlsprobe_slo_objective_ratio{target=\"api-canary\"}") == 0.99);
  assert_true(value_of(f, "tlsprobe_slo_quorum_regions{target=\"api-canary\"}") == 2);
  assert_true(value_of(f, "tlsprobe_slo_objective_ratio{target=\"db\"}") == 0.995);
  assert_true(value_of(f, "tlsprobe_slo_quorum_regions{target=\"db\"}") == 1);
}

/* Seeding: the agents' last-seen times come back from the store after a restart. */
static void test_seed_from_store(void **state) {
  fixture *f = *state;
  test_batch t;
  char err[256] = "";
  make_batch(&t, 1, 1, 1, 0);
  assert_int_equal(ingest(f, &t).http_status, 200);
  tp_metrics *fresh = tp_metrics_new(0);
  assert_int_equal(tp_metrics_seed(fresh, f->store, err, sizeof(err)), TP_E_OK);
  tp_metrics *old = f->metrics;
  f->metrics = fresh;
  assert_true(value_of(f, "tlsprobe_agent_last_seen_timestamp_seconds{agent=\"agent-1\"}") ==
              (double)(NOW_NS + 999) / 1e9);
  assert_true(value_of(f, "tlsprobe_probes_total{" WEB ",result=\"ok\"}") == -1);
  tp_metrics_free(old);
}

/* Gauges whose newest probe is more than a day old are not rendered; counters stay. */
static void test_stale_gauges(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1, 1, 1, 1);
  assert_int_equal(ingest(f, &t).http_status, 200);
  f->now_ns = NOW_NS + TP_METRICS_GAUGE_MAX_AGE_NS;
  assert_true(value_of(f, EXPIRY("0")) == 1800000000);
  f->now_ns = NOW_NS + TP_METRICS_GAUGE_MAX_AGE_NS + 10 * INT64_C(1000000000);
  assert_true(value_of(f, EXPIRY("0")) == -1);
  assert_true(value_of(f, "tlsprobe_agent_last_seen_timestamp_seconds{agent=\"agent-1\"}") == -1);
  assert_true(value_of(f, "tlsprobe_probes_total{" WEB ",result=\"ok\"}") == 1);
  /* A new probe brings it back. */
  make_batch(&t, 2, 1, 2, 1);
  t.results[0].started_unix_ns = f->now_ns - 1000;
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(value_of(f, EXPIRY("0")) == 1800000000);
}

/* Scrapes on another thread while ingest adds series and counts (the collector's two
 * MHD threads): the ThreadSanitizer build is where this test earns its keep. */
typedef struct scraper {
  tp_metrics *metrics;
  atomic_bool stop;
  unsigned renders;
} scraper;

static void *scrape_loop(void *arg) {
  scraper *s = arg;
  while (!atomic_load(&s->stop) || s->renders == 0) {
    tp_buf b;
    tp_buf_init(&b, 1 << 22);
    if (tp_metrics_render_at(s->metrics, NOW_NS, &b) != TP_E_OK)
      abort();
    tp_buf_free(&b);
    s->renders++;
  }
  return NULL;
}

static void test_concurrent_scrapes(void **state) {
  fixture *f = *state;
  scraper s = {.metrics = f->metrics};
  atomic_init(&s.stop, false);
  pthread_t thread;
  assert_int_equal(pthread_create(&thread, NULL, scrape_loop, &s), 0);
  static const char *const targets[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
  test_batch t;
  for (uint64_t i = 0; i < 40; i++) {
    make_batch(&t, i + 1, 4, i * 4 + 1, 2);
    for (size_t k = 0; k < 4; k++)
      t.results[k].target = (char *)targets[(i + k) % 8];
    assert_int_equal(ingest(f, &t).http_status, 200);
  }
  atomic_store(&s.stop, true);
  assert_int_equal(pthread_join(thread, NULL), 0);
  assert_true(s.renders > 0);
  assert_true(value_of(f, "tlsprobe_collector_ingest_results_total{outcome=\"stored\"}") == 160);
}

/* A hostile target name is one series, escaped on one line. */
static void test_hostile_target(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1, 1, 1, 0);
  t.results[0].target = "a\"b\\c\nd";
  assert_int_equal(ingest(f, &t).http_status, 200);
  assert_true(value_of(f, "tlsprobe_probes_total{target=\"a\\\"b\\\\c\\nd\",profile=\"modern\","
                          "region=\"eu\",result=\"ok\"}") == 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_counts_only_new_results, setup, teardown),
      cmocka_unit_test_setup_teardown(test_classes_and_facts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gauges_follow_the_newest_probe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_and_drops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_series_cap, setup_small, teardown),
      cmocka_unit_test_setup_teardown(test_slo_objectives, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seed_from_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hostile_target, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_gauges, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_scrapes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
