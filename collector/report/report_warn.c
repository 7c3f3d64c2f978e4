/* report_warn.c - the field's thresholds applied to each group (see report.h for
 * the numbers and docs/collector.md for why each one): certificate expiry at
 * 30/14 days (WARN) and 7/3 days and expired (CRIT), stale OCSP staples, success
 * below 99.9 %, emulation divergence, HRR
 * above 5 %, resumption below 80 % (below 50 %: ticket keys not shared), and
 * replayable 0-RTT requests. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "report_impl.h"
#include "tp_mem.h"

void tp__report_warn(tp_report *r, size_t series, tp_report_level level, char *text) {
  if (r->n_warnings == r->alloc_warnings) {
    r->alloc_warnings = r->alloc_warnings ? 2 * r->alloc_warnings : 16;
    r->warnings = tp_xrealloc(r->warnings, r->alloc_warnings * sizeof(r->warnings[0]));
  }
  r->warnings[r->n_warnings++] =
      (tp_report_warning){.series = series, .level = level, .text = text};
}

int tp_report_expiry_level(int64_t days, int *threshold) {
  static const int thresholds[] = {TP_REPORT_EXPIRY_CRIT2_DAYS, TP_REPORT_EXPIRY_CRIT_DAYS,
                                   TP_REPORT_EXPIRY_WARN2_DAYS, TP_REPORT_EXPIRY_WARN_DAYS};
  *threshold = 0;
  for (size_t i = 0; i < sizeof(thresholds) / sizeof(thresholds[0]); i++)
    if (days <= thresholds[i]) {
      *threshold = thresholds[i];
      break;
    }
  if (*threshold == 0)
    return -1;
  return *threshold <= TP_REPORT_EXPIRY_CRIT_DAYS ? TP_REPORT_CRIT : TP_REPORT_WARN;
}

char *tp__report_series_name(const tp_report *r, const tp_report_series *s) {
  tp_buf buf;
  tp_buf_init(&buf, 1 << 20);
  bool first = true;
  for (size_t i = 0; i < r->query.n_by; i++) {
    const char *v = s->key[r->query.by[i]];
    if (v == NULL || v[0] == '\0')
      continue;
    char *safe = tp__report_repr(v);
    (void)tp_buf_append(&buf, "/", first ? 0 : 1);
    (void)tp_buf_append(&buf, safe, strlen(safe));
    free(safe);
    first = false;
  }
  char *name = tp_xstrndup(buf.data ? (const char *)buf.data : "", buf.len);
  tp_buf_free(&buf);
  return name;
}

static void expiry_warning(tp_report *r, size_t i, const tp_report_series *s) {
  if (!s->min_days_to_expiry.set)
    return;
  int64_t days = s->min_days_to_expiry.v;
  int threshold;
  int level = tp_report_expiry_level(days, &threshold);
  if (days < 0)
    tp__report_warn(r, i, TP_REPORT_CRIT,
                    tp_xasprintf("certificate expired %" PRId64 " days ago", -days));
  else if (level >= 0)
    tp__report_warn(
        r, i, (tp_report_level)level,
        tp_xasprintf("certificate expires in %" PRId64 " days (threshold %d)", days, threshold));
}

/* WARN only: whether a dip pages is the SLO burn rate's decision (report_slo.c),
 * which knows the budget and how fast it goes. */
static void success_warning(tp_report *r, size_t i, const tp_report_series *s) {
  if (s->successes * 1000 >= s->probes * TP_REPORT_MIN_SUCCESS_PERMILLE)
    return;
  tp__report_warn(r, i, TP_REPORT_WARN,
                  tp_xasprintf("success rate %.2f%% (threshold %.1f%%)",
                               100.0 * s->success_rate.fraction,
                               TP_REPORT_MIN_SUCCESS_PERMILLE / 10.0));
}

