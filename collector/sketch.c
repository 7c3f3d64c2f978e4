/* sketch.c - the DDSketch of sketch.h: a sorted sparse array of (bucket index,
 * count), the exact minimum and maximum, and the blob codec.
 *
 * Sparse and sorted because a rollup minute holds a few values of one series (a
 * dense array over the ~4,000 possible indices would cost 32 KiB per sketch),
 * while a merged 30-day sketch still has at most a few hundred buckets: adding is
 * a binary search, merging a linear merge of two sorted lists. */
#include "sketch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_mem.h"
#include "varint.h"

#define FORMAT_V1 0x01

typedef struct bucket {
  uint32_t index;
  uint64_t count;
} bucket;

struct tp_sketch {
  bucket *b; /* ascending index, every count >= 1 */
  size_t n, alloc;
  uint64_t count;    /* sum of the counts */
  uint64_t min, max; /* meaningful when count > 0 */
};

/* ---- the index mapping -------------------------------------------------------- */

/* ln(gamma), gamma = (1 + a) / (1 - a). */
static double ln_gamma(void) {
  return log1p(2.0 * TP_SKETCH_RELATIVE_ACCURACY / (1.0 - TP_SKETCH_RELATIVE_ACCURACY));
}

/* The logarithmic index of TP_SKETCH_EXACT_BELOW: log indices start there, right
 * after the exact ones, so index order is value order. */
static int32_t log_offset(double lg) { return (int32_t)ceil(log((double)TP_SKETCH_EXACT_BELOW) / lg); }

static uint32_t index_of(uint64_t v) {
  if (v < TP_SKETCH_EXACT_BELOW)
    return (uint32_t)v;
  double lg = ln_gamma();
  int32_t i = (int32_t)ceil(log((double)v) / lg);
  int32_t idx = TP_SKETCH_EXACT_BELOW + i - log_offset(lg);
  /* log() may round a value just above a bucket boundary down by an ulp, which
   * would put v = 128 one bucket below the first log one; the bucket next to it
   * answers within the same bound. */
  if (idx < TP_SKETCH_EXACT_BELOW)
    idx = TP_SKETCH_EXACT_BELOW;
  return idx > TP_SKETCH_MAX_INDEX ? TP_SKETCH_MAX_INDEX : (uint32_t)idx;
}

/* The value bucket idx answers with: itself when exact, else 2 gamma^i / (gamma + 1)
 * rounded, which is within a of everything in (gamma^(i-1), gamma^i]. */
static uint64_t value_of(uint32_t idx) {
  if (idx < TP_SKETCH_EXACT_BELOW)
    return idx;
  double lg = ln_gamma();
  double i = (double)((int32_t)idx - TP_SKETCH_EXACT_BELOW + log_offset(lg));
  double v = 2.0 * exp(i * lg) / (exp(lg) + 1.0);
  if (v >= 18446744073709551615.0) /* 2^64 as a double: converting it would be UB */
    return UINT64_MAX;
  return (uint64_t)(v + 0.5);
}

/* ---- building -------------------------------------------------------------------- */

tp_sketch *tp_sketch_new(void) { return tp_xcalloc(1, sizeof(tp_sketch)); }

void tp_sketch_free(tp_sketch *sketch) {
  if (sketch == NULL)
    return;
  free(sketch->b);
  free(sketch);
}

void tp_sketch_clear(tp_sketch *sketch) {
  sketch->n = 0;
  sketch->count = 0;
  sketch->min = sketch->max = 0;
}

static void reserve(tp_sketch *s, size_t n) {
  if (n <= s->alloc)
    return;
  size_t alloc = s->alloc ? s->alloc : 8;
  while (alloc < n)
    alloc *= 2;
  s->b = tp_xrealloc(s->b, alloc * sizeof(s->b[0]));
  s->alloc = alloc;
}

/* First position whose index is >= idx. */
static size_t lower_bound(const tp_sketch *s, uint32_t idx) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->b[mid].index < idx)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void note_extremes(tp_sketch *s, uint64_t lo, uint64_t hi) {
  if (s->count == 0 || lo < s->min)
    s->min = lo;
  if (s->count == 0 || hi > s->max)
    s->max = hi;
}

