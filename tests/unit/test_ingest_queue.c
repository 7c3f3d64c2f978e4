/* test_ingest_queue.c - group commit on a real SQLite file: tp_store_put_batches keeps
 * each batch's meaning inside a group (a result two batches carry is new for the first
 * only, a re-send is a duplicate, the marks say which), a batch that fails by itself
 * leaves no trace while the rest of its group is stored, and the ingest queue (workers
 * + one writer) answers every request exactly once -- concurrently submitted overlapping
 * batches stored exactly once, refusals answered without the store, the bound on
 * pending requests, and a stop that answers what it took. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest.h"
#include "ingest_queue.h"
#include "store.h"
#include "tlsprobe.pb-c.h"

#define T0 INT64_C(1700000000000000000)
#define MAX_RESULTS 64

typedef struct fixture {
  char dir[64], db[128];
  tp_store *store;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  char err[512];
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp_queue_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->db, sizeof(f->db), "%s/q.db", f->dir);
  if (tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &f->store, err, sizeof(err)) != TP_E_OK)
    fail_msg("open: %s", err);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char path[160];
  tp_store_close(f->store);
  const char *suffixes[] = {"", "-wal", "-shm"};
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
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
  long long v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return v;
}

static void exec_sql(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_busy_timeout(db, 5000), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

/* A batch of results first..last (at most MAX_RESULTS) of one spool. */
typedef struct test_batch {
  Tlsprobe__V1__ResultBatch b;
  Tlsprobe__V1__ProbeResult r[MAX_RESULTS];
  Tlsprobe__V1__ProbeResult *rp[MAX_RESULTS];
  Tlsprobe__V1__DropReport d;
  Tlsprobe__V1__DropReport *dp[1];
  char agent[32];
} test_batch;

static void make_batch(test_batch *t, const char *agent, uint64_t instance, uint64_t batch_seq,
                       uint64_t first, uint64_t last) {
  memset(t, 0, sizeof(*t));
  snprintf(t->agent, sizeof(t->agent), "%s", agent);
  tlsprobe__v1__result_batch__init(&t->b);
  t->b.agent_id = t->agent;
  t->b.instance_id = instance;
  t->b.batch_seq = batch_seq;
  assert_true(last >= first && last - first < MAX_RESULTS);
  for (uint64_t s = first; s <= last; s++) {
    Tlsprobe__V1__ProbeResult *r = &t->r[s - first];
    tlsprobe__v1__probe_result__init(r);
    r->target = (s % 3) ? "web" : "api";
    r->profile = "modern";
    r->region = "eu";
    r->host = "web.test";
    r->port = 443;
    r->ok = 1;
    r->error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
    r->result_seq = s;
    r->started_unix_ns = T0 + (int64_t)s * 1000000;
    r->handshake_ns = 1000000 + s;
    r->total_ns = 2000000 + s;
    r->mode = "handshake";
    t->rp[s - first] = r;
  }
  t->b.results = t->rp;
  t->b.n_results = (size_t)(last - first + 1);
}

static uint8_t *pack(const test_batch *t, size_t *len) {
  *len = tlsprobe__v1__result_batch__get_packed_size(&t->b);
  uint8_t *buf = malloc(*len + 1);
  assert_non_null(buf);
  assert_int_equal(tlsprobe__v1__result_batch__pack(&t->b, buf), *len);
  return buf;
}

static long long rows(fixture *f) { return query_int(f->db, "SELECT count(*) FROM result_rows"); }

/* ---- tp_store_put_batches ----------------------------------------------------------- */

