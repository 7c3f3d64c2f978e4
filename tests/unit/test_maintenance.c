/* test_maintenance.c - the maintenance thread (collector/maintenance.c) against a
 * real SQLite file while this thread keeps storing batches through its own store,
 * as ingest does: rollups appear without any call from here, every put succeeds
 * meanwhile, and stop returns promptly -- before the first interval, and in the
 * middle of a long backlog. Runs under ThreadSanitizer in the TSan build. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "maintenance.h"
#include "store.h"
#include "tlsprobe.pb-c.h"

typedef struct fixture {
  char dir[64];
  char db[128];
  tp_store *store;
  uint64_t seq, batch;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  char err[512] = "";
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp_maint_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->db, sizeof(f->db), "%s/m.db", f->dir);
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

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long long query_int(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  long long v = -1;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
    v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return v;
}

/* n successful results started now, in one batch. */
static void put_now(fixture *f, size_t n) {
  char err[512] = "";
  tp_store_put_outcome out;
  Tlsprobe__V1__ProbeResult *r = calloc(n, sizeof(*r));
  Tlsprobe__V1__ProbeResult **rp = calloc(n, sizeof(*rp));
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  int64_t now = wall_ns();
  for (size_t i = 0; i < n; i++) {
    tlsprobe__v1__probe_result__init(&r[i]);
    r[i].target = "web";
    r[i].profile = "modern";
    r[i].region = "eu";
    r[i].port = 443;
    r[i].result_seq = ++f->seq;
    r[i].started_unix_ns = now;
    r[i].handshake_ns = 1000000 + (uint64_t)(i % 1000) * 1000;
    r[i].total_ns = 3000000;
    r[i].ok = 1;
    r[i].error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
    rp[i] = &r[i];
  }
  b.agent_id = "agent-m";
  b.instance_id = 1;
  b.batch_seq = ++f->batch;
  b.results = rp;
  b.n_results = n;
  /* Every put must succeed while maintenance runs: a busy database is its problem,
   * not ingest's. */
  if (tp_store_put_batch(f->store, &b, now, &out, err, sizeof(err)) != TP_E_OK)
    fail_msg("put while maintenance runs: %s", err);
  assert_int_equal(out.results_stored, n);
  free(r);
  free(rp);
}

static void test_rollups_appear_while_ingest_goes_on(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_log log = {.min_level = TP_LOG_WARN, .component = "test"};
  tp_maintenance *m = NULL;
  tp_maintenance_options o = {.database = f->db,
                              .interval_ms = 100,
                              .raw_retention_ms = 7 * 86400000ull,
                              .rollup_retention_ms = 90 * 86400000ull,
                              .chunk_rows = 50};
  assert_int_equal(tp_maintenance_start(&o, &log, &m, err, sizeof(err)), TP_E_OK);
  const size_t batches = 60, per_batch = 100;
  for (size_t i = 0; i < batches; i++) {
    put_now(f, per_batch);
    usleep(10000);
  }
  /* Soon after the last put, everything is rolled up: a few intervals on a quiet
   * machine, far more under ThreadSanitizer on a loaded one (a pass yields 3x its lock
   * time to ingest), so the deadline is generous -- the loop ends as soon as it is done. */
  long long want = (long long)(batches * per_batch), got = 0;
  for (int i = 0; i < 800 && got != want; i++) {
    usleep(50000);
    got = query_int(f->db, "SELECT coalesce(sum(probes), 0) FROM rollups WHERE span_ns = 60000000000");
  }
  assert_int_equal(got, want);
  assert_int_equal(query_int(f->db, "SELECT watermark FROM rollup_state"),
                   query_int(f->db, "SELECT max(id) FROM results"));
  double t = now_s();
  tp_maintenance_stop(m);
  assert_true(now_s() - t < 1.0);
}

