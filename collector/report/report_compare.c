/* report_compare.c - see report_compare.h. */
#include "report_compare.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json_out.h"
#include "report_impl.h"
#include "report_keymap.h"
#include "report_table.h"
#include "tp_mem.h"

#define OUT_CAP ((size_t)1 << 40)

struct tp_compare {
  tp_report_query query; /* the shared query as built (grouping filled in) */
  const tp_compare_side *baseline, *candidate;
  tp_compare_group *groups;
  size_t n_groups;
  size_t tested; /* groups with enough data on both sides */
  tp_compare_verdict overall;
};

const char *tp_compare_verdict_name(tp_compare_verdict v) {
  return v == TP_COMPARE_WORSE        ? "worse"
         : v == TP_COMPARE_NOT_ENOUGH ? "not enough data"
                                      : "not worse";
}

bool tp_compare_parse_side(const char *text, tp_compare_side *side, char **store, char *err,
                           size_t errlen) {
  *side = (tp_compare_side){.text = text};
  *store = tp_xstrdup(text);
  char *save = NULL;
  bool any = false;
  for (char *tok = strtok_r(*store, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    tp_report_dim d;
    if (eq == NULL || eq[1] == '\0') {
      snprintf(err, errlen,
               "\"%s\": expected DIMENSION=GLOB[,DIMENSION=GLOB] (e.g. target=api-old)", text);
      return false;
    }
    *eq = '\0';
    if (!tp_report_dim_from_name(tok, &d)) {
      snprintf(err, errlen,
               "\"%s\": unknown dimension \"%s\" (target, profile, region, agent, family)", text,
               tok);
      return false;
    }
    side->glob[d] = eq + 1;
    any = true;
  }
  if (!any)
    snprintf(err, errlen, "\"%s\": expected DIMENSION=GLOB (e.g. target=api-old)", text);
  return any;
}

double tp_compare_p_value(uint64_t n1, uint64_t f1, uint64_t n2, uint64_t f2) {
  if (n1 == 0 || n2 == 0)
    return 1.0;
  double p1 = (double)f1 / (double)n1, p2 = (double)f2 / (double)n2;
  double pooled = (double)(f1 + f2) / (double)(n1 + n2);
  double se = sqrt(pooled * (1.0 - pooled) * (1.0 / (double)n1 + 1.0 / (double)n2));
  if (se == 0.0) /* both sides all-ok or all-failed: the same */
    return 1.0;
  double z = (p2 - p1) / se;
  return 0.5 * erfc(z / sqrt(2.0)); /* P(Z >= z) */
}

/* The group key as NUL-joined values of the shared grouping. */
static size_t join_key(const tp_report_query *q, const tp_report_series *s, tp_buf *buf) {
  tp_buf_reset(buf);
  for (size_t i = 0; i < q->n_by; i++) {
    const char *v = s->key[q->by[i]] ? s->key[q->by[i]] : "";
    (void)tp_buf_append(buf, v, strlen(v) + 1);
  }
  return buf->len;
}

static tp_compare_group *group_for(tp_compare *c, tp_keymap *keys, const tp_report_series *s,
                                   tp_buf *buf, size_t *alloc) {
  bool added;
  size_t len = join_key(&c->query, s, buf);
  size_t i = tp_keymap_get(keys, buf->data ? (const void *)buf->data : "", len, &added);
  if (added) {
    if (c->n_groups == *alloc) {
      *alloc = *alloc ? 2 * *alloc : 16;
      c->groups = tp_xrealloc(c->groups, *alloc * sizeof(c->groups[0]));
    }
    tp_compare_group *g = &c->groups[c->n_groups++];
    *g = (tp_compare_group){.p_value = 1.0, .verdict = TP_COMPARE_NOT_ENOUGH};
    for (size_t d = 0; d < c->query.n_by; d++)
      g->key[c->query.by[d]] = tp_xstrdup(s->key[c->query.by[d]] ? s->key[c->query.by[d]] : "");
  }
  return &c->groups[i];
}

static tp_err build_side(tp_store *store, const tp_report_query *shared,
                         const tp_compare_side *side, tp_report **out, char *err, size_t errlen) {
  tp_report_query q = *shared;
  for (int d = 0; d < TP_DIM_COUNT; d++)
    if (side->glob[d] != NULL)
      q.glob[d] = side->glob[d];
  q.with_facts = q.with_chains = q.with_slo = false;
  q.skip_delivery = true;
  q.buckets = 0;
  return tp_report_build(store, &q, out, err, errlen);
}

static void add_side(tp_compare *c, tp_keymap *keys, const tp_report *r, bool candidate,
                     tp_buf *buf, size_t *alloc) {
  for (size_t i = 0; i < tp_report_series_count(r); i++) {
    const tp_report_series *s = tp_report_series_at(r, i);
    tp_compare_group *g = group_for(c, keys, s, buf, alloc);
    uint64_t n = s->probes - s->divergent, failures = n - s->successes;
    if (candidate) {
      g->cand_n = n;
      g->cand_failures = failures;
      g->cand_top_error = s->top_error;
    } else {
      g->base_n = n;
      g->base_failures = failures;
    }
  }
}

/* Groups in key order (the --by values, byte order). */
static int cmp_groups(const tp_report_query *q, const tp_compare_group *a,
                      const tp_compare_group *b) {
  for (size_t i = 0; i < q->n_by; i++) {
    int c = strcmp(a->key[q->by[i]], b->key[q->by[i]]);
    if (c != 0)
      return c;
  }
  return 0;
}

static void sort_groups(tp_compare *c) {
  /* insertion sort: a few hundred groups at most (profiles x regions) */
  for (size_t i = 1; i < c->n_groups; i++) {
    tp_compare_group g = c->groups[i];
    size_t j = i;
    for (; j > 0 && cmp_groups(&c->query, &c->groups[j - 1], &g) > 0; j--)
      c->groups[j] = c->groups[j - 1];
    c->groups[j] = g;
  }
}

static void decide(tp_compare *c) {
  for (size_t i = 0; i < c->n_groups; i++) {
    tp_compare_group *g = &c->groups[i];
    if (g->base_n >= TP_COMPARE_MIN_PROBES && g->cand_n >= TP_COMPARE_MIN_PROBES) {
      c->tested++;
      g->p_value = tp_compare_p_value(g->base_n, g->base_failures, g->cand_n, g->cand_failures);
    }
  }
  double alpha = c->tested ? TP_COMPARE_ALPHA / (double)c->tested : TP_COMPARE_ALPHA;
  c->overall = c->tested ? TP_COMPARE_NOT_WORSE : TP_COMPARE_NOT_ENOUGH;
  for (size_t i = 0; i < c->n_groups; i++) {
    tp_compare_group *g = &c->groups[i];
    if (g->base_n < TP_COMPARE_MIN_PROBES || g->cand_n < TP_COMPARE_MIN_PROBES)
      continue;
    g->verdict = g->p_value < alpha ? TP_COMPARE_WORSE : TP_COMPARE_NOT_WORSE;
    if (g->verdict == TP_COMPARE_WORSE)
      c->overall = TP_COMPARE_WORSE;
  }
}

tp_err tp_compare_build(tp_store *store, const tp_report_query *shared,
                        const tp_compare_side *baseline, const tp_compare_side *candidate,
                        tp_compare **out, char *err, size_t errlen) {
  tp_report *base = NULL, *cand = NULL;
  tp_compare *c = tp_xcalloc(1, sizeof(*c));
  c->baseline = baseline;
  c->candidate = candidate;
  tp_err rc = build_side(store, shared, baseline, &base, err, errlen);
  if (rc == TP_E_OK)
    rc = build_side(store, shared, candidate, &cand, err, errlen);
  if (rc == TP_E_OK) {
    c->query = *tp_report_query_of(base); /* with the grouping filled in */
    tp_keymap *keys = tp_keymap_new();
    tp_buf buf;
    size_t alloc = 0;
    tp_buf_init(&buf, 1 << 20);
    add_side(c, keys, base, false, &buf, &alloc);
    add_side(c, keys, cand, true, &buf, &alloc);
    tp_buf_free(&buf);
    tp_keymap_free(keys);
    sort_groups(c);
    decide(c);
  }
  tp_report_free(base);
  tp_report_free(cand);
  if (rc != TP_E_OK) {
    tp_compare_free(c);
    c = NULL;
  }
  *out = c;
  return rc;
}

size_t tp_compare_group_count(const tp_compare *c) { return c->n_groups; }

const tp_compare_group *tp_compare_group_at(const tp_compare *c, size_t i) {
  return i < c->n_groups ? &c->groups[i] : NULL;
}

tp_compare_verdict tp_compare_overall(const tp_compare *c) { return c->overall; }

void tp_compare_free(tp_compare *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n_groups; i++)
    for (int d = 0; d < TP_DIM_COUNT; d++)
      free(c->groups[i].key[d]);
  free(c->groups);
  free(c);
}

