/* report_html.h - what the two halves of `report --format html` share: the page
 * and its tables (report_html.c) and the inline SVG charts (report_html_chart.c).
 * Internal to tp_report.
 *
 * Output rules, for both halves: markup we write is trusted; every string that
 * came from a database row (group names, error details, certificate subjects --
 * agents sent them over the network) goes through tp__html_text, in element text
 * and in quoted attribute values alike. Numbers are formatted in the C locale
 * (the collector never calls setlocale), so "0.950000" is what a reader parses. */
#ifndef TP_REPORT_HTML_H
#define TP_REPORT_HTML_H
#include <stddef.h>

#include "report_impl.h"

/* One page being written: the first error sticks, later writes are no-ops, so a
 * section can write freely and the caller checks rc once. */
typedef struct tp_html {
  tp_buf *b;
  tp_err rc;
} tp_html;

/* Trusted markup and numbers, verbatim. */
void tp__html_raw(tp_html *h, const char *s);
void tp__html_rawf(tp_html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Untrusted text: & < > " ' become character references (safe in element text
 * and in single- or double-quoted attribute values); control characters (C0 but
 * TAB/LF, DEL, C1) and bytes that are not UTF-8 become a visible \xNN, as in the
 * text report. NULL writes nothing. */
void tp__html_text(tp_html *h, const char *s);
/* The same, cut to max_chars code points with a trailing "..." (chart labels have
 * a fixed width; the full text goes into a <title>). */
void tp__html_text_cut(tp_html *h, const char *s, size_t max_chars);

/* A group's name: its grouped values joined by '/', empty values left out (as in
 * the text report's warning lines), escaped. */
void tp__html_group(tp_html *h, const tp_report *r, const tp_report_series *s);
/* The same name unescaped, without the values of dimension `skip` (TP_DIM_COUNT:
 * none); a new string (tp_xmalloc), escape it when writing. */
char *tp__html_group_raw(const tp_report *r, const tp_report_series *s, tp_report_dim skip);

/* The colour of the i-th group in the line charts and their legends. */
const char *tp__html_series_color(size_t i);

/* report_html_chart.c: each chart is one <section> holding one <svg> with a fixed
 * id, explicit width/height/viewBox and the plotted numbers in data-* attributes. */
void tp__html_chart_success(tp_html *h, const tp_report *r);  /* #chart-success */
void tp__html_chart_p99(tp_html *h, const tp_report *r);      /* #chart-p99 */
void tp__html_chart_versions(tp_html *h, const tp_report *r); /* #chart-versions */
void tp__html_chart_expiry(tp_html *h, const tp_report *r);   /* #chart-expiry */
void tp__html_chart_matrix(tp_html *h, const tp_report *r);   /* #chart-matrix */

#endif
