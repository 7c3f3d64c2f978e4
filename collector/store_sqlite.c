/* store_sqlite.c - the SQLite storage backend.
 *
 * Owns the sqlite3 connection and every prepared statement (prepared once at open,
 * reset after each use). Durability: WAL + synchronous=NORMAL, i.e. a committed
 * batch survives a collector crash; an OS crash may lose the last transactions, and
 * the agent then re-sends them (the ack is only sent after COMMIT returned).
 *
 * Schema versions live in PRAGMA user_version; `migrations[i]` upgrades version i to
 * i+1 and runs inside one IMMEDIATE transaction, so two collectors starting on the
 * same file cannot both migrate. A file newer than this binary is refused.
 *
 * uint64 protobuf fields that may exceed INT64_MAX (instance_id, result_seq) are
 * stored as the int64 with the same bit pattern; durations are validated to be at
 * most one hour by ingest, so they are stored as plain positive integers. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chain_json.h"
#include "outcome.h"
#include "store_impl.h"
#include "tp_buf.h"
#include "tp_mem.h"

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 5000
/* Chain JSON is built from at most max_body_bytes of input; escaping can grow it
 * six-fold, so this only stops a bug, never a legal batch. */
#define CHAIN_JSON_CAP ((size_t)2 * 1024 * 1024 * 1024)