/* ---- output --------------------------------------------------------------------- */

static double rate_of(uint64_t f, uint64_t n) { return n ? (double)f / (double)n : 0.0; }

static char *advice(const tp_compare *c) {
  size_t worse = 0;
  for (size_t i = 0; i < c->n_groups; i++)
    worse += c->groups[i].verdict == TP_COMPARE_WORSE;
  switch (c->overall) {
  case TP_COMPARE_WORSE:
    return tp_xasprintf("verdict: worse for %zu of %zu groups tested (one-sided two-proportion"
                        " z-test, alpha %.2f Bonferroni-corrected over %zu): stop the canary",
                        worse, c->tested, TP_COMPARE_ALPHA, c->tested);
  case TP_COMPARE_NOT_ENOUGH:
    return tp_xasprintf("verdict: not enough data (no group has %d probes on both sides):"
                        " wait, or widen the window",
                        TP_COMPARE_MIN_PROBES);
  case TP_COMPARE_NOT_WORSE:
    break;
  }
  return tp_xasprintf("verdict: not worse in any of %zu groups tested (alpha %.2f"
                      " Bonferroni-corrected): the canary may widen",
                      c->tested, TP_COMPARE_ALPHA);
}

static tp_err write_text(const tp_compare *c, tp_buf *b) {
  char *base = tp__report_repr(c->baseline->text), *cand = tp__report_repr(c->candidate->text);
  char *head = tp_xasprintf("tlsprobe compare: baseline %s, candidate %s, %zu groups\n", base, cand,
                            c->n_groups);
  free(base);
  free(cand);
  tp_err rc = tp_buf_append(b, head, strlen(head));
  free(head);
  tp_table *t = tp_table_new();
  for (size_t i = 0; i < c->query.n_by; i++) {
    char name[16];
    const char *n = tp_report_dim_name(c->query.by[i]);
    size_t k = 0;
    for (; n[k] && k + 1 < sizeof(name); k++)
      name[k] = (char)(n[k] - 'a' + 'A');
    name[k] = '\0';
    tp_table_column(t, name, false);
  }
  static const char *const cols[] = {"BASE_PROBES", "BASE_FAIL%", "CAND_PROBES", "CAND_FAIL%",
                                     "P_VALUE"};
  for (size_t i = 0; i < 5; i++)
    tp_table_column(t, cols[i], true);
  tp_table_column(t, "VERDICT", false);
  tp_table_column(t, "CAND_TOP_ERROR", false);
  char **cells = tp_xcalloc(tp_table_columns(t), sizeof(*cells));
  for (size_t i = 0; i < c->n_groups; i++) {
    const tp_compare_group *g = &c->groups[i];
    size_t k = 0;
    for (size_t d = 0; d < c->query.n_by; d++)
      cells[k++] = tp__report_repr(g->key[c->query.by[d]]);
    cells[k++] = tp_xasprintf("%" PRIu64, g->base_n);
    cells[k++] = tp_xasprintf("%.2f", 100.0 * rate_of(g->base_failures, g->base_n));
    cells[k++] = tp_xasprintf("%" PRIu64, g->cand_n);
    cells[k++] = tp_xasprintf("%.2f", 100.0 * rate_of(g->cand_failures, g->cand_n));
    cells[k++] =
        g->verdict == TP_COMPARE_NOT_ENOUGH ? tp_xstrdup("-") : tp_xasprintf("%.2g", g->p_value);
    cells[k++] = tp_xstrdup(tp_compare_verdict_name(g->verdict));
    cells[k++] = tp_xstrdup(g->cand_top_error ? g->cand_top_error : "-");
    tp_table_row(t, cells);
  }
  free(cells);
  if (rc == TP_E_OK)
    rc = tp_table_render(t, b);
  tp_table_free(t);
  char *line = advice(c);
  if (rc == TP_E_OK)
    rc = tp_buf_append(b, line, strlen(line));
  free(line);
  return rc == TP_E_OK ? tp_buf_append(b, "\n", 1) : rc;
}

