/* report_slo.c - see report_slo.h. One range scan over the 3 days before the
 * window's end counts, per target x region, events and bad events in each of the
 * five alert windows; then each region's state, then each target's verdict under
 * its quorum. */
#include "report_slo.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json_out.h"
#include "report_impl.h"
#include "report_keymap.h"
#include "report_rollup.h"
#include "sketch.h"
#include "report_table.h"
#include "tp_mem.h"

#define MIN_NS (60LL * 1000000000)
/* Rollups lagging by more results than this are not current enough for the SLO. */
#define TP_REPORT_SLO_MAX_UNROLLED 10000
#define LATENCY_BUDGET TP_SLO_LATENCY_BUDGET

static const char *const window_names[TP_SLO_WINDOWS] = {"5m", "30m", "1h", "6h", "3d"};
static const int64_t window_ns[TP_SLO_WINDOWS] = {5 * MIN_NS, 30 * MIN_NS, 60 * MIN_NS,
                                                  360 * MIN_NS, 3 * 1440 * MIN_NS};

/* (long window, short window, burn threshold, state) -- the workbook's table. */
static const struct {
  tp_slo_window long_w, short_w;
  double threshold;
  tp_slo_state state;
} alert_pairs[] = {
    {TP_SLO_W1H, TP_SLO_W5M, 14.4, TP_SLO_PAGE},
    {TP_SLO_W6H, TP_SLO_W30M, 6.0, TP_SLO_PAGE},
    {TP_SLO_W3D, TP_SLO_W6H, 1.0, TP_SLO_TICKET},
};

const char *tp_slo_window_name(tp_slo_window w) {
  return w < TP_SLO_WINDOWS ? window_names[w] : "?";
}

int64_t tp_slo_window_ns(tp_slo_window w) { return w < TP_SLO_WINDOWS ? window_ns[w] : 0; }

const char *tp_slo_state_name(tp_slo_state s) {
  return s == TP_SLO_PAGE ? "page" : s == TP_SLO_TICKET ? "ticket" : "ok";
}

bool tp_slo_burn_rate(const tp_slo_counts *c, double budget, double *out) {
  if (c->events == 0 || budget <= 0)
    return false;
  *out = (double)c->bad / (double)c->events / budget;
  return true;
}

tp_slo_state tp_slo_evaluate(const tp_slo_counts windows[TP_SLO_WINDOWS], double budget) {
  tp_slo_state worst = TP_SLO_OK;
  for (size_t i = 0; i < sizeof(alert_pairs) / sizeof(alert_pairs[0]); i++) {
    double lr, sr;
    if (tp_slo_burn_rate(&windows[alert_pairs[i].long_w], budget, &lr) &&
        tp_slo_burn_rate(&windows[alert_pairs[i].short_w], budget, &sr) &&
        lr >= alert_pairs[i].threshold && sr >= alert_pairs[i].threshold &&
        alert_pairs[i].state > worst)
      worst = alert_pairs[i].state;
  }
  return worst;
}

/* ---- counting ------------------------------------------------------------------ */

typedef struct slo_ctx {
  tp_report *report;
  tp_keymap *keys;
  size_t alloc;
  int64_t end_ns;
  char *key;
  size_t key_alloc;
} slo_ctx;


static tp_report_slo_row *row_for(slo_ctx *c, const tp_store_row *row) {
  size_t t = strlen(row->target), g = strlen(row->region), len = t + g + 2;
  if (len > c->key_alloc) {
    c->key_alloc = 2 * len;
    c->key = tp_xrealloc(c->key, c->key_alloc);
  }
  memcpy(c->key, row->target, t + 1);
  memcpy(c->key + t + 1, row->region, g + 1);
  bool added;
  size_t i = tp_keymap_get(c->keys, c->key, len, &added);
  tp_report *r = c->report;
  if (!added)
    return &r->slo[i];
  if (r->n_slo == c->alloc) {
    c->alloc = c->alloc ? 2 * c->alloc : 16;
    r->slo = tp_xrealloc(r->slo, c->alloc * sizeof(r->slo[0]));
  }
  const tp_slo_objective *o = tp_collector_slo_objective(r->query.slo, row->target);
  r->slo[r->n_slo] = (tp_report_slo_row){.target = tp_xstrdup(row->target),
                                         .region = tp_xstrdup(row->region),
                                         .objective = o->success,
                                         .p99_ms = o->p99_ms,
                                         .quorum = o->quorum};
  return &r->slo[r->n_slo++];
}

