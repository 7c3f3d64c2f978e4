/* report.h - `tlsprobe-collector report`: aggregates stored results over a time
 * window into groups (any of target, profile, region, agent, address family;
 * default target x profile x region), after glob filters, and renders views of
 * them as an aligned text table, JSON (versioned schema: docs/report.schema.json),
 * CSV or HTML. docs/collector.md shows every view.
 *
 * Per group: probes, successes, success rate (a fraction 0..1), nearest-rank
 * p50/p90/p99/p99.9 of handshake, connect and total time over SUCCESSFUL probes
 * only (percentile.h; absent when there is no success), loop-lag mean and p99 over
 * all probes, counts per error class (with its owner and the latest detail), the
 * negotiated version / cipher / group distribution, and the operator rates below.
 * Thresholds crossed become warnings; docs/collector.md explains each one.
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
#define TP_REPORT_EXPIRY_WARN_DAYS 30 /* WARN at 30 and 14 days left */
#define TP_REPORT_EXPIRY_WARN2_DAYS 14
#define TP_REPORT_EXPIRY_CRIT_DAYS 7 /* CRIT at 7 and 3 days left, and expired */
#define TP_REPORT_EXPIRY_CRIT2_DAYS 3
#define TP_REPORT_OCSP_MAX_AGE_S 86400      /* staple older than 24 h */
#define TP_REPORT_MIN_SUCCESS_PERMILLE 999  /* success rate below 99.9 % */
#define TP_REPORT_MAX_HRR_PERCENT 5         /* HelloRetryRequest rate above 5 % */
#define TP_REPORT_MAX_SATURATED_PERCENT 1   /* results taken under saturation: 1 % or more */
#define TP_REPORT_MIN_RESUMPTION_PERCENT 80 /* resumption rate below 80 % */
#define TP_REPORT_TICKET_SYNC_PERCENT 50    /* ... below 50 %: ticket keys not shared */

/* The dimensions a report groups and filters by. */
typedef enum {
  TP_DIM_TARGET,
  TP_DIM_PROFILE,
  TP_DIM_REGION,
  TP_DIM_AGENT,
  TP_DIM_FAMILY, /* address family: ipv4 / ipv6 */
  TP_DIM_COUNT
} tp_report_dim;

/* "target", "profile", "region", "agent", "family". */
const char *tp_report_dim_name(tp_report_dim dim);
bool tp_report_dim_from_name(const char *name, tp_report_dim *out);

/* A fraction that is undefined when its denominator is 0 (JSON null). */
typedef struct tp_report_rate {
  bool set;
  double fraction; /* 0..1 */
} tp_report_rate;

/* Nearest-rank percentiles of one latency over a group's successes. */
typedef struct tp_report_latency {
  bool set; /* false without a success */
  uint64_t p50_ns, p90_ns, p99_ns, p999_ns;
} tp_report_latency;

/* One value of a distribution ("TLS1.3": 120). */
typedef struct tp_report_count {
  char *name; /* owned; untrusted agent text */
  uint64_t count;
} tp_report_count;

typedef struct tp_report_dist {
  tp_report_count *items; /* by count descending, then name */
  size_t n;
  size_t alloc;
} tp_report_dist;

/* One time bucket of a group's series (report target, html). */
typedef struct tp_report_bucket {
  int64_t start_unix_ns;
  uint64_t probes, successes;
  bool have_p99;
  uint64_t p99_ns; /* handshake, successes of this bucket */
} tp_report_bucket;

typedef struct tp_report_series {
  /* The group's key: the value of each dimension in query.by, NULL for the others
   * (owned by the report). target/profile/region alias key[] ("" when not grouped). */
  char *key[TP_DIM_COUNT];
  const char *target, *profile, *region;
  uint64_t probes;            /* successes + divergent + failures */
  uint64_t successes;         /* exact successes: ok and no emulation divergence */
  uint64_t divergent;         /* ok, but only through what the real client never offers */
  uint64_t emulation_checked; /* successes compared with the real client's offer */
  char *divergence_example;   /* latest divergent success's divergence, owned; NULL if none */
  int64_t divergence_example_ns;
  uint64_t early_data_violations; /* non-safe requests processed as 0-RTT data (any outcome) */
  tp_report_rate success_rate;    /* successes / probes */
  tp_report_latency handshake, connect, total;
  double mean_loop_lag_ms;
  uint64_t loop_lag_p99_ns; /* over all probes: the agent's own honesty */
  /* Results the agent marked as taken under saturation (any outcome), and of them the
   * successes whose latencies the percentiles leave out (0 with include_saturated). */
  uint64_t saturated, saturated_excluded;
  const char *top_error;    /* static outcome name; NULL if every probe succeeded */
  uint64_t top_error_count;
  const char *top_error_category; /* "network", "server", "client", "policy", "internal" */
  /* Counts behind the rates; all over SUCCESSFUL probes (a failed probe did not
   * get far enough to resume, retry or send early data). */
  uint64_t hrr;                          /* saw a HelloRetryRequest */
  uint64_t resumption_probes;            /* mode resumption or early_data */
  uint64_t resumed;                      /* ... of which resumed */
  uint64_t early_data_attempts;          /* attempted early data */
  uint64_t early_data_accepts;           /* ... of which the server accepted it */
  uint64_t ocsp_stapled;                 /* got an OCSP staple */
  tp_report_rate hrr_rate;               /* hrr / successes */
  tp_report_rate resumption_rate;        /* resumed / resumption_probes */
  tp_report_rate early_data_accept_rate; /* early_data_accepts / early_data_attempts */
  tp_report_rate ocsp_staple_rate;       /* ocsp_stapled / successes */
  /* days_to_earliest_expiry of the latest result in the window that received a
   * chain (later results without one -- a refused connection -- do not hide it). */
  tp_store_opt min_days_to_expiry;
  int64_t expiry_seen_ns;
  tp_store_opt ocsp_max_age_seconds;          /* over every stapled result in the window */
  uint64_t class_counts[TP_REPORT_MAX_CLASS]; /* by outcome value, ok included */
  char *class_example[TP_REPORT_MAX_CLASS];   /* latest error detail per class, owned */
  int64_t class_example_ns[TP_REPORT_MAX_CLASS];
  tp_report_dist versions, ciphers, groups; /* negotiated, over successes */
  tp_report_bucket *buckets;                /* query.buckets of them, or NULL */
  bool have_facts;                          /* query.with_facts and a latest result exists */
  tp_store_facts facts;                     /* latest result's facts, owned by the report */
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
  uint64_t results;        /* stored, all time */
  uint64_t lost_total;     /* reported lost, all time */
  uint64_t lost_in_window; /* reported lost, produced within the window */
  uint64_t lost_full, lost_error, lost_invalid, lost_too_old; /* lost_in_window by reason */
  int64_t lost_first_unix_ns, lost_last_unix_ns;              /* when those were produced */
  uint64_t missing;
  int64_t last_received_unix_ns;
  int64_t last_started_unix_ns;
  bool silent;
} tp_report_agent;