static void resumption_warning(tp_report *r, size_t i, const tp_report_series *s) {
  if (!s->resumption_rate.set ||
      s->resumed * 100 >= s->resumption_probes * TP_REPORT_MIN_RESUMPTION_PERCENT)
    return;
  bool unsynced = s->resumed * 100 < s->resumption_probes * TP_REPORT_TICKET_SYNC_PERCENT;
  tp__report_warn(r, i, TP_REPORT_WARN,
                  tp_xasprintf("resumption rate %.2f%% (threshold %d%%)%s",
                               100.0 * s->resumption_rate.fraction,
                               TP_REPORT_MIN_RESUMPTION_PERCENT,
                               unsynced ? ": below 50%, session-ticket keys are likely not"
                                          " shared between the servers behind this name"
                                        : ""));
}

/* The agent's own verdict on its timings (agent/saturation.h): worth a line once a
 * group's latencies lose a visible share of their samples to it. */
static void saturation_warning(tp_report *r, size_t i, const tp_report_series *s) {
  if (s->saturated == 0 || s->saturated * 100 < s->probes * TP_REPORT_MAX_SATURATED_PERCENT)
    return;
  const char *what = r->query.include_saturated
                         ? "their latencies are counted (--include-saturated)"
                         : "their latencies are left out of the percentiles";
  tp__report_warn(r, i, TP_REPORT_WARN,
                  tp_xasprintf("%" PRIu64 " of %" PRIu64 " results taken while the agent was"
                               " saturated (its loop lag, lateness or CPU wait past its"
                               " saturation: thresholds): %s",
                               s->saturated, s->probes, what));
}

static bool grouped_by_target(const tp_report *r) {
  for (size_t i = 0; i < r->query.n_by; i++)
    if (r->query.by[i] == TP_DIM_TARGET)
      return true;
  return false;
}

void tp__report_series_warnings(tp_report *r, size_t i) {
  const tp_report_series *s = &r->series[i];
  /* Certificates and staples belong to a target: in a group of several targets (by
   * region, by agent) the latest chain is just some target's (report expiry has all). */
  bool per_target = grouped_by_target(r);
  if (per_target)
    expiry_warning(r, i, s);
  if (per_target && s->ocsp_max_age_seconds.set &&
      s->ocsp_max_age_seconds.v > TP_REPORT_OCSP_MAX_AGE_S)
    tp__report_warn(r, i, TP_REPORT_WARN,
                    tp_xasprintf("OCSP staple is %.1f h old (threshold %d h)",
                                 (double)s->ocsp_max_age_seconds.v / 3600.0,
                                 TP_REPORT_OCSP_MAX_AGE_S / 3600));
  success_warning(r, i, s);
  if (s->divergent > 0) {
    char *example = tp__report_repr(s->divergence_example);
    tp__report_warn(r, i, TP_REPORT_WARN,
                    tp_xasprintf("%" PRIu64 " success%s only through suites/groups the real"
                                 " client never offers (counted apart from OK); latest: \"%s\"",
                                 s->divergent, s->divergent == 1 ? "" : "es", example));
    free(example);
  }
  saturation_warning(r, i, s);
  if (s->hrr_rate.set && s->hrr * 100 > s->successes * TP_REPORT_MAX_HRR_PERCENT)
    tp__report_warn(r, i, TP_REPORT_WARN,
                    tp_xasprintf("HelloRetryRequest rate %.2f%% (threshold %d%%)",
                                 100.0 * s->hrr_rate.fraction, TP_REPORT_MAX_HRR_PERCENT));
  resumption_warning(r, i, s);
  /* CRIT at the first one: 0-RTT data has no replay protection (RFC 8446 §8), so a
   * processed POST can be replayed by anyone who captured it -- an exploitable
   * finding now, not a trend to watch. */
  if (s->early_data_violations > 0)
    tp__report_warn(r, i, TP_REPORT_CRIT,
                    tp_xasprintf("%" PRIu64 " non-safe request%s (POST/PUT/DELETE) accepted as"
                                 " 0-RTT early data and processed instead of refused with 425"
                                 " Too Early: replayable",
                                 s->early_data_violations,
                                 s->early_data_violations == 1 ? "" : "s"));
}
