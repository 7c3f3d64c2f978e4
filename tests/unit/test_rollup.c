/* test_rollup.c - storage for long windows (schema version 5) on a real SQLite file:
 * tp_store_maintain's rollups against what was stored (every counter of every
 * minute x group equal to the one computed here from the inputs; merged latency
 * quantiles within 1 % of the exact nearest rank over the raw rows), a late batch
 * merged into its already rolled-up minute exactly once, a second pass adding
 * nothing, retention deleting only rolled-up raw rows and old rollups / drop
 * reports / batch-log rows (and never the newest row, which keeps ids growing), a
 * pass stopped midway losing nothing, a version 4 database's rows rolled up after
 * the migration, damaged blobs refused, and the scan's filters, orders and window
 * edges. Inputs come from a fixed-seed generator: a failure reproduces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outcome.h"
#include "percentile.h"
#include "report.h"
#include "sketch.h"
#include "store.h"
#include "tlsprobe.pb-c.h"

#define MINUTE TP_STORE_ROLLUP_MINUTE_NS
#define HOUR TP_STORE_ROLLUP_HOUR_NS
#define DAY (INT64_C(86400) * 1000000000)
/* 2023-11-14T22:13:00Z, a whole minute. */
#define T0 (INT64_C(1700000000000000000) - INT64_C(1700000000000000000) % MINUTE)

static const char *const TARGETS[] = {"web", "api", "mail"};
static const char *const PROFILES[] = {"modern", "android-7"};
static const char *const REGIONS[] = {"eu", "us"};
static const char *const AGENTS[] = {"agent-a", "agent-b"};
static const char *const FAMILIES[] = {"", "ipv4", "ipv6"};
/* Negotiated (version, cipher, group) combinations; "" = none negotiated. */
static const char *const MIXES[][3] = {{"TLS1.3", "TLS_AES_128_GCM_SHA256", "X25519"},
                                       {"TLS1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", "SECP256R1"},
                                       {"TLS1.2", "AES128-GCM-SHA256", ""}};
#define N_MIX 3
#define N_T 3
#define N_P 2
#define N_R 2
#define N_A 2
#define N_F 3
#define N_MIN 15 /* minutes the generated probes span */

/* One probe result, as the test sees it. */
typedef struct probe {
  int t, p, r, a, f; /* indices into the tables above */
  int64_t started;
  int cls; /* ErrorClass = outcome value */
  int mix;  /* index into MIXES: what a success negotiated */
  bool divergent;
  uint64_t handshake, connect, total, lag;
  bool hrr, resumed, ed_sent, ed_accepted, violation, checked;
  const char *mode;
  bool stapled;
  int64_t staple_age;
  bool chain;
  int days;
} probe;

typedef struct fixture {
  char dir[64];
  char db[128];
  tp_store *store;
  uint64_t seq, batch; /* result_seq and batch_seq, unique across the test */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  char err[512] = "";
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp_rollup_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->db, sizeof(f->db), "%s/r.db", f->dir);
  if (tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &f->store, err, sizeof(err)) != TP_E_OK)
    fail_msg("open: %s", err);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char path[160];
  const char *suffixes[] = {"", "-wal", "-shm"};
  tp_store_close(f->store);
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof(path), "%s%s", f->db, suffixes[i]);
    unlink(path);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

static long long query_int(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
    fail_msg("%s: %s", sql, sqlite3_errmsg(db));
  assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
  long long v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return v;
}

static char *query_text(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
  const unsigned char *t = sqlite3_column_text(stmt, 0);
  char *out = strdup(t ? (const char *)t : "");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

static void exec_sql(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
    fail_msg("%s: %s", sql, sqlite3_errmsg(db));
  sqlite3_close(db);
}

/* ---- building batches ---------------------------------------------------------- */

static void fill_result(const probe *pr, uint64_t seq, Tlsprobe__V1__ProbeResult *r,
                        Tlsprobe__V1__OcspFacts *ocsp, Tlsprobe__V1__CertificateFacts *cert,
                        Tlsprobe__V1__CertificateFacts **certs) {
  tlsprobe__v1__probe_result__init(r);
  r->target = (char *)TARGETS[pr->t];
  r->profile = (char *)PROFILES[pr->p];
  r->region = (char *)REGIONS[pr->r];
  r->address_family = (char *)FAMILIES[pr->f];
  r->host = "h";
  r->port = 443;
  r->result_seq = seq;
  r->started_unix_ns = pr->started;
  r->connect_ns = pr->connect;
  r->handshake_ns = pr->handshake;
  r->total_ns = pr->total;
  r->loop_lag_ns = pr->lag;
  r->ok = pr->cls == TP_OUTCOME_OK;
  r->error_class = (Tlsprobe__V1__ErrorClass)pr->cls;
  r->hello_retry_request = pr->hrr;
  r->mode = (char *)(pr->mode ? pr->mode : "handshake");
  r->resumed = pr->resumed;
  r->early_data_attempted = pr->ed_sent;
  r->early_data_accepted = pr->ed_accepted;
  r->early_data_policy_violation = pr->violation;
  r->emulation_checked = pr->checked;
  r->emulation_divergence = pr->divergent ? "cipher X not offered by the real client" : "";
  if (r->ok) {
    r->tls_version = (char *)MIXES[pr->mix][0];
    r->cipher = (char *)MIXES[pr->mix][1];
    r->group = (char *)MIXES[pr->mix][2];
  }
  if (pr->stapled) {
    tlsprobe__v1__ocsp_facts__init(ocsp);
    ocsp->cert_status = "good";
    ocsp->age_seconds = pr->staple_age;
    r->ocsp = ocsp;
  }
  if (pr->chain) {
    tlsprobe__v1__certificate_facts__init(cert);
    cert->subject = "CN=x";
    *certs = cert;
    r->chain = certs;
    r->n_chain = 1;
    r->days_to_earliest_expiry = pr->days;
  }
}

/* Stores probes (all of one agent) as one batch received at received_unix_ns;
 * first_seq 0 = number them next. Returns the outcome. */
static tp_store_put_outcome put_probes_seq(fixture *f, const probe *probes, size_t n,
                                           int64_t received_unix_ns, uint64_t first_seq,
                                           uint64_t batch_seq) {
  char err[512] = "";
  tp_store_put_outcome out;
  Tlsprobe__V1__ProbeResult *r = calloc(n, sizeof(*r));
  Tlsprobe__V1__ProbeResult **rp = calloc(n, sizeof(*rp));
  Tlsprobe__V1__OcspFacts *ocsp = calloc(n, sizeof(*ocsp));
  Tlsprobe__V1__CertificateFacts *cert = calloc(n, sizeof(*cert));
  Tlsprobe__V1__CertificateFacts **certs = calloc(n, sizeof(*certs));
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  assert_true(n > 0);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(probes[i].a, probes[0].a);
    fill_result(&probes[i], first_seq ? first_seq + i : ++f->seq, &r[i], &ocsp[i], &cert[i],
                &certs[i]);
    rp[i] = &r[i];
  }
  b.agent_id = (char *)AGENTS[probes[0].a];
  b.instance_id = 1;
  b.batch_seq = batch_seq ? batch_seq : ++f->batch;
  b.results = rp;
  b.n_results = n;
  if (tp_store_put_batch(f->store, &b, received_unix_ns, &out, err, sizeof(err)) != TP_E_OK)
    fail_msg("put: %s", err);
  free(r);
  free(rp);
  free(ocsp);
  free(cert);
  free(certs);
  return out;
}

static void put_probes(fixture *f, const probe *probes, size_t n) {
  /* One batch per run of the same agent. */
  size_t start = 0;
  for (size_t i = 1; i <= n; i++) {
    if (i == n || probes[i].a != probes[start].a) {
      tp_store_put_outcome out = put_probes_seq(f, probes + start, i - start, T0, 0, 0);
      assert_int_equal(out.results_stored, i - start);
      start = i;
    }
  }
}

/* splitmix64 */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }

static bool chance(uint64_t *s, unsigned percent) { return rng_next(s) % 100 < percent; }

/* A plausible mix: 85 % successes (some divergent), three failure classes, every
 * optional fact sometimes. */
static probe random_probe(uint64_t *s, int64_t started) {
  probe pr = {0};
  pr.t = (int)(rng_next(s) % N_T);
  pr.p = (int)(rng_next(s) % N_P);
  pr.r = (int)(rng_next(s) % N_R);
  pr.a = (int)(rng_next(s) % N_A);
  pr.f = (int)(rng_next(s) % N_F);
  pr.started = started;
  static const int failures[] = {TP_OUTCOME_EXPIRED, TP_OUTCOME_CONNECTION_REFUSED,
                                 TP_OUTCOME_HANDSHAKE_TIMEOUT};
  pr.cls = chance(s, 85) ? TP_OUTCOME_OK : failures[rng_next(s) % 3];
  double u1 = rng_unit(s), u2 = rng_unit(s);
  double z = sqrt(-2.0 * log(u1 > 0 ? u1 : 1e-300)) * cos(2.0 * M_PI * u2);
  pr.handshake = (uint64_t)(2e6 * exp(0.7 * z));
  pr.connect = 100000 + rng_next(s) % 900000;
  pr.total = pr.handshake + pr.connect + rng_next(s) % 500000;
  pr.lag = rng_next(s) % 50000;
  pr.mix = (int)(pr.connect % N_MIX); /* no extra draw: the other facts stay as they were */
  if (pr.cls == TP_OUTCOME_OK) {
    pr.checked = chance(s, 50);
    pr.divergent = pr.checked && chance(s, 10);
    pr.hrr = chance(s, 10);
    unsigned m = (unsigned)(rng_next(s) % 10);
    pr.mode = m < 3 ? "resumption" : m < 4 ? "early_data" : "handshake";
    pr.resumed = m < 4 && chance(s, 80);
    pr.ed_sent = m == 3;
    pr.ed_accepted = pr.ed_sent && chance(s, 50);
    pr.violation = pr.ed_accepted && chance(s, 20);
  } else {
    pr.handshake = pr.cls == TP_OUTCOME_CONNECTION_REFUSED ? 0 : pr.handshake;
  }
  pr.stapled = chance(s, 40);
  pr.staple_age = (int64_t)(rng_next(s) % 200000);
  pr.chain = pr.cls != TP_OUTCOME_CONNECTION_REFUSED && chance(s, 90);
  pr.days = (int)(rng_next(s) % 400) - 10;
  return pr;
}

