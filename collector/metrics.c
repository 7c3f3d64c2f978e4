/* metrics.c - the collector's metric registry (see metrics.h): a hash table of
 * label sets with one list per family (so each family renders as one contiguous
 * block, as the text format requires), fed by ingest after the store committed,
 * rendered under the same mutex.
 *
 * Label values come from agents over the network. They are hashed with a key
 * drawn at start, so a hostile agent cannot aim every target name at one chain,
 * and there are at most max_series of them. */
#include "metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "outcome.h"
#include "tp_limits.h"
#include "tp_mem.h"
#include "tp_prom.h"
#include "tp_rand.h"

#define MAX_LABELS 4
#define MAX_STATUS 600
#define FIRST_TABLE_SIZE 256

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind;

typedef struct family_def {
  const char *name;
  kind kind;
  size_t n_labels;
  const char *labels[MAX_LABELS];
  const char *help;
} family_def;

enum {
  F_PROBES,
  F_HANDSHAKE,
  F_HRR,
  F_RESUMPTION,
  F_CERT_EXPIRY,
  F_OCSP_AGE,
  F_AGENT_SEEN,
  F_AGENT_DROPPED,
  F_SLO_OBJECTIVE,
  F_SLO_QUORUM,
  F__COUNT
};

#define SERIES_LABELS {"target", "profile", "region"}
static const family_def FAMILIES[F__COUNT] = {
    [F_PROBES] = {"tlsprobe_probes_total", KIND_COUNTER, 4,
                  {"target", "profile", "region", "result"},
                  "Probe results stored, by result: ok, divergent (a success only through a "
                  "version, suite or group the emulated real client never offers) or the error "
                  "class (docs/errors.md)."},
    [F_HANDSHAKE] = {"tlsprobe_handshake_duration_seconds", KIND_HISTOGRAM, 3, SERIES_LABELS,
                     "TLS handshake time of successful probes (ok, not divergent), the agent's "
                     "loop lag subtracted."},
    [F_HRR] = {"tlsprobe_hrr_total", KIND_COUNTER, 3, SERIES_LABELS,
               "Successful probes (ok) whose handshake needed a HelloRetryRequest (RFC 8446 "
               "4.1.4); the rate is this over tlsprobe_probes_total{result=\"ok\"}."},
    [F_RESUMPTION] = {"tlsprobe_resumption_total", KIND_COUNTER, 4,
                      {"target", "profile", "region", "resumed"},
                      "Successful probes (ok) in mode resumption or early_data, by whether the "
                      "second handshake resumed the session (true, false)."},
    [F_CERT_EXPIRY] = {"tlsprobe_cert_expiry_timestamp_seconds", KIND_GAUGE, 2,
                       {"target", "position"},
                       "notAfter of each certificate in the chain the target sent in its latest "
                       "result that carried a chain, by position as sent (0 = leaf), Unix "
                       "seconds."},
    [F_OCSP_AGE] = {"tlsprobe_ocsp_staple_age_seconds", KIND_GAUGE, 3, SERIES_LABELS,
                    "Age of the stapled OCSP response (now - thisUpdate) when the series' latest "
                    "probe that received a certificate started; absent when that probe got no "
                    "staple."},
    [F_AGENT_SEEN] = {"tlsprobe_agent_last_seen_timestamp_seconds", KIND_GAUGE, 1, {"agent"},
                      "When the agent's last accepted batch (re-sends included) arrived, Unix "
                      "seconds; seeded from the database at start."},
    [F_AGENT_DROPPED] = {"tlsprobe_agent_dropped_results_total", KIND_COUNTER, 2,
                         {"agent", "reason"},
                         "Results the agent reported lost instead of delivering them, by reason "
                         "(spool_full, spool_error, invalid_result, too_old)."},
    [F_SLO_OBJECTIVE] = {"tlsprobe_slo_objective_ratio", KIND_GAUGE, 1, {"target"},
                         "The target's success objective from the collector's slo: config "
                         "(0.999 = 99.9 %); deploy/prometheus/alerts.yml burns against it."},
    [F_SLO_QUORUM] = {"tlsprobe_slo_quorum_regions", KIND_GAUGE, 1, {"target"},
                      "Regions of the target that must burn before its SLO pages (slo: "
                      "quorum)."},
};

