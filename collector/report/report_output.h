/* report_output.h - the report's views and output formats.
 *
 * Views (what is shown): summary (one row per group, warnings, delivery), errors
 * (taxonomy per group: class, owner, count, latest detail), versions (negotiated
 * version/cipher/group distribution), expiry (certificates of the latest chains,
 * soonest first, with severity), clients (for one target: which profiles succeed
 * and which fail, grouped by failure class), target (one target in depth: groups,
 * latest facts, a time series per region -- per group with --by), agents (delivery
 * per agent).
 * Formats (how): aligned text (colour only when asked: a TTY without NO_COLOR),
 * JSON (schema docs/report.schema.json, "schema_version" 2, rates as fractions),
 * CSV (RFC 4180, one header line; cells a spreadsheet would run as a formula are
 * prefixed with '), HTML (one self-contained file, inline SVG, no script). */
#ifndef TP_REPORT_OUTPUT_H
#define TP_REPORT_OUTPUT_H
#include <stdbool.h>
#include <stdio.h>

#include "report.h"

typedef enum {
  TP_VIEW_SUMMARY,
  TP_VIEW_ERRORS,
  TP_VIEW_VERSIONS,
  TP_VIEW_EXPIRY,
  TP_VIEW_CLIENTS,
  TP_VIEW_TARGET,
  TP_VIEW_AGENTS,
} tp_report_view;

typedef enum { TP_FORMAT_TEXT, TP_FORMAT_JSON, TP_FORMAT_CSV, TP_FORMAT_HTML } tp_report_format;

/* The JSON output's schema version: bumped on any change a consumer could notice
 * (a renamed or removed key, a changed unit). New keys do not bump it. */
#define TP_REPORT_SCHEMA_VERSION 2

typedef struct tp_report_output {
  tp_report_view view;
  tp_report_format format;
  bool color; /* text only: WARN/CRIT in colour */
  /* view target: the same window grouped by region alone, for its time series per
   * region (borrowed; NULL = a time series per group of the main report) */
  const tp_report *by_region;
} tp_report_output;

const char *tp_report_view_name(tp_report_view view);
bool tp_report_view_from_name(const char *name, tp_report_view *out);

/* Writes the report. Output is assembled in memory first, so a write error is
 * reported once (TP_E_IO) and a partial report is never mistaken for a whole one. */
tp_err tp_report_write(const tp_report *r, const tp_report_output *o, FILE *out);

#endif
