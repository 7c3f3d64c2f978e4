/* report_html_chart.c - the inline SVG charts of `report --format html`: success
 * rate and p99 handshake over time per group (from the groups' time buckets),
 * negotiated version per group (stacked bars), certificate expiry (days left, on a
 * log scale with the 30/14/7/3-day marks) and the client matrix (one cell per
 * group x profile, coloured by success rate, labelled with the top error class).
 *
 * Each chart is a <section> with one <svg id="chart-..."> of explicit width,
 * height and viewBox, so any renderer sizes it without CSS, and every plotted
 * element carries the numbers it shows in data-* attributes (rates as fractions
 * with 6 decimals and milliseconds with 3, as in the JSON report; "-" where a
 * bucket has no value), so a test -- or a reader -- can check the picture against
 * the data. No xmlns: inline SVG in HTML does not need one, and the page then
 * holds no URL at all. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report_html.h"
#include "tp_mem.h"

#define CHART_W 960
#define MAX_LINES 40   /* groups drawn in a line chart; the rest are named in a note */
#define MAX_BARS 200   /* groups in the version chart */
#define MAX_CERTS 100  /* certificates in the expiry chart, soonest first */
#define LABEL_CHARS 44 /* code points of a row label */

/* ---- line charts over the time buckets ----------------------------------------- */

#define LINE_LEFT 64
#define LINE_RIGHT 16
#define LINE_TOP 14
#define LINE_PLOT_H 220
#define LINE_BOTTOM 34
#define LINE_H (LINE_TOP + LINE_PLOT_H + LINE_BOTTOM)
#define LINE_PLOT_W (CHART_W - LINE_LEFT - LINE_RIGHT)

typedef struct line_spec {
  const char *id, *section, *title, *note;
  bool (*value)(const tp_report_bucket *k, double *out);
  int decimals; /* of the data-values */
  bool percent; /* the axis shows fraction * 100 % */
} line_spec;

static bool success_value(const tp_report_bucket *k, double *out) {
  if (k->probes == 0)
    return false;
  *out = (double)k->successes / (double)k->probes;
  return true;
}

static bool p99_value(const tp_report_bucket *k, double *out) {
  if (!k->have_p99)
    return false;
  *out = (double)k->p99_ns / 1e6;
  return true;
}

/* 1, 2, 2.5 or 5 times a power of ten, at least v: an axis maximum whose quarters
 * (the grid lines) are round numbers too. */
static double nice_ceiling(double v) {
  if (!(v > 0))
    return 1;
  double p = pow(10, floor(log10(v)));
  static const double steps[] = {1, 2, 2.5, 5, 10};
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
    if (steps[i] * p >= v * (1 - 1e-12))
      return steps[i] * p;
  return 10 * p;
}

static double bucket_x(size_t i, size_t n) {
  return LINE_LEFT + ((double)i + 0.5) * LINE_PLOT_W / (double)n;
}

static double value_y(double v, double y_max) {
  if (v > y_max)
    v = y_max;
  return LINE_TOP + LINE_PLOT_H - v / y_max * LINE_PLOT_H;
}

static double y_max_of(const tp_report *r, const line_spec *spec) {
  if (spec->percent)
    return 1;
  double max = 0, v;
  for (size_t i = 0; i < r->n_series && i < MAX_LINES; i++)
    for (size_t k = 0; r->series[i].buckets != NULL && k < r->query.buckets; k++)
      if (spec->value(&r->series[i].buckets[k], &v) && v > max)
        max = v;
  return nice_ceiling(max);
}

/* A bucket start as the axis shows it: seconds for short windows, the date for
 * windows over a day. */
static void time_label(char *out, size_t len, int64_t unix_ns, int64_t span_ns) {
  time_t secs = (time_t)(unix_ns / 1000000000);
  struct tm tm;
  size_t n = 0;
  if (gmtime_r(&secs, &tm) != NULL) {
    if (span_ns > INT64_C(86400000000000))
      n = strftime(out, len, "%m-%d %H:%M", &tm);
    else if (span_ns < INT64_C(600000000000))
      n = strftime(out, len, "%H:%M:%S", &tm);
    else
      n = strftime(out, len, "%H:%M", &tm);
  }
  if (n == 0)
    snprintf(out, len, "?");
}

