/* report.c - streaming aggregation: the store returns rows ordered by series, so
 * only the current series' successful latencies are held in memory at a time. */
#include "report_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"
#include "percentile.h"
#include "tp_mem.h"

/* Aggregation state while scanning. */
typedef struct agg {
  tp_report *report;
  tp_report_series *cur; /* series being filled, NULL before the first row */
  uint64_t *latencies;   /* successful handshake_ns of cur */
  size_t n_lat, alloc_lat;
  double lag_sum_ns;
  char *err;
  size_t errlen;
} agg;

static bool same_series(const tp_report_series *s, const tp_store_row *row) {
  return strcmp(s->target, row->target) == 0 && strcmp(s->profile, row->profile) == 0 &&
         strcmp(s->region, row->region) == 0;
}

/* Top error: highest count, ties to the smallest name; "ok" never counts. */
static void pick_top_error(tp_report_series *s) {
  for (int cls = 0; cls < TP_REPORT_MAX_CLASS; cls++) {
    uint64_t n = s->class_counts[cls];
    const char *name = tp_outcome_name(cls);
    if (n == 0 || name == NULL || cls == TP_OUTCOME_OK)
      continue;
    if (n > s->top_error_count || (n == s->top_error_count && strcmp(name, s->top_error) < 0)) {
      s->top_error = name;
      s->top_error_count = n;
    }
  }
}

static tp_report_rate rate(uint64_t num, uint64_t den) {
  if (den == 0)
    return (tp_report_rate){.set = false};
  return (tp_report_rate){.set = true, .percent = 100.0 * (double)num / (double)den};
}

static void finish_series(agg *a) {
  tp_report_series *s = a->cur;
  if (s == NULL)
    return;
  s->success_rate = 100.0 * (double)s->successes / (double)s->probes;
  s->mean_loop_lag_ms = a->lag_sum_ns / (double)s->probes / 1e6;
  tp_percentile_sort(a->latencies, a->n_lat);
  s->have_latency = tp_percentile_sorted(a->latencies, a->n_lat, 50, &s->p50_ns) &&
                    tp_percentile_sorted(a->latencies, a->n_lat, 90, &s->p90_ns) &&
                    tp_percentile_sorted(a->latencies, a->n_lat, 99, &s->p99_ns);
  pick_top_error(s);
  tp_outcome top;
  if (s->top_error != NULL && tp_outcome_from_name(s->top_error, &top))
    s->top_error_category = tp_outcome_category_name(tp_outcome_category_of(top));
  s->hrr_rate = rate(s->hrr, s->successes);
  s->resumption_rate = rate(s->resumed, s->resumption_probes);
  s->early_data_accept_rate = rate(s->early_data_accepts, s->early_data_attempts);
  a->report->total_probes += s->probes;
  a->cur = NULL;
  a->n_lat = 0;
  a->lag_sum_ns = 0;
}

static tp_report_series *start_series(tp_report *r, const tp_store_row *row) {
  if (r->n_series == r->alloc_series) {
    r->alloc_series = r->alloc_series ? 2 * r->alloc_series : 16;
    r->series = tp_xrealloc(r->series, r->alloc_series * sizeof(r->series[0]));
  }
  tp_report_series *s = &r->series[r->n_series++];
  memset(s, 0, sizeof(*s));
  s->target = tp_xstrdup(row->target);
  s->profile = tp_xstrdup(row->profile);
  s->region = tp_xstrdup(row->region);
  return s;
}

