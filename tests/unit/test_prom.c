/* test_prom.c - the text exposition writer (tp_prom): label escaping of hostile
 * values (the format's three escapes, bytes that are not UTF-8), HELP escaping,
 * sample and histogram lines, number formats, the sticky size error, names. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tp_prom.h"

/* The escaped form of value, in a static buffer. */
static const char *escaped(const char *value) {
  static char out[256];
  tp_buf b;
  tp_prom_writer w;
  tp_buf_init(&b, 1024);
  tp_prom_begin(&w, &b);
  tp_prom_escape_label(&w, value);
  assert_int_equal(tp_prom_end(&w), TP_E_OK);
  snprintf(out, sizeof(out), "%s", b.len ? (const char *)b.data : "");
  tp_buf_free(&b);
  return out;
}

static void test_label_escaping(void **state) {
  (void)state;
  assert_string_equal(escaped("plain-name.example:443"), "plain-name.example:443");
  assert_string_equal(escaped(""), "");
  /* The format's escapes: backslash, double quote, line feed. */
  assert_string_equal(escaped("a\\b"), "a\\\\b");
  assert_string_equal(escaped("say \"hi\""), "say \\\"hi\\\"");
  assert_string_equal(escaped("two\nlines"), "two\\nlines");
  assert_string_equal(escaped("\\\"\n"), "\\\\\\\"\\n");
  /* Other bytes are kept as they are: tab, CR, and valid UTF-8 of every length. */
  assert_string_equal(escaped("tab\there\r"), "tab\there\r");
  assert_string_equal(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92"),
                      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
  /* Not UTF-8: a stray continuation byte, a truncated sequence, an overlong '/', a
   * surrogate, beyond U+10FFFF, 0xFF -- each byte of the bad run becomes U+FFFD. */
  assert_string_equal(escaped("a\x80z"), "a\xef\xbf\xbdz");
  assert_string_equal(escaped("a\xc3"), "a\xef\xbf\xbd");
  assert_string_equal(escaped("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
  assert_string_equal(escaped("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  assert_string_equal(escaped("\xf4\x90\x80\x80"),
                      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  assert_string_equal(escaped("\xff\""), "\xef\xbf\xbd\\\"");
}

static void test_lines(void **state) {
  (void)state;
  tp_buf b;
  tp_prom_writer w;
  tp_buf_init(&b, 4096);
  tp_prom_begin(&w, &b);
  tp_prom_family(&w, "x_total", "counter", "What \\ it counts\nand more.");
  tp_prom_label l[2] = {{"target", "we\"b"}, {"result", "ok"}};
  tp_prom_u64(&w, "x_total", l, 2, UINT64_MAX);
  tp_prom_u64(&w, "x_total", NULL, 0, 0);
  tp_prom_i64(&w, "g", l, 1, -5);
  tp_prom_f64(&w, "f", NULL, 0, 0.25);
  tp_prom_f64(&w, "f", NULL, 0, NAN);
  tp_prom_f64(&w, "f", NULL, 0, INFINITY);
  tp_prom_f64(&w, "f", NULL, 0, -INFINITY);
  tp_prom_f64(&w, "f", NULL, 0, 1764648000.123);
  assert_int_equal(tp_prom_end(&w), TP_E_OK);
  assert_string_equal((const char *)b.data,
                      "# HELP x_total What \\\\ it counts\\nand more.\n"
                      "# TYPE x_total counter\n"
                      "x_total{target=\"we\\\"b\",result=\"ok\"} 18446744073709551615\n"
                      "x_total 0\n"
                      "g{target=\"we\\\"b\"} -5\n"
                      "f 0.25\n"
                      "f NaN\n"
                      "f +Inf\n"
                      "f -Inf\n"
                      "f 1764648000.1229999\n");
  tp_buf_free(&b);
}

static void test_histogram(void **state) {
  (void)state;
  static const double bounds[2] = {0.005, 0.1};
  static const char *const text[2] = {"0.005", "0.1"};
  const tp_prom_buckets buckets = {bounds, text, 2};
  const uint64_t counts[3] = {3, 0, 2}; /* not cumulative; the last is above 0.1 */
  tp_buf b;
  tp_prom_writer w;
  tp_buf_init(&b, 4096);
  tp_prom_begin(&w, &b);
  tp_prom_label l[1] = {{"target", "a"}};
  tp_prom_histogram(&w, "h_seconds", l, 1, &buckets, counts, 1.5);
  tp_prom_histogram(&w, "h_seconds", NULL, 0, &buckets, counts, 0);
  assert_int_equal(tp_prom_end(&w), TP_E_OK);
  assert_string_equal((const char *)b.data, "h_seconds_bucket{target=\"a\",le=\"0.005\"} 3\n"
                                            "h_seconds_bucket{target=\"a\",le=\"0.1\"} 3\n"
                                            "h_seconds_bucket{target=\"a\",le=\"+Inf\"} 5\n"
                                            "h_seconds_sum{target=\"a\"} 1.5\n"
                                            "h_seconds_count{target=\"a\"} 5\n"
                                            "h_seconds_bucket{le=\"0.005\"} 3\n"
                                            "h_seconds_bucket{le=\"0.1\"} 3\n"
                                            "h_seconds_bucket{le=\"+Inf\"} 5\n"
                                            "h_seconds_sum 0\n"
                                            "h_seconds_count 5\n");
  tp_buf_free(&b);
}

/* The first failure sticks: nothing more is written, and end() reports it. */
static void test_sticky_error(void **state) {
  (void)state;
  tp_buf b;
  tp_prom_writer w;
  tp_buf_init(&b, 20);
  tp_prom_begin(&w, &b);
  tp_prom_u64(&w, "short", NULL, 0, 1);
  assert_int_equal(tp_prom_end(&w), TP_E_OK);
  tp_prom_family(&w, "a_name_too_long_for_the_cap", "gauge", "help");
  tp_prom_u64(&w, "s", NULL, 0, 2);
  assert_int_equal(tp_prom_end(&w), TP_E_TOOBIG);
  assert_true(b.len <= 20);
  assert_non_null(strstr((const char *)b.data, "short 1\n"));
  assert_null(strstr((const char *)b.data, "s 2"));
  tp_buf_free(&b);
}

static void test_names(void **state) {
  (void)state;
  assert_true(tp_prom_name_valid("tlsprobe_probes_total", false));
  assert_true(tp_prom_name_valid("ns:metric_1", false));
  assert_false(tp_prom_name_valid("1abc", false));
  assert_false(tp_prom_name_valid("a-b", false));
  assert_false(tp_prom_name_valid("", false));
  assert_true(tp_prom_name_valid("target", true));
  assert_false(tp_prom_name_valid("a:b", true));
  assert_false(tp_prom_name_valid("__name__", true));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_label_escaping), cmocka_unit_test(test_lines),
      cmocka_unit_test(test_histogram),      cmocka_unit_test(test_sticky_error),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