static void line_axes(tp_html *h, const tp_report *r, const line_spec *spec, double y_max) {
  size_t n = r->query.buckets;
  tp__html_raw(h, "<g class=\"grid\">");
  for (int t = 0; t <= 4; t++) {
    double v = y_max * t / 4, y = value_y(v, y_max);
    tp__html_rawf(h, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", LINE_LEFT, y,
                  CHART_W - LINE_RIGHT, y);
    if (spec->percent)
      tp__html_rawf(h, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g %%</text>", LINE_LEFT - 6,
                    y + 4, 100 * v);
    else
      tp__html_rawf(h, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g ms</text>", LINE_LEFT - 6,
                    y + 4, v);
  }
  tp__html_raw(h, "</g>\n<g class=\"axis\">");
  int64_t span = r->query.until_unix_ns - r->query.since_unix_ns;
  size_t step = n > 6 ? (n + 5) / 6 : 1;
  for (size_t i = 0; i < n; i += step) {
    char when[32];
    double x = LINE_LEFT + (double)i * LINE_PLOT_W / (double)n;
    time_label(when, sizeof(when), r->series[0].buckets[i].start_unix_ns, span);
    tp__html_rawf(h, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
                     "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>",
                  x, LINE_TOP + LINE_PLOT_H, x, LINE_TOP + LINE_PLOT_H + 5, x,
                  LINE_TOP + LINE_PLOT_H + 20, when);
  }
  tp__html_raw(h, "</g>\n");
}

/* data-values and the path's d: a gap where a bucket has no value; a lone value
 * is a zero-length segment, which the round line cap draws as a dot. */
static void line_path(tp_html *h, const tp_report *r, const line_spec *spec,
                      const tp_report_series *s, size_t index, double y_max) {
  size_t n = r->query.buckets;
  tp__html_rawf(h, "<path class=\"series\" stroke=\"%s\" data-group=\"", tp__html_series_color(index));
  tp__html_group(h, r, s);
  tp__html_raw(h, "\" data-values=\"");
  for (size_t k = 0; k < n; k++) {
    double v;
    if (spec->value(&s->buckets[k], &v))
      tp__html_rawf(h, "%s%.*f", k ? "," : "", spec->decimals, v);
    else
      tp__html_raw(h, k ? ",-" : "-");
  }
  tp__html_raw(h, "\" data-probes=\"");
  for (size_t k = 0; k < n; k++)
    tp__html_rawf(h, "%s%" PRIu64, k ? "," : "", s->buckets[k].probes);
  tp__html_raw(h, "\" d=\"");
  bool drawing = false;
  for (size_t k = 0; k < n; k++) {
    double v, next;
    if (!spec->value(&s->buckets[k], &v)) {
      drawing = false;
      continue;
    }
    bool lone = !drawing && (k + 1 == n || !spec->value(&s->buckets[k + 1], &next));
    tp__html_rawf(h, "%s%.1f %.1f%s", drawing ? " L" : " M", bucket_x(k, n), value_y(v, y_max),
                  lone ? " h0" : "");
    drawing = true;
  }
  tp__html_raw(h, "\"><title>");
  tp__html_group(h, r, s);
  tp__html_raw(h, "</title></path>\n");
}

static void legend(tp_html *h, const tp_report *r, size_t shown) {
  tp__html_raw(h, "<ul class=\"legend\">");
  for (size_t i = 0; i < shown; i++) {
    tp__html_rawf(h, "<li><span class=\"swatch\" style=\"background:%s\"></span>",
                  tp__html_series_color(i));
    tp__html_group(h, r, &r->series[i]);
    tp__html_raw(h, "</li>");
  }
  tp__html_raw(h, "</ul>\n");
}

