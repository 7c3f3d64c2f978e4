/* varint.h - unsigned LEB128 varints (protobuf's encoding) for the collector's own
 * compact blobs: latency sketches (sketch.c) and outcome counts (outcome_counts.c),
 * both stored in SQLite and read back as untrusted bytes. The reader accepts only the
 * minimal encoding of a value, so a blob that decodes has exactly one byte form and
 * re-encoding it reproduces it (the fuzz target checks that). */
#ifndef TP_VARINT_H
#define TP_VARINT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tp_buf.h"
#include "tp_error.h"

#define TP_VARINT_MAX_LEN 10 /* 64 bits in 7-bit groups */

/* Writes v into out (room for TP_VARINT_MAX_LEN bytes); returns the length. */
static inline size_t tp_varint_put(uint8_t *out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

/* Appends v's varint to out (TP_E_TOOBIG when out's cap is reached). */
static inline tp_err tp_varint_append(tp_buf *out, uint64_t v) {
  uint8_t tmp[TP_VARINT_MAX_LEN];
  return tp_buf_append(out, tmp, tp_varint_put(tmp, v));
}

/* Reads one varint at *p (< end) and advances *p. False, *p unchanged, when the
 * bytes end inside it, it does not fit 64 bits, or it is not minimal (a trailing
 * zero group: 0x80 0x00 is a second spelling of 0). */
static inline bool tp_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  const uint8_t *q = *p;
  uint64_t v = 0;
  for (unsigned shift = 0; q < end && shift < 64; shift += 7) {
    uint8_t byte = *q++;
    if (shift == 63 && byte > 1)
      return false; /* bit 64 and beyond */
    v |= (uint64_t)(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) {
      if (byte == 0 && shift > 0)
        return false;
      *p = q;
      *out = v;
      return true;
    }
  }
  return false;
}

#endif
