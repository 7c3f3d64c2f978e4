/* report_format.c - renders a built tp_report as an aligned text table or as JSON.
 * Output is assembled in memory first so a write error is reported once, and a
 * partial report is never mistaken for a complete one. Every stored string in the
 * text output (series names, divergence texts) goes through tp__report_repr: they
 * came from agents over the network, and a terminal must not interpret them. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_out.h"
#include "outcome.h"
#include "report_impl.h"
#include "tp_mem.h"

#define N_COLS 11
#define COL_DIVERGENT 5
#define OUT_CAP ((size_t)1 << 40) /* report output is ours, not network input */

/* DIVERGENT (emulation-divergent successes, never part of OK) is shown only when
 * a series in the report has one, so the table of every report without
 * real-client emulation findings keeps its long-standing columns. */
static const char *const col_names[N_COLS] = {
    "TARGET",   "PROFILE", "REGION", "PROBES", "OK",       "DIVERGENT",
    "SUCCESS%", "P50_MS",  "P90_MS", "P99_MS", "TOP_ERROR"};
/* Numbers are right-aligned, names left-aligned. */
static const bool col_right[N_COLS] = {false, false, false, true, true, true,
                                       true,  true,  true,  true, false};

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), 0 if none starts
 * there. Stored strings were validated at ingest, but a report must stay safe
 * over a database someone edited by hand. */
static size_t utf8_len(const unsigned char *p) {
  unsigned char c = p[0];
  if (c < 0x80)
    return 1;
  size_t n = 0;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 4;
  for (size_t k = 1; k < n; k++)
    if ((p[k] & 0xC0) != 0x80) /* also stops at the NUL */
      return 0;
  /* Overlongs and surrogates of the 3- and 4-byte forms. */
  if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
      (c == 0xF4 && p[1] > 0x8F))
    return 0;
  return n;
}

char *tp__report_repr(const char *s) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  /* Worst case 4 output bytes per input byte ("\xNN"); C1 is 6 for 2. */
  char *out = tp_xmalloc(4 * strlen((const char *)p) + 1);
  size_t o = 0;
  while (*p != '\0') {
    size_t n = utf8_len(p);
    if (n == 1 && (*p == '\\' || *p == '"')) {
      out[o++] = '\\';
      out[o++] = (char)*p;
    } else if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7F))) {
      o += (size_t)snprintf(out + o, 5, "\\x%02X", *p);
      n = 1;
    } else if (n == 2 && p[0] == 0xC2 && p[1] <= 0x9F) { /* C1: U+0080..U+009F */
      o += (size_t)snprintf(out + o, 7, "\\u%04X", p[1]);
    } else {
      memcpy(out + o, p, n);
      o += n;
    }
    p += n;
  }
  out[o] = '\0';
  return out;
}

static tp_err flush(const tp_buf *buf, FILE *out) {
  if (buf->len > 0 && fwrite(buf->data, 1, buf->len, out) != buf->len)
    return TP_E_IO;
  return fflush(out) == 0 ? TP_E_OK : TP_E_IO;
}