/* Handshake buckets, seconds: a local handshake takes 1-2 ms, the field's p99 target
 * is 200 ms, the agent's timeouts end at minutes. */
#define N_BUCKETS 13
static const double BUCKET_S[N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.2,   0.5,    1,     2.5,  5,     10};
static const char *const BUCKET_TEXT[N_BUCKETS] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                                   "0.05",  "0.1",    "0.2",   "0.5",  "1",
                                                   "2.5",   "5",      "10"};
static const uint64_t BUCKET_NS[N_BUCKETS] = {
    1000000,   2500000,    5000000,    10000000,   25000000,   50000000,  100000000,
    200000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000};

typedef struct series {
  struct series *hnext; /* hash chain */
  struct series *fnext; /* the family's list, in creation order */
  uint64_t hash;
  unsigned fam;
  bool present;     /* gauges: false = withdrawn, not rendered */
  int64_t stamp_ns; /* gauges: start of the probe whose value is shown */
  uint64_t count;   /* counters; histograms: observations */
  double gauge;
  uint64_t *buckets; /* histograms: N_BUCKETS + 1, not cumulative */
  uint64_t sum_ns;   /* histograms */
  char *labels[MAX_LABELS];
} series;

/* The collector's own numbers: fixed labels, copied whole for a scrape. */
typedef struct own_numbers {
  uint64_t answers[MAX_STATUS];
  uint64_t results_stored, results_duplicate, results_refused, results_failed;
  uint64_t duplicate_batches, drop_reports;
  size_t n_series, max_series;
  uint64_t refused[F__COUNT];
  double last_render_s, last_copy_s;
} own_numbers;

struct tp_metrics {
  pthread_mutex_t mu;
  const tp_collector_slo *slo; /* borrowed; NULL = the built-in objective */
  uint64_t key; /* hash key, random per process */
  series **table;
  size_t table_size; /* a power of two */
  series *head[F__COUNT], *tail[F__COUNT];
  own_numbers own;
};

/* ---- the table ------------------------------------------------------------------ */

static uint64_t finalize(uint64_t h) { /* murmur3's fmix64 */
  h ^= h >> 33;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 33;
  h *= UINT64_C(0xc4ceb9fe1a85ec53);
  h ^= h >> 33;
  return h;
}

static uint64_t hash_key(uint64_t key, unsigned fam, const char *const *values, size_t n) {
  uint64_t h = key ^ ((uint64_t)(fam + 1) * UINT64_C(0x9E3779B97F4A7C15));
  for (size_t i = 0; i < n; i++) {
    for (const unsigned char *p = (const unsigned char *)values[i]; *p != '\0'; p++)
      h = (h ^ *p) * UINT64_C(0x100000001b3);
    h = (h ^ 0xFF) * UINT64_C(0x100000001b3); /* 0xFF is never UTF-8: ("ab","c") != ("a","bc") */
  }
  return finalize(h);
}

static bool same_key(const series *s, unsigned fam, const char *const *values, size_t n) {
  if (s->fam != fam)
    return false;
  for (size_t i = 0; i < n; i++)
    if (strcmp(s->labels[i], values[i]) != 0)
      return false;
  return true;
}

static void grow(tp_metrics *m) {
  size_t size = m->table_size * 2;
  series **table = tp_xcalloc(size, sizeof(series *));
  for (size_t i = 0; i < m->table_size; i++) {
    series *s = m->table[i];
    while (s != NULL) {
      series *next = s->hnext;
      size_t b = s->hash & (size - 1);
      s->hnext = table[b];
      table[b] = s;
      s = next;
    }
  }
  free(m->table);
  m->table = table;
  m->table_size = size;
}

