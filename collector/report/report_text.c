/* report_text.c - the views as aligned text for a terminal. Every stored string
 * (group names, error details, certificate names) goes through tp__report_repr:
 * they came from agents over the network, and a terminal must not interpret them.
 * Colour (WARN yellow, CRIT red) only when the caller asks (a TTY, NO_COLOR unset). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outcome.h"
#include "report_impl.h"
#include "report_output.h"
#include "report_table.h"
#include "tp_mem.h"
#include "tp_text.h"

char *tp__report_repr(const char *s) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t left = strlen((const char *)p);
  /* Worst case 4 output bytes per input byte ("\xNN"); C1 is 6 for 2. */
  char *out = tp_xmalloc(4 * left + 1);
  size_t o = 0;
  while (left > 0) {
    uint32_t cp = 0;
    size_t n = tp_utf8_seq(p, left, &cp);
    if (n == 1 && (*p == '\\' || *p == '"')) {
      out[o++] = '\\';
      out[o++] = (char)*p;
    } else if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7F))) {
      o += (size_t)snprintf(out + o, 5, "\\x%02X", *p);
      n = 1;
    } else if (cp >= 0x80 && cp <= 0x9F) { /* C1 */
      o += (size_t)snprintf(out + o, 7, "\\u%04X", (unsigned)cp);
    } else {
      memcpy(out + o, p, n);
      o += n;
    }
    p += n;
    left -= n;
  }
  out[o] = '\0';
  return out;
}

static tp_err add(tp_buf *b, char *text) {
  tp_err rc = tp_buf_append(b, text, strlen(text));
  free(text);
  return rc;
}