static void format_utc(int64_t unix_ns, char *out, size_t len) {
  time_t secs = (time_t)(unix_ns / 1000000000);
  struct tm tm;
  if (gmtime_r(&secs, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, len, "?");
}

static char *latency_cell(const tp_report_series *s, uint64_t ns) {
  return s->have_latency ? tp_xasprintf("%.2f", (double)ns / 1e6) : tp_xstrdup("-");
}

/* The cells of one row, each a new string. */
static void row_cells(const tp_report_series *s, char *cells[N_COLS]) {
  cells[0] = tp__report_repr(s->target);
  cells[1] = tp__report_repr(s->profile);
  cells[2] = s->region[0] ? tp__report_repr(s->region) : tp_xstrdup("-");
  cells[3] = tp_xasprintf("%" PRIu64, s->probes);
  cells[4] = tp_xasprintf("%" PRIu64, s->successes);
  cells[COL_DIVERGENT] = tp_xasprintf("%" PRIu64, s->divergent);
  cells[6] = tp_xasprintf("%.2f", s->success_rate);
  cells[7] = latency_cell(s, s->p50_ns);
  cells[8] = latency_cell(s, s->p90_ns);
  cells[9] = latency_cell(s, s->p99_ns);
  cells[10] = s->top_error ? tp_xasprintf("%s:%" PRIu64, s->top_error, s->top_error_count)
                           : tp_xstrdup("-");
}

static tp_err append_row(tp_buf *buf, char *const cells[N_COLS], const size_t width[N_COLS],
                         const bool shown[N_COLS]) {
  tp_err rc = TP_E_OK;
  for (int c = 0; rc == TP_E_OK && c < N_COLS; c++) {
    if (!shown[c])
      continue;
    size_t len = strlen(cells[c]);
    size_t pad = width[c] - len;
    bool last = c == N_COLS - 1;
    for (size_t i = 0; rc == TP_E_OK && col_right[c] && i < pad; i++)
      rc = tp_buf_append(buf, " ", 1);
    if (rc == TP_E_OK)
      rc = tp_buf_append(buf, cells[c], len);
    for (size_t i = 0; rc == TP_E_OK && !col_right[c] && !last && i < pad; i++)
      rc = tp_buf_append(buf, " ", 1);
    if (rc == TP_E_OK)
      rc = tp_buf_append(buf, last ? "\n" : "  ", last ? 1 : 2);
  }
  return rc;
}

static tp_err append_table(const tp_report *r, tp_buf *buf) {
  size_t n = r->n_series;
  char *(*cells)[N_COLS] = tp_xcalloc(n, sizeof(*cells));
  size_t width[N_COLS];
  bool shown[N_COLS];
  tp_err rc = TP_E_OK;
  for (int c = 0; c < N_COLS; c++) {
    width[c] = strlen(col_names[c]);
    shown[c] = c != COL_DIVERGENT;
  }
  for (size_t i = 0; i < n; i++) {
    if (r->series[i].divergent > 0)
      shown[COL_DIVERGENT] = true;
    row_cells(&r->series[i], cells[i]);
    for (int c = 0; c < N_COLS; c++) {
      size_t len = strlen(cells[i][c]);
      width[c] = len > width[c] ? len : width[c];
    }
  }
  rc = append_row(buf, (char *const *)col_names, width, shown);
  for (size_t i = 0; rc == TP_E_OK && i < n; i++)
    rc = append_row(buf, cells[i], width, shown);
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < N_COLS; c++)
      free(cells[i][c]);
  free(cells);
  return rc;
}

/* "WARN good/default: certificate expires in 12 days (threshold 14)"; the region
 * joins the series name only when there is one. Warning texts are terminal-safe
 * already (report.c escapes what it quotes). */
static tp_err append_warnings(const tp_report *r, tp_buf *buf) {
  tp_err rc = TP_E_OK;
  for (size_t i = 0; rc == TP_E_OK && i < r->n_warnings; i++) {
    const tp_report_warning *w = &r->warnings[i];
    const tp_report_series *s = &r->series[w->series];
    char *target = tp__report_repr(s->target);
    char *profile = tp__report_repr(s->profile);
    char *region = tp__report_repr(s->region);
    char *line = tp_xasprintf("%s %s/%s%s%s: %s\n", w->level == TP_REPORT_CRIT ? "CRIT" : "WARN",
                              target, profile, region[0] ? "/" : "", region, w->text);
    rc = tp_buf_append(buf, line, strlen(line));
    free(line);
    free(target);
    free(profile);
    free(region);
  }
  return rc;
}

