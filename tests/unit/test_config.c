/* test_config.c - agent.yaml loading: a complete good file, one file per
 * defect whose message must name file:line:column and the problem, the value
 * rules (collector URL, host, SNI) and the agreement with the wire contract:
 * a configuration that loads never yields results the collector rejects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "spool.h"
#include "config_rules.h"
#include "validate.h"

static void test_good_config(void **state) {
  (void)state;
  char err[1024] = "";
  tp_agent_config *c = NULL;
  assert_int_equal(tp_agent_config_load(TP_TEST_DATA_DIR "/config/good.yaml", &c, err, sizeof(err)),
                   TP_E_OK);
  assert_string_equal(c->agent_id, "unit-agent");
  assert_string_equal(c->region, "eu-west");
  assert_string_equal(c->collector_url, "http://127.0.0.1:8470/v1/results");
  assert_int_equal(c->batch_size, 50);
  assert_int_equal(c->flush_interval_ms, 500);
  assert_int_equal(c->max_batch_bytes, TP_AGENT_DEFAULT_BATCH_BYTES);
  assert_true(c->insecure_plaintext);
  assert_false(c->spool_memory);
  assert_string_equal(c->spool_path, TP_TEST_DATA_DIR "/config/good.spool"); /* next to it */
  assert_int_equal(c->spool_max_bytes, TP_SPOOL_DEFAULT_MAX_BYTES);
  assert_int_equal(c->push_timeout_ms, 3000);
  assert_int_equal(c->loops, 3);
  assert_int_equal(c->max_in_flight, 32);
  assert_int_equal(c->max_pending, 100);
  assert_int_equal(c->connect_timeout_ms, 2000);
  assert_int_equal(c->handshake_timeout_ms, 4000);
  assert_int_equal(c->n_profiles, 2);
  assert_int_equal(c->profiles[0].spec.versions, TP_TLS1_3);
  assert_string_equal(c->profiles[0].spec.trust, "system");
  assert_string_equal(c->profiles[0].spec.intermediates, "/etc/tlsprobe/intermediates.pem");
  assert_string_equal(c->profiles[1].spec.priority, "NORMAL:-VERS-ALL:+VERS-TLS1.2");
  assert_int_equal(c->n_targets, 2);
  assert_null(c->targets[0].sni);
  assert_string_equal(c->targets[1].sni, "api.example.test");
  assert_int_equal(c->targets[1].port, 8443);
  assert_int_equal(c->n_jobs, 2);
  assert_int_equal(c->jobs[0].n_targets, 2);
  assert_int_equal(c->jobs[0].target_index[1], 1);
  assert_int_equal(c->jobs[0].profile_index[1], 1);
  assert_int_equal(c->jobs[0].interval_ms, 30000);
  assert_string_equal(c->jobs[1].name, "job");
  assert_int_equal(c->jobs[1].interval_ms, 60000);
  tp_agent_config_free(c);
}

