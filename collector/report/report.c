/* report.c - aggregation: one range scan over the window, each row filtered by the
 * query's globs and added to its group (a hash table from the group key to the
 * group's index), then per group the nearest-rank percentiles and rates. Only the
 * successful latencies (and every probe's loop lag) are held per group: the
 * percentiles are exact on raw rows, so their values have to be kept. */
#include "report_impl.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"
#include "percentile.h"
#include "report_keymap.h"
#include "report_rollup.h"
#include "sketch.h"
#include "tp_mem.h"

static const char *const dim_names[TP_DIM_COUNT] = {"target", "profile", "region", "agent",
                                                    "family"};

const char *tp_report_dim_name(tp_report_dim dim) {
  return dim < TP_DIM_COUNT ? dim_names[dim] : "?";
}

bool tp_report_dim_from_name(const char *name, tp_report_dim *out) {
  for (int d = 0; d < TP_DIM_COUNT; d++)
    if (strcmp(name, dim_names[d]) == 0) {
      *out = (tp_report_dim)d;
      return true;
    }
  return false;
}

/* A growable array of latencies. */
typedef struct u64_vec {
  uint64_t *v;
  size_t n, alloc;
} u64_vec;

static void vec_push(u64_vec *vec, uint64_t x) {
  if (vec->n == vec->alloc) {
    vec->alloc = vec->alloc ? 2 * vec->alloc : 64;
    vec->v = tp_xrealloc(vec->v, vec->alloc * sizeof(vec->v[0]));
  }
  vec->v[vec->n++] = x;
}

/* What a group holds while scanning, beside its tp_report_series. */
typedef struct group_acc {
  u64_vec handshake, connect, total, lag;
  u64_vec bucket_of; /* with buckets: the bucket of each handshake value */
  double lag_sum_ns;
  /* From rollups: merged sketches instead of the values, the largest loop lag. */
  tp_sketch *handshake_sk, *connect_sk, *total_sk;
  tp_sketch **bucket_sk; /* per bucket handshake, with query.buckets */
  uint64_t lag_max_ns;
  const char *key; /* the group key (build_key), borrowed from the keymap */
  size_t key_len;
} group_acc;

typedef struct agg {
  tp_report *report;
  group_acc *acc;  /* parallel to report->series */
  tp_keymap *keys; /* group key -> index */
  char *key_buf;   /* scratch for building a row's key */
  size_t key_alloc;
  /* query.with_chains: per series, its latest result with a chain */
  tp_keymap *series_keys;
  tp__chain_ref *chains;
  size_t n_chains, alloc_chains;
  bool latest_chains; /* tp__report_latest_chains: series only, chains looked up after */
  char *err;
  size_t errlen;
} agg;

/* ---- the row's dimension values and its group key ------------------------------ */

static const char *row_dim(const tp_store_row *row, tp_report_dim d) {
  switch (d) {
  case TP_DIM_TARGET:
    return row->target;
  case TP_DIM_PROFILE:
    return row->profile;
  case TP_DIM_REGION:
    return row->region;
  case TP_DIM_AGENT:
    return row->agent_id;
  case TP_DIM_FAMILY:
    return row->address_family;
  case TP_DIM_COUNT:
    break;
  }
  return "";
}

bool tp__report_row_selected(const tp_report_query *q, const tp_store_row *row) {
  for (int d = 0; d < TP_DIM_COUNT; d++)
    if (q->glob[d] != NULL && fnmatch(q->glob[d], row_dim(row, (tp_report_dim)d), 0) != 0)
      return false;
  return true;
}

/* The key is the grouped values, each followed by a NUL (stored strings hold no
 * NUL), so "a"+"bc" and "ab"+"c" differ. Returns its length. */
static size_t build_key(agg *a, const tp_store_row *row) {
  const tp_report_query *q = &a->report->query;
  size_t len = 0;
  for (size_t i = 0; i < q->n_by; i++)
    len += strlen(row_dim(row, q->by[i])) + 1;
  if (len + 1 > a->key_alloc) {
    a->key_alloc = (len + 1) * 2;
    a->key_buf = tp_xrealloc(a->key_buf, a->key_alloc);
  }
  size_t at = 0;
  for (size_t i = 0; i < q->n_by; i++) {
    const char *v = row_dim(row, q->by[i]);
    size_t n = strlen(v) + 1;
    memcpy(a->key_buf + at, v, n);
    at += n;
  }
  return at;
}

