/* report_rollup.h - reading rollups (store.h: per minute, hour and day) for windows
 * raw rows should not serve: longer than TP_REPORT_RAW_MAX_WINDOW_NS (scanning every
 * raw row of a long window is what makes a report slow), or reaching back past the raw
 * retention. A window is cut into whole days read from day rows, the whole hours at its
 * edges from hour rows and the partial hours from minute rows, so it is exact to the
 * minute and a 30-day window reads ~30 + 2 x 23 + 2 x 59 rows per group. */
#ifndef TP_REPORT_ROLLUP_H
#define TP_REPORT_ROLLUP_H
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* auto: raw rows up to this window length (6 h: a few hundred thousand rows at most
 * on a busy collector), rollups beyond. */
#define TP_REPORT_RAW_MAX_WINDOW_NS (6 * INT64_C(3600000000000))

/* A time series attributes each rollup row to the bucket it starts in, so a bucket
 * must be this many rows of a span wide for that span to serve it (a row across a
 * bucket's edge then moves at most a quarter of a bucket). */
#define TP_REPORT_ROWS_PER_BUCKET 4

/* The coarsest span that may serve [since, until) cut into `buckets` (0: no time
 * series, days). */
tp_store_rollup_span tp__report_rollup_span_for(int64_t since, int64_t until, size_t buckets);

/* Calls fn for every rollup row of [since, until) -- whole spans of `coarsest` in the
 * middle, finer ones at the edges -- with the query's glob filters, in start order
 * within each piece (groups interleaved: callers aggregate by hashing). */
tp_err tp__report_scan_rollups(tp_store *store, int64_t since, int64_t until,
                               tp_store_rollup_span coarsest, const tp_store_rollup_filter *filter,
                               tp_store_rollup_fn fn, void *ctx, char *err, size_t errlen);

#endif