static const struct {
  const char *file;
  const char *expect; /* substring of the message, after the file name */
} bad_cases[] = {
    {"bad_version.yaml", ":20:24: profile \"p\": unknown TLS version \"SSL3\" (known: TLS1.0"},
    {"bad_target_ref.yaml", ":25:18: unknown target \"missing\" (defined: t)"},
    {"bad_port.yaml", ":23:11: target \"t\": port 70000 is out of range (allowed: 1..65535)"},
    {"bad_interval.yaml", ":27:15: jobs[0].interval: \"5 seconds\" is not a duration"},
    {"bad_unknown_key.yaml", ":20:5: Unexpected key: colour"},
    {"bad_duplicate_profile.yaml", ":20:11: duplicate profile name \"p\""},
    {"bad_priority_and_versions.yaml", ":21:15: profile \"p\": \"priority\" (a raw GnuTLS string) "
                                       "cannot be combined with \"versions\""},
    {"bad_syntax.yaml", ":4:8: Expecting STRING"},
    {"bad_url.yaml", ":7:8: collector.url \"ftp://127.0.0.1/\" is not an http:// or https:// URL"},
    /* At the mapping that lacks the key, not at the last key libcyaml read. */
    {"bad_missing_id.yaml", ":3:3: Missing required mapping field: id (in mapping field 'agent')"},
    /* Issue #6 defect 10: each of these used to crash or pass --check. */
    {"empty.yaml", ":1:1: no configuration: the file is empty or holds only comments (expected a "
                   "mapping with the keys agent, collector, targets, jobs"},
    {"comment_only.yaml", ":1:1: no configuration: the file is empty or holds only comments"},
    {"bad_tab_indent.yaml", ":33:1: tab character in indentation (YAML indents with spaces only"},
    {"bad_agent_id.yaml", ":3:7: agent.id \"edge eu 1\": must be printable ASCII without spaces "
                          "(allowed: 1..128 printable ASCII characters without spaces"},
    {"bad_url_no_path.yaml", ":7:8: collector.url \"http://127.0.0.1:8470\" has no path"},
    {"bad_url_port.yaml", ":7:8: collector.url \"http://127.0.0.1:99999/v1/results\" has port "
                          "99999, out of range (allowed: http(s)://host[:port]/path"},
    {"bad_batch_zero.yaml", ":8:15: collector.batch_size: 0 is out of range (allowed: 1..10000 "
                            "results per push)"},
    {"bad_sni_space.yaml", ":33:10: target \"api\": sni \"api example.test\": contains a space"},
    {"bad_interval_huge.yaml", ":38:15: job \"all\": interval: 1000000000d is too long (allowed: "
                               "1s..1d)"},
    {"bad_host.yaml", ":28:11: target \"web\": host \"www.exa mple.test\": contains a space"},
    {"bad_max_in_flight.yaml", ":14:18: limits.max_in_flight: 300000000 is out of range (allowed: "
                               "1..4096 probes per loop)"},
    {"bad_flush_zero.yaml", ":9:19: collector.flush_interval: 0ms is too short (allowed: "
                            "100ms..1h)"},
    {"bad_loops_zero.yaml", ":13:10: limits.loops: 0 is out of range (allowed: 1..64"},
    {"bad_region.yaml", ":4:11: agent.region \"eu-west-aaaa"},
    {"bad_second_document.yaml", ":42:1: a second YAML document starts here"},
};

static void test_bad_configs(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
    char path[512], err[1024] = "";
    snprintf(path, sizeof(path), TP_TEST_DATA_DIR "/config/%s", bad_cases[i].file);
    tp_agent_config *c = NULL;
    tp_err rc = tp_agent_config_load(path, &c, err, sizeof(err));
    if (rc != TP_E_CONFIG || strstr(err, bad_cases[i].expect) == NULL ||
        strncmp(err, path, strlen(path)) != 0)
      fail_msg("%s: rc=%d message \"%s\" lacks \"%s\"", bad_cases[i].file, rc, err,
               bad_cases[i].expect);
    assert_null(c);
  }
}

static void test_missing_file(void **state) {
  (void)state;
  char err[512];
  tp_agent_config *c = NULL;
  assert_int_equal(tp_agent_config_load("/nonexistent/agent.yaml", &c, err, sizeof(err)), TP_E_IO);
  assert_non_null(strstr(err, "/nonexistent/agent.yaml: cannot open"));
}

/* ---- generated configs ------------------------------------------------ */

static char tmp_path[64];

/* Writes a complete config whose fields are given as YAML scalars (already
 * quoted as needed) and loads it. */
