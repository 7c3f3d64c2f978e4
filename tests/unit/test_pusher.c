/* test_pusher.c - the agent's pusher against the real collector HTTP server and
 * SQLite store, in process, on 127.0.0.1:
 *   - every spooled result arrives, once, and the spool drains;
 *   - a batch over the collector's body limit (413) is split until it fits, and a
 *     result too large alone is replaced by a minimal error result under its
 *     number; nothing is retried forever, nothing blocks what follows;
 *   - results spooled in a file survive a pusher that never reached the
 *     collector, and a later pusher on the same file delivers each exactly once;
 *   - a result that breaks the wire contract is replaced by a minimal error
 *     result for its target (counted as invalid), never allowed to get its
 *     whole batch rejected or its target to go silent; only a result whose
 *     identity itself is broken is dropped (counted as invalid_dropped);
 *   - pushing to a port where nobody listens keeps the results (unsent) and
 *     counts the failure;
 *   - the loop ends with no handle left open. */
#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "http_server.h"
#include "pusher.h"
#include "spool.h"
#include "store.h"
#include "tp_mem.h"

typedef struct {
  char dir[64];
  char db[128];
  tp_store *store;
  tp_http_server *server, *small_server;
  uint16_t port, small_port;
  char spool[128];
} fixture;

static int setup(void **state) {
  fixture *f = tp_xcalloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp-pusher.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
  snprintf(f->spool, sizeof(f->spool), "%s/agent.spool", f->dir);
  char err[256];
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &f->store, err, sizeof(err)), TP_E_OK);
  tp_listen_addr addr;
  assert_int_equal(tp_listen_addr_parse("127.0.0.1:0", &addr, err, sizeof(err)), TP_E_OK);
  tp_http_options o = {.listen = &addr, .max_body_bytes = 1 << 20};
  static const tp_log quiet = {.min_level = TP_LOG_ERROR + 1, .component = "test"};
  assert_int_equal(tp_http_server_start(&o, f->store, &quiet, &f->server, err, sizeof(err)), TP_E_OK);
  f->port = tp_http_server_port(f->server);
  /* A second listener with the smallest body limit, for 413. */
  tp_http_options small = {.listen = &addr, .max_body_bytes = 1024};
  assert_int_equal(tp_http_server_start(&small, f->store, &quiet, &f->small_server, err, sizeof(err)),
                   TP_E_OK);
  f->small_port = tp_http_server_port(f->small_server);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tp_http_server_stop(f->server);
  tp_http_server_stop(f->small_server);
  tp_store_close(f->store);
  unlink(f->db);
  unlink(f->spool);
  char spool_wal[160];
  snprintf(spool_wal, sizeof(spool_wal), "%s-wal", f->spool);
  unlink(spool_wal);
  char wal[160];
  snprintf(wal, sizeof(wal), "%s-wal", f->db);
  unlink(wal);
  snprintf(wal, sizeof(wal), "%s-shm", f->db);
  unlink(wal);
  rmdir(f->dir);
  curl_global_cleanup();
  free(f);
  return 0;
}

static tp_result *result(const char *target, uint16_t port) {
  tp_result *r = tp_result_new();
  r->target = tp_xstrdup(target);
  r->host = tp_xstrdup("127.0.0.1");
  r->profile = tp_xstrdup("default");
  r->port = port;
  r->outcome = TP_OUTCOME_OK;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now); /* the collector refuses results far from its clock */
  r->started_unix_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
  r->handshake_ns = 1000000;
  return r;
}