/* The series of fam with these label values; created (if create and within the cap)
 * when missing. NULL: missing and not created -- a refusal is counted. */
static series *lookup(tp_metrics *m, unsigned fam, const char *const *values, bool create) {
  size_t n = FAMILIES[fam].n_labels;
  uint64_t h = hash_key(m->key, fam, values, n);
  for (series *s = m->table[h & (m->table_size - 1)]; s != NULL; s = s->hnext)
    if (s->hash == h && same_key(s, fam, values, n))
      return s;
  if (!create)
    return NULL;
  if (m->own.n_series >= m->own.max_series) {
    m->own.refused[fam]++;
    return NULL;
  }
  series *s = tp_xcalloc(1, sizeof(*s));
  s->hash = h;
  s->fam = fam;
  s->present = true;
  for (size_t i = 0; i < n; i++)
    s->labels[i] = tp_xstrdup(values[i]);
  if (FAMILIES[fam].kind == KIND_HISTOGRAM)
    s->buckets = tp_xcalloc(N_BUCKETS + 1, sizeof(uint64_t));
  size_t b = h & (m->table_size - 1);
  s->hnext = m->table[b];
  m->table[b] = s;
  if (m->tail[fam] != NULL)
    m->tail[fam]->fnext = s;
  else
    m->head[fam] = s;
  m->tail[fam] = s;
  if (++m->own.n_series > m->table_size)
    grow(m);
  return s;
}

static void add(tp_metrics *m, unsigned fam, const char *const *values, uint64_t n) {
  series *s = lookup(m, fam, values, true);
  if (s != NULL)
    s->count += n;
}

/* A gauge shows the value of the newest probe; an older result arriving late
 * (another agent's backlog) does not replace it. */
static void set_gauge(series *s, double value, int64_t stamp_ns) {
  s->gauge = value;
  s->present = true;
  s->stamp_ns = stamp_ns;
}

/* ---- life ----------------------------------------------------------------------- */

tp_metrics *tp_metrics_new(size_t max_series) {
  tp_metrics *m = tp_xcalloc(1, sizeof(*m));
  if (pthread_mutex_init(&m->mu, NULL) != 0) {
    free(m);
    return NULL;
  }
  /* Not secret-grade if the kernel refuses: then the clock, which is at least not
   * known in advance to an agent. */
  if (tp_random_fill(&m->key, sizeof(m->key)) != 0)
    m->key = (uint64_t)time(NULL) * UINT64_C(0x9E3779B97F4A7C15);
  m->own.max_series = max_series > 0 ? max_series : TP_METRICS_DEFAULT_MAX_SERIES;
  m->table_size = FIRST_TABLE_SIZE;
  m->table = tp_xcalloc(m->table_size, sizeof(series *));
  return m;
}

