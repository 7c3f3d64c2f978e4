/* report_rollup.h - reading per-minute / per-hour rollups (store.h) for windows raw
 * rows should not serve: longer than TP_REPORT_RAW_MAX_WINDOW_NS (scanning every raw
 * row of a long window is what makes a report slow), or reaching back past the raw
 * retention. A window is cut into whole hours read from hour rows and the partial
 * hours at its edges read from minute rows, so it is exact to the minute. */
#ifndef TP_REPORT_ROLLUP_H
#define TP_REPORT_ROLLUP_H
#include <stdint.h>

#include "store.h"

/* auto: raw rows up to this window length (6 h: a few hundred thousand rows at most
 * on a busy collector), rollups beyond. */
#define TP_REPORT_RAW_MAX_WINDOW_NS (6 * INT64_C(3600000000000))

/* Calls fn for every rollup row of [since, until), hours in the middle and minutes at
 * the edges, with the query's glob filters, in start order (groups interleaved: callers
 * aggregate by hashing). */
tp_err tp__report_scan_rollups(tp_store *store, int64_t since, int64_t until,
                               const tp_store_rollup_filter *filter, tp_store_rollup_fn fn,
                               void *ctx, char *err, size_t errlen);

#endif
