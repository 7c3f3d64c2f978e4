/* report_rollup.c - see report_rollup.h. */
#include "report_rollup.h"

static int64_t floor_to(int64_t t, int64_t span) { return t - (t % span + span) % span; }

static int64_t ceil_to(int64_t t, int64_t span) {
  int64_t f = floor_to(t, span);
  return f == t ? t : f + span;
}

tp_store_rollup_span tp__report_rollup_span_for(int64_t since, int64_t until, size_t buckets) {
  if (buckets == 0)
    return TP_STORE_ROLLUP_DAY;
  int64_t width = (until - since) / (int64_t)buckets;
  if (width >= TP_REPORT_ROWS_PER_BUCKET * TP_STORE_ROLLUP_DAY_NS)
    return TP_STORE_ROLLUP_DAY;
  if (width >= TP_REPORT_ROWS_PER_BUCKET * TP_STORE_ROLLUP_HOUR_NS)
    return TP_STORE_ROLLUP_HOUR;
  return TP_STORE_ROLLUP_MINUTE;
}

/* [since, until) from rows of span and finer: the whole spans inside from span's rows,
 * each ragged edge from the next finer span's, down to minutes. */
static tp_err scan_span(tp_store *store, int64_t since, int64_t until, tp_store_rollup_span span,
                        const tp_store_rollup_filter *filter, tp_store_rollup_fn fn, void *ctx,
                        char *err, size_t errlen) {
  if (span == TP_STORE_ROLLUP_MINUTE)
    return tp_store_scan_rollups(store, TP_STORE_ROLLUP_MINUTE, since, until, filter,
                                 TP_STORE_ROLLUPS_BY_START, fn, ctx, err, errlen);
  const tp_store_rollup_span finer = span == TP_STORE_ROLLUP_DAY ? TP_STORE_ROLLUP_HOUR
                                                                  : TP_STORE_ROLLUP_MINUTE;
  const int64_t ns = tp_store_rollup_span_ns(span);
  int64_t first = ceil_to(since, ns), last = floor_to(until, ns);
  if (first >= last) /* no whole span inside */
    return scan_span(store, since, until, finer, filter, fn, ctx, err, errlen);
  tp_err rc = TP_E_OK;
  if (since < first)
    rc = scan_span(store, since, first, finer, filter, fn, ctx, err, errlen);
  if (rc == TP_E_OK)
    rc = tp_store_scan_rollups(store, span, first, last, filter, TP_STORE_ROLLUPS_BY_START, fn,
                               ctx, err, errlen);
  if (rc == TP_E_OK && last < until)
    rc = scan_span(store, last, until, finer, filter, fn, ctx, err, errlen);
  return rc;
}

tp_err tp__report_scan_rollups(tp_store *store, int64_t since, int64_t until,
                               tp_store_rollup_span coarsest, const tp_store_rollup_filter *filter,
                               tp_store_rollup_fn fn, void *ctx, char *err, size_t errlen) {
  if (since >= until)
    return TP_E_OK;
  return scan_span(store, since, until, coarsest, filter, fn, ctx, err, errlen);
}