/* n probes spread over N_MIN minutes from T0, grouped by agent for batching. */
static probe *generate(uint64_t seed, size_t n) {
  uint64_t s = seed;
  probe *v = calloc(n, sizeof(*v));
  for (size_t i = 0; i < n; i++)
    v[i] = random_probe(&s, T0 + (int64_t)(rng_next(&s) % (uint64_t)(N_MIN * MINUTE)));
  return v;
}

/* ---- expected rollups, computed from the inputs ------------------------------------- */

typedef struct expect {
  uint64_t probes, successes, divergent, classes[TP_OUTCOME_SLOTS], hrr, resumption_probes,
      resumed, ed_attempts, ed_accepts, violations, checked, stapled, lag_max, lag_sum,
      mix[N_MIX];
  bool have_age, have_days;
  int64_t max_age, min_days;
  int seen;
} expect;

#define N_KEYS (N_MIN * N_T * N_P * N_R * N_A * N_F)

static size_t key_of(int minute, int t, int p, int r, int a, int f) {
  return (((((size_t)minute * N_T + (size_t)t) * N_P + (size_t)p) * N_R + (size_t)r) * N_A +
          (size_t)a) *
             N_F +
         (size_t)f;
}

static bool exact_success(const probe *pr) { return pr->cls == TP_OUTCOME_OK && !pr->divergent; }

static void expect_add(expect *e, const probe *pr) {
  bool exact = exact_success(pr);
  bool resumable = pr->mode && (strcmp(pr->mode, "resumption") == 0 ||
                                strcmp(pr->mode, "early_data") == 0);
  e->probes++;
  e->successes += exact;
  e->divergent += pr->cls == TP_OUTCOME_OK && pr->divergent;
  e->classes[pr->cls]++;
  e->hrr += exact && pr->hrr;
  e->mix[pr->mix] += exact;
  e->resumption_probes += exact && resumable;
  e->resumed += exact && resumable && pr->resumed;
  e->ed_attempts += exact && pr->ed_sent;
  e->ed_accepts += exact && pr->ed_sent && pr->ed_accepted;
  e->violations += pr->violation;
  e->checked += exact && pr->checked;
  e->stapled += pr->stapled;
  if (pr->stapled && (!e->have_age || pr->staple_age > e->max_age)) {
    e->have_age = true;
    e->max_age = pr->staple_age;
  }
  if (pr->chain && (!e->have_days || pr->days < e->min_days)) {
    e->have_days = true;
    e->min_days = pr->days;
  }
  if (pr->lag > e->lag_max)
    e->lag_max = pr->lag;
  e->lag_sum += pr->lag;
}

static int index_in(const char *const *table, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (strcmp(table[i], s) == 0)
      return i;
  fail_msg("unexpected name \"%s\" in a rollup row", s);
  return -1;
}

typedef struct check_ctx {
  expect *e;
  size_t rows;
  /* Per (t, p, r): merged sketches over every agent, family and minute. */
  tp_sketch *merged[N_T * N_P * N_R][3];
} check_ctx;

static tp_err check_row(const tp_store_rollup_row *row, void *data) {
  check_ctx *c = data;
  assert_int_equal((row->start_unix_ns - T0) % MINUTE, 0);
  int minute = (int)((row->start_unix_ns - T0) / MINUTE);
  assert_true(minute >= 0 && minute < N_MIN);
  int t = index_in(TARGETS, N_T, row->target), p = index_in(PROFILES, N_P, row->profile),
      r = index_in(REGIONS, N_R, row->region), a = index_in(AGENTS, N_A, row->agent_id),
      f = index_in(FAMILIES, N_F, row->address_family);
  expect *e = &c->e[key_of(minute, t, p, r, a, f)];
  assert_int_equal(e->seen, 0); /* one row per minute x group */
  e->seen = 1;
  c->rows++;
  assert_int_equal(row->probes, e->probes);
  assert_int_equal(row->successes, e->successes);
  assert_int_equal(row->divergent, e->divergent);
  assert_memory_equal(row->classes.n, e->classes, sizeof(e->classes));
  assert_int_equal(row->hrr, e->hrr);
  assert_int_equal(row->resumption_probes, e->resumption_probes);
  assert_int_equal(row->resumed, e->resumed);
  assert_int_equal(row->early_data_attempts, e->ed_attempts);
  assert_int_equal(row->early_data_accepts, e->ed_accepts);
  assert_int_equal(row->early_data_violations, e->violations);
  assert_int_equal(row->emulation_checked, e->checked);
  assert_int_equal(row->ocsp_stapled, e->stapled);
  assert_int_equal(row->ocsp_max_age_seconds.set, e->have_age);
  if (e->have_age)
    assert_int_equal(row->ocsp_max_age_seconds.v, e->max_age);
  assert_int_equal(row->min_days_to_expiry.set, e->have_days);
  if (e->have_days)
    assert_int_equal(row->min_days_to_expiry.v, e->min_days);
  assert_int_equal(row->loop_lag_max_ns, e->lag_max);
  assert_int_equal(row->loop_lag_sum_ns, e->lag_sum);
  assert_int_equal(tp_sketch_count(row->handshake_ns), e->successes);
  /* The negotiated mix: exact successes per combination, nothing else. */
  assert_non_null(row->negotiated);
  assert_int_equal(tp_mix_total(row->negotiated), e->successes);
  assert_int_equal(tp_mix_overflow(row->negotiated), 0);
  size_t combos = 0;
  for (int m = 0; m < N_MIX; m++)
    combos += e->mix[m] > 0;
  assert_int_equal(tp_mix_entries(row->negotiated), combos);
  for (size_t i = 0; i < tp_mix_entries(row->negotiated); i++) {
    tp_mix_entry me = tp_mix_entry_at(row->negotiated, i);
    int m = 0;
    while (m < N_MIX && !(strcmp(MIXES[m][0], me.version) == 0 &&
                          strcmp(MIXES[m][1], me.cipher) == 0 && strcmp(MIXES[m][2], me.group) == 0))
      m++;
    if (m == N_MIX)
      fail_msg("rollup mix holds an unknown combination %s/%s/%s", me.version, me.cipher, me.group);
    assert_int_equal(me.count, e->mix[m]);
  }
  assert_int_equal(tp_sketch_count(row->connect_ns), e->successes);
  assert_int_equal(tp_sketch_count(row->total_ns), e->successes);
  tp_sketch **m = c->merged[(t * N_P + p) * N_R + r];
  assert_int_equal(tp_sketch_merge(m[0], row->handshake_ns), TP_E_OK);
  assert_int_equal(tp_sketch_merge(m[1], row->connect_ns), TP_E_OK);
  assert_int_equal(tp_sketch_merge(m[2], row->total_ns), TP_E_OK);
  return TP_E_OK;
}

static expect *expected(const probe *v, size_t n) {
  expect *e = calloc(N_KEYS, sizeof(*e));
  for (size_t i = 0; i < n; i++)
    expect_add(&e[key_of((int)((v[i].started - T0) / MINUTE), v[i].t, v[i].p, v[i].r, v[i].a,
                         v[i].f)],
               &v[i]);
  return e;
}

static void maintain(fixture *f, int64_t now, tp_store_maintain_stats *stats) {
  char err[512] = "";
  tp_store_maintain_limits limits = {.raw_retention_ms = 7 * 86400000ull,
                                     .rollup_retention_ms = 90 * 86400000ull};
  if (tp_store_maintain(f->store, now, &limits, stats, err, sizeof(err)) != TP_E_OK)
    fail_msg("maintain: %s", err);
}

/* Checks every rollup row against the expectation, then that nothing is missing. */
static void check_rollups(fixture *f, expect *e, check_ctx *c) {
  char err[512] = "";
  for (size_t i = 0; i < N_T * N_P * N_R; i++)
    for (int k = 0; k < 3; k++)
      c->merged[i][k] = tp_sketch_new();
  c->e = e;
  if (tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL, TP_STORE_ROLLUPS_BY_GROUP, check_row, c,
                            err, sizeof(err)) != TP_E_OK)
    fail_msg("scan: %s", err);
  for (size_t k = 0; k < N_KEYS; k++)
    if (e[k].probes > 0 && !e[k].seen)
      fail_msg("no rollup row for key %zu (%llu probes)", k, (unsigned long long)e[k].probes);
}