static void format_utc(int64_t unix_ns, char *out, size_t len) {
  time_t secs = (time_t)(unix_ns / 1000000000);
  struct tm tm;
  if (gmtime_r(&secs, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, len, "?");
}

static char *ms_cell(bool set, uint64_t ns) {
  return set ? tp_xasprintf("%.2f", (double)ns / 1e6) : tp_xstrdup("-");
}

static char *pct_cell(tp_report_rate r) {
  return r.set ? tp_xasprintf("%.2f", 100.0 * r.fraction) : tp_xstrdup("-");
}

static char *cell_repr(const char *s) {
  return s != NULL && s[0] != '\0' ? tp__report_repr(s) : tp_xstrdup("-");
}

/* The grouped dimensions as the first columns, upper-case names. */
static void key_columns(const tp_report *r, tp_table *t) {
  for (size_t i = 0; i < r->query.n_by; i++) {
    char name[16];
    const char *n = tp_report_dim_name(r->query.by[i]);
    size_t k = 0;
    for (; n[k] != '\0' && k + 1 < sizeof(name); k++)
      name[k] = (char)(n[k] >= 'a' && n[k] <= 'z' ? n[k] - 'a' + 'A' : n[k]);
    name[k] = '\0';
    tp_table_column(t, name, false);
  }
}

static size_t key_cells(const tp_report *r, const tp_report_series *s, char **cells) {
  for (size_t i = 0; i < r->query.n_by; i++)
    cells[i] = cell_repr(s->key[r->query.by[i]]);
  return r->query.n_by;
}

static tp_err header(const tp_report *r, const char *what, tp_buf *b) {
  char since[32], until[32];
  format_utc(r->query.since_unix_ns, since, sizeof(since));
  format_utc(r->query.until_unix_ns, until, sizeof(until));
  char *window = r->query.until_text == NULL
                     ? tp_xasprintf("window %s ending %s", r->query.since_text, until)
                     : tp_xasprintf("window %s..%s", since, until);
  tp_err rc = add(b, tp_xasprintf("tlsprobe %s: %s, %zu series, %" PRIu64 " probes\n", what, window,
                                  r->n_series, r->total_probes));
  free(window);
  if (rc == TP_E_OK && r->from_rollups)
    rc = add(b, tp_xasprintf("from rollups: percentiles within 1 %% (merged sketches), %s,"
                             " loop-lag p99 = the maximum;"
                             " %" PRIu64 " results not rolled up yet\n",
                             r->details_from_store ? "error details the latest kept per series"
                                                   : "no error details",
                             r->not_rolled_up));
  if (rc == TP_E_OK && r->from_rollups && r->mix_unrecorded > 0)
    rc = add(b, tp_xasprintf("negotiated mix: not recorded for %" PRIu64
                             " successes (spans rolled up before schema version 7)\n",
                             r->mix_unrecorded));
  return rc;
}

const char *tp__report_level_word(tp_report_level level, bool color) {
  if (!color)
    return level == TP_REPORT_CRIT ? "CRIT" : "WARN";
  return level == TP_REPORT_CRIT ? "\033[1;31mCRIT\033[0m" : "\033[33mWARN\033[0m";
}

/* "WARN good/default: certificate expires in 12 days (threshold 14)". */
static tp_err warnings(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  tp_err rc = TP_E_OK;
  for (size_t i = 0; rc == TP_E_OK && i < r->n_warnings; i++) {
    const tp_report_warning *w = &r->warnings[i];
    char *name = tp__report_series_name(r, &r->series[w->series]);
    rc = add(b,
             tp_xasprintf("%s %s: %s\n", tp__report_level_word(w->level, o->color), name, w->text));
    free(name);
  }
  return rc;
}

static tp_err render(tp_table *t, tp_buf *b) {
  tp_err rc = tp_table_render(t, b);
  tp_table_free(t);
  return rc;
}

/* ---- summary ------------------------------------------------------------------- */

static tp_err summary_table(const tp_report *r, tp_buf *b) {
  static const char *const cols[] = {"PROBES", "OK",     "DIVERGENT", "SATURATED", "SUCCESS%",
                                     "P50_MS", "P90_MS", "P99_MS",    "P99.9_MS"};
  tp_table *t = tp_table_new();
  key_columns(r, t);
  for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++)
    tp_table_column(t, cols[c], true);
  tp_table_column(t, "TOP_ERROR", false);
  size_t n_cols = tp_table_columns(t);
  char **cells = tp_xcalloc(n_cols, sizeof(*cells));
  for (size_t i = 0; i < r->n_series; i++) {
    const tp_report_series *s = &r->series[i];
    size_t k = key_cells(r, s, cells);
    cells[k++] = tp_xasprintf("%" PRIu64, s->probes);
    cells[k++] = tp_xasprintf("%" PRIu64, s->successes);
    cells[k++] = tp_xasprintf("%" PRIu64, s->divergent);
    cells[k++] = tp_xasprintf("%" PRIu64, s->saturated);
    cells[k++] = pct_cell(s->success_rate);
    cells[k++] = ms_cell(s->handshake.set, s->handshake.p50_ns);
    cells[k++] = ms_cell(s->handshake.set, s->handshake.p90_ns);
    cells[k++] = ms_cell(s->handshake.set, s->handshake.p99_ns);
    cells[k++] = ms_cell(s->handshake.set, s->handshake.p999_ns);
    cells[k++] = s->top_error ? tp_xasprintf("%s:%" PRIu64, s->top_error, s->top_error_count)
                              : tp_xstrdup("-");
    tp_table_row(t, cells);
  }
  free(cells);
  /* DIVERGENT and SATURATED only when a group has one: most reports have neither. */
  tp_table_hide_if_empty(t, r->query.n_by + 2);
  tp_table_hide_if_empty(t, r->query.n_by + 3);
  return render(t, b);
}

static tp_err view_summary(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  tp_err rc = header(r, "report", b);
  if (rc == TP_E_OK && r->n_series == 0)
    rc = tp_buf_append(b, "no probes in window\n", 20);
  else if (rc == TP_E_OK)
    rc = summary_table(r, b);
  if (rc == TP_E_OK)
    rc = warnings(r, o, b);
  if (rc == TP_E_OK)
    rc = tp__report_slo_text(r, o, b);
  if (rc == TP_E_OK)
    rc = tp__report_delivery_text(r, b);
  return rc;
}