static void svg_open(tp_html *h, const char *id, int w, int hgt, const char *label) {
  tp__html_rawf(h, "<div class=\"chart\"><svg id=\"%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\""
                   " role=\"img\" aria-label=\"%s\"",
                id, w, hgt, w, hgt, label);
}

static void svg_empty(tp_html *h, int w, int hgt, const char *text) {
  tp__html_rawf(h, "><text class=\"empty\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text></svg></div>\n",
                w / 2, hgt / 2, text);
}

static void line_chart(tp_html *h, const tp_report *r, const line_spec *spec) {
  size_t n = r->query.buckets;
  tp__html_rawf(h, "<section id=\"%s\">\n<h2>%s</h2>\n<p class=\"note\">%s</p>\n", spec->section,
                spec->title, spec->note);
  svg_open(h, spec->id, CHART_W, LINE_H, spec->title);
  if (r->n_series == 0 || n == 0 || r->series[0].buckets == NULL) {
    tp__html_raw(h, " data-buckets=\"0\"");
    svg_empty(h, CHART_W, LINE_H,
              r->n_series == 0 ? "no probes in window" : "no time series (report --buckets N)");
    tp__html_raw(h, "</section>\n");
    return;
  }
  double y_max = y_max_of(r, spec);
  tp__html_rawf(h, " data-buckets=\"%zu\" data-y-max=\"%g\" data-bucket-starts=\"", n, y_max);
  for (size_t k = 0; k < n; k++)
    tp__html_rawf(h, "%s%" PRId64, k ? "," : "", r->series[0].buckets[k].start_unix_ns / 1000000000);
  tp__html_raw(h, "\">\n");
  line_axes(h, r, spec, y_max);
  size_t shown = r->n_series < MAX_LINES ? r->n_series : MAX_LINES;
  for (size_t i = 0; i < shown; i++)
    line_path(h, r, spec, &r->series[i], i, y_max);
  tp__html_raw(h, "</svg></div>\n");
  legend(h, r, shown);
  if (shown < r->n_series)
    tp__html_rawf(h, "<p class=\"note\">%zu more groups not drawn: narrow the report with"
                     " --target, --region or --by</p>\n",
                  r->n_series - shown);
  tp__html_raw(h, "</section>\n");
}

void tp__html_chart_success(tp_html *h, const tp_report *r) {
  static const line_spec spec = {
      .id = "chart-success",
      .section = "success-over-time",
      .title = "Success rate over time",
      .note = "exact successes / probes per time bucket and group; a gap is a bucket without"
              " probes",
      .value = success_value,
      .decimals = 6,
      .percent = true,
  };
  line_chart(h, r, &spec);
}

void tp__html_chart_p99(tp_html *h, const tp_report *r) {
  static const line_spec spec = {
      .id = "chart-p99",
      .section = "p99-over-time",
      .title = "p99 handshake over time",
      .note = "nearest-rank p99 of the handshake time of each bucket's successful probes, in"
              " milliseconds",
      .value = p99_value,
      .decimals = 3,
      .percent = false,
  };
  line_chart(h, r, &spec);
}

/* ---- versions: one stacked bar per group --------------------------------------- */

#define BAR_LABEL_W 300
#define BAR_W 560
#define BAR_ROW 24
#define BAR_TOP 8

static const char *version_color(const char *name, size_t index) {
  static const struct {
    const char *name, *color;
  } known[] = {{"TLS1.3", "#2e7d32"}, {"TLS1.2", "#4e79a7"}, {"TLS1.1", "#f28e2b"},
               {"TLS1.0", "#e15759"}, {"SSL3.0", "#7f0000"}};
  for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
    if (strcmp(name, known[i].name) == 0)
      return known[i].color;
  return tp__html_series_color(index + 5); /* away from the known ones' hues */
}