static void free_check(check_ctx *c) {
  for (size_t i = 0; i < N_T * N_P * N_R; i++)
    for (int k = 0; k < 3; k++)
      tp_sketch_free(c->merged[i][k]);
}

/* The merged sketch of each (target, profile, region) against the exact nearest rank
 * of the raw values. */
static void check_quantiles(const probe *v, size_t n, check_ctx *c) {
  static const unsigned permille[] = {500, 900, 990, 999};
  uint64_t *vals = malloc(n * sizeof(*vals));
  double worst = 0;
  for (int g = 0; g < N_T * N_P * N_R; g++) {
    for (int k = 0; k < 3; k++) {
      size_t m = 0;
      for (size_t i = 0; i < n; i++) {
        if (!exact_success(&v[i]) || (v[i].t * N_P + v[i].p) * N_R + v[i].r != g)
          continue;
        vals[m++] = k == 0 ? v[i].handshake : k == 1 ? v[i].connect : v[i].total;
      }
      assert_int_equal(tp_sketch_count(c->merged[g][k]), m);
      if (m == 0)
        continue;
      tp_percentile_sort(vals, m);
      for (size_t q = 0; q < sizeof(permille) / sizeof(permille[0]); q++) {
        uint64_t rank = (m * permille[q] + 999) / 1000, got = 0;
        uint64_t want = vals[(rank < 1 ? 1 : rank) - 1];
        assert_true(tp_sketch_quantile(c->merged[g][k], permille[q] / 1000.0, &got));
        double err = fabs((double)got - (double)want) / (double)want;
        if (err > TP_SKETCH_MAX_RELATIVE_ERROR)
          fail_msg("group %d metric %d p%.1f: rollups %llu, raw %llu (%.2f %%)", g, k,
                   permille[q] / 10.0, (unsigned long long)got, (unsigned long long)want, err * 100);
        if (err > worst)
          worst = err;
      }
    }
  }
  print_message("rollup quantiles vs raw nearest rank: worst %.3f %%\n", worst * 100);
  free(vals);
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_rollups_equal_raw(void **state) {
  fixture *f = *state;
  enum { N = 6000 };
  probe *v = generate(11, N);
  put_probes(f, v, N);
  tp_store_maintain_stats st;
  maintain(f, T0 + 3600 * INT64_C(1000000000), &st);
  assert_int_equal(st.rolled_up, N);
  assert_false(st.stopped);
  assert_int_equal(st.raw_deleted, 0); /* nothing older than 7 days */
  long long groups = query_int(f->db, "SELECT count(*) FROM rollups WHERE span_ns = 60000000000");
  assert_true(st.rollup_rows >= (uint64_t)groups); /* a minute x group once per chunk it is in */
  assert_int_equal(query_int(f->db, "SELECT watermark FROM rollup_state"),
                   query_int(f->db, "SELECT max(id) FROM results"));
  print_message("%d results -> %lld rollup rows in %u transactions (longest %.1f ms)\n", N, groups,
                st.transactions, (double)st.max_txn_ns / 1e6);

  expect *e = expected(v, N);
  check_ctx c = {0};
  check_rollups(f, e, &c);
  assert_int_equal(c.rows, groups);
  check_quantiles(v, N, &c);
  /* And the raw rows say the same (rollup counts = raw counts). */
  assert_int_equal(query_int(f->db, "SELECT sum(probes) FROM rollups WHERE span_ns = 60000000000"),
                   query_int(f->db, "SELECT count(*) FROM results"));
  assert_int_equal(query_int(f->db, "SELECT sum(successes) FROM rollups WHERE span_ns = 60000000000"),
                   query_int(f->db, "SELECT count(*) FROM results WHERE ok = 1"
                                    " AND emulation_divergence = ''"));
  free_check(&c);
  free(e);
  free(v);
}

/* An agent delivers its spool hours later: the results land in their own (already
 * rolled-up) minutes, once, and a re-send of them changes nothing. */
static void test_late_batch_merges_once(void **state) {
  fixture *f = *state;
  enum { N = 400, LATE = 60 };
  probe *v = generate(12, N + LATE);
  for (size_t i = 0; i < N + LATE; i++)
    v[i].a = 0; /* one agent: one late batch */
  put_probes(f, v, N);
  tp_store_maintain_stats st;
  maintain(f, T0 + 3600 * INT64_C(1000000000), &st);
  assert_int_equal(st.rolled_up, N);
  long long rows_before = query_int(f->db, "SELECT count(*) FROM rollups WHERE span_ns = 60000000000");

  /* Received 5 hours later, started in the same 15 minutes. */
  uint64_t first_seq = f->seq + 1, batch_seq = ++f->batch;
  tp_store_put_outcome out =
      put_probes_seq(f, v + N, LATE, T0 + 5 * 3600 * INT64_C(1000000000), first_seq, batch_seq);
  assert_int_equal(out.results_stored, LATE);
  f->seq += LATE;
  tp_store_horizon h;
  char err[256];
  assert_int_equal(tp_store_horizon_get(f->store, &h, err, sizeof(err)), TP_E_OK);
  assert_int_equal(h.results_not_rolled_up, LATE);
  maintain(f, T0 + 6 * 3600 * INT64_C(1000000000), &st);
  assert_int_equal(st.rolled_up, LATE);
  assert_true(st.rollup_rows <= 2 * LATE); /* a minute and an hour row each at most */
  /* New minute rows only for the late results' minute x group seen for the first
   * time; the others merged into the rows rolled up hours before. */
  expect *early = expected(v, N), *all = expected(v, N + LATE);
  long long fresh = 0, touched = 0;
  for (size_t k = 0; k < N_KEYS; k++) {
    fresh += early[k].probes == 0 && all[k].probes > 0;
    touched += all[k].probes > early[k].probes;
  }
  free(early);
  free(all);
  long long rows_after = query_int(f->db, "SELECT count(*) FROM rollups WHERE span_ns = 60000000000");
  assert_int_equal(rows_after - rows_before, fresh);
  assert_true(fresh < touched); /* some late results did land in existing minutes */

  /* The same batch again (the agent never got the ack): nothing new anywhere. */
  out = put_probes_seq(f, v + N, LATE, T0 + 6 * 3600 * INT64_C(1000000000), first_seq, batch_seq);
  assert_true(out.duplicate);
  maintain(f, T0 + 7 * 3600 * INT64_C(1000000000), &st);
  assert_int_equal(st.rolled_up, 0);
  assert_int_equal(st.rollup_rows, 0);

  expect *e = expected(v, N + LATE);
  check_ctx c = {0};
  check_rollups(f, e, &c);
  check_quantiles(v, N + LATE, &c);
  free_check(&c);
  free(e);
  free(v);
}

/* Every column of every rollup row, as one text. */
static char *snapshot(fixture *f) {
  return query_text(f->db,
                    "SELECT group_concat(x, '|') FROM (SELECT target || profile || region ||"
                    " agent_id || address_family || start_unix_ns || ',' || probes || ',' ||"
                    " successes || ',' || divergent || hex(classes) || hrr || resumption_probes"
                    " || resumed || early_data_attempts || early_data_accepts ||"
                    " early_data_violations || emulation_checked || ocsp_stapled ||"
                    " coalesce(ocsp_max_age_seconds, 'n') || coalesce(min_days_to_expiry, 'n') ||"
                    " loop_lag_max_ns || loop_lag_sum_ns || coalesce(hex(handshake_sketch), 'n')"
                    " || coalesce(hex(connect_sketch), 'n') || coalesce(hex(total_sketch), 'n')"
                    " AS x FROM rollups ORDER BY id)");
}

static void test_second_pass_adds_nothing(void **state) {
  fixture *f = *state;
  enum { N = 1500 };
  probe *v = generate(13, N);
  put_probes(f, v, N);
  tp_store_maintain_stats st;
  maintain(f, T0 + 3600 * INT64_C(1000000000), &st);
  assert_int_equal(st.rolled_up, N);
  char *before = snapshot(f);
  assert_true(strlen(before) > 1000);
  maintain(f, T0 + 3600 * INT64_C(1000000000), &st);
  assert_int_equal(st.rolled_up, 0);
  assert_int_equal(st.rollup_rows, 0);
  assert_int_equal(st.transactions, 0); /* an idle pass writes nothing */
  char *after = snapshot(f);
  assert_string_equal(before, after);
  free(before);
  free(after);
  free(v);
}

/* Chunks of 7 rows, the pass stopped after every third transaction: resuming pass
 * after pass still counts each result exactly once. */
typedef struct stopper {
  unsigned calls, stop_every;
} stopper;

static bool stop_sometimes(void *ctx, uint64_t txn_ns) {
  stopper *s = ctx;
  (void)txn_ns;
  return ++s->calls % s->stop_every != 0;
}

static void test_stopped_passes_lose_nothing(void **state) {
  fixture *f = *state;
  char err[512] = "";
  enum { N = 500 };
  probe *v = generate(14, N);
  put_probes(f, v, N);
  stopper sp = {.stop_every = 3};
  tp_store_maintain_limits limits = {.chunk_rows = 7, .between = stop_sometimes, .ctx = &sp};
  uint64_t total = 0;
  int passes = 0;
  for (;; passes++) {
    tp_store_maintain_stats st;
    assert_int_equal(tp_store_maintain(f->store, T0, &limits, &st, err, sizeof(err)), TP_E_OK);
    total += st.rolled_up;
    assert_true(st.rolled_up <= 3 * 7);
    if (!st.stopped)
      break;
  }
  assert_int_equal(total, N);
  assert_true(passes > N / 21 - 1);
  expect *e = expected(v, N);
  check_ctx c = {0};
  check_rollups(f, e, &c);
  free_check(&c);
  free(e);
  free(v);
}

static probe simple_probe(int t, int64_t started) {
  probe pr = {.t = t, .started = started, .cls = TP_OUTCOME_OK, .handshake = 2000000,
              .connect = 300000, .total = 2500000, .mode = "handshake", .chain = true,
              .days = 60};
  return pr;
}

static void put_drop(fixture *f, uint64_t drop_id, int64_t last_unix_ns, int64_t received) {
  char err[512] = "";
  tp_store_put_outcome out;
  Tlsprobe__V1__DropReport d = TLSPROBE__V1__DROP_REPORT__INIT;
  Tlsprobe__V1__DropReport *dp = &d;
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  d.drop_id = drop_id;
  d.count = 3;
  d.reason = "spool_full";
  d.first_unix_ns = last_unix_ns - 1000;
  d.last_unix_ns = last_unix_ns;
  b.agent_id = (char *)AGENTS[0];
  b.instance_id = 1;
  b.batch_seq = ++f->batch;
  b.drops = &dp;
  b.n_drops = 1;
  if (tp_store_put_batch(f->store, &b, received, &out, err, sizeof(err)) != TP_E_OK)
    fail_msg("put drop: %s", err);
  assert_int_equal(out.drops_stored, 1);
}

static void test_retention(void **state) {
  fixture *f = *state;
  char err[512] = "";
  const int64_t now = T0 + 100 * DAY;
  /* Ages 100 d, 30 d, 8 d (raw old, rollups kept), 6 d, 1 h; two of each. */
  const int64_t ages[] = {100 * DAY, 30 * DAY, 8 * DAY, 6 * DAY, 3600 * INT64_C(1000000000)};
  for (size_t i = 0; i < 5; i++) {
    probe two[2] = {simple_probe(0, now - ages[i]), simple_probe(1, now - ages[i] + 1)};
    tp_store_put_outcome out = put_probes_seq(f, two, 2, now - ages[i], 0, 0);
    assert_int_equal(out.results_stored, 2);
  }
  put_drop(f, 1, now - 95 * DAY, now - 95 * DAY);
  put_drop(f, 2, now - 10 * DAY, now - 10 * DAY);
  long long batches = query_int(f->db, "SELECT count(*) FROM batches");
  long long spools = query_int(f->db, "SELECT count(*) FROM spools");

  /* A pass stopped after its first chunk: rolled up 2, deleted nothing. */
  stopper sp = {.stop_every = 1};
  tp_store_maintain_limits limits = {.raw_retention_ms = 7 * 86400000ull,
                                     .rollup_retention_ms = 90 * 86400000ull,
                                     .chunk_rows = 2,
                                     .between = stop_sometimes,
                                     .ctx = &sp};
  tp_store_maintain_stats st;
  assert_int_equal(tp_store_maintain(f->store, now, &limits, &st, err, sizeof(err)), TP_E_OK);
  assert_true(st.stopped);
  assert_int_equal(st.rolled_up, 2);
  assert_int_equal(st.raw_deleted, 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results"), 10);

  /* The whole pass (small chunks: retention loops too). */
  limits.between = NULL;
  assert_int_equal(tp_store_maintain(f->store, now, &limits, &st, err, sizeof(err)), TP_E_OK);
  assert_false(st.stopped);
  assert_int_equal(st.rolled_up, 8);
  assert_int_equal(st.raw_deleted, 6);     /* 100 d, 30 d and 8 d */
  assert_int_equal(st.rollups_deleted, 6); /* the 100 d minute, hour and day of each target */
  assert_int_equal(st.drops_deleted, 1);
  assert_int_equal(st.batches_deleted, 2); /* the batch 100 d ago and the 95 d drop's */
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results"), 4);
  assert_int_equal(query_int(f->db, "SELECT min(started_unix_ns) FROM results"),
                   now - 6 * DAY);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM rollups WHERE span_ns = 60000000000"), 8);
  assert_int_equal(query_int(f->db, "SELECT sum(probes) FROM rollups WHERE span_ns = 60000000000"), 8);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM drops"), 1);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM batches"), batches - 2);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM spools"), spools); /* counters kept */
  assert_int_equal(query_int(f->db, "SELECT dropped FROM spools"), 6);

  tp_store_horizon h;
  assert_int_equal(tp_store_horizon_get(f->store, &h, err, sizeof(err)), TP_E_OK);
  assert_int_equal(h.raw_complete_since_unix_ns, now - 7 * DAY);
  int64_t cut = now - 90 * DAY;
  assert_int_equal(h.rollups_complete_since_unix_ns, cut - cut % DAY); /* whole days */
  /* every span goes from the same instant: no row older, one of each span younger */
  char sql[200];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM rollups WHERE start_unix_ns < %lld",
           (long long)(cut - cut % DAY));
  assert_int_equal(query_int(f->db, sql), 0);
  assert_int_equal(query_int(f->db, "SELECT count(DISTINCT span_ns) FROM rollups"), 3);
  assert_true(h.oldest_raw_started_unix_ns.set);
  assert_int_equal(h.oldest_raw_started_unix_ns.v, now - 6 * DAY);
  assert_true(h.oldest_rollup_start_unix_ns.set);
  int64_t m30 = now - 30 * DAY;
  assert_int_equal(h.oldest_rollup_start_unix_ns.v, m30 - m30 % MINUTE);
  assert_int_equal(h.results_not_rolled_up, 0);

  /* A late result from 10 days ago, then a fresh one: the late one is rolled up into
   * its kept minute, then deleted. */
  probe late[2] = {simple_probe(0, now - 10 * DAY), simple_probe(0, now - 60000000000)};
  put_probes_seq(f, late, 2, now, 0, 0);
  assert_int_equal(tp_store_horizon_get(f->store, &h, err, sizeof(err)), TP_E_OK);
  assert_int_equal(h.results_not_rolled_up, 2);
  assert_int_equal(tp_store_maintain(f->store, now, &limits, &st, err, sizeof(err)), TP_E_OK);
  assert_int_equal(st.rolled_up, 2);
  assert_int_equal(st.raw_deleted, 1);
  assert_int_equal(query_int(f->db, "SELECT sum(probes) FROM rollups WHERE span_ns = 60000000000"), 10);
  /* A second pass finds nothing to do. */
  assert_int_equal(tp_store_maintain(f->store, now, &limits, &st, err, sizeof(err)), TP_E_OK);
  assert_int_equal(st.rolled_up + st.raw_deleted + st.rollups_deleted + st.transactions, 0);
}

