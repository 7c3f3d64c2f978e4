/* test_sketch.c - the latency sketch (collector/sketch.c) and the outcome-count blob
 * (collector/outcome_counts.c): every quantile within 1 % of the exact nearest-rank
 * value on several distributions (uniform, lognormal, bimodal, ties, tiny samples,
 * values in the exact range, the whole uint64 range), merging equal to adding
 * everything to one sketch, blobs that round-trip byte for byte, and corrupted blobs
 * refused with a message. Random inputs come from a fixed-seed generator: a failure
 * reproduces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"
#include "outcome_counts.h"
#include "percentile.h"
#include "sketch.h"

/* splitmix64: small, fixed seed, same sequence everywhere. */
static uint64_t rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double rng_unit(uint64_t *state) { return (double)(rng_next(state) >> 11) / 9007199254740992.0; }

static double rng_normal(uint64_t *state) {
  double u = rng_unit(state), v = rng_unit(state);
  return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(2.0 * M_PI * v);
}

/* The exact nearest rank for q resolved to millionths, as sketch.h promises. */
static uint64_t exact_quantile(const uint64_t *sorted, size_t n, double q) {
  uint64_t ppm = (uint64_t)llround(q * 1e6);
  uint64_t rank = (n * ppm + 999999) / 1000000; /* n is small here: no overflow */
  if (rank < 1)
    rank = 1;
  return sorted[rank - 1];
}

static const double QS[] = {0.0,  0.001, 0.01, 0.05, 0.1,  0.25, 0.333, 0.5,   0.6,
                            0.75, 0.9,   0.95, 0.99, 0.995, 0.999, 0.9999, 1.0};

/* Checks every q of QS and every whole percent against the exact values. */
static void check_accuracy(const char *name, uint64_t *values, size_t n) {
  tp_sketch *s = tp_sketch_new();
  for (size_t i = 0; i < n; i++)
    assert_int_equal(tp_sketch_add(s, values[i]), TP_E_OK);
  assert_int_equal(tp_sketch_count(s), n);
  tp_percentile_sort(values, n);
  double worst = 0;
  for (size_t k = 0; k < sizeof(QS) / sizeof(QS[0]) + 101; k++) {
    double q = k < sizeof(QS) / sizeof(QS[0]) ? QS[k] : (double)(k - sizeof(QS) / sizeof(QS[0])) / 100;
    uint64_t got = 0, want = exact_quantile(values, n, q);
    assert_true(tp_sketch_quantile(s, q, &got));
    double err = want == 0 ? (got == 0 ? 0 : 1) : fabs((double)got - (double)want) / (double)want;
    if (err > TP_SKETCH_MAX_RELATIVE_ERROR)
      fail_msg("%s: q=%g: sketch %llu, exact %llu (%.3f %%)", name, q, (unsigned long long)got,
               (unsigned long long)want, err * 100);
    if (err > worst)
      worst = err;
  }
  /* The extremes are kept exactly. */
  uint64_t lo, hi;
  assert_true(tp_sketch_quantile(s, 0, &lo));
  assert_true(tp_sketch_quantile(s, 1, &hi));
  assert_int_equal(lo, values[0]);
  assert_int_equal(hi, values[n - 1]);
  print_message("%-10s n=%-6zu buckets=%-5zu worst error %.3f %%\n", name, n,
                tp_sketch_bucket_count(s), worst * 100);
  tp_sketch_free(s);
}

static void test_uniform(void **state) {
  (void)state;
  uint64_t rng = 1, n = 20000;
  uint64_t *v = malloc(n * sizeof(*v));
  for (size_t i = 0; i < n; i++)
    v[i] = 1000000 + rng_next(&rng) % 4000000; /* 1..5 ms */
  check_accuracy("uniform", v, n);
  free(v);
}

static void test_lognormal(void **state) {
  (void)state;
  uint64_t rng = 2, n = 20000;
  uint64_t *v = malloc(n * sizeof(*v));
  for (size_t i = 0; i < n; i++)
    v[i] = (uint64_t)exp(log(2e6) + 0.9 * rng_normal(&rng)); /* median 2 ms, long tail */
  check_accuracy("lognormal", v, n);
  free(v);
}

