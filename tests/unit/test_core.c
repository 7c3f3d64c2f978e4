/* test_core.c - durations, bounded buffer, error names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tp_buf.h"
#include "tp_duration.h"
#include "tp_error.h"

static void test_durations(void **state) {
  (void)state;
  uint64_t ms;
  assert_int_equal(tp_duration_parse_ms("250ms", &ms), TP_E_OK);
  assert_int_equal(ms, 250);
  assert_int_equal(tp_duration_parse_ms("5s", &ms), TP_E_OK);
  assert_int_equal(ms, 5000);
  assert_int_equal(tp_duration_parse_ms("2m", &ms), TP_E_OK);
  assert_int_equal(ms, 120000);
  assert_int_equal(tp_duration_parse_ms("1h", &ms), TP_E_OK);
  assert_int_equal(ms, 3600000);
  assert_int_equal(tp_duration_parse_ms("7d", &ms), TP_E_OK);
  assert_int_equal(ms, 7 * 86400000ULL);
  const char *bad[] = {"", "5", "s", "-5s", "5 s", "5sec", "1.5s", "99999999999999999999s",
                       "18446744073709551615d"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(tp_duration_parse_ms(bad[i], &ms), TP_E_INVAL);
  assert_int_equal(tp_duration_parse_ms(NULL, &ms), TP_E_INVAL);
}

static void test_buf_cap(void **state) {
  (void)state;
  tp_buf b;
  tp_buf_init(&b, 8);
  assert_int_equal(tp_buf_append(&b, "abcd", 4), TP_E_OK);
  assert_int_equal(tp_buf_append(&b, "efgh", 4), TP_E_OK);
  assert_int_equal(b.len, 8);
  assert_string_equal((char *)b.data, "abcdefgh");
  assert_int_equal(tp_buf_append(&b, "i", 1), TP_E_TOOBIG);
  assert_int_equal(b.len, 8); /* unchanged on failure */
  assert_int_equal(tp_buf_append(&b, "x", SIZE_MAX), TP_E_TOOBIG);
  tp_buf_reset(&b);
  assert_int_equal(b.len, 0);
  tp_buf_free(&b);
}

static void test_error_names(void **state) {
  (void)state;
  assert_string_equal(tp_err_name(TP_E_NOMEM), "TP_E_NOMEM");
  assert_string_equal(tp_strerror(TP_E_TOOBIG), "data exceeds the configured limit");
  assert_string_equal(tp_err_name((tp_err)999), "TP_E_?");
  for (int e = 0; e < TP_E__COUNT; e++)
    assert_string_not_equal(tp_strerror((tp_err)e), "unknown error");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_buf_cap),
      cmocka_unit_test(test_error_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