static size_t new_group(agg *a, const tp_store_row *row) {
  tp_report *r = a->report;
  if (r->n_series == r->alloc_series) {
    r->alloc_series = r->alloc_series ? 2 * r->alloc_series : 16;
    r->series = tp_xrealloc(r->series, r->alloc_series * sizeof(r->series[0]));
    a->acc = tp_xrealloc(a->acc, r->alloc_series * sizeof(a->acc[0]));
  }
  size_t g = r->n_series++;
  tp_report_series *s = &r->series[g];
  memset(s, 0, sizeof(*s));
  memset(&a->acc[g], 0, sizeof(a->acc[g]));
  a->acc[g].key = tp_keymap_key(a->keys, g, &a->acc[g].key_len);
  for (size_t i = 0; i < r->query.n_by; i++)
    s->key[r->query.by[i]] = tp_xstrdup(row_dim(row, r->query.by[i]));
  if (r->query.buckets > 0)
    s->buckets = tp_xcalloc(r->query.buckets, sizeof(s->buckets[0]));
  return g;
}

static size_t find_group(agg *a, const tp_store_row *row) {
  size_t len = build_key(a, row);
  bool added;
  size_t g = tp_keymap_get(a->keys, a->key_buf, len, &added);
  return added ? new_group(a, row) : g;
}

/* ---- adding one row ------------------------------------------------------------- */

static void dist_add_n(tp_report_dist *d, const char *name, uint64_t n) {
  if (name == NULL || name[0] == '\0' || n == 0)
    return;
  for (size_t i = 0; i < d->n; i++)
    if (strcmp(d->items[i].name, name) == 0) {
      d->items[i].count += n;
      return;
    }
  if (d->n == d->alloc) {
    d->alloc = d->alloc ? 2 * d->alloc : 4;
    d->items = tp_xrealloc(d->items, d->alloc * sizeof(d->items[0]));
  }
  d->items[d->n++] = (tp_report_count){.name = tp_xstrdup(name), .count = n};
}

static void dist_add(tp_report_dist *d, const char *name) { dist_add_n(d, name, 1); }

/* A rollup row's negotiated mix into the group's distributions. Successes past the
 * mix's distinct combinations count as "(other)" in each. */
static void add_mix(agg *a, tp_report_series *s, const tp_store_rollup_row *row) {
  /* NULL: rolled up before schema version 7. A span of that time that later results
   * were merged into holds only theirs: the rest is not recorded either. */
  uint64_t recorded = row->negotiated ? tp_mix_total(row->negotiated) : 0;
  a->report->mix_unrecorded += row->successes > recorded ? row->successes - recorded : 0;
  if (row->negotiated == NULL)
    return;
  for (size_t i = 0; i < tp_mix_entries(row->negotiated); i++) {
    tp_mix_entry e = tp_mix_entry_at(row->negotiated, i);
    dist_add_n(&s->versions, e.version, e.count);
    dist_add_n(&s->ciphers, e.cipher, e.count);
    dist_add_n(&s->groups, e.group, e.count);
  }
  uint64_t other = tp_mix_overflow(row->negotiated);
  dist_add_n(&s->versions, "(other)", other);
  dist_add_n(&s->ciphers, "(other)", other);
  dist_add_n(&s->groups, "(other)", other);
}

/* Keeps `text` as the example when it is at least as recent as the current one
 * (rows arrive oldest first, so the example ends as the latest). */
static void keep_latest(char **slot, int64_t *slot_ns, const char *text, int64_t ns) {
  if (*slot != NULL && ns < *slot_ns)
    return;
  if (*slot == NULL || strcmp(*slot, text) != 0) {
    free(*slot);
    *slot = tp_xstrdup(text);
  }
  *slot_ns = ns;
}

static size_t bucket_index(const tp_report_query *q, int64_t started) {
  int64_t span = q->until_unix_ns - q->since_unix_ns;
  if (span <= 0 || started < q->since_unix_ns)
    return 0;
  /* (started - since) * buckets / span without overflow: in long double. */
  long double at =
      (long double)(started - q->since_unix_ns) * (long double)q->buckets / (long double)span;
  size_t b = (size_t)at;
  return b < q->buckets ? b : q->buckets - 1;
}

static void add_success(agg *a, size_t g, const tp_store_row *row) {
  tp_report_series *s = &a->report->series[g];
  group_acc *acc = &a->acc[g];
  /* A saturated agent's timings are its own as much as the server's: counted,
   * kept out of the percentiles unless asked (rollups never hold them). */
  bool timed = !row->saturated || a->report->query.include_saturated;
  if (!timed)
    s->saturated_excluded++;
  s->successes++;
  s->emulation_checked += row->emulation_checked;
  s->hrr += row->hello_retry_request;
  s->ocsp_stapled += row->ocsp_stapled;
  if (strcmp(row->mode, "resumption") == 0 || strcmp(row->mode, "early_data") == 0) {
    s->resumption_probes++;
    s->resumed += row->resumed;
  }
  if (row->early_data_attempted) {
    s->early_data_attempts++;
    s->early_data_accepts += row->early_data_accepted;
  }
  dist_add(&s->versions, row->tls_version);
  dist_add(&s->ciphers, row->cipher);
  dist_add(&s->groups, row->group);
  if (s->buckets != NULL)
    s->buckets[bucket_index(&a->report->query, row->started_unix_ns)].successes++;
  if (!timed)
    return;
  vec_push(&acc->handshake, row->handshake_ns);
  vec_push(&acc->connect, row->connect_ns);
  vec_push(&acc->total, row->total_ns);
  if (s->buckets != NULL)
    vec_push(&acc->bucket_of, bucket_index(&a->report->query, row->started_unix_ns));
}

