/* spool_sqlite.c - the durable spool: one SQLite file in WAL mode.
 *
 * Why SQLite rather than append-only segments with a CRC per record: the spool
 * needs deletes from the front (ack), deletes from the middle (the size bound
 * drops the oldest records *after* the lease), in-place replacement (a result too
 * large for the collector) and an atomic update of several things at once (a
 * lease = its batch number + sequence range + the drop reports it carries).
 * Segments would need their own compaction, index and recovery for each; SQLite
 * gives all of them, crash-safe, in a library the collector already uses.
 *
 * Durability: journal_mode=WAL, synchronous=NORMAL. Every append is its own
 * transaction; a committed transaction survives a crash of the agent (kill -9)
 * because it is in the WAL file in the page cache; only an OS crash or power
 * loss can lose the last ones (synchronous=FULL would fsync every probe result).
 * The transaction that cuts a lease is fsynced (see new_lease): a result that may
 * reach the collector keeps its number through a power loss too.
 * Numbers come from AUTOINCREMENT, which never reuses a number even after the
 * newest rows were deleted, so the collector can never mistake a new result for
 * a re-send. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_internal.h"
#include "tp_mem.h"
#include "tp_rand.h"

#define BUSY_TIMEOUT_MS 2000

static const char SQL_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS records ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  produced_unix_ns INTEGER NOT NULL,"
    "  data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS drops ("
    "  drop_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  reason TEXT NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  first_seq INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL,"
    "  first_unix_ns INTEGER NOT NULL,"
    "  last_unix_ns INTEGER NOT NULL,"
    "  batch_seq INTEGER NOT NULL DEFAULT 0);" /* 0 = not in a lease */
    "INSERT OR IGNORE INTO meta VALUES ('next_batch_seq', 1), ('lease_batch_seq', 0),"
    " ('lease_first_seq', 0), ('lease_last_seq', 0);";

enum stmt_id {
  ST_BEGIN,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_APPEND,
  ST_OLDEST_AFTER,
  ST_DELETE_RANGE,
  ST_LAST_PENDING_DROP,
  ST_MERGE_DROP,
  ST_INSERT_DROP,
  ST_GET_META,
  ST_SET_META,
  ST_RECORDS_FROM,
  ST_RECORDS_RANGE,
  ST_LEASE_DROPS,
  ST_DROPS_OF,
  ST_DELETE_DROPS_OF,
  ST_RELEASE_DROPS,
  ST_REPLACE,
  ST_LENGTH_OF,
  ST_RECORD_INFO,
  ST__COUNT
};

static const char *const SQL[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_APPEND] = "INSERT INTO records (produced_unix_ns, data) VALUES (?1, ?2)",
    [ST_OLDEST_AFTER] = "SELECT seq, produced_unix_ns, length(data) FROM records WHERE seq > ?1"
                        " ORDER BY seq",
    [ST_DELETE_RANGE] = "DELETE FROM records WHERE seq BETWEEN ?1 AND ?2",
    [ST_LAST_PENDING_DROP] = "SELECT drop_id, reason, first_seq, last_seq FROM drops"
                             " WHERE batch_seq = 0 ORDER BY drop_id DESC LIMIT 1",
    [ST_MERGE_DROP] = "UPDATE drops SET count = count + ?2, last_seq = max(last_seq, ?3),"
                      " first_unix_ns = min(first_unix_ns, ?4),"
                      " last_unix_ns = max(last_unix_ns, ?5) WHERE drop_id = ?1",
    [ST_INSERT_DROP] = "INSERT INTO drops (reason, count, first_seq, last_seq, first_unix_ns,"
                       " last_unix_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_GET_META] = "SELECT value FROM meta WHERE key = ?1",
    [ST_SET_META] = "INSERT OR REPLACE INTO meta VALUES (?1, ?2)",
    [ST_RECORDS_FROM] = "SELECT seq, produced_unix_ns, data FROM records ORDER BY seq LIMIT ?1",
    [ST_RECORDS_RANGE] = "SELECT seq, produced_unix_ns, data FROM records"
                         " WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
    [ST_LEASE_DROPS] = "UPDATE drops SET batch_seq = ?1 WHERE drop_id IN"
                       " (SELECT drop_id FROM drops WHERE batch_seq = 0 ORDER BY drop_id"
                       " LIMIT ?2)",
    [ST_DROPS_OF] = "SELECT drop_id, reason, count, first_seq, last_seq, first_unix_ns,"
                    " last_unix_ns FROM drops WHERE batch_seq = ?1 ORDER BY drop_id",
    [ST_DELETE_DROPS_OF] = "DELETE FROM drops WHERE batch_seq = ?1",
    [ST_RELEASE_DROPS] = "UPDATE drops SET batch_seq = 0 WHERE batch_seq = ?1",
    [ST_REPLACE] = "UPDATE records SET data = ?2 WHERE seq = ?1",
    [ST_LENGTH_OF] = "SELECT length(data) FROM records WHERE seq = ?1",
    [ST_RECORD_INFO] = "SELECT produced_unix_ns, length(data) FROM records WHERE seq = ?1",
};

