/* report.h - `tlsprobe-collector report`: aggregates stored results per
 * target x profile x region over a time window, and formats the result as an
 * aligned text table or JSON (docs/collector.md shows both).
 *
 * Per series: probes, successes, success rate (%), p50/p90/p99 handshake latency
 * over SUCCESSFUL probes only (nearest rank, see percentile.h; absent when there is
 * no success), mean loop lag over all probes, the most frequent non-ok error
 * class (ties: the lexicographically smallest name) and its category (who acts),
 * and the operator rates below. Thresholds crossed become warnings (text report);
 * docs/collector.md explains each threshold.
 *
 * "Successful" means EXACT successes throughout: a probe that succeeded only
 * through something the emulated real client never offers (a non-empty
 * emulation_divergence) is not that client's success. It is counted apart
 * (`divergent`) and feeds neither the success rate, nor the latencies, nor the
 * rates below. */
#ifndef TP_REPORT_H
#define TP_REPORT_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"
#include "tp_error.h"

/* Outcome values are small (outcome.h); counts are indexed by value. */
#define TP_REPORT_MAX_CLASS 64

/* Warning thresholds. Rates compare in integers (count * 1000 vs total * 999), so
 * a value on the threshold never flips with floating-point rounding. */
#define TP_REPORT_EXPIRY_WARN_DAYS 30       /* WARN at 30 and 14 days left */
#define TP_REPORT_EXPIRY_WARN2_DAYS 14
#define TP_REPORT_EXPIRY_CRIT_DAYS 7        /* CRIT at 7 and 3 days left, and expired */
#define TP_REPORT_EXPIRY_CRIT2_DAYS 3
#define TP_REPORT_OCSP_MAX_AGE_S 86400      /* staple older than 24 h */
#define TP_REPORT_MIN_SUCCESS_PERMILLE 999  /* success rate below 99.9 % */
#define TP_REPORT_MAX_HRR_PERCENT 5         /* HelloRetryRequest rate above 5 % */
#define TP_REPORT_MIN_RESUMPTION_PERCENT 80 /* resumption rate below 80 % */

/* A percentage that is undefined when its denominator is 0 (JSON null). */
typedef struct tp_report_rate {
  bool set;
  double percent; /* 0..100 */
} tp_report_rate;

typedef struct tp_report_series {
  char *target, *profile, *region; /* owned by the report */
  uint64_t probes;       /* successes + divergent + failures */
  uint64_t successes;    /* exact successes: ok and no emulation divergence */
  uint64_t divergent;    /* ok, but only through what the real client never offers */
  uint64_t emulation_checked; /* successes compared with the real client's offer */
  char *divergence_example;   /* latest divergent success's divergence, owned; NULL if none */
  uint64_t early_data_violations; /* non-safe requests processed as 0-RTT data (any outcome) */
  double success_rate;   /* percent of probes, 0..100 */
  bool have_latency;   /* false when successes == 0 */
  uint64_t p50_ns, p90_ns, p99_ns;
  double mean_loop_lag_ms;
  const char *top_error; /* static outcome name; NULL if every probe succeeded */
  uint64_t top_error_count;
  const char *top_error_category; /* "network", "server", "client", "policy", "internal" */
  /* Counts behind the rates; all over SUCCESSFUL probes (a failed probe did not
   * get far enough to resume, retry or send early data). */
  uint64_t hrr;                 /* saw a HelloRetryRequest */
  uint64_t resumption_probes;   /* mode resumption or early_data */
  uint64_t resumed;             /* ... of which resumed */
  uint64_t early_data_attempts; /* attempted early data */
  uint64_t early_data_accepts;  /* ... of which the server accepted it */
  tp_report_rate hrr_rate;               /* hrr / successes */
  tp_report_rate resumption_rate;        /* resumed / resumption_probes */
  tp_report_rate early_data_accept_rate; /* early_data_accepts / early_data_attempts */
  /* days_to_earliest_expiry of the latest result in the window that received a
   * chain (later results without one -- a refused connection -- do not hide it). */
  tp_store_opt min_days_to_expiry;
  tp_store_opt ocsp_max_age_seconds; /* over every stapled result in the window */
  uint64_t class_counts[TP_REPORT_MAX_CLASS]; /* by outcome value, ok included */
  bool have_facts;                            /* query.with_facts and a latest result exists */
  tp_store_facts facts;                       /* latest result's facts, owned by the report */
} tp_report_series;