/* All raw rows old: every one is rolled up and deleted but the newest, whose id keeps
 * the next result's id above the watermark. */
static void test_newest_row_kept_ids_grow(void **state) {
  fixture *f = *state;
  char err[512] = "";
  const int64_t now = T0 + 30 * DAY;
  probe old[3] = {simple_probe(0, T0), simple_probe(1, T0 + 1), simple_probe(2, T0 + 2)};
  put_probes_seq(f, old, 3, T0, 0, 0);
  tp_store_maintain_limits limits = {.raw_retention_ms = 7 * 86400000ull,
                                     .rollup_retention_ms = 90 * 86400000ull};
  tp_store_maintain_stats st;
  assert_int_equal(tp_store_maintain(f->store, now, &limits, &st, err, sizeof(err)), TP_E_OK);
  assert_int_equal(st.rolled_up, 3);
  assert_int_equal(st.raw_deleted, 2);
  long long max_id = query_int(f->db, "SELECT max(id) FROM results");
  assert_int_equal(max_id, 3);
  assert_int_equal(query_int(f->db, "SELECT watermark FROM rollup_state"), 3);
  probe fresh = simple_probe(0, now - 60 * INT64_C(1000000000));
  put_probes_seq(f, &fresh, 1, now, 0, 0);
  assert_int_equal(query_int(f->db, "SELECT max(id) FROM results"), 4); /* above the watermark */
  assert_int_equal(tp_store_maintain(f->store, now, &limits, &st, err, sizeof(err)), TP_E_OK);
  assert_int_equal(st.rolled_up, 1);
  assert_int_equal(st.raw_deleted, 1); /* the old newest row may go now */
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results"), 1);
  assert_int_equal(query_int(f->db, "SELECT sum(probes) FROM rollups WHERE span_ns = 60000000000"), 4);
}

/* The version 4 schema as a version 4 collector left it (version 1's tables with the
 * expiry column relaxed, then migrations 1 -> 2, 2 -> 3 and 3 -> 4). */