typedef struct sql_spool {
  tp_spool base; /* first */
  sqlite3 *db;
  sqlite3_stmt *st[ST__COUNT];
  /* the persisted lease: batch 0 = none */
  uint64_t lease_batch, lease_first, lease_last;
} sql_spool;

static sql_spool *from_base(tp_spool *s) { return (sql_spool *)s; }

/* Steps a statement that returns no row, then resets it (bindings kept). */
static int run(sqlite3_stmt *stmt) {
  int rc = sqlite3_step(stmt);
  int reset = sqlite3_reset(stmt);
  return rc == SQLITE_DONE ? reset : rc;
}

static sqlite3_stmt *bound(sql_spool *q, enum stmt_id id) {
  sqlite3_stmt *stmt = q->st[id];
  (void)sqlite3_reset(stmt);
  (void)sqlite3_clear_bindings(stmt);
  return stmt;
}

static tp_err begin(sql_spool *q) {
  return run(q->st[ST_BEGIN]) == SQLITE_OK ? TP_E_OK : TP_E_IO;
}

static tp_err finish(sql_spool *q, tp_err rc) {
  if (rc == TP_E_OK && run(q->st[ST_COMMIT]) == SQLITE_OK)
    return TP_E_OK;
  (void)run(q->st[ST_ROLLBACK]);
  return TP_E_IO;
}

static tp_err get_meta(sql_spool *q, const char *key, uint64_t *value) {
  sqlite3_stmt *st = bound(q, ST_GET_META);
  tp_err rc = TP_E_IO;
  if (sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    *value = (uint64_t)sqlite3_column_int64(st, 0);
    rc = TP_E_OK;
  }
  (void)sqlite3_reset(st);
  return rc;
}

static tp_err set_meta(sql_spool *q, const char *key, uint64_t value) {
  sqlite3_stmt *st = bound(q, ST_SET_META);
  if (sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_int64(st, 2, (sqlite3_int64)value) != SQLITE_OK)
    return TP_E_IO;
  return run(st) == SQLITE_OK ? TP_E_OK : TP_E_IO;
}

static tp_err set_lease_meta(sql_spool *q, uint64_t batch, uint64_t first, uint64_t last) {
  tp_err rc = set_meta(q, "lease_batch_seq", batch);
  if (rc == TP_E_OK)
    rc = set_meta(q, "lease_first_seq", first);
  if (rc == TP_E_OK)
    rc = set_meta(q, "lease_last_seq", last);
  return rc;
}

/* ---- operations ---------------------------------------------------------------- */

static tp_err sq_append(tp_spool *s, const uint8_t *data, size_t len, int64_t produced,
                        uint64_t *seq) {
  sql_spool *q = from_base(s);
  sqlite3_stmt *st = bound(q, ST_APPEND);
  if (sqlite3_bind_int64(st, 1, produced) != SQLITE_OK ||
      sqlite3_bind_blob64(st, 2, data, len, SQLITE_STATIC) != SQLITE_OK)
    return TP_E_IO;
  int rc = run(st);
  (void)sqlite3_clear_bindings(st);
  if (rc != SQLITE_OK)
    return TP_E_IO;
  *seq = (uint64_t)sqlite3_last_insert_rowid(q->db);
  return TP_E_OK;
}

