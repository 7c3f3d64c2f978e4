/* agent_metrics.h - the agent's own health as Prometheus text: a pure function of
 * a snapshot that agent.c takes on the main loop when a scrape arrives (the
 * workers' numbers through their tp_loop_stats), so the text is testable without
 * a running agent. docs/collector.md ("Metrics") lists the families.
 *
 * Every label value here is the agent's own (its configured id and region, loop
 * numbers, fixed class names): no target names, so the agent's scrape cannot be
 * grown by anyone. Per-target numbers are the collector's job. */
#ifndef TP_AGENT_METRICS_H
#define TP_AGENT_METRICS_H
#include <stdbool.h>
#include <stdint.h>

#include "loop_stats.h"
#include "pusher.h"
#include "tp_buf.h"
#include "tp_error.h"

/* Results by outcome: indexed by tp_outcome value (1..24; outcome.h), with one more
 * slot for successes that diverged from the emulated client. */
#define TP_AGENT_METRICS_OUTCOMES 32
#define TP_AGENT_METRICS_DIVERGENT 0 /* the slot no outcome uses */

typedef struct tp_agent_metrics_snapshot {
  const char *agent_id, *region, *version;
  const char *spool; /* tp_spool_describe */
  bool spool_durable;
  uint64_t spool_max_bytes;
  unsigned loops;
  const tp_loop_numbers *loop; /* loops entries */
  unsigned max_in_flight, max_pending; /* per loop */
  uint64_t results[TP_AGENT_METRICS_OUTCOMES];
  tp_pusher_stats push;
} tp_agent_metrics_snapshot;

/* Appends the text to out; TP_E_TOOBIG when out's cap is too small. */
tp_err tp_agent_metrics_render(const tp_agent_metrics_snapshot *snapshot, tp_buf *out);

#endif