static tp_err write_json(const tp_compare *c, tp_buf *b) {
  tp_err rc = tp_json_raw(b, "{\"schema\":\"tlsprobe-compare\",\"schema_version\":1,\"baseline\":");
  if (rc == TP_E_OK)
    rc = tp_json_str(b, c->baseline->text);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"candidate\":");
  if (rc == TP_E_OK)
    rc = tp_json_str(b, c->candidate->text);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b,
                     ",\"window\":{\"since_unix\":%" PRId64 ",\"until_unix\":%" PRId64 "}"
                     ",\"alpha\":%.2f,\"min_probes\":%d,\"tested\":%zu,\"verdict\":\"%s\","
                     "\"groups\":[",
                     c->query.since_unix_ns / 1000000000, c->query.until_unix_ns / 1000000000,
                     TP_COMPARE_ALPHA, TP_COMPARE_MIN_PROBES, c->tested,
                     tp_compare_verdict_name(c->overall));
  for (size_t i = 0; rc == TP_E_OK && i < c->n_groups; i++) {
    const tp_compare_group *g = &c->groups[i];
    rc = tp_json_raw(b, "%s{", i ? "," : "");
    for (int d = 0; rc == TP_E_OK && d < TP_DIM_COUNT; d++) {
      rc = tp_json_raw(b, "%s\"%s\":", d ? "," : "", tp_report_dim_name((tp_report_dim)d));
      if (rc == TP_E_OK)
        rc = g->key[d] ? tp_json_str(b, g->key[d]) : tp_json_raw(b, "null");
    }
    if (rc == TP_E_OK)
      rc = tp_json_raw(b,
                       ",\"baseline\":{\"probes\":%" PRIu64 ",\"failures\":%" PRIu64 "}"
                       ",\"candidate\":{\"probes\":%" PRIu64 ",\"failures\":%" PRIu64 "}"
                       ",\"p_value\":%.6g,\"verdict\":\"%s\"}",
                       g->base_n, g->base_failures, g->cand_n, g->cand_failures, g->p_value,
                       tp_compare_verdict_name(g->verdict));
  }
  return rc == TP_E_OK ? tp_json_raw(b, "]}\n") : rc;
}

tp_err tp_compare_write(const tp_compare *c, tp_report_format format, FILE *out) {
  tp_buf b;
  tp_buf_init(&b, OUT_CAP);
  tp_err rc = format == TP_FORMAT_TEXT   ? write_text(c, &b)
              : format == TP_FORMAT_JSON ? write_json(c, &b)
                                         : TP_E_INVAL;
  if (rc == TP_E_OK && (fwrite(b.data, 1, b.len, out) != b.len || fflush(out) != 0))
    rc = TP_E_IO;
  tp_buf_free(&b);
  return rc;
}
