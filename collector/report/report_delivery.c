/* report_delivery.c - the report's delivery view: per agent, what arrived, what it
 * reported lost, what is missing, and who went silent. A success rate is only as
 * true as the share of results that arrived; this section says how large that
 * share was, so "100 %" over what happened to arrive cannot hide a gap. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_out.h"
#include "report_impl.h"
#include "tp_mem.h"

typedef struct delivery_ctx {
  tp_report *report;
  size_t alloc;
  int64_t forget_before; /* agents last heard of before this are not listed */
} delivery_ctx;

static tp_report_agent *find_agent(tp_report *r, const char *agent_id) {
  /* Spools and drops both arrive ordered by agent_id: the match is the last one. */
  if (r->n_agents > 0 && strcmp(r->agents[r->n_agents - 1].agent_id, agent_id) == 0)
    return &r->agents[r->n_agents - 1];
  for (size_t i = 0; i < r->n_agents; i++)
    if (strcmp(r->agents[i].agent_id, agent_id) == 0)
      return &r->agents[i];
  return NULL;
}

static tp_err on_spool(const tp_store_spool_row *row, void *data) {
  delivery_ctx *c = data;
  tp_report *r = c->report;
  tp_report_agent *a = find_agent(r, row->agent_id);
  if (a == NULL) {
    if (r->n_agents == c->alloc) {
      c->alloc = c->alloc ? c->alloc * 2 : 8;
      r->agents = tp_xrealloc(r->agents, c->alloc * sizeof(*r->agents));
    }
    a = &r->agents[r->n_agents++];
    *a = (tp_report_agent){.agent_id = tp_xstrdup(row->agent_id)};
  }
  a->spools++;
  a->results += row->results;
  a->lost_total += row->dropped;
  uint64_t accounted = row->results + row->dropped_with_seq;
  if (row->max_seq > accounted)
    a->missing += row->max_seq - accounted;
  if (row->last_received_unix_ns > a->last_received_unix_ns)
    a->last_received_unix_ns = row->last_received_unix_ns;
  if (row->last_started_unix_ns > a->last_started_unix_ns)
    a->last_started_unix_ns = row->last_started_unix_ns;
  return TP_E_OK;
}

static tp_err on_drop(const tp_store_drop_row *row, void *data) {
  delivery_ctx *c = data;
  tp_report_agent *a = find_agent(c->report, row->agent_id);
  if (a == NULL)
    return TP_E_OK; /* counted with its spool; a spool row always exists */
  a->lost_in_window += row->count;
  if (strcmp(row->reason, "spool_full") == 0)
    a->lost_full += row->count;
  else if (strcmp(row->reason, "spool_error") == 0)
    a->lost_error += row->count;
  else if (strcmp(row->reason, "too_old") == 0)
    a->lost_too_old += row->count;
  else
    a->lost_invalid += row->count;
  if (a->lost_first_unix_ns == 0 || row->first_unix_ns < a->lost_first_unix_ns)
    a->lost_first_unix_ns = row->first_unix_ns;
  if (row->last_unix_ns > a->lost_last_unix_ns)
    a->lost_last_unix_ns = row->last_unix_ns;
  return TP_E_OK;
}

static void agent_warn(tp_report *r, size_t agent, tp_report_level level, char *text) {
  r->agent_warnings =
      tp_xrealloc(r->agent_warnings, (r->n_agent_warnings + 1) * sizeof(*r->agent_warnings));
  r->agent_warnings[r->n_agent_warnings++] =
      (tp_report_warning){.series = agent, .level = level, .text = text};
}

static void format_hms(int64_t unix_ns, char *out, size_t len) {
  time_t t = (time_t)(unix_ns / 1000000000);
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, len, "?");
}

