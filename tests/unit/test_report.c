/* test_report.c - report aggregation over a real temporary SQLite store. Results
 * are inserted through ingest (the real write path); the report must produce the
 * hand-computed counts, success rates, nearest-rank percentiles and top errors,
 * and both output formats must show them. */
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
#include "report.h"
#include "store.h"
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

/* Stores one result as its own batch. cls is the protobuf enum value. */
static void put(fixture *f, const char *target, const char *profile, const char *region, int cls,
                uint64_t handshake_ms, uint64_t lag_ms, int64_t age_ns) {
  Tlsprobe__V1__ProbeResult r = TLSPROBE__V1__PROBE_RESULT__INIT;
  Tlsprobe__V1__ProbeResult *rp = &r;
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
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
  b.agent_id = "agent-r";
  b.instance_id = 1;
  b.batch_seq = ++f->next_seq;
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
                       .window_ms = window_ms,
                       .since_text = "1h",
                       .target = target,
                       .with_facts = facts};
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
  assert_float_equal(s->success_rate, 80.0, 1e-9);
  assert_true(s->have_latency);
  assert_int_equal(s->p50_ns, 4 * MS_NS); /* ceil(0.5 * 8) = 4 */
  assert_int_equal(s->p90_ns, 8 * MS_NS); /* ceil(7.2) = 8 */
  assert_int_equal(s->p99_ns, 8 * MS_NS);
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
  assert_float_equal(s->success_rate, 0.0, 1e-9);
  assert_false(s->have_latency);
  assert_string_equal(s->top_error, "connection_refused");
  assert_int_equal(s->top_error_count, 2);

  s = tp_report_series_at(rep, 2);
  assert_series_key(s, "b", "modern", "eu");
  assert_int_equal(s->probes, 1); /* the 2-hour-old probe is outside the window */
  assert_int_equal(s->p50_ns, 5 * MS_NS);
  assert_int_equal(s->p99_ns, 5 * MS_NS);
  assert_null(s->top_error);
  assert_false(s->have_facts);
  assert_null(tp_report_series_at(rep, 3));
  tp_report_free(rep);

  /* A 3-hour window includes the old probe: p99 of {5, 900} = 900. */
  rep = build(f, 3 * 3600 * 1000, "b", false);
  assert_int_equal(tp_report_series_count(rep), 1);
  s = tp_report_series_at(rep, 0);
  assert_int_equal(s->probes, 2);
  assert_int_equal(s->p50_ns, 5 * MS_NS);
  assert_int_equal(s->p99_ns, 900 * MS_NS);
  tp_report_free(rep);
}

/* Runs a writer into a memory stream and returns the text (caller frees). */
static char *render(const tp_report *rep, bool json) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  assert_int_equal(json ? tp_report_write_json(rep, out) : tp_report_write_text(rep, out), TP_E_OK);
  assert_int_equal(fclose(out), 0);
  return text;
}

static void test_text_format(void **state) {
  fixture *f = *state;
  load_fixture_data(f);
  tp_report *rep = build(f, 3600 * 1000, NULL, false);
  char *text = render(rep, false);
  const char *expected =
      "tlsprobe report: window 1h ending 2023-11-14T22:13:20Z, 3 series, 14 probes\n"
      "TARGET  PROFILE  REGION  PROBES  OK  SUCCESS%  P50_MS  P90_MS  P99_MS  TOP_ERROR\n"
      "a       modern   eu          10   8     80.00    4.00    8.00    8.00  expired:1\n"
      "a       modern   us           3   0      0.00       -       -       -  "
      "connection_refused:2\n"
      "b       modern   eu           1   1    100.00    5.00    5.00    5.00  -\n";
  assert_string_equal(text, expected);
  free(text);
  tp_report_free(rep);
}

static void test_json_format(void **state) {
  fixture *f = *state;
  load_fixture_data(f);
  tp_report *rep = build(f, 3600 * 1000, NULL, false);
  char *json = render(rep, true);
  assert_non_null(strstr(json, "{\"window_seconds\":3600,\"generated_unix\":1700000000,"
                               "\"series\":[{\"target\":\"a\",\"profile\":\"modern\","
                               "\"region\":\"eu\",\"probes\":10,\"successes\":8,"
                               "\"success_rate\":80.00,\"p50_ms\":4.000,\"p90_ms\":8.000,"
                               "\"p99_ms\":8.000,\"mean_loop_lag_ms\":1.400,"
                               "\"top_error\":{\"class\":\"expired\",\"count\":1},"
                               "\"errors\":{\"expired\":1,\"unknown_ca\":1}}"));
  assert_non_null(strstr(json, "\"p50_ms\":null,\"p90_ms\":null,\"p99_ms\":null"));
  assert_non_null(strstr(json, "\"errors\":{\"connection_refused\":2,\"dns_failure\":1}"));
  assert_non_null(strstr(json, "\"top_error\":null,\"errors\":{}}]}\n"));
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
  assert_string_equal(s->facts.chain_json, "[]");
  char *json = render(rep, true);
  assert_non_null(strstr(json, "\"tls_version\":\"TLS1.3\",\"cipher\":\"TLS_AES_256_GCM_SHA384\","
                               "\"group\":\"X25519\",\"alpn\":\"h2\","
                               "\"days_to_earliest_expiry\":null,"
                               "\"error_detail\":\"detail \\\"quoted\\\"\",\"chain\":[]}"));
  free(json);
  tp_report_free(rep);
}

static void test_empty_window(void **state) {
  fixture *f = *state;
  tp_report *rep = build(f, 3600 * 1000, NULL, false);
  assert_int_equal(tp_report_series_count(rep), 0);
  char *text = render(rep, false);
  assert_string_equal(text, "tlsprobe report: window 1h ending 2023-11-14T22:13:20Z, 0 series,"
                            " 0 probes\nno probes in window\n");
  free(text);
  char *json = render(rep, true);
  assert_string_equal(json, "{\"window_seconds\":3600,\"generated_unix\":1700000000,"
                            "\"series\":[]}\n");
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
  tp_report_query q = {.now_unix_ns = NOW_NS, .window_ms = 3600000, .since_text = "1h"};
  assert_int_equal(tp_report_build(ro, &q, &rep, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_report_total_probes(rep), 14);
  tp_report_free(rep);
  tp_store_close(ro);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_aggregation),  T(test_text_format),  T(test_json_format),
      T(test_target_facts), T(test_empty_window), T(test_readonly_store),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