/* Inside the caller's transaction: finds and deletes the run (see discard_oldest). */
static tp_err delete_oldest_run(sql_spool *q, uint64_t after_seq, uint64_t need,
                                int64_t before_ns, tp_spool_drop *run_out, uint64_t *freed) {
  sqlite3_stmt *st = bound(q, ST_OLDEST_AFTER);
  *run_out = (tp_spool_drop){0};
  *freed = 0;
  if (sqlite3_bind_int64(st, 1, (sqlite3_int64)after_seq) != SQLITE_OK)
    return TP_E_IO;
  int step = SQLITE_DONE;
  while (*freed < need && (step = sqlite3_step(st)) == SQLITE_ROW) {
    uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
    if (run_out->count > 0 && seq != run_out->last_seq + 1)
      break; /* one contiguous run per drop report */
    if (sqlite3_column_int64(st, 1) >= before_ns)
      break;
    if (run_out->count == 0) {
      run_out->first_seq = seq;
      run_out->first_unix_ns = sqlite3_column_int64(st, 1);
    }
    run_out->last_seq = seq;
    run_out->last_unix_ns = sqlite3_column_int64(st, 1);
    run_out->count++;
    *freed += (uint64_t)sqlite3_column_int64(st, 2);
  }
  (void)sqlite3_reset(st);
  if (step != SQLITE_ROW && step != SQLITE_DONE)
    return TP_E_IO;
  if (run_out->count == 0)
    return TP_E_OK;
  sqlite3_stmt *del = bound(q, ST_DELETE_RANGE);
  if (sqlite3_bind_int64(del, 1, (sqlite3_int64)run_out->first_seq) != SQLITE_OK ||
      sqlite3_bind_int64(del, 2, (sqlite3_int64)run_out->last_seq) != SQLITE_OK ||
      run(del) != SQLITE_OK) {
    *run_out = (tp_spool_drop){0};
    *freed = 0;
    return TP_E_IO;
  }
  return TP_E_OK;
}

static tp_err sq_add_drop(tp_spool *s, const tp_spool_drop *drop);

static tp_err sq_discard_oldest(tp_spool *s, uint64_t after_seq, uint64_t need, int64_t before_ns,
                                const char *reason, tp_spool_drop *run, uint64_t *freed) {
  sql_spool *q = from_base(s);
  tp_err rc = begin(q);
  if (rc != TP_E_OK)
    return rc;
  rc = delete_oldest_run(q, after_seq, need, before_ns, run, freed);
  if (rc == TP_E_OK && run->count > 0) {
    run->reason = reason;
    rc = sq_add_drop(s, run);
  }
  rc = finish(q, rc);
  if (rc != TP_E_OK) {
    *run = (tp_spool_drop){0};
    *freed = 0;
  }
  return rc;
}

static tp_err sq_forfeit(tp_spool *s, uint64_t seq, const char *reason, size_t *len) {
  sql_spool *q = from_base(s);
  tp_err rc = begin(q);
  if (rc != TP_E_OK)
    return rc;
  sqlite3_stmt *st = bound(q, ST_RECORD_INFO);
  int step = sqlite3_bind_int64(st, 1, (sqlite3_int64)seq) == SQLITE_OK ? sqlite3_step(st)
                                                                          : SQLITE_ERROR;
  tp_spool_drop d = {.count = 1, .reason = reason, .first_seq = seq, .last_seq = seq};
  if (step == SQLITE_ROW) {
    d.first_unix_ns = d.last_unix_ns = sqlite3_column_int64(st, 0);
    *len = (size_t)sqlite3_column_int64(st, 1);
  }
  (void)sqlite3_reset(st);
  if (step == SQLITE_DONE) {
    (void)finish(q, TP_E_IO); /* roll back: nothing changed */
    return TP_E_NOTFOUND;
  }
  rc = step == SQLITE_ROW ? TP_E_OK : TP_E_IO;
  sqlite3_stmt *del = bound(q, ST_DELETE_RANGE);
  if (rc == TP_E_OK && (sqlite3_bind_int64(del, 1, (sqlite3_int64)seq) != SQLITE_OK ||
                        sqlite3_bind_int64(del, 2, (sqlite3_int64)seq) != SQLITE_OK ||
                        run(del) != SQLITE_OK))
    rc = TP_E_IO;
  if (rc == TP_E_OK)
    rc = sq_add_drop(s, &d);
  return finish(q, rc);
}