static void test_stop_before_the_first_pass(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_log log = {.min_level = TP_LOG_WARN, .component = "test"};
  tp_maintenance *m = NULL;
  tp_maintenance_options o = {.database = f->db, .interval_ms = 600000};
  put_now(f, 10);
  assert_int_equal(tp_maintenance_start(&o, &log, &m, err, sizeof(err)), TP_E_OK);
  double t = now_s();
  tp_maintenance_stop(m);
  assert_true(now_s() - t < 0.5); /* not the 10-minute interval */
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM rollups WHERE span_ns = 60000000000"), 0);
}

/* A long backlog in chunks of 5: stop lands between two chunks, and what was
 * committed is consistent (watermark = what the rollups count). */
static void test_stop_in_the_middle_of_a_backlog(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_log log = {.min_level = TP_LOG_ERROR, .component = "test"};
  tp_maintenance *m = NULL;
  for (int i = 0; i < 20; i++)
    put_now(f, 1000);
  tp_maintenance_options o = {.database = f->db, .interval_ms = 10, .chunk_rows = 5};
  assert_int_equal(tp_maintenance_start(&o, &log, &m, err, sizeof(err)), TP_E_OK);
  long long w = 0;
  for (int i = 0; i < 200 && w == 0; i++) {
    usleep(10000);
    w = query_int(f->db, "SELECT watermark FROM rollup_state");
  }
  assert_true(w > 0);
  double t = now_s();
  tp_maintenance_stop(m);
  assert_true(now_s() - t < 0.5);
  w = query_int(f->db, "SELECT watermark FROM rollup_state");
  assert_true(w < 20000); /* 4000 chunks with pauses: far from done */
  assert_int_equal(query_int(f->db, "SELECT coalesce(sum(probes), 0) FROM rollups WHERE span_ns = 60000000000"), w);
}

/* The pause between chunks is for agents waiting on ingest: with requests in ingest's
 * hands (the gauge at 1) a backlog advances at most a quarter of the time; with none
 * (0) the next chunk follows at once. Side by side in one run: the same backlog, two
 * equal windows, the gauge flipped between them. */
static void test_backlog_pauses_only_while_ingest_waits(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_log log = {.min_level = TP_LOG_ERROR, .component = "test"};
  tp_maintenance *m = NULL;
  for (int i = 0; i < 20; i++)
    put_now(f, 1000);
  atomic_uint pending = 1;
  tp_maintenance_options o = {
      .database = f->db, .interval_ms = 10, .chunk_rows = 5, .ingest_pending = &pending};
  assert_int_equal(tp_maintenance_start(&o, &log, &m, err, sizeof(err)), TP_E_OK);
  long long w0 = 0;
  for (int i = 0; i < 500 && w0 == 0; i++) {
    usleep(10000);
    w0 = query_int(f->db, "SELECT watermark FROM rollup_state");
  }
  assert_true(w0 > 0);
  usleep(300000);
  long long w1 = query_int(f->db, "SELECT watermark FROM rollup_state");
  atomic_store(&pending, 0);
  usleep(300000);
  long long w2 = query_int(f->db, "SELECT watermark FROM rollup_state");
  tp_maintenance_stop(m);
  print_message("300 ms of a backlog: %lld results with ingest waiting, %lld without\n",
                w1 - w0, w2 - w1);
  assert_true(w2 < 20000); /* still a backlog at the end: the second window was full */
  assert_true(w2 - w1 > 2 * (w1 - w0));
}

static void test_start_fails_on_a_bad_path(void **state) {
  (void)state;
  char err[512] = "";
  tp_maintenance *m = (tp_maintenance *)&err; /* must be reset */
  tp_maintenance_options o = {.database = "/nonexistent-dir/x.db", .interval_ms = 1000};
  assert_int_equal(tp_maintenance_start(&o, NULL, &m, err, sizeof(err)), TP_E_STORE);
  assert_null(m);
  assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
  tp_maintenance_stop(NULL);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_rollups_appear_while_ingest_goes_on),
      T(test_stop_before_the_first_pass),
      T(test_stop_in_the_middle_of_a_backlog),
      T(test_backlog_pauses_only_while_ingest_waits),
      cmocka_unit_test(test_start_fails_on_a_bad_path),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