tp_err tp_report_write_text(const tp_report *r, FILE *out) {
  tp_buf buf;
  char ending[32];
  tp_buf_init(&buf, OUT_CAP);
  format_utc(r->query.now_unix_ns, ending, sizeof(ending));
  char *header =
      tp_xasprintf("tlsprobe report: window %s ending %s, %zu series, %" PRIu64 " probes\n",
                   r->query.since_text, ending, r->n_series, r->total_probes);
  tp_err rc = tp_buf_append(&buf, header, strlen(header));
  free(header);
  if (rc == TP_E_OK && r->n_series == 0)
    rc = tp_buf_append(&buf, "no probes in window\n", 20);
  else if (rc == TP_E_OK)
    rc = append_table(r, &buf);
  if (rc == TP_E_OK)
    rc = append_warnings(r, &buf);
  if (rc == TP_E_OK)
    rc = tp__report_delivery_text(r, &buf);
  if (rc == TP_E_OK)
    rc = flush(&buf, out);
  tp_buf_free(&buf);
  return rc;
}

/* ---- JSON ---------------------------------------------------------------------- */

static tp_err json_key_str(tp_buf *b, const char *key, const char *value) {
  tp_err rc = tp_json_raw(b, ",\"%s\":", key);
  return rc == TP_E_OK ? tp_json_str(b, value) : rc;
}

static tp_err json_latency(tp_buf *b, const char *key, const tp_report_series *s, uint64_t ns) {
  if (!s->have_latency)
    return tp_json_raw(b, ",\"%s\":null", key);
  return tp_json_raw(b, ",\"%s\":%.3f", key, (double)ns / 1e6);
}

/* "errors":{"expired":3,...}: non-ok classes seen, by name (the outcome list is
 * ordered by value, so sort names here for stable output). */
static tp_err json_errors(tp_buf *b, const tp_report_series *s) {
  const char *names[TP_REPORT_MAX_CLASS];
  uint64_t counts[TP_REPORT_MAX_CLASS];
  size_t n = 0;
  for (int cls = 0; cls < TP_REPORT_MAX_CLASS; cls++) {
    const char *name = tp_outcome_name(cls);
    if (cls == TP_OUTCOME_OK || name == NULL || s->class_counts[cls] == 0)
      continue;
    size_t at = n++;
    while (at > 0 && strcmp(names[at - 1], name) > 0) { /* insertion sort, <= 24 names */
      names[at] = names[at - 1];
      counts[at] = counts[at - 1];
      at--;
    }
    names[at] = name;
    counts[at] = s->class_counts[cls];
  }
  tp_err rc = tp_json_raw(b, ",\"errors\":{");
  for (size_t i = 0; rc == TP_E_OK && i < n; i++)
    rc = tp_json_raw(b, "%s\"%s\":%" PRIu64, i ? "," : "", names[i], counts[i]);
  return rc == TP_E_OK ? tp_json_raw(b, "}") : rc;
}

static tp_err json_opt_i64(tp_buf *b, const char *key, tp_store_opt v) {
  if (!v.set)
    return tp_json_raw(b, ",\"%s\":null", key);
  return tp_json_raw(b, ",\"%s\":%" PRId64, key, v.v);
}

static tp_err json_opt_bool(tp_buf *b, const char *key, tp_store_opt v) {
  if (!v.set)
    return tp_json_raw(b, ",\"%s\":null", key);
  return tp_json_raw(b, ",\"%s\":%s", key, v.v ? "true" : "false");
}

/* Nanoseconds as milliseconds with 3 decimals, like the latency columns. */
static tp_err json_opt_ms(tp_buf *b, const char *key, tp_store_opt ns) {
  if (!ns.set)
    return tp_json_raw(b, ",\"%s\":null", key);
  return tp_json_raw(b, ",\"%s\":%.3f", key, (double)ns.v / 1e6);
}

static tp_err json_opt_str(tp_buf *b, const char *key, const char *value) {
  if (value == NULL)
    return tp_json_raw(b, ",\"%s\":null", key);
  return json_key_str(b, key, value);
}

static tp_err json_rate(tp_buf *b, const char *key, tp_report_rate r) {
  if (!r.set)
    return tp_json_raw(b, ",\"%s\":null", key);
  return tp_json_raw(b, ",\"%s\":%.2f", key, r.percent);
}