/* The newest pending drop report, when the new one continues it. */
static bool find_mergeable(sql_spool *q, const tp_spool_drop *d, int64_t *drop_id) {
  sqlite3_stmt *st = bound(q, ST_LAST_PENDING_DROP);
  bool found = false;
  if (sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *reason = sqlite3_column_text(st, 1);
    uint64_t first = (uint64_t)sqlite3_column_int64(st, 2);
    uint64_t last = (uint64_t)sqlite3_column_int64(st, 3);
    bool same = reason != NULL && strcmp((const char *)reason, d->reason) == 0;
    bool numbered_ok = (first == 0 && d->first_seq == 0) ||
                       (first != 0 && d->first_seq == last + 1);
    if (same && numbered_ok) {
      *drop_id = sqlite3_column_int64(st, 0);
      found = true;
    }
  }
  (void)sqlite3_reset(st);
  return found;
}

static tp_err sq_add_drop(tp_spool *s, const tp_spool_drop *d) {
  sql_spool *q = from_base(s);
  int64_t id = 0;
  sqlite3_stmt *st;
  int rc = SQLITE_OK;
  if (find_mergeable(q, d, &id)) {
    st = bound(q, ST_MERGE_DROP);
    rc |= sqlite3_bind_int64(st, 1, id);
    rc |= sqlite3_bind_int64(st, 2, (sqlite3_int64)d->count);
    rc |= sqlite3_bind_int64(st, 3, (sqlite3_int64)d->last_seq);
    rc |= sqlite3_bind_int64(st, 4, d->first_unix_ns);
    rc |= sqlite3_bind_int64(st, 5, d->last_unix_ns);
  } else {
    st = bound(q, ST_INSERT_DROP);
    rc |= sqlite3_bind_text(st, 1, d->reason, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(st, 2, (sqlite3_int64)d->count);
    rc |= sqlite3_bind_int64(st, 3, (sqlite3_int64)d->first_seq);
    rc |= sqlite3_bind_int64(st, 4, (sqlite3_int64)d->last_seq);
    rc |= sqlite3_bind_int64(st, 5, d->first_unix_ns);
    rc |= sqlite3_bind_int64(st, 6, d->last_unix_ns);
  }
  if (rc == SQLITE_OK)
    rc = run(st);
  (void)sqlite3_clear_bindings(st);
  return rc == SQLITE_OK ? TP_E_OK : TP_E_IO;
}

/* Reads records from a prepared and bound statement into the lease. With
 * max_bytes, stops before the record that would exceed it (never before the first). */
static tp_err read_records(sqlite3_stmt *st, size_t max_bytes, tp_spool_lease *l) {
  size_t cap = 0;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    size_t len = (size_t)sqlite3_column_bytes(st, 2);
    if (max_bytes != 0 && l->n_records > 0 && l->bytes + len > max_bytes)
      break;
    if (l->n_records == cap) {
      cap = cap ? cap * 2 : 64;
      l->records = tp_xrealloc(l->records, cap * sizeof(*l->records));
    }
    const void *blob = sqlite3_column_blob(st, 2);
    tp_spool_record *r = &l->records[l->n_records++];
    r->seq = (uint64_t)sqlite3_column_int64(st, 0);
    r->produced_unix_ns = sqlite3_column_int64(st, 1);
    r->len = len;
    r->data = tp_xmalloc(len ? len : 1);
    if (len > 0)
      memcpy(r->data, blob, len);
    l->bytes += len;
  }
  tp_err rc = (step == SQLITE_ROW || step == SQLITE_DONE) ? TP_E_OK : TP_E_IO;
  (void)sqlite3_reset(st);
  return rc;
}

static const char *static_reason(const unsigned char *text) {
  static const char *const known[] = {TP_SPOOL_DROP_FULL, TP_SPOOL_DROP_ERROR,
                                      TP_SPOOL_DROP_INVALID, TP_SPOOL_DROP_TOO_OLD};
  for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
    if (text != NULL && strcmp((const char *)text, known[i]) == 0)
      return known[i];
  return TP_SPOOL_DROP_ERROR;
}