static const char V4_DDL[] =
    "CREATE TABLE batches (agent_id TEXT NOT NULL, instance_id INTEGER NOT NULL,"
    " batch_seq INTEGER NOT NULL, received_unix_ns INTEGER NOT NULL,"
    " result_count INTEGER NOT NULL, PRIMARY KEY (agent_id, instance_id, batch_seq));"
    "CREATE TABLE results (id INTEGER PRIMARY KEY, received_unix_ns INTEGER NOT NULL,"
    " agent_id TEXT NOT NULL, instance_id INTEGER NOT NULL, batch_seq INTEGER NOT NULL,"
    " region TEXT NOT NULL, target TEXT NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL,"
    " sni TEXT NOT NULL, profile TEXT NOT NULL, address TEXT NOT NULL,"
    " result_seq INTEGER NOT NULL, started_unix_ns INTEGER NOT NULL, dns_ns INTEGER NOT NULL,"
    " connect_ns INTEGER NOT NULL, handshake_ns INTEGER NOT NULL, total_ns INTEGER NOT NULL,"
    " loop_lag_ns INTEGER NOT NULL, ok INTEGER NOT NULL, error_class TEXT NOT NULL,"
    " error_detail TEXT NOT NULL, tls_version TEXT NOT NULL, cipher TEXT NOT NULL,"
    " grp TEXT NOT NULL, alpn TEXT NOT NULL, resumed INTEGER NOT NULL,"
    " hello_retry_request INTEGER NOT NULL, server_signature_algorithm TEXT NOT NULL,"
    " chain_json TEXT NOT NULL, days_to_earliest_expiry INTEGER);"
    "CREATE INDEX results_started ON results (started_unix_ns);"
    "CREATE INDEX results_series ON results (target, profile, region, started_unix_ns);"
    "ALTER TABLE results ADD COLUMN groups_offered TEXT;"
    "ALTER TABLE results ADD COLUMN key_shares_offered TEXT;"
    "ALTER TABLE results ADD COLUMN mode TEXT;"
    "ALTER TABLE results ADD COLUMN ticket_received INTEGER;"
    "ALTER TABLE results ADD COLUMN resumption_handshake_ns INTEGER;"
    "ALTER TABLE results ADD COLUMN early_data_attempted INTEGER;"
    "ALTER TABLE results ADD COLUMN early_data_accepted INTEGER;"
    "ALTER TABLE results ADD COLUMN fidelity_note TEXT;"
    "ALTER TABLE results ADD COLUMN ocsp_stapled INTEGER;"
    "ALTER TABLE results ADD COLUMN ocsp_cert_status TEXT;"
    "ALTER TABLE results ADD COLUMN ocsp_this_update_unix INTEGER;"
    "ALTER TABLE results ADD COLUMN ocsp_next_update_unix INTEGER;"
    "ALTER TABLE results ADD COLUMN ocsp_age_seconds INTEGER;"
    "ALTER TABLE results ADD COLUMN chain_length_sent INTEGER;"
    "ALTER TABLE results ADD COLUMN chain_complete INTEGER;"
    "ALTER TABLE results ADD COLUMN http_status INTEGER;"
    "ALTER TABLE results ADD COLUMN http_first_byte_ns INTEGER;"
    "ALTER TABLE results ADD COLUMN http_hsts INTEGER;"
    "ALTER TABLE results ADD COLUMN address_family TEXT;"
    "ALTER TABLE results ADD COLUMN emulation_checked INTEGER;"
    "ALTER TABLE results ADD COLUMN emulation_divergence TEXT;"
    "ALTER TABLE results ADD COLUMN early_data_policy_violation INTEGER;"
    "CREATE UNIQUE INDEX results_identity ON results (agent_id, instance_id, result_seq);"
    "CREATE TABLE drops (agent_id TEXT NOT NULL, instance_id INTEGER NOT NULL,"
    " drop_id INTEGER NOT NULL, received_unix_ns INTEGER NOT NULL, count INTEGER NOT NULL,"
    " reason TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,"
    " first_unix_ns INTEGER NOT NULL, last_unix_ns INTEGER NOT NULL,"
    " PRIMARY KEY (agent_id, instance_id, drop_id)) WITHOUT ROWID;"
    "CREATE INDEX drops_time ON drops (last_unix_ns);"
    "CREATE TABLE spools (agent_id TEXT NOT NULL, instance_id INTEGER NOT NULL,"
    " first_received_unix_ns INTEGER NOT NULL, last_received_unix_ns INTEGER NOT NULL,"
    " last_started_unix_ns INTEGER NOT NULL, results INTEGER NOT NULL, max_seq INTEGER NOT NULL,"
    " dropped INTEGER NOT NULL, dropped_with_seq INTEGER NOT NULL,"
    " PRIMARY KEY (agent_id, instance_id)) WITHOUT ROWID;";

/* Three rows as collectors of versions 1, 2 and 4 stored them: a version 1 success
 * (every later column NULL, chain with 42 days), a version 2 resumption success with
 * a staple (version 3 columns NULL), a version 4 divergent success over IPv6, and a
 * version 4 refused connection. */
static const char V4_ROWS[] =
    "INSERT INTO batches VALUES ('agent-1', 1, 1, 1700000000000000005, 4);"
    "INSERT INTO results (id, received_unix_ns, agent_id, instance_id, batch_seq, region, target,"
    " host, port, sni, profile, address, result_seq, started_unix_ns, dns_ns, connect_ns,"
    " handshake_ns, total_ns, loop_lag_ns, ok, error_class, error_detail, tls_version, cipher,"
    " grp, alpn, resumed, hello_retry_request, server_signature_algorithm, chain_json,"
    " days_to_earliest_expiry) VALUES"
    " (1, 1700000000000000005, 'agent-1', 1, 1, 'eu', 'web', 'h', 443, '', 'modern', '::1', 1,"
    "  1700000000000000000, 0, 300000, 2000000, 2500000, 10, 1, 'ok', '', 'TLS1.3', 'c', 'g',"
    "  '', 0, 1, 's', '[{\"subject\":\"CN=web\"}]', 42);"
    "INSERT INTO results (id, received_unix_ns, agent_id, instance_id, batch_seq, region, target,"
    " host, port, sni, profile, address, result_seq, started_unix_ns, dns_ns, connect_ns,"
    " handshake_ns, total_ns, loop_lag_ns, ok, error_class, error_detail, tls_version, cipher,"
    " grp, alpn, resumed, hello_retry_request, server_signature_algorithm, chain_json,"
    " days_to_earliest_expiry, mode, ocsp_stapled, ocsp_age_seconds, early_data_attempted,"
    " early_data_accepted) VALUES"
    " (2, 1700000000000000005, 'agent-1', 1, 1, 'eu', 'web', 'h', 443, '', 'modern', '::1', 2,"
    "  1700000001000000000, 0, 310000, 3000000, 3500000, 30, 1, 'ok', '', 'TLS1.3', 'c', 'g',"
    "  '', 1, 0, 's', '[]', NULL, 'resumption', 1, 7200, 0, 0);"
    "INSERT INTO results (id, received_unix_ns, agent_id, instance_id, batch_seq, region, target,"
    " host, port, sni, profile, address, result_seq, started_unix_ns, dns_ns, connect_ns,"
    " handshake_ns, total_ns, loop_lag_ns, ok, error_class, error_detail, tls_version, cipher,"
    " grp, alpn, resumed, hello_retry_request, server_signature_algorithm, chain_json,"
    " days_to_earliest_expiry, mode, ocsp_stapled, address_family, emulation_checked,"
    " emulation_divergence, early_data_policy_violation) VALUES"
    " (3, 1700000000000000005, 'agent-1', 1, 1, 'eu', 'web', 'h', 443, '', 'modern', '::1', 3,"
    "  1700000002000000000, 0, 320000, 4000000, 4500000, 20, 1, 'ok', '', 'TLS1.2', 'c', 'g',"
    "  '', 0, 0, 's', '[]', NULL, 'handshake', 0, 'ipv6', 1, 'suite not offered', 0),"
    " (4, 1700000000000000005, 'agent-1', 1, 1, 'eu', 'web', 'h', 443, '', 'modern', '::1', 4,"
    "  1700000003000000000, 0, 0, 0, 100, 0, 0, 'connection_refused', 'ECONNREFUSED', '', '',"
    "  '', '', 0, 0, '', '[]', NULL, 'handshake', 0, 'ipv6', 0, '', 0);"
    "INSERT INTO spools VALUES ('agent-1', 1, 1700000000000000005, 1700000000000000005,"
    " 1700000003000000000, 4, 4, 0, 0);"
    "PRAGMA user_version = 4;";

typedef struct collected {
  tp_store_rollup_row rows[8];
  char family[8][8];
  uint64_t p50[8], handshakes[8];
  size_t n;
} collected;

static tp_err collect(const tp_store_rollup_row *row, void *ctx) {
  collected *c = ctx;
  assert_true(c->n < 8);
  c->rows[c->n] = *row;
  snprintf(c->family[c->n], sizeof(c->family[0]), "%s", row->address_family);
  c->handshakes[c->n] = tp_sketch_count(row->handshake_ns); /* the sketch dies with the call */
  if (!tp_sketch_quantile(row->handshake_ns, 0.5, &c->p50[c->n]))
    c->p50[c->n] = 0;
  c->n++;
  return TP_E_OK;
}