bool tp__report_latest_chains(const tp_report_query *q) {
  return q->with_chains && !q->until_text && q->glob[TP_DIM_AGENT] == NULL &&
         q->glob[TP_DIM_FAMILY] == NULL;
}

/* The series' entry in a->chains, added (without a row) when new. */
static tp__chain_ref *series_ref(agg *a, const char *target, const char *profile,
                                 const char *region) {
  size_t t = strlen(target), p = strlen(profile), g = strlen(region);
  size_t len = t + p + g + 3;
  if (len > a->key_alloc) {
    a->key_alloc = 2 * len;
    a->key_buf = tp_xrealloc(a->key_buf, a->key_alloc);
  }
  memcpy(a->key_buf, target, t + 1);
  memcpy(a->key_buf + t + 1, profile, p + 1);
  memcpy(a->key_buf + t + p + 2, region, g + 1);
  bool added;
  size_t i = tp_keymap_get(a->series_keys, a->key_buf, len, &added);
  if (added) {
    if (a->n_chains == a->alloc_chains) {
      a->alloc_chains = a->alloc_chains ? 2 * a->alloc_chains : 16;
      a->chains = tp_xrealloc(a->chains, a->alloc_chains * sizeof(a->chains[0]));
    }
    size_t klen;
    const char *key = tp_keymap_key(a->series_keys, i, &klen); /* target\0profile\0region\0 */
    a->chains[a->n_chains++] = (tp__chain_ref){
        .target = key, .profile = key + t + 1, .region = key + t + p + 2};
  }
  return &a->chains[i];
}

/* latest_chains: a series with a chain in the window, if the query selects it (its
 * agent and family are not asked: tp__report_latest_chains). */
static tp_err on_chain_series(const char *target, const char *profile, const char *region,
                              void *ctx) {
  agg *a = ctx;
  tp_store_row dims = {
      .target = target, .profile = profile, .region = region, .agent_id = "", .address_family = ""};
  if (tp__report_row_selected(&a->report->query, &dims))
    (void)series_ref(a, target, profile, region);
  return TP_E_OK;
}

/* Remembers the row when it is its series' latest with a chain (rows arrive oldest
 * first; the started time decides for rows delivered out of order). */
static void note_chain(agg *a, const tp_store_row *row) {
  tp__chain_ref *ref = series_ref(a, row->target, row->profile, row->region);
  if (ref->row_id == 0 || row->started_unix_ns >= ref->started_unix_ns) {
    ref->row_id = row->row_id;
    ref->started_unix_ns = row->started_unix_ns;
  }
}

static tp_err on_row(const tp_store_row *row, void *ctx) {
  agg *a = ctx;
  tp_outcome cls;
  if (!tp_outcome_from_name(row->error_class, &cls) || (int)cls >= TP_REPORT_MAX_CLASS) {
    snprintf(a->err, a->errlen, "database holds unknown error class \"%s\"", row->error_class);
    return TP_E_STORE;
  }
  if (!tp__report_row_selected(&a->report->query, row))
    return TP_E_OK;
  if (a->series_keys != NULL && !a->latest_chains && row->days_to_earliest_expiry.set)
    note_chain(a, row);
  size_t g = find_group(a, row);
  tp_report_series *s = &a->report->series[g];
  s->probes++;
  s->saturated += row->saturated;
  s->class_counts[cls]++;
  if (cls != TP_OUTCOME_OK)
    keep_latest(&s->class_example[cls], &s->class_example_ns[cls], row->error_detail,
                row->started_unix_ns);
  a->acc[g].lag_sum_ns += (double)row->loop_lag_ns;
  vec_push(&a->acc[g].lag, row->loop_lag_ns);
  if (s->buckets != NULL)
    s->buckets[bucket_index(&a->report->query, row->started_unix_ns)].probes++;
  if (row->days_to_earliest_expiry.set && row->started_unix_ns >= s->expiry_seen_ns) {
    s->min_days_to_expiry = row->days_to_earliest_expiry;
    s->expiry_seen_ns = row->started_unix_ns;
  }
  if (row->ocsp_age_seconds.set &&
      (!s->ocsp_max_age_seconds.set || row->ocsp_age_seconds.v > s->ocsp_max_age_seconds.v))
    s->ocsp_max_age_seconds = row->ocsp_age_seconds;
  /* A non-safe request processed as 0-RTT data is a server fact whatever the
   * probe's outcome or emulation: count it on every row. */
  s->early_data_violations += row->early_data_policy_violation;
  const char *divergence = row->emulation_divergence ? row->emulation_divergence : "";
  if (row->ok && divergence[0] != '\0') {
    /* Not the emulated client's success: counted apart, nothing else. */
    s->divergent++;
    keep_latest(&s->divergence_example, &s->divergence_example_ns, divergence,
                row->started_unix_ns);
  } else if (row->ok) {
    add_success(a, g, row);
  }
  return TP_E_OK;
}