/* The distinct version names over the shown groups, in first-seen order. */
static size_t version_names(const tp_report *r, size_t shown, const char ***out) {
  size_t n = 0, alloc = 8;
  const char **names = tp_xmalloc(alloc * sizeof(*names));
  for (size_t i = 0; i < shown; i++)
    for (size_t j = 0; j < r->series[i].versions.n; j++) {
      const char *v = r->series[i].versions.items[j].name;
      size_t k = 0;
      while (k < n && strcmp(names[k], v) != 0)
        k++;
      if (k < n)
        continue;
      if (n == alloc) {
        alloc *= 2;
        names = tp_xrealloc(names, alloc * sizeof(*names));
      }
      names[n++] = v;
    }
  *out = names;
  return n;
}

static size_t name_index(const char **names, size_t n, const char *v) {
  for (size_t k = 0; k < n; k++)
    if (strcmp(names[k], v) == 0)
      return k;
  return 0;
}

/* A row's label, cut to fit the label column; its <title> has the whole name. */
static void row_label(tp_html *h, const tp_report *r, const tp_report_series *s, double y) {
  char *name = tp__html_group_raw(r, s, TP_DIM_COUNT);
  tp__html_rawf(h, "<text x=\"4\" y=\"%.1f\">", y);
  tp__html_text_cut(h, name, LABEL_CHARS);
  tp__html_raw(h, "<title>");
  tp__html_text(h, name);
  tp__html_raw(h, "</title></text>");
  free(name);
}

static void version_bar(tp_html *h, const tp_report *r, const tp_report_series *s, double y,
                        const char **names, size_t n_names) {
  uint64_t total = 0;
  for (size_t j = 0; j < s->versions.n; j++)
    total += s->versions.items[j].count;
  tp__html_rawf(h, "<g class=\"bar\" data-successes=\"%" PRIu64 "\" data-group=\"", total);
  tp__html_group(h, r, s);
  tp__html_raw(h, "\">");
  row_label(h, r, s, y + 16);
  if (total == 0)
    tp__html_rawf(h, "<text class=\"none\" x=\"%d\" y=\"%.1f\">no successful handshake</text>",
                  BAR_LABEL_W, y + 16);
  double x = BAR_LABEL_W;
  for (size_t j = 0; j < s->versions.n; j++) {
    const tp_report_count *c = &s->versions.items[j];
    double share = (double)c->count / (double)total, w = share * BAR_W;
    tp__html_rawf(h, "<rect class=\"version\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\""
                     " fill=\"%s\" data-count=\"%" PRIu64 "\" data-share=\"%.6f\" data-version=\"",
                  x, y + 3, w, BAR_ROW - 6, version_color(c->name, name_index(names, n_names, c->name)),
                  c->count, share);
    tp__html_text(h, c->name);
    tp__html_raw(h, "\" data-group=\"");
    tp__html_group(h, r, s);
    tp__html_raw(h, "\"><title>");
    tp__html_text(h, c->name);
    tp__html_rawf(h, ": %" PRIu64 " of %" PRIu64 " successes</title></rect>", c->count, total);
    if (w >= 64) {
      tp__html_rawf(h, "<text class=\"cell-label\" x=\"%.1f\" y=\"%.1f\">", x + 5, y + 16);
      tp__html_text_cut(h, c->name, 8);
      tp__html_rawf(h, " %.0f %%</text>", 100 * share);
    }
    x += w;
  }
  if (total > 0)
    tp__html_rawf(h, "<text x=\"%d\" y=\"%.1f\">%" PRIu64 "</text>", BAR_LABEL_W + BAR_W + 8, y + 16,
                  total);
  tp__html_raw(h, "</g>\n");
}