static void test_migration_from_v4(void **state) {
  fixture *f = *state;
  char err[512] = "";
  char v4[160];
  tp_store *s = NULL;
  snprintf(v4, sizeof(v4), "%s/v4.db", f->dir);
  exec_sql(v4, V4_DDL);
  exec_sql(v4, V4_ROWS);
  assert_int_equal(tp_store_open_sqlite(v4, TP_STORE_READONLY, &s, err, sizeof(err)), TP_E_STORE);
  assert_non_null(strstr(err, "schema version 4 is older than 10"));
  assert_int_equal(tp_store_open_sqlite(v4, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  assert_int_equal(query_int(v4, "PRAGMA user_version"), 10);
  assert_int_equal(query_int(v4, "SELECT watermark FROM rollup_state"), 0);
  tp_store_horizon h;
  assert_int_equal(tp_store_horizon_get(s, &h, err, sizeof(err)), TP_E_OK);
  assert_int_equal(h.results_not_rolled_up, 4); /* the old rows wait for the first pass */
  assert_false(h.oldest_rollup_start_unix_ns.set);

  tp_store_maintain_limits limits = {0};
  tp_store_maintain_stats st;
  assert_int_equal(tp_store_maintain(s, T0, &limits, &st, err, sizeof(err)), TP_E_OK);
  assert_int_equal(st.rolled_up, 4);
  collected c = {.n = 0};
  assert_int_equal(tp_store_scan_rollups(s, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL, TP_STORE_ROLLUPS_BY_GROUP, collect,
                                         &c, err, sizeof(err)),
                   TP_E_OK);
  assert_int_equal(c.n, 2); /* family "" (versions 1, 2) and "ipv6" */
  const tp_store_rollup_row *old = &c.rows[0], *v6 = &c.rows[1];
  assert_string_equal(c.family[0], "");
  assert_string_equal(c.family[1], "ipv6");
  assert_int_equal(old->start_unix_ns, T0);
  assert_int_equal(old->probes, 2);
  assert_int_equal(old->successes, 2); /* NULL divergence reads as exact */
  assert_int_equal(old->classes.n[TP_OUTCOME_OK], 2);
  assert_int_equal(old->hrr, 1);
  assert_int_equal(old->resumption_probes, 1);
  assert_int_equal(old->resumed, 1);
  assert_int_equal(old->ocsp_stapled, 1);
  assert_int_equal(old->ocsp_max_age_seconds.v, 7200);
  assert_true(old->min_days_to_expiry.set);
  assert_int_equal(old->min_days_to_expiry.v, 42);
  assert_int_equal(old->loop_lag_sum_ns, 40);
  assert_int_equal(c.p50[0], 2000000); /* rank 1 of 2: the exact minimum */
  assert_int_equal(v6->probes, 2);
  assert_int_equal(v6->successes, 0);
  assert_int_equal(v6->divergent, 1);
  assert_int_equal(v6->emulation_checked, 0); /* only exact successes count */
  assert_int_equal(v6->classes.n[TP_OUTCOME_CONNECTION_REFUSED], 1);
  assert_false(v6->min_days_to_expiry.set); /* '[]' chains: no expiry */
  assert_int_equal(c.handshakes[1], 0);
  tp_store_close(s);

  /* The report's read-only open sees the same, and cannot maintain. */
  assert_int_equal(tp_store_open_sqlite(v4, TP_STORE_READONLY, &s, err, sizeof(err)), TP_E_OK);
  collected ro = {.n = 0};
  assert_int_equal(tp_store_scan_rollups(s, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL, TP_STORE_ROLLUPS_BY_MINUTE,
                                         collect, &ro, err, sizeof(err)),
                   TP_E_OK);
  assert_int_equal(ro.n, 2);
  assert_int_equal(tp_store_horizon_get(s, &h, err, sizeof(err)), TP_E_OK);
  assert_int_equal(h.results_not_rolled_up, 0);
  assert_int_equal(h.oldest_rollup_start_unix_ns.v, T0);
  assert_int_equal(tp_store_maintain(s, T0, &limits, &st, err, sizeof(err)), TP_E_INVAL);
  tp_store_close(s);
  char path[200];
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof(path), "%s%s", v4, suffixes[i]);
    unlink(path);
  }
}

static tp_err count_rows(const tp_store_rollup_row *row, void *ctx) {
  (void)row;
  (*(size_t *)ctx)++;
  return TP_E_OK;
}

/* A damaged blob is refused when read and when merged into, naming the row; the
 * failed pass rolls back, watermark included. */
/* A span rolled up before schema version 7 has no negotiated mix (NULL): it reads as
 * "not recorded", and a late result merged into it records its own combination. */
static tp_err first_row_mix(const tp_store_rollup_row *row, void *data) {
  uint64_t *out = data;
  out[0]++;
  out[1] = row->negotiated == NULL ? UINT64_MAX : tp_mix_total(row->negotiated);
  out[2] = row->successes;
  return TP_E_OK;
}

static void test_mix_not_recorded_before_v7(void **state) {
  fixture *f = *state;
  char err[512] = "";
  probe one = simple_probe(0, T0 + 5);
  put_probes_seq(f, &one, 1, T0, 0, 0);
  tp_store_maintain_stats st;
  maintain(f, T0, &st);
  exec_sql(f->db, "UPDATE rollups SET negotiated = NULL");
  uint64_t got[3] = {0};
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL,
                                         TP_STORE_ROLLUPS_BY_GROUP, first_row_mix, got, err,
                                         sizeof(err)),
                   TP_E_OK);
  assert_int_equal(got[0], 1);
  assert_int_equal(got[1], UINT64_MAX);
  probe late = simple_probe(0, T0 + 10);
  put_probes_seq(f, &late, 1, T0, 0, 0);
  maintain(f, T0, &st);
  memset(got, 0, sizeof(got));
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL,
                                         TP_STORE_ROLLUPS_BY_GROUP, first_row_mix, got, err,
                                         sizeof(err)),
                   TP_E_OK);
  assert_int_equal(got[0], 1);
  assert_int_equal(got[2], 2); /* both successes counted */
  assert_int_equal(got[1], 1); /* only the late one's combination is known */
}

static void test_damaged_blob(void **state) {
  fixture *f = *state;
  char err[512] = "";
  probe one = simple_probe(0, T0 + 5);
  put_probes_seq(f, &one, 1, T0, 0, 0);
  tp_store_maintain_stats st;
  maintain(f, T0, &st);
  exec_sql(f->db, "UPDATE rollups SET handshake_sketch = X'01FF'");
  size_t n = 0;
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL, TP_STORE_ROLLUPS_BY_GROUP,
                                         count_rows, &n, err, sizeof(err)),
                   TP_E_STORE);
  assert_non_null(strstr(err, "target \"web\""));
  assert_non_null(strstr(err, "damaged handshake_sketch"));
  exec_sql(f->db, "UPDATE rollups SET handshake_sketch = NULL, classes = X'010101'");
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL, TP_STORE_ROLLUPS_BY_GROUP,
                                         count_rows, &n, err, sizeof(err)),
                   TP_E_OK); /* repaired: "ok: 1", no sketch */
  exec_sql(f->db, "UPDATE rollups SET classes = X'01'||X'19'||X'01'");
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL, TP_STORE_ROLLUPS_BY_GROUP,
                                         count_rows, &n, err, sizeof(err)),
                   TP_E_STORE);
  assert_non_null(strstr(err, "damaged classes"));
  exec_sql(f->db, "UPDATE rollups SET classes = X'010101', negotiated = X'0100'||X'02'");
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL,
                                         TP_STORE_ROLLUPS_BY_GROUP, count_rows, &n, err,
                                         sizeof(err)),
                   TP_E_STORE); /* two entries announced, none there */
  assert_non_null(strstr(err, "damaged negotiated"));
  exec_sql(f->db, "UPDATE rollups SET classes = X'01'||X'19'||X'01', negotiated = NULL");

  probe late = simple_probe(0, T0 + 10);
  put_probes_seq(f, &late, 1, T0, 0, 0);
  tp_store_maintain_limits limits = {0};
  assert_int_equal(tp_store_maintain(f->store, T0, &limits, &st, err, sizeof(err)), TP_E_STORE);
  assert_non_null(strstr(err, "stored outcome counts"));
  assert_int_equal(query_int(f->db, "SELECT watermark FROM rollup_state"), 1);
  assert_int_equal(query_int(f->db, "SELECT probes FROM rollups WHERE span_ns = 60000000000"), 1);
}

typedef struct order_check {
  tp_store_rollup_order order;
  char last[512];
  int64_t last_minute;
  size_t n;
  const char *want_target, *want_family;
} order_check;

static tp_err check_order(const tp_store_rollup_row *row, void *ctx) {
  order_check *o = ctx;
  char key[512];
  if (o->want_target != NULL)
    assert_string_equal(row->target, o->want_target);
  if (o->want_family != NULL)
    assert_string_equal(row->address_family, o->want_family);
  if (o->order == TP_STORE_ROLLUPS_BY_GROUP)
    snprintf(key, sizeof(key), "%s\x01%s\x01%s\x01%s\x01%s\x01%020lld", row->target, row->profile,
             row->region, row->agent_id, row->address_family, (long long)row->start_unix_ns);
  else
    snprintf(key, sizeof(key), "%020lld\x01%s\x01%s\x01%s\x01%s\x01%s",
             (long long)row->start_unix_ns, row->target, row->profile, row->region,
             row->agent_id, row->address_family);
  if (o->n > 0 && strcmp(o->last, key) >= 0)
    fail_msg("out of order: \"%s\" after \"%s\"", key, o->last);
  snprintf(o->last, sizeof(o->last), "%s", key);
  o->n++;
  return TP_E_OK;
}

