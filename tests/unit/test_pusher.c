/* test_pusher.c - the agent's pusher against the real collector HTTP server and
 * SQLite store, in process, on 127.0.0.1:
 *   - every queued result arrives, once, and the queue drains;
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
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "http_server.h"
#include "pusher.h"
#include "queue.h"
#include "store.h"
#include "tp_mem.h"

typedef struct {
  char dir[64];
  char db[128];
  tp_store *store;
  tp_http_server *server;
  uint16_t port;
} fixture;

static int setup(void **state) {
  fixture *f = tp_xcalloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp-pusher.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
  char err[256];
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &f->store, err, sizeof(err)), TP_E_OK);
  tp_listen_addr addr;
  assert_int_equal(tp_listen_addr_parse("127.0.0.1:0", &addr, err, sizeof(err)), TP_E_OK);
  tp_http_options o = {.listen = &addr, .max_body_bytes = 1 << 20};
  static const tp_log quiet = {.min_level = TP_LOG_ERROR + 1, .component = "test"};
  assert_int_equal(tp_http_server_start(&o, f->store, &quiet, &f->server, err, sizeof(err)), TP_E_OK);
  f->port = tp_http_server_port(f->server);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tp_http_server_stop(f->server);
  tp_store_close(f->store);
  unlink(f->db);
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
  r->started_unix_ns = 1700000000000000000LL;
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

/* Queues `n` results (result `bad` broken as `how`), flushes to url within the
 * deadline and returns the stats. */
static tp_pusher_stats push_broken(const char *url, size_t n, long bad, breakage how,
                                   uint64_t deadline_ms) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  tp_queue *q = tp_queue_new(100);
  for (size_t i = 0; i < n; i++) {
    tp_result *r = result("t", (long)i == bad && how == BREAK_PORT ? 0 : 443);
    if ((long)i == bad && how == BREAK_FACTS)
      break_facts(r);
    tp_queue_push(q, r);
  }
  static const tp_log quiet = {.min_level = TP_LOG_ERROR + 1, .component = "test"};
  tp_pusher_options o = {.url = url, .agent_id = "unit", .region = "r", .batch_size = 3,
                         .flush_interval_ms = 1000, .timeout_ms = 2000};
  tp_pusher *p;
  assert_int_equal(tp_pusher_new(&loop, &o, q, &quiet, &p), TP_E_OK);
  tp_pusher_flush(p, deadline_ms, NULL, NULL);
  tp_pusher_stats stats;
  /* run until the flush deadline or drain; the stats are read before closing */
  uint64_t end = uv_now(&loop) + deadline_ms + 500;
  do {
    uv_run(&loop, UV_RUN_ONCE);
    tp_pusher_get_stats(p, &stats);
  } while (stats.unsent > 0 && uv_now(&loop) < end);
  on_flushed(p);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  tp_queue_free(q);
  return stats;
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
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_results_arrive_once),
      cmocka_unit_test(test_invalid_identity_dropped_alone),
      cmocka_unit_test(test_invalid_facts_replaced_by_minimal_error),
      cmocka_unit_test(test_unreachable_collector_keeps_results),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