void tp__html_chart_versions(tp_html *h, const tp_report *r) {
  size_t shown = r->n_series < MAX_BARS ? r->n_series : MAX_BARS;
  int height = BAR_TOP * 2 + (shown ? (int)shown : 1) * BAR_ROW;
  tp__html_raw(h, "<section id=\"versions\">\n<h2>TLS versions</h2>\n<p class=\"note\">negotiated"
                  " version per group, as a share of its successful probes (the number at the"
                  " right)</p>\n");
  svg_open(h, "chart-versions", CHART_W, height, "TLS versions per group");
  if (shown == 0) {
    svg_empty(h, CHART_W, height, "no probes in window");
    tp__html_raw(h, "</section>\n");
    return;
  }
  tp__html_raw(h, ">\n");
  const char **names = NULL;
  size_t n_names = version_names(r, shown, &names);
  for (size_t i = 0; i < shown; i++)
    version_bar(h, r, &r->series[i], BAR_TOP + (double)i * BAR_ROW, names, n_names);
  tp__html_raw(h, "</svg></div>\n<ul class=\"legend\">");
  for (size_t k = 0; k < n_names; k++) {
    tp__html_rawf(h, "<li><span class=\"swatch\" style=\"background:%s\"></span>",
                  version_color(names[k], k));
    tp__html_text(h, names[k]);
    tp__html_raw(h, "</li>");
  }
  tp__html_raw(h, "</ul>\n");
  free(names);
  if (shown < r->n_series)
    tp__html_rawf(h, "<p class=\"note\">%zu more groups not drawn</p>\n", r->n_series - shown);
  tp__html_raw(h, "</section>\n");
}

/* ---- expiry: days left per certificate ------------------------------------------ */

#define EXP_LABEL_W 360
#define EXP_EXPIRED_W 60 /* the zone left of day 0 where expired certificates show */
#define EXP_X0 (EXP_LABEL_W + EXP_EXPIRED_W)
#define EXP_BAR_W 440
#define EXP_ROW 22
#define EXP_TOP 22
#define EXP_MIN_DOMAIN 365

/* log(1 + days): 3, 7, 14 and 30 days stay apart next to 3650. */
static double expiry_x(int64_t days, double domain) {
  if (days <= 0)
    return EXP_X0;
  return EXP_X0 + log1p((double)days) / log1p(domain) * EXP_BAR_W;
}

static void expiry_marks(tp_html *h, double domain, int height) {
  static const int marks[] = {30, 14, 7, 3}, grid[] = {90, 365, 3650};
  tp__html_rawf(h, "<g class=\"grid\"><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
                   "<text x=\"%d\" y=\"14\" text-anchor=\"middle\">0</text>",
                EXP_X0, EXP_TOP - 4, EXP_X0, height - 4, EXP_X0);
  for (size_t i = 0; i < 3; i++)
    if (grid[i] <= domain) {
      double x = expiry_x(grid[i], domain);
      tp__html_rawf(h, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
                       "<text x=\"%.1f\" y=\"14\" text-anchor=\"middle\">%dd</text>",
                    x, EXP_TOP - 4, x, height - 4, x, grid[i]);
    }
  tp__html_raw(h, "</g>\n");
  for (size_t i = 0; i < 4; i++) {
    double x = expiry_x(marks[i], domain);
    tp__html_rawf(h, "<g class=\"mark\" data-days=\"%d\"><line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\""
                     " y2=\"%d\"/><text x=\"%.1f\" y=\"14\" text-anchor=\"middle\">%dd</text></g>\n",
                  marks[i], x, EXP_TOP - 4, x, height - 4, x, marks[i]);
  }
}

static const char *severity_color(int level) {
  return level == TP_REPORT_CRIT ? "#c62828" : level == TP_REPORT_WARN ? "#e0a100" : "#2e7d32";
}

