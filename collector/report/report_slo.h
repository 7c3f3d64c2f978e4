/* report_slo.h - service-level objectives as multi-window burn-rate alerts (Google
 * SRE workbook, "Alerting on SLOs", method 6), per target and region:
 *
 *   burn rate = (bad events / events) / (1 - objective) over a window;
 *   PAGE   when the 1 h and 5 m burn rates both reach 14.4 (2 % of a 30-day budget
 *          in an hour), or the 6 h and 30 m rates both reach 6 (5 % in 6 h);
 *   TICKET when the 3 d and 6 h rates both reach 1 (10 % in 3 days).
 *
 * Availability: events are probes (emulation-divergent successes left out: they say
 * nothing about the server), bad events failures. Latency (optional p99 bound):
 * events are successes, bad ones slower than the bound, objective 99 %.
 * A target pages (CRIT) only when at least `quorum` regions page: one region's bad
 * path is a WARN, not a page, when the objective asks for a quorum of 2. */
#ifndef TP_REPORT_SLO_H
#define TP_REPORT_SLO_H
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef enum {
  TP_SLO_W5M,
  TP_SLO_W30M,
  TP_SLO_W1H,
  TP_SLO_W6H,
  TP_SLO_W3D,
  TP_SLO_WINDOWS
} tp_slo_window;

/* "5m", "30m", "1h", "6h", "3d". */
const char *tp_slo_window_name(tp_slo_window w);
int64_t tp_slo_window_ns(tp_slo_window w);

typedef enum { TP_SLO_OK, TP_SLO_TICKET, TP_SLO_PAGE } tp_slo_state;
const char *tp_slo_state_name(tp_slo_state s); /* "ok", "ticket", "page" */

typedef struct tp_slo_counts {
  uint64_t events, bad;
} tp_slo_counts;

/* One target x region. */
typedef struct tp_report_slo_row {
  char *target, *region; /* owned */
  double objective;      /* success objective, 0..1 */
  uint64_t p99_ms;       /* latency bound, 0 = none */
  unsigned quorum;
  tp_slo_counts availability[TP_SLO_WINDOWS];
  tp_slo_counts latency[TP_SLO_WINDOWS];
  tp_slo_state availability_state, latency_state;
} tp_report_slo_row;

/* The latency objective's budget: 1 % of successes may be slower than the bound. */
#define TP_SLO_LATENCY_BUDGET 0.01

/* Burn rate of counts against a budget (1 - objective); false without events. */
bool tp_slo_burn_rate(const tp_slo_counts *c, double budget, double *out);
/* The state of one objective's windows (burn thresholds above). */
tp_slo_state tp_slo_evaluate(const tp_slo_counts windows[TP_SLO_WINDOWS], double budget);

#endif
