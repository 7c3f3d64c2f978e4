/* test_percentile.c - nearest-rank percentiles against hand-computed values
 * (collector/percentile.h: rank = ceil(p/100 * N), value = sorted[rank-1]). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include "percentile.h"

static uint64_t pct(uint64_t *values, size_t n, unsigned p) {
  uint64_t out = 0;
  assert_true(tp_percentile(values, n, p, &out));
  return out;
}

static void test_empty_has_no_percentile(void **state) {
  (void)state;
  uint64_t out = 42, dummy = 0;
  assert_false(tp_percentile(&dummy, 0, 50, &out));
  assert_int_equal(out, 42);
}

static void test_one_value(void **state) {
  (void)state;
  uint64_t v[] = {7};
  assert_int_equal(pct(v, 1, 50), 7);
  assert_int_equal(pct(v, 1, 90), 7);
  assert_int_equal(pct(v, 1, 99), 7);
  assert_int_equal(pct(v, 1, 0), 7);
  assert_int_equal(pct(v, 1, 100), 7);
}

static void test_two_values(void **state) {
  (void)state;
  uint64_t v[] = {20, 10};             /* unsorted on purpose */
  assert_int_equal(pct(v, 2, 50), 10); /* ceil(1.0) = 1 */
  assert_int_equal(pct(v, 2, 90), 20); /* ceil(1.8) = 2 */
  assert_int_equal(pct(v, 2, 99), 20);
}

static void fill_descending(uint64_t *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    v[i] = n - i; /* n..1: sorting is part of what is tested */
}

static void test_99_values(void **state) {
  (void)state;
  uint64_t v[99];
  fill_descending(v, 99);
  assert_int_equal(pct(v, 99, 50), 50); /* ceil(49.5) = 50 */
  assert_int_equal(pct(v, 99, 90), 90); /* ceil(89.1) = 90 */
  assert_int_equal(pct(v, 99, 99), 99); /* ceil(98.01) = 99 */
}

static void test_100_values(void **state) {
  (void)state;
  uint64_t v[100];
  fill_descending(v, 100);
  assert_int_equal(pct(v, 100, 50), 50);
  assert_int_equal(pct(v, 100, 90), 90); /* exactly 90: no floating point drift */
  assert_int_equal(pct(v, 100, 99), 99);
  assert_int_equal(pct(v, 100, 100), 100);
}

static void test_101_values(void **state) {
  (void)state;
  uint64_t v[101];
  fill_descending(v, 101);
  assert_int_equal(pct(v, 101, 50), 51);  /* ceil(50.5) = 51 */
  assert_int_equal(pct(v, 101, 90), 91);  /* ceil(90.9) = 91 */
  assert_int_equal(pct(v, 101, 99), 100); /* ceil(99.99) = 100 */
}

static void test_duplicates(void **state) {
  (void)state;
  uint64_t v[] = {5, 1, 5, 5, 9, 5, 1, 5, 5, 5};
  /* sorted: 1 1 5 5 5 5 5 5 5 9 */
  assert_int_equal(pct(v, 10, 10), 1);
  assert_int_equal(pct(v, 10, 20), 1);
  assert_int_equal(pct(v, 10, 21), 5);
  assert_int_equal(pct(v, 10, 90), 5);
  assert_int_equal(pct(v, 10, 91), 9);
}

static void test_sorted_variant_and_bad_p(void **state) {
  (void)state;
  const uint64_t sorted[] = {1, 2, 3, 4};
  uint64_t out = 0;
  assert_true(tp_percentile_sorted(sorted, 4, 75, &out));
  assert_int_equal(out, 3);
  assert_false(tp_percentile_sorted(sorted, 4, 101, &out));
}

static void test_large_values(void **state) {
  (void)state;
  uint64_t v[] = {UINT64_MAX, 0, UINT64_MAX - 1};
  assert_true(pct(v, 3, 50) == UINT64_MAX - 1);
  assert_true(pct(v, 3, 99) == UINT64_MAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_has_no_percentile),
      cmocka_unit_test(test_one_value),
      cmocka_unit_test(test_two_values),
      cmocka_unit_test(test_99_values),
      cmocka_unit_test(test_100_values),
      cmocka_unit_test(test_101_values),
      cmocka_unit_test(test_duplicates),
      cmocka_unit_test(test_sorted_variant_and_bad_p),
      cmocka_unit_test(test_large_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