static tp_err load_text(const char *text, tp_agent_config **c, char *err, size_t errlen) {
  snprintf(tmp_path, sizeof(tmp_path), "/tmp/tp-config-XXXXXX");
  int fd = mkstemp(tmp_path);
  assert_true(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  assert_non_null(fp);
  fputs(text, fp);
  assert_int_equal(fclose(fp), 0);
  *c = NULL;
  tp_err rc = tp_agent_config_load(tmp_path, c, err, errlen);
  unlink(tmp_path);
  return rc;
}

/* A YAML double-quoted scalar for any bytes (control characters escaped). */
static void yaml_quote(const char *s, char *out, size_t len) {
  size_t n = 0;
  out[n++] = '"';
  for (; *s != '\0' && n + 6 < len; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      n += (size_t)snprintf(out + n, len - n, "\\%c", ch);
    else if (ch < 0x20 || ch == 0x7f)
      n += (size_t)snprintf(out + n, len - n, "\\x%02x", ch);
    else
      out[n++] = (char)ch;
  }
  out[n++] = '"';
  out[n] = '\0';
}

typedef struct identity {
  const char *agent_id, *region, *target, *host, *sni;
} identity;

static tp_err load_identity(const identity *id, tp_agent_config **c, char *err, size_t errlen) {
  char q[5][1200], text[8192];
  yaml_quote(id->agent_id, q[0], sizeof(q[0]));
  yaml_quote(id->region, q[1], sizeof(q[1]));
  yaml_quote(id->target, q[2], sizeof(q[2]));
  yaml_quote(id->host, q[3], sizeof(q[3]));
  yaml_quote(id->sni, q[4], sizeof(q[4]));
  snprintf(text, sizeof(text),
           "agent: {id: %s, region: %s}\n"
           "collector: {url: 'http://127.0.0.1:8470/v1/results', insecure_plaintext: true}\n"
           "targets: [{name: %s, host: %s, sni: %s, port: 443}]\n"
           "jobs: [{targets: [%s], profiles: [modern], interval: 30s}]\n",
           q[0], q[1], q[2], q[3], q[4], q[2]);
  return load_text(text, c, err, errlen);
}

/* The collector's verdict on a batch whose result carries `id`. */
static tp_err wire_verdict(const identity *id) {
  Tlsprobe__V1__ResultBatch batch;
  Tlsprobe__V1__ProbeResult result, *results[1] = {&result};
  tlsprobe__v1__result_batch__init(&batch);
  tlsprobe__v1__probe_result__init(&result);
  batch.agent_id = (char *)id->agent_id;
  batch.results = results;
  batch.n_results = 1;
  result.agent_id = (char *)id->agent_id;
  result.region = (char *)id->region;
  result.target = (char *)id->target;
  result.host = (char *)id->host;
  result.sni = (char *)id->sni;
  result.port = 443;
  result.result_seq = 1;
  result.profile = "modern";
  result.started_unix_ns = 1700000000000000000;
  result.ok = 1;
  result.error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
  char reason[256];
  return tp_validate_batch(&batch, reason, sizeof(reason));
}

/* Issue #6 defect 10: a config that loads must never produce results the
 * collector rejects. Each case changes one identity field of a good one. */
static void test_config_never_accepts_what_the_wire_rejects(void **state) {
  (void)state;
  char long_id[200], long_region[80], long_target[300], long_host[300];
  memset(long_id, 'a', 129);
  long_id[129] = '\0';
  memset(long_region, 'r', 65);
  long_region[65] = '\0';
  memset(long_target, 't', 256);
  long_target[256] = '\0';
  for (size_t k = 0; k < 256; k++) /* labels of 63: 256 bytes, over the wire's 255 */
    long_host[k] = k % 64 == 63 ? '.' : 'h';
  long_host[256] = '\0';
  const identity good = {"edge-eu-1", "eu-west", "web", "www.example.test", "www.example.test"};
  identity cases[16];
  size_t n = 0;
  cases[n++] = good;
  const char *ids[] = {"edge eu 1", "tab\tid", "caf\xc3\xa9", long_id, "x"};
  for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
    cases[n] = good;
    cases[n++].agent_id = ids[i];
  }
  cases[n] = good;
  cases[n++].region = long_region;
  cases[n] = good;
  cases[n++].target = long_target;
  cases[n] = good;
  cases[n++].target = "line\nbreak";
  cases[n] = good;
  cases[n++].host = long_host;
  cases[n] = good;
  cases[n++].sni = "api example.test";
  for (size_t i = 0; i < n; i++) {
    char err[1024] = "";
    tp_agent_config *c = NULL;
    tp_err rc = load_identity(&cases[i], &c, err, sizeof(err));
    tp_err wire = wire_verdict(&cases[i]);
    if (rc == TP_E_OK && wire != TP_E_OK)
      fail_msg("case %zu (id \"%s\"): the config loads but the wire rejects it", i,
               cases[i].agent_id);
    /* The agent id rule is the wire's exactly: both directions. */
    if (strcmp(cases[i].host, good.host) == 0 && strcmp(cases[i].sni, good.sni) == 0 &&
        strcmp(cases[i].target, good.target) == 0 && (rc == TP_E_OK) != (wire == TP_E_OK))
      fail_msg("case %zu (id \"%s\"): config %s, wire %s: %s", i, cases[i].agent_id,
               rc == TP_E_OK ? "accepts" : "rejects", wire == TP_E_OK ? "accepts" : "rejects",
               err);
    tp_agent_config_free(c);
  }
}