/* "12m", "3h", "2d": the largest whole unit. */
static void format_age(int64_t ns, char *out, size_t len) {
  int64_t s = ns / 1000000000;
  if (s >= 86400)
    snprintf(out, len, "%" PRId64 "d", s / 86400);
  else if (s >= 3600)
    snprintf(out, len, "%" PRId64 "h", s / 3600);
  else if (s >= 60)
    snprintf(out, len, "%" PRId64 "m", s / 60);
  else
    snprintf(out, len, "%" PRId64 "s", s);
}

static void agent_warnings(tp_report *r, size_t i, uint64_t silent_after_ms) {
  tp_report_agent *a = &r->agents[i];
  int64_t now = r->query.now_unix_ns;
  char age[16], last[32], first_lost[32], last_lost[32];
  if (now - a->last_received_unix_ns > (int64_t)silent_after_ms * 1000000) {
    a->silent = true;
    format_age(now - a->last_received_unix_ns, age, sizeof(age));
    format_hms(a->last_received_unix_ns, last, sizeof(last));
    agent_warn(r, i, TP_REPORT_CRIT,
               tp_xasprintf("silent for %s (last delivery %s): its targets are not being watched"
                            " from there, or its results cannot reach the collector",
                            age, last));
  }
  if (a->lost_in_window > 0) {
    format_hms(a->lost_first_unix_ns, first_lost, sizeof(first_lost));
    format_hms(a->lost_last_unix_ns, last_lost, sizeof(last_lost));
    agent_warn(r, i, TP_REPORT_WARN,
               tp_xasprintf("%" PRIu64 " results lost in the window (spool_full %" PRIu64
                            ", spool_error %" PRIu64 ", invalid_result %" PRIu64
                            ", too_old %" PRIu64 "), produced %s..%s: rates above do not"
                            " include them",
                            a->lost_in_window, a->lost_full, a->lost_error, a->lost_invalid,
                            a->lost_too_old, first_lost, last_lost));
  }
  if (a->missing > 0)
    agent_warn(r, i, TP_REPORT_WARN,
               tp_xasprintf("%" PRIu64 " numbered results neither received nor reported lost"
                            " (still on their way, or lost without a trace)",
                            a->missing));
}