/* ---- errors -------------------------------------------------------------------- */

static tp_err view_errors(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  (void)o;
  tp_err rc = header(r, "errors", b);
  tp_table *t = tp_table_new();
  key_columns(r, t);
  tp_table_column(t, "CLASS", false);
  tp_table_column(t, "OWNER", false);
  tp_table_column(t, "COUNT", true);
  tp_table_column(t, "SHARE%", true);
  tp_table_column(t, "LATEST_DETAIL", false);
  size_t n_cols = tp_table_columns(t);
  char **cells = tp_xcalloc(n_cols, sizeof(*cells));
  uint64_t by_owner[TP_CAT_INTERNAL + 1] = {0};
  for (size_t i = 0; i < r->n_series; i++) {
    const tp_report_series *s = &r->series[i];
    for (int cls = 0; cls < TP_REPORT_MAX_CLASS; cls++) {
      if (cls == TP_OUTCOME_OK || s->class_counts[cls] == 0 || tp_outcome_name(cls) == NULL)
        continue;
      tp_outcome_category cat = tp_outcome_category_of((tp_outcome)cls);
      by_owner[cat] += s->class_counts[cls];
      size_t k = key_cells(r, s, cells);
      cells[k++] = tp_xstrdup(tp_outcome_name(cls));
      cells[k++] = tp_xstrdup(tp_outcome_category_name(cat));
      cells[k++] = tp_xasprintf("%" PRIu64, s->class_counts[cls]);
      cells[k++] = tp_xasprintf("%.2f", 100.0 * (double)s->class_counts[cls] / (double)s->probes);
      cells[k++] = cell_repr(s->class_example[cls]);
      tp_table_row(t, cells);
    }
  }
  free(cells);
  if (rc == TP_E_OK && tp_table_rows(t) == 0)
    rc = tp_buf_append(b, "no errors in window\n", 20);
  else if (rc == TP_E_OK)
    rc = tp_table_render(t, b);
  tp_table_free(t);
  if (rc == TP_E_OK && r->total_probes > 0)
    rc = add(b, tp_xasprintf("by owner: server %" PRIu64 ", network %" PRIu64 ", client %" PRIu64
                             ", policy %" PRIu64 ", internal %" PRIu64 " (of %" PRIu64 " probes)\n",
                             by_owner[TP_CAT_SERVER], by_owner[TP_CAT_NETWORK],
                             by_owner[TP_CAT_CLIENT], by_owner[TP_CAT_POLICY],
                             by_owner[TP_CAT_INTERNAL], r->total_probes));
  return rc;
}

/* ---- versions ------------------------------------------------------------------ */

static void dist_rows(const tp_report *r, const tp_report_series *s, const char *kind,
                      const tp_report_dist *d, tp_table *t, char **cells) {
  for (size_t j = 0; j < d->n; j++) {
    size_t k = key_cells(r, s, cells);
    cells[k++] = tp_xstrdup(kind);
    cells[k++] = tp__report_repr(d->items[j].name);
    cells[k++] = tp_xasprintf("%" PRIu64, d->items[j].count);
    cells[k++] = tp_xasprintf("%.2f", 100.0 * (double)d->items[j].count / (double)s->successes);
    tp_table_row(t, cells);
  }
}

static tp_err view_versions(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  (void)o;
  tp_err rc = header(r, "versions", b);
  tp_table *t = tp_table_new();
  key_columns(r, t);
  tp_table_column(t, "KIND", false);
  tp_table_column(t, "NEGOTIATED", false);
  tp_table_column(t, "PROBES", true);
  tp_table_column(t, "SHARE%", true);
  char **cells = tp_xcalloc(tp_table_columns(t), sizeof(*cells));
  for (size_t i = 0; i < r->n_series; i++) {
    const tp_report_series *s = &r->series[i];
    dist_rows(r, s, "version", &s->versions, t, cells);
    dist_rows(r, s, "cipher", &s->ciphers, t, cells);
    dist_rows(r, s, "group", &s->groups, t, cells);
  }
  free(cells);
  if (rc == TP_E_OK && tp_table_rows(t) == 0)
    rc = tp_buf_append(b, "no successful handshakes in window\n", 35);
  else if (rc == TP_E_OK)
    rc = tp_table_render(t, b);
  tp_table_free(t);
  return rc;
}