static void test_group_keeps_each_batch_meaning(void **state) {
  fixture *f = *state;
  char err[512];
  static test_batch a, b, c;
  bool marks_a[MAX_RESULTS] = {0}, marks_b[MAX_RESULTS] = {0}, marks_c[MAX_RESULTS] = {0};
  bool drop_b[1] = {0}, none[1] = {0};
  make_batch(&a, "agent-1", 7, 1, 1, 10);
  make_batch(&b, "agent-1", 7, 2, 6, 15); /* 6..10 are a's */
  make_batch(&c, "agent-1", 7, 1, 1, 10); /* a re-sent */
  tlsprobe__v1__drop_report__init(&b.d);
  b.d.drop_id = 1;
  b.d.count = 1;
  b.d.reason = "spool_full";
  b.d.first_seq = b.d.last_seq = 16;
  b.d.first_unix_ns = b.d.last_unix_ns = T0;
  b.dp[0] = &b.d;
  b.b.drops = b.dp;
  b.b.n_drops = 1;
  tp_store_put_marks ma = {.results = marks_a, .drops = none};
  tp_store_put_marks mb = {.results = marks_b, .drops = drop_b};
  tp_store_put_marks mc = {.results = marks_c, .drops = none};
  tp_store_put puts[3] = {
      {.batch = &a.b, .received_unix_ns = T0 + 1, .marks = &ma},
      {.batch = &b.b, .received_unix_ns = T0 + 2, .marks = &mb},
      {.batch = &c.b, .received_unix_ns = T0 + 3, .marks = &mc},
  };
  assert_int_equal(tp_store_put_batches(f->store, puts, 3, err, sizeof(err)), TP_E_OK);
  for (int i = 0; i < 3; i++)
    assert_int_equal(puts[i].rc, TP_E_OK);
  assert_int_equal(puts[0].out.results_stored, 10);
  assert_false(puts[0].out.duplicate);
  assert_int_equal(puts[1].out.results_stored, 5);
  assert_int_equal(puts[1].out.drops_stored, 1);
  assert_true(drop_b[0]);
  for (int i = 0; i < 10; i++) {
    assert_true(marks_a[i]);
    assert_int_equal(marks_b[i], i >= 5); /* seq 11..15 */
    assert_false(marks_c[i]);
  }
  assert_true(puts[2].out.duplicate);
  assert_int_equal(puts[2].out.results_stored, 0);
  assert_int_equal(rows(f), 15);
  assert_int_equal(query_int(f->db, "SELECT results || '/' || max_seq || '/' || dropped = '15/16/1'"
                                    " FROM spools"),
                   1);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM batches"), 2); /* the log: 1 and 2 */
  /* The same groups again, now all re-sends. */
  memset(marks_a, 0, sizeof(marks_a));
  assert_int_equal(tp_store_put_batches(f->store, puts, 3, err, sizeof(err)), TP_E_OK);
  for (int i = 0; i < 3; i++)
    assert_true(puts[i].out.duplicate);
  assert_false(marks_a[0]);
  assert_int_equal(rows(f), 15);
}

/* A batch SQLite refuses (here a trigger planted by hand aborts one of its rows) fails
 * alone: its group is stored without it, and nothing of it remains -- no row, no seen
 * number, no spool -- so its retry is stored whole. */
static void test_batch_failing_alone(void **state) {
  fixture *f = *state;
  char err[512];
  static test_batch a, p, d;
  make_batch(&a, "agent-1", 7, 1, 1, 40);
  make_batch(&p, "agent-2", 3, 1, 1, 40);
  make_batch(&d, "agent-3", 5, 1, 1, 40);
  p.r[20].dns_ns = 4242;
  p.r[20].total_ns += 4242;
  exec_sql(f->db, "CREATE TRIGGER poison BEFORE INSERT ON result_rows WHEN NEW.dns_ns = 4242"
                  " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;");
  bool marks_a[MAX_RESULTS] = {0}, marks_p[MAX_RESULTS] = {0}, marks_d[MAX_RESULTS] = {0};
  bool none[1] = {0};
  tp_store_put_marks ma = {.results = marks_a, .drops = none};
  tp_store_put_marks mp = {.results = marks_p, .drops = none};
  tp_store_put_marks md = {.results = marks_d, .drops = none};
  tp_store_put puts[3] = {
      {.batch = &a.b, .received_unix_ns = T0, .marks = &ma},
      {.batch = &p.b, .received_unix_ns = T0, .marks = &mp},
      {.batch = &d.b, .received_unix_ns = T0, .marks = &md},
  };
  assert_int_equal(tp_store_put_batches(f->store, puts, 3, err, sizeof(err)), TP_E_OK);
  assert_int_equal(puts[0].rc, TP_E_OK);
  assert_int_equal(puts[0].out.results_stored, 40);
  assert_int_equal(puts[1].rc, TP_E_STORE);
  assert_non_null(strstr(puts[1].err, "poisoned row"));
  assert_int_equal(puts[2].rc, TP_E_OK);
  assert_int_equal(puts[2].out.results_stored, 40);
  for (int i = 0; i < 40; i++) /* the retried group's marks, not the first try's */
    assert_true(marks_a[i] && marks_d[i]);
  assert_int_equal(rows(f), 80);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results WHERE agent_id = 'agent-2'"), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM seen JOIN spool_keys k ON k.id = spool"
                                    " WHERE k.agent_id = 'agent-2'"),
                   0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM spools WHERE agent_id = 'agent-2'"), 0);
  exec_sql(f->db, "DROP TRIGGER poison");
  tp_store_put retry = {.batch = &p.b, .received_unix_ns = T0 + 1};
  assert_int_equal(tp_store_put_batches(f->store, &retry, 1, err, sizeof(err)), TP_E_OK);
  assert_int_equal(retry.rc, TP_E_OK);
  assert_int_equal(retry.out.results_stored, 40);
  assert_int_equal(rows(f), 120);
  /* Alone, the batch's failure is the group's: TP_E_STORE and the message. */
  exec_sql(f->db, "CREATE TRIGGER poison BEFORE INSERT ON result_rows WHEN NEW.dns_ns = 4242"
                  " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;");
  make_batch(&p, "agent-4", 3, 1, 1, 2);
  p.r[1].dns_ns = 4242;
  p.r[1].total_ns += 4242;
  tp_store_put_outcome out;
  assert_int_equal(tp_store_put_batch(f->store, &p.b, T0, &out, err, sizeof(err)), TP_E_STORE);
  assert_non_null(strstr(err, "poisoned row"));
  assert_int_equal(rows(f), 120);
}