static tp_err on_row(const tp_store_row *row, void *data) {
  slo_ctx *c = data;
  if (!tp__report_row_selected(&c->report->query, row))
    return TP_E_OK;
  bool divergent = row->ok && row->emulation_divergence != NULL && row->emulation_divergence[0];
  if (divergent)
    return TP_E_OK; /* says nothing about the server */
  tp_report_slo_row *s = row_for(c, row);
  int64_t age = c->end_ns - row->started_unix_ns; /* < 0: an agent clock ahead of ours */
  bool slow = row->ok && s->p99_ms > 0 && row->handshake_ns > s->p99_ms * 1000000;
  for (int w = 0; w < TP_SLO_WINDOWS; w++) {
    if (age >= window_ns[w])
      continue;
    s->availability[w].events++;
    s->availability[w].bad += !row->ok;
    if (row->ok) {
      s->latency[w].events++;
      s->latency[w].bad += slow;
    }
  }
  return TP_E_OK;
}

/* ---- counting from rollups ---------------------------------------------------------- */

/* Rollups serve the older part when they exist and are current (a store without
 * maintenance has none, or lags: then every row is read). */
static bool rollups_current(tp_store *store, const tp_report *r, tp_err *rc, char *err,
                            size_t errlen) {
  if (r->query.source == TP_REPORT_SOURCE_RAW)
    return false;
  tp_store_horizon h;
  *rc = tp_store_horizon_get(store, &h, err, errlen);
  return *rc == TP_E_OK && h.oldest_rollup_start_unix_ns.set &&
         h.results_not_rolled_up <= TP_REPORT_SLO_MAX_UNROLLED;
}

typedef struct rollup_slo_ctx {
  slo_ctx *c;
  int64_t six_hours_from; /* rows starting at or after this count in the 6 h window too */
} rollup_slo_ctx;

static tp_err on_rollup(const tp_store_rollup_row *row, void *data) {
  rollup_slo_ctx *rc = data;
  tp_store_row dims = {.target = row->target,
                       .profile = row->profile,
                       .region = row->region,
                       .agent_id = row->agent_id,
                       .address_family = row->address_family};
  if (!tp__report_row_selected(&rc->c->report->query, &dims))
    return TP_E_OK;
  tp_report_slo_row *s = row_for(rc->c, &dims);
  uint64_t events = row->probes - row->divergent;
  uint64_t bad = events - row->successes;
  uint64_t slow = s->p99_ms && row->handshake_ns != NULL
                      ? tp_sketch_count_above(row->handshake_ns, s->p99_ms * 1000000)
                      : 0;
  for (int w = TP_SLO_W6H; w <= TP_SLO_W3D; w++) {
    if (w == TP_SLO_W6H && row->start_unix_ns < rc->six_hours_from)
      continue;
    s->availability[w].events += events;
    s->availability[w].bad += bad;
    s->latency[w].events += row->successes;
    s->latency[w].bad += slow;
  }
  return TP_E_OK;
}

/* Whether any target's objective bounds the p99: only then are handshake sketches read. */
static bool any_latency_objective(const struct tp_collector_slo *slo) {
  if (slo == NULL)
    return false;
  bool any = slo->fallback.p99_ms > 0;
  for (size_t i = 0; !any && i < slo->n_targets; i++)
    any = slo->targets[i].p99_ms > 0;
  return any;
}