static long rows(const fixture *f) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long n = -1;
  assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM results", -1, &st, NULL), SQLITE_OK);
  if (sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void on_flushed(void *data) {
  tp_pusher_close(data);
}

typedef enum { BREAK_NOTHING, BREAK_PORT, BREAK_FACTS } breakage;

/* A result whose facts break the contract: a 1,542-byte subject and a SAN that
 * is not UTF-8 (what a legal certificate copied verbatim used to produce). */
static void break_facts(tp_result *r) {
  r->chain = tp_xcalloc(1, sizeof(*r->chain));
  r->chain_len = 1;
  r->chain_length_sent = 1;
  r->chain[0].subject = tp_xmalloc(1543);
  memset(r->chain[0].subject, 'O', 1542);
  r->chain[0].subject[1542] = '\0';
  r->chain[0].san_dns = tp_xcalloc(1, sizeof(char *));
  r->chain[0].san_dns[0] = tp_xstrdup("bad\xff.test");
  r->chain[0].n_san_dns = 1;
}

/* How a test run feeds and configures the pusher. */
typedef struct push_plan {
  const char *url;
  size_t n;
  long bad;          /* index of the broken result, -1 = none */
  breakage how;
  unsigned batch_size;
  uint64_t deadline_ms;
  const char *spool_path; /* NULL = memory spool */
  size_t sans;       /* SANs of 200 bytes on result `big` (a result too large alone) */
  long big;
} push_plan;

static void add_sans(tp_result *r, size_t n) {
  r->chain = tp_xcalloc(1, sizeof(*r->chain));
  r->chain_len = 1;
  r->chain_length_sent = 1;
  r->chain[0].subject = tp_xstrdup("CN=big");
  r->chain[0].san_dns = tp_xcalloc(n, sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    r->chain[0].san_dns[i] = tp_xmalloc(201);
    memset(r->chain[0].san_dns[i], 'a', 200);
    r->chain[0].san_dns[i][200] = '\0';
  }
  r->chain[0].n_san_dns = n;
}

/* Spools plan->n results, flushes within the deadline and returns the stats. */
static tp_pusher_stats run_plan(const push_plan *plan) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  tp_spool *spool = NULL;
  char err[512] = "";
  if (plan->spool_path != NULL)
    assert_int_equal(tp_spool_open_sqlite(plan->spool_path, TP_SPOOL_DEFAULT_MAX_BYTES, &spool,
                                          err, sizeof(err)),
                     TP_E_OK);
  else
    assert_int_equal(tp_spool_open_memory(TP_SPOOL_DEFAULT_MAX_BYTES, &spool), TP_E_OK);
  static const tp_log quiet = {.min_level = TP_LOG_ERROR + 1, .component = "test"};
  tp_pusher_options o = {.url = plan->url, .agent_id = "unit", .region = "r",
                         .batch_size = plan->batch_size ? plan->batch_size : 3,
                         .flush_interval_ms = 1000, .timeout_ms = 2000};
  tp_pusher *p;
  assert_int_equal(tp_pusher_new(&loop, &o, spool, &quiet, &p, err, sizeof(err)), TP_E_OK);
  for (size_t i = 0; i < plan->n; i++) {
    tp_result *r = result("t", (long)i == plan->bad && plan->how == BREAK_PORT ? 0 : 443);
    if ((long)i == plan->bad && plan->how == BREAK_FACTS)
      break_facts(r);
    if (plan->sans > 0 && (long)i == plan->big)
      add_sans(r, plan->sans);
    tp_pusher_submit(p, r);
  }
  tp_pusher_flush(p, plan->deadline_ms, NULL, NULL);
  tp_pusher_stats stats;
  /* run until the flush deadline or drain; the stats are read before closing */
  uint64_t end = uv_now(&loop) + plan->deadline_ms + 500;
  do {
    uv_run(&loop, UV_RUN_ONCE);
    tp_pusher_get_stats(p, &stats);
  } while (stats.unsent > 0 && uv_now(&loop) < end);
  on_flushed(p);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  tp_spool_close(spool);
  return stats;
}

static tp_pusher_stats push_broken(const char *url, size_t n, long bad, breakage how,
                                   uint64_t deadline_ms) {
  push_plan plan = {.url = url, .n = n, .bad = bad, .how = how, .deadline_ms = deadline_ms,
                    .big = -1};
  return run_plan(&plan);
}

static tp_pusher_stats push(const char *url, size_t n, long bad, uint64_t deadline_ms) {
  return push_broken(url, n, bad, bad >= 0 ? BREAK_PORT : BREAK_NOTHING, deadline_ms);
}

