/* store_sqlite_internal.h - shared by the SQLite backend's files only: the
 * backend struct and the small statement helpers every file uses. */
#ifndef TP_STORE_SQLITE_INTERNAL_H
#define TP_STORE_SQLITE_INTERNAL_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store_impl.h"
#include "tp_buf.h"

typedef struct sqlite_store sqlite_store;

struct sqlite_store {
  tp_store base; /* first: tp_store * <-> sqlite_store * */
  sqlite3 *db;
  char *path;
  bool no_schema; /* read-only open of a file without tables: reads see nothing */
  bool writable;  /* opened TP_STORE_READWRITE */
  sqlite3_stmt *begin;
  sqlite3_stmt *commit;
  sqlite3_stmt *rollback;
  sqlite3_stmt *insert_batch;
  sqlite3_stmt *insert_result;
  sqlite3_stmt *scan_all;
  sqlite3_stmt *scan_target;
  sqlite3_stmt *chain_of; /* one row's chain, unpacked */
  sqlite3_stmt *latest;
  /* delivery accounting (store_sqlite_delivery.c) */
  sqlite3_stmt *insert_drop;
  sqlite3_stmt *upsert_spool;
  sqlite3_stmt *scan_spools;
  sqlite3_stmt *scan_drops;
  /* Scratch JSON for one result's columns, reused across results. */
  tp_buf chain;
  tp_buf groups;
  tp_buf shares;
};

/* Rows stored before schema version 2 hold 0 in days_to_earliest_expiry when there
 * was no chain; the CASE makes both generations read NULL. */
#define SQL_DAYS                                                                             \
  "CASE WHEN days_to_earliest_expiry = 0 AND chain_json = '[]' THEN NULL"                    \
  " ELSE days_to_earliest_expiry END"

static inline sqlite_store *from_base(tp_store *store) { return (sqlite_store *)store; }

/* store_sqlite_facts.c: the chain and (with v2_lists, schema version 2 on) the offered
 * groups and key shares of result `id`, unpacked into out. */
tp_err tp__sqlite_latest_lists(sqlite_store *s, int64_t id, bool v2_lists, tp_store_facts *out,
                               char *err, size_t errlen);

static inline sqlite3_int64 u64_bits(uint64_t v) {
  sqlite3_int64 out;
  memcpy(&out, &v, sizeof(out));
  return out;
}

static inline tp_err fail(sqlite_store *s, char *err, size_t errlen, const char *what) {
  snprintf(err, errlen, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
  return TP_E_STORE;
}

/* Runs a statement that returns no rows and resets it; returns the SQLite code. */
static inline int run(sqlite3_stmt *stmt) {
  int rc = sqlite3_step(stmt);
  int reset_rc = sqlite3_reset(stmt);
  if (rc == SQLITE_DONE)
    return reset_rc;
  return rc;
}

/* ---- binding: the first failing bind is remembered, later ones are skipped ---- */

typedef struct binder {
  sqlite3_stmt *stmt;
  int idx;
  int rc;
} binder;

static inline void bind_text(binder *b, const char *s) {
  b->idx++;
  if (b->rc == SQLITE_OK)
    b->rc = sqlite3_bind_text(b->stmt, b->idx, s ? s : "", -1, SQLITE_STATIC);
}

static inline void bind_i64(binder *b, sqlite3_int64 v) {
  b->idx++;
  if (b->rc == SQLITE_OK)
    b->rc = sqlite3_bind_int64(b->stmt, b->idx, v);
}

static inline void bind_null(binder *b) {
  b->idx++;
  if (b->rc == SQLITE_OK)
    b->rc = sqlite3_bind_null(b->stmt, b->idx);
}

/* ---- delivery accounting (store_sqlite_delivery.c) ---- */

/* Prepares the delivery statements (write ones only for a read-write store). */
tp_err tp__sqlite_prepare_delivery(sqlite_store *s, bool writable, char *err, size_t errlen);
void tp__sqlite_finalize_delivery(sqlite_store *s);
/* Inside put_batch's transaction: stores the batch's drop reports and updates the
 * spool's counters with what this batch newly added. */
tp_err tp__sqlite_put_delivery(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch,
                               int64_t received_unix_ns, const tp_store_put_outcome *results,
                               uint64_t max_seq_stored, int64_t last_started_stored,
                               bool *drop_new, uint32_t *drops_stored, char *err, size_t errlen);
tp_err tp__sqlite_scan_spools(tp_store *store, tp_store_spool_fn fn, void *ctx, char *err,
                              size_t errlen);
tp_err tp__sqlite_scan_drops(tp_store *store, int64_t since_unix_ns, tp_store_drop_fn fn,
                             void *ctx, char *err, size_t errlen);

/* ---- long windows (store_sqlite_rollup.c, store_sqlite_maintain.c) ---- */

/* The SQL functions the rollup statements use (tp_sketch_of, tp_sketch_merge,
 * tp_sketch_sum, tp_classes_of, tp_classes_merge, tp_classes_sum), on a read-write
 * connection. */
tp_err tp__sqlite_register_rollup_functions(sqlite_store *s, char *err, size_t errlen);
/* Inside a write transaction: folds results with watermark < id <= hi into their
 * rollup minutes and hours; *rows = rollup rows inserted or updated. */
tp_err tp__sqlite_fold(sqlite_store *s, int64_t watermark, int64_t hi, uint64_t *rows, char *err,
                       size_t errlen);
tp_err tp__sqlite_maintain(tp_store *store, int64_t now_unix_ns,
                           const tp_store_maintain_limits *limits, tp_store_maintain_stats *stats,
                           char *err, size_t errlen);
tp_err tp__sqlite_scan_rollups(tp_store *store, tp_store_rollup_span span, int64_t since_unix_ns,
                               int64_t until_unix_ns, const tp_store_rollup_filter *filter,
                               tp_store_rollup_order order, tp_store_rollup_fn fn, void *ctx,
                               char *err, size_t errlen);
tp_err tp__sqlite_horizon(tp_store *store, tp_store_horizon *out, char *err, size_t errlen);

#endif