/* ---- the queue ------------------------------------------------------------------------ */

typedef struct answers {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t n, ok, duplicate, refused;
  uint64_t stored;
} answers;

static void on_done(void *ctx, tp_ingest_reply *reply) {
  answers *a = ctx;
  pthread_mutex_lock(&a->mu);
  a->n++;
  if (reply->http_status == 200) {
    a->ok++;
    a->stored += reply->stored;
    a->duplicate += reply->duplicate;
  } else {
    a->refused++;
  }
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
  tp_ingest_reply_clear(reply);
}

static void wait_answers(answers *a, size_t n) {
  pthread_mutex_lock(&a->mu);
  while (a->n < n)
    pthread_cond_wait(&a->cv, &a->mu);
  pthread_mutex_unlock(&a->mu);
}

#define SUBMITTERS 6
#define PER_SUBMITTER 20

typedef struct submitter {
  tp_ingest_queue *q;
  answers *a;
  int index;
  uint8_t *bodies[PER_SUBMITTER];
  size_t lens[PER_SUBMITTER];
  tp_ingest_params params;
  pthread_t thread;
} submitter;

/* Every submitter pushes the same two spools' batches 1..20, results 20b-19 .. 20b+20:
 * each result in two batches, each batch six times, all at once. */
static void *submit_main(void *arg) {
  submitter *s = arg;
  for (int i = 0; i < PER_SUBMITTER; i++) {
    while (tp_ingest_queue_reserve(s->q) != TP_E_OK)
      usleep(1000);
    tp_ingest_queue_submit(s->q, s->bodies[i], s->lens[i], &s->params, on_done, s->a);
  }
  return NULL;
}