/* ---- adding one rollup row --------------------------------------------------------- */

static tp_err merge_sketch(tp_sketch **into, const tp_sketch *from) {
  if (tp_sketch_count(from) == 0)
    return TP_E_OK;
  if (*into == NULL)
    *into = tp_sketch_new();
  return tp_sketch_merge(*into, from);
}

static tp_err merge_rollup(agg *a, size_t g, const tp_store_rollup_row *row) {
  tp_report_series *s = &a->report->series[g];
  group_acc *acc = &a->acc[g];
  s->probes += row->probes;
  s->successes += row->successes;
  s->divergent += row->divergent;
  s->saturated += row->saturated;
  for (int c = 0; c < TP_REPORT_MAX_CLASS && c < TP_OUTCOME_SLOTS; c++)
    s->class_counts[c] += row->classes.n[c];
  s->hrr += row->hrr;
  s->resumption_probes += row->resumption_probes;
  s->resumed += row->resumed;
  s->early_data_attempts += row->early_data_attempts;
  s->early_data_accepts += row->early_data_accepts;
  s->early_data_violations += row->early_data_violations;
  s->emulation_checked += row->emulation_checked;
  s->ocsp_stapled += row->ocsp_stapled;
  add_mix(a, s, row);
  if (row->ocsp_max_age_seconds.set &&
      (!s->ocsp_max_age_seconds.set || row->ocsp_max_age_seconds.v > s->ocsp_max_age_seconds.v))
    s->ocsp_max_age_seconds = row->ocsp_max_age_seconds;
  /* The latest span's certificate is the current one; spans of the same start (other
   * agents of the group) give the soonest expiry, whatever order they come in. */
  if (row->min_days_to_expiry.set &&
      (row->start_unix_ns > s->expiry_seen_ns || !s->min_days_to_expiry.set ||
       (row->start_unix_ns == s->expiry_seen_ns &&
        row->min_days_to_expiry.v < s->min_days_to_expiry.v))) {
    s->min_days_to_expiry = row->min_days_to_expiry;
    s->expiry_seen_ns = row->start_unix_ns;
  }
  acc->lag_sum_ns += (double)row->loop_lag_sum_ns;
  if (row->loop_lag_max_ns > acc->lag_max_ns)
    acc->lag_max_ns = row->loop_lag_max_ns;
  tp_err rc = merge_sketch(&acc->handshake_sk, row->handshake_ns);
  if (rc == TP_E_OK)
    rc = merge_sketch(&acc->connect_sk, row->connect_ns);
  if (rc == TP_E_OK)
    rc = merge_sketch(&acc->total_sk, row->total_ns);
  if (rc == TP_E_OK && s->buckets != NULL) {
    size_t b = bucket_index(&a->report->query, row->start_unix_ns);
    s->buckets[b].probes += row->probes;
    s->buckets[b].successes += row->successes;
    if (acc->bucket_sk == NULL)
      acc->bucket_sk = tp_xcalloc(a->report->query.buckets, sizeof(acc->bucket_sk[0]));
    rc = merge_sketch(&acc->bucket_sk[b], row->handshake_ns);
  }
  return rc;
}

static tp_err on_rollup(const tp_store_rollup_row *row, void *ctx) {
  agg *a = ctx;
  /* The dimensions as a row: the same globs and the same group keys as raw rows. */
  tp_store_row dims = {.target = row->target,
                       .profile = row->profile,
                       .region = row->region,
                       .agent_id = row->agent_id,
                       .address_family = row->address_family};
  if (!tp__report_row_selected(&a->report->query, &dims))
    return TP_E_OK;
  tp_err rc = merge_rollup(a, find_group(a, &dims), row);
  if (rc != TP_E_OK)
    snprintf(a->err, a->errlen, "the rollups of \"%s\" count more probes than a sketch can",
             row->target);
  return rc;
}

/* ---- finishing a group ------------------------------------------------------------ */


static tp_report_rate rate(uint64_t num, uint64_t den) {
  if (den == 0)
    return (tp_report_rate){.set = false};
  return (tp_report_rate){.set = true, .fraction = (double)num / (double)den};
}