typedef struct start_order {
  size_t rows;
  int64_t last;
  bool decreased;
} start_order;

static tp_err check_start_order(const tp_store_rollup_row *row, void *data) {
  start_order *so = data;
  if (so->rows++ > 0 && row->start_unix_ns < so->last)
    so->decreased = true;
  so->last = row->start_unix_ns;
  return TP_E_OK;
}

static void test_scan_filters_orders_and_edges(void **state) {
  fixture *f = *state;
  char err[512] = "";
  enum { N = 3000 };
  probe *v = generate(15, N);
  put_probes(f, v, N);
  tp_store_maintain_stats st;
  maintain(f, T0, &st);
  size_t all = (size_t)query_int(f->db, "SELECT count(*) FROM rollups WHERE span_ns = 60000000000");
  for (int o = 0; o < 2; o++) {
    order_check oc = {.order = (tp_store_rollup_order)o};
    assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL, oc.order, check_order,
                                           &oc, err, sizeof(err)),
                     TP_E_OK);
    assert_int_equal(oc.n, all);
  }
  /* Globs: "w*" is web only; "" matches only the unreported family; "ipv?" both. */
  tp_store_rollup_filter flt = {.target = "w*", .address_family = ""};
  order_check oc = {.order = TP_STORE_ROLLUPS_BY_GROUP, .want_target = "web", .want_family = ""};
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, &flt, oc.order, check_order, &oc,
                                         err, sizeof(err)),
                   TP_E_OK);
  assert_int_equal(oc.n, (size_t)query_int(f->db, "SELECT count(*) FROM rollups WHERE span_ns = 60000000000 AND"
                                                  " target = 'web' AND address_family = ''"));
  flt = (tp_store_rollup_filter){.address_family = "ipv?", .profile = "[a]*", .agent_id = "agent-b"};
  size_t n = 0;
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, &flt, TP_STORE_ROLLUPS_BY_MINUTE,
                                         count_rows, &n, err, sizeof(err)),
                   TP_E_OK);
  assert_int_equal(n, (size_t)query_int(f->db, "SELECT count(*) FROM rollups WHERE span_ns = 60000000000 AND"
                                                " address_family <> '' AND profile = 'android-7'"
                                                " AND agent_id = 'agent-b'"));
  assert_true(n > 0);
  /* By start, unsorted groups: the same rows, starts never decreasing. */
  start_order so = {0};
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, &flt,
                                         TP_STORE_ROLLUPS_BY_START, check_start_order, &so, err,
                                         sizeof(err)),
                   TP_E_OK);
  assert_int_equal(so.rows, n);
  assert_false(so.decreased);
  /* Window edges: minutes overlapping [T0 + 90 s, T0 + 180 s) are minutes 1 and 2. */
  n = 0;
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, T0 + 90 * INT64_C(1000000000),
                                         T0 + 180 * INT64_C(1000000000), NULL,
                                         TP_STORE_ROLLUPS_BY_GROUP, count_rows, &n, err,
                                         sizeof(err)),
                   TP_E_OK);
  char sql[200];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM rollups WHERE span_ns = 60000000000 AND start_unix_ns IN (%lld, %lld)",
           (long long)(T0 + MINUTE), (long long)(T0 + 2 * MINUTE));
  assert_int_equal(n, (size_t)query_int(f->db, sql));
  /* An aligned window: exactly its minutes. */
  n = 0;
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, T0 + MINUTE, T0 + 2 * MINUTE, NULL,
                                         TP_STORE_ROLLUPS_BY_GROUP, count_rows, &n, err,
                                         sizeof(err)),
                   TP_E_OK);
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM rollups WHERE span_ns = 60000000000 AND start_unix_ns = %lld",
           (long long)(T0 + MINUTE));
  assert_int_equal(n, (size_t)query_int(f->db, sql));
  free(v);
}

/* Hour rows: the same numbers as their minute rows merged, sketches byte for byte. */
typedef struct hour_acc {
  char key[128];
  tp_sketch *sk[3];
  uint64_t probes, successes, lag_sum;
  bool matched;
} hour_acc;

typedef struct hours {
  hour_acc acc[4096];
  size_t n;
  bool hour_pass;  /* the second pass: the coarse rows */
  int64_t span_ns; /* of the coarse rows: HOUR or DAY */
} hours;

static hour_acc *hour_of(hours *h, const tp_store_rollup_row *row, bool create) {
  char key[128];
  int64_t hour = row->start_unix_ns - row->start_unix_ns % h->span_ns;
  snprintf(key, sizeof(key), "%s|%s|%s|%s|%s|%lld", row->target, row->profile, row->region,
           row->agent_id, row->address_family, (long long)hour);
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(h->acc[i].key, key) == 0)
      return &h->acc[i];
  if (!create)
    fail_msg("an hour row without minute rows: %s", key);
  assert_true(h->n < 4096);
  hour_acc *a = &h->acc[h->n++];
  snprintf(a->key, sizeof(a->key), "%s", key);
  for (int k = 0; k < 3; k++)
    a->sk[k] = tp_sketch_new();
  return a;
}

static void assert_same_sketch(const tp_sketch *a, const tp_sketch *b) {
  tp_buf x, y;
  tp_buf_init(&x, TP_SKETCH_MAX_BLOB);
  tp_buf_init(&y, TP_SKETCH_MAX_BLOB);
  assert_int_equal(tp_sketch_encode(a, &x), TP_E_OK);
  assert_int_equal(tp_sketch_encode(b, &y), TP_E_OK);
  assert_int_equal(x.len, y.len);
  assert_memory_equal(x.data, y.data, x.len);
  tp_buf_free(&x);
  tp_buf_free(&y);
}

static tp_err on_span_row(const tp_store_rollup_row *row, void *ctx) {
  hours *h = ctx;
  const tp_sketch *sk[3] = {row->handshake_ns, row->connect_ns, row->total_ns};
  hour_acc *a = hour_of(h, row, !h->hour_pass);
  if (!h->hour_pass) {
    assert_int_equal(row->span_ns, MINUTE);
    a->probes += row->probes;
    a->successes += row->successes;
    a->lag_sum += row->loop_lag_sum_ns;
    for (int k = 0; k < 3; k++)
      assert_int_equal(tp_sketch_merge(a->sk[k], sk[k]), TP_E_OK);
    return TP_E_OK;
  }
  assert_int_equal(row->span_ns, h->span_ns);
  assert_int_equal(row->start_unix_ns % h->span_ns, 0);
  assert_false(a->matched);
  a->matched = true;
  assert_int_equal(row->probes, a->probes);
  assert_int_equal(row->successes, a->successes);
  assert_int_equal(row->loop_lag_sum_ns, a->lag_sum);
  for (int k = 0; k < 3; k++)
    assert_same_sketch(sk[k], a->sk[k]);
  return TP_E_OK;
}

typedef struct omit_check {
  size_t rows;
  uint64_t probes, successes, handshakes, classes_ok;
  bool other_parts; /* an omitted part was delivered */
} omit_check;

static tp_err check_omitted(const tp_store_rollup_row *row, void *data) {
  omit_check *oc = data;
  oc->rows++;
  oc->probes += row->probes;
  oc->successes += row->successes;
  oc->handshakes += row->handshake_ns != NULL ? tp_sketch_count(row->handshake_ns) : 0;
  oc->classes_ok += row->classes.n[TP_OUTCOME_OK];
  oc->other_parts |= row->connect_ns != NULL || row->total_ns != NULL || row->negotiated != NULL;
  return TP_E_OK;
}

/* Omitted parts are neither read nor decoded (a damaged omitted blob is no error) and
 * read as empty; the counters are the same as a full scan's. */
static void test_scan_omits_parts(void **state) {
  fixture *f = *state;
  char err[512] = "";
  enum { N = 500 };
  probe *v = generate(16, N);
  put_probes(f, v, N);
  tp_store_maintain_stats st;
  maintain(f, T0, &st);
  omit_check full = {0}, part = {0};
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL,
                                         TP_STORE_ROLLUPS_BY_START, check_omitted, &full, err,
                                         sizeof(err)),
                   TP_E_OK);
  assert_true(full.other_parts);
  assert_true(full.classes_ok > 0 && full.handshakes > 0);
  exec_sql(f->db, "UPDATE rollups SET connect_sketch = X'01FF', negotiated = X'0100'||X'02',"
                  " classes = X'01'||X'19'||X'01'");
  tp_store_rollup_filter flt = {.omit = TP_STORE_ROLLUP_PART_CLASSES | TP_STORE_ROLLUP_PART_CONNECT |
                                        TP_STORE_ROLLUP_PART_TOTAL | TP_STORE_ROLLUP_PART_MIX};
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, &flt,
                                         TP_STORE_ROLLUPS_BY_START, check_omitted, &part, err,
                                         sizeof(err)),
                   TP_E_OK);
  assert_int_equal(part.rows, full.rows);
  assert_int_equal(part.probes, full.probes);
  assert_int_equal(part.successes, full.successes);
  assert_int_equal(part.handshakes, full.handshakes); /* not omitted: still there */
  assert_int_equal(part.classes_ok, 0);
  assert_false(part.other_parts);
  /* Not omitted, the damaged blobs are refused as before. */
  flt.omit = TP_STORE_ROLLUP_PART_CLASSES | TP_STORE_ROLLUP_PART_MIX;
  part = (omit_check){0};
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, &flt,
                                         TP_STORE_ROLLUPS_BY_START, check_omitted, &part, err,
                                         sizeof(err)),
                   TP_E_STORE);
  assert_non_null(strstr(err, "damaged connect_sketch"));
  free(v);
}