/* An agent whose newest delivery is older than this is reported SILENT (CRIT). */
#define TP_REPORT_DEFAULT_SILENT_AFTER_MS (5 * 60 * 1000)
/* Agents not heard from for longer than this (and the window) are gone, not listed. */
#define TP_REPORT_FORGET_AGENT_MS (24 * 3600 * 1000)

/* Delivery per agent (all its spools): what arrived, what it reported lost, what is
 * missing (numbered but neither received nor reported lost: lost without a trace,
 * or still on its way), and whether it went silent. */
typedef struct tp_report_agent {
  char *agent_id; /* owned */
  uint64_t spools;
  uint64_t results;          /* stored, all time */
  uint64_t lost_total;       /* reported lost, all time */
  uint64_t lost_in_window;   /* reported lost, produced within the window */
  uint64_t lost_full, lost_error, lost_invalid, lost_too_old; /* lost_in_window by reason */
  int64_t lost_first_unix_ns, lost_last_unix_ns; /* when those were produced */
  uint64_t missing;
  int64_t last_received_unix_ns;
  int64_t last_started_unix_ns;
  bool silent;
} tp_report_agent;

typedef struct tp_report_query {
  int64_t now_unix_ns;    /* window end */
  uint64_t window_ms;     /* window length */
  const char *since_text; /* as the user typed it, for the text header ("1h") */
  const char *target;     /* NULL = all targets */
  bool with_facts;        /* also load each series' latest result (--target) */
  uint64_t silent_after_ms; /* 0 = TP_REPORT_DEFAULT_SILENT_AFTER_MS */
} tp_report_query;

typedef struct tp_report tp_report;

typedef enum { TP_REPORT_WARN, TP_REPORT_CRIT } tp_report_level;

/* One crossed threshold: "certificate expires in 12 days (threshold 14)". */
typedef struct tp_report_warning {
  size_t series; /* index for tp_report_series_at (tp_report_agent_at for agent warnings) */
  tp_report_level level;
  char *text; /* owned by the report */
} tp_report_warning;

/* Builds the report (free with tp_report_free). TP_E_STORE with err on failure. */
tp_err tp_report_build(tp_store *store, const tp_report_query *query, tp_report **out, char *err,
                       size_t errlen);
size_t tp_report_series_count(const tp_report *report);
const tp_report_series *tp_report_series_at(const tp_report *report, size_t i);
uint64_t tp_report_total_probes(const tp_report *report);
/* Warnings in series order, and per series: expiry, OCSP, success, emulation
 * divergence, HRR, resumption, early-data policy. */
size_t tp_report_warning_count(const tp_report *report);
const tp_report_warning *tp_report_warning_at(const tp_report *report, size_t i);
/* Agents in agent_id order, and their WARN/CRIT lines ("agent eu-1: silent for 12m"). */
size_t tp_report_agent_count(const tp_report *report);
const tp_report_agent *tp_report_agent_at(const tp_report *report, size_t i);
size_t tp_report_agent_warning_count(const tp_report *report);
const tp_report_warning *tp_report_agent_warning_at(const tp_report *report, size_t i);
/* The worst level among every warning (series and agents): TP_REPORT_CRIT,
 * TP_REPORT_WARN, or -1 when there is none (report --check). */
int tp_report_worst_level(const tp_report *report);
void tp_report_free(tp_report *report);

/* Formatting (report_format.c). TP_E_IO if writing fails. */
tp_err tp_report_write_text(const tp_report *report, FILE *out);
tp_err tp_report_write_json(const tp_report *report, FILE *out);

#endif
