/* percentile.h - exact nearest-rank percentiles (no interpolation, no sketches):
 *
 *   sort the N values ascending; rank = ceil(p/100 * N), clamped to 1..N;
 *   percentile = sorted[rank - 1].
 *
 * So with values 1..100: p50 = 50, p90 = 90, p99 = 99; with 1..101: p99 = 100;
 * with {10, 20}: p50 = 10, p90 = p99 = 20. Every reported value is a latency that
 * some probe actually measured. Integer arithmetic only: 0.9 * 100 is not 90 in
 * floating point. */
#ifndef TP_PERCENTILE_H
#define TP_PERCENTILE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sorts values ascending in place. */
void tp_percentile_sort(uint64_t *values, size_t n);
/* Nearest-rank percentile p (0..100) of ascending values; false if n == 0 or
 * p > 100. */
bool tp_percentile_sorted(const uint64_t *sorted, size_t n, unsigned p, uint64_t *out);
/* The same in thousandths (p99.9 = 999): rank = ceil(permille/1000 * N). */
bool tp_percentile_sorted_permille(const uint64_t *sorted, size_t n, unsigned permille,
                                   uint64_t *out);
/* Convenience: sorts values in place, then tp_percentile_sorted. */
bool tp_percentile(uint64_t *values, size_t n, unsigned p, uint64_t *out);

#endif