void tp_metrics_free(tp_metrics *m) {
  if (m == NULL)
    return;
  for (unsigned f = 0; f < F__COUNT; f++) {
    series *s = m->head[f];
    while (s != NULL) {
      series *next = s->fnext;
      for (size_t i = 0; i < MAX_LABELS; i++)
        free(s->labels[i]);
      free(s->buckets);
      free(s);
      s = next;
    }
  }
  free(m->table);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

void tp_metrics_set_slo(tp_metrics *m, const struct tp_collector_slo *slo) {
  pthread_mutex_lock(&m->mu);
  m->slo = slo;
  pthread_mutex_unlock(&m->mu);
}

size_t tp_metrics_series(tp_metrics *m) {
  pthread_mutex_lock(&m->mu);
  size_t n = m->own.n_series;
  pthread_mutex_unlock(&m->mu);
  return n;
}

/* ---- ingest --------------------------------------------------------------------- */

/* What collector/report/report.c counts apart: a success only through a version, suite or
 * group the emulated client never offers is not that client's success. */
static const char *result_label(const Tlsprobe__V1__ProbeResult *r) {
  if (r->ok)
    return r->emulation_divergence != NULL && r->emulation_divergence[0] != '\0' ? "divergent"
                                                                                 : "ok";
  const char *name = tp_outcome_name((int)r->error_class);
  return name != NULL ? name : "other"; /* validation admits known classes only */
}

static void observe_handshake(tp_metrics *m, const char *const *key, uint64_t ns) {
  series *s = lookup(m, F_HANDSHAKE, key, true);
  if (s == NULL)
    return;
  size_t b = 0;
  while (b < N_BUCKETS && ns > BUCKET_NS[b])
    b++;
  s->buckets[b]++;
  s->count++;
  s->sum_ns += ns;
}

/* The chain of the target's newest result that carried one; positions a shorter
 * chain no longer has are withdrawn. Positions are created in order 0, 1, ..., so
 * the first missing one ends the scan. */
static void update_chain(tp_metrics *m, const Tlsprobe__V1__ProbeResult *r) {
  char position[16] = "0";
  const char *key[2] = {r->target, position};
  series *leaf = lookup(m, F_CERT_EXPIRY, key, true);
  if (leaf == NULL || (leaf->present && r->started_unix_ns < leaf->stamp_ns))
    return;
  for (size_t i = 0; i < TP_V_MAX_CHAIN; i++) {
    snprintf(position, sizeof(position), "%zu", i);
    series *s = i == 0 ? leaf : lookup(m, F_CERT_EXPIRY, key, i < r->n_chain);
    if (s == NULL)
      break;
    if (i < r->n_chain) {
      set_gauge(s, (double)r->chain[i]->not_after_unix, r->started_unix_ns);
    } else {
      s->present = false;
      s->stamp_ns = r->started_unix_ns;
    }
  }
}

/* Only a probe that received a certificate could have received a staple: a refused
 * connection says nothing about stapling. */
static void update_ocsp(tp_metrics *m, const char *const *key, const Tlsprobe__V1__ProbeResult *r) {
  series *s = lookup(m, F_OCSP_AGE, key, r->ocsp != NULL);
  if (s == NULL || (s->stamp_ns > r->started_unix_ns))
    return;
  if (r->ocsp != NULL) {
    set_gauge(s, (double)r->ocsp->age_seconds, r->started_unix_ns);
  } else {
    s->present = false;
    s->stamp_ns = r->started_unix_ns;
  }
}

/* The target's objective as gauges, so the alert rules burn against the configured
 * objective instead of a number written into them. Looked up in the config once per
 * target (the gauge keeps it: the config does not change while the collector runs);
 * re-stamped by every result so it ages out with the target's other gauges. */
static void update_objective(tp_metrics *m, const Tlsprobe__V1__ProbeResult *r) {
  const char *key[1] = {r->target};
  series *objective = lookup(m, F_SLO_OBJECTIVE, key, true);
  series *quorum = lookup(m, F_SLO_QUORUM, key, true);
  if (objective == NULL || quorum == NULL)
    return;
  if (objective->gauge == 0) { /* new: objectives are >= 0.5 */
    const tp_slo_objective *o = tp_collector_slo_objective(m->slo, r->target);
    objective->gauge = o->success;
    quorum->gauge = o->quorum;
  }
  if (r->started_unix_ns > objective->stamp_ns) {
    set_gauge(objective, objective->gauge, r->started_unix_ns);
    set_gauge(quorum, quorum->gauge, r->started_unix_ns);
  }
}

static void count_result(tp_metrics *m, const Tlsprobe__V1__ProbeResult *r) {
  const char *key[MAX_LABELS] = {r->target, r->profile, r->region, result_label(r)};
  add(m, F_PROBES, key, 1);
  if (r->ok && strcmp(key[3], "ok") == 0) {
    observe_handshake(m, key, r->handshake_ns);
    /* Created at 0 too, so the HRR rate has a numerator for every series. */
    add(m, F_HRR, key, r->hello_retry_request ? 1 : 0);
    if (strcmp(r->mode, "resumption") == 0 || strcmp(r->mode, "early_data") == 0) {
      key[3] = r->resumed ? "true" : "false";
      add(m, F_RESUMPTION, key, 1);
    }
  }
  if (r->n_chain > 0) {
    update_chain(m, r);
    update_ocsp(m, key, r);
  }
  update_objective(m, r);
}

void tp_metrics_on_stored(tp_metrics *m, const Tlsprobe__V1__ResultBatch *batch,
                          const bool *result_new, const bool *drop_new, int64_t received_unix_ns) {
  pthread_mutex_lock(&m->mu);
  /* First: under the series cap an agent's liveness matters more than one more target. */
  const char *agent[1] = {batch->agent_id};
  series *seen = lookup(m, F_AGENT_SEEN, agent, true);
  if (seen != NULL && received_unix_ns >= seen->stamp_ns)
    set_gauge(seen, (double)received_unix_ns / 1e9, received_unix_ns);
  uint32_t stored = 0, drops = 0;
  for (size_t i = 0; i < batch->n_results; i++) {
    if (!result_new[i])
      continue;
    stored++;
    count_result(m, batch->results[i]);
  }
  for (size_t i = 0; i < batch->n_drops; i++) {
    if (!drop_new[i])
      continue;
    drops++;
    const char *key[2] = {batch->agent_id, batch->drops[i]->reason};
    add(m, F_AGENT_DROPPED, key, batch->drops[i]->count);
  }
  m->own.results_stored += stored;
  m->own.results_duplicate += batch->n_results - stored;
  m->own.drop_reports += drops;
  m->own.duplicate_batches += stored == 0 && drops == 0;
  pthread_mutex_unlock(&m->mu);
}

void tp_metrics_on_not_stored(tp_metrics *m, size_t results, int http_status) {
  pthread_mutex_lock(&m->mu);
  if (http_status == 503)
    m->own.results_failed += results;
  else
    m->own.results_refused += results;
  pthread_mutex_unlock(&m->mu);
}

void tp_metrics_on_answer(tp_metrics *m, unsigned http_status) {
  if (http_status >= MAX_STATUS)
    return;
  pthread_mutex_lock(&m->mu);
  m->own.answers[http_status]++;
  pthread_mutex_unlock(&m->mu);
}

/* ---- seeding ---------------------------------------------------------------------- */

static tp_err seed_spool(const tp_store_spool_row *row, void *ctx) {
  tp_metrics *m = ctx;
  const char *agent[1] = {row->agent_id};
  series *seen = lookup(m, F_AGENT_SEEN, agent, true);
  if (seen != NULL && row->last_received_unix_ns >= seen->stamp_ns)
    set_gauge(seen, (double)row->last_received_unix_ns / 1e9, row->last_received_unix_ns);
  return TP_E_OK;
}

tp_err tp_metrics_seed(tp_metrics *m, tp_store *store, char *err, size_t errlen) {
  pthread_mutex_lock(&m->mu);
  tp_err rc = tp_store_scan_spools(store, seed_spool, m, err, errlen);
  pthread_mutex_unlock(&m->mu);
  return rc;
}

/* ---- rendering -------------------------------------------------------------------- */

static double monotonic_s(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *kind_name(kind k) {
  switch (k) {
  case KIND_COUNTER:
    return "counter";
  case KIND_GAUGE:
    return "gauge";
  case KIND_HISTOGRAM:
    return "histogram";
  }
  return "untyped";
}

/* One label set's numbers, copied under the lock; its labels are read after the
 * lock is released: they never change once the series exists, and series are only
 * freed with the registry. */
typedef struct shot {
  const series *s;
  uint64_t count, sum_ns;
  double gauge;
  size_t buckets; /* histograms: index of N_BUCKETS + 1 counts in snapshot.buckets */
} shot;

/* Everything a scrape renders, taken in one short critical section: ingest waits for
 * a copy, not for the text (a scrape of 40,000 label sets renders for ~0.1 s). */
typedef struct snapshot {
  shot *shots; /* family by family */
  size_t start[F__COUNT + 1];
  uint64_t *buckets;
  own_numbers own;
  double copy_s; /* how long the lock was held */
} snapshot;

static tp_err take_snapshot(tp_metrics *m, int64_t now_ns, snapshot *snap) {
  size_t n = 0, hist = 0;
  snap->copy_s = monotonic_s();
  pthread_mutex_lock(&m->mu);
  for (unsigned f = 0; f < F__COUNT; f++)
    for (const series *s = m->head[f]; s != NULL; s = s->fnext) {
      n++;
      hist += s->buckets != NULL;
    }
  /* Sized by configuration (max_series), so not tp_xmalloc: a failure is an answer. */
  snap->shots = malloc((n + 1) * sizeof(shot));
  snap->buckets = malloc((hist * (N_BUCKETS + 1) + 1) * sizeof(uint64_t));
  if (snap->shots == NULL || snap->buckets == NULL) {
    pthread_mutex_unlock(&m->mu);
    free(snap->shots);
    free(snap->buckets);
    return TP_E_NOMEM;
  }
  size_t k = 0, b = 0;
  for (unsigned f = 0; f < F__COUNT; f++) {
    snap->start[f] = k;
    for (const series *s = m->head[f]; s != NULL; s = s->fnext) {
      if (!s->present ||
          (FAMILIES[f].kind == KIND_GAUGE && now_ns - s->stamp_ns > TP_METRICS_GAUGE_MAX_AGE_NS))
        continue;
      snap->shots[k] = (shot){s, s->count, s->sum_ns, s->gauge, b};
      if (s->buckets != NULL) {
        memcpy(snap->buckets + b, s->buckets, (N_BUCKETS + 1) * sizeof(uint64_t));
        b += N_BUCKETS + 1;
      }
      k++;
    }
  }
  snap->start[F__COUNT] = k;
  snap->own = m->own;
  pthread_mutex_unlock(&m->mu);
  snap->copy_s = monotonic_s() - snap->copy_s;
  return TP_E_OK;
}

static void render_family(tp_prom_writer *w, const snapshot *snap, unsigned fam) {
  const family_def *d = &FAMILIES[fam];
  static const tp_prom_buckets buckets = {BUCKET_S, BUCKET_TEXT, N_BUCKETS};
  tp_prom_family(w, d->name, kind_name(d->kind), d->help);
  for (size_t k = snap->start[fam]; k < snap->start[fam + 1]; k++) {
    const shot *sh = &snap->shots[k];
    tp_prom_label labels[MAX_LABELS];
    for (size_t i = 0; i < d->n_labels; i++)
      labels[i] = (tp_prom_label){d->labels[i], sh->s->labels[i]};
    switch (d->kind) {
    case KIND_COUNTER:
      tp_prom_u64(w, d->name, labels, d->n_labels, sh->count);
      break;
    case KIND_GAUGE:
      tp_prom_f64(w, d->name, labels, d->n_labels, sh->gauge);
      break;
    case KIND_HISTOGRAM:
      tp_prom_histogram(w, d->name, labels, d->n_labels, &buckets, snap->buckets + sh->buckets,
                        (double)sh->sum_ns / 1e9);
      break;
    }
  }
}

static void render_own(tp_prom_writer *w, const own_numbers *m) {
  char code[8];
  tp_prom_label l[1] = {{"code", code}};
  tp_prom_family(w, "tlsprobe_collector_ingest_requests_total", "counter",
                 "Answers to POST /v1/results, by HTTP status code.");
  for (unsigned s = 0; s < MAX_STATUS; s++) {
    if (m->answers[s] == 0)
      continue;
    snprintf(code, sizeof(code), "%u", s);
    tp_prom_u64(w, "tlsprobe_collector_ingest_requests_total", l, 1, m->answers[s]);
  }
  static const char RESULTS[] = "tlsprobe_collector_ingest_results_total";
  tp_prom_family(w, RESULTS, "counter",
                 "Results in decoded batches, by outcome: stored (new), duplicate (stored "
                 "before: a re-send), refused (batch answered 400 or 403), failed (503).");
  const struct {
    const char *outcome;
    uint64_t n;
  } outcomes[] = {{"stored", m->results_stored},
                  {"duplicate", m->results_duplicate},
                  {"refused", m->results_refused},
                  {"failed", m->results_failed}};
  for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
    tp_prom_label o[1] = {{"outcome", outcomes[i].outcome}};
    tp_prom_u64(w, RESULTS, o, 1, outcomes[i].n);
  }
  tp_prom_family(w, "tlsprobe_collector_ingest_duplicate_batches_total", "counter",
                 "Accepted batches that held nothing new (re-sends).");
  tp_prom_u64(w, "tlsprobe_collector_ingest_duplicate_batches_total", NULL, 0,
              m->duplicate_batches);
  tp_prom_family(w, "tlsprobe_collector_drop_reports_total", "counter",
                 "Drop reports newly stored (each counts one or more lost results).");
  tp_prom_u64(w, "tlsprobe_collector_drop_reports_total", NULL, 0, m->drop_reports);
  tp_prom_family(w, "tlsprobe_collector_metrics_series", "gauge",
                 "Label sets held by the per-target and per-agent families.");
  tp_prom_u64(w, "tlsprobe_collector_metrics_series", NULL, 0, m->n_series);
  tp_prom_family(w, "tlsprobe_collector_metrics_series_limit", "gauge",
                 "The most label sets held (metrics.max_series).");
  tp_prom_u64(w, "tlsprobe_collector_metrics_series_limit", NULL, 0, m->max_series);
  static const char REFUSED[] = "tlsprobe_collector_metrics_series_refused_total";
  tp_prom_family(w, REFUSED, "counter",
                 "Updates that needed a new label set beyond metrics.max_series, by family "
                 "(the results are stored and in the collector's totals all the same).");
  for (unsigned f = 0; f < F__COUNT; f++) {
    tp_prom_label fl[1] = {{"family", FAMILIES[f].name}};
    tp_prom_u64(w, REFUSED, fl, 1, m->refused[f]);
  }
  tp_prom_family(w, "tlsprobe_collector_metrics_render_seconds", "gauge",
                 "How long the previous scrape took to copy (under the lock) and render.");
  tp_prom_f64(w, "tlsprobe_collector_metrics_render_seconds", NULL, 0, m->last_render_s);
  tp_prom_family(w, "tlsprobe_collector_metrics_lock_seconds", "gauge",
                 "Of that, how long ingest had to wait: the copy under the registry's lock.");
  tp_prom_f64(w, "tlsprobe_collector_metrics_lock_seconds", NULL, 0, m->last_copy_s);
}

tp_err tp_metrics_render(tp_metrics *m, tp_buf *out) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
    return TP_E_IO;
  return tp_metrics_render_at(m, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, out);
}

tp_err tp_metrics_render_at(tp_metrics *m, int64_t now_ns, tp_buf *out) {
  snapshot snap;
  double start = monotonic_s();
  tp_err rc = take_snapshot(m, now_ns, &snap);
  if (rc != TP_E_OK)
    return rc;
  tp_prom_writer w;
  tp_prom_begin(&w, out);
  for (unsigned f = 0; f < F__COUNT; f++)
    render_family(&w, &snap, f);
  render_own(&w, &snap.own);
  free(snap.shots);
  free(snap.buckets);
  pthread_mutex_lock(&m->mu);
  m->own.last_render_s = monotonic_s() - start;
  m->own.last_copy_s = snap.copy_s;
  pthread_mutex_unlock(&m->mu);
  return tp_prom_end(&w);
}