tp_err tp_sketch_add(tp_sketch *sketch, uint64_t value) {
  if (sketch->count >= TP_SKETCH_MAX_COUNT)
    return TP_E_TOOBIG;
  uint32_t idx = index_of(value);
  size_t pos = lower_bound(sketch, idx);
  if (pos == sketch->n || sketch->b[pos].index != idx) {
    reserve(sketch, sketch->n + 1);
    memmove(&sketch->b[pos + 1], &sketch->b[pos], (sketch->n - pos) * sizeof(sketch->b[0]));
    sketch->b[pos] = (bucket){.index = idx, .count = 0};
    sketch->n++;
  }
  sketch->b[pos].count++;
  note_extremes(sketch, value, value);
  sketch->count++;
  return TP_E_OK;
}

/* The common case of a report folding many small sketches into one large one: every
 * bucket of from is already in into. Then the counts add in place -- a forward search
 * from the last match per bucket of from, instead of moving all of into's buckets as
 * the general merge does. False (into unchanged) as soon as one is missing. */
static bool merge_in_place(tp_sketch *into, const tp_sketch *from) {
  size_t at[64];
  if (from->n > sizeof(at) / sizeof(at[0]))
    return false;
  size_t pos = 0;
  for (size_t j = 0; j < from->n; j++) {
    uint32_t idx = from->b[j].index;
    /* gallop: 1, 2, 4 ... ahead, then binary search in the last step */
    size_t step = 1, lo = pos;
    while (lo + step < into->n && into->b[lo + step].index < idx) {
      lo += step;
      step *= 2;
    }
    size_t hi = lo + step < into->n ? lo + step + 1 : into->n;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (into->b[mid].index < idx)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo == into->n || into->b[lo].index != idx)
      return false;
    at[j] = lo;
    pos = lo + 1;
  }
  for (size_t j = 0; j < from->n; j++)
    into->b[at[j]].count += from->b[j].count;
  return true;
}

tp_err tp_sketch_merge(tp_sketch *into, const tp_sketch *from) {
  if (into == from)
    return TP_E_INVAL; /* growing into would move from's buckets under the loop */
  if (from->count == 0)
    return TP_E_OK;
  if (from->count > TP_SKETCH_MAX_COUNT - into->count)
    return TP_E_TOOBIG;
  if (merge_in_place(into, from)) {
    note_extremes(into, from->min, from->max);
    into->count += from->count;
    return TP_E_OK;
  }
  /* Merge from the back into the grown array: no second buffer, and each bucket
   * of into moves at most once. */
  size_t i = into->n, j = from->n, out = into->n + from->n;
  reserve(into, out);
  bucket *b = into->b;
  while (j > 0) {
    if (i > 0 && b[i - 1].index > from->b[j - 1].index) {
      b[--out] = b[--i];
    } else if (i > 0 && b[i - 1].index == from->b[j - 1].index) {
      b[--out] = (bucket){.index = b[i - 1].index, .count = b[i - 1].count + from->b[j - 1].count};
      i--;
      j--;
    } else {
      b[--out] = from->b[--j];
    }
  }
  /* Equal indices left gaps at the front: close them (out == i when none). */
  size_t merged = into->n + from->n - (out - i);
  if (out != i)
    memmove(&b[i], &b[out], (into->n + from->n - out) * sizeof(b[0]));
  into->n = merged;
  note_extremes(into, from->min, from->max);
  into->count += from->count;
  return TP_E_OK;
}

uint64_t tp_sketch_count(const tp_sketch *sketch) { return sketch->count; }

size_t tp_sketch_bucket_count(const tp_sketch *sketch) { return sketch->n; }

/* ceil(n * ppm / 1e6) without overflow: n = a * 1e6 + r. */
static uint64_t rank_of(uint64_t n, uint64_t ppm) {
  uint64_t a = n / 1000000, r = n % 1000000;
  return a * ppm + (r * ppm + 999999) / 1000000;
}

uint64_t tp_sketch_count_above(const tp_sketch *sketch, uint64_t bound) {
  if (sketch->count == 0 || bound >= sketch->max)
    return 0;
  if (bound < sketch->min)
    return sketch->count;
  /* Buckets wholly above the bound's own bucket; the bound's bucket counts as not
   * above (its values are within the relative accuracy of the bound). */
  uint32_t at = index_of(bound);
  uint64_t above = 0;
  for (size_t i = sketch->n; i > 0 && sketch->b[i - 1].index > at; i--)
    above += sketch->b[i - 1].count;
  return above;
}