static tp_report_latency latency_of(u64_vec *v) {
  tp_report_latency l = {.set = v->n > 0};
  tp_percentile_sort(v->v, v->n);
  if (l.set) {
    (void)tp_percentile_sorted(v->v, v->n, 50, &l.p50_ns);
    (void)tp_percentile_sorted(v->v, v->n, 90, &l.p90_ns);
    (void)tp_percentile_sorted(v->v, v->n, 99, &l.p99_ns);
    (void)tp_percentile_sorted_permille(v->v, v->n, 999, &l.p999_ns);
  }
  return l;
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
  tp_outcome top;
  if (s->top_error != NULL && tp_outcome_from_name(s->top_error, &top))
    s->top_error_category = tp_outcome_category_name(tp_outcome_category_of(top));
}

static int cmp_count(const void *pa, const void *pb) {
  const tp_report_count *a = pa, *b = pb;
  if (a->count != b->count)
    return a->count > b->count ? -1 : 1;
  return strcmp(a->name, b->name);
}

static void sort_dist(tp_report_dist *d) {
  if (d->n > 1)
    qsort(d->items, d->n, sizeof(d->items[0]), cmp_count);
}

/* Per bucket p99: (bucket, value) pairs sorted once, then read bucket by bucket --
 * O(n log n) whatever the number of buckets. Called before the handshake values
 * are sorted: bucket_of is parallel to them in arrival order. */
typedef struct bucket_value {
  uint64_t bucket, value;
} bucket_value;

static int cmp_bucket_value(const void *pa, const void *pb) {
  const bucket_value *a = pa, *b = pb;
  if (a->bucket != b->bucket)
    return a->bucket < b->bucket ? -1 : 1;
  return (a->value > b->value) - (a->value < b->value);
}

static void finish_buckets(const tp_report_query *q, tp_report_series *s, group_acc *acc) {
  if (s->buckets == NULL)
    return;
  long double span = (long double)(q->until_unix_ns - q->since_unix_ns);
  for (size_t b = 0; b < q->buckets; b++)
    s->buckets[b].start_unix_ns =
        q->since_unix_ns + (int64_t)(span * (long double)b / (long double)q->buckets);
  size_t n = acc->bucket_of.n;
  bucket_value *pairs = tp_xmalloc((n + 1) * sizeof(*pairs));
  for (size_t i = 0; i < n; i++)
    pairs[i] = (bucket_value){.bucket = acc->bucket_of.v[i], .value = acc->handshake.v[i]};
  if (n > 1)
    qsort(pairs, n, sizeof(*pairs), cmp_bucket_value);
  uint64_t *values = tp_xmalloc((n + 1) * sizeof(uint64_t));
  for (size_t i = 0; i < n;) {
    size_t j = i, m = 0;
    while (j < n && pairs[j].bucket == pairs[i].bucket)
      values[m++] = pairs[j++].value;
    tp_report_bucket *bk = &s->buckets[pairs[i].bucket];
    bk->have_p99 = tp_percentile_sorted(values, m, 99, &bk->p99_ns);
    i = j;
  }
  free(values);
  free(pairs);
}

static tp_report_latency latency_of_sketch(const tp_sketch *sk) {
  tp_report_latency l = {.set = sk != NULL && tp_sketch_count(sk) > 0};
  if (l.set) {
    (void)tp_sketch_quantile(sk, 0.5, &l.p50_ns);
    (void)tp_sketch_quantile(sk, 0.9, &l.p90_ns);
    (void)tp_sketch_quantile(sk, 0.99, &l.p99_ns);
    (void)tp_sketch_quantile(sk, 0.999, &l.p999_ns);
  }
  return l;
}

/* From rollups: percentiles of the merged sketches; the loop-lag "p99" is the
 * largest lag (rollups keep no distribution of it), an upper bound. */
static void finish_from_sketches(const tp_report_query *q, tp_report_series *s,
                                 group_acc *acc) {
  s->handshake = latency_of_sketch(acc->handshake_sk);
  s->connect = latency_of_sketch(acc->connect_sk);
  s->total = latency_of_sketch(acc->total_sk);
  s->loop_lag_p99_ns = acc->lag_max_ns;
  for (size_t b = 0; s->buckets != NULL && acc->bucket_sk != NULL && b < q->buckets; b++)
    s->buckets[b].have_p99 = acc->bucket_sk[b] != NULL &&
                             tp_sketch_quantile(acc->bucket_sk[b], 0.99, &s->buckets[b].p99_ns);
}

