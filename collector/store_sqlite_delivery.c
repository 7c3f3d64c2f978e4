/* store_sqlite_delivery.c - the SQLite backend's delivery accounting: drop reports
 * and per-spool counters (schema version 4).
 *
 * The counters are updated in the same transaction as the results they count, and
 * only with what a batch newly added, so a re-sent batch changes nothing and the
 * counters always equal what a scan of the rows would give. They exist so that
 * "who went silent, who lost what" is answered from one row per spool instead of
 * a scan over every result. */
#include "store_sqlite_internal.h"

static const char SQL_INSERT_DROP[] =
    "INSERT INTO drops (agent_id, instance_id, drop_id, received_unix_ns, count, reason,"
    " first_seq, last_seq, first_unix_ns, last_unix_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (agent_id, instance_id, drop_id) DO NOTHING";
static const char SQL_UPSERT_SPOOL[] =
    "INSERT INTO spools (agent_id, instance_id, first_received_unix_ns, last_received_unix_ns,"
    " last_started_unix_ns, results, max_seq, dropped, dropped_with_seq)"
    " VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (agent_id, instance_id) DO UPDATE SET"
    " last_received_unix_ns = max(last_received_unix_ns, excluded.last_received_unix_ns),"
    " last_started_unix_ns = max(last_started_unix_ns, excluded.last_started_unix_ns),"
    " results = results + excluded.results, max_seq = max(max_seq, excluded.max_seq),"
    " dropped = dropped + excluded.dropped,"
    " dropped_with_seq = dropped_with_seq + excluded.dropped_with_seq";
static const char SQL_SCAN_SPOOLS[] =
    "SELECT agent_id, instance_id, first_received_unix_ns, last_received_unix_ns,"
    " last_started_unix_ns, results, max_seq, dropped, dropped_with_seq FROM spools"
    " ORDER BY agent_id, first_received_unix_ns, instance_id";
static const char SQL_SCAN_DROPS[] =
    "SELECT agent_id, instance_id, drop_id, count, reason, first_seq, last_seq, first_unix_ns,"
    " last_unix_ns FROM drops WHERE last_unix_ns >= ?1"
    " ORDER BY agent_id, first_unix_ns, instance_id, drop_id";

static tp_err prepare_one(sqlite_store *s, const char *sql, sqlite3_stmt **out, char *err,
                          size_t errlen) {
  if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot prepare delivery statement");
  return TP_E_OK;
}

tp_err tp__sqlite_prepare_delivery(sqlite_store *s, bool writable, char *err, size_t errlen) {
  tp_err rc = TP_E_OK;
  if (writable) {
    rc = prepare_one(s, SQL_INSERT_DROP, &s->insert_drop, err, errlen);
    if (rc == TP_E_OK)
      rc = prepare_one(s, SQL_UPSERT_SPOOL, &s->upsert_spool, err, errlen);
  }
  if (rc == TP_E_OK)
    rc = prepare_one(s, SQL_SCAN_SPOOLS, &s->scan_spools, err, errlen);
  if (rc == TP_E_OK)
    rc = prepare_one(s, SQL_SCAN_DROPS, &s->scan_drops, err, errlen);
  return rc;
}

void tp__sqlite_finalize_delivery(sqlite_store *s) {
  sqlite3_finalize(s->insert_drop);
  sqlite3_finalize(s->upsert_spool);
  sqlite3_finalize(s->scan_spools);
  sqlite3_finalize(s->scan_drops);
}

/* Inserts one drop report; *added when it was new. */
static tp_err insert_drop(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch,
                          const Tlsprobe__V1__DropReport *d, int64_t received_unix_ns,
                          bool *added, char *err, size_t errlen) {
  binder b = {.stmt = s->insert_drop, .idx = 0, .rc = SQLITE_OK};
  bind_text(&b, batch->agent_id);
  bind_i64(&b, u64_bits(batch->instance_id));
  bind_i64(&b, u64_bits(d->drop_id));
  bind_i64(&b, received_unix_ns);
  bind_i64(&b, u64_bits(d->count));
  bind_text(&b, d->reason);
  bind_i64(&b, u64_bits(d->first_seq));
  bind_i64(&b, u64_bits(d->last_seq));
  bind_i64(&b, d->first_unix_ns);
  bind_i64(&b, d->last_unix_ns);
  int rc = b.rc == SQLITE_OK ? run(s->insert_drop) : b.rc;
  *added = rc == SQLITE_OK && sqlite3_changes(s->db) == 1;
  (void)sqlite3_clear_bindings(s->insert_drop);
  return rc == SQLITE_OK ? TP_E_OK : fail(s, err, errlen, "cannot insert drop report");
}