/* A JSON array text stored by ingest (chain_json.c, tp_json_str_array): emitted
 * verbatim; NULL (stored before the column existed) is null. */
static tp_err json_stored_array(tp_buf *b, const char *key, const char *stored) {
  tp_err rc = tp_json_raw(b, ",\"%s\":", key);
  if (rc != TP_E_OK)
    return rc;
  if (stored == NULL)
    return tp_json_raw(b, "null");
  return stored[0] == '[' ? tp_buf_append(b, stored, strlen(stored)) : tp_json_raw(b, "[]");
}

static tp_err json_ocsp(tp_buf *b, const tp_store_facts *f) {
  if (!f->ocsp_stapled)
    return tp_json_raw(b, ",\"ocsp\":null");
  tp_err rc = tp_json_raw(b, ",\"ocsp\":{\"cert_status\":");
  if (rc == TP_E_OK)
    rc = tp_json_str(b, f->ocsp_cert_status ? f->ocsp_cert_status : "");
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "this_update_unix", f->ocsp_this_update_unix);
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "next_update_unix", f->ocsp_next_update_unix);
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "age_seconds", f->ocsp_age_seconds);
  return rc == TP_E_OK ? tp_json_raw(b, "}") : rc;
}

static tp_err json_http(tp_buf *b, const tp_store_facts *f) {
  if (!f->http_present)
    return tp_json_raw(b, ",\"http\":null");
  tp_err rc = tp_json_raw(b, ",\"http\":{\"status\":%" PRId64, f->http_status.v);
  if (rc == TP_E_OK)
    rc = json_opt_ms(b, "first_byte_ms", f->http_first_byte_ns);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "hsts", f->http_hsts);
  return rc == TP_E_OK ? tp_json_raw(b, "}") : rc;
}

static tp_err json_facts(tp_buf *b, const tp_store_facts *f) {
  tp_err rc = json_key_str(b, "tls_version", f->tls_version);
  if (rc == TP_E_OK)
    rc = json_key_str(b, "cipher", f->cipher);
  if (rc == TP_E_OK)
    rc = json_key_str(b, "group", f->group);
  if (rc == TP_E_OK)
    rc = json_key_str(b, "alpn", f->alpn);
  /* days_to_earliest_expiry is only meaningful with a chain (tlsprobe.proto). */
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "days_to_earliest_expiry", f->days_to_earliest_expiry);
  if (rc == TP_E_OK)
    rc = json_key_str(b, "error_detail", f->error_detail);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"resumed\":%s,\"hello_retry_request\":%s",
                     f->resumed ? "true" : "false", f->hello_retry_request ? "true" : "false");
  /* Schema version 2 facts: null for a result stored before them. */
  if (rc == TP_E_OK)
    rc = json_opt_str(b, "mode", f->mode);
  if (rc == TP_E_OK)
    rc = json_stored_array(b, "groups_offered", f->groups_offered);
  if (rc == TP_E_OK)
    rc = json_stored_array(b, "key_shares_offered", f->key_shares_offered);
  if (rc == TP_E_OK)
    rc = json_opt_str(b, "fidelity_note", f->fidelity_note);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "ticket_received", f->ticket_received);
  if (rc == TP_E_OK)
    rc = json_opt_ms(b, "resumption_handshake_ms", f->resumption_handshake_ns);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "early_data_attempted", f->early_data_attempted);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "early_data_accepted", f->early_data_accepted);
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "chain_length_sent", f->chain_length_sent);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "chain_complete", f->chain_complete);
  if (rc == TP_E_OK)
    rc = json_ocsp(b, f);
  if (rc == TP_E_OK)
    rc = json_http(b, f);
  /* Schema version 3 facts: null for a result stored before them. */
  if (rc == TP_E_OK)
    rc = json_opt_str(b, "address_family", f->address_family);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "emulation_checked", f->emulation_checked);
  if (rc == TP_E_OK)
    rc = json_opt_str(b, "emulation_divergence", f->emulation_divergence);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "early_data_policy_violation", f->early_data_policy_violation);
  /* chain_json was encoded by chain_json.c at ingest: emitted verbatim. */
  if (rc == TP_E_OK)
    rc = json_stored_array(b, "chain", f->chain_json);
  return rc;
}