/* Every coarse row (span span_ns) holds exactly its minute rows merged: sketches bucket
 * for bucket, counters in C and in SQL. Returns how many coarse rows there are. */
static size_t check_coarse_rows(fixture *f, tp_store_rollup_span span, int64_t span_ns) {
  char err[512] = "", sql[2048];
  hours *h = calloc(1, sizeof(*h));
  h->span_ns = span_ns;
  assert_int_equal(tp_store_scan_rollups(f->store, TP_STORE_ROLLUP_MINUTE, 0, INT64_MAX, NULL,
                                         TP_STORE_ROLLUPS_BY_GROUP, on_span_row, h, err,
                                         sizeof(err)),
                   TP_E_OK);
  h->hour_pass = true;
  assert_int_equal(tp_store_scan_rollups(f->store, span, 0, INT64_MAX, NULL,
                                         TP_STORE_ROLLUPS_BY_MINUTE, on_span_row, h, err,
                                         sizeof(err)),
                   TP_E_OK);
  for (size_t i = 0; i < h->n; i++) {
    if (!h->acc[i].matched)
      fail_msg("minute rows without their %lld s row: %s", (long long)(span_ns / 1000000000),
               h->acc[i].key);
    for (int k = 0; k < 3; k++)
      tp_sketch_free(h->acc[i].sk[k]);
  }
  size_t n = h->n;
  /* And the other counters, in SQL: every coarse row = the sums of its minutes. */
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM rollups r JOIN (SELECT target, profile, region,"
           " agent_id, address_family, start_unix_ns - start_unix_ns %% %lld AS h,"
           " sum(divergent) AS dv, sum(hrr) AS hrr,"
           " sum(resumption_probes) AS rp, sum(resumed) AS rs,"
           " sum(early_data_attempts) AS ea, sum(early_data_accepts) AS ec,"
           " sum(early_data_violations) AS ev, sum(emulation_checked) AS ck,"
           " sum(ocsp_stapled) AS os, max(ocsp_max_age_seconds) AS oa,"
           " min(min_days_to_expiry) AS md, max(loop_lag_max_ns) AS lm, sum(saturated) AS st"
           " FROM rollups WHERE span_ns = 60000000000 GROUP BY 1, 2, 3, 4, 5, 6) m"
           " ON r.span_ns = %lld AND r.target = m.target"
           " AND r.profile = m.profile AND r.region = m.region"
           " AND r.agent_id = m.agent_id AND r.address_family = m.address_family"
           " AND r.start_unix_ns = m.h WHERE r.divergent = m.dv AND r.hrr = m.hrr"
           " AND r.resumption_probes = m.rp AND r.resumed = m.rs"
           " AND r.early_data_attempts = m.ea AND r.early_data_accepts = m.ec"
           " AND r.early_data_violations = m.ev AND r.emulation_checked = m.ck"
           " AND r.ocsp_stapled = m.os AND r.ocsp_max_age_seconds IS m.oa"
           " AND r.min_days_to_expiry IS m.md AND r.loop_lag_max_ns = m.lm AND r.saturated = m.st",
           (long long)span_ns, (long long)span_ns);
  assert_int_equal(query_int(f->db, sql), (long long)n);
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM rollups WHERE span_ns = %lld",
           (long long)span_ns);
  assert_int_equal(query_int(f->db, sql), (long long)n); /* no coarse row without minutes */
  free(h);
  return n;
}

/* A dump of the day rows, every column, in key order. */
static char *day_rows(fixture *f) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT start_unix_ns, target, profile, region, agent_id,"
                                      " address_family, probes, successes, divergent, hex(classes),"
                                      " hrr, resumption_probes, resumed, early_data_attempts,"
                                      " early_data_accepts, early_data_violations,"
                                      " emulation_checked, ocsp_stapled, ocsp_max_age_seconds,"
                                      " min_days_to_expiry, loop_lag_max_ns, loop_lag_sum_ns,"
                                      " hex(handshake_sketch), hex(connect_sketch),"
                                      " hex(total_sketch), saturated, hex(negotiated)"
                                      " FROM rollups WHERE span_ns = 86400000000000"
                                      " ORDER BY 2, 3, 4, 5, 6, 1",
                                      -1, &st, NULL),
                   SQLITE_OK);
  tp_buf out;
  tp_buf_init(&out, 1 << 24);
  while (sqlite3_step(st) == SQLITE_ROW) {
    for (int c = 0; c < sqlite3_column_count(st); c++) {
      const unsigned char *t = sqlite3_column_text(st, c);
      const char *v = t ? (const char *)t : "NULL";
      assert_int_equal(tp_buf_append(&out, v, strlen(v)), TP_E_OK);
      assert_int_equal(tp_buf_append(&out, "|", 1), TP_E_OK);
    }
    assert_int_equal(tp_buf_append(&out, "\n", 2), TP_E_OK);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  char *dump = strndup(out.data ? (const char *)out.data : "", out.len);
  tp_buf_free(&out);
  return dump;
}

/* Hour and day rows are their minutes merged, whether the fold wrote them or (days)
 * schema version 9's migration made them from the stored hours. */
static void test_coarse_rows_are_merged_minutes(void **state) {
  fixture *f = *state;
  char err[512] = "";
  enum { N = 4000 };
  probe *v = generate(16, N);
  uint64_t rng = 99;
  for (size_t i = 0; i < N; i++) /* two days and a bit, across hour and day boundaries */
    v[i].started = T0 - 3 * HOUR + (int64_t)(rng_next(&rng) % (uint64_t)(2 * DAY));
  put_probes(f, v, N);
  tp_store_maintain_stats st;
  maintain(f, T0 + 2 * DAY, &st);
  assert_true(check_coarse_rows(f, TP_STORE_ROLLUP_HOUR, HOUR) > 100);
  size_t days = check_coarse_rows(f, TP_STORE_ROLLUP_DAY, DAY);
  assert_true(days >= 2 * 3); /* every group spans at least two days */
  /* Back to version 8 without day rows: the migration makes the same ones. */
  char *before = day_rows(f);
  tp_store_close(f->store);
  f->store = NULL;
  exec_sql(f->db, "DELETE FROM rollups WHERE span_ns = 86400000000000; DROP TABLE class_latest;"
                  " PRAGMA user_version = 8");
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &f->store, err, sizeof(err)),
                   TP_E_OK);
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 10);
  char *after = day_rows(f);
  assert_string_equal(before, after);
  assert_true(strlen(after) > 100);
  free(before);
  free(after);
  free(v);
}

/* The expiry view over rollups looks chains up for every series with one in the
 * window -- also a series whose results are not rolled up yet (rollups lag by up to a
 * maintenance interval), which the rollup rows do not name. */
static void test_expiry_sees_series_not_rolled_up(void **state) {
  fixture *f = *state;
  char err[512] = "";
  probe web = simple_probe(0, T0 + 5 * INT64_C(1000000000));
  put_probes_seq(f, &web, 1, T0 + MINUTE, 0, 0);
  tp_store_maintain_stats st;
  maintain(f, T0 + MINUTE, &st);
  assert_int_equal(st.rolled_up, 1);
  probe api = simple_probe(1, T0 + 10 * INT64_C(1000000000));
  put_probes_seq(f, &api, 1, T0 + MINUTE, 0, 0); /* not rolled up */
  tp_report_query q = {.now_unix_ns = T0 + 2 * MINUTE,
                       .since_unix_ns = T0 - DAY,
                       .until_unix_ns = T0 + 2 * MINUTE,
                       .since_text = "1d",
                       .source = TP_REPORT_SOURCE_ROLLUP,
                       .with_chains = true,
                       .skip_delivery = true};
  tp_report *rep = NULL;
  if (tp_report_build(f->store, &q, &rep, err, sizeof(err)) != TP_E_OK)
    fail_msg("report: %s", err);
  assert_true(tp_report_from_rollups(rep));
  bool seen_web = false, seen_api = false;
  for (size_t i = 0; i < tp_report_cert_count(rep); i++) {
    const tp_report_cert *c = tp_report_cert_at(rep, i);
    seen_web |= strcmp(c->target, "web") == 0;
    seen_api |= strcmp(c->target, "api") == 0;
  }
  assert_true(seen_web);
  assert_true(seen_api);
  tp_report_free(rep);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_rollups_equal_raw),
      T(test_late_batch_merges_once),
      T(test_second_pass_adds_nothing),
      T(test_stopped_passes_lose_nothing),
      T(test_retention),
      T(test_newest_row_kept_ids_grow),
      T(test_migration_from_v4),
      T(test_damaged_blob),
      T(test_mix_not_recorded_before_v7),
      T(test_scan_filters_orders_and_edges),
      T(test_scan_omits_parts),
      T(test_coarse_rows_are_merged_minutes),
      T(test_expiry_sees_series_not_rolled_up),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