/* [until - 3 d, cut) from rollups into the 6 h and 3 d windows (the shorter ones lie
 * after the cut, in raw rows; the raw rows before the 1 h mark count in 6 h and 3 d by
 * their age). The 6 h edge is cut - 5 h: minute-aligned like the cut. */
static tp_err rollup_windows(tp_store *store, slo_ctx *c, int64_t cut, char *err,
                             size_t errlen) {
  const tp_report_query *q = &c->report->query;
  tp_store_rollup_filter f = {.target = q->glob[TP_DIM_TARGET],
                              .profile = q->glob[TP_DIM_PROFILE],
                              .region = q->glob[TP_DIM_REGION],
                              .agent_id = q->glob[TP_DIM_AGENT],
                              .address_family = q->glob[TP_DIM_FAMILY],
                              /* counts only: the blobs are most of a scan's cost */
                              .omit = TP_STORE_ROLLUP_PART_CLASSES | TP_STORE_ROLLUP_PART_CONNECT |
                                      TP_STORE_ROLLUP_PART_TOTAL | TP_STORE_ROLLUP_PART_MIX};
  if (!any_latency_objective(q->slo))
    f.omit |= TP_STORE_ROLLUP_PART_HANDSHAKE;
  int64_t six = cut - window_ns[TP_SLO_W6H] + window_ns[TP_SLO_W1H]; /* minute-aligned too */
  rollup_slo_ctx rc = {.c = c, .six_hours_from = six};
  /* Two scans, so the 6 h edge falls between minute rows, never inside an hour row. */
  tp_err err_rc = tp__report_scan_rollups(store, c->end_ns - window_ns[TP_SLO_W3D], six,
                                          TP_STORE_ROLLUP_DAY, &f,
                                          on_rollup, &rc, err, errlen);
  return err_rc == TP_E_OK
             ? tp__report_scan_rollups(store, six, cut, TP_STORE_ROLLUP_DAY, &f, on_rollup, &rc,
                                       err, errlen)
             : err_rc;
}

/* ---- verdicts ------------------------------------------------------------------ */

static int cmp_slo(const void *pa, const void *pb) {
  const tp_report_slo_row *a = pa, *b = pb;
  int c = strcmp(a->target, b->target);
  return c != 0 ? c : strcmp(a->region, b->region);
}

static void slo_warn(tp_report *r, size_t row, tp_report_level level, char *text) {
  r->slo_warnings =
      tp_xrealloc(r->slo_warnings, (r->n_slo_warnings + 1) * sizeof(r->slo_warnings[0]));
  r->slo_warnings[r->n_slo_warnings++] =
      (tp_report_warning){.series = row, .level = level, .text = text};
}

/* The first alert pair of `state` that fires, or -1. */
static int fired_pair(const tp_slo_counts windows[TP_SLO_WINDOWS], double budget,
                      tp_slo_state state, double *long_rate, double *short_rate) {
  for (size_t i = 0; i < sizeof(alert_pairs) / sizeof(alert_pairs[0]); i++)
    if (alert_pairs[i].state == state &&
        tp_slo_burn_rate(&windows[alert_pairs[i].long_w], budget, long_rate) &&
        tp_slo_burn_rate(&windows[alert_pairs[i].short_w], budget, short_rate) &&
        *long_rate >= alert_pairs[i].threshold && *short_rate >= alert_pairs[i].threshold)
      return (int)i;
  return -1;
}

/* "eu 1h 52.0x/5m 60.0x" for each paging region of rows [from, to): the windows of
 * the pair that fired there. */