/* ---- expiry -------------------------------------------------------------------- */

static const char *expiry_severity(int64_t days) {
  int threshold;
  int level = tp_report_expiry_level(days, &threshold);
  return level == TP_REPORT_CRIT ? "CRIT" : level == TP_REPORT_WARN ? "WARN" : "ok";
}

static tp_err view_expiry(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  tp_err rc = header(r, "expiry", b);
  tp_table *t = tp_table_new();
  static const char *const cols[] = {"TARGET",   "POS",     "DAYS",   "NOT_AFTER",
                                     "SEVERITY", "SUBJECT", "ISSUER", "SERIES"};
  static const bool right[] = {false, true, true, false, false, false, false, true};
  for (size_t c = 0; c < 8; c++)
    tp_table_column(t, cols[c], right[c]);
  char *cells[8];
  for (size_t i = 0; i < r->n_certs; i++) {
    const tp_report_cert *c = &r->certs[i];
    char when[32];
    format_utc(c->not_after_unix * 1000000000, when, sizeof(when));
    const char *sev = expiry_severity(c->days_left);
    cells[0] = tp__report_repr(c->target);
    cells[1] = c->position == 0 ? tp_xstrdup("leaf") : tp_xasprintf("%" PRIu32, c->position);
    cells[2] = tp_xasprintf("%" PRId64, c->days_left);
    cells[3] = tp_xstrdup(when);
    cells[4] = o->color && strcmp(sev, "ok") != 0
                   ? tp_xstrdup(tp__report_level_word(
                         sev[0] == 'C' ? TP_REPORT_CRIT : TP_REPORT_WARN, true))
                   : tp_xstrdup(sev);
    cells[5] = tp__report_repr(c->subject);
    cells[6] = tp__report_repr(c->issuer);
    cells[7] = tp_xasprintf("%" PRIu64, c->series);
    tp_table_row(t, cells);
  }
  if (rc == TP_E_OK && r->n_certs == 0)
    rc = tp_buf_append(b, "no certificate chains in window\n", 32);
  else if (rc == TP_E_OK)
    rc = tp_table_render(t, b);
  tp_table_free(t);
  return rc;
}

/* ---- clients ------------------------------------------------------------------- */

/* A profile is stranded when most of its handshakes fail (the policy shuts that
 * client population out), degraded when some do, fine otherwise. */
typedef enum { CLIENT_STRANDED, CLIENT_DEGRADED, CLIENT_FINE } client_state;

static client_state client_state_of(const tp_report_series *s) {
  if (s->successes * 2 < s->probes)
    return CLIENT_STRANDED;
  if (s->successes * 1000 < s->probes * TP_REPORT_MIN_SUCCESS_PERMILLE)
    return CLIENT_DEGRADED;
  return CLIENT_FINE;
}

/* Stranded first, then degraded, then fine; within each by failure class, then name. */
static int cmp_by_failure(const void *pa, const void *pb) {
  const tp_report_series *a = *(const tp_report_series *const *)pa;
  const tp_report_series *b = *(const tp_report_series *const *)pb;
  client_state sa = client_state_of(a), sb = client_state_of(b);
  if (sa != sb)
    return sa < sb ? -1 : 1;
  const char *ea = a->top_error ? a->top_error : "", *eb = b->top_error ? b->top_error : "";
  int c = strcmp(ea, eb);
  return c != 0 ? c : strcmp(a->profile, b->profile);
}