static void test_wire_identity_checks(void **state) {
  (void)state;
  char why[256];
  assert_int_equal(tp_wire_check_agent_id("edge-eu-1", why, sizeof(why)), TP_E_OK);
  assert_int_equal(tp_wire_check_agent_id("edge eu", why, sizeof(why)), TP_E_VALIDATE);
  assert_string_equal(why, "must be printable ASCII without spaces");
  assert_int_equal(tp_wire_check_agent_id("", why, sizeof(why)), TP_E_VALIDATE);
  assert_string_equal(why, "must not be empty");
  char big[300];
  memset(big, 'a', 256);
  big[256] = '\0';
  assert_int_equal(tp_wire_check_host(big, why, sizeof(why)), TP_E_VALIDATE);
  assert_string_equal(why, "256 bytes exceeds the limit of 255");
  assert_int_equal(tp_wire_check_target_name("\xff", why, sizeof(why)), TP_E_VALIDATE);
  assert_string_equal(why, "invalid UTF-8");
  big[129] = '\0';
  assert_int_equal(tp_wire_check_profile_name(big, why, sizeof(why)), TP_E_VALIDATE);
  big[64] = '\0';
  assert_int_equal(tp_wire_check_region(big, why, sizeof(why)), TP_E_OK);
  big[64] = 'a';
  big[65] = '\0';
  assert_int_equal(tp_wire_check_region(big, why, sizeof(why)), TP_E_VALIDATE);
  /* A short buffer gets a truncated reason, never an overrun. */
  char tiny[8];
  assert_int_equal(tp_wire_check_agent_id("a b", tiny, sizeof(tiny)), TP_E_VALIDATE);
  assert_string_equal(tiny, "must be");
}

