/* report_csv.c - the views as CSV (RFC 4180): one header line, CRLF line ends, a
 * text cell quoted when it holds a comma, quote, CR or LF (quotes doubled). Text
 * cells come from agents: one starting with = + - @ TAB or CR would run as a
 * formula in a spreadsheet (OWASP "CSV injection"), so it is prefixed with '.
 * Numbers are plain; rates are fractions 0..1 like the JSON; empty = no value. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"
#include "report_impl.h"
#include "report_output.h"
#include "tp_mem.h"

typedef struct csv {
  tp_buf *b;
  tp_err rc;
  bool line_start;
} csv;

static void put(csv *c, const char *s, size_t n) {
  if (c->rc == TP_E_OK)
    c->rc = tp_buf_append(c->b, s, n);
}

static void sep(csv *c) {
  if (!c->line_start)
    put(c, ",", 1);
  c->line_start = false;
}

static void text(csv *c, const char *s) {
  sep(c);
  if (s == NULL)
    return;
  bool quote = strpbrk(s, ",\"\r\n") != NULL;
  bool formula = strchr("=+-@\t\r", s[0]) != NULL && s[0] != '\0';
  if (quote)
    put(c, "\"", 1);
  if (formula)
    put(c, "'", 1);
  for (const char *p = s; *p != '\0'; p++) {
    if (*p == '"')
      put(c, "\"\"", 2);
    else
      put(c, p, 1);
  }
  if (quote)
    put(c, "\"", 1);
}

static void num(csv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void num(csv *c, const char *fmt, ...) {
  char cell[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(cell, sizeof(cell), fmt, ap);
  va_end(ap);
  sep(c);
  put(c, cell, n > 0 && (size_t)n < sizeof(cell) ? (size_t)n : 0);
}

static void end_line(csv *c) {
  put(c, "\r\n", 2);
  c->line_start = true;
}

static void rate(csv *c, tp_report_rate r) {
  if (r.set)
    num(c, "%.6f", r.fraction);
  else
    sep(c);
}

static void ms(csv *c, bool set, uint64_t ns) {
  if (set)
    num(c, "%.3f", (double)ns / 1e6);
  else
    sep(c);
}

static void key_header(csv *c, const tp_report *r) {
  for (size_t i = 0; i < r->query.n_by; i++)
    text(c, tp_report_dim_name(r->query.by[i]));
}

static void key_cells(csv *c, const tp_report *r, const tp_report_series *s) {
  for (size_t i = 0; i < r->query.n_by; i++)
    text(c, s->key[r->query.by[i]]);
}

static void header(csv *c, const tp_report *r, const char *const *names) {
  key_header(c, r);
  for (size_t i = 0; names[i] != NULL; i++)
    text(c, names[i]);
  end_line(c);
}

static void latency(csv *c, const tp_report_latency *l) {
  ms(c, l->set, l->p50_ns);
  ms(c, l->set, l->p90_ns);
  ms(c, l->set, l->p99_ns);
  ms(c, l->set, l->p999_ns);
}

static void summary(csv *c, const tp_report *r) {
  static const char *const names[] = {"probes",
                                      "successes",
                                      "divergent_successes",
                                      "success_rate",
                                      "handshake_p50_ms",
                                      "handshake_p90_ms",
                                      "handshake_p99_ms",
                                      "handshake_p99_9_ms",
                                      "connect_p50_ms",
                                      "connect_p90_ms",
                                      "connect_p99_ms",
                                      "connect_p99_9_ms",
                                      "total_p50_ms",
                                      "total_p90_ms",
                                      "total_p99_ms",
                                      "total_p99_9_ms",
                                      "loop_lag_p99_ms",
                                      "top_error",
                                      "top_error_owner",
                                      "hrr_rate",
                                      "resumption_rate",
                                      "early_data_accept_rate",
                                      "ocsp_staple_rate",
                                      "min_days_to_expiry",
                                      "ocsp_max_age_seconds",
                                      "early_data_policy_violations",
                                      "saturated",
                                      NULL};
  header(c, r, names);
  for (size_t i = 0; i < r->n_series; i++) {
    const tp_report_series *s = &r->series[i];
    key_cells(c, r, s);
    num(c, "%" PRIu64, s->probes);
    num(c, "%" PRIu64, s->successes);
    num(c, "%" PRIu64, s->divergent);
    rate(c, s->success_rate);
    latency(c, &s->handshake);
    latency(c, &s->connect);
    latency(c, &s->total);
    num(c, "%.3f", (double)s->loop_lag_p99_ns / 1e6);
    text(c, s->top_error);
    text(c, s->top_error_category);
    rate(c, s->hrr_rate);
    rate(c, s->resumption_rate);
    rate(c, s->early_data_accept_rate);
    rate(c, s->ocsp_staple_rate);
    if (s->min_days_to_expiry.set)
      num(c, "%" PRId64, s->min_days_to_expiry.v);
    else
      sep(c);
    if (s->ocsp_max_age_seconds.set)
      num(c, "%" PRId64, s->ocsp_max_age_seconds.v);
    else
      sep(c);
    num(c, "%" PRIu64, s->early_data_violations);
    num(c, "%" PRIu64, s->saturated);
    end_line(c);
  }
}

static void errors(csv *c, const tp_report *r) {
  static const char *const names[] = {"class", "owner", "count", "latest_detail", NULL};
  header(c, r, names);
  for (size_t i = 0; i < r->n_series; i++) {
    const tp_report_series *s = &r->series[i];
    for (int cls = 0; cls < TP_REPORT_MAX_CLASS; cls++) {
      if (cls == TP_OUTCOME_OK || s->class_counts[cls] == 0 || tp_outcome_name(cls) == NULL)
        continue;
      key_cells(c, r, s);
      text(c, tp_outcome_name(cls));
      text(c, tp_outcome_category_name(tp_outcome_category_of((tp_outcome)cls)));
      num(c, "%" PRIu64, s->class_counts[cls]);
      text(c, s->class_example[cls]);
      end_line(c);
    }
  }
}

static void dist(csv *c, const tp_report *r, const tp_report_series *s, const char *kind,
                 const tp_report_dist *d) {
  for (size_t j = 0; j < d->n; j++) {
    key_cells(c, r, s);
    text(c, kind);
    text(c, d->items[j].name);
    num(c, "%" PRIu64, d->items[j].count);
    end_line(c);
  }
}

static void versions(csv *c, const tp_report *r) {
  static const char *const names[] = {"kind", "negotiated", "probes", NULL};
  header(c, r, names);
  for (size_t i = 0; i < r->n_series; i++) {
    dist(c, r, &r->series[i], "version", &r->series[i].versions);
    dist(c, r, &r->series[i], "cipher", &r->series[i].ciphers);
    dist(c, r, &r->series[i], "group", &r->series[i].groups);
  }
}

static void expiry(csv *c, const tp_report *r) {
  static const char *const names[] = {"target",         "position", "days_left",
                                      "not_after_unix", "severity", "subject",
                                      "issuer",         "series",   NULL};
  for (size_t i = 0; names[i] != NULL; i++)
    text(c, names[i]);
  end_line(c);
  for (size_t i = 0; i < r->n_certs; i++) {
    const tp_report_cert *cert = &r->certs[i];
    int threshold;
    int level = tp_report_expiry_level(cert->days_left, &threshold);
    text(c, cert->target);
    num(c, "%" PRIu32, cert->position);
    num(c, "%" PRId64, cert->days_left);
    num(c, "%" PRId64, cert->not_after_unix);
    text(c, level == TP_REPORT_CRIT ? "CRIT" : level == TP_REPORT_WARN ? "WARN" : "ok");
    text(c, cert->subject);
    text(c, cert->issuer);
    num(c, "%" PRIu64, cert->series);
    end_line(c);
  }
}

static void agents(csv *c, const tp_report *r) {
  static const char *const names[] = {"agent",          "spools",  "results",
                                      "lost_in_window", "missing", "last_delivery_unix",
                                      "silent",         NULL};
  for (size_t i = 0; names[i] != NULL; i++)
    text(c, names[i]);
  end_line(c);
  for (size_t i = 0; i < r->n_agents; i++) {
    const tp_report_agent *a = &r->agents[i];
    text(c, a->agent_id);
    num(c, "%" PRIu64, a->spools);
    num(c, "%" PRIu64, a->results);
    num(c, "%" PRIu64, a->lost_in_window);
    num(c, "%" PRIu64, a->missing);
    num(c, "%" PRId64, a->last_received_unix_ns / 1000000000);
    text(c, a->silent ? "true" : "false");
    end_line(c);
  }
}

tp_err tp__report_csv(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  csv c = {.b = b, .rc = TP_E_OK, .line_start = true};
  switch (o->view) {
  case TP_VIEW_ERRORS:
    errors(&c, r);
    break;
  case TP_VIEW_VERSIONS:
    versions(&c, r);
    break;
  case TP_VIEW_EXPIRY:
    expiry(&c, r);
    break;
  case TP_VIEW_AGENTS:
    agents(&c, r);
    break;
  case TP_VIEW_SUMMARY:
  case TP_VIEW_CLIENTS:
  case TP_VIEW_TARGET:
    summary(&c, r);
    break;
  }
  return c.rc;
}