static long count_where(const fixture *f, const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long n = -1;
  assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  if (sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void test_all_results_arrive_once(void **state) {
  fixture *f = *state;
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/results", f->port);
  tp_pusher_stats s = push(url, 7, -1, 5000);
  assert_int_equal(s.pushed, 7);
  assert_int_equal(s.batches, 3); /* batch_size 3: 3 + 3 + 1 */
  assert_int_equal(s.unsent, 0);
  assert_int_equal(s.invalid, 0);
  assert_int_equal(rows(f), 7);
  for (int c = 0; c < TP_PUSH_FAILURE__COUNT; c++)
    assert_int_equal(s.failures_by[c], 0); /* the agent's /metrics: no failure of any class */
}

static void test_invalid_identity_dropped_alone(void **state) {
  fixture *f = *state;
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/results", f->port);
  long before = rows(f);
  tp_pusher_stats s = push(url, 3, 1, 5000);
  assert_int_equal(s.invalid, 1);         /* replaced ... */
  assert_int_equal(s.invalid_dropped, 1); /* ... but port 0 is identity: dropped */
  assert_int_equal(s.pushed, 2);
  assert_int_equal(s.rejected, 0);
  assert_int_equal(rows(f) - before, 2);
}

/* Defect: a legal certificate's long subject made its target vanish. Now the
 * target reports, as a minimal error result that says why. */
static void test_invalid_facts_replaced_by_minimal_error(void **state) {
  fixture *f = *state;
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/results", f->port);
  long before = rows(f);
  tp_pusher_stats s = push_broken(url, 3, 1, BREAK_FACTS, 5000);
  assert_int_equal(s.invalid, 1);
  assert_int_equal(s.invalid_dropped, 0);
  assert_int_equal(s.pushed, 3);
  assert_int_equal(s.rejected, 0);
  assert_int_equal(rows(f) - before, 3);
  assert_int_equal(count_where(f, "SELECT count(*) FROM results WHERE error_class = 'other' AND "
                                  "error_detail LIKE '%broke the wire contract (chain[0].subject%'"),
                   1);
}

static void test_unreachable_collector_keeps_results(void **state) {
  (void)state;
  /* bind a port, close it: nobody listens there for the next second */
  uv_loop_t loop;
  uv_tcp_t tcp;
  struct sockaddr_in sa;
  int len = sizeof(sa);
  uv_loop_init(&loop);
  uv_tcp_init(&loop, &tcp);
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&tcp, (struct sockaddr *)&sa, 0), 0);
  uv_tcp_getsockname(&tcp, (struct sockaddr *)&sa, &len);
  uv_close((uv_handle_t *)&tcp, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/results", ntohs(sa.sin_port));
  tp_pusher_stats s = push(url, 4, -1, 300);
  assert_int_equal(s.pushed, 0);
  assert_int_equal(s.unsent, 4);
  assert_true(s.failures >= 1);
  assert_int_equal(s.failures_by[TP_PUSH_FAILURE_NETWORK], s.failures);
  assert_string_equal(tp_push_failure_name(TP_PUSH_FAILURE_NETWORK), "network");
}

/* 10 results in one batch over a 1 KiB limit: split until each part fits; the
 * one result that is larger than the limit alone becomes a minimal error result
 * under its own number, and everything else arrives intact. */
static void test_413_splits_then_replaces(void **state) {
  fixture *f = *state;
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/results", f->small_port);
  long before = rows(f);
  push_plan plan = {.url = url, .n = 10, .bad = -1, .batch_size = 10, .deadline_ms = 5000,
                    .sans = 10, .big = 4};
  tp_pusher_stats s = run_plan(&plan);
  assert_int_equal(s.unsent, 0);
  assert_int_equal(s.pushed, 10);
  assert_true(s.splits >= 1);
  assert_int_equal(s.failures_by[TP_PUSH_FAILURE_TOO_LARGE], s.splits + 1); /* + the one replaced */
  assert_int_equal(s.failures_by[TP_PUSH_FAILURE_RETRY], 0);
  assert_string_equal(tp_push_failure_name(TP_PUSH_FAILURE_TOO_LARGE), "too_large");
  assert_int_equal(s.replaced, 1);
  assert_int_equal(s.rejected, 0);
  assert_int_equal(rows(f) - before, 10);
  assert_int_equal(count_where(f, "SELECT count(*) FROM results WHERE error_class = 'other' AND "
                                  "error_detail LIKE '%exceeds the collector''s body limit%'"),
                   1);
  /* Numbered 1..10 without a gap: the replacement kept its number. */
  assert_int_equal(count_where(f, "SELECT count(DISTINCT result_seq) FROM results WHERE agent_id ="
                                  " 'unit' AND result_seq BETWEEN 1 AND 10 AND instance_id IN"
                                  " (SELECT instance_id FROM results ORDER BY id DESC LIMIT 1)"),
                   10);
}

/* An agent that never reached its collector stops; the next one on the same
 * spool file delivers everything, once. */
static void test_file_spool_survives_restart(void **state) {
  fixture *f = *state;
  char dead[64], url[64];
  snprintf(dead, sizeof(dead), "http://127.0.0.1:1/v1/results");
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/results", f->port);
  long before = rows(f);
  push_plan first = {.url = dead, .n = 5, .bad = -1, .deadline_ms = 300, .spool_path = f->spool,
                     .big = -1};
  tp_pusher_stats s = run_plan(&first);
  assert_int_equal(s.pushed, 0);
  assert_int_equal(s.unsent, 5);
  push_plan second = {.url = url, .n = 2, .bad = -1, .deadline_ms = 5000, .spool_path = f->spool,
                      .big = -1};
  s = run_plan(&second);
  assert_int_equal(s.unsent, 0);
  assert_int_equal(s.pushed, 7);
  assert_int_equal(rows(f) - before, 7);
  /* And a third start has nothing left to send. */
  push_plan third = {.url = url, .n = 0, .bad = -1, .deadline_ms = 500, .spool_path = f->spool,
                     .big = -1};
  s = run_plan(&third);
  assert_int_equal(s.pushed, 0);
  assert_int_equal(rows(f) - before, 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_results_arrive_once),
      cmocka_unit_test(test_invalid_identity_dropped_alone),
      cmocka_unit_test(test_invalid_facts_replaced_by_minimal_error),
      cmocka_unit_test(test_unreachable_collector_keeps_results),
      cmocka_unit_test(test_413_splits_then_replaces),
      cmocka_unit_test(test_file_spool_survives_restart),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