static char *paging_regions(const tp_report *r, size_t from, size_t to, bool latency) {
  tp_buf b;
  tp_buf_init(&b, 1 << 20);
  for (size_t i = from; i < to; i++) {
    const tp_report_slo_row *s = &r->slo[i];
    double lr = 0, sr = 0;
    int pair = latency ? fired_pair(s->latency, LATENCY_BUDGET, TP_SLO_PAGE, &lr, &sr)
                       : fired_pair(s->availability, 1.0 - s->objective, TP_SLO_PAGE, &lr, &sr);
    if (pair < 0)
      continue;
    char *region = tp__report_repr(s->region[0] ? s->region : "-");
    char *part = tp_xasprintf("%s%s %s %.1fx/%s %.1fx", b.len ? ", " : "", region,
                              window_names[alert_pairs[pair].long_w], lr,
                              window_names[alert_pairs[pair].short_w], sr);
    (void)tp_buf_append(&b, part, strlen(part));
    free(part);
    free(region);
  }
  char *out = tp_xstrndup(b.data ? (const char *)b.data : "", b.len);
  tp_buf_free(&b);
  return out;
}

/* One target's rows [from, to): its verdict for one objective. */
static void target_verdict(tp_report *r, size_t from, size_t to, bool latency) {
  const tp_report_slo_row *first = &r->slo[from];
  if (latency && first->p99_ms == 0)
    return;
  unsigned paging = 0, ticket = 0;
  for (size_t i = from; i < to; i++) {
    tp_slo_state st = latency ? r->slo[i].latency_state : r->slo[i].availability_state;
    paging += st == TP_SLO_PAGE;
    ticket += st == TP_SLO_TICKET;
  }
  char *objective = latency ? tp_xasprintf("p99 handshake <= %" PRIu64 " ms", first->p99_ms)
                            : tp_xasprintf("success >= %.3g%%", 100.0 * first->objective);
  size_t regions = to - from;
  if (paging > 0) {
    char *where = paging_regions(r, from, to, latency);
    bool page = paging >= first->quorum;
    slo_warn(r, from, page ? TP_REPORT_CRIT : TP_REPORT_WARN,
             tp_xasprintf("%s burning its 30-day budget fast in %u of %zu region%s (%s)%s",
                          objective, paging, regions, regions == 1 ? "" : "s", where,
                          page ? "" : ": below the quorum, not paging"));
    free(where);
  } else if (ticket > 0) {
    slo_warn(r, from, TP_REPORT_WARN,
             tp_xasprintf("%s: 3-day burn rate above 1x in %u of %zu region%s: at this pace"
                          " the 30-day budget runs out",
                          objective, ticket, regions, regions == 1 ? "" : "s"));
  }
  free(objective);
}

tp_err tp__report_slo(tp_store *store, tp_report *r, char *err, size_t errlen) {
  const tp_report_query *q = &r->query;
  slo_ctx c = {.report = r, .keys = tp_keymap_new(), .end_ns = q->until_unix_ns};
  const char *t = q->glob[TP_DIM_TARGET];
  tp_store_filter filter = {
      .since_unix_ns = q->until_unix_ns - window_ns[TP_SLO_W3D],
      .until_unix_ns = q->until_text ? q->until_unix_ns : INT64_MAX,
      .target = t != NULL && strpbrk(t, "*?[\\") == NULL ? t : NULL,
  };
  tp_err rc = TP_E_OK;
  if (rollups_current(store, r, &rc, err, errlen)) {
    /* The last hour from raw rows (fresh: not rolled up yet, and the short windows
     * need every minute), the rest from rollups, cut at a minute so nothing counts
     * twice: 6 h of minute rows and 3 d of hour rows instead of 3 d of results. */
    int64_t cut = q->until_unix_ns - window_ns[TP_SLO_W1H];
    cut -= (cut % TP_STORE_ROLLUP_MINUTE_NS + TP_STORE_ROLLUP_MINUTE_NS) % TP_STORE_ROLLUP_MINUTE_NS;
    filter.since_unix_ns = cut;
    rc = tp_store_scan(store, &filter, on_row, &c, err, errlen);
    if (rc == TP_E_OK)
      rc = rollup_windows(store, &c, cut, err, errlen);
  } else if (rc == TP_E_OK) {
    rc = tp_store_scan(store, &filter, on_row, &c, err, errlen);
  }
  tp_keymap_free(c.keys);
  free(c.key);
  if (rc != TP_E_OK)
    return rc;
  if (r->n_slo > 1)
    qsort(r->slo, r->n_slo, sizeof(r->slo[0]), cmp_slo);
  for (size_t i = 0; i < r->n_slo; i++) {
    tp_report_slo_row *s = &r->slo[i];
    s->availability_state = tp_slo_evaluate(s->availability, 1.0 - s->objective);
    s->latency_state = s->p99_ms ? tp_slo_evaluate(s->latency, LATENCY_BUDGET) : TP_SLO_OK;
  }
  for (size_t from = 0; from < r->n_slo;) {
    size_t to = from + 1;
    while (to < r->n_slo && strcmp(r->slo[to].target, r->slo[from].target) == 0)
      to++;
    target_verdict(r, from, to, false);
    target_verdict(r, from, to, true);
    from = to;
  }
  return TP_E_OK;
}

