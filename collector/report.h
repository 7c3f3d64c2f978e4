/* report.h - `tlsprobe-collector report`: aggregates stored results per
 * target x profile x region over a time window, and formats the result as an
 * aligned text table or JSON (docs/collector.md shows both).
 *
 * Per series: probes, successes, success rate (%), p50/p90/p99 handshake latency
 * over SUCCESSFUL probes only (nearest rank, see percentile.h; absent when there is
 * no success), mean loop lag over all probes, and the most frequent non-ok error
 * class (ties: the lexicographically smallest name). */
#ifndef TP_REPORT_H
#define TP_REPORT_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"
#include "tp_error.h"

/* Outcome values are small (outcome.h); counts are indexed by value. */
#define TP_REPORT_MAX_CLASS 64

typedef struct tp_report_series {
  char *target, *profile, *region; /* owned by the report */
  uint64_t probes;
  uint64_t successes;
  double success_rate; /* percent, 0..100 */
  bool have_latency;   /* false when successes == 0 */
  uint64_t p50_ns, p90_ns, p99_ns;
  double mean_loop_lag_ms;
  const char *top_error; /* static outcome name; NULL if every probe succeeded */
  uint64_t top_error_count;
  uint64_t class_counts[TP_REPORT_MAX_CLASS]; /* by outcome value, ok included */
  bool have_facts;                            /* query.with_facts and a latest result exists */
  tp_store_facts facts;                       /* latest result's facts, owned by the report */
} tp_report_series;

typedef struct tp_report_query {
  int64_t now_unix_ns;    /* window end */
  uint64_t window_ms;     /* window length */
  const char *since_text; /* as the user typed it, for the text header ("1h") */
  const char *target;     /* NULL = all targets */
  bool with_facts;        /* also load each series' latest result (--target) */
} tp_report_query;

typedef struct tp_report tp_report;

/* Builds the report (free with tp_report_free). TP_E_STORE with err on failure. */
tp_err tp_report_build(tp_store *store, const tp_report_query *query, tp_report **out, char *err,
                       size_t errlen);
size_t tp_report_series_count(const tp_report *report);
const tp_report_series *tp_report_series_at(const tp_report *report, size_t i);
uint64_t tp_report_total_probes(const tp_report *report);
void tp_report_free(tp_report *report);

/* Formatting (report_format.c). TP_E_IO if writing fails. */
tp_err tp_report_write_text(const tp_report *report, FILE *out);
tp_err tp_report_write_json(const tp_report *report, FILE *out);

#endif
