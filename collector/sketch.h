/* sketch.h - a mergeable latency sketch with bounded relative error (DDSketch,
 * Masson, Rim, Lee: "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with
 * Relative-Error Guarantees", VLDB 2019), for the collector's per-minute rollups.
 *
 * Values (nanoseconds) go into logarithmic buckets: bucket i holds
 * (gamma^(i-1), gamma^i] with gamma = (1 + a) / (1 - a), a = 0.005, and answers
 * with 2 gamma^i / (gamma + 1), which is within a (0.5 %) of every value in it.
 * Values below 128 get a bucket each (exact), so rounding the answer to whole
 * nanoseconds adds at most 0.5 / 128 = 0.39 %: any quantile is within 0.9 % of the
 * exact nearest-rank value, the smallest and largest exactly (they are kept).
 * Merging adds bucket counts, so merge(a, b) answers exactly what one sketch fed
 * both a's and b's values answers: per-minute sketches add up to any window.
 * Size: one bucket per 1 % of value range actually used, e.g. ~230 buckets for
 * latencies spread over 1..10 ms, a handful for one minute of one series.
 *
 * Why hand-written: Debian 12 packages no C library for DDSketch or HdrHistogram
 * (only the Go and Java ones), and the part we need is ~300 lines.
 *
 * The blob (tp_sketch_encode) is a format byte, then varints (varint.h):
 *   0x01                 format 1: a = 0.005, exact below 128
 *   n                    bucket count, 0..TP_SKETCH_MAX_BUCKETS
 *   min, max             smallest and largest value added (only when n > 0)
 *   n x (delta, count)   bucket index minus the previous one (the first: the index
 *                        itself; then >= 1, so strictly ascending), count >= 1
 * It is read back from the database, so tp_sketch_decode treats it as untrusted:
 * every field is checked, nothing is allocated before the length bounds it, the
 * total count stays <= TP_SKETCH_MAX_COUNT, and a blob decodes only if it is the
 * exact encoding of its sketch. */
#ifndef TP_SKETCH_H
#define TP_SKETCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tp_buf.h"
#include "tp_error.h"

typedef struct tp_sketch tp_sketch;

#define TP_SKETCH_RELATIVE_ACCURACY 0.005 /* a, per bucket */
/* The guarantee callers may rely on: |quantile - exact| <= 1 % of exact. */
#define TP_SKETCH_MAX_RELATIVE_ERROR 0.01
/* Exact below this value (ns). */
#define TP_SKETCH_EXACT_BELOW 128
/* Indices 0..TP_SKETCH_MAX_INDEX cover every uint64 value. */
#define TP_SKETCH_MAX_INDEX 4079
#define TP_SKETCH_MAX_BUCKETS (TP_SKETCH_MAX_INDEX + 1)
/* Values a sketch may count (2^53: exact in a double; ~285 years of 1000 probes/s). */
#define TP_SKETCH_MAX_COUNT ((uint64_t)1 << 53)
/* The largest blob tp_sketch_encode writes. */
#define TP_SKETCH_MAX_BLOB (1 + 3 * 10 + (size_t)TP_SKETCH_MAX_BUCKETS * (2 + 8))

/* A new empty sketch (aborts on OOM, tp_mem.h). Free with tp_sketch_free. */
tp_sketch *tp_sketch_new(void);
void tp_sketch_free(tp_sketch *sketch);
/* Empties it, keeping its memory. */
void tp_sketch_clear(tp_sketch *sketch);

/* Counts one value. TP_E_TOOBIG (unchanged) at TP_SKETCH_MAX_COUNT. */
tp_err tp_sketch_add(tp_sketch *sketch, uint64_t value);
/* Adds every value of from into into (two different sketches; TP_E_INVAL if not).
 * TP_E_TOOBIG (into unchanged) when the total would pass TP_SKETCH_MAX_COUNT. */
tp_err tp_sketch_merge(tp_sketch *into, const tp_sketch *from);

uint64_t tp_sketch_count(const tp_sketch *sketch);
/* Buckets in use (the blob's size is about 3 bytes each). */
size_t tp_sketch_bucket_count(const tp_sketch *sketch);

/* The nearest-rank quantile q (0..1): the value at rank ceil(q * count), rank 1
 * at least, within TP_SKETCH_MAX_RELATIVE_ERROR of the exact one. q is resolved to
 * millionths first (0.999 is exactly 999000 / 1000000), so the rank is the one
 * integer nearest-rank arithmetic gives (percentile.h). Rank 1 is the exact
 * minimum, rank count the exact maximum. False when empty or q is not in 0..1. */
bool tp_sketch_quantile(const tp_sketch *sketch, double q, uint64_t *out);

/* How many values are above bound, to the sketch's accuracy: values in bound's own
 * bucket (within TP_SKETCH_RELATIVE_ACCURACY of it) count as not above. Exact below
 * TP_SKETCH_EXACT_BELOW and beyond the extremes. */
uint64_t tp_sketch_count_above(const tp_sketch *sketch, uint64_t bound);

/* Appends the blob (format above) to out; TP_E_TOOBIG if out's cap is too small. */
tp_err tp_sketch_encode(const tp_sketch *sketch, tp_buf *out);
/* Replaces into's contents with the blob's. TP_E_DECODE with a message in err
 * (into then empty) when the blob is malformed. */
tp_err tp_sketch_decode(tp_sketch *into, const uint8_t *data, size_t len, char *err,
                        size_t errlen);

#endif
