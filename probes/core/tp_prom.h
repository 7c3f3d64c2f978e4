/* tp_prom.h - writes the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), into a tp_buf.
 * Shared by the collector's and the agent's /metrics; both own their numbers, this
 * file owns only the syntax.
 *
 * Label values are untrusted (target names come from agents over the network), so
 * they are escaped as the format requires -- backslash, double quote and line feed
 * become \\, \" and \n -- and bytes that are not UTF-8 become U+FFFD, because a
 * scraper refuses a label value that is not valid UTF-8 (and with it the whole
 * scrape). HELP text escapes backslash and line feed. Metric and label names are
 * the caller's constants; tp_prom_name_valid checks one in tests.
 *
 * The writer is sticky: after the first failure (the buffer's cap) every call does
 * nothing and tp_prom_end reports it, so a renderer checks one return value instead
 * of one per line. */
#ifndef TP_PROM_H
#define TP_PROM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tp_buf.h"
#include "tp_error.h"

#define TP_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct tp_prom_label {
  const char *name;  /* a constant: [a-zA-Z_][a-zA-Z0-9_]* */
  const char *value; /* any NUL-terminated bytes; escaped on output */
} tp_prom_label;

typedef struct tp_prom_writer {
  tp_buf *out; /* borrowed */
  tp_err err;  /* the first failure; TP_E_OK while everything fitted */
} tp_prom_writer;

/* Bucket bounds of a histogram, ascending; text is the `le` label of each. */
typedef struct tp_prom_buckets {
  const double *bounds;
  const char *const *text;
  size_t n;
} tp_prom_buckets;

void tp_prom_begin(tp_prom_writer *w, tp_buf *out);
/* TP_E_OK, or the first failure (TP_E_TOOBIG: the output exceeded the buffer's cap). */
tp_err tp_prom_end(const tp_prom_writer *w);

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram, untyped). */
void tp_prom_family(tp_prom_writer *w, const char *name, const char *type, const char *help);
/* One sample line: name{labels} value. */
void tp_prom_u64(tp_prom_writer *w, const char *name, const tp_prom_label *labels, size_t n,
                 uint64_t value);
void tp_prom_i64(tp_prom_writer *w, const char *name, const tp_prom_label *labels, size_t n,
                 int64_t value);
/* NaN and infinities as the format spells them (NaN, +Inf, -Inf). */
void tp_prom_f64(tp_prom_writer *w, const char *name, const tp_prom_label *labels, size_t n,
                 double value);
/* A histogram's lines: name_bucket{labels,le=...} (cumulative), name_sum, name_count.
 * counts has b->n + 1 entries, not cumulative: counts[i] observations <= bounds[i] and
 * above the previous bound, counts[b->n] those above the last bound. */
void tp_prom_histogram(tp_prom_writer *w, const char *name, const tp_prom_label *labels, size_t n,
                       const tp_prom_buckets *b, const uint64_t *counts, double sum);

/* Appends value escaped for a label value (see the top of this file). */
void tp_prom_escape_label(tp_prom_writer *w, const char *value);
/* A metric name: [a-zA-Z_:][a-zA-Z0-9_:]*; a label name: no ':' and no leading "__". */
bool tp_prom_name_valid(const char *name, bool label);

#endif