static tp_err read_drops(sql_spool *q, uint64_t batch, tp_spool_lease *l) {
  sqlite3_stmt *st = bound(q, ST_DROPS_OF);
  size_t cap = 0;
  int step;
  if (sqlite3_bind_int64(st, 1, (sqlite3_int64)batch) != SQLITE_OK)
    return TP_E_IO;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (l->n_drops == cap) {
      cap = cap ? cap * 2 : 8;
      l->drops = tp_xrealloc(l->drops, cap * sizeof(*l->drops));
    }
    l->drops[l->n_drops++] = (tp_spool_drop){
        .drop_id = (uint64_t)sqlite3_column_int64(st, 0),
        .reason = static_reason(sqlite3_column_text(st, 1)),
        .count = (uint64_t)sqlite3_column_int64(st, 2),
        .first_seq = (uint64_t)sqlite3_column_int64(st, 3),
        .last_seq = (uint64_t)sqlite3_column_int64(st, 4),
        .first_unix_ns = sqlite3_column_int64(st, 5),
        .last_unix_ns = sqlite3_column_int64(st, 6),
    };
  }
  tp_err rc = step == SQLITE_DONE ? TP_E_OK : TP_E_IO;
  (void)sqlite3_reset(st);
  return rc;
}

/* Cuts a new lease and persists it: batch number, range, drop reports. Its commit is
 * fsynced (synchronous=FULL for this one transaction): once a result can reach the
 * collector, its number must survive even an OS crash -- a number rolled back by a
 * power loss would be given to a new result, which the collector would then take for
 * a re-send and discard. The WAL is sequential, so this also makes every append
 * before it durable: one fsync per batch, not per result. */
static tp_err new_lease_tx(sql_spool *q, size_t max_records, size_t max_bytes,
                           tp_spool_lease *l);

static tp_err new_lease(sql_spool *q, size_t max_records, size_t max_bytes, tp_spool_lease *l) {
  if (sqlite3_exec(q->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
    return TP_E_IO;
  tp_err rc = new_lease_tx(q, max_records, max_bytes, l);
  if (sqlite3_exec(q->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK &&
      rc == TP_E_OK)
    rc = TP_E_IO;
  return rc;
}

static tp_err new_lease_tx(sql_spool *q, size_t max_records, size_t max_bytes,
                           tp_spool_lease *l) {
  uint64_t next_batch = 0;
  tp_err rc = begin(q);
  if (rc != TP_E_OK)
    return rc;
  sqlite3_stmt *st = bound(q, ST_RECORDS_FROM);
  rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)max_records) == SQLITE_OK ? TP_E_OK : TP_E_IO;
  if (rc == TP_E_OK)
    rc = read_records(st, max_bytes, l);
  if (rc == TP_E_OK)
    rc = get_meta(q, "next_batch_seq", &next_batch);
  sqlite3_stmt *lease_drops = bound(q, ST_LEASE_DROPS);
  if (rc == TP_E_OK &&
      (sqlite3_bind_int64(lease_drops, 1, (sqlite3_int64)next_batch) != SQLITE_OK ||
       sqlite3_bind_int64(lease_drops, 2, TP_SPOOL_MAX_LEASE_DROPS) != SQLITE_OK ||
       run(lease_drops) != SQLITE_OK))
    rc = TP_E_IO;
  if (rc == TP_E_OK)
    rc = read_drops(q, next_batch, l);
  if (rc == TP_E_OK && l->n_records == 0 && l->n_drops == 0) {
    (void)finish(q, TP_E_IO); /* nothing to send: roll back, no batch number used */
    return TP_E_OK;
  }
  uint64_t first = l->n_records ? l->records[0].seq : 0;
  uint64_t last = l->n_records ? l->records[l->n_records - 1].seq : 0;
  if (rc == TP_E_OK)
    rc = set_meta(q, "next_batch_seq", next_batch + 1);
  if (rc == TP_E_OK)
    rc = set_lease_meta(q, next_batch, first, last);
  rc = finish(q, rc);
  if (rc != TP_E_OK)
    return rc;
  l->batch_seq = next_batch;
  q->lease_batch = next_batch;
  q->lease_first = first;
  q->lease_last = last;
  q->base.lease_last_seq = last;
  return TP_E_OK;
}

/* The persisted lease, exactly as it was cut (minus records acked since: none). */
static tp_err old_lease(sql_spool *q, tp_spool_lease *l) {
  l->batch_seq = q->lease_batch;
  tp_err rc = TP_E_OK;
  if (q->lease_first != 0) {
    sqlite3_stmt *st = bound(q, ST_RECORDS_RANGE);
    rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)q->lease_first) == SQLITE_OK &&
                 sqlite3_bind_int64(st, 2, (sqlite3_int64)q->lease_last) == SQLITE_OK
             ? read_records(st, 0, l)
             : TP_E_IO;
  }
  if (rc == TP_E_OK)
    rc = read_drops(q, q->lease_batch, l);
  return rc;
}