static tp_err on_row(const tp_store_row *row, void *ctx) {
  agg *a = ctx;
  tp_outcome cls;
  if (!tp_outcome_from_name(row->error_class, &cls) || (int)cls >= TP_REPORT_MAX_CLASS) {
    snprintf(a->err, a->errlen, "database holds unknown error class \"%s\"", row->error_class);
    return TP_E_STORE;
  }
  if (a->cur == NULL || !same_series(a->cur, row)) {
    finish_series(a);
    a->cur = start_series(a->report, row);
  }
  tp_report_series *s = a->cur;
  s->probes++;
  s->class_counts[cls]++;
  a->lag_sum_ns += (double)row->loop_lag_ns;
  /* Rows arrive oldest first within a series: the last chain seen is the latest. */
  if (row->days_to_earliest_expiry.set)
    s->min_days_to_expiry = row->days_to_earliest_expiry;
  if (row->ocsp_age_seconds.set &&
      (!s->ocsp_max_age_seconds.set || row->ocsp_age_seconds.v > s->ocsp_max_age_seconds.v))
    s->ocsp_max_age_seconds = row->ocsp_age_seconds;
  /* A non-safe request processed as 0-RTT data is a server fact whatever the
   * probe's outcome or emulation: count it on every row. */
  s->early_data_violations += row->early_data_policy_violation;
  const char *divergence = row->emulation_divergence ? row->emulation_divergence : "";
  if (row->ok && divergence[0] != '\0') {
    /* Not the emulated client's success: counted apart, nothing else. Rows come
     * oldest first, so the example ends as the latest divergence. */
    s->divergent++;
    if (s->divergence_example == NULL ||
        strcmp(s->divergence_example, divergence) != 0) {
      free(s->divergence_example);
      s->divergence_example = tp_xstrdup(divergence);
    }
  } else if (row->ok) {
    s->successes++;
    s->emulation_checked += row->emulation_checked;
    s->hrr += row->hello_retry_request;
    if (strcmp(row->mode, "resumption") == 0 || strcmp(row->mode, "early_data") == 0) {
      s->resumption_probes++;
      s->resumed += row->resumed;
    }
    if (row->early_data_attempted) {
      s->early_data_attempts++;
      s->early_data_accepts += row->early_data_accepted;
    }
    if (a->n_lat == a->alloc_lat) {
      a->alloc_lat = a->alloc_lat ? 2 * a->alloc_lat : 256;
      a->latencies = tp_xrealloc(a->latencies, a->alloc_lat * sizeof(a->latencies[0]));
    }
    a->latencies[a->n_lat++] = row->handshake_ns;
  }
  return TP_E_OK;
}

static int64_t window_start(const tp_report_query *q) {
  /* A window longer than the epoch simply means "everything". */
  if (q->window_ms > (uint64_t)(q->now_unix_ns / 1000000))
    return 0;
  return q->now_unix_ns - (int64_t)q->window_ms * 1000000;
}

static tp_err load_facts(tp_store *store, tp_report *r, int64_t since, char *err, size_t errlen) {
  for (size_t i = 0; i < r->n_series; i++) {
    tp_report_series *s = &r->series[i];
    tp_err rc =
        tp_store_latest(store, s->target, s->profile, s->region, since, &s->facts, err, errlen);
    if (rc == TP_E_NOTFOUND)
      continue;
    if (rc != TP_E_OK)
      return rc;
    s->have_facts = true;
  }
  return TP_E_OK;
}

/* ---- warnings ------------------------------------------------------------------ */

static void warn(tp_report *r, size_t series, tp_report_level level, char *text) {
  if (r->n_warnings == r->alloc_warnings) {
    r->alloc_warnings = r->alloc_warnings ? 2 * r->alloc_warnings : 16;
    r->warnings = tp_xrealloc(r->warnings, r->alloc_warnings * sizeof(r->warnings[0]));
  }
  r->warnings[r->n_warnings++] = (tp_report_warning){.series = series, .level = level, .text = text};
}

/* The tightest expiry threshold crossed: 3, 7, 14 or 30 days; 0 if none. */
static int expiry_threshold(int64_t days) {
  static const int thresholds[] = {TP_REPORT_EXPIRY_CRIT2_DAYS, TP_REPORT_EXPIRY_CRIT_DAYS,
                                   TP_REPORT_EXPIRY_WARN2_DAYS, TP_REPORT_EXPIRY_WARN_DAYS};
  for (size_t i = 0; i < sizeof(thresholds) / sizeof(thresholds[0]); i++)
    if (days <= thresholds[i])
      return thresholds[i];
  return 0;
}