static const char *const migrations[SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE batches ("
    "  agent_id TEXT NOT NULL,"
    "  instance_id INTEGER NOT NULL,"
    "  batch_seq INTEGER NOT NULL,"
    "  received_unix_ns INTEGER NOT NULL,"
    "  result_count INTEGER NOT NULL,"
    "  PRIMARY KEY (agent_id, instance_id, batch_seq));"
    "CREATE TABLE results ("
    "  id INTEGER PRIMARY KEY,"
    "  received_unix_ns INTEGER NOT NULL,"
    "  agent_id TEXT NOT NULL,"
    "  instance_id INTEGER NOT NULL,"
    "  batch_seq INTEGER NOT NULL,"
    "  region TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  host TEXT NOT NULL,"
    "  port INTEGER NOT NULL,"
    "  sni TEXT NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  address TEXT NOT NULL,"
    "  result_seq INTEGER NOT NULL,"
    "  started_unix_ns INTEGER NOT NULL,"
    "  dns_ns INTEGER NOT NULL,"
    "  connect_ns INTEGER NOT NULL,"
    "  handshake_ns INTEGER NOT NULL,"
    "  total_ns INTEGER NOT NULL,"
    "  loop_lag_ns INTEGER NOT NULL,"
    "  ok INTEGER NOT NULL,"
    "  error_class TEXT NOT NULL,"
    "  error_detail TEXT NOT NULL,"
    "  tls_version TEXT NOT NULL,"
    "  cipher TEXT NOT NULL,"
    "  grp TEXT NOT NULL,"
    "  alpn TEXT NOT NULL,"
    "  resumed INTEGER NOT NULL,"
    "  hello_retry_request INTEGER NOT NULL,"
    "  server_signature_algorithm TEXT NOT NULL,"
    "  chain_json TEXT NOT NULL,"
    "  days_to_earliest_expiry INTEGER NOT NULL);"
    "CREATE INDEX results_started ON results (started_unix_ns);"
    "CREATE INDEX results_series ON results (target, profile, region, started_unix_ns);",
};

static const char SQL_INSERT_BATCH[] =
    "INSERT INTO batches (agent_id, instance_id, batch_seq, received_unix_ns, result_count)"
    " VALUES (?, ?, ?, ?, ?)";
static const char SQL_INSERT_RESULT[] =
    "INSERT INTO results (received_unix_ns, agent_id, instance_id, batch_seq, region, target,"
    " host, port, sni, profile, address, result_seq, started_unix_ns, dns_ns, connect_ns,"
    " handshake_ns, total_ns, loop_lag_ns, ok, error_class, error_detail, tls_version, cipher,"
    " grp, alpn, resumed, hello_retry_request, server_signature_algorithm, chain_json,"
    " days_to_earliest_expiry)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?, ?)";
static const char SQL_SCAN_ALL[] =
    "SELECT target, profile, region, ok, error_class, handshake_ns, loop_lag_ns FROM results"
    " WHERE started_unix_ns >= ?1 ORDER BY target, profile, region";
static const char SQL_SCAN_TARGET[] =
    "SELECT target, profile, region, ok, error_class, handshake_ns, loop_lag_ns FROM results"
    " WHERE started_unix_ns >= ?1 AND target = ?2 ORDER BY target, profile, region";
static const char SQL_LATEST[] =
    "SELECT tls_version, cipher, grp, alpn, error_detail, chain_json, days_to_earliest_expiry,"
    " started_unix_ns FROM results"
    " WHERE target = ?1 AND profile = ?2 AND region = ?3 AND started_unix_ns >= ?4"
    " ORDER BY started_unix_ns DESC, id DESC LIMIT 1";

typedef struct sqlite_store {
  tp_store base; /* first: tp_store * <-> sqlite_store * */
  sqlite3 *db;
  char *path;
  bool no_schema; /* read-only open of a file without tables: reads see nothing */
  sqlite3_stmt *begin;
  sqlite3_stmt *commit;
  sqlite3_stmt *rollback;
  sqlite3_stmt *insert_batch;
  sqlite3_stmt *insert_result;
  sqlite3_stmt *scan_all;
  sqlite3_stmt *scan_target;
  sqlite3_stmt *latest;
  tp_buf chain; /* scratch for chain_json, reused across results */
} sqlite_store;

static sqlite_store *from_base(tp_store *store) { return (sqlite_store *)store; }

static sqlite3_int64 u64_bits(uint64_t v) {
  sqlite3_int64 out;
  memcpy(&out, &v, sizeof(out));
  return out;
}

static tp_err fail(sqlite_store *s, char *err, size_t errlen, const char *what) {
  snprintf(err, errlen, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
  return TP_E_STORE;
}

/* Runs a statement that returns no rows and resets it; returns the SQLite code. */
static int run(sqlite3_stmt *stmt) {
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

static void bind_text(binder *b, const char *s) {
  b->idx++;
  if (b->rc == SQLITE_OK)
    b->rc = sqlite3_bind_text(b->stmt, b->idx, s ? s : "", -1, SQLITE_STATIC);
}

static void bind_i64(binder *b, sqlite3_int64 v) {
  b->idx++;
  if (b->rc == SQLITE_OK)
    b->rc = sqlite3_bind_int64(b->stmt, b->idx, v);
}

/* ---- open / migrate ---------------------------------------------------------- */

static tp_err read_user_version(sqlite_store *s, int *version, char *err, size_t errlen) {
  sqlite3_stmt *stmt = NULL;
  tp_err rc = TP_E_OK;
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK ||
      sqlite3_step(stmt) != SQLITE_ROW) {
    rc = fail(s, err, errlen, "cannot read schema version");
    goto out;
  }
  *version = sqlite3_column_int(stmt, 0);
out:
  sqlite3_finalize(stmt);
  return rc;
}

static tp_err check_not_newer(sqlite_store *s, int version, char *err, size_t errlen) {
  if (version <= SCHEMA_VERSION && version >= 0)
    return TP_E_OK;
  snprintf(err, errlen,
           "%s: database schema version %d is newer than this collector supports (%d);"
           " upgrade tlsprobe-collector",
           s->path, version, SCHEMA_VERSION);
  return TP_E_STORE;
}

static tp_err migrate(sqlite_store *s, char *err, size_t errlen) {
  int version = 0;
  char sql[64];
  tp_err rc = TP_E_OK;
  if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot start migration");
  /* Read the version inside the write transaction: another process may have
   * migrated between our open and now. */
  rc = read_user_version(s, &version, err, errlen);
  if (rc == TP_E_OK)
    rc = check_not_newer(s, version, err, errlen);
  for (int v = version; rc == TP_E_OK && v < SCHEMA_VERSION; v++) {
    if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK)
      rc = fail(s, err, errlen, "schema migration failed");
  }
  if (rc == TP_E_OK && version < SCHEMA_VERSION) {
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
      rc = fail(s, err, errlen, "cannot set schema version");
  }
  if (rc == TP_E_OK && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    rc = fail(s, err, errlen, "cannot commit migration");
  if (rc != TP_E_OK)
    (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* best effort; error already set */
  return rc;
}

static tp_err set_pragmas(sqlite_store *s, char *err, size_t errlen) {
  if (sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS) != SQLITE_OK)
    return fail(s, err, errlen, "cannot set busy timeout");
  if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot enable WAL");
  if (sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot set synchronous=NORMAL");
  return TP_E_OK;
}

static tp_err prepare(sqlite_store *s, const char *sql, sqlite3_stmt **out, char *err,
                      size_t errlen) {
  if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot prepare statement");
  return TP_E_OK;
}

static tp_err prepare_all(sqlite_store *s, tp_store_mode mode, char *err, size_t errlen) {
  tp_err rc = TP_E_OK;
  if (mode == TP_STORE_READWRITE) {
    if (rc == TP_E_OK)
      rc = prepare(s, "BEGIN IMMEDIATE", &s->begin, err, errlen);
    if (rc == TP_E_OK)
      rc = prepare(s, "COMMIT", &s->commit, err, errlen);
    if (rc == TP_E_OK)
      rc = prepare(s, "ROLLBACK", &s->rollback, err, errlen);
    if (rc == TP_E_OK)
      rc = prepare(s, SQL_INSERT_BATCH, &s->insert_batch, err, errlen);
    if (rc == TP_E_OK)
      rc = prepare(s, SQL_INSERT_RESULT, &s->insert_result, err, errlen);
  }
  if (rc == TP_E_OK)
    rc = prepare(s, SQL_SCAN_ALL, &s->scan_all, err, errlen);
  if (rc == TP_E_OK)
    rc = prepare(s, SQL_SCAN_TARGET, &s->scan_target, err, errlen);
  if (rc == TP_E_OK)
    rc = prepare(s, SQL_LATEST, &s->latest, err, errlen);
  return rc;
}

/* Read-only: never migrate. A file without our tables (user_version 0, e.g. empty)
 * reads as "no results"; an older schema would need the serving collector to
 * migrate it first. */
static tp_err check_readonly_schema(sqlite_store *s, char *err, size_t errlen) {
  int version = 0;
  tp_err rc = read_user_version(s, &version, err, errlen);
  if (rc == TP_E_OK)
    rc = check_not_newer(s, version, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  if (version == 0) {
    s->no_schema = true;
    return TP_E_OK;
  }
  if (version != SCHEMA_VERSION) {
    snprintf(err, errlen,
             "%s: schema version %d is older than %d; start the collector once to migrate", s->path,
             version, SCHEMA_VERSION);
    return TP_E_STORE;
  }
  return TP_E_OK;
}

static void sqlite_close(tp_store *store);
static const tp_store_ops sqlite_ops;

tp_err tp_store_open_sqlite(const char *path, tp_store_mode mode, tp_store **out, char *err,
                            size_t errlen) {
  struct stat st;
  tp_err rc = TP_E_OK;
  *out = NULL;
  sqlite_store *s = tp_xcalloc(1, sizeof(*s));
  s->base.ops = &sqlite_ops;
  s->path = tp_xstrdup(path);
  tp_buf_init(&s->chain, CHAIN_JSON_CAP);
  if (mode == TP_STORE_READONLY && stat(path, &st) != 0) {
    snprintf(err, errlen, "%s: cannot open database: %s", path, strerror(errno));
    rc = errno == ENOENT ? TP_E_NOTFOUND : TP_E_STORE;
    goto out;
  }
  int flags =
      mode == TP_STORE_READONLY ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  /* sqlite3_open_v2 allocates a handle even on failure; it is closed in sqlite_close. */
  if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
    rc = fail(s, err, errlen, "cannot open database");
    goto out;
  }
  if (sqlite3_extended_result_codes(s->db, 1) != SQLITE_OK) {
    rc = fail(s, err, errlen, "cannot enable extended result codes");
    goto out;
  }
  if (mode == TP_STORE_READWRITE) {
    rc = set_pragmas(s, err, errlen);
    if (rc == TP_E_OK)
      rc = migrate(s, err, errlen);
  } else {
    rc = sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS) == SQLITE_OK
             ? check_readonly_schema(s, err, errlen)
             : fail(s, err, errlen, "cannot set busy timeout");
  }
  if (rc == TP_E_OK && !s->no_schema)
    rc = prepare_all(s, mode, err, errlen);
out:
  if (rc != TP_E_OK) {
    sqlite_close(&s->base);
    return rc;
  }
  *out = &s->base;
  return TP_E_OK;
}

static void sqlite_close(tp_store *store) {
  sqlite_store *s = from_base(store);
  sqlite3_stmt *stmts[] = {s->begin,         s->commit,   s->rollback,    s->insert_batch,
                           s->insert_result, s->scan_all, s->scan_target, s->latest};
  for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
    sqlite3_finalize(stmts[i]); /* returns the last step's error, not a finalize failure */
  /* With every statement finalized, close cannot be SQLITE_BUSY; sqlite3_close_v2
   * would defer instead of failing if one was missed. */
  (void)sqlite3_close_v2(s->db);
  tp_buf_free(&s->chain);
  free(s->path);
  free(s);
}

/* ---- write path -------------------------------------------------------------- */

static tp_err insert_result(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch,
                            const Tlsprobe__V1__ProbeResult *r, int64_t received_unix_ns, char *err,
                            size_t errlen) {
  tp_buf_reset(&s->chain);
  if (tp_chain_json_encode(r->chain, r->n_chain, &s->chain) != TP_E_OK) {
    snprintf(err, errlen, "%s: certificate chain too large to encode", s->path);
    return TP_E_STORE;
  }
  const char *error_class = tp_outcome_name((int)r->error_class);
  binder b = {.stmt = s->insert_result, .idx = 0, .rc = SQLITE_OK};
  bind_i64(&b, received_unix_ns);
  bind_text(&b, batch->agent_id); /* ingest checked r->agent_id is empty or equal */
  bind_i64(&b, u64_bits(batch->instance_id));
  bind_i64(&b, u64_bits(batch->batch_seq));
  bind_text(&b, r->region);
  bind_text(&b, r->target);
  bind_text(&b, r->host);
  bind_i64(&b, r->port);
  bind_text(&b, r->sni);
  bind_text(&b, r->profile);
  bind_text(&b, r->address);
  bind_i64(&b, u64_bits(r->result_seq));
  bind_i64(&b, r->started_unix_ns);
  bind_i64(&b, u64_bits(r->dns_ns));
  bind_i64(&b, u64_bits(r->connect_ns));
  bind_i64(&b, u64_bits(r->handshake_ns));
  bind_i64(&b, u64_bits(r->total_ns));
  bind_i64(&b, u64_bits(r->loop_lag_ns));
  bind_i64(&b, r->ok ? 1 : 0);
  bind_text(&b, error_class ? error_class : "other");
  bind_text(&b, r->error_detail);
  bind_text(&b, r->tls_version);
  bind_text(&b, r->cipher);
  bind_text(&b, r->group);
  bind_text(&b, r->alpn);
  bind_i64(&b, r->resumed ? 1 : 0);
  bind_i64(&b, r->hello_retry_request ? 1 : 0);
  bind_text(&b, r->server_signature_algorithm);
  bind_text(&b, (const char *)s->chain.data); /* encode wrote at least "[]" */
  bind_i64(&b, r->days_to_earliest_expiry);
  tp_err rc = TP_E_OK;
  if (b.rc != SQLITE_OK || run(s->insert_result) != SQLITE_OK)
    rc = fail(s, err, errlen, "cannot insert result");
  /* Bindings point into the batch; drop them so no statement outlives its data. */
  (void)sqlite3_clear_bindings(s->insert_result);
  return rc;
}

/* Inserts the batches row; *duplicate when the primary key already exists. */
static tp_err insert_batch_row(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch,
                               int64_t received_unix_ns, bool *duplicate, char *err,
                               size_t errlen) {
  binder b = {.stmt = s->insert_batch, .idx = 0, .rc = SQLITE_OK};
  bind_text(&b, batch->agent_id);
  bind_i64(&b, u64_bits(batch->instance_id));
  bind_i64(&b, u64_bits(batch->batch_seq));
  bind_i64(&b, received_unix_ns);
  bind_i64(&b, (sqlite3_int64)batch->n_results);
  int rc = b.rc == SQLITE_OK ? run(s->insert_batch) : b.rc;
  (void)sqlite3_clear_bindings(s->insert_batch);
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    *duplicate = true;
    return TP_E_OK;
  }
  if (rc != SQLITE_OK)
    return fail(s, err, errlen, "cannot insert batch");
  return TP_E_OK;
}

static tp_err sqlite_put_batch(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                               int64_t received_unix_ns, bool *duplicate, char *err,
                               size_t errlen) {
  sqlite_store *s = from_base(store);
  *duplicate = false;
  if (run(s->begin) != SQLITE_OK)
    return fail(s, err, errlen, "cannot begin transaction");
  tp_err rc = insert_batch_row(s, batch, received_unix_ns, duplicate, err, errlen);
  for (size_t i = 0; rc == TP_E_OK && !*duplicate && i < batch->n_results; i++)
    rc = insert_result(s, batch, batch->results[i], received_unix_ns, err, errlen);
  if (rc == TP_E_OK && !*duplicate) {
    if (run(s->commit) == SQLITE_OK)
      return TP_E_OK;
    rc = fail(s, err, errlen, "cannot commit batch");
  }
  /* Duplicate or failure: nothing of this batch may remain. If ROLLBACK itself
   * fails SQLite has already rolled back (that is when ROLLBACK errors). */
  (void)run(s->rollback);
  return rc;
}

/* ---- read path --------------------------------------------------------------- */

static const char *col_text(sqlite3_stmt *stmt, int col) {
  const unsigned char *t = sqlite3_column_text(stmt, col);
  return t ? (const char *)t : "";
}

static tp_err sqlite_scan(tp_store *store, int64_t since_unix_ns, const char *target,
                          tp_store_row_fn fn, void *ctx, char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  if (s->no_schema)
    return TP_E_OK;
  sqlite3_stmt *stmt = target ? s->scan_target : s->scan_all;
  tp_err rc = TP_E_OK;
  binder b = {.stmt = stmt, .idx = 0, .rc = SQLITE_OK};
  bind_i64(&b, since_unix_ns);
  if (target != NULL)
    bind_text(&b, target);
  if (b.rc != SQLITE_OK) {
    rc = fail(s, err, errlen, "cannot bind scan");
    goto out;
  }
  int step;
  while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
    tp_store_row row = {
        .target = col_text(stmt, 0),
        .profile = col_text(stmt, 1),
        .region = col_text(stmt, 2),
        .ok = sqlite3_column_int(stmt, 3) != 0,
        .error_class = col_text(stmt, 4),
        .handshake_ns = (uint64_t)sqlite3_column_int64(stmt, 5),
        .loop_lag_ns = (uint64_t)sqlite3_column_int64(stmt, 6),
    };
    rc = fn(&row, ctx);
    if (rc != TP_E_OK)
      goto out;
  }
  if (step != SQLITE_DONE)
    rc = fail(s, err, errlen, "scan failed");
out:
  (void)sqlite3_reset(stmt);
  (void)sqlite3_clear_bindings(stmt);
  return rc;
}