static void test_queue_concurrent_overlapping(void **state) {
  fixture *f = *state;
  char err[512];
  tp_ingest_queue *q = NULL;
  answers a = {.n = 0};
  pthread_mutex_init(&a.mu, NULL);
  pthread_cond_init(&a.cv, NULL);
  tp_ingest_queue_options opt = {.workers = 3};
  assert_int_equal(tp_ingest_queue_new(f->store, &opt, &q, err, sizeof(err)), TP_E_OK);
  static submitter subs[SUBMITTERS];
  static test_batch t;
  for (int s = 0; s < SUBMITTERS; s++) {
    subs[s] = (submitter){.q = q, .a = &a, .index = s, .params = {.received_unix_ns = T0}};
    for (int i = 0; i < PER_SUBMITTER; i++) {
      uint64_t b = (uint64_t)(i / 2) + 1;
      make_batch(&t, i % 2 ? "agent-b" : "agent-a", 9, b, 20 * b - 19, 20 * b + 20);
      subs[s].bodies[i] = pack(&t, &subs[s].lens[i]);
    }
  }
  for (int s = 0; s < SUBMITTERS; s++)
    assert_int_equal(pthread_create(&subs[s].thread, NULL, submit_main, &subs[s]), 0);
  for (int s = 0; s < SUBMITTERS; s++)
    pthread_join(subs[s].thread, NULL);
  wait_answers(&a, SUBMITTERS * PER_SUBMITTER);
  tp_ingest_queue_stats st;
  tp_ingest_queue_stats_get(q, &st);
  tp_ingest_queue_free(q);
  /* Per spool, batches 1..10 cover results 1..220. */
  assert_int_equal(a.ok, SUBMITTERS * PER_SUBMITTER);
  assert_int_equal(a.stored, 2 * 220);
  assert_int_equal(rows(f), 2 * 220);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM (SELECT DISTINCT agent_id, result_seq"
                                    " FROM results)"),
                   2 * 220);
  assert_int_equal(st.batches, SUBMITTERS * PER_SUBMITTER);
  assert_true(st.groups >= 1 && st.groups <= st.batches);
  print_message("queue: %llu batches in %llu transactions, at most %llu in one\n",
                (unsigned long long)st.batches, (unsigned long long)st.groups,
                (unsigned long long)st.max_group);
  for (int s = 0; s < SUBMITTERS; s++)
    for (int i = 0; i < PER_SUBMITTER; i++)
      free(subs[s].bodies[i]);
  pthread_cond_destroy(&a.cv);
  pthread_mutex_destroy(&a.mu);
}

/* Refused bodies are answered by the workers, with nothing stored; the bound on
 * pending requests says FULL; stopping answers every request taken. */
static void test_queue_refusals_bound_and_stop(void **state) {
  fixture *f = *state;
  char err[512];
  tp_ingest_queue *q = NULL;
  answers a = {.n = 0};
  pthread_mutex_init(&a.mu, NULL);
  pthread_cond_init(&a.cv, NULL);
  tp_ingest_queue_options opt = {.workers = 2, .max_pending = 3};
  assert_int_equal(tp_ingest_queue_new(f->store, &opt, &q, err, sizeof(err)), TP_E_OK);
  static test_batch t;
  size_t len;
  make_batch(&t, "agent-z", 1, 1, 1, 30);
  uint8_t *good = pack(&t, &len);
  static const uint8_t garbage[] = {0xff, 0xff, 0xff};
  tp_ingest_params params = {.received_unix_ns = T0};
  assert_int_equal(tp_ingest_queue_reserve(q), TP_E_OK);
  assert_int_equal(tp_ingest_queue_reserve(q), TP_E_OK);
  assert_int_equal(tp_ingest_queue_reserve(q), TP_E_OK);
  assert_int_equal(tp_ingest_queue_reserve(q), TP_E_FULL); /* max_pending */
  tp_ingest_queue_submit(q, garbage, sizeof(garbage), &params, on_done, &a);
  tp_ingest_queue_submit(q, good, len, &params, on_done, &a);
  tp_ingest_queue_submit(q, good, len, &params, on_done, &a);
  wait_answers(&a, 3);
  assert_int_equal(a.refused, 1);
  assert_int_equal(a.ok, 2);
  assert_int_equal(a.stored, 30);
  assert_int_equal(a.duplicate, 1);
  /* Places are given back with the answers. */
  assert_int_equal(tp_ingest_queue_reserve(q), TP_E_OK);
  tp_ingest_queue_submit(q, good, len, &params, on_done, &a);
  assert_int_equal(tp_ingest_queue_reserve(q), TP_E_OK);
  tp_ingest_queue_submit(q, good, len, &params, on_done, &a);
  /* Stop at once: both are answered (stored, duplicates here) before it returns. */
  tp_ingest_queue_stop(q);
  assert_int_equal(a.n, 5);
  assert_int_equal(a.ok, 4);
  assert_int_equal(tp_ingest_queue_reserve(q), TP_E_FULL); /* stopped */
  tp_ingest_queue_stats st;
  tp_ingest_queue_stats_get(q, &st);
  assert_int_equal(st.full, 2);
  tp_ingest_queue_free(q);
  assert_int_equal(rows(f), 30);
  free(good);
  pthread_cond_destroy(&a.cv);
  pthread_mutex_destroy(&a.mu);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_group_keeps_each_batch_meaning),
      T(test_batch_failing_alone),
      T(test_queue_concurrent_overlapping),
      T(test_queue_refusals_bound_and_stop),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