static void test_bimodal(void **state) {
  (void)state;
  uint64_t rng = 3, n = 10000;
  uint64_t *v = malloc(n * sizeof(*v));
  for (size_t i = 0; i < n; i++) {
    bool slow = rng_next(&rng) % 10 < 3; /* 30 % through a slow path */
    double mean = slow ? 80e6 : 1e6, sd = slow ? 5e6 : 0.05e6;
    double x = mean + sd * rng_normal(&rng);
    v[i] = x < 1 ? 1 : (uint64_t)x;
  }
  check_accuracy("bimodal", v, n);
  free(v);
}

static void test_ties(void **state) {
  (void)state;
  uint64_t v[3000];
  for (size_t i = 0; i < 3000; i++)
    v[i] = i % 3 == 0 ? 1500000 : i % 3 == 1 ? 1500001 : 9000000;
  check_accuracy("ties", v, 3000);
  uint64_t same[500];
  for (size_t i = 0; i < 500; i++)
    same[i] = 2345678;
  check_accuracy("one-value", same, 500);
}

static void test_tiny_samples(void **state) {
  (void)state;
  uint64_t one[] = {1678000};
  uint64_t two[] = {2034000, 1679000};
  uint64_t three[] = {1800000, 1679000, 5000000};
  check_accuracy("tiny-1", one, 1);
  check_accuracy("tiny-2", two, 2);
  check_accuracy("tiny-3", three, 3);
  /* Nearest rank of {1.679, 1.8, 5.0} ms: p50 is the second value, p90 the third. */
  tp_sketch *s = tp_sketch_new();
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(tp_sketch_add(s, three[i]), TP_E_OK);
  uint64_t p50, p90;
  assert_true(tp_sketch_quantile(s, 0.5, &p50));
  assert_true(tp_sketch_quantile(s, 0.9, &p90));
  assert_true(p50 > 1790000 && p50 < 1810000);
  assert_int_equal(p90, 5000000); /* rank 3 = the maximum, exact */
  tp_sketch_free(s);
}

static void test_small_and_extreme_values(void **state) {
  (void)state;
  uint64_t small[400];
  for (size_t i = 0; i < 400; i++)
    small[i] = i; /* 0..127 exact, then the first log buckets */
  check_accuracy("0..399 ns", small, 400);
  uint64_t rng = 4, wide[5000];
  for (size_t i = 0; i < 5000; i++)
    wide[i] = rng_next(&rng) >> (rng_next(&rng) % 64); /* every magnitude */
  wide[0] = UINT64_MAX;
  wide[1] = 0;
  check_accuracy("uint64", wide, 5000);
}

/* The highest index is exactly TP_SKETCH_MAX_INDEX: UINT64_MAX's bucket. */
static void test_max_index(void **state) {
  (void)state;
  tp_sketch *s = tp_sketch_new();
  tp_buf b;
  tp_buf_init(&b, TP_SKETCH_MAX_BLOB);
  assert_int_equal(tp_sketch_add(s, UINT64_MAX), TP_E_OK);
  assert_int_equal(tp_sketch_encode(s, &b), TP_E_OK);
  /* 01, n=1, min and max (10 bytes each), delta = the index, count 1 */
  assert_int_equal(b.len, 1 + 1 + 10 + 10 + 2 + 1);
  uint64_t idx = (b.data[22] & 0x7F) | (uint64_t)b.data[23] << 7;
  assert_int_equal(idx, TP_SKETCH_MAX_INDEX);
  tp_buf_free(&b);
  tp_sketch_free(s);
}

static void encode(const tp_sketch *s, tp_buf *out) {
  tp_buf_reset(out);
  assert_int_equal(tp_sketch_encode(s, out), TP_E_OK);
}

