/* report_html.c - `report --format html`: the one page an SRE opens. One
 * self-contained HTML5 file whatever the view: the header (window, generated,
 * totals), the summary table with its WARN/CRIT lines, the SLO burn rates, the
 * charts of report_html_chart.c (success rate and p99 handshake over time per group,
 * version distribution, certificate expiry, client matrix), the errors and the
 * agents' delivery. CSS is inline; there is no script and nothing is fetched: the page's
 * Content-Security-Policy (default-src 'none') says so to the browser as well, so
 * even a string that escaped our escaping could neither run nor load anything.
 *
 * Every stored string is untrusted (agents sent it): it is written through
 * tp__html_text only. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outcome.h"
#include "report_html.h"
#include "report_slo.h"
#include "tp_mem.h"
#include "tp_text.h"

/* ---- writing ------------------------------------------------------------------- */

static void put(tp_html *h, const char *s, size_t n) {
  if (h->rc == TP_E_OK && n > 0)
    h->rc = tp_buf_append(h->b, s, n);
}

void tp__html_raw(tp_html *h, const char *s) { put(h, s, strlen(s)); }

void tp__html_rawf(tp_html *h, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0) {
    if (h->rc == TP_E_OK)
      h->rc = TP_E_INVAL;
    return;
  }
  if ((size_t)n < sizeof(small)) {
    put(h, small, (size_t)n);
    return;
  }
  /* Longer than a line of markup: format again into a buffer of the right size. */
  char *big = tp_xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  int m = vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  if (m == n)
    put(h, big, (size_t)n);
  else if (h->rc == TP_E_OK)
    h->rc = TP_E_INVAL;
  free(big);
}

/* The reference for one byte that must not appear as itself, or NULL. */
static const char *reference(unsigned char c) {
  switch (c) {
  case '&':
    return "&amp;";
  case '<':
    return "&lt;";
  case '>':
    return "&gt;";
  case '"':
    return "&quot;";
  case '\'':
    return "&#39;";
  }
  return NULL;
}

/* Writes p[0..left) escaped, at most max_chars code points (SIZE_MAX: all);
 * returns true when it stopped early. Runs of plain text go out in one append. */
static bool escaped(tp_html *h, const unsigned char *p, size_t left, size_t max_chars) {
  const unsigned char *run = p; /* start of the plain text not written yet */
  size_t chars = 0;
  bool cut = false;
  while (left > 0) {
    if (chars == max_chars) {
      cut = true;
      break;
    }
    uint32_t cp = 0;
    size_t n = tp_utf8_seq(p, left, &cp);
    const char *ref = n == 1 ? reference(*p) : NULL;
    bool control = n == 0 || (n == 1 && ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7F));
    bool c1 = n > 1 && cp >= 0x80 && cp <= 0x9F; /* the terminal's CSI and friends */
    if (ref != NULL || control || c1) {
      char hex[8];
      put(h, (const char *)run, (size_t)(p - run));
      if (ref != NULL) {
        tp__html_raw(h, ref);
      } else if (control) { /* or not UTF-8: one byte at a time */
        snprintf(hex, sizeof(hex), "\\x%02X", *p);
        tp__html_raw(h, hex);
        n = 1;
      } else {
        snprintf(hex, sizeof(hex), "\\u%04X", (unsigned)cp);
        tp__html_raw(h, hex);
      }
      run = p + n;
    }
    p += n;
    left -= n;
    chars++;
  }
  put(h, (const char *)run, (size_t)(p - run));
  return cut;
}

void tp__html_text(tp_html *h, const char *s) {
  if (s != NULL)
    (void)escaped(h, (const unsigned char *)s, strlen(s), SIZE_MAX);
}

void tp__html_text_cut(tp_html *h, const char *s, size_t max_chars) {
  if (s != NULL && escaped(h, (const unsigned char *)s, strlen(s), max_chars))
    tp__html_raw(h, "...");
}

