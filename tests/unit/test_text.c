/* test_text.c - tp_text_fit: untrusted text fitted to the wire contract at its
 * source. Every output must pass the validator's own UTF-8 check and limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tp_text.h"
#include "validate.h"

static void check_fits(const char *out, size_t max) {
  size_t n = strlen(out);
  assert_true(n <= max);
  assert_true(tp_utf8_valid((const unsigned char *)out, n));
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)out[i];
    assert_false(c < 0x20 || c == 0x7F);
  }
}

static void test_clean_text_is_copied(void **state) {
  (void)state;
  char *out = tp_text_fit_str("CN=example.com,O=Ex\xC3\xA4mple", 64);
  assert_string_equal(out, "CN=example.com,O=Ex\xC3\xA4mple");
  free(out);
  assert_null(tp_text_fit_str(NULL, 64));
}

static void test_controls_and_invalid_bytes_are_escaped(void **state) {
  (void)state;
  /* newline, ESC (terminal escape), DEL, a C1 CSI, a lone continuation byte, NUL */
  const char in[] = "a\nb\x1b[2Jc\x7f" "d\xC2\x9B" "e\x80" "f\0g";
  char *out = tp_text_fit(in, sizeof(in) - 1, 128);
  assert_string_equal(out, "a\\x0Ab\\x1B[2Jc\\x7Fd\\u009Be\\x80f\\x00g");
  check_fits(out, 128);
  free(out);
}

static void test_long_text_is_cut_on_a_character_boundary(void **state) {
  (void)state;
  /* 1,542 bytes of two-byte characters: the cut may not split one */
  size_t n = 1542;
  char *in = malloc(n + 1);
  for (size_t i = 0; i < n; i += 2) {
    in[i] = (char)0xC3;
    in[i + 1] = (char)0xA9;
  }
  in[n] = '\0';
  for (size_t max = 16; max <= 1030; max += 7) {
    char *out = tp_text_fit(in, n, max);
    check_fits(out, max);
    size_t len = strlen(out);
    size_t mark = strlen(TP_TEXT_CUT_MARK);
    assert_true(len >= mark);
    assert_memory_equal(out + len - mark, TP_TEXT_CUT_MARK, mark);
    assert_true(len + 1 >= max); /* at most one byte lost to the boundary */
    free(out);
  }
  free(in);
}

static void test_exact_fit_is_not_cut(void **state) {
  (void)state;
  char *out = tp_text_fit_str("0123456789", 10);
  assert_string_equal(out, "0123456789");
  free(out);
  out = tp_text_fit_str("0123456789a", 10);
  assert_string_equal(out, "01" TP_TEXT_CUT_MARK);
  free(out);
  /* an escape that would not fit is dropped whole, never half-written */
  out = tp_text_fit_str("abcd\n\n\n\n", 12);
  check_fits(out, 12);
  assert_string_equal(out, "abcd" TP_TEXT_CUT_MARK);
  free(out);
}

static void test_refit_keeps_fitting_strings(void **state) {
  (void)state;
  char *s = strdup("fine");
  char *same = tp_text_refit(s, 16);
  assert_ptr_equal(s, same);
  free(same);
  char *bad = strdup("x\ty");
  char *fixed = tp_text_refit(bad, 16);
  assert_string_equal(fixed, "x\\x09y");
  free(fixed);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clean_text_is_copied),
      cmocka_unit_test(test_controls_and_invalid_bytes_are_escaped),
      cmocka_unit_test(test_long_text_is_cut_on_a_character_boundary),
      cmocka_unit_test(test_exact_fit_is_not_cut),
      cmocka_unit_test(test_refit_keeps_fitting_strings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
