/* test_config_collector.c - collector.yaml loading: the good files, and one
 * file per defect whose message must name file:line:column, what is wrong and
 * what is allowed (issue #6 defect 10: an empty file used to crash serve). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* agent/ has a config.h too, and both are on the include path. */
#include "../../collector/config.h"

static void test_good_collector_configs(void **state) {
  (void)state;
  const char *files[] = {TP_TEST_DATA_DIR "/config/collector_good.yaml",
                         TP_TEST_DATA_DIR "/../../deploy/config/collector.yaml"};
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    char err[1024] = "";
    tp_collector_config *c = NULL;
    if (tp_collector_config_load(files[i], &c, err, sizeof(err)) != TP_E_OK)
      fail_msg("%s: %s", files[i], err);
    assert_non_null(c->database);
    tp_collector_config_free(c);
  }
  char err[1024] = "";
  tp_collector_config *c = NULL;
  assert_int_equal(tp_collector_config_load(files[0], &c, err, sizeof(err)), TP_E_OK);
  assert_int_equal(c->max_body_bytes, 1048576);
  assert_int_equal(c->log_level, TP_LOG_WARN);
  assert_string_equal(c->database, "./tlsprobe.db");
  assert_true(c->insecure_plaintext);
  assert_true(c->auth.allow_unauthenticated);
  assert_null(c->tls.cert_file);
  assert_int_equal(c->max_result_age_ms, 30ULL * 24 * 3600 * 1000);
  assert_int_equal(c->max_clock_skew_ms, 60000);
  assert_int_equal(c->limits.max_connections, 100);
  assert_int_equal(c->limits.max_connections_per_ip, 10);
  assert_int_equal(c->limits.connection_timeout_s, 15);
  assert_int_equal(c->limits.header_timeout_ms, 5000);
  assert_int_equal(c->limits.request_timeout_ms, 30000);
  assert_int_equal(c->limits.max_buffered_bytes, 16777216);
  assert_int_equal(c->limits.agent_rate, 5);
  assert_int_equal(c->limits.agent_burst, 10);
  /* No retention: section; max_result_age 30d lifts the raw default to 30 days. */
  assert_int_equal(c->retention.raw_ms, 30ULL * 24 * 3600 * 1000);
  assert_int_equal(c->retention.rollups_ms, 90ULL * 24 * 3600 * 1000);
  assert_int_equal(c->retention.interval_ms, 60000);
  tp_collector_config_free(c);
}

/* Writes text to a temporary file and loads it; returns the loader's status. */
static tp_err load_text(const char *text, tp_collector_config **c, char *err, size_t errlen) {
  char path[] = "/tmp/tp-collector-cfg-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  assert_non_null(fp);
  fputs(text, fp);
  assert_int_equal(fclose(fp), 0);
  tp_err rc = tp_collector_config_load(path, c, err, errlen);
  remove(path);
  return rc;
}