static void test_collector_url_rules(void **state) {
  (void)state;
  static const struct {
    const char *url, *expect; /* expect NULL = accepted */
  } cases[] = {
      {"http://127.0.0.1:8470/v1/results", NULL},
      {"https://collector.example.test/v1/results", NULL},
      {"HTTP://collector:1/v1/results?x=1", NULL},
      {"http://[::1]:8470/v1/results", NULL},
      {"http://user:secret@collector:8470/v1/results", NULL},
      {"http://collector:65535/v1/results", NULL},
      {"http://collector:8470", "has no path"},
      {"http://collector:8470/", "has no path"},
      {"http://collector:8470?x=1", "has no path"},
      {"http://collector:99999/v1/results", "has port 99999, out of range"},
      {"http://collector:0/v1/results", "has port 0, out of range"},
      {"http://collector:123456789012345/v1", "has port 1234567890..., out of range"},
      {"http://collector:/v1/results", "has ':' but no port"},
      {"http://collector:80a/v1/results", "has port \"80a\" that is not a number"},
      {"http:/collector/v1/results", "is not an http:// or https:// URL"},
      {"collector:8470/v1/results", "is not an http:// or https:// URL"},
      {"ftp://collector/v1/results", "is not an http:// or https:// URL"},
      {"http:///v1/results", "has no host"},
      {"http://coll ector/v1/results", "contains a space, control or non-ASCII character at "
                                       "character 12"},
      {"http://collector/v1/re sults", "contains a space"},
      {"http://[::1/v1/results", "unterminated IPv6 literal"},
      {"http://[1.2.3.4]/v1/results", "which is not an IPv6 address"},
      {"http://300.1.1.1/v1/results", "is neither a valid IPv4 address nor a DNS name"},
      {"http://a..b/v1/results", "has an empty label"},
      {"http://-a/v1/results", "starting or ending with '-'"},
      {"http://collector]/v1/results", "contains ']'"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char why[512] = "";
    int rc = tp__rule_collector_url(cases[i].url, why, sizeof(why));
    if (cases[i].expect == NULL && rc != 0)
      fail_msg("\"%s\" refused: %s", cases[i].url, why);
    if (cases[i].expect != NULL && (rc == 0 || strstr(why, cases[i].expect) == NULL))
      fail_msg("\"%s\": rc=%d \"%s\" lacks \"%s\"", cases[i].url, rc, why, cases[i].expect);
    if (rc != 0 && strstr(why, "allowed: ") == NULL)
      fail_msg("\"%s\": \"%s\" does not say what is allowed", cases[i].url, why);
  }
}

static void test_host_and_sni_rules(void **state) {
  (void)state;
  char why[512], label64[80], name254[300];
  memset(label64, 'a', 64);
  label64[64] = '\0';
  memset(name254, 'a', 254);
  for (int i = 63; i < 254; i += 64)
    name254[i] = '.';
  name254[254] = '\0';
  const char *good_hosts[] = {"localhost", "www.example.test", "www.example.test.", "127.0.0.1",
                              "::1", "2001:db8::1", "_srv.example", "xn--caf-dma.test", "a1"};
  for (size_t i = 0; i < sizeof(good_hosts) / sizeof(good_hosts[0]); i++)
    if (tp__rule_host(good_hosts[i], why, sizeof(why)) != 0)
      fail_msg("host \"%s\" refused: %s", good_hosts[i], why);
  static const struct {
    const char *host, *expect;
  } bad_hosts[] = {
      {"www.exa mple.test", "contains a space at character 8"},
      {"caf\xc3\xa9.test", "non-ASCII byte at character 4"},
      {"a..b", "empty label"},
      {".a", "empty label"},
      {"-a.test", "starting or ending with '-'"},
      {"a-.test", "starting or ending with '-'"},
      {"300.1.1.1", "neither a valid IPv4 address nor a DNS name"},
      {"[::1]", "contains '['"},
      {"a/b", "contains '/'"},
      {"a\tb", "contains a space"},
  };
  for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
    if (tp__rule_host(bad_hosts[i].host, why, sizeof(why)) == 0 ||
        strstr(why, bad_hosts[i].expect) == NULL)
      fail_msg("host \"%s\": \"%s\" lacks \"%s\"", bad_hosts[i].host, why, bad_hosts[i].expect);
  }
  assert_int_equal(tp__rule_host(label64, why, sizeof(why)), -1);
  assert_non_null(strstr(why, "label of 64 characters (allowed: 1..63 per label)"));
  assert_int_equal(tp__rule_host(name254, why, sizeof(why)), -1);
  assert_non_null(strstr(why, "is 254 bytes long (allowed: at most 253)"));
  /* SNI: no trailing dot (RFC 6066 §3); an IP literal is the verification name. */
  assert_int_equal(tp__rule_sni("www.example.test", why, sizeof(why)), 0);
  assert_int_equal(tp__rule_sni("192.0.2.1", why, sizeof(why)), 0);
  assert_int_equal(tp__rule_sni("www.example.test.", why, sizeof(why)), -1);
  assert_non_null(strstr(why, "RFC 6066"));
  assert_int_equal(tp__rule_sni("api example.test", why, sizeof(why)), -1);
  assert_int_equal(tp__rule_display_name("web shop", why, sizeof(why)), 0);
  assert_int_equal(tp__rule_display_name("web\x1b[31m", why, sizeof(why)), -1);
  assert_non_null(strstr(why, "control character at byte 4"));
}