static void series_warnings(tp_report *r, size_t i) {
  const tp_report_series *s = &r->series[i];
  if (s->min_days_to_expiry.set) {
    int64_t days = s->min_days_to_expiry.v;
    int t = expiry_threshold(days);
    tp_report_level level = t <= TP_REPORT_EXPIRY_CRIT_DAYS ? TP_REPORT_CRIT : TP_REPORT_WARN;
    if (days < 0)
      warn(r, i, TP_REPORT_CRIT,
           tp_xasprintf("certificate expired %" PRId64 " days ago", -days));
    else if (t != 0)
      warn(r, i, level,
           tp_xasprintf("certificate expires in %" PRId64 " days (threshold %d)", days, t));
  }
  if (s->ocsp_max_age_seconds.set && s->ocsp_max_age_seconds.v > TP_REPORT_OCSP_MAX_AGE_S)
    warn(r, i, TP_REPORT_WARN,
         tp_xasprintf("OCSP staple is %.1f h old (threshold %d h)",
                      (double)s->ocsp_max_age_seconds.v / 3600.0, TP_REPORT_OCSP_MAX_AGE_S / 3600));
  if (s->successes * 1000 < s->probes * TP_REPORT_MIN_SUCCESS_PERMILLE)
    warn(r, i, TP_REPORT_WARN,
         tp_xasprintf("success rate %.2f%% (threshold %.1f%%)", s->success_rate,
                      TP_REPORT_MIN_SUCCESS_PERMILLE / 10.0));
  if (s->divergent > 0) {
    char *example = tp__report_repr(s->divergence_example);
    warn(r, i, TP_REPORT_WARN,
         tp_xasprintf("%" PRIu64 " success%s only through suites/groups the real client never"
                      " offers (counted apart from OK); latest: \"%s\"",
                      s->divergent, s->divergent == 1 ? "" : "es", example));
    free(example);
  }
  if (s->hrr_rate.set && s->hrr * 100 > s->successes * TP_REPORT_MAX_HRR_PERCENT)
    warn(r, i, TP_REPORT_WARN,
         tp_xasprintf("HelloRetryRequest rate %.2f%% (threshold %d%%)", s->hrr_rate.percent,
                      TP_REPORT_MAX_HRR_PERCENT));
  if (s->resumption_rate.set &&
      s->resumed * 100 < s->resumption_probes * TP_REPORT_MIN_RESUMPTION_PERCENT)
    warn(r, i, TP_REPORT_WARN,
         tp_xasprintf("resumption rate %.2f%% (threshold %d%%)", s->resumption_rate.percent,
                      TP_REPORT_MIN_RESUMPTION_PERCENT));
  /* CRIT at the first one: 0-RTT data has no replay protection (RFC 8446 §8), so a
   * processed POST can be replayed by anyone who captured it -- an exploitable
   * finding now, not a trend to watch. */
  if (s->early_data_violations > 0)
    warn(r, i, TP_REPORT_CRIT,
         tp_xasprintf("%" PRIu64 " non-safe request%s (POST/PUT/DELETE) accepted as 0-RTT early"
                      " data and processed instead of refused with 425 Too Early: replayable",
                      s->early_data_violations, s->early_data_violations == 1 ? "" : "s"));
}

tp_err tp_report_build(tp_store *store, const tp_report_query *query, tp_report **out, char *err,
                       size_t errlen) {
  tp_report *r = tp_xcalloc(1, sizeof(*r));
  r->query = *query;
  agg a = {.report = r, .err = err, .errlen = errlen};
  int64_t since = window_start(query);
  tp_err rc = tp_store_scan(store, since, query->target, on_row, &a, err, errlen);
  if (rc == TP_E_OK)
    finish_series(&a);
  for (size_t i = 0; rc == TP_E_OK && i < r->n_series; i++)
    series_warnings(r, i);
  if (rc == TP_E_OK && query->with_facts)
    rc = load_facts(store, r, since, err, errlen);
  if (rc == TP_E_OK)
    rc = tp__report_delivery(store, r, since, err, errlen);
  free(a.latencies);
  if (rc != TP_E_OK) {
    tp_report_free(r);
    r = NULL;
  }
  *out = r;
  return rc;
}

size_t tp_report_series_count(const tp_report *report) { return report->n_series; }

const tp_report_series *tp_report_series_at(const tp_report *report, size_t i) {
  return i < report->n_series ? &report->series[i] : NULL;
}

uint64_t tp_report_total_probes(const tp_report *report) { return report->total_probes; }

size_t tp_report_warning_count(const tp_report *report) { return report->n_warnings; }

const tp_report_warning *tp_report_warning_at(const tp_report *report, size_t i) {
  return i < report->n_warnings ? &report->warnings[i] : NULL;
}

int tp_report_worst_level(const tp_report *report) {
  int worst = -1;
  const tp_report_warning *lists[2] = {report->warnings, report->agent_warnings};
  size_t counts[2] = {report->n_warnings, report->n_agent_warnings};
  for (size_t l = 0; l < 2; l++)
    for (size_t i = 0; i < counts[l]; i++)
      if ((int)lists[l][i].level > worst)
        worst = (int)lists[l][i].level;
  return worst;
}

void tp_report_free(tp_report *report) {
  if (report == NULL)
    return;
  for (size_t i = 0; i < report->n_series; i++) {
    tp_report_series *s = &report->series[i];
    free(s->target);
    free(s->profile);
    free(s->region);
    free(s->divergence_example);
    tp_store_facts_clear(&s->facts);
  }
  for (size_t i = 0; i < report->n_warnings; i++)
    free(report->warnings[i].text);
  free(report->warnings);
  tp__report_delivery_free(report);
  free(report->series);
  free(report);
}