static void finish_group(tp_report *r, size_t g, group_acc *acc) {

  tp_report_series *s = &r->series[g];
  s->target = s->key[TP_DIM_TARGET] ? s->key[TP_DIM_TARGET] : "";
  s->profile = s->key[TP_DIM_PROFILE] ? s->key[TP_DIM_PROFILE] : "";
  s->region = s->key[TP_DIM_REGION] ? s->key[TP_DIM_REGION] : "";
  s->success_rate = rate(s->successes, s->probes);
  s->mean_loop_lag_ms = acc->lag_sum_ns / (double)s->probes / 1e6;
  if (r->from_rollups) {
    for (size_t b = 0; s->buckets != NULL && b < r->query.buckets; b++)
      s->buckets[b].start_unix_ns =
          r->query.since_unix_ns +
          (int64_t)((long double)(r->query.until_unix_ns - r->query.since_unix_ns) *
                    (long double)b / (long double)r->query.buckets);
    finish_from_sketches(&r->query, s, acc);
  } else {
    finish_buckets(&r->query, s, acc); /* before the handshake values are sorted */
    s->handshake = latency_of(&acc->handshake);
    s->connect = latency_of(&acc->connect);
    s->total = latency_of(&acc->total);
    tp_percentile_sort(acc->lag.v, acc->lag.n);
    (void)tp_percentile_sorted(acc->lag.v, acc->lag.n, 99, &s->loop_lag_p99_ns);
  }
  pick_top_error(s);
  s->hrr_rate = rate(s->hrr, s->successes);
  s->resumption_rate = rate(s->resumed, s->resumption_probes);
  s->early_data_accept_rate = rate(s->early_data_accepts, s->early_data_attempts);
  s->ocsp_staple_rate = rate(s->ocsp_stapled, s->successes);
  sort_dist(&s->versions);
  sort_dist(&s->ciphers);
  sort_dist(&s->groups);
  r->total_probes += s->probes;
}

static void free_acc(const tp_report_query *q, group_acc *acc) {
  tp_sketch_free(acc->handshake_sk);
  tp_sketch_free(acc->connect_sk);
  tp_sketch_free(acc->total_sk);
  for (size_t b = 0; acc->bucket_sk != NULL && b < q->buckets; b++)
    tp_sketch_free(acc->bucket_sk[b]);
  free(acc->bucket_sk);
  free(acc->handshake.v);
  free(acc->connect.v);
  free(acc->total.v);
  free(acc->lag.v);
  free(acc->bucket_of.v);
}

/* ---- ordering and the whole build ------------------------------------------------- */

typedef struct group_order {
  size_t g;
  const group_acc *acc;
} group_order;

/* Keys are NUL-terminated values in --by order and NUL is the smallest byte, so
 * comparing whole keys bytewise orders groups value by value. */
