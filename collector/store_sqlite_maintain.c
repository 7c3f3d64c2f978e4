/* store_sqlite_maintain.c - the SQLite backend's maintenance pass (rollup, then
 * retention) and the horizon the report reads to choose raw rows or rollups.
 *
 * Every step is a chunk of at most chunk_rows rows in its own BEGIN IMMEDIATE
 * transaction, so ingest -- the other connection, on the MHD thread -- never waits
 * longer than one chunk for the write lock; between chunks the caller's `between`
 * yields and can stop the pass (shutdown).
 *
 * Exactly once. The watermark (rollup_state.watermark) is the highest result_rows.id
 * already in the rollups; a chunk takes the next ids above it, folds them and moves
 * the watermark in the same transaction. That needs ids that only grow: a result
 * inserted later must get an id above every id the watermark has passed. The
 * results table is `id INTEGER PRIMARY KEY` without AUTOINCREMENT, so SQLite gives
 * a new row max(id) + 1 -- which would go back below the watermark if the rows with
 * the highest ids were deleted. Retention therefore never deletes the row with the
 * highest id (it is kept past its retention until a newer one arrives): max(id)
 * then never decreases, and max(id) + 1 is above every id ever used -- what
 * AUTOINCREMENT guarantees, without rebuilding (copying) a results table of
 * millions of rows to add it. Ids survive VACUUM (an INTEGER PRIMARY KEY is the
 * rowid itself). Raw rows are only deleted at or below the watermark, so nothing
 * leaves before it is rolled up.
 *
 * A re-sent result is deduplicated by its spool's seen intervals (schema version 6),
 * which retention leaves alone; the config still keeps raw retention >=
 * max_result_age (config.c), so every result ingest accepts has its raw row. Dictionary
 * rows (series, shapes, chains, spool_keys) are never deleted: they are as many as
 * the content is varied, not as the results. */
#include <time.h>

#include "store_sqlite_internal.h"

static const char SQL_WATERMARK[] = "SELECT watermark FROM rollup_state WHERE id = 1";
static const char SQL_NEXT_RANGE[] =
    "SELECT coalesce(max(id), 0), count(*) FROM"
    " (SELECT id FROM result_rows WHERE id > ?1 ORDER BY id LIMIT ?2)";
static const char SQL_ADVANCE[] = "UPDATE rollup_state SET watermark = ?1 WHERE id = 1";
/* INDEXED BY: the age range is the selective one (usually empty); walking the id
 * range instead would read every rolled-up row on every pass. */
static const char SQL_DELETE_RAW[] =
    "DELETE FROM result_rows WHERE id IN (SELECT id FROM result_rows"
    " INDEXED BY result_rows_started"
    " WHERE started_unix_ns < ?1 AND id <= (SELECT watermark FROM rollup_state WHERE id = 1)"
    " AND id < (SELECT max(id) FROM result_rows) LIMIT ?2)";
static const char SQL_NOTE_RAW[] =
    "UPDATE rollup_state SET raw_complete_since_unix_ns = max(raw_complete_since_unix_ns, ?1)"
    " WHERE id = 1";
/* The IN list on span_ns lets the (span_ns, start_unix_ns) index find every span. */
static const char SQL_DELETE_ROLLUPS[] =
    "DELETE FROM rollups WHERE id IN (SELECT id FROM rollups INDEXED BY rollups_start"
    " WHERE span_ns IN (60000000000, 3600000000000, 86400000000000) AND start_unix_ns < ?1"
    " LIMIT ?2)";
static const char SQL_NOTE_ROLLUPS[] =
    "UPDATE rollup_state SET rollups_complete_since_unix_ns ="
    " max(rollups_complete_since_unix_ns, ?1) WHERE id = 1";
static const char SQL_DELETE_DROPS[] =
    "DELETE FROM drops WHERE (agent_id, instance_id, drop_id) IN (SELECT agent_id,"
    " instance_id, drop_id FROM drops INDEXED BY drops_time WHERE last_unix_ns < ?1 LIMIT ?2)";
static const char SQL_DELETE_BATCHES[] =
    "DELETE FROM batches WHERE rowid IN (SELECT rowid FROM batches INDEXED BY batches_received"
    " WHERE received_unix_ns < ?1 LIMIT ?2)";

enum { WATERMARK, NEXT_RANGE, ADVANCE, DEL_RAW, NOTE_RAW, DEL_ROLLUPS, NOTE_ROLLUPS, DEL_DROPS,
       DEL_BATCHES, N_STMTS };

static const char *const SQL[N_STMTS] = {
    SQL_WATERMARK,    SQL_NEXT_RANGE,    SQL_ADVANCE,      SQL_DELETE_RAW,    SQL_NOTE_RAW,
    SQL_DELETE_ROLLUPS, SQL_NOTE_ROLLUPS, SQL_DELETE_DROPS, SQL_DELETE_BATCHES,
};

