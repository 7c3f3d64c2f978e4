/* percentile.c - nearest-rank percentile over a sorted array (see percentile.h). */
#include "percentile.h"

#include <stdlib.h>

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

void tp_percentile_sort(uint64_t *values, size_t n) {
  if (n > 1)
    qsort(values, n, sizeof(values[0]), cmp_u64);
}

bool tp_percentile_sorted(const uint64_t *sorted, size_t n, unsigned p, uint64_t *out) {
  if (n == 0 || p > 100)
    return false;
  /* ceil(p * n / 100) without floating point; p * n cannot overflow for any
   * array that fits in memory (n < 2^57). */
  size_t rank = ((size_t)p * n + 99) / 100;
  if (rank < 1)
    rank = 1;
  *out = sorted[rank - 1];
  return true;
}

bool tp_percentile_sorted_permille(const uint64_t *sorted, size_t n, unsigned permille,
                                   uint64_t *out) {
  if (n == 0 || permille > 1000)
    return false;
  size_t rank = ((size_t)permille * n + 999) / 1000; /* ceil(permille * n / 1000) */
  if (rank < 1)
    rank = 1;
  *out = sorted[rank - 1];
  return true;
}

bool tp_percentile(uint64_t *values, size_t n, unsigned p, uint64_t *out) {
  tp_percentile_sort(values, n);
  return tp_percentile_sorted(values, n, p, out);
}