static void test_merge_equals_add_all(void **state) {
  (void)state;
  uint64_t rng = 5;
  enum { PARTS = 7, N = 30000 };
  tp_sketch *all = tp_sketch_new(), *merged = tp_sketch_new(), *part[PARTS];
  for (int p = 0; p < PARTS; p++)
    part[p] = tp_sketch_new();
  for (size_t i = 0; i < N; i++) {
    uint64_t v = (uint64_t)exp(log(3e6) + 1.2 * rng_normal(&rng));
    assert_int_equal(tp_sketch_add(all, v), TP_E_OK);
    assert_int_equal(tp_sketch_add(part[rng_next(&rng) % PARTS], v), TP_E_OK);
  }
  /* Merge in an odd order, with an empty sketch and a repeated merge of an empty one. */
  tp_sketch *empty = tp_sketch_new();
  assert_int_equal(tp_sketch_merge(merged, empty), TP_E_OK);
  for (int p = PARTS - 1; p >= 0; p -= 2)
    assert_int_equal(tp_sketch_merge(merged, part[p]), TP_E_OK);
  for (int p = PARTS - 2; p >= 0; p -= 2)
    assert_int_equal(tp_sketch_merge(merged, part[p]), TP_E_OK);
  assert_int_equal(tp_sketch_merge(merged, empty), TP_E_OK);
  assert_int_equal(tp_sketch_merge(merged, merged), TP_E_INVAL);
  tp_buf a, b;
  tp_buf_init(&a, TP_SKETCH_MAX_BLOB);
  tp_buf_init(&b, TP_SKETCH_MAX_BLOB);
  encode(all, &a);
  encode(merged, &b);
  assert_int_equal(a.len, b.len);
  assert_memory_equal(a.data, b.data, a.len); /* the same sketch, bucket for bucket */
  print_message("merge: %d values in %zu buckets, %zu-byte blob\n", N, tp_sketch_bucket_count(all),
                a.len);
  tp_buf_free(&a);
  tp_buf_free(&b);
  for (int p = 0; p < PARTS; p++)
    tp_sketch_free(part[p]);
  tp_sketch_free(empty);
  tp_sketch_free(all);
  tp_sketch_free(merged);
}

/* A report's case: thousands of small sketches (a rollup minute's few values) folded
 * into one, most of whose buckets the accumulator already has (counts add in place),
 * some with a new bucket or more buckets than the in-place path takes (the general
 * merge): the same sketch as adding every value, whatever path each merge took. */
static void test_merge_many_small(void **state) {
  (void)state;
  uint64_t rng = 11;
  enum { SMALL = 3000 };
  tp_sketch *all = tp_sketch_new(), *merged = tp_sketch_new(), *small = tp_sketch_new();
  size_t in_place = 0;
  for (int k = 0; k < SMALL; k++) {
    tp_sketch_clear(small);
    /* mostly 1..20 values near 3 ms; every 100th a wide spread (> 64 buckets) */
    size_t n = k % 100 == 99 ? 2000 : 1 + rng_next(&rng) % 20;
    double spread = k % 100 == 99 ? 1.5 : 0.1;
    for (size_t i = 0; i < n; i++) {
      uint64_t v = (uint64_t)exp(log(3e6) + spread * rng_normal(&rng));
      assert_int_equal(tp_sketch_add(all, v), TP_E_OK);
      assert_int_equal(tp_sketch_add(small, v), TP_E_OK);
    }
    size_t before = tp_sketch_bucket_count(merged);
    assert_int_equal(tp_sketch_merge(merged, small), TP_E_OK);
    in_place += tp_sketch_bucket_count(merged) == before;
    assert_int_equal(tp_sketch_count(merged), tp_sketch_count(all));
  }
  tp_buf a, b;
  tp_buf_init(&a, TP_SKETCH_MAX_BLOB);
  tp_buf_init(&b, TP_SKETCH_MAX_BLOB);
  encode(all, &a);
  encode(merged, &b);
  assert_int_equal(a.len, b.len);
  assert_memory_equal(a.data, b.data, a.len);
  /* most merges added no bucket (counts in place), some did (the general merge) */
  assert_true(in_place > SMALL / 2);
  assert_true(in_place < SMALL);
  print_message("many small: %zu of %d merges without a new bucket\n", in_place, SMALL);
  tp_buf_free(&a);
  tp_buf_free(&b);
  tp_sketch_free(small);
  tp_sketch_free(all);
  tp_sketch_free(merged);
}