static int cmp_group_order(const void *pa, const void *pb) {
  const group_acc *a = ((const group_order *)pa)->acc, *b = ((const group_order *)pb)->acc;
  size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
  int c = memcmp(a->key, b->key, n);
  if (c != 0)
    return c;
  return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static void sort_groups(agg *a) {
  tp_report *r = a->report;
  size_t n = r->n_series;
  if (n < 2)
    return;
  group_order *order = tp_xmalloc(n * sizeof(*order));
  for (size_t g = 0; g < n; g++)
    order[g] = (group_order){.g = g, .acc = &a->acc[g]};
  qsort(order, n, sizeof(*order), cmp_group_order);
  tp_report_series *series = tp_xmalloc(r->alloc_series * sizeof(*series));
  group_acc *acc = tp_xmalloc(r->alloc_series * sizeof(*acc));
  for (size_t i = 0; i < n; i++) {
    series[i] = r->series[order[i].g];
    acc[i] = a->acc[order[i].g];
  }
  free(order);
  free(r->series);
  free(a->acc);
  r->series = series;
  a->acc = acc;
}

static tp_err load_facts(tp_store *store, tp_report *r, char *err, size_t errlen) {
  for (size_t i = 0; i < r->n_series; i++) {
    tp_report_series *s = &r->series[i];
    tp_err rc = tp_store_latest(store, s->target, s->profile, s->region, r->query.since_unix_ns,
                                &s->facts, err, errlen);
    if (rc == TP_E_NOTFOUND)
      continue;
    if (rc != TP_E_OK)
      return rc;
    s->have_facts = true;
  }
  return TP_E_OK;
}

/* A target pattern without glob characters is an exact name: the store can use
 * its index for it instead of the report filtering every row. */
static const char *exact_target(const tp_report_query *q) {
  const char *t = q->glob[TP_DIM_TARGET];
  return t != NULL && strpbrk(t, "*?[\\") == NULL ? t : NULL;
}

/* Rollups when asked, or (auto) for a window longer than raw rows should serve or one
 * reaching back past the raw retention -- if rollups exist and are current (a store
 * without a maintenance pass has none, or lags: raw rows then stay the truth). The
 * expiry view needs raw rows unless the store's newest chain per series serves it
 * (tp__report_latest_chains). */
#define TP_REPORT_MAX_UNROLLED 10000

static tp_err choose_source(tp_store *store, tp_report *r, char *err, size_t errlen) {
  const tp_report_query *q = &r->query;
  r->from_rollups = false;
  if (q->source == TP_REPORT_SOURCE_RAW || (q->with_chains && !tp__report_latest_chains(q)))
    return TP_E_OK;
  tp_store_horizon h;
  tp_err rc = tp_store_horizon_get(store, &h, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  r->not_rolled_up = h.results_not_rolled_up;
  if (q->source == TP_REPORT_SOURCE_ROLLUP) {
    r->from_rollups = true;
    return TP_E_OK;
  }
  bool long_window = q->until_unix_ns - q->since_unix_ns > TP_REPORT_RAW_MAX_WINDOW_NS;
  bool past_raw = h.raw_complete_since_unix_ns > q->since_unix_ns;
  bool current = h.oldest_rollup_start_unix_ns.set &&
                 h.results_not_rolled_up <= TP_REPORT_MAX_UNROLLED;
  r->from_rollups = current && (long_window || past_raw);
  return TP_E_OK;
}

/* Rollups hold no error details; the store keeps each series' newest per class. They
 * are the window's when it ends now and nothing asks for agents, which series rows do
 * not know. */
static bool details_from_store(const tp_report *r) {
  const tp_report_query *q = &r->query;
  if (!r->from_rollups || q->until_text != NULL || q->glob[TP_DIM_AGENT] != NULL)
    return false;
  for (size_t i = 0; i < q->n_by; i++)
    if (q->by[i] == TP_DIM_AGENT)
      return false;
  return true;
}

/* One series' newest failure of a class into its group's example -- only a group the
 * window's rollups made (a series without results in the window has none). Before the
 * groups are sorted: the key map's indices are the series'. The details arrive oldest
 * first (ties by row), so the last one kept is the newest, as with raw rows. */
static tp_err on_detail(const tp_store_detail *d, void *ctx) {
  agg *a = ctx;
  tp_outcome cls;
  if (!tp_outcome_from_name(d->error_class, &cls) || (int)cls >= TP_REPORT_MAX_CLASS)
    return TP_E_OK; /* a class this report does not know has no column to go to */
  tp_store_row dims = {.target = d->target,
                       .profile = d->profile,
                       .region = d->region,
                       .agent_id = "",
                       .address_family = d->address_family};
  if (!tp__report_row_selected(&a->report->query, &dims))
    return TP_E_OK;
  size_t len = build_key(a, &dims), g;
  if (!tp_keymap_find(a->keys, a->key_buf, len, &g))
    return TP_E_OK;
  tp_report_series *s = &a->report->series[g];
  keep_latest(&s->class_example[cls], &s->class_example_ns[cls], d->detail, d->started_unix_ns);
  return TP_E_OK;
}

static const tp_report_dim default_by[] = {TP_DIM_TARGET, TP_DIM_PROFILE, TP_DIM_REGION};

tp_err tp_report_build(tp_store *store, const tp_report_query *query, tp_report **out, char *err,
                       size_t errlen) {
  tp_report *r = tp_xcalloc(1, sizeof(*r));
  r->query = *query;
  if (r->query.n_by == 0) {
    memcpy(r->query.by, default_by, sizeof(default_by));
    r->query.n_by = sizeof(default_by) / sizeof(default_by[0]);
  }
  if (r->query.buckets > TP_REPORT_MAX_BUCKETS)
    r->query.buckets = TP_REPORT_MAX_BUCKETS;
  agg a = {.report = r,
           .keys = tp_keymap_new(),
           .series_keys = query->with_chains ? tp_keymap_new() : NULL,
           .latest_chains = tp__report_latest_chains(query),
           .err = err,
           .errlen = errlen};
  /* Without --until the window ends now but stays open: an agent's clock a little
   * ahead of ours (ingest allows max_clock_skew) must not hide its latest results. */
  tp_store_filter filter = {.since_unix_ns = query->since_unix_ns,
                            .until_unix_ns = query->until_text ? query->until_unix_ns : INT64_MAX,
                            .target = exact_target(query)};
  tp_err rc = choose_source(store, r, err, errlen);
  if (rc == TP_E_OK && r->from_rollups) {
    tp_store_rollup_filter rf = {.target = query->glob[TP_DIM_TARGET],
                                 .profile = query->glob[TP_DIM_PROFILE],
                                 .region = query->glob[TP_DIM_REGION],
                                 .agent_id = query->glob[TP_DIM_AGENT],
                                 .address_family = query->glob[TP_DIM_FAMILY]};
    tp_store_rollup_span coarsest = tp__report_rollup_span_for(
        query->since_unix_ns, query->until_unix_ns, r->query.buckets);
    rc = tp__report_scan_rollups(store, query->since_unix_ns, query->until_unix_ns, coarsest, &rf,
                                 on_rollup, &a, err, errlen);
  } else if (rc == TP_E_OK) {
    rc = tp_store_scan(store, &filter, on_row, &a, err, errlen);
  }
  /* The series to look chains up for: every one with a chain in the window, whether its
   * results are rolled up yet or not (rollups lag by up to a maintenance interval). */
  if (rc == TP_E_OK && a.latest_chains)
    rc = tp_store_scan_chain_series(store, query->since_unix_ns, on_chain_series, &a, err,
                                    errlen);
  if (rc == TP_E_OK && details_from_store(r)) {
    r->details_from_store = true;
    rc = tp_store_scan_latest_details(store, query->since_unix_ns, on_detail, &a, err, errlen);
  }
  if (rc == TP_E_OK)
    sort_groups(&a);
  for (size_t g = 0; g < r->n_series; g++) {
    if (rc == TP_E_OK)
      finish_group(r, g, &a.acc[g]);
    free_acc(&r->query, &a.acc[g]);
  }
  for (size_t i = 0; rc == TP_E_OK && i < r->n_series; i++)
    tp__report_series_warnings(r, i);
  if (rc == TP_E_OK && query->with_facts)
    rc = load_facts(store, r, err, errlen);
  if (rc == TP_E_OK && query->with_chains)
    rc = tp__report_chains(store, r, a.chains, a.n_chains, a.latest_chains, err, errlen);
  if (rc == TP_E_OK && !query->skip_delivery)
    rc = tp__report_delivery(store, r, query->since_unix_ns, err, errlen);
  if (rc == TP_E_OK && query->with_slo)
    rc = tp__report_slo(store, r, err, errlen);
  free(a.acc);
  tp_keymap_free(a.keys);
  tp_keymap_free(a.series_keys);
  free(a.chains);
  free(a.key_buf);
  if (rc != TP_E_OK) {
    tp_report_free(r);
    r = NULL;
  }
  *out = r;
  return rc;
}

const tp_report_query *tp_report_query_of(const tp_report *report) { return &report->query; }

bool tp_report_from_rollups(const tp_report *report) { return report->from_rollups; }

uint64_t tp_report_not_rolled_up(const tp_report *report) { return report->not_rolled_up; }

size_t tp_report_series_count(const tp_report *report) { return report->n_series; }

const tp_report_series *tp_report_series_at(const tp_report *report, size_t i) {
  return i < report->n_series ? &report->series[i] : NULL;
}

uint64_t tp_report_total_probes(const tp_report *report) { return report->total_probes; }

size_t tp_report_warning_count(const tp_report *report) { return report->n_warnings; }

const tp_report_warning *tp_report_warning_at(const tp_report *report, size_t i) {
  return i < report->n_warnings ? &report->warnings[i] : NULL;
}

size_t tp_report_cert_count(const tp_report *report) { return report->n_certs; }

const tp_report_cert *tp_report_cert_at(const tp_report *report, size_t i) {
  return i < report->n_certs ? &report->certs[i] : NULL;
}

int tp_report_worst_level(const tp_report *report) {
  int worst = -1;
  const tp_report_warning *lists[3] = {report->warnings, report->agent_warnings,
                                       report->slo_warnings};
  size_t counts[3] = {report->n_warnings, report->n_agent_warnings, report->n_slo_warnings};
  for (size_t l = 0; l < 3; l++)
    for (size_t i = 0; i < counts[l]; i++)
      if ((int)lists[l][i].level > worst)
        worst = (int)lists[l][i].level;
  return worst;
}

static void free_dist(tp_report_dist *d) {
  for (size_t i = 0; i < d->n; i++)
    free(d->items[i].name);
  free(d->items);
}

static void free_series(tp_report_series *s) {
  for (int d = 0; d < TP_DIM_COUNT; d++)
    free(s->key[d]);
  for (int c = 0; c < TP_REPORT_MAX_CLASS; c++)
    free(s->class_example[c]);
  free(s->divergence_example);
  free_dist(&s->versions);
  free_dist(&s->ciphers);
  free_dist(&s->groups);
  free(s->buckets);
  tp_store_facts_clear(&s->facts);
}

void tp_report_free(tp_report *report) {
  if (report == NULL)
    return;
  for (size_t i = 0; i < report->n_series; i++)
    free_series(&report->series[i]);
  for (size_t i = 0; i < report->n_warnings; i++)
    free(report->warnings[i].text);
  free(report->warnings);
  tp__report_delivery_free(report);
  tp__report_chains_free(report);
  tp__report_slo_free(report);
  free(report->series);
  free(report);
}