tp_err tp__sqlite_put_delivery(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch,
                               int64_t received_unix_ns, const tp_store_put_outcome *results,
                               uint64_t max_seq_stored, int64_t last_started_stored,
                               bool *drop_new, uint32_t *drops_stored, char *err, size_t errlen) {
  uint64_t dropped = 0, dropped_with_seq = 0;
  *drops_stored = 0;
  for (size_t i = 0; i < batch->n_drops; i++) {
    bool added = false;
    tp_err rc = insert_drop(s, batch, batch->drops[i], received_unix_ns, &added, err, errlen);
    if (rc != TP_E_OK)
      return rc;
    if (!added)
      continue;
    (*drops_stored)++;
    if (drop_new != NULL)
      drop_new[i] = true;
    dropped += batch->drops[i]->count;
    if (batch->drops[i]->first_seq != 0) {
      dropped_with_seq += batch->drops[i]->count;
      /* Numbers reported lost were given out too: a gap below them is missing. */
      if (batch->drops[i]->last_seq > max_seq_stored)
        max_seq_stored = batch->drops[i]->last_seq;
    }
  }
  if (results->results_stored == 0 && *drops_stored == 0)
    return TP_E_OK; /* a re-send: the counters already hold all of it */
  binder b = {.stmt = s->upsert_spool, .idx = 0, .rc = SQLITE_OK};
  bind_text(&b, batch->agent_id);
  bind_i64(&b, u64_bits(batch->instance_id));
  bind_i64(&b, received_unix_ns);
  bind_i64(&b, last_started_stored);
  bind_i64(&b, results->results_stored);
  bind_i64(&b, u64_bits(max_seq_stored));
  bind_i64(&b, u64_bits(dropped));
  bind_i64(&b, u64_bits(dropped_with_seq));
  int rc = b.rc == SQLITE_OK ? run(s->upsert_spool) : b.rc;
  (void)sqlite3_clear_bindings(s->upsert_spool);
  return rc == SQLITE_OK ? TP_E_OK : fail(s, err, errlen, "cannot update spool counters");
}

static uint64_t col_u64(sqlite3_stmt *stmt, int col) {
  return (uint64_t)sqlite3_column_int64(stmt, col);
}

tp_err tp__sqlite_scan_spools(tp_store *store, tp_store_spool_fn fn, void *ctx, char *err,
                              size_t errlen) {
  sqlite_store *s = from_base(store);
  if (s->no_schema)
    return TP_E_OK;
  sqlite3_stmt *st = s->scan_spools;
  tp_err rc = TP_E_OK;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *agent = sqlite3_column_text(st, 0);
    tp_store_spool_row row = {
        .agent_id = agent ? (const char *)agent : "",
        .instance_id = col_u64(st, 1),
        .first_received_unix_ns = sqlite3_column_int64(st, 2),
        .last_received_unix_ns = sqlite3_column_int64(st, 3),
        .last_started_unix_ns = sqlite3_column_int64(st, 4),
        .results = col_u64(st, 5),
        .max_seq = col_u64(st, 6),
        .dropped = col_u64(st, 7),
        .dropped_with_seq = col_u64(st, 8),
    };
    rc = fn(&row, ctx);
    if (rc != TP_E_OK)
      goto out;
  }
  if (step != SQLITE_DONE)
    rc = fail(s, err, errlen, "spool scan failed");
out:
  (void)sqlite3_reset(st);
  return rc;
}

tp_err tp__sqlite_scan_drops(tp_store *store, int64_t since_unix_ns, tp_store_drop_fn fn,
                             void *ctx, char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  if (s->no_schema)
    return TP_E_OK;
  sqlite3_stmt *st = s->scan_drops;
  tp_err rc = TP_E_OK;
  if (sqlite3_bind_int64(st, 1, since_unix_ns) != SQLITE_OK)
    return fail(s, err, errlen, "cannot bind drop scan");
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *agent = sqlite3_column_text(st, 0);
    const unsigned char *reason = sqlite3_column_text(st, 4);
    tp_store_drop_row row = {
        .agent_id = agent ? (const char *)agent : "",
        .instance_id = col_u64(st, 1),
        .drop_id = col_u64(st, 2),
        .count = col_u64(st, 3),
        .reason = reason ? (const char *)reason : "",
        .first_seq = col_u64(st, 5),
        .last_seq = col_u64(st, 6),
        .first_unix_ns = sqlite3_column_int64(st, 7),
        .last_unix_ns = sqlite3_column_int64(st, 8),
    };
    rc = fn(&row, ctx);
    if (rc != TP_E_OK)
      goto out;
  }
  if (step != SQLITE_DONE)
    rc = fail(s, err, errlen, "drop scan failed");
out:
  (void)sqlite3_reset(st);
  (void)sqlite3_clear_bindings(st);
  return rc;
}