static void expiry_row(tp_html *h, const tp_report_cert *c, double y, double domain) {
  int threshold;
  int level = tp_report_expiry_level(c->days_left, &threshold);
  const char *sev = level == TP_REPORT_CRIT ? "CRIT" : level == TP_REPORT_WARN ? "WARN" : "ok";
  double x = c->days_left < 0 ? EXP_X0 - EXP_EXPIRED_W + 4 : EXP_X0;
  double w = c->days_left < 0 ? EXP_EXPIRED_W - 4 : expiry_x(c->days_left, domain) - EXP_X0;
  tp__html_rawf(h, "<text x=\"4\" y=\"%.1f\">", y + 15);
  tp__html_text_cut(h, c->target, 16);
  tp__html_raw(h, c->position == 0 ? " leaf " : " ");
  if (c->position > 0)
    tp__html_rawf(h, "#%" PRIu32 " ", c->position);
  tp__html_text_cut(h, c->subject, 30);
  tp__html_rawf(h, "</text><rect class=\"expiry\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\""
                   " fill=\"%s\" data-days=\"%" PRId64 "\" data-severity=\"%s\" data-position=\"%" PRIu32
                   "\" data-not-after-unix=\"%" PRId64 "\" data-target=\"",
                x, y + 3, w < 1 ? 1 : w, EXP_ROW - 6, severity_color(level), c->days_left, sev,
                c->position, c->not_after_unix);
  tp__html_text(h, c->target);
  tp__html_raw(h, "\" data-subject=\"");
  tp__html_text(h, c->subject);
  tp__html_raw(h, "\"><title>");
  tp__html_text(h, c->subject);
  tp__html_raw(h, " issued by ");
  tp__html_text(h, c->issuer);
  tp__html_rawf(h, " (%" PRIu64 " series)</title></rect>", c->series);
  if (c->days_left < 0)
    tp__html_rawf(h, "<text x=\"%d\" y=\"%.1f\">expired %" PRId64 " d ago (%s)</text>\n",
                  EXP_X0 + 6, y + 15, -c->days_left, sev);
  else
    tp__html_rawf(h, "<text x=\"%.1f\" y=\"%.1f\">%" PRId64 " d (%s)</text>\n", x + w + 6, y + 15,
                  c->days_left, sev);
}

void tp__html_chart_expiry(tp_html *h, const tp_report *r) {
  size_t shown = r->n_certs < MAX_CERTS ? r->n_certs : MAX_CERTS;
  int height = EXP_TOP + (shown ? (int)shown : 1) * EXP_ROW + 8;
  tp__html_raw(h, "<section id=\"expiry\">\n<h2>Certificate expiry</h2>\n<p class=\"note\">days"
                  " left per certificate of the latest chains (leaf and chain position), soonest"
                  " first, on a log scale; WARN at 30 and 14 days, CRIT at 7 and 3 and"
                  " once expired</p>\n");
  svg_open(h, "chart-expiry", CHART_W, height, "certificate expiry");
  if (shown == 0) {
    svg_empty(h, CHART_W, height, "no certificate chains in window");
    tp__html_raw(h, "</section>\n");
    return;
  }
  double domain = EXP_MIN_DOMAIN;
  for (size_t i = 0; i < shown; i++)
    if ((double)r->certs[i].days_left > domain)
      domain = (double)r->certs[i].days_left;
  tp__html_rawf(h, " data-certificates=\"%zu\">\n", r->n_certs);
  expiry_marks(h, domain, height);
  for (size_t i = 0; i < shown; i++)
    expiry_row(h, &r->certs[i], EXP_TOP + (double)i * EXP_ROW, domain);
  tp__html_raw(h, "</svg></div>\n");
  if (shown < r->n_certs)
    tp__html_rawf(h, "<p class=\"note\">%zu more certificates not drawn (report expiry lists"
                     " them all)</p>\n",
                  r->n_certs - shown);
  tp__html_raw(h, "</section>\n");
}

/* ---- client matrix: groups x profile ------------------------------------------- */

#define MX_LABEL_W 260
#define MX_CELL_W 148
#define MX_CELL_H 36
#define MX_HEAD_H 26
#define MX_MAX_ROWS 200 /* beyond them a note counts the groups left out */
#define MX_MAX_COLS 60

/* Rows are the groups' values other than the profile, columns the profiles (one
 * column when the report is not grouped by profile). */
typedef struct matrix {
  char **rows; /* owned, raw (escaped when written) */
  size_t n_rows;
  const char **cols; /* the report's strings */
  size_t n_cols;
  size_t *cell; /* n_rows x n_cols: series index + 1, 0 = no such group */
  size_t left_out; /* groups in a row or column beyond the caps */
  bool by_profile;
} matrix;

static char *row_key(const tp_report *r, const tp_report_series *s) {
  return tp__html_group_raw(r, s, TP_DIM_PROFILE);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static size_t find_str(const char *const *v, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], s) == 0)
      return i;
  return n;
}