static bool same_bucket(const tp_report_series *a, const tp_report_series *b) {
  if (client_state_of(a) != client_state_of(b))
    return false;
  return client_state_of(a) == CLIENT_FINE ||
         strcmp(a->top_error ? a->top_error : "", b->top_error ? b->top_error : "") == 0;
}

/* "stranded by protocol_version (policy acts): 2 profiles: "IE 11", "Java 7"". */
static tp_err stranded_lines(const tp_report_series **order, size_t n, tp_buf *b) {
  static const char *const words[] = {"stranded", "degraded", "succeed"};
  tp_err rc = TP_E_OK;
  for (size_t i = 0; rc == TP_E_OK && i < n;) {
    size_t j = i + 1;
    while (j < n && same_bucket(order[i], order[j]))
      j++;
    client_state st = client_state_of(order[i]);
    if (st == CLIENT_FINE)
      rc = add(b, tp_xasprintf("%s: %zu profile%s:", words[st], j - i, j - i == 1 ? "" : "s"));
    else
      rc = add(b, tp_xasprintf("%s by %s (%s acts): %zu profile%s:", words[st],
                               order[i]->top_error ? order[i]->top_error : "?",
                               order[i]->top_error_category ? order[i]->top_error_category : "?",
                               j - i, j - i == 1 ? "" : "s"));
    for (size_t k = i; rc == TP_E_OK && k < j; k++) {
      char *p = tp__report_repr(order[k]->profile);
      rc = add(b, tp_xasprintf("%s \"%s\"", k == i ? "" : ",", p));
      free(p);
    }
    if (rc == TP_E_OK)
      rc = tp_buf_append(b, "\n", 1);
    i = j;
  }
  return rc;
}

static tp_err view_clients(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  (void)o;
  tp_err rc = header(r, "clients", b);
  const tp_report_series **order = tp_xcalloc(r->n_series + 1, sizeof(*order));
  for (size_t i = 0; i < r->n_series; i++)
    order[i] = &r->series[i];
  qsort(order, r->n_series, sizeof(*order), cmp_by_failure);
  tp_table *t = tp_table_new();
  key_columns(r, t);
  tp_table_column(t, "PROBES", true);
  tp_table_column(t, "SUCCESS%", true);
  tp_table_column(t, "FAILURE", false);
  tp_table_column(t, "OWNER", false);
  tp_table_column(t, "VERSION", false);
  tp_table_column(t, "CIPHER", false);
  char **cells = tp_xcalloc(tp_table_columns(t), sizeof(*cells));
  for (size_t i = 0; i < r->n_series; i++) {
    const tp_report_series *s = order[i];
    size_t k = key_cells(r, s, cells);
    cells[k++] = tp_xasprintf("%" PRIu64, s->probes);
    cells[k++] = pct_cell(s->success_rate);
    cells[k++] = tp_xstrdup(s->top_error ? s->top_error : "-");
    cells[k++] = tp_xstrdup(s->top_error_category ? s->top_error_category : "-");
    cells[k++] = cell_repr(s->versions.n ? s->versions.items[0].name : NULL);
    cells[k++] = cell_repr(s->ciphers.n ? s->ciphers.items[0].name : NULL);
    tp_table_row(t, cells);
  }
  free(cells);
  if (rc == TP_E_OK && r->n_series == 0)
    rc = tp_buf_append(b, "no probes in window\n", 20);
  else if (rc == TP_E_OK)
    rc = tp_table_render(t, b);
  tp_table_free(t);
  if (rc == TP_E_OK && r->n_series > 0)
    rc = stranded_lines(order, r->n_series, b);
  free(order);
  return rc;
}

/* ---- target -------------------------------------------------------------------- */

