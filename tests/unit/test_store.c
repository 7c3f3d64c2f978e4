/* test_store.c - the SQLite backend's open/migrate contract: schema created on
 * first open, version recorded, newer schemas refused, read-only opens never
 * create or migrate, and a missing file is reported as such. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

typedef struct fixture {
  char dir[64];
  char db[128];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp_store_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->db, sizeof(f->db), "%s/s.db", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char path[160];
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof(path), "%s%s", f->db, suffixes[i]);
    unlink(path);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

static void exec_sql(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
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

static void test_create_and_migrate(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  tp_store_close(s);
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 1);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM sqlite_master WHERE type='index'"
                                    " AND name IN ('results_started','results_series')"),
                   2);
  /* WAL is a property of the file: it persists. */
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  /* Second open: nothing to migrate, nothing lost. */
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  tp_store_close(s);
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 1);
}

static void test_newer_schema_is_refused(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  exec_sql(f->db, "PRAGMA user_version = 99");
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)),
                   TP_E_STORE);
  assert_null(s);
  assert_non_null(strstr(err, "schema version 99 is newer"));
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READONLY, &s, err, sizeof(err)),
                   TP_E_STORE);
  assert_non_null(strstr(err, "schema version 99 is newer"));
  /* Refusing must not have touched the file. */
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM sqlite_master"), 0);
}

static void test_readonly_missing_file(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  struct stat st;
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READONLY, &s, err, sizeof(err)),
                   TP_E_NOTFOUND);
  assert_null(s);
  assert_non_null(strstr(err, "No such file"));
  assert_int_not_equal(stat(f->db, &st), 0); /* and it was not created */
}

static tp_err count_row(const tp_store_row *row, void *ctx) {
  (void)row;
  (*(int *)ctx)++;
  return TP_E_OK;
}

static void test_readonly_unmigrated_file_reads_empty(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  tp_store_facts facts;
  int n = 0;
  exec_sql(f->db, "CREATE TABLE unrelated (x)");
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READONLY, &s, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_store_scan(s, 0, NULL, count_row, &n, err, sizeof(err)), TP_E_OK);
  assert_int_equal(n, 0);
  assert_int_equal(tp_store_latest(s, "a", "b", "c", 0, &facts, err, sizeof(err)), TP_E_NOTFOUND);
  tp_store_close(s);
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 0); /* never migrated */
}

static void test_unwritable_path(void **state) {
  (void)state;
  char err[512] = "";
  tp_store *s = NULL;
  assert_int_equal(
      tp_store_open_sqlite("/nonexistent-dir/x.db", TP_STORE_READWRITE, &s, err, sizeof(err)),
      TP_E_STORE);
  assert_null(s);
  assert_non_null(strstr(err, "/nonexistent-dir/x.db: cannot open database"));
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_create_and_migrate),
      T(test_newer_schema_is_refused),
      T(test_readonly_missing_file),
      T(test_readonly_unmigrated_file_reads_empty),
      cmocka_unit_test(test_unwritable_path),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