void tp__report_slo_free(tp_report *r) {
  for (size_t i = 0; i < r->n_slo; i++) {
    free(r->slo[i].target);
    free(r->slo[i].region);
  }
  free(r->slo);
  for (size_t i = 0; i < r->n_slo_warnings; i++)
    free(r->slo_warnings[i].text);
  free(r->slo_warnings);
}

size_t tp_report_slo_count(const tp_report *r) { return r->n_slo; }

const tp_report_slo_row *tp_report_slo_at(const tp_report *r, size_t i) {
  return i < r->n_slo ? &r->slo[i] : NULL;
}

size_t tp_report_slo_warning_count(const tp_report *r) { return r->n_slo_warnings; }

const tp_report_warning *tp_report_slo_warning_at(const tp_report *r, size_t i) {
  return i < r->n_slo_warnings ? &r->slo_warnings[i] : NULL;
}

/* ---- output --------------------------------------------------------------------- */

static char *burn_cell(const tp_slo_counts *c, double budget) {
  double rate;
  return tp_slo_burn_rate(c, budget, &rate) ? tp_xasprintf("%.2f", rate) : tp_xstrdup("-");
}

static bool slo_row_shown(const tp_report_slo_row *s, bool latency) {
  return latency ? s->p99_ms > 0 && s->latency_state != TP_SLO_OK
                 : s->availability_state != TP_SLO_OK;
}

/* Only the objectives that burn: a fleet has hundreds of target x region pairs on
 * budget, and the lines an operator acts on must not drown in them (the JSON has all). */
static tp_err slo_table(const tp_report *r, tp_buf *b) {
  tp_table *t = tp_table_new();
  tp_table_column(t, "TARGET", false);
  tp_table_column(t, "REGION", false);
  tp_table_column(t, "OBJECTIVE", false);
  for (int w = 0; w < TP_SLO_WINDOWS; w++) {
    char name[16];
    snprintf(name, sizeof(name), "BURN_%s", window_names[w]);
    for (char *p = name; *p; p++)
      *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    tp_table_column(t, name, true);
  }
  tp_table_column(t, "STATE", false);
  char *cells[3 + TP_SLO_WINDOWS + 1];
  for (size_t i = 0; i < r->n_slo; i++) {
    const tp_report_slo_row *s = &r->slo[i];
    for (int latency = 0; latency < 2; latency++) {
      if (!slo_row_shown(s, latency))
        continue;
      size_t k = 0;
      cells[k++] = tp__report_repr(s->target);
      cells[k++] = s->region[0] ? tp__report_repr(s->region) : tp_xstrdup("-");
      cells[k++] = latency ? tp_xasprintf("p99<=%" PRIu64 "ms", s->p99_ms)
                           : tp_xasprintf("%.3g%%", 100.0 * s->objective);
      for (int w = 0; w < TP_SLO_WINDOWS; w++)
        cells[k++] = latency ? burn_cell(&s->latency[w], LATENCY_BUDGET)
                             : burn_cell(&s->availability[w], 1.0 - s->objective);
      cells[k++] =
          tp_xstrdup(tp_slo_state_name(latency ? s->latency_state : s->availability_state));
      tp_table_row(t, cells);
    }
  }
  tp_err rc = tp_table_render(t, b);
  tp_table_free(t);
  return rc;
}