static tp_err facts_block(const tp_report *r, const tp_report_series *s, tp_buf *b) {
  const tp_store_facts *f = &s->facts;
  char *name = tp__report_series_name(r, s);
  char *version = cell_repr(f->tls_version), *cipher = cell_repr(f->cipher),
       *group = cell_repr(f->group), *alpn = cell_repr(f->alpn),
       *detail = cell_repr(f->error_detail);
  char when[32];
  format_utc(f->started_unix_ns, when, sizeof(when));
  tp_err rc =
      add(b, tp_xasprintf("latest %s at %s: %s %s %s alpn=%s%s%s%s\n", name, when, version, cipher,
                          group, alpn, f->error_detail && f->error_detail[0] ? " error=\"" : "",
                          f->error_detail && f->error_detail[0] ? detail : "",
                          f->error_detail && f->error_detail[0] ? "\"" : ""));
  free(name);
  free(version);
  free(cipher);
  free(group);
  free(alpn);
  free(detail);
  return rc;
}

static tp_err timeline(const tp_report *r, const tp_report_series *s, tp_buf *b) {
  if (s->buckets == NULL)
    return TP_E_OK;
  char *name = tp__report_series_name(r, s);
  if (name[0] == '\0') { /* a group of everything (no --by dimension has a value) */
    free(name);
    name = tp_xstrdup("(all)");
  }
  tp_err rc = add(b, tp_xasprintf("time series %s (%zu buckets):\n", name, r->query.buckets));
  free(name);
  tp_table *t = tp_table_new();
  tp_table_column(t, "FROM", false);
  tp_table_column(t, "PROBES", true);
  tp_table_column(t, "SUCCESS%", true);
  tp_table_column(t, "P99_MS", true);
  char *cells[4];
  for (size_t k = 0; k < r->query.buckets; k++) {
    const tp_report_bucket *bk = &s->buckets[k];
    char when[32];
    format_utc(bk->start_unix_ns, when, sizeof(when));
    cells[0] = tp_xstrdup(when);
    cells[1] = tp_xasprintf("%" PRIu64, bk->probes);
    cells[2] = bk->probes ? tp_xasprintf("%.2f", 100.0 * (double)bk->successes / (double)bk->probes)
                          : tp_xstrdup("-");
    cells[3] = ms_cell(bk->have_p99, bk->p99_ns);
    tp_table_row(t, cells);
  }
  if (rc == TP_E_OK)
    rc = tp_table_render(t, b);
  tp_table_free(t);
  return rc;
}

static tp_err view_target(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  tp_err rc = view_summary(r, o, b);
  for (size_t i = 0; rc == TP_E_OK && i < r->n_series; i++)
    if (r->series[i].have_facts)
      rc = facts_block(r, &r->series[i], b);
  /* Per region by default (where an incident shows first), per group with --by. */
  const tp_report *tl = o->by_region != NULL ? o->by_region : r;
  for (size_t i = 0; rc == TP_E_OK && i < tl->n_series; i++)
    rc = timeline(tl, &tl->series[i], b);
  return rc;
}

/* ---- agents -------------------------------------------------------------------- */

static tp_err view_agents(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  tp_err rc = header(r, "agents", b);
  if (rc == TP_E_OK && r->n_series > 0)
    rc = summary_table(r, b);
  if (rc == TP_E_OK)
    rc = warnings(r, o, b);
  if (rc == TP_E_OK && r->n_agents == 0)
    rc = tp_buf_append(b, "no agent has delivered results\n", 31);
  if (rc == TP_E_OK)
    rc = tp__report_delivery_text(r, b);
  return rc;
}

tp_err tp__report_text(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  switch (o->view) {
  case TP_VIEW_SUMMARY:
    return view_summary(r, o, b);
  case TP_VIEW_ERRORS:
    return view_errors(r, o, b);
  case TP_VIEW_VERSIONS:
    return view_versions(r, o, b);
  case TP_VIEW_EXPIRY:
    return view_expiry(r, o, b);
  case TP_VIEW_CLIENTS:
    return view_clients(r, o, b);
  case TP_VIEW_TARGET:
    return view_target(r, o, b);
  case TP_VIEW_AGENTS:
    return view_agents(r, o, b);
  }
  return TP_E_INVAL;
}