bool tp_sketch_quantile(const tp_sketch *sketch, double q, uint64_t *out) {
  if (sketch->count == 0 || !(q >= 0.0 && q <= 1.0))
    return false;
  uint64_t rank = rank_of(sketch->count, (uint64_t)llround(q * 1e6));
  if (rank <= 1) {
    *out = sketch->min;
    return true;
  }
  if (rank >= sketch->count) {
    *out = sketch->max;
    return true;
  }
  uint64_t seen = 0;
  size_t k = 0;
  while (seen + sketch->b[k].count < rank)
    seen += sketch->b[k++].count;
  uint64_t v = value_of(sketch->b[k].index);
  /* The exact value lies in [min, max]: clamping can only bring v closer. */
  *out = v < sketch->min ? sketch->min : v > sketch->max ? sketch->max : v;
  return true;
}

/* ---- the blob ------------------------------------------------------------------- */

tp_err tp_sketch_encode(const tp_sketch *sketch, tp_buf *out) {
  uint8_t format = FORMAT_V1;
  tp_err rc = tp_buf_append(out, &format, 1);
  if (rc == TP_E_OK)
    rc = tp_varint_append(out, sketch->n);
  if (rc == TP_E_OK && sketch->n > 0)
    rc = tp_varint_append(out, sketch->min);
  if (rc == TP_E_OK && sketch->n > 0)
    rc = tp_varint_append(out, sketch->max);
  uint32_t prev = 0;
  for (size_t k = 0; rc == TP_E_OK && k < sketch->n; k++) {
    rc = tp_varint_append(out, sketch->b[k].index - prev);
    if (rc == TP_E_OK)
      rc = tp_varint_append(out, sketch->b[k].count);
    prev = sketch->b[k].index;
  }
  return rc;
}

static tp_err refuse(tp_sketch *s, char *err, size_t errlen, const char *what, size_t at) {
  tp_sketch_clear(s);
  snprintf(err, errlen, "latency sketch: %s at byte %zu", what, at);
  return TP_E_DECODE;
}

/* min and max must fall in (or next to: log() may differ by an ulp between the
 * machine that wrote the blob and this one) the first and last buckets. */
static bool extremes_fit(const tp_sketch *s) {
  uint32_t lo = index_of(s->min), hi = index_of(s->max);
  uint32_t first = s->b[0].index, last = s->b[s->n - 1].index;
  return s->min <= s->max && lo + 1 >= first && lo <= first + 1 && hi + 1 >= last &&
         hi <= last + 1;
}

tp_err tp_sketch_decode(tp_sketch *into, const uint8_t *data, size_t len, char *err,
                        size_t errlen) {
  const uint8_t *p = data, *end = data + len;
  uint64_t n = 0;
  tp_sketch_clear(into);
  if (len == 0 || data[0] != FORMAT_V1)
    return refuse(into, err, errlen, len == 0 ? "empty blob" : "unknown format", 0);
  p++;
  if (!tp_varint_get(&p, end, &n))
    return refuse(into, err, errlen, "truncated or overlong bucket count", (size_t)(p - data));
  /* Each bucket takes at least two bytes: bound n by what is there before
   * allocating for it. */
  if (n > TP_SKETCH_MAX_BUCKETS || n > (size_t)(end - p) / 2)
    return refuse(into, err, errlen, "bucket count beyond the blob or the limit",
                  (size_t)(p - data));
  if (n > 0 && (!tp_varint_get(&p, end, &into->min) || !tp_varint_get(&p, end, &into->max)))
    return refuse(into, err, errlen, "truncated or overlong min/max", (size_t)(p - data));
  reserve(into, (size_t)n);
  uint64_t idx = 0, total = 0;
  for (uint64_t k = 0; k < n; k++) {
    uint64_t delta, count;
    size_t at = (size_t)(p - data);
    if (!tp_varint_get(&p, end, &delta) || !tp_varint_get(&p, end, &count))
      return refuse(into, err, errlen, "truncated or overlong bucket", at);
    if ((k > 0 && delta == 0) || delta > TP_SKETCH_MAX_INDEX - idx)
      return refuse(into, err, errlen, "bucket index not ascending or out of range", at);
    idx += delta;
    if (count == 0 || count > TP_SKETCH_MAX_COUNT - total)
      return refuse(into, err, errlen, "bucket count zero or total beyond the limit", at);
    total += count;
    into->b[k] = (bucket){.index = (uint32_t)idx, .count = count};
  }
  if (p != end)
    return refuse(into, err, errlen, "trailing bytes", (size_t)(p - data));
  into->n = (size_t)n;
  into->count = total;
  if (n > 0 && !extremes_fit(into))
    return refuse(into, err, errlen, "min/max outside the first/last bucket", 1);
  return TP_E_OK;
}
