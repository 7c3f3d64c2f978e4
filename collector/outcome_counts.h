/* outcome_counts.h - probes per outcome class (outcome.h) as one compact blob, the
 * rollups' `classes` column: a format byte, then (class value, count) varint pairs
 * (varint.h) in ascending class order, zero counts left out. One minute of one
 * series is mostly "ok: N" -- three bytes -- where a column per class would cost 24
 * columns and a migration per new class.
 *
 * The blob is read back from the database, so tp_outcome_counts_decode treats it as
 * untrusted: a class outside the taxonomy, classes out of order, a zero count, a sum
 * beyond TP_OUTCOME_COUNTS_MAX, trailing or missing bytes are refused, and a blob
 * decodes only if it is the exact encoding of its counts. */
#ifndef TP_OUTCOME_COUNTS_H
#define TP_OUTCOME_COUNTS_H
#include <stddef.h>
#include <stdint.h>

#include "tp_buf.h"
#include "tp_error.h"

/* Counts are indexed by outcome value (outcome.h: 1..24 today, append-only). */
#define TP_OUTCOME_SLOTS 64
/* Total probes one blob may count (2^53, as tp_sketch). */
#define TP_OUTCOME_COUNTS_MAX ((uint64_t)1 << 53)

typedef struct tp_outcome_counts {
  uint64_t n[TP_OUTCOME_SLOTS];
} tp_outcome_counts;

/* Total over every class. */
uint64_t tp_outcome_counts_total(const tp_outcome_counts *counts);
/* into += from; TP_E_TOOBIG (into unchanged) when the total would pass the limit. */
tp_err tp_outcome_counts_merge(tp_outcome_counts *into, const tp_outcome_counts *from);
/* Appends the blob to out (TP_E_TOOBIG if out's cap is too small). */
tp_err tp_outcome_counts_encode(const tp_outcome_counts *counts, tp_buf *out);
/* TP_E_DECODE with a message in err (out zeroed) when the blob is malformed. */
tp_err tp_outcome_counts_decode(const uint8_t *data, size_t len, tp_outcome_counts *out,
                                char *err, size_t errlen);

#endif