/* One certificate of a latest chain (report expiry): identical certificates seen
 * by several series of a target are one entry. */
typedef struct tp_report_cert {
  char *target, *subject, *issuer; /* owned */
  uint32_t position;               /* 0 = leaf */
  int64_t not_after_unix;
  int64_t days_left; /* floor((not_after - window end) / 1 day) */
  uint64_t series;   /* how many series' latest chain holds it */
} tp_report_cert;

#define TP_REPORT_MAX_BUCKETS 1000

/* Where the numbers come from: raw rows (exact nearest-rank percentiles) or the
 * per-minute/per-hour rollups (percentiles within 1 % from merged sketches; no
 * negotiated distributions, error details or chains). auto: raw for windows up to
 * 6 h that raw rows still cover, rollups otherwise. */
typedef enum { TP_REPORT_SOURCE_AUTO, TP_REPORT_SOURCE_RAW, TP_REPORT_SOURCE_ROLLUP } tp_report_source;

typedef struct tp_report_query {
  int64_t now_unix_ns;   /* the clock: silence is measured against it */
  int64_t since_unix_ns; /* window [since, until) */
  int64_t until_unix_ns;
  const char *since_text;             /* as the user typed them, for headers ("1h") */
  const char *until_text;             /* NULL = now */
  tp_report_dim by[TP_DIM_COUNT];     /* grouping, in this order */
  size_t n_by;                        /* 0 = target, profile, region */
  const char *glob[TP_DIM_COUNT];     /* fnmatch(3) patterns, NULL = any */
  bool with_facts;                    /* also load each series' latest result */
  bool with_chains;                   /* also load the latest chains (report expiry) */
  bool skip_delivery;                 /* no per-agent delivery section */
  size_t buckets;                     /* > 0: per-group time series of that many buckets */
  uint64_t silent_after_ms;           /* 0 = TP_REPORT_DEFAULT_SILENT_AFTER_MS */
  bool with_slo;                      /* burn rates over the 3 days up to until */
  /* Count the latencies of results taken under saturation too (raw rows only:
   * rollup sketches never hold them). */
  bool include_saturated;
  tp_report_source source;
  const struct tp_collector_slo *slo; /* objectives; NULL = 99.9 %, quorum 1 */
} tp_report_query;

typedef struct tp_report tp_report;

typedef enum { TP_REPORT_WARN, TP_REPORT_CRIT } tp_report_level;

/* One crossed threshold: "certificate expires in 12 days (threshold 14)". */
typedef struct tp_report_warning {
  size_t series; /* index for tp_report_series_at (tp_report_agent_at for agent warnings) */
  tp_report_level level;
  char *text; /* owned by the report, terminal-safe */
} tp_report_warning;

/* Builds the report (free with tp_report_free). TP_E_STORE with err on failure. */
tp_err tp_report_build(tp_store *store, const tp_report_query *query, tp_report **out, char *err,
                       size_t errlen);
const tp_report_query *tp_report_query_of(const tp_report *report);
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
/* Certificates of the latest chains, soonest to expire first (query.with_chains). */
size_t tp_report_cert_count(const tp_report *report);
const tp_report_cert *tp_report_cert_at(const tp_report *report, size_t i);
/* SLO burn-rate rows (query.with_slo) and their WARN (ticket, or paging in fewer
 * regions than the quorum) and CRIT (page) lines. */
size_t tp_report_slo_count(const tp_report *report);
const struct tp_report_slo_row *tp_report_slo_at(const tp_report *report, size_t i);
size_t tp_report_slo_warning_count(const tp_report *report);
const tp_report_warning *tp_report_slo_warning_at(const tp_report *report, size_t i);
/* True when the numbers came from rollups (approximate percentiles); then how many
 * stored results were not rolled up yet (in no rollup: the next maintenance pass). */
bool tp_report_from_rollups(const tp_report *report);
uint64_t tp_report_not_rolled_up(const tp_report *report);
/* The worst level among every warning (series, agents and SLOs): TP_REPORT_CRIT,
 * TP_REPORT_WARN, or -1 when there is none (report --check). */
int tp_report_worst_level(const tp_report *report);
void tp_report_free(tp_report *report);

/* Severity of a certificate with `days` left: CRIT at <= 7 (and expired), WARN at
 * <= 30, -1 above. *threshold gets the tightest of 3/7/14/30 crossed (0: none). */
int tp_report_expiry_level(int64_t days, int *threshold);

#endif
