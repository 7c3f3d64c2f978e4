/* test_config.c - agent.yaml loading: a complete good file, and one file per
 * defect whose message must name file:line:column and the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

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
  assert_int_equal(c->queue_limit, 1000);
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
    {"bad_port.yaml", ":23:11: target \"t\": port 70000 is out of range 1..65535"},
    {"bad_interval.yaml", ":27:15: \"5 seconds\" is not a duration"},
    {"bad_unknown_key.yaml", ":20:5: Unexpected key: colour"},
    {"bad_duplicate_profile.yaml", ":20:11: duplicate profile name \"p\""},
    {"bad_priority_and_versions.yaml", ":21:15: profile \"p\": \"priority\" (a raw GnuTLS string) "
                                       "cannot be combined with \"versions\""},
    {"bad_syntax.yaml", ":4:8: Expecting STRING"},
    {"bad_url.yaml", ":7:8: \"ftp://127.0.0.1/\" is not an http:// or https:// URL"},
    {"bad_missing_id.yaml", "Missing required mapping field: id"},
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_config),
      cmocka_unit_test(test_bad_configs),
      cmocka_unit_test(test_missing_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