static tp_err json_series(tp_buf *b, const tp_report_series *s) {
  tp_err rc = tp_json_raw(b, "{\"target\":");
  if (rc == TP_E_OK)
    rc = tp_json_str(b, s->target);
  if (rc == TP_E_OK)
    rc = json_key_str(b, "profile", s->profile);
  if (rc == TP_E_OK)
    rc = json_key_str(b, "region", s->region);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"probes\":%" PRIu64 ",\"successes\":%" PRIu64 ",\"success_rate\":%.2f",
                     s->probes, s->successes, s->success_rate);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b,
                     ",\"divergent_successes\":%" PRIu64
                     ",\"emulation_checked_successes\":%" PRIu64,
                     s->divergent, s->emulation_checked);
  if (rc == TP_E_OK)
    rc = json_latency(b, "p50_ms", s, s->p50_ns);
  if (rc == TP_E_OK)
    rc = json_latency(b, "p90_ms", s, s->p90_ns);
  if (rc == TP_E_OK)
    rc = json_latency(b, "p99_ms", s, s->p99_ns);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"mean_loop_lag_ms\":%.3f", s->mean_loop_lag_ms);
  if (rc == TP_E_OK && s->top_error != NULL)
    rc = tp_json_raw(b,
                     ",\"top_error\":{\"class\":\"%s\",\"count\":%" PRIu64 ",\"category\":\"%s\"}",
                     s->top_error, s->top_error_count,
                     s->top_error_category ? s->top_error_category : "internal");
  else if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"top_error\":null");
  if (rc == TP_E_OK)
    rc = json_errors(b, s);
  if (rc == TP_E_OK)
    rc = json_rate(b, "hrr_rate", s->hrr_rate);
  if (rc == TP_E_OK)
    rc = json_rate(b, "resumption_rate", s->resumption_rate);
  if (rc == TP_E_OK)
    rc = json_rate(b, "early_data_accept_rate", s->early_data_accept_rate);
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "min_days_to_expiry", s->min_days_to_expiry);
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "ocsp_max_age_seconds", s->ocsp_max_age_seconds);
  if (rc == TP_E_OK)
    rc = json_opt_str(b, "divergence_example", s->divergence_example);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"early_data_policy_violations\":%" PRIu64, s->early_data_violations);
  if (rc == TP_E_OK && s->have_facts)
    rc = json_facts(b, &s->facts);
  return rc == TP_E_OK ? tp_json_raw(b, "}") : rc;
}

tp_err tp_report_write_json(const tp_report *r, FILE *out) {
  tp_buf buf;
  tp_buf_init(&buf, OUT_CAP);
  tp_err rc = tp_json_raw(
      &buf, "{\"window_seconds\":%" PRIu64 ",\"generated_unix\":%" PRId64 ",\"series\":[",
      r->query.window_ms / 1000, r->query.now_unix_ns / 1000000000);
  for (size_t i = 0; rc == TP_E_OK && i < r->n_series; i++) {
    if (i > 0)
      rc = tp_json_raw(&buf, ",");
    if (rc == TP_E_OK)
      rc = json_series(&buf, &r->series[i]);
  }
  if (rc == TP_E_OK)
    rc = tp_json_raw(&buf, "]");
  if (rc == TP_E_OK)
    rc = tp__report_delivery_json(r, &buf);
  if (rc == TP_E_OK)
    rc = tp_json_raw(&buf, "}\n");
  if (rc == TP_E_OK)
    rc = flush(&buf, out);
  tp_buf_free(&buf);
  return rc;
}