static tp_err end_lease(sql_spool *q, const tp_spool_lease *l, bool delete);

static tp_err sq_lease(tp_spool *s, size_t max_records, size_t max_bytes, tp_spool_lease **out) {
  sql_spool *q = from_base(s);
  tp_spool_lease *l = tp_xcalloc(1, sizeof(*l));
  tp_err rc = TP_E_OK;
  if (q->lease_batch != 0) {
    rc = old_lease(q, l);
    /* A persisted lease with nothing left in it (it was acked, then the meta
     * update was lost with a crash) is over: cut a new one. */
    if (rc == TP_E_OK && l->n_records == 0 && l->n_drops == 0)
      rc = end_lease(q, l, true);
  }
  if (rc == TP_E_OK && q->lease_batch == 0)
    rc = new_lease(q, max_records, max_bytes, l);
  if (rc != TP_E_OK || (l->n_records == 0 && l->n_drops == 0)) {
    tp_spool_lease_free(l);
    return rc;
  }
  *out = l;
  return TP_E_OK;
}

static tp_err end_lease(sql_spool *q, const tp_spool_lease *l, bool delete) {
  tp_err rc = begin(q);
  if (rc != TP_E_OK)
    return rc;
  if (delete && l->n_records > 0) {
    sqlite3_stmt *del = bound(q, ST_DELETE_RANGE);
    if (sqlite3_bind_int64(del, 1, (sqlite3_int64)q->lease_first) != SQLITE_OK ||
        sqlite3_bind_int64(del, 2, (sqlite3_int64)q->lease_last) != SQLITE_OK ||
        run(del) != SQLITE_OK)
      rc = TP_E_IO;
  }
  sqlite3_stmt *drops = bound(q, delete ? ST_DELETE_DROPS_OF : ST_RELEASE_DROPS);
  if (rc == TP_E_OK && (sqlite3_bind_int64(drops, 1, (sqlite3_int64)q->lease_batch) != SQLITE_OK ||
                        run(drops) != SQLITE_OK))
    rc = TP_E_IO;
  if (rc == TP_E_OK)
    rc = set_lease_meta(q, 0, 0, 0);
  rc = finish(q, rc);
  if (rc == TP_E_OK)
    q->lease_batch = q->lease_first = q->lease_last = 0;
  return rc;
}

static tp_err sq_ack(tp_spool *s, const tp_spool_lease *l) {
  return end_lease(from_base(s), l, true);
}

static tp_err sq_dissolve(tp_spool *s, const tp_spool_lease *l) {
  return end_lease(from_base(s), l, false);
}

static tp_err sq_replace(tp_spool *s, uint64_t seq, const uint8_t *data, size_t len,
                         size_t *old_len) {
  sql_spool *q = from_base(s);
  sqlite3_stmt *st = bound(q, ST_LENGTH_OF);
  if (sqlite3_bind_int64(st, 1, (sqlite3_int64)seq) != SQLITE_OK)
    return TP_E_IO;
  int step = sqlite3_step(st);
  *old_len = step == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
  (void)sqlite3_reset(st);
  if (step == SQLITE_DONE)
    return TP_E_NOTFOUND;
  if (step != SQLITE_ROW)
    return TP_E_IO;
  sqlite3_stmt *up = bound(q, ST_REPLACE);
  if (sqlite3_bind_int64(up, 1, (sqlite3_int64)seq) != SQLITE_OK ||
      sqlite3_bind_blob64(up, 2, data, len, SQLITE_STATIC) != SQLITE_OK)
    return TP_E_IO;
  int rc = run(up);
  (void)sqlite3_clear_bindings(up);
  return rc == SQLITE_OK ? TP_E_OK : TP_E_IO;
}

static void sq_close(tp_spool *s) {
  sql_spool *q = from_base(s);
  for (int i = 0; i < ST__COUNT; i++)
    sqlite3_finalize(q->st[i]);
  (void)sqlite3_close_v2(q->db);
  free(q);
}

