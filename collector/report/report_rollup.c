/* report_rollup.c - see report_rollup.h. */
#include "report_rollup.h"

static int64_t floor_to(int64_t t, int64_t span) { return t - (t % span + span) % span; }

tp_err tp__report_scan_rollups(tp_store *store, int64_t since, int64_t until,
                               const tp_store_rollup_filter *filter, tp_store_rollup_fn fn,
                               void *ctx, char *err, size_t errlen) {
  const int64_t hour = TP_STORE_ROLLUP_HOUR_NS;
  int64_t first_hour = floor_to(since, hour) == since ? since : floor_to(since, hour) + hour;
  int64_t last_hour = floor_to(until, hour);
  if (first_hour >= last_hour) /* no whole hour inside: minutes throughout */
    return tp_store_scan_rollups(store, TP_STORE_ROLLUP_MINUTE, since, until, filter,
                                 TP_STORE_ROLLUPS_BY_START, fn, ctx, err, errlen);
  tp_err rc = TP_E_OK;
  if (since < first_hour)
    rc = tp_store_scan_rollups(store, TP_STORE_ROLLUP_MINUTE, since, first_hour, filter,
                               TP_STORE_ROLLUPS_BY_START, fn, ctx, err, errlen);
  if (rc == TP_E_OK)
    rc = tp_store_scan_rollups(store, TP_STORE_ROLLUP_HOUR, first_hour, last_hour, filter,
                               TP_STORE_ROLLUPS_BY_START, fn, ctx, err, errlen);
  if (rc == TP_E_OK && last_hour < until)
    rc = tp_store_scan_rollups(store, TP_STORE_ROLLUP_MINUTE, last_hour, until, filter,
                               TP_STORE_ROLLUPS_BY_START, fn, ctx, err, errlen);
  return rc;
}