char *tp__html_group_raw(const tp_report *r, const tp_report_series *s, tp_report_dim skip) {
  size_t len = 1;
  for (size_t i = 0; i < r->query.n_by; i++) {
    const char *v = s->key[r->query.by[i]];
    len += v != NULL ? strlen(v) + 1 : 0;
  }
  char *name = tp_xmalloc(len), *at = name;
  for (size_t i = 0; i < r->query.n_by; i++) {
    const char *v = s->key[r->query.by[i]];
    if (r->query.by[i] == skip || v == NULL || v[0] == '\0')
      continue;
    if (at != name)
      *at++ = '/';
    size_t n = strlen(v);
    memcpy(at, v, n);
    at += n;
  }
  *at = '\0';
  return name;
}

void tp__html_group(tp_html *h, const tp_report *r, const tp_report_series *s) {
  char *name = tp__html_group_raw(r, s, TP_DIM_COUNT);
  tp__html_text(h, name);
  free(name);
}

/* Twelve colours that stay apart on white (Tableau 10 plus two); groups beyond
 * twelve repeat them, the legend and each line's <title> still tell them apart. */
const char *tp__html_series_color(size_t i) {
  static const char *const colors[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                       "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                                       "#9c755f", "#bab0ac", "#1f3b73", "#8cd17d"};
  return colors[i % (sizeof(colors) / sizeof(colors[0]))];
}

static void format_utc(int64_t unix_ns, char *out, size_t len) {
  time_t secs = (time_t)(unix_ns / 1000000000);
  struct tm tm;
  if (gmtime_r(&secs, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, len, "?");
}

static const char *level_class(int level) {
  return level == TP_REPORT_CRIT ? "crit" : level == TP_REPORT_WARN ? "warn" : "ok";
}

static const char *level_word(int level) {
  return level == TP_REPORT_CRIT ? "CRIT" : level == TP_REPORT_WARN ? "WARN" : "ok";
}

/* ---- the page around the sections ---------------------------------------------- */

static const char page_css[] =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#1d2630;background:#fff;margin:0 auto;max-width:1240px;padding:16px 20px}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
    "border-bottom:1px solid #d8dee4;padding-bottom:4px}\n"
    "p.note{color:#57606a;margin:4px 0}\n"
    ".totals{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0 0;padding:0}\n"
    ".totals div{border:1px solid #d8dee4;border-radius:6px;padding:6px 12px;min-width:90px}\n"
    ".totals dt{font-size:12px;color:#57606a}.totals dd{margin:0;font-size:18px;font-weight:600}\n"
    ".totals div.crit{border-color:#c62828;background:#fdecea}"
    ".totals div.warn{border-color:#e0a100;background:#fff8e1}\n"
    "table{border-collapse:collapse;font-size:13px;margin:4px 0}\n"
    "th,td{padding:3px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}\n"
    "th{background:#f6f8fa;font-weight:600}td.n,th.n{text-align:right;"
    "font-variant-numeric:tabular-nums}\n"
    "tr.crit td:first-child{border-left:4px solid #c62828}"
    "tr.warn td:first-child{border-left:4px solid #e0a100}\n"
    "td.detail{max-width:560px;overflow-wrap:anywhere}\n"
    "ul.warnings{list-style:none;padding:0;margin:8px 0}\n"
    "ul.warnings li{padding:3px 8px;margin:2px 0;border-radius:4px;overflow-wrap:anywhere}\n"
    "li.crit{background:#fdecea}li.warn{background:#fff8e1}\n"
    ".level{font-weight:700;margin-right:6px}li.crit .level,span.crit{color:#c62828}"
    "li.warn .level,span.warn{color:#9a6700}span.ok{color:#2e7d32}\n"
    ".chart{overflow-x:auto}svg{display:block;font-size:12px}\n"
    "svg text{fill:#1d2630}svg .axis line,svg .grid line{stroke:#d8dee4}\n"
    "svg .series{fill:none;stroke-width:2.5;stroke-linecap:round;stroke-linejoin:round}\n"
    "svg .mark line{stroke:#57606a;stroke-dasharray:4 3}svg text.cell-label{fill:#fff;font-size:11px}\n"
    "ul.legend{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;gap:4px 16px}\n"
    "ul.legend li{font-size:12px}.swatch{display:inline-block;width:12px;height:12px;"
    "border-radius:2px;margin-right:5px;vertical-align:-1px}\n"
    "footer{margin-top:32px;color:#57606a;font-size:12px}\n";

static void window_text(tp_html *h, const tp_report *r) {
  char since[32], until[32];
  format_utc(r->query.since_unix_ns, since, sizeof(since));
  format_utc(r->query.until_unix_ns, until, sizeof(until));
  if (r->query.until_text == NULL) {
    tp__html_raw(h, "window ");
    tp__html_text(h, r->query.since_text); /* the user's argv: escaped all the same */
    tp__html_rawf(h, " ending %s", until);
  } else {
    tp__html_rawf(h, "window %s..%s", since, until);
  }
}

static void page_start(tp_html *h, const tp_report *r) {
  tp__html_raw(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  /* No script, no fetch: the browser enforces what the generator promises. */
                  "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                  "style-src 'unsafe-inline'; img-src data:\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                  "<meta name=\"generator\" content=\"tlsprobe-collector report\">\n"
                  "<title>tlsprobe report: ");
  window_text(h, r);
  tp__html_raw(h, "</title>\n<style>\n");
  tp__html_raw(h, page_css);
  tp__html_raw(h, "</style>\n</head>\n<body>\n");
}

static void total(tp_html *h, const char *id, const char *label, const char *cls,
                  const char *value) {
  tp__html_rawf(h, "<div class=\"%s\"><dt>%s</dt><dd id=\"%s\">%s</dd></div>", cls, label, id,
                value);
}

static void header(tp_html *h, const tp_report *r) {
  char generated[32], buf[64];
  uint64_t successes = 0;
  size_t crit = 0, warn = 0;
  for (size_t i = 0; i < r->n_series; i++)
    successes += r->series[i].successes;
  /* Every line --check weighs: series, SLOs and agents. */
  const tp_report_warning *lists[3] = {r->warnings, r->slo_warnings, r->agent_warnings};
  size_t counts[3] = {r->n_warnings, r->n_slo_warnings, r->n_agent_warnings};
  for (size_t l = 0; l < 3; l++)
    for (size_t i = 0; i < counts[l]; i++) {
      if (lists[l][i].level == TP_REPORT_CRIT)
        crit++;
      else
        warn++;
    }
  format_utc(r->query.now_unix_ns, generated, sizeof(generated));
  tp__html_raw(h, "<header id=\"report-header\">\n<h1>tlsprobe report</h1>\n<p class=\"note\">");
  window_text(h, r);
  tp__html_rawf(h, " &middot; generated %s &middot; grouped by ", generated);
  for (size_t i = 0; i < r->query.n_by; i++)
    tp__html_rawf(h, "%s%s", i ? "," : "", tp_report_dim_name(r->query.by[i]));
  tp__html_rawf(h, "</p>\n<dl class=\"totals\" data-since-unix=\"%" PRId64 "\" data-until-unix=\"%" PRId64
                   "\" data-generated-unix=\"%" PRId64 "\">",
                r->query.since_unix_ns / 1000000000, r->query.until_unix_ns / 1000000000,
                r->query.now_unix_ns / 1000000000);
  snprintf(buf, sizeof(buf), "%zu", r->n_series);
  total(h, "total-series", "groups", "", buf);
  snprintf(buf, sizeof(buf), "%" PRIu64, r->total_probes);
  total(h, "total-probes", "probes", "", buf);
  snprintf(buf, sizeof(buf), "%" PRIu64, successes);
  total(h, "total-successes", "successes", "", buf);
  if (r->total_probes > 0)
    snprintf(buf, sizeof(buf), "%.2f %%", 100.0 * (double)successes / (double)r->total_probes);
  else
    snprintf(buf, sizeof(buf), "-");
  total(h, "total-success-rate", "success rate", "", buf);
  snprintf(buf, sizeof(buf), "%zu", crit);
  total(h, "total-crit", "CRIT", crit ? "crit" : "", buf);
  snprintf(buf, sizeof(buf), "%zu", warn);
  total(h, "total-warn", "WARN", warn ? "warn" : "", buf);
  snprintf(buf, sizeof(buf), "%zu", r->n_agents);
  total(h, "total-agents", "agents", "", buf);
  tp__html_raw(h, "</dl>\n</header>\n");
}

static void footer(tp_html *h, const tp_report *r, const tp_report_output *o) {
  tp__html_rawf(h, "<footer>tlsprobe-collector report %s --format html &middot; latencies over"
                   " successful probes, %s &middot; source: %s</footer>\n"
                   "</body>\n</html>\n",
                tp_report_view_name(o->view),
                r->from_rollups ? "from merged sketches (within 1 %)" : "nearest rank",
                r->from_rollups ? "per-minute/per-hour rollups" : "raw results");
}

/* ---- summary ------------------------------------------------------------------- */

/* The worst warning level of each series (-1: none), for the row styles. */
static int *series_levels(const tp_report *r) {
  int *levels = tp_xmalloc((r->n_series + 1) * sizeof(*levels));
  for (size_t i = 0; i < r->n_series; i++)
    levels[i] = -1;
  for (size_t i = 0; i < r->n_warnings; i++) {
    const tp_report_warning *w = &r->warnings[i];
    if (w->series < r->n_series && (int)w->level > levels[w->series])
      levels[w->series] = (int)w->level;
  }
  return levels;
}

static void ms_cell(tp_html *h, bool set, uint64_t ns) {
  if (set)
    tp__html_rawf(h, "<td class=\"n\">%.2f</td>", (double)ns / 1e6);
  else
    tp__html_raw(h, "<td class=\"n\">-</td>");
}

static void key_headers(tp_html *h, const tp_report *r) {
  for (size_t i = 0; i < r->query.n_by; i++)
    tp__html_rawf(h, "<th>%s</th>", tp_report_dim_name(r->query.by[i]));
}

static void key_cells(tp_html *h, const tp_report *r, const tp_report_series *s) {
  for (size_t i = 0; i < r->query.n_by; i++) {
    tp__html_raw(h, "<td>");
    tp__html_text(h, s->key[r->query.by[i]]);
    tp__html_raw(h, "</td>");
  }
}

static bool any_divergent(const tp_report *r) {
  for (size_t i = 0; i < r->n_series; i++)
    if (r->series[i].divergent > 0)
      return true;
  return false;
}

static void summary_row(tp_html *h, const tp_report *r, const tp_report_series *s, int level,
                        bool divergent) {
  tp__html_rawf(h, "<tr class=\"%s\">", level_class(level));
  key_cells(h, r, s);
  tp__html_rawf(h, "<td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64 "</td>", s->probes,
                s->successes);
  if (divergent)
    tp__html_rawf(h, "<td class=\"n\">%" PRIu64 "</td>", s->divergent);
  if (s->success_rate.set)
    tp__html_rawf(h, "<td class=\"n\" data-success-rate=\"%.6f\">%.2f</td>",
                  s->success_rate.fraction, 100.0 * s->success_rate.fraction);
  else
    tp__html_raw(h, "<td class=\"n\">-</td>");
  ms_cell(h, s->handshake.set, s->handshake.p50_ns);
  ms_cell(h, s->handshake.set, s->handshake.p90_ns);
  ms_cell(h, s->handshake.set, s->handshake.p99_ns);
  ms_cell(h, s->handshake.set, s->handshake.p999_ns);
  if (s->top_error != NULL)
    tp__html_rawf(h, "<td>%s:%" PRIu64 " <small>(%s)</small></td>", s->top_error,
                  s->top_error_count, s->top_error_category ? s->top_error_category : "internal");
  else
    tp__html_raw(h, "<td>-</td>");
  if (s->min_days_to_expiry.set)
    tp__html_rawf(h, "<td class=\"n\">%" PRId64 "</td>", s->min_days_to_expiry.v);
  else
    tp__html_raw(h, "<td class=\"n\">-</td>");
  tp__html_raw(h, "</tr>\n");
}

static void warning_list(tp_html *h, const tp_report *r, const char *id,
                         const tp_report_warning *w, size_t n, bool agents) {
  if (n == 0)
    return;
  tp__html_rawf(h, "<ul class=\"warnings\" id=\"%s\">\n", id);
  for (size_t i = 0; i < n; i++) {
    tp__html_rawf(h, "<li class=\"%s\"><span class=\"level\">%s</span>", level_class((int)w[i].level),
                  level_word((int)w[i].level));
    if (agents && w[i].series < r->n_agents) {
      tp__html_raw(h, "agent ");
      tp__html_text(h, r->agents[w[i].series].agent_id);
    } else if (!agents && w[i].series < r->n_series) {
      tp__html_group(h, r, &r->series[w[i].series]);
    }
    tp__html_raw(h, ": ");
    tp__html_text(h, w[i].text);
    tp__html_raw(h, "</li>\n");
  }
  tp__html_raw(h, "</ul>\n");
}

static void summary(tp_html *h, const tp_report *r) {
  tp__html_raw(h, "<section id=\"summary\">\n<h2>Summary</h2>\n");
  if (r->n_series == 0) {
    tp__html_raw(h, "<p class=\"note\">no probes in window</p>\n</section>\n");
    return;
  }
  bool divergent = any_divergent(r);
  int *levels = series_levels(r);
  tp__html_raw(h, "<table id=\"summary-table\">\n<thead><tr>");
  key_headers(h, r);
  tp__html_rawf(h, "<th class=\"n\">probes</th><th class=\"n\">ok</th>%s"
                   "<th class=\"n\">success %%</th><th class=\"n\">p50 ms</th>"
                   "<th class=\"n\">p90 ms</th><th class=\"n\">p99 ms</th>"
                   "<th class=\"n\">p99.9 ms</th><th>top error</th>"
                   "<th class=\"n\">days to expiry</th></tr></thead>\n<tbody>\n",
                divergent ? "<th class=\"n\">divergent</th>" : "");
  for (size_t i = 0; i < r->n_series; i++)
    summary_row(h, r, &r->series[i], levels[i], divergent);
  tp__html_raw(h, "</tbody>\n</table>\n");
  free(levels);
  warning_list(h, r, "warnings", r->warnings, r->n_warnings, false);
  tp__html_raw(h, "</section>\n");
}

/* ---- SLO burn rates ------------------------------------------------------------ */

#define MAX_SLO_ROWS 200 /* the burning ones first: they are what the page is for */

static int slo_level(tp_slo_state st) {
  return st == TP_SLO_PAGE ? TP_REPORT_CRIT : st == TP_SLO_TICKET ? TP_REPORT_WARN : -1;
}

/* One objective of a target x region: its burn rate per window, its state. */
static void slo_row(tp_html *h, const tp_report_slo_row *s, bool latency) {
  tp_slo_state st = latency ? s->latency_state : s->availability_state;
  const tp_slo_counts *windows = latency ? s->latency : s->availability;
  double budget = latency ? TP_SLO_LATENCY_BUDGET : 1.0 - s->objective;
  tp__html_rawf(h, "<tr class=\"%s\" data-state=\"%s\"><td>", level_class(slo_level(st)),
                tp_slo_state_name(st));
  tp__html_text(h, s->target);
  tp__html_raw(h, "</td><td>");
  tp__html_text(h, s->region[0] ? s->region : "-");
  if (latency)
    tp__html_rawf(h, "</td><td>p99 &le; %" PRIu64 " ms</td>", s->p99_ms);
  else
    tp__html_rawf(h, "</td><td>%.3g %% success</td>", 100.0 * s->objective);
  for (int w = 0; w < TP_SLO_WINDOWS; w++) {
    double rate;
    if (tp_slo_burn_rate(&windows[w], budget, &rate))
      tp__html_rawf(h, "<td class=\"n\">%.2f</td>", rate);
    else
      tp__html_raw(h, "<td class=\"n\">-</td>");
  }
  tp__html_rawf(h, "<td class=\"n\">%u</td><td><span class=\"%s\">%s</span></td></tr>\n", s->quorum,
                level_class(slo_level(st)), tp_slo_state_name(st));
}

/* Writes the rows that burn (burning) or not, up to *left more; returns how many. */
static size_t slo_rows(tp_html *h, const tp_report *r, bool burning, size_t *left) {
  size_t n = 0;
  for (size_t i = 0; i < r->n_slo; i++)
    for (int latency = 0; latency < 2; latency++) {
      const tp_report_slo_row *s = &r->slo[i];
      if (latency && s->p99_ms == 0)
        continue;
      tp_slo_state st = latency ? s->latency_state : s->availability_state;
      if ((st != TP_SLO_OK) != burning)
        continue;
      n++;
      if (*left == 0)
        continue;
      slo_row(h, s, latency);
      (*left)--;
    }
  return n;
}

static void slo(tp_html *h, const tp_report *r) {
  if (r->n_slo == 0)
    return; /* not asked for (a library caller without with_slo) */
  tp__html_raw(h, "<section id=\"slo\">\n<h2>SLO burn rates</h2>\n<p class=\"note\">burn rate"
                  " per window over the 3 days up to the window's end (1 = spending the error"
                  " budget exactly; page at 14.4 over 1 h and 5 m or 6 over 6 h and 30 m, ticket"
                  " at 1 over 3 d and 6 h, a target pages when its quorum of regions does)</p>\n"
                  "<table id=\"slo-table\">\n<thead><tr><th>target</th><th>region</th>"
                  "<th>objective</th>");
  for (int w = 0; w < TP_SLO_WINDOWS; w++)
    tp__html_rawf(h, "<th class=\"n\">%s</th>", tp_slo_window_name((tp_slo_window)w));
  tp__html_raw(h, "<th class=\"n\">quorum</th><th>state</th></tr></thead>\n<tbody>\n");
  size_t left = MAX_SLO_ROWS;
  size_t n = slo_rows(h, r, true, &left);
  n += slo_rows(h, r, false, &left);
  tp__html_raw(h, "</tbody>\n</table>\n");
  if (n > MAX_SLO_ROWS)
    tp__html_rawf(h, "<p class=\"note\">%zu more objectives on budget not shown (--format json"
                     " has them all)</p>\n",
                  n - MAX_SLO_ROWS);
  if (r->n_slo_warnings > 0) {
    tp__html_raw(h, "<ul class=\"warnings\" id=\"slo-warnings\">\n");
    for (size_t i = 0; i < r->n_slo_warnings; i++) {
      const tp_report_warning *w = &r->slo_warnings[i];
      tp__html_rawf(h, "<li class=\"%s\"><span class=\"level\">%s</span>slo ",
                    level_class((int)w->level), level_word((int)w->level));
      tp__html_text(h, w->series < r->n_slo ? r->slo[w->series].target : "?");
      tp__html_raw(h, ": ");
      tp__html_text(h, w->text);
      tp__html_raw(h, "</li>\n");
    }
    tp__html_raw(h, "</ul>\n");
  }
  tp__html_raw(h, "</section>\n");
}

/* ---- errors -------------------------------------------------------------------- */

static void error_rows(tp_html *h, const tp_report *r, const tp_report_series *s) {
  for (int cls = 0; cls < TP_REPORT_MAX_CLASS; cls++) {
    const char *name = tp_outcome_name(cls);
    if (cls == TP_OUTCOME_OK || name == NULL || s->class_counts[cls] == 0)
      continue;
    tp__html_raw(h, "<tr>");
    key_cells(h, r, s);
    tp__html_rawf(h, "<td>%s</td><td>%s</td><td class=\"n\">%" PRIu64 "</td>"
                     "<td class=\"n\">%.2f</td><td class=\"detail\">",
                  name, tp_outcome_category_name(tp_outcome_category_of((tp_outcome)cls)),
                  s->class_counts[cls],
                  100.0 * (double)s->class_counts[cls] / (double)s->probes);
    tp__html_text(h, s->class_example[cls]);
    tp__html_raw(h, "</td></tr>\n");
  }
}

static void errors(tp_html *h, const tp_report *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->n_series; i++)
    n += r->series[i].probes - r->series[i].successes - r->series[i].divergent;
  tp__html_raw(h, "<section id=\"errors\">\n<h2>Errors</h2>\n");
  if (n == 0) {
    tp__html_raw(h, "<p class=\"note\">no errors in window</p>\n</section>\n");
    return;
  }
  tp__html_raw(h, "<p class=\"note\">by error class, with who has to act and the latest"
                  " detail</p>\n<table id=\"errors-table\">\n<thead><tr>");
  key_headers(h, r);
  tp__html_raw(h, "<th>class</th><th>owner</th><th class=\"n\">count</th>"
                  "<th class=\"n\">share %</th><th>latest detail</th></tr></thead>\n<tbody>\n");
  for (size_t i = 0; i < r->n_series; i++)
    error_rows(h, r, &r->series[i]);
  tp__html_raw(h, "</tbody>\n</table>\n</section>\n");
}

/* ---- agents and delivery ------------------------------------------------------- */

static void time_cell(tp_html *h, int64_t unix_ns) {
  char when[32];
  if (unix_ns <= 0) {
    tp__html_raw(h, "<td>-</td>");
    return;
  }
  format_utc(unix_ns, when, sizeof(when));
  tp__html_rawf(h, "<td>%s</td>", when);
}

static void agent_row(tp_html *h, const tp_report_agent *a) {
  int level = a->silent ? TP_REPORT_CRIT : a->lost_in_window > 0 ? TP_REPORT_WARN : -1;
  tp__html_rawf(h, "<tr class=\"%s\"><td>", level_class(level));
  tp__html_text(h, a->agent_id);
  tp__html_raw(h, "</td>");
  time_cell(h, a->last_received_unix_ns);
  time_cell(h, a->last_started_unix_ns);
  tp__html_rawf(h, "<td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64 "</td>"
                   "<td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64 "</td>"
                   "<td><span class=\"%s\">%s</span></td></tr>\n",
                a->spools, a->results, a->lost_in_window, a->missing,
                a->silent ? "crit" : "ok", a->silent ? "SILENT" : "ok");
}

static void delivery(tp_html *h, const tp_report *r) {
  uint64_t lost = 0, missing = 0;
  for (size_t i = 0; i < r->n_agents; i++) {
    lost += r->agents[i].lost_in_window;
    missing += r->agents[i].missing;
  }
  tp__html_raw(h, "<section id=\"delivery\">\n<h2>Agents and delivery</h2>\n");
  if (r->n_agents == 0) {
    tp__html_raw(h, "<p class=\"note\">no agent has delivered results</p>\n</section>\n");
    return;
  }
  tp__html_rawf(h, "<p class=\"note\">%zu agents, %" PRIu64 " results reported lost in the window,"
                   " %" PRIu64 " missing: the rates above do not include what did not arrive</p>\n",
                r->n_agents, lost, missing);
  tp__html_raw(h, "<table id=\"agents-table\">\n<thead><tr><th>agent</th><th>last delivery</th>"
                  "<th>newest result</th><th class=\"n\">spools</th><th class=\"n\">stored</th>"
                  "<th class=\"n\">lost in window</th><th class=\"n\">missing</th>"
                  "<th>status</th></tr></thead>\n<tbody>\n");
  for (size_t i = 0; i < r->n_agents; i++)
    agent_row(h, &r->agents[i]);
  tp__html_raw(h, "</tbody>\n</table>\n");
  warning_list(h, r, "agent-warnings", r->agent_warnings, r->n_agent_warnings, true);
  tp__html_raw(h, "</section>\n");
}

/* ---- the page ------------------------------------------------------------------ */

tp_err tp__report_html(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  tp_html h = {.b = b, .rc = TP_E_OK};
  page_start(&h, r);
  header(&h, r);
  summary(&h, r);
  slo(&h, r);
  tp__html_chart_success(&h, r);
  tp__html_chart_p99(&h, r);
  tp__html_chart_versions(&h, r);
  tp__html_chart_expiry(&h, r);
  tp__html_chart_matrix(&h, r);
  errors(&h, r);
  delivery(&h, r);
  footer(&h, r, o);
  return h.rc;
}