static const char *col_key(const matrix *m, const tp_report_series *s) {
  return m->by_profile ? s->profile : "all profiles";
}

/* Rows and columns in the order the groups come (sorted by key), columns then
 * sorted by name; the caps keep every lookup short and the picture readable. */
static void matrix_build(const tp_report *r, matrix *m) {
  *m = (matrix){0};
  for (size_t i = 0; i < r->query.n_by; i++)
    if (r->query.by[i] == TP_DIM_PROFILE)
      m->by_profile = true;
  m->rows = tp_xcalloc(MX_MAX_ROWS, sizeof(*m->rows));
  m->cols = tp_xcalloc(MX_MAX_COLS, sizeof(*m->cols));
  for (size_t i = 0; i < r->n_series; i++) {
    const char *col = col_key(m, &r->series[i]);
    if (m->n_cols < MX_MAX_COLS && find_str(m->cols, m->n_cols, col) == m->n_cols)
      m->cols[m->n_cols++] = col;
  }
  qsort(m->cols, m->n_cols, sizeof(*m->cols), cmp_str);
  m->cell = tp_xcalloc(MX_MAX_ROWS * m->n_cols + 1, sizeof(*m->cell));
  for (size_t i = 0; i < r->n_series; i++) {
    char *key = row_key(r, &r->series[i]);
    size_t row = find_str((const char *const *)m->rows, m->n_rows, key);
    size_t col = find_str(m->cols, m->n_cols, col_key(m, &r->series[i]));
    if (row == m->n_rows && m->n_rows < MX_MAX_ROWS)
      m->rows[m->n_rows++] = key;
    else
      free(key);
    if (row < m->n_rows && col < m->n_cols)
      m->cell[row * m->n_cols + col] = i + 1;
    else
      m->left_out++;
  }
}

static void matrix_free(matrix *m) {
  for (size_t i = 0; i < m->n_rows; i++)
    free(m->rows[i]);
  free(m->rows);
  free(m->cols);
  free(m->cell);
}

/* The success-rate classes of the cells: the field's 99.9 % target and 99.5 %
 * "investigate" line, then half, then none. */
static const struct {
  double min;
  const char *cls, *color, *label;
} rate_classes[] = {{0.999, "rate-good", "#2e7d32", "&#8805; 99.9 %"},
                    {0.995, "rate-investigate", "#689f38", "&#8805; 99.5 %"},
                    {0.5, "rate-degraded", "#b26a00", "&#8805; 50 %"},
                    {1e-12, "rate-failing", "#d84315", "&gt; 0 %"},
                    {-1, "rate-down", "#b71c1c", "0 %"}};
#define N_RATE_CLASSES (sizeof(rate_classes) / sizeof(rate_classes[0]))

static size_t rate_class(double fraction) {
  size_t i = 0;
  while (i + 1 < N_RATE_CLASSES && fraction < rate_classes[i].min)
    i++;
  return i;
}

static void matrix_cell(tp_html *h, const tp_report *r, const matrix *m, size_t row, size_t col) {
  double x = MX_LABEL_W + (double)col * MX_CELL_W, y = MX_HEAD_H + (double)row * MX_CELL_H;
  size_t at = m->cell[row * m->n_cols + col];
  if (at == 0) {
    tp__html_rawf(h, "<rect class=\"cell empty\" x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\""
                     " fill=\"#eaeef2\"><title>no probes</title></rect>\n",
                  x + 1, y + 1, MX_CELL_W - 2, MX_CELL_H - 2);
    return;
  }
  const tp_report_series *s = &r->series[at - 1];
  double rate = s->success_rate.set ? s->success_rate.fraction : 0;
  size_t k = rate_class(rate);
  tp__html_rawf(h, "<g class=\"cell\" data-probes=\"%" PRIu64 "\" data-success-rate=\"%.6f\""
                   " data-top-error=\"%s\" data-group=\"",
                s->probes, rate, s->top_error ? s->top_error : "");
  tp__html_group(h, r, s);
  tp__html_rawf(h, "\"><rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\""
                   " rx=\"3\" fill=\"%s\"><title>",
                rate_classes[k].cls, x + 1, y + 1, MX_CELL_W - 2, MX_CELL_H - 2,
                rate_classes[k].color);
  tp__html_group(h, r, s);
  tp__html_rawf(h, ": %.2f %% of %" PRIu64 " probes", 100 * rate, s->probes);
  if (s->top_error != NULL)
    tp__html_rawf(h, ", top error %s:%" PRIu64 " (%s acts)", s->top_error, s->top_error_count,
                  s->top_error_category ? s->top_error_category : "internal");
  tp__html_rawf(h, "</title></rect><text class=\"cell-label\" x=\"%.1f\" y=\"%.1f\">%s</text>"
                   "<text class=\"cell-label\" x=\"%.1f\" y=\"%.1f\">%.2f %%</text></g>\n",
                x + 6, y + 15, s->top_error ? s->top_error : "ok", x + 6, y + 29, 100 * rate);
}