tp_err tp__report_delivery(tp_store *store, tp_report *r, int64_t since_unix_ns, char *err,
                           size_t errlen) {
  delivery_ctx c = {.report = r};
  tp_err rc = tp_store_scan_spools(store, on_spool, &c, err, errlen);
  if (rc == TP_E_OK)
    rc = tp_store_scan_drops(store, since_unix_ns, on_drop, &c, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  /* Agents gone for longer than the window and a day are decommissioned, not silent. */
  int64_t forget = r->query.now_unix_ns - (int64_t)TP_REPORT_FORGET_AGENT_MS * 1000000;
  if (since_unix_ns < forget)
    forget = since_unix_ns;
  size_t kept = 0;
  for (size_t i = 0; i < r->n_agents; i++) {
    if (r->agents[i].last_received_unix_ns < forget) {
      free(r->agents[i].agent_id);
      continue;
    }
    r->agents[kept++] = r->agents[i];
  }
  r->n_agents = kept;
  uint64_t silent_after =
      r->query.silent_after_ms ? r->query.silent_after_ms : TP_REPORT_DEFAULT_SILENT_AFTER_MS;
  for (size_t i = 0; i < r->n_agents; i++)
    agent_warnings(r, i, silent_after);
  return TP_E_OK;
}

void tp__report_delivery_free(tp_report *r) {
  for (size_t i = 0; i < r->n_agents; i++)
    free(r->agents[i].agent_id);
  free(r->agents);
  for (size_t i = 0; i < r->n_agent_warnings; i++)
    free(r->agent_warnings[i].text);
  free(r->agent_warnings);
}

size_t tp_report_agent_count(const tp_report *r) { return r->n_agents; }

const tp_report_agent *tp_report_agent_at(const tp_report *r, size_t i) {
  return i < r->n_agents ? &r->agents[i] : NULL;
}

size_t tp_report_agent_warning_count(const tp_report *r) { return r->n_agent_warnings; }

const tp_report_warning *tp_report_agent_warning_at(const tp_report *r, size_t i) {
  return i < r->n_agent_warnings ? &r->agent_warnings[i] : NULL;
}

/* ---- output --------------------------------------------------------------------- */

static tp_err append(tp_buf *buf, char *text) {
  tp_err rc = tp_buf_append(buf, text, strlen(text));
  free(text);
  return rc;
}

/* Nothing when no agent delivered anything (an empty or pre-v4 database). */
tp_err tp__report_delivery_text(const tp_report *r, tp_buf *buf) {
  uint64_t lost = 0, missing = 0;
  if (r->n_agents == 0)
    return TP_E_OK;
  for (size_t i = 0; i < r->n_agents; i++) {
    lost += r->agents[i].lost_in_window;
    missing += r->agents[i].missing;
  }
  tp_err rc = append(buf, tp_xasprintf("delivery: %zu agents, %" PRIu64
                                       " results reported lost in the window, %" PRIu64
                                       " missing\n",
                                       r->n_agents, lost, missing));
  if (rc == TP_E_OK)
    rc = append(buf, tp_xasprintf("%-24s %-20s %9s %9s %9s  %s\n", "AGENT", "LAST DELIVERY",
                                  "STORED", "LOST", "MISSING", "STATUS"));
  for (size_t i = 0; rc == TP_E_OK && i < r->n_agents; i++) {
    const tp_report_agent *a = &r->agents[i];
    char last[32];
    format_hms(a->last_received_unix_ns, last, sizeof(last));
    char *id = tp__report_repr(a->agent_id);
    rc = append(buf, tp_xasprintf("%-24s %-20s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 "  %s\n", id,
                                  last, a->results, a->lost_in_window, a->missing,
                                  a->silent ? "SILENT" : (a->lost_in_window || a->missing)
                                                             ? "LOSS"
                                                             : "ok"));
    free(id);
  }
  for (size_t i = 0; rc == TP_E_OK && i < r->n_agent_warnings; i++) {
    const tp_report_warning *w = &r->agent_warnings[i];
    char *id = tp__report_repr(r->agents[w->series].agent_id);
    rc = append(buf, tp_xasprintf("%s agent %s: %s\n", w->level == TP_REPORT_CRIT ? "CRIT" : "WARN",
                                  id, w->text));
    free(id);
  }
  return rc;
}

tp_err tp__report_delivery_json(const tp_report *r, tp_buf *b) {
  tp_err rc = tp_json_raw(b, ",\"agents\":[");
  for (size_t i = 0; rc == TP_E_OK && i < r->n_agents; i++) {
    const tp_report_agent *a = &r->agents[i];
    rc = tp_json_raw(b, "%s{\"agent_id\":", i ? "," : "");
    if (rc == TP_E_OK)
      rc = tp_json_str(b, a->agent_id);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b,
                       ",\"spools\":%" PRIu64 ",\"results\":%" PRIu64 ",\"lost_total\":%" PRIu64
                       ",\"lost_in_window\":%" PRIu64 ",\"lost_spool_full\":%" PRIu64
                       ",\"lost_spool_error\":%" PRIu64 ",\"lost_invalid_result\":%" PRIu64
                       ",\"lost_too_old\":%" PRIu64
                       ",\"missing\":%" PRIu64 ",\"last_delivery_unix\":%" PRId64
                       ",\"last_result_started_unix\":%" PRId64 ",\"silent\":%s}",
                       a->spools, a->results, a->lost_total, a->lost_in_window, a->lost_full,
                       a->lost_error, a->lost_invalid, a->lost_too_old, a->missing,
                       a->last_received_unix_ns / 1000000000,
                       a->last_started_unix_ns / 1000000000, a->silent ? "true" : "false");
  }
  return rc == TP_E_OK ? tp_json_raw(b, "]") : rc;
}