tp_err tp__report_slo_text(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  if (r->n_slo == 0)
    return TP_E_OK;
  size_t burning = 0;
  for (size_t i = 0; i < r->n_slo; i++)
    burning += slo_row_shown(&r->slo[i], false) || slo_row_shown(&r->slo[i], true);
  char *head = tp_xasprintf("slo: %zu of %zu target/region pairs burn their error budget"
                            "%s\n",
                            burning, r->n_slo,
                            burning ? " (burn rate per window; 1 = exactly on budget)" : "");
  tp_err rc = tp_buf_append(b, head, strlen(head));
  free(head);
  if (rc == TP_E_OK && burning > 0)
    rc = slo_table(r, b);
  for (size_t i = 0; rc == TP_E_OK && i < r->n_slo_warnings; i++) {
    const tp_report_warning *w = &r->slo_warnings[i];
    char *target = tp__report_repr(r->slo[w->series].target);
    char *line =
        tp_xasprintf("%s slo %s: %s\n", tp__report_level_word(w->level, o->color), target, w->text);
    rc = tp_buf_append(b, line, strlen(line));
    free(line);
    free(target);
  }
  return rc;
}

static tp_err json_windows(tp_buf *b, const char *key, const tp_slo_counts *c, double budget) {
  tp_err rc = tp_json_raw(b, ",\"%s\":[", key);
  for (int w = 0; rc == TP_E_OK && w < TP_SLO_WINDOWS; w++) {
    double rate;
    bool set = tp_slo_burn_rate(&c[w], budget, &rate);
    rc = tp_json_raw(b, "%s{\"window\":\"%s\",\"events\":%" PRIu64 ",\"bad\":%" PRIu64,
                     w ? "," : "", window_names[w], c[w].events, c[w].bad);
    if (rc == TP_E_OK)
      rc = set ? tp_json_raw(b, ",\"burn_rate\":%.4f}", rate)
               : tp_json_raw(b, ",\"burn_rate\":null}");
  }
  return rc == TP_E_OK ? tp_json_raw(b, "]") : rc;
}

tp_err tp__report_slo_json(const tp_report *r, tp_buf *b) {
  tp_err rc = tp_json_raw(b, ",\"slo\":[");
  for (size_t i = 0; rc == TP_E_OK && i < r->n_slo; i++) {
    const tp_report_slo_row *s = &r->slo[i];
    rc = tp_json_raw(b, "%s{\"target\":", i ? "," : "");
    if (rc == TP_E_OK)
      rc = tp_json_str(b, s->target);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, ",\"region\":");
    if (rc == TP_E_OK)
      rc = tp_json_str(b, s->region);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, ",\"objective\":%.6f,\"quorum\":%u,\"state\":\"%s\"", s->objective,
                       s->quorum, tp_slo_state_name(s->availability_state));
    if (rc == TP_E_OK)
      rc = json_windows(b, "windows", s->availability, 1.0 - s->objective);
    if (rc == TP_E_OK && s->p99_ms > 0) {
      rc = tp_json_raw(b, ",\"latency\":{\"p99_ms\":%" PRIu64 ",\"state\":\"%s\"", s->p99_ms,
                       tp_slo_state_name(s->latency_state));
      if (rc == TP_E_OK)
        rc = json_windows(b, "windows", s->latency, LATENCY_BUDGET);
      if (rc == TP_E_OK)
        rc = tp_json_raw(b, "}");
    } else if (rc == TP_E_OK) {
      rc = tp_json_raw(b, ",\"latency\":null");
    }
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, "}");
  }
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, "]");
  return rc == TP_E_OK
             ? tp__report_json_warnings(b, "slo_warnings", r->slo_warnings, r->n_slo_warnings)
             : rc;
}