static void matrix_svg(tp_html *h, const tp_report *r, const matrix *m) {
  for (size_t c = 0; c < m->n_cols; c++) {
    tp__html_rawf(h, "<text class=\"col\" x=\"%.1f\" y=\"17\">",
                  MX_LABEL_W + (double)c * MX_CELL_W + 4);
    tp__html_text_cut(h, m->cols[c], 14);
    tp__html_raw(h, "<title>");
    tp__html_text(h, m->cols[c]);
    tp__html_raw(h, "</title></text>\n");
  }
  for (size_t row = 0; row < m->n_rows; row++) {
    tp__html_rawf(h, "<text class=\"row\" x=\"4\" y=\"%.1f\">",
                  MX_HEAD_H + (double)row * MX_CELL_H + 22);
    tp__html_text_cut(h, m->rows[row][0] ? m->rows[row] : "all", 34);
    tp__html_raw(h, "<title>");
    tp__html_text(h, m->rows[row][0] ? m->rows[row] : "all");
    tp__html_raw(h, "</title></text>\n");
    for (size_t c = 0; c < m->n_cols; c++)
      matrix_cell(h, r, m, row, c);
  }
}

void tp__html_chart_matrix(tp_html *h, const tp_report *r) {
  tp__html_raw(h, "<section id=\"clients\">\n<h2>Client matrix</h2>\n<p class=\"note\">success"
                  " rate of each group per client profile, labelled with its most frequent error"
                  " class: who does this policy strand?</p>\n");
  if (r->n_series == 0) {
    svg_open(h, "chart-matrix", CHART_W, 60, "client matrix");
    svg_empty(h, CHART_W, 60, "no probes in window");
    tp__html_raw(h, "</section>\n");
    return;
  }
  matrix m;
  matrix_build(r, &m);
  int width = MX_LABEL_W + (int)m.n_cols * MX_CELL_W + 8;
  int height = MX_HEAD_H + (int)m.n_rows * MX_CELL_H + 4;
  svg_open(h, "chart-matrix", width, height, "client matrix");
  tp__html_rawf(h, " data-rows=\"%zu\" data-cols=\"%zu\">\n", m.n_rows, m.n_cols);
  matrix_svg(h, r, &m);
  tp__html_raw(h, "</svg></div>\n<ul class=\"legend\">");
  for (size_t k = 0; k < N_RATE_CLASSES; k++)
    tp__html_rawf(h, "<li><span class=\"swatch\" style=\"background:%s\"></span>%s</li>",
                  rate_classes[k].color, rate_classes[k].label);
  tp__html_raw(h, "</ul>\n");
  if (m.left_out > 0)
    tp__html_rawf(h, "<p class=\"note\">%zu more groups not drawn (at most %d rows and %d"
                     " profiles): narrow the report with --target, --region or --profile</p>\n",
                  m.left_out, MX_MAX_ROWS, MX_MAX_COLS);
  tp__html_raw(h, "</section>\n");
  matrix_free(&m);
}
