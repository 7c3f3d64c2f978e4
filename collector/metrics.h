/* metrics.h - the collector's Prometheus metrics: what agents' results say about
 * the targets (probes by result, handshake latency, HelloRetryRequest, resumption,
 * certificate expiry, OCSP staple age), about the agents (last seen, results they
 * reported lost) and about the collector itself (answers, duplicates, the series
 * cap). Fed by ingest.c once the store has committed a batch -- only the results
 * that batch newly stored count, so a re-send never counts twice -- and rendered
 * in the text exposition format by metrics_http.c. docs/collector.md ("Metrics")
 * lists every family.
 *
 * Counters live in memory and start from zero when the collector starts
 * (Prometheus's rate() handles resets); the agents' last-seen gauges are seeded
 * from the store (tp_metrics_seed) so a restart does not make every agent look
 * silent. A gauge whose newest probe (or delivery) is older than a day is not
 * rendered: a decommissioned target's certificate must not alert for ever, and
 * an agent gone for a day is decommissioned, not silent (as in the report).
 *
 * Labels are bounded: no error details, only names the wire contract bounds
 * (target, profile, region, agent, error class, chain position, drop reason), and
 * at most max_series label sets in all; a result that would need one more is
 * still counted in the collector's own totals, and the refusal is counted in
 * tlsprobe_collector_metrics_series_refused_total{family}.
 *
 * Threading: ingest (the ingest MHD thread) and scrapes (the metrics thread) take
 * one mutex; every function may be called from any thread. */
#ifndef TP_METRICS_H
#define TP_METRICS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tlsprobe.pb-c.h"
#include "tp_buf.h"
#include "tp_error.h"

typedef struct tp_metrics tp_metrics;

#define TP_METRICS_DEFAULT_MAX_SERIES 50000
#define TP_METRICS_MIN_MAX_SERIES 100
#define TP_METRICS_MAX_MAX_SERIES 10000000
/* Gauges older than this are not rendered (see above). */
#define TP_METRICS_GAUGE_MAX_AGE_NS (INT64_C(24) * 3600 * 1000000000)

/* max_series: label sets across the per-target and per-agent families (a histogram
 * is one label set). Free with tp_metrics_free. */
tp_metrics *tp_metrics_new(size_t max_series);
void tp_metrics_free(tp_metrics *metrics);

/* A batch the store committed. result_new[i] / drop_new[i]: whether results[i] /
 * drops[i] was stored by this batch (false: stored before, a re-send). */
void tp_metrics_on_stored(tp_metrics *metrics, const Tlsprobe__V1__ResultBatch *batch,
                          const bool *result_new, const bool *drop_new, int64_t received_unix_ns);
/* A batch that decoded but was not stored: refused (400, 403) or failed (503). */
void tp_metrics_on_not_stored(tp_metrics *metrics, size_t results, int http_status);
/* Every answer to POST /v1/results, by HTTP status (whatever refused it). */
void tp_metrics_on_answer(tp_metrics *metrics, unsigned http_status);

/* Sets the agents' last-seen gauges from the store's delivery counters. Call before
 * ingest starts (the store is single-threaded). */
tp_err tp_metrics_seed(tp_metrics *metrics, tp_store *store, char *err, size_t errlen);

/* Appends the text exposition of every family to out. TP_E_TOOBIG when out's cap
 * is too small (out then holds a truncated text: do not serve it). */
tp_err tp_metrics_render(tp_metrics *metrics, tp_buf *out);
/* tp_metrics_render as if the wall clock said now_unix_ns (tests). */
tp_err tp_metrics_render_at(tp_metrics *metrics, int64_t now_unix_ns, tp_buf *out);
/* The objectives behind tlsprobe_slo_objective_ratio / _quorum_regions (borrowed, must
 * outlive the registry; NULL = the built-in 99.9 %, quorum 1). Set before ingest. */
struct tp_collector_slo; /* config.h (which includes this header) */
void tp_metrics_set_slo(tp_metrics *metrics, const struct tp_collector_slo *slo);
/* Label sets in use (for logs and tests). */
size_t tp_metrics_series(tp_metrics *metrics);

#endif
