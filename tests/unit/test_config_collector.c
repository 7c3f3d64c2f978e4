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
  tp_collector_config_free(c);
}

static const struct {
  const char *file;
  const char *expect; /* substring of the message, after the file name */
} bad_cases[] = {
    {"empty.yaml", ":1:1: no configuration: the file is empty or holds only comments (expected a "
                   "mapping with the keys listen, database; optional: max_body_bytes, log_level)"},
    {"comment_only.yaml", ":1:1: no configuration: the file is empty or holds only comments"},
    {"collector_tab_indent.yaml", ":4:1: tab character in indentation"},
    {"collector_bad_listen_port.yaml", ":2:9: listen: port \"99999\" is not a number in 0..65535"},
    {"collector_bad_max_body.yaml", ":4:17: max_body_bytes: 100 is out of range (allowed: "
                                    "1024..268435456 bytes)"},
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