/* Defaults are consistent with the bounds, and every bound itself loads. */
static void test_defaults_and_edges(void **state) {
  (void)state;
  char err[1024] = "";
  tp_agent_config *c = NULL;
  const char *minimal = "agent: {id: a}\n"
                        "collector: {url: 'http://127.0.0.1:8470/v1/results', insecure_plaintext: true}\n"
                        "targets: [{name: t, host: h, port: 1}]\n"
                        "jobs: [{targets: [t], profiles: [modern], interval: 1s}]\n";
  if (load_text(minimal, &c, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s", err);
  assert_true(c->loops >= 1 && c->loops <= TP_AGENT_MAX_LOOPS);
  assert_int_equal(c->max_in_flight, 64);
  assert_int_equal(c->max_pending, 16 * 64);
  assert_int_equal(c->batch_size, 200);
  assert_non_null(c->spool_path);
  assert_string_equal(c->region, "default");
  assert_int_equal(c->jobs[0].interval_ms, 1000);
  /* saturation defaults (saturation.h) */
  assert_int_equal(c->max_loop_lag_ms, 10);
  assert_int_equal(c->max_lateness_ms, 1000);
  assert_int_equal(c->max_cpu_wait_percent, 20);
  assert_int_equal(c->min_in_flight, 4);
  assert_true(c->adaptive_in_flight);
  tp_agent_config_free(c);

  const char *tuned = "agent: {id: a}\n"
                      "collector: {url: 'http://127.0.0.1:8470/v1/results', insecure_plaintext: true}\n"
                      "limits: {max_in_flight: 2}\n"
                      "saturation: {max_loop_lag: 50ms, max_lateness: 2s, max_cpu_wait_percent: 100, "
                      "adaptive: false}\n"
                      "targets: [{name: t, host: h, port: 1}]\n"
                      "jobs: [{targets: [t], profiles: [modern], interval: 1s}]\n";
  if (load_text(tuned, &c, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s", err);
  assert_int_equal(c->max_loop_lag_ms, 50);
  assert_int_equal(c->max_lateness_ms, 2000);
  assert_int_equal(c->max_cpu_wait_percent, 100);
  assert_int_equal(c->min_in_flight, 2); /* the default floor never exceeds max_in_flight */
  assert_false(c->adaptive_in_flight);
  tp_agent_config_free(c);

  const char *edges = "agent: {id: a}\n"
                      "collector: {url: 'http://h:65535/x', insecure_plaintext: true, batch_size: 10000, "
                      "flush_interval: 100ms, timeout: 5m}\n"
                      "limits: {loops: 64, max_in_flight: 4096}\n"
                      "defaults: {connect_timeout: 5m, handshake_timeout: 10ms}\n"
                      "targets: [{name: t, host: h, port: 65535}]\n"
                      "jobs: [{targets: [t], profiles: [modern], interval: 1d}]\n";
  if (load_text(edges, &c, err, sizeof(err)) != TP_E_OK)
    fail_msg("%s", err);
  assert_int_equal(c->max_pending, 16 * 4096);
  assert_true(c->max_pending <= TP_AGENT_MAX_PENDING);
  assert_int_equal(c->jobs[0].interval_ms, 86400000);
  tp_agent_config_free(c);

  static const struct {
    const char *limits, *expect;
  } over[] = {
      {"limits: {loops: 65}\n", "limits.loops: 65 is out of range (allowed: 1..64"},
      {"limits: {max_pending: 0}\n", "limits.max_pending: 0 is out of range (allowed: 1..65536"},
      {"limits: {max_pending: 65537}\n", "limits.max_pending: 65537 is out of range"},
      {"collector: {url: 'http://h/x', insecure_plaintext: true, batch_size: 10001}\n", "batch_size: 10001 is out of range"},
      {"collector: {url: 'http://h/x', insecure_plaintext: true, max_batch_bytes: 1000}\n",
       "collector.max_batch_bytes: 1000 is out of range (allowed: 65536..67108864 bytes"},
      {"collector: {url: 'http://h/x'}\n",
       "collector.url: \"http://\" sends results (and any token) unencrypted"},
      {"collector: {url: 'https://h/x', client_cert_file: /etc/hostname}\n",
       "client_cert_file and client_key_file go together"},
      {"collector: {url: 'https://h/x', token_file: /nonexistent/token}\n",
       "collector.token_file: cannot read \"/nonexistent/token\": No such file or directory"},
      {"collector: {url: 'http://h/x', insecure_plaintext: true}\nspool: {max_bytes: 10}\n",
       "spool.max_bytes: 10 is out of range (allowed: 65536..1099511627776 bytes)"},
      {"collector: {url: 'http://h/x', insecure_plaintext: true}\nspool: {path: x, memory: true}\n",
       "spool: path and memory: true exclude each other"},
      {"collector: {url: 'http://h/x', insecure_plaintext: true, timeout: 6m}\n",
       "collector.timeout: 6m is too long (allowed: 100ms..5m)"},
      {"defaults: {connect_timeout: 0ms}\n", "connect_timeout: 0ms is too short (allowed: 10ms..5m)"},
      {"agent: {id: a, log_level: verbose}\n", "unknown log level \"verbose\" (allowed: debug"},
      {"collector: {url: 'http://h/x', insecure_plaintext: nope}\n",
       "\"nope\" is not true or false"},
      {"spool: {memory: sometimes}\n", "\"sometimes\" is not true or false"},
      {"saturation: {adaptive: 1}\n", "\"1\" is not true or false"},
      {"saturation: {max_cpu_wait_percent: 0}\n",
       "saturation.max_cpu_wait_percent: 0 is out of range (allowed: 1..100"},
      {"saturation: {max_loop_lag: fast}\n",
       "saturation.max_loop_lag: \"fast\" is not a duration"},
      {"saturation: {max_lateness: 2h}\n",
       "saturation.max_lateness: 2h is too long (allowed: 1ms..1h)"},
      {"limits: {max_in_flight: 8}\nsaturation: {min_in_flight: 9}\n",
       "saturation.min_in_flight: 9 is out of range (allowed: 1..8"},
  };
  for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
    char text[1024];
    /* Later keys of the same name would be duplicates: put the case first
     * and leave its section out of the base. */
    bool has_agent = strncmp(over[i].limits, "agent:", 6) == 0;
    bool has_collector = strncmp(over[i].limits, "collector:", 10) == 0;
    snprintf(text, sizeof(text), "%s%s%s"
             "targets: [{name: t, host: h, port: 1}]\n"
             "jobs: [{targets: [t], profiles: [modern], interval: 1s}]\n",
             over[i].limits, has_agent ? "" : "agent: {id: a}\n",
             has_collector ? "" : "collector: {url: 'http://127.0.0.1:8470/v1/results', insecure_plaintext: true}\n");
    tp_err rc = load_text(text, &c, err, sizeof(err));
    if (rc != TP_E_CONFIG || strstr(err, over[i].expect) == NULL)
      fail_msg("case %zu: rc=%d \"%s\" lacks \"%s\"", i, rc, err, over[i].expect);
    assert_null(c);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_config),
      cmocka_unit_test(test_bad_configs),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_config_never_accepts_what_the_wire_rejects),
      cmocka_unit_test(test_wire_identity_checks),
      cmocka_unit_test(test_collector_url_rules),
      cmocka_unit_test(test_host_and_sni_rules),
      cmocka_unit_test(test_defaults_and_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