typedef struct pass {
  sqlite_store *s;
  sqlite3_stmt *stmt[N_STMTS]; /* prepared per pass: once a minute, on its own connection */
  const tp_store_maintain_limits *limits;
  tp_store_maintain_stats *stats;
  int64_t chunk;
  char *err;
  size_t errlen;
} pass;

/* One chunk's work inside the transaction; *done = rows it handled. */
typedef tp_err (*chunk_fn)(pass *p, const void *arg, uint64_t *done);

static uint64_t mono_ns(void) {
  struct timespec ts;
  (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail with a valid clock id */
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs fn in one write transaction; *more when it filled a whole chunk (there may be
 * more to do). After a transaction that changed something, `between` may stop the
 * pass (stats.stopped). */
static tp_err run_chunk(pass *p, chunk_fn fn, const void *arg, bool *more) {
  sqlite_store *s = p->s;
  uint64_t done = 0, start = mono_ns();
  *more = false;
  if (run(s->begin) != SQLITE_OK)
    return fail(s, p->err, p->errlen, "cannot begin a maintenance transaction");
  tp_err rc = fn(p, arg, &done);
  if (rc == TP_E_OK && run(s->commit) != SQLITE_OK)
    rc = fail(s, p->err, p->errlen, "cannot commit a maintenance transaction");
  if (rc != TP_E_OK) {
    (void)run(s->rollback); /* the chunk's changes and its watermark go together */
    return rc;
  }
  if (done == 0)
    return TP_E_OK;
  uint64_t took = mono_ns() - start;
  p->stats->transactions++;
  if (took > p->stats->max_txn_ns)
    p->stats->max_txn_ns = took;
  *more = done == (uint64_t)p->chunk;
  if (p->limits->between != NULL && !p->limits->between(p->limits->ctx, took)) {
    p->stats->stopped = true;
    *more = false;
  }
  return TP_E_OK;
}

/* Binds ints, steps once (a row or done), keeps the statement for reading columns;
 * the caller resets. */
static tp_err step_ints(pass *p, int which, const int64_t *args, int n, bool want_row,
                        const char *what) {
  sqlite3_stmt *st = p->stmt[which];
  binder b = {.stmt = st, .idx = 0, .rc = SQLITE_OK};
  for (int i = 0; i < n; i++)
    bind_i64(&b, args[i]);
  int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
  if (rc == (want_row ? SQLITE_ROW : SQLITE_DONE))
    return TP_E_OK;
  (void)sqlite3_reset(st);
  return fail(p->s, p->err, p->errlen, what);
}

static tp_err exec_ints(pass *p, int which, const int64_t *args, int n, const char *what) {
  tp_err rc = step_ints(p, which, args, n, false, what);
  if (rc == TP_E_OK && sqlite3_reset(p->stmt[which]) != SQLITE_OK)
    rc = fail(p->s, p->err, p->errlen, what);
  return rc;
}

/* ---- rollup ------------------------------------------------------------------------ */

static tp_err fold_chunk(pass *p, const void *arg, uint64_t *done) {
  (void)arg;
  tp_err rc = step_ints(p, WATERMARK, NULL, 0, true, "cannot read the rollup watermark");
  if (rc != TP_E_OK)
    return rc;
  int64_t range[2] = {sqlite3_column_int64(p->stmt[WATERMARK], 0), p->chunk};
  (void)sqlite3_reset(p->stmt[WATERMARK]);
  rc = step_ints(p, NEXT_RANGE, range, 2, true, "cannot find results to roll up");
  if (rc != TP_E_OK)
    return rc;
  int64_t hi = sqlite3_column_int64(p->stmt[NEXT_RANGE], 0);
  uint64_t n = (uint64_t)sqlite3_column_int64(p->stmt[NEXT_RANGE], 1), rows = 0;
  (void)sqlite3_reset(p->stmt[NEXT_RANGE]);
  if (n == 0)
    return TP_E_OK;
  rc = tp__sqlite_fold(p->s, range[0], hi, &rows, p->err, p->errlen);
  if (rc == TP_E_OK)
    rc = exec_ints(p, ADVANCE, &hi, 1, "cannot advance the rollup watermark");
  if (rc != TP_E_OK)
    return rc;
  p->stats->rolled_up += n;
  p->stats->rollup_rows += rows;
  *done = n;
  return TP_E_OK;
}

/* ---- retention ------------------------------------------------------------------------ */

typedef struct purge {
  int del, note; /* statements; note < 0 = none */
  int64_t cutoff;
  uint64_t *counter;
  const char *what;
} purge;

static tp_err purge_chunk(pass *p, const void *arg, uint64_t *done) {
  const purge *pg = arg;
  int64_t args[2] = {pg->cutoff, p->chunk};
  tp_err rc = exec_ints(p, pg->del, args, 2, pg->what);
  if (rc != TP_E_OK)
    return rc;
  uint64_t n = (uint64_t)sqlite3_changes(p->s->db);
  /* How far back the data is complete moves only with what was really deleted. */
  if (n > 0 && pg->note >= 0)
    rc = exec_ints(p, pg->note, &pg->cutoff, 1, "cannot record the retention horizon");
  if (rc != TP_E_OK)
    return rc;
  *pg->counter += n;
  *done = n;
  return TP_E_OK;
}

/* now - ms, or 0 (nothing to delete) when ms is 0 or reaches before 1970. */
static int64_t cutoff(int64_t now_unix_ns, uint64_t ms) {
  if (ms == 0 || now_unix_ns <= 0 || ms >= (uint64_t)now_unix_ns / 1000000)
    return 0;
  return now_unix_ns - (int64_t)ms * 1000000;
}

static tp_err repeat(pass *p, chunk_fn fn, const void *arg) {
  bool more = true;
  tp_err rc = TP_E_OK;
  while (rc == TP_E_OK && more && !p->stats->stopped)
    rc = run_chunk(p, fn, arg, &more);
  return rc;
}

static tp_err retention(pass *p, int64_t now_unix_ns) {
  tp_store_maintain_stats *st = p->stats;
  int64_t old = cutoff(now_unix_ns, p->limits->rollup_retention_ms);
  /* Rollups go by whole days (UTC), minute and hour rows with their day, so that every
   * span is complete from the same instant (tp_store_horizon) and a day row is never
   * deleted while part of it is younger than the cutoff. */
  int64_t old_day = old - old % TP_STORE_ROLLUP_DAY_NS;
  purge steps[] = {
      {DEL_RAW, NOTE_RAW, cutoff(now_unix_ns, p->limits->raw_retention_ms), &st->raw_deleted,
       "cannot delete old raw results"},
      {DEL_ROLLUPS, NOTE_ROLLUPS, old_day, &st->rollups_deleted, "cannot delete old rollups"},
      {DEL_DROPS, -1, old, &st->drops_deleted, "cannot delete old drop reports"},
      {DEL_BATCHES, -1, old, &st->batches_deleted, "cannot delete old batch-log rows"},
  };
  tp_err rc = TP_E_OK;
  for (size_t i = 0; rc == TP_E_OK && i < sizeof(steps) / sizeof(steps[0]); i++)
    if (steps[i].cutoff > 0)
      rc = repeat(p, purge_chunk, &steps[i]);
  return rc;
}

tp_err tp__sqlite_maintain(tp_store *store, int64_t now_unix_ns,
                           const tp_store_maintain_limits *limits, tp_store_maintain_stats *stats,
                           char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  if (!s->writable) {
    snprintf(err, errlen, "%s: maintenance needs a read-write store", s->path);
    return TP_E_INVAL;
  }
  pass p = {.s = s,
            .limits = limits,
            .stats = stats,
            .chunk = limits->chunk_rows ? limits->chunk_rows : TP_STORE_MAINTAIN_CHUNK,
            .err = err,
            .errlen = errlen};
  tp_err rc = TP_E_OK;
  for (int i = 0; rc == TP_E_OK && i < N_STMTS; i++)
    if (sqlite3_prepare_v2(s->db, SQL[i], -1, &p.stmt[i], NULL) != SQLITE_OK)
      rc = fail(s, err, errlen, "cannot prepare a maintenance statement");
  /* Rollup first: retention deletes only what is rolled up. */
  if (rc == TP_E_OK)
    rc = repeat(&p, fold_chunk, NULL);
  if (rc == TP_E_OK && !stats->stopped)
    rc = retention(&p, now_unix_ns);
  for (int i = 0; i < N_STMTS; i++)
    sqlite3_finalize(p.stmt[i]);
  return rc;
}

/* ---- horizon ------------------------------------------------------------------------ */

static const char SQL_HORIZON[] =
    "SELECT raw_complete_since_unix_ns, rollups_complete_since_unix_ns,"
    " (SELECT min(started_unix_ns) FROM result_rows),"
    " (SELECT min(start_unix_ns) FROM rollups WHERE span_ns = 60000000000),"
    " (SELECT count(*) FROM result_rows WHERE id > watermark) FROM rollup_state WHERE id = 1";

tp_err tp__sqlite_horizon(tp_store *store, tp_store_horizon *out, char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  sqlite3_stmt *st = NULL;
  tp_err rc = TP_E_OK;
  if (s->no_schema)
    return TP_E_OK;
  if (sqlite3_prepare_v2(s->db, SQL_HORIZON, -1, &st, NULL) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW) {
    rc = fail(s, err, errlen, "cannot read the storage horizon");
    goto out;
  }
  out->raw_complete_since_unix_ns = sqlite3_column_int64(st, 0);
  out->rollups_complete_since_unix_ns = sqlite3_column_int64(st, 1);
  for (int col = 2; col <= 3; col++) {
    tp_store_opt *o =
        col == 2 ? &out->oldest_raw_started_unix_ns : &out->oldest_rollup_start_unix_ns;
    if (sqlite3_column_type(st, col) != SQLITE_NULL)
      *o = (tp_store_opt){.set = true, .v = sqlite3_column_int64(st, col)};
  }
  out->results_not_rolled_up = (uint64_t)sqlite3_column_int64(st, 4);
out:
  sqlite3_finalize(st);
  return rc;
}
