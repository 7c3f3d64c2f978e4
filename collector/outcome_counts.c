/* outcome_counts.c - the codec of outcome_counts.h. */
#include "outcome_counts.h"

#include <stdio.h>
#include <string.h>

#include "outcome.h"
#include "varint.h"

#define FORMAT_V1 0x01

uint64_t tp_outcome_counts_total(const tp_outcome_counts *counts) {
  uint64_t total = 0;
  for (size_t i = 0; i < TP_OUTCOME_SLOTS; i++)
    total += counts->n[i]; /* bounded: every producer checks TP_OUTCOME_COUNTS_MAX */
  return total;
}

tp_err tp_outcome_counts_merge(tp_outcome_counts *into, const tp_outcome_counts *from) {
  uint64_t a = tp_outcome_counts_total(into), b = tp_outcome_counts_total(from);
  if (a > TP_OUTCOME_COUNTS_MAX || b > TP_OUTCOME_COUNTS_MAX - a)
    return TP_E_TOOBIG;
  for (size_t i = 0; i < TP_OUTCOME_SLOTS; i++)
    into->n[i] += from->n[i];
  return TP_E_OK;
}

tp_err tp_outcome_counts_encode(const tp_outcome_counts *counts, tp_buf *out) {
  uint8_t format = FORMAT_V1;
  tp_err rc = tp_buf_append(out, &format, 1);
  for (size_t i = 0; rc == TP_E_OK && i < TP_OUTCOME_SLOTS; i++) {
    if (counts->n[i] == 0)
      continue;
    rc = tp_varint_append(out, i);
    if (rc == TP_E_OK)
      rc = tp_varint_append(out, counts->n[i]);
  }
  return rc;
}

static tp_err refuse(tp_outcome_counts *out, char *err, size_t errlen, const char *what,
                     size_t at) {
  memset(out, 0, sizeof(*out));
  snprintf(err, errlen, "outcome counts: %s at byte %zu", what, at);
  return TP_E_DECODE;
}

tp_err tp_outcome_counts_decode(const uint8_t *data, size_t len, tp_outcome_counts *out,
                                char *err, size_t errlen) {
  const uint8_t *p = data, *end = data + len;
  uint64_t total = 0;
  int prev = -1;
  memset(out, 0, sizeof(*out));
  if (len == 0 || data[0] != FORMAT_V1)
    return refuse(out, err, errlen, len == 0 ? "empty blob" : "unknown format", 0);
  p++;
  while (p < end) {
    uint64_t cls, count;
    size_t at = (size_t)(p - data);
    if (!tp_varint_get(&p, end, &cls) || !tp_varint_get(&p, end, &count))
      return refuse(out, err, errlen, "truncated or overlong pair", at);
    if (cls >= TP_OUTCOME_SLOTS || !tp_outcome_is_valid((int)cls))
      return refuse(out, err, errlen, "class outside the taxonomy", at);
    if ((int)cls <= prev)
      return refuse(out, err, errlen, "classes not ascending", at);
    if (count == 0 || count > TP_OUTCOME_COUNTS_MAX - total)
      return refuse(out, err, errlen, "count zero or total beyond the limit", at);
    out->n[cls] = count;
    total += count;
    prev = (int)cls;
  }
  return TP_E_OK;
}