static tp_err sqlite_latest(tp_store *store, const char *target, const char *profile,
                            const char *region, int64_t since_unix_ns, tp_store_facts *out,
                            char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  *out = (tp_store_facts){0};
  if (s->no_schema)
    return TP_E_NOTFOUND;
  tp_err rc = TP_E_OK;
  binder b = {.stmt = s->latest, .idx = 0, .rc = SQLITE_OK};
  bind_text(&b, target);
  bind_text(&b, profile);
  bind_text(&b, region);
  bind_i64(&b, since_unix_ns);
  if (b.rc != SQLITE_OK) {
    rc = fail(s, err, errlen, "cannot bind latest");
    goto out;
  }
  int step = sqlite3_step(s->latest);
  if (step == SQLITE_DONE) {
    rc = TP_E_NOTFOUND;
    goto out;
  }
  if (step != SQLITE_ROW) {
    rc = fail(s, err, errlen, "latest query failed");
    goto out;
  }
  out->tls_version = tp_xstrdup(col_text(s->latest, 0));
  out->cipher = tp_xstrdup(col_text(s->latest, 1));
  out->group = tp_xstrdup(col_text(s->latest, 2));
  out->alpn = tp_xstrdup(col_text(s->latest, 3));
  out->error_detail = tp_xstrdup(col_text(s->latest, 4));
  out->chain_json = tp_xstrdup(col_text(s->latest, 5));
  out->days_to_earliest_expiry = sqlite3_column_int(s->latest, 6);
  out->started_unix_ns = sqlite3_column_int64(s->latest, 7);
out:
  (void)sqlite3_reset(s->latest);
  (void)sqlite3_clear_bindings(s->latest);
  return rc;
}

static const tp_store_ops sqlite_ops = {
    .name = "sqlite",
    .put_batch = sqlite_put_batch,
    .scan = sqlite_scan,
    .latest = sqlite_latest,
    .close = sqlite_close,
};