static const tp_spool_ops sql_ops = {
    .append = sq_append,
    .discard_oldest = sq_discard_oldest,
    .forfeit = sq_forfeit,
    .add_drop = sq_add_drop,
    .lease = sq_lease,
    .ack = sq_ack,
    .dissolve = sq_dissolve,
    .replace = sq_replace,
    .close = sq_close,
};

/* ---- open ---------------------------------------------------------------------- */

static tp_err fail(sql_spool *q, const char *path, const char *what, char *err, size_t errlen) {
  snprintf(err, errlen, "spool %s: %s: %s", path, what,
           q->db ? sqlite3_errmsg(q->db) : "out of memory");
  return TP_E_IO;
}

/* The spool's identity: created once, with the file. */
static tp_err load_identity(sql_spool *q) {
  uint64_t id = 0;
  if (get_meta(q, "spool_id", &id) == TP_E_OK) {
    q->base.id = id;
    return TP_E_OK;
  }
  if (tp_random_fill(&id, sizeof(id)) != 0)
    return TP_E_IO;
  if (set_meta(q, "spool_id", id) != TP_E_OK)
    return TP_E_IO;
  q->base.id = id;
  return TP_E_OK;
}

static tp_err load_state(sql_spool *q) {
  sqlite3_stmt *st = NULL;
  tp_err rc = TP_E_IO;
  if (sqlite3_prepare_v2(q->db, "SELECT count(*), coalesce(sum(length(data)), 0) FROM records",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    q->base.records = (uint64_t)sqlite3_column_int64(st, 0);
    q->base.bytes = (uint64_t)sqlite3_column_int64(st, 1);
    rc = TP_E_OK;
  }
  sqlite3_finalize(st);
  if (rc == TP_E_OK)
    rc = get_meta(q, "lease_batch_seq", &q->lease_batch);
  if (rc == TP_E_OK)
    rc = get_meta(q, "lease_first_seq", &q->lease_first);
  if (rc == TP_E_OK)
    rc = get_meta(q, "lease_last_seq", &q->lease_last);
  q->base.lease_last_seq = q->lease_batch ? q->lease_last : 0;
  return rc;
}

tp_err tp_spool_open_sqlite(const char *path, uint64_t max_bytes, tp_spool **out, char *err,
                            size_t errlen) {
  *out = NULL;
  sql_spool *q = tp_xcalloc(1, sizeof(*q));
  tp__spool_init(&q->base, &sql_ops, max_bytes);
  snprintf(q->base.description, sizeof(q->base.description), "sqlite:%s", path);
  tp_err rc = TP_E_IO;
  if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
      SQLITE_OK) {
    rc = fail(q, path, "cannot open", err, errlen);
    goto out;
  }
  /* EXCLUSIVE: the first write transaction takes the file's lock and keeps it
   * until close, so a second agent on the same spool fails now instead of both
   * leasing the same results (and WAL then needs no shared-memory file). */
  if (sqlite3_exec(q->db, "PRAGMA locking_mode=EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK) {
    rc = fail(q, path, "cannot set exclusive locking", err, errlen);
    goto out;
  }
  int lock = sqlite3_exec(q->db, "PRAGMA journal_mode=WAL; BEGIN IMMEDIATE; COMMIT", NULL, NULL,
                          NULL);
  if (lock == SQLITE_BUSY || lock == SQLITE_LOCKED) {
    snprintf(err, errlen, "spool %s: in use by another process (two agents with one spool path?)",
             path);
    rc = TP_E_CONFIG;
    goto out;
  }
  if (lock != SQLITE_OK || sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
      sqlite3_exec(q->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
    rc = fail(q, path, "cannot set WAL mode (is it a tlsprobe spool?)", err, errlen);
    goto out;
  }
  if (sqlite3_exec(q->db, SQL_SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
    rc = fail(q, path, "cannot create the spool tables (is it a tlsprobe spool?)", err, errlen);
    goto out;
  }
  for (int i = 0; i < ST__COUNT; i++) {
    if (sqlite3_prepare_v3(q->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) !=
        SQLITE_OK) {
      rc = fail(q, path, "cannot prepare a statement (is it a tlsprobe spool?)", err, errlen);
      goto out;
    }
  }
  if (load_identity(q) != TP_E_OK || load_state(q) != TP_E_OK) {
    rc = fail(q, path, "cannot read the spool's state", err, errlen);
    goto out;
  }
  *out = &q->base;
  return TP_E_OK;
out:
  sq_close(&q->base);
  return rc;
}