static void test_defaults(void **state) {
  (void)state;
  char err[1024] = "";
  tp_collector_config *c = NULL;
  if (load_text("listen: 127.0.0.1:0\ndatabase: x.db\ninsecure_plaintext: true\n"
                "auth: {allow_unauthenticated: true}\n",
                &c, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s", err);
  assert_int_equal(c->max_body_bytes, TP_COLLECTOR_DEFAULT_MAX_BODY);
  assert_int_equal(c->max_result_age_ms, 7ULL * 24 * 3600 * 1000);
  assert_int_equal(c->max_clock_skew_ms, 5 * 60 * 1000);
  assert_int_equal(c->limits.max_connections, 256);
  assert_int_equal(c->limits.max_connections_per_ip, 32);
  assert_int_equal(c->limits.connection_timeout_s, 10);
  assert_int_equal(c->limits.header_timeout_ms, 10000);
  assert_int_equal(c->limits.request_timeout_ms, 60000);
  assert_int_equal(c->limits.max_buffered_bytes, 64ULL << 20);
  assert_int_equal(c->limits.agent_rate, 100);
  assert_int_equal(c->limits.agent_burst, 200);
  assert_null(c->auth.tokens_file);
  assert_int_equal(c->retention.raw_ms, 7ULL * 24 * 3600 * 1000);
  assert_int_equal(c->retention.rollups_ms, 90ULL * 24 * 3600 * 1000);
  assert_int_equal(c->retention.interval_ms, 60000);
  assert_false(c->metrics.enabled); /* no metrics: section, no metrics listener */
  tp_collector_config_free(c);
}

static void test_metrics_section(void **state) {
  (void)state;
  char err[1024] = "";
  tp_collector_config *c = NULL;
  if (load_text("listen: 127.0.0.1:8470\ndatabase: x.db\ninsecure_plaintext: true\n"
                "auth: {allow_unauthenticated: true}\nmetrics: {listen: \"[::1]:9464\"}\n",
                &c, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s", err);
  assert_true(c->metrics.enabled);
  assert_int_equal(c->metrics.listen.port, 9464);
  assert_string_equal(c->metrics.listen.host, "::1");
  assert_int_equal(c->metrics.max_series, TP_METRICS_DEFAULT_MAX_SERIES);
  tp_collector_config_free(c);
  c = NULL;
  if (load_text("listen: 127.0.0.1:0\ndatabase: x.db\ninsecure_plaintext: true\n"
                "auth: {allow_unauthenticated: true}\n"
                "metrics: {listen: 127.0.0.1:0, max_series: 200}\n",
                &c, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s", err);
  assert_true(c->metrics.enabled);
  assert_int_equal(c->metrics.max_series, 200);
  tp_collector_config_free(c);
}

static void test_retention(void **state) {
  (void)state;
  static const char base[] = "listen: 127.0.0.1:0\ndatabase: x.db\ninsecure_plaintext: true\n"
                             "auth: {allow_unauthenticated: true}\n";
  static const struct {
    const char *tail;
    uint64_t raw_ms, rollups_ms, interval_ms;
  } good[] = {
      {"retention: {raw: 2d, rollups: 30d, interval: 1s}\nmax_result_age: 1d\n", 2 * 86400000ull,
       30 * 86400000ull, 1000},
      {"retention: {raw: 7d, rollups: 7d, interval: 1h}\n", 7 * 86400000ull, 7 * 86400000ull,
       3600000},
      /* rollups defaults to 90 days, or raw when longer */
      {"retention: {raw: 200d}\n", 200 * 86400000ull, 200 * 86400000ull, 60000},
      {"retention:\n  interval: 5m\n", 7 * 86400000ull, 90 * 86400000ull, 300000},
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    char text[512], err[1024] = "";
    tp_collector_config *c = NULL;
    snprintf(text, sizeof(text), "%s%s", base, good[i].tail);
    if (load_text(text, &c, err, sizeof(err)) != TP_E_OK)
      fail_msg("good case %zu: %s", i, err);
    assert_int_equal(c->retention.raw_ms, good[i].raw_ms);
    assert_int_equal(c->retention.rollups_ms, good[i].rollups_ms);
    assert_int_equal(c->retention.interval_ms, good[i].interval_ms);
    tp_collector_config_free(c);
  }
  static const struct {
    const char *tail, *expect;
  } bad[] = {
      {"retention: {raw: 1d}\n",
       ":5:18: retention.raw: 1d is shorter than max_result_age (7d): a result re-sent after its "
       "raw row was deleted would be stored and counted again"},
      {"max_result_age: 10d\nretention:\n  raw: 9d\n",
       ":7:8: retention.raw: 9d is shorter than max_result_age (10d)"},
      {"retention: {raw: 10d, rollups: 9d}\n",
       ":5:32: retention.rollups: 9d is shorter than retention.raw (10d)"},
      {"retention: {rollups: 3d}\n", "retention.rollups: 3d is shorter than retention.raw (its"
                                       " default)"},
      {"retention: {raw: 30m}\n", "retention.raw: 30m is too short (allowed: 1h..3650d, at "
                                    "least max_result_age)"},
      {"retention: {rollups: 3651d}\n", "retention.rollups: 3651d is too long"},
      {"retention: {interval: 500ms}\n",
       ":5:23: retention.interval: 500ms is too short (allowed: 1s..1h)"},
      {"retention: {interval: 2h}\n", "retention.interval: 2h is too long (allowed: 1s..1h)"},
      {"retention: {interval: often}\n", "retention.interval: \"often\" is not a duration"},
      {"retention: {raw: 7d, keep: forever}\n", "Unexpected key: keep"},
      {"retention: 7d\n", ":5:12: "},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char text[512], err[1024] = "";
    tp_collector_config *c = NULL;
    snprintf(text, sizeof(text), "%s%s", base, bad[i].tail);
    tp_err rc = load_text(text, &c, err, sizeof(err));
    if (rc != TP_E_CONFIG || strstr(err, bad[i].expect) == NULL)
      fail_msg("bad case %zu: rc=%d message \"%s\" lacks \"%s\"", i, rc, err, bad[i].expect);
    assert_null(c);
  }
}

/* Cross-key rules and the new ranges: each text must be refused with the message. */
static void test_access_and_limits_refused(void **state) {
  (void)state;
  static const char base[] = "listen: 127.0.0.1:0\ndatabase: x.db\n";
  static const struct {
    const char *tail, *expect;
  } cases[] = {
      {"auth: {allow_unauthenticated: true}\n",
       ":1:1: no tls: section: the collector does not serve plain HTTP by default"},
      {"insecure_plaintext: false\nauth: {allow_unauthenticated: true}\n", ": no tls: section"},
      /* libcyaml's own bool would read any word as true: a typo must not open the door. */
      {"insecure_plaintext: nope\nauth: {allow_unauthenticated: true}\n",
       ":3:21: \"nope\" is not true or false"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: nah}\n",
       ":4:31: \"nah\" is not true or false"},
      {"insecure_plaintext: No\nauth: {allow_unauthenticated: yes}\n", ": no tls: section"},
      {"insecure_plaintext: true\n", ":1:1: no way for agents to authenticate: set "
                                       "auth.tokens_file"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: false}\n",
       ":4:1: no way for agents to authenticate"},
      {"insecure_plaintext: true\ntls: {cert_file: /etc/hostname, key_file: /etc/hostname}\n"
       "auth: {allow_unauthenticated: true}\n",
       ":3:21: insecure_plaintext: true contradicts the tls: section"},
      {"tls: {cert_file: /nonexistent.pem, key_file: /etc/hostname}\n",
       ":3:18: tls.cert_file: \"/nonexistent.pem\" is not a readable file"},
      {"tls: {cert_file: /etc/hostname, key_file: /etc/hostname, client_crl_file: /etc/hostname}\n",
       "tls.client_crl_file: a CRL needs tls.client_ca_file"},
      {"insecure_plaintext: true\nauth: {tokens_file: /nonexistent-dir/t.yaml}\n",
       ":4:21: auth.tokens_file: directory \"/nonexistent-dir\" does not exist"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\nmax_result_age: 10m\n",
       ":5:17: max_result_age: 10m is too short (allowed: 1h..3650d)"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\nmax_clock_skew: soon\n",
       ":5:17: max_clock_skew: \"soon\" is not a duration"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\n"
       "limits: {max_connections: 0}\n",
       "limits.max_connections: 0 is out of range (allowed: 1..4096)"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\n"
       "limits: {max_connections: 10, max_connections_per_ip: 11}\n",
       "limits.max_connections_per_ip: 11 is out of range (allowed: 1..10)"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\n"
       "limits: {header_timeout: 20s, request_timeout: 10s}\n",
       "limits.request_timeout: 10s is too short (allowed: limits.header_timeout..1h)"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\nmax_body_bytes: 2048\n"
       "limits: {max_buffered_bytes: 1024}\n",
       "limits.max_buffered_bytes: 1024 is out of range (allowed: 2048..4294967296)"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\n"
       "limits: {agent_requests_per_second: 0}\n",
       "limits.agent_requests_per_second: 0 is out of range"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\nmax_body_bytes: 67108865\n",
       "max_body_bytes: 67108865 is out of range (allowed: 1024..67108864 bytes)"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\nmetrics: {}\n",
       "Missing required mapping field: listen"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\n"
       "metrics: {listen: localhost:9464}\n",
       ":5:19: metrics.listen: \"localhost\" is not a numeric IPv4 address"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\n"
       "metrics: {listen: 127.0.0.1:9464, max_series: 10}\n",
       "metrics.max_series: 10 is out of range (allowed: 100..10000000)"},
      {"insecure_plaintext: true\nauth: {allow_unauthenticated: true}\n"
       "metrics: {listen: 127.0.0.1:9464, token: x}\n",
       "Unexpected key: token"},
  };
  static const char same[] = "listen: 127.0.0.1:8470\ndatabase: x.db\ninsecure_plaintext: true\n"
                             "auth: {allow_unauthenticated: true}\n"
                             "metrics: {listen: 127.0.0.1:8470}\n";
  char same_err[1024] = "";
  tp_collector_config *same_cfg = NULL;
  assert_int_equal(load_text(same, &same_cfg, same_err, sizeof(same_err)), TP_E_CONFIG);
  assert_non_null(strstr(same_err, ":5:19: metrics.listen: 127.0.0.1:8470 is the ingest "
                                   "listener's address"));
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char text[512], err[1024] = "";
    tp_collector_config *c = NULL;
    snprintf(text, sizeof(text), "%s%s", base, cases[i].tail);
    tp_err rc = load_text(text, &c, err, sizeof(err));
    if (rc != TP_E_CONFIG || strstr(err, cases[i].expect) == NULL)
      fail_msg("case %zu: rc=%d message \"%s\" lacks \"%s\"", i, rc, err, cases[i].expect);
    assert_null(c);
  }
}

static const struct {
  const char *file;
  const char *expect; /* substring of the message, after the file name */
} bad_cases[] = {
    {"empty.yaml", ":1:1: no configuration: the file is empty or holds only comments (expected a "
                   "mapping with the keys listen, database; optional: max_body_bytes, log_level, "
                   "insecure_plaintext, tls, auth, max_result_age, max_clock_skew, limits, slo, "
                   "metrics, retention)"},
    {"comment_only.yaml", ":1:1: no configuration: the file is empty or holds only comments"},
    {"collector_tab_indent.yaml", ":4:1: tab character in indentation"},
    {"collector_bad_listen_port.yaml", ":2:9: listen: port \"99999\" is not a number in 0..65535"},
    {"collector_bad_max_body.yaml", ":4:17: max_body_bytes: 100 is out of range (allowed: "
                                    "1024..67108864 bytes)"},
    {"collector_bad_database.yaml", ":3:11: database: directory \"/nonexistent-tlsprobe-dir\" "
                                    "does not exist"},
    /* An agent's file given to the collector: the first key is named. */
    {"good.yaml", ":2:1: Unexpected key: agent"},
};

static void test_bad_collector_configs(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
    char path[512], err[1024] = "";
    snprintf(path, sizeof(path), TP_TEST_DATA_DIR "/config/%s", bad_cases[i].file);
    tp_collector_config *c = NULL;
    tp_err rc = tp_collector_config_load(path, &c, err, sizeof(err));
    if (rc != TP_E_CONFIG || strstr(err, bad_cases[i].expect) == NULL ||
        strncmp(err, path, strlen(path)) != 0)
      fail_msg("%s: rc=%d message \"%s\" lacks \"%s\"", bad_cases[i].file, rc, err,
               bad_cases[i].expect);
    assert_null(c);
  }
}

static void test_database_is_a_directory(void **state) {
  (void)state;
  char path[] = "/tmp/tp-collector-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  assert_non_null(fp);
  fputs("listen: 127.0.0.1:0\ndatabase: /tmp\n", fp);
  assert_int_equal(fclose(fp), 0);
  char err[1024] = "";
  tp_collector_config *c = NULL;
  tp_err rc = tp_collector_config_load(path, &c, err, sizeof(err));
  remove(path);
  assert_int_equal(rc, TP_E_CONFIG);
  assert_non_null(strstr(err, ":2:11: database: \"/tmp\" is a directory (allowed: a file"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_collector_configs),
      cmocka_unit_test(test_bad_collector_configs),
      cmocka_unit_test(test_database_is_a_directory),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_access_and_limits_refused),
      cmocka_unit_test(test_metrics_section),
      cmocka_unit_test(test_retention),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