static void test_round_trip(void **state) {
  (void)state;
  char err[256];
  uint64_t rng = 6;
  tp_sketch *s = tp_sketch_new(), *back = tp_sketch_new();
  tp_buf a, b;
  tp_buf_init(&a, TP_SKETCH_MAX_BLOB);
  tp_buf_init(&b, TP_SKETCH_MAX_BLOB);
  /* Empty first: a valid two-byte blob that reads as an empty sketch. */
  encode(s, &a);
  assert_int_equal(a.len, 2);
  assert_int_equal(tp_sketch_decode(back, a.data, a.len, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_sketch_count(back), 0);
  uint64_t v;
  assert_false(tp_sketch_quantile(back, 0.5, &v));
  for (size_t i = 0; i < 5000; i++)
    assert_int_equal(tp_sketch_add(s, rng_next(&rng) % 100000000), TP_E_OK);
  encode(s, &a);
  assert_int_equal(tp_sketch_decode(back, a.data, a.len, err, sizeof(err)), TP_E_OK);
  encode(back, &b);
  assert_int_equal(a.len, b.len);
  assert_memory_equal(a.data, b.data, a.len);
  assert_int_equal(tp_sketch_count(back), 5000);
  for (size_t k = 0; k < sizeof(QS) / sizeof(QS[0]); k++) {
    uint64_t x, y;
    assert_true(tp_sketch_quantile(s, QS[k], &x));
    assert_true(tp_sketch_quantile(back, QS[k], &y));
    assert_int_equal(x, y);
  }
  assert_false(tp_sketch_quantile(s, 1.5, &v));
  assert_false(tp_sketch_quantile(s, -0.1, &v));
  assert_false(tp_sketch_quantile(s, NAN, &v));
  tp_buf_free(&a);
  tp_buf_free(&b);
  tp_sketch_free(s);
  tp_sketch_free(back);
}

/* Decodes a hand-written blob; expects a refusal whose message contains why. */
static void expect_refused(const char *what, const uint8_t *blob, size_t len, const char *why) {
  char err[256] = "";
  tp_sketch *s = tp_sketch_new();
  assert_int_equal(tp_sketch_add(s, 42), TP_E_OK); /* decode must empty it on failure */
  tp_err rc = tp_sketch_decode(s, blob, len, err, sizeof(err));
  if (rc != TP_E_DECODE)
    fail_msg("%s: accepted", what);
  if (strstr(err, why) == NULL)
    fail_msg("%s: message \"%s\" does not say \"%s\"", what, err, why);
  assert_int_equal(tp_sketch_count(s), 0);
  tp_sketch_free(s);
}

static void test_corrupted_blobs_refused(void **state) {
  (void)state;
  char err[256];
  /* A valid blob: {1000, 1000, 2000} -> 01 02 min=1000 max=2000 (idx,2) (delta,1). */
  tp_sketch *s = tp_sketch_new();
  assert_int_equal(tp_sketch_add(s, 1000), TP_E_OK);
  assert_int_equal(tp_sketch_add(s, 1000), TP_E_OK);
  assert_int_equal(tp_sketch_add(s, 2000), TP_E_OK);
  tp_buf good;
  tp_buf_init(&good, TP_SKETCH_MAX_BLOB);
  encode(s, &good);
  assert_int_equal(tp_sketch_decode(s, good.data, good.len, err, sizeof(err)), TP_E_OK);
  /* Every strict prefix is refused. */
  for (size_t len = 0; len < good.len; len++) {
    char what[48];
    snprintf(what, sizeof(what), "prefix of %zu bytes", len);
    expect_refused(what, good.data, len, len == 0 ? "empty" : "");
  }
  uint8_t trailing[64];
  memcpy(trailing, good.data, good.len);
  trailing[good.len] = 0;
  expect_refused("trailing byte", trailing, good.len + 1, "trailing bytes");

  expect_refused("unknown format", (const uint8_t *)"\x02\x00", 2, "unknown format");
  expect_refused("overlong varint", (const uint8_t *)"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
                 11, "overlong bucket count");
  expect_refused("non-minimal varint", (const uint8_t *)"\x01\x80\x00", 3, "bucket count");
  expect_refused("more buckets than bytes", (const uint8_t *)"\x01\x05\x01\x01\x01\x01", 6,
                 "beyond the blob");
  expect_refused("zero count", (const uint8_t *)"\x01\x01\x07\x07\x07\x00", 6, "count zero");
  expect_refused("repeated index", (const uint8_t *)"\x01\x02\x07\x07\x07\x01\x00\x01", 8,
                 "not ascending");
  /* Index 4080 = 0xF0 0x1F: one past the last bucket. */
  expect_refused("index beyond the range", (const uint8_t *)"\x01\x01\x07\x07\xf0\x1f\x01", 7,
                 "out of range");
  expect_refused("min above max", (const uint8_t *)"\x01\x02\x09\x07\x07\x01\x02\x01", 8,
                 "min/max");
  expect_refused("min outside its bucket", (const uint8_t *)"\x01\x01\x05\x07\x07\x01", 6,
                 "min/max");
  /* Two buckets of 2^52 + 2^52 = 2^53 is the limit; one more is refused. */
  static const uint8_t at_limit[] = {0x01, 0x02, 0x07, 0x08, 0x07, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x08, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x08};
  assert_int_equal(tp_sketch_decode(s, at_limit, sizeof(at_limit), err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_sketch_count(s), TP_SKETCH_MAX_COUNT);
  assert_int_equal(tp_sketch_add(s, 7), TP_E_TOOBIG);
  tp_sketch *one = tp_sketch_new();
  assert_int_equal(tp_sketch_add(one, 7), TP_E_OK);
  assert_int_equal(tp_sketch_merge(s, one), TP_E_TOOBIG);
  assert_int_equal(tp_sketch_count(s), TP_SKETCH_MAX_COUNT); /* unchanged */
  uint8_t over[sizeof(at_limit)];
  memcpy(over, at_limit, sizeof(over));
  over[5] = 0x81; /* the first count becomes 2^52 + 1 */
  expect_refused("total beyond 2^53", over, sizeof(over), "beyond the limit");
  tp_sketch_free(one);
  tp_buf_free(&good);
  tp_sketch_free(s);
}

static void test_outcome_counts(void **state) {
  (void)state;
  char err[256];
  tp_outcome_counts c = {{0}}, d = {{0}}, back;
  tp_buf b;
  tp_buf_init(&b, 4096);
  c.n[TP_OUTCOME_OK] = 1000;
  c.n[TP_OUTCOME_EXPIRED] = 3;
  c.n[TP_OUTCOME_OTHER] = 1;
  assert_int_equal(tp_outcome_counts_encode(&c, &b), TP_E_OK);
  assert_int_equal(b.len, 1 + 3 + 2 + 2); /* ok:1000 takes 3 bytes */
  assert_int_equal(tp_outcome_counts_decode(b.data, b.len, &back, err, sizeof(err)), TP_E_OK);
  assert_memory_equal(&back, &c, sizeof(c));
  d.n[TP_OUTCOME_EXPIRED] = 2;
  assert_int_equal(tp_outcome_counts_merge(&c, &d), TP_E_OK);
  assert_int_equal(c.n[TP_OUTCOME_EXPIRED], 5);
  assert_int_equal(tp_outcome_counts_total(&c), 1006);
  /* An empty blob (no probes) is just the format byte. */
  memset(&d, 0, sizeof(d));
  tp_buf_reset(&b);
  assert_int_equal(tp_outcome_counts_encode(&d, &b), TP_E_OK);
  assert_int_equal(b.len, 1);
  assert_int_equal(tp_outcome_counts_decode(b.data, b.len, &back, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_outcome_counts_total(&back), 0);

  static const struct {
    const char *what, *blob;
    size_t len;
    const char *why;
  } bad[] = {
      {"empty", "", 0, "empty"},
      {"format", "\x02", 1, "unknown format"},
      {"class 0", "\x01\x00\x01", 3, "taxonomy"},
      {"class 25", "\x01\x19\x01", 3, "taxonomy"},
      {"class 64", "\x01\x40\x01", 3, "taxonomy"},
      {"descending", "\x01\x0e\x01\x01\x01", 5, "not ascending"},
      {"repeated", "\x01\x0e\x01\x0e\x01", 5, "not ascending"},
      {"zero count", "\x01\x01\x00", 3, "count zero"},
      {"truncated", "\x01\x01", 2, "truncated"},
      {"non-minimal", "\x01\x01\x81\x00", 4, "overlong"},
      {"total", "\x01\x01\x80\x80\x80\x80\x80\x80\x80\x10\x02\x01", 12, "beyond the limit"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    back.n[1] = 9;
    if (tp_outcome_counts_decode((const uint8_t *)bad[i].blob, bad[i].len, &back, err,
                                 sizeof(err)) != TP_E_DECODE)
      fail_msg("%s: accepted", bad[i].what);
    if (strstr(err, bad[i].why) == NULL)
      fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].what, err, bad[i].why);
    assert_int_equal(tp_outcome_counts_total(&back), 0);
  }
  tp_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uniform),
      cmocka_unit_test(test_lognormal),
      cmocka_unit_test(test_bimodal),
      cmocka_unit_test(test_ties),
      cmocka_unit_test(test_tiny_samples),
      cmocka_unit_test(test_small_and_extreme_values),
      cmocka_unit_test(test_max_index),
      cmocka_unit_test(test_merge_equals_add_all),
      cmocka_unit_test(test_merge_many_small),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_corrupted_blobs_refused),
      cmocka_unit_test(test_outcome_counts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
