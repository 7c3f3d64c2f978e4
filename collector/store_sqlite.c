/* store_sqlite.c - the SQLite storage backend.
 *
 * Owns the sqlite3 connection and every prepared statement (prepared once at open,
 * reset after each use). Durability: WAL + synchronous=FULL, i.e. a committed batch
 * survives a collector crash and an OS crash; the ack is only sent after COMMIT
 * returned, and the agent then deletes its copy.
 *
 * Schema versions live in PRAGMA user_version; `migrations[i]` upgrades version i to
 * i+1 and runs inside one IMMEDIATE transaction, so two collectors starting on the
 * same file cannot both migrate. A file newer than this binary is refused.
 *
 * uint64 protobuf fields that may exceed INT64_MAX (instance_id, result_seq) are
 * stored as the int64 with the same bit pattern; durations are validated to be at
 * most one hour by ingest, so they are stored as plain positive integers.
 *
 * NULL means "not recorded": a message absent on the wire (ocsp, http), no chain
 * (days_to_earliest_expiry), or a row stored before the column existed. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "chain_json.h"
#include "json_out.h"
#include "outcome.h"
#include "store_sqlite_internal.h"
#include "tp_buf.h"
#include "tp_mem.h"

#define SCHEMA_VERSION 5
#define BUSY_TIMEOUT_MS 5000
/* Chain JSON is built from at most max_body_bytes of input; escaping can grow it
 * six-fold, so this only stops a bug, never a legal batch. */
#define CHAIN_JSON_CAP ((size_t)2 * 1024 * 1024 * 1024)

/* Migration SQL, then an optional step in C for what SQL alone cannot do. */
typedef struct migration {
  const char *sql;
  tp_err (*step)(sqlite_store *s, char *err, size_t errlen);
} migration;

static tp_err relax_days_not_null(sqlite_store *s, char *err, size_t errlen);

static const migration migrations[SCHEMA_VERSION] = {
    /* 0 -> 1 */
    {
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
     NULL},
    /* 1 -> 2: client-profile evidence, OCSP staple, chain and HTTP facts. ADD COLUMN
     * only rewrites the schema text, never the rows, so this is instant on a large
     * database; existing rows read NULL ("not recorded"). */
    {"ALTER TABLE results ADD COLUMN groups_offered TEXT;"
     "ALTER TABLE results ADD COLUMN key_shares_offered TEXT;"
     "ALTER TABLE results ADD COLUMN mode TEXT;"
     "ALTER TABLE results ADD COLUMN ticket_received INTEGER;"
     "ALTER TABLE results ADD COLUMN resumption_handshake_ns INTEGER;"
     "ALTER TABLE results ADD COLUMN early_data_attempted INTEGER;"
     "ALTER TABLE results ADD COLUMN early_data_accepted INTEGER;"
     "ALTER TABLE results ADD COLUMN fidelity_note TEXT;"
     "ALTER TABLE results ADD COLUMN ocsp_stapled INTEGER;"
     "ALTER TABLE results ADD COLUMN ocsp_cert_status TEXT;"
     "ALTER TABLE results ADD COLUMN ocsp_this_update_unix INTEGER;"
     "ALTER TABLE results ADD COLUMN ocsp_next_update_unix INTEGER;"
     "ALTER TABLE results ADD COLUMN ocsp_age_seconds INTEGER;"
     "ALTER TABLE results ADD COLUMN chain_length_sent INTEGER;"
     "ALTER TABLE results ADD COLUMN chain_complete INTEGER;"
     "ALTER TABLE results ADD COLUMN http_status INTEGER;"
     "ALTER TABLE results ADD COLUMN http_first_byte_ns INTEGER;"
     "ALTER TABLE results ADD COLUMN http_hsts INTEGER;",
     relax_days_not_null},
    /* 2 -> 3: address family, real-client emulation check, early-data policy. Same
     * ADD COLUMN shape: instant, and older rows read NULL ("not recorded"). */
    {"ALTER TABLE results ADD COLUMN address_family TEXT;"
     "ALTER TABLE results ADD COLUMN emulation_checked INTEGER;"
     "ALTER TABLE results ADD COLUMN emulation_divergence TEXT;"
     "ALTER TABLE results ADD COLUMN early_data_policy_violation INTEGER;",
     NULL},
    /* 3 -> 4: exactly-once delivery and visible loss. A result is identified by
     * (agent_id, instance_id = spool id, result_seq) whatever batch carries it;
     * drop reports count what an agent lost; `spools` keeps per-spool delivery
     * counters so loss and silence are read without scanning results. Agents before
     * the spool numbered results per process, so existing rows are unique already;
     * their counters are rebuilt from the rows. */
    {"CREATE UNIQUE INDEX results_identity ON results (agent_id, instance_id, result_seq);"
     "CREATE TABLE drops ("
     "  agent_id TEXT NOT NULL,"
     "  instance_id INTEGER NOT NULL,"
     "  drop_id INTEGER NOT NULL,"
     "  received_unix_ns INTEGER NOT NULL,"
     "  count INTEGER NOT NULL,"
     "  reason TEXT NOT NULL,"
     "  first_seq INTEGER NOT NULL,"
     "  last_seq INTEGER NOT NULL,"
     "  first_unix_ns INTEGER NOT NULL,"
     "  last_unix_ns INTEGER NOT NULL,"
     "  PRIMARY KEY (agent_id, instance_id, drop_id)) WITHOUT ROWID;"
     "CREATE INDEX drops_time ON drops (last_unix_ns);"
     "CREATE TABLE spools ("
     "  agent_id TEXT NOT NULL,"
     "  instance_id INTEGER NOT NULL,"
     "  first_received_unix_ns INTEGER NOT NULL,"
     "  last_received_unix_ns INTEGER NOT NULL,"
     "  last_started_unix_ns INTEGER NOT NULL,"
     "  results INTEGER NOT NULL,"
     "  max_seq INTEGER NOT NULL,"
     "  dropped INTEGER NOT NULL,"
     "  dropped_with_seq INTEGER NOT NULL,"
     "  PRIMARY KEY (agent_id, instance_id)) WITHOUT ROWID;"
     "INSERT INTO spools SELECT agent_id, instance_id, min(received_unix_ns),"
     " max(received_unix_ns), max(started_unix_ns), count(*), max(result_seq), 0, 0"
     " FROM results GROUP BY agent_id, instance_id;",
     NULL},
    /* 4 -> 5: storage for long windows (store_sqlite_rollup.c, store_sqlite_maintain.c).
     * `rollups`: one row per span (a minute, and an hour: a 30-day window reads 720
     * hour rows per group instead of 43,200 minute rows) of started_unix_ns x target x
     * profile x region x agent x address family, with counters and latency sketches,
     * kept longer than raw rows. `rollup_state`: the watermark -- the highest
     * results.id folded into rollups -- and how far back each retention has deleted
     * (tp_store_horizon). The watermark starts at 0, so the first maintenance pass
     * rolls up every row stored before this version too. A rowid table (not WITHOUT
     * ROWID): rows carry sketch blobs of a few hundred bytes, and retention deletes by
     * rowid in chunks. `batches_received` lets retention find old batch-log rows
     * without a scan. */
    {"CREATE TABLE rollups ("
     "  id INTEGER PRIMARY KEY,"
     "  span_ns INTEGER NOT NULL,"
     "  start_unix_ns INTEGER NOT NULL,"
     "  target TEXT NOT NULL,"
     "  profile TEXT NOT NULL,"
     "  region TEXT NOT NULL,"
     "  agent_id TEXT NOT NULL,"
     "  address_family TEXT NOT NULL,"
     "  probes INTEGER NOT NULL,"
     "  successes INTEGER NOT NULL,"
     "  divergent INTEGER NOT NULL,"
     "  classes BLOB NOT NULL,"
     "  hrr INTEGER NOT NULL,"
     "  resumption_probes INTEGER NOT NULL,"
     "  resumed INTEGER NOT NULL,"
     "  early_data_attempts INTEGER NOT NULL,"
     "  early_data_accepts INTEGER NOT NULL,"
     "  early_data_violations INTEGER NOT NULL,"
     "  emulation_checked INTEGER NOT NULL,"
     "  ocsp_stapled INTEGER NOT NULL,"
     "  ocsp_max_age_seconds INTEGER,"
     "  min_days_to_expiry INTEGER,"
     "  loop_lag_max_ns INTEGER NOT NULL,"
     "  loop_lag_sum_ns INTEGER NOT NULL,"
     "  handshake_sketch BLOB,"
     "  connect_sketch BLOB,"
     "  total_sketch BLOB);"
     "CREATE UNIQUE INDEX rollups_key ON rollups"
     " (span_ns, target, profile, region, agent_id, address_family, start_unix_ns);"
     "CREATE INDEX rollups_start ON rollups (span_ns, start_unix_ns);"
     "CREATE TABLE rollup_state ("
     "  id INTEGER PRIMARY KEY CHECK (id = 1),"
     "  watermark INTEGER NOT NULL,"
     "  raw_complete_since_unix_ns INTEGER NOT NULL,"
     "  rollups_complete_since_unix_ns INTEGER NOT NULL);"
     "INSERT INTO rollup_state VALUES (1, 0, 0, 0);"
     "CREATE INDEX batches_received ON batches (received_unix_ns);",
     NULL},
};

/* ON CONFLICT ... DO NOTHING names the identity constraint, so a re-sent row is
 * skipped while any other constraint still fails loudly (OR IGNORE would hide a
 * NOT NULL violation too). */
static const char SQL_INSERT_BATCH[] =
    "INSERT INTO batches (agent_id, instance_id, batch_seq, received_unix_ns, result_count)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (agent_id, instance_id, batch_seq) DO NOTHING";
static const char SQL_INSERT_RESULT[] =
    "INSERT INTO results (received_unix_ns, agent_id, instance_id, batch_seq, region, target,"
    " host, port, sni, profile, address, result_seq, started_unix_ns, dns_ns, connect_ns,"
    " handshake_ns, total_ns, loop_lag_ns, ok, error_class, error_detail, tls_version, cipher,"
    " grp, alpn, resumed, hello_retry_request, server_signature_algorithm, chain_json,"
    " days_to_earliest_expiry, groups_offered, key_shares_offered, mode, ticket_received,"
    " resumption_handshake_ns, early_data_attempted, early_data_accepted, fidelity_note,"
    " ocsp_stapled, ocsp_cert_status, ocsp_this_update_unix, ocsp_next_update_unix,"
    " ocsp_age_seconds, chain_length_sent, chain_complete, http_status, http_first_byte_ns,"
    " http_hsts, address_family, emulation_checked, emulation_divergence,"
    " early_data_policy_violation)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (agent_id, instance_id, result_seq) DO NOTHING";
#define SQL_SCAN_COLUMNS                                                                        \
  "SELECT target, profile, region, ok, error_class, handshake_ns, loop_lag_ns,"                 \
  " started_unix_ns, coalesce(mode, ''), resumed, hello_retry_request,"                         \
  " coalesce(early_data_attempted, 0), coalesce(early_data_accepted, 0), " SQL_DAYS ","         \
  " CASE WHEN ocsp_stapled THEN ocsp_age_seconds END, coalesce(address_family, ''),"            \
  " coalesce(emulation_checked, 0), coalesce(emulation_divergence, ''),"                        \
  " coalesce(early_data_policy_violation, 0), agent_id, error_detail, connect_ns, total_ns,"    \
  " tls_version, cipher, grp, coalesce(ocsp_stapled, 0), id FROM results"
/* Range scans: the started index (or the series index for one target) bounds the
 * rows read by the window, so a short window over a large table stays cheap. */
static const char SQL_SCAN_ALL[] = SQL_SCAN_COLUMNS
    " WHERE started_unix_ns >= ?1 AND started_unix_ns < ?2 ORDER BY started_unix_ns, id";
static const char SQL_SCAN_TARGET[] = SQL_SCAN_COLUMNS
    " WHERE target = ?3 AND started_unix_ns >= ?1 AND started_unix_ns < ?2"
    " ORDER BY started_unix_ns, id";
/* One row's chain, unpacked by SQLite's JSON functions so callers get structured
 * fields whatever the stored encoding (chain_json.c). */
static const char SQL_CHAIN[] =
    "SELECT CAST(c.key AS INTEGER), json_extract(c.value, '$.subject'),"
    " json_extract(c.value, '$.issuer'), json_extract(c.value, '$.not_before_unix'),"
    " json_extract(c.value, '$.not_after_unix')"
    " FROM results AS r, json_each(r.chain_json) AS c"
    " WHERE r.id = ?1 AND json_valid(r.chain_json) ORDER BY c.key";
static const char SQL_LATEST[] =
    "SELECT tls_version, cipher, grp, alpn, error_detail, chain_json, " SQL_DAYS ","
    " started_unix_ns, resumed, hello_retry_request, groups_offered, key_shares_offered, mode,"
    " fidelity_note, ticket_received, resumption_handshake_ns, early_data_attempted,"
    " early_data_accepted, chain_length_sent, chain_complete, ocsp_stapled, ocsp_cert_status,"
    " ocsp_this_update_unix, ocsp_next_update_unix, ocsp_age_seconds, http_status,"
    " http_first_byte_ns, http_hsts, address_family, emulation_checked, emulation_divergence,"
    " early_data_policy_violation, id FROM results"
    " WHERE target = ?1 AND profile = ?2 AND region = ?3 AND started_unix_ns >= ?4"
    " ORDER BY started_unix_ns DESC, id DESC LIMIT 1";

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

static tp_err query_int(sqlite_store *s, const char *sql, int *out, char *err, size_t errlen) {
  sqlite3_stmt *stmt = NULL;
  tp_err rc = TP_E_OK;
  if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK ||
      sqlite3_step(stmt) != SQLITE_ROW)
    rc = fail(s, err, errlen, sql);
  else
    *out = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  return rc;
}

/* Version 1 declared days_to_earliest_expiry NOT NULL, but without a chain it has
 * no value. ALTER TABLE cannot drop a constraint; rebuilding the table would copy
 * every row. SQLite documents editing the stored CREATE TABLE text instead for
 * exactly this case (lang_altertable.html §7, "removing ... NOT NULL constraints"):
 * no row changes, every existing row satisfies the looser column. The edit is
 * checked to have hit exactly one table, the schema cookie is bumped so every
 * connection re-reads the schema, and it all runs inside the migration's
 * transaction, so a failure rolls back to the untouched version 1 schema. */
static tp_err relax_days_not_null(sqlite_store *s, char *err, size_t errlen) {
  static const char SQL_RELAX[] =
      "UPDATE sqlite_master SET sql = replace(sql,"
      " 'days_to_earliest_expiry INTEGER NOT NULL', 'days_to_earliest_expiry INTEGER')"
      " WHERE type = 'table' AND name = 'results'"
      " AND instr(sql, 'days_to_earliest_expiry INTEGER NOT NULL') > 0";
  int cookie = 0;
  char sql[64];
  tp_err rc = query_int(s, "PRAGMA schema_version", &cookie, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  if (sqlite3_exec(s->db, "PRAGMA writable_schema = ON", NULL, NULL, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot enable schema editing");
  if (sqlite3_exec(s->db, SQL_RELAX, NULL, NULL, NULL) != SQLITE_OK)
    rc = fail(s, err, errlen, "cannot relax days_to_earliest_expiry");
  else if (sqlite3_changes(s->db) != 1) {
    snprintf(err, errlen, "%s: results table does not declare days_to_earliest_expiry as"
                          " version 1 did; refusing to migrate", s->path);
    rc = TP_E_STORE;
  }
  snprintf(sql, sizeof(sql), "PRAGMA schema_version = %d", cookie + 1);
  if (rc == TP_E_OK && sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    rc = fail(s, err, errlen, "cannot bump schema cookie");
  if (sqlite3_exec(s->db, "PRAGMA writable_schema = OFF", NULL, NULL, NULL) != SQLITE_OK &&
      rc == TP_E_OK)
    rc = fail(s, err, errlen, "cannot disable schema editing");
  return rc;
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
    if (sqlite3_exec(s->db, migrations[v].sql, NULL, NULL, NULL) != SQLITE_OK)
      rc = fail(s, err, errlen, "schema migration failed");
    if (rc == TP_E_OK && migrations[v].step != NULL)
      rc = migrations[v].step(s, err, errlen);
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

/* Waiting for the write lock: poll every millisecond for up to BUSY_TIMEOUT_MS.
 * Ingest and maintenance (two connections) take turns at it; SQLite's own
 * busy_timeout handler backs off to sleeps of 100 ms, so an ingest that found a
 * maintenance chunk (~10 ms) in progress would typically sleep on for tens of
 * milliseconds after it ended. */
static int on_busy(void *ctx, int count) {
  (void)ctx;
  if (count >= BUSY_TIMEOUT_MS)
    return 0; /* SQLITE_BUSY to the caller: 503, the agent retries */
  struct timespec ms = {.tv_sec = 0, .tv_nsec = 1000000};
  (void)nanosleep(&ms, NULL); /* EINTR only shortens one poll */
  return 1;
}

static tp_err set_pragmas(sqlite_store *s, char *err, size_t errlen) {
  if (sqlite3_busy_handler(s->db, on_busy, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot set busy handler");
  if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot enable WAL");
  /* FULL: WAL is fsynced at every COMMIT, so an acknowledged batch survives an OS
   * crash or power loss too, not only a crash of this process (NORMAL's promise).
   * The agent deletes what we acknowledge; this is the only copy left. */
  if (sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot set synchronous=FULL");
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
    rc = prepare(s, SQL_CHAIN, &s->chain_of, err, errlen);
  if (rc == TP_E_OK)
    rc = prepare(s, SQL_LATEST, &s->latest, err, errlen);
  if (rc == TP_E_OK)
    rc = tp__sqlite_prepare_delivery(s, mode == TP_STORE_READWRITE, err, errlen);
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

/* A WAL database is read through its -shm file, which a reader must create when no
 * writer has: impossible on read-only media or in a directory the reader cannot
 * write. That is the one failure a read-only open retries. */
static bool needs_immutable(sqlite3 *db) {
  int code = sqlite3_extended_errcode(db);
  return (code & 0xFF) == SQLITE_READONLY || (code & 0xFF) == SQLITE_CANTOPEN;
}

/* Percent-encodes what a URI path may not carry (RFC 3986 unreserved and '/'). */
static char *file_uri(const char *path, const char *query) {
  size_t len = strlen(path);
  char *uri = tp_xmalloc(len * 3 + strlen(query) + 8);
  size_t o = (size_t)sprintf(uri, "file:");
  for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
    bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '/' || *p == '-' || *p == '_' || *p == '.' || *p == '~';
    o += plain ? (size_t)sprintf(uri + o, "%c", *p) : (size_t)sprintf(uri + o, "%%%02X", *p);
  }
  sprintf(uri + o, "%s", query);
  return uri;
}

/* immutable=1: SQLite then takes no lock and needs no -shm, trusting that nobody
 * writes the file meanwhile -- true of read-only media, where nobody can. It reads
 * the main file only: a -wal left by a collector that was killed is not seen
 * (docs/collector.md: checkpoint a copy before archiving it). */
static tp_err reopen_immutable(sqlite_store *s, char *err, size_t errlen) {
  char *uri = file_uri(s->path, "?immutable=1");
  (void)sqlite3_close_v2(s->db);
  s->db = NULL;
  s->no_schema = false;
  tp_err rc = TP_E_OK;
  if (sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK ||
      sqlite3_extended_result_codes(s->db, 1) != SQLITE_OK)
    rc = fail(s, err, errlen, "cannot open database read-only (immutable)");
  free(uri);
  return rc == TP_E_OK ? check_readonly_schema(s, err, errlen) : rc;
}

tp_err tp_store_open_sqlite(const char *path, tp_store_mode mode, tp_store **out, char *err,
                            size_t errlen) {
  struct stat st;
  tp_err rc = TP_E_OK;
  *out = NULL;
  sqlite_store *s = tp_xcalloc(1, sizeof(*s));
  s->base.ops = &sqlite_ops;
  s->path = tp_xstrdup(path);
  s->writable = mode == TP_STORE_READWRITE;
  tp_buf_init(&s->chain, CHAIN_JSON_CAP);
  tp_buf_init(&s->groups, CHAIN_JSON_CAP);
  tp_buf_init(&s->shares, CHAIN_JSON_CAP);
  if (mode == TP_STORE_READONLY && stat(path, &st) != 0) {
    snprintf(err, errlen, "%s: cannot open database: %s", path, strerror(errno));
    rc = errno == ENOENT ? TP_E_NOTFOUND : TP_E_STORE;
    goto out;
  }
  /* NOMUTEX: a tp_store is used by one thread at a time (store.h), so SQLite's
   * per-call connection mutex is pure cost -- 18 % of a report's instructions. */
  int flags = SQLITE_OPEN_NOMUTEX | (mode == TP_STORE_READONLY
                                         ? SQLITE_OPEN_READONLY
                                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
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
    if (rc == TP_E_OK)
      rc = tp__sqlite_register_rollup_functions(s, err, errlen);
  } else {
    rc = sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS) == SQLITE_OK
             ? check_readonly_schema(s, err, errlen)
             : fail(s, err, errlen, "cannot set busy timeout");
    if (rc != TP_E_OK && needs_immutable(s->db))
      rc = reopen_immutable(s, err, errlen);
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
                           s->insert_result, s->scan_all, s->scan_target, s->latest,
                           s->chain_of};
  for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
    sqlite3_finalize(stmts[i]); /* returns the last step's error, not a finalize failure */
  tp__sqlite_finalize_delivery(s);
  /* With every statement finalized, close cannot be SQLITE_BUSY; sqlite3_close_v2
   * would defer instead of failing if one was missed. */
  (void)sqlite3_close_v2(s->db);
  tp_buf_free(&s->chain);
  tp_buf_free(&s->groups);
  tp_buf_free(&s->shares);
  free(s->path);
  free(s);
}

/* ---- write path -------------------------------------------------------------- */

static tp_err insert_result(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch,
                            const Tlsprobe__V1__ProbeResult *r, int64_t received_unix_ns, char *err,
                            size_t errlen) {
  tp_buf_reset(&s->chain);
  tp_buf_reset(&s->groups);
  tp_buf_reset(&s->shares);
  if (tp_chain_json_encode(r->chain, r->n_chain, &s->chain) != TP_E_OK ||
      tp_json_str_array(&s->groups, r->groups_offered, r->n_groups_offered) != TP_E_OK ||
      tp_json_str_array(&s->shares, r->key_shares_offered, r->n_key_shares_offered) != TP_E_OK) {
    snprintf(err, errlen, "%s: result too large to encode", s->path);
    return TP_E_STORE;
  }
  const Tlsprobe__V1__OcspFacts *ocsp = r->ocsp;
  const Tlsprobe__V1__HttpFacts *http = r->http;
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
  if (r->n_chain > 0)
    bind_i64(&b, r->days_to_earliest_expiry);
  else
    bind_null(&b); /* meaningless without a chain (tlsprobe.proto) */
  bind_text(&b, (const char *)s->groups.data);
  bind_text(&b, (const char *)s->shares.data);
  bind_text(&b, r->mode);
  bind_i64(&b, r->ticket_received ? 1 : 0);
  bind_i64(&b, u64_bits(r->resumption_handshake_ns));
  bind_i64(&b, r->early_data_attempted ? 1 : 0);
  bind_i64(&b, r->early_data_accepted ? 1 : 0);
  bind_text(&b, r->fidelity_note);
  bind_i64(&b, ocsp != NULL ? 1 : 0);
  if (ocsp != NULL) {
    bind_text(&b, ocsp->cert_status);
    bind_i64(&b, ocsp->this_update_unix);
    bind_i64(&b, ocsp->next_update_unix);
    bind_i64(&b, ocsp->age_seconds);
  } else {
    for (int i = 0; i < 4; i++)
      bind_null(&b);
  }
  bind_i64(&b, r->chain_length_sent);
  bind_i64(&b, r->chain_complete ? 1 : 0);
  if (http != NULL) {
    bind_i64(&b, http->status);
    bind_i64(&b, u64_bits(http->first_byte_ns));
    bind_i64(&b, http->hsts ? 1 : 0);
  } else {
    for (int i = 0; i < 3; i++)
      bind_null(&b);
  }
  bind_text(&b, r->address_family);
  bind_i64(&b, r->emulation_checked ? 1 : 0);
  bind_text(&b, r->emulation_divergence);
  bind_i64(&b, r->early_data_policy_violation ? 1 : 0);
  tp_err rc = TP_E_OK;
  if (b.rc != SQLITE_OK || run(s->insert_result) != SQLITE_OK)
    rc = fail(s, err, errlen, "cannot insert result");
  /* Bindings point into the batch; drop them so no statement outlives its data. */
  (void)sqlite3_clear_bindings(s->insert_result);
  return rc;
}

/* The batches row is a log of deliveries; a re-sent batch keeps its first row. */
static tp_err insert_batch_row(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch,
                               int64_t received_unix_ns, char *err, size_t errlen) {
  binder b = {.stmt = s->insert_batch, .idx = 0, .rc = SQLITE_OK};
  bind_text(&b, batch->agent_id);
  bind_i64(&b, u64_bits(batch->instance_id));
  bind_i64(&b, u64_bits(batch->batch_seq));
  bind_i64(&b, received_unix_ns);
  bind_i64(&b, (sqlite3_int64)batch->n_results);
  int rc = b.rc == SQLITE_OK ? run(s->insert_batch) : b.rc;
  (void)sqlite3_clear_bindings(s->insert_batch);
  return rc == SQLITE_OK ? TP_E_OK : fail(s, err, errlen, "cannot insert batch");
}

/* Inserts every result not stored before (by its identity) and counts the new ones. */
static tp_err insert_results(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch,
                             int64_t received_unix_ns, tp_store_put_outcome *out,
                             const tp_store_put_marks *marks, uint64_t *max_seq,
                             int64_t *last_started, char *err, size_t errlen) {
  for (size_t i = 0; i < batch->n_results; i++) {
    const Tlsprobe__V1__ProbeResult *r = batch->results[i];
    tp_err rc = insert_result(s, batch, r, received_unix_ns, err, errlen);
    if (rc != TP_E_OK)
      return rc;
    if (sqlite3_changes(s->db) != 1)
      continue; /* stored before: a re-send */
    out->results_stored++;
    if (marks != NULL)
      marks->results[i] = true;
    if (r->result_seq > *max_seq)
      *max_seq = r->result_seq;
    if (r->started_unix_ns > *last_started)
      *last_started = r->started_unix_ns;
  }
  return TP_E_OK;
}

static tp_err sqlite_put_batch(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                               int64_t received_unix_ns, tp_store_put_outcome *out,
                               const tp_store_put_marks *marks, char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  uint64_t max_seq = 0;
  int64_t last_started = 0;
  *out = (tp_store_put_outcome){0};
  if (run(s->begin) != SQLITE_OK)
    return fail(s, err, errlen, "cannot begin transaction");
  tp_err rc = insert_batch_row(s, batch, received_unix_ns, err, errlen);
  if (rc == TP_E_OK)
    rc = insert_results(s, batch, received_unix_ns, out, marks, &max_seq, &last_started, err,
                        errlen);
  if (rc == TP_E_OK)
    rc = tp__sqlite_put_delivery(s, batch, received_unix_ns, out, max_seq, last_started,
                                 marks != NULL ? marks->drops : NULL, &out->drops_stored, err,
                                 errlen);
  if (rc == TP_E_OK) {
    /* synchronous=FULL: when COMMIT returns, the batch is on disk and may be acked. */
    if (run(s->commit) == SQLITE_OK) {
      out->duplicate = out->results_stored == 0 && out->drops_stored == 0;
      return TP_E_OK;
    }
    rc = fail(s, err, errlen, "cannot commit batch");
  }
  *out = (tp_store_put_outcome){0};
  /* Nothing of this batch may remain. If ROLLBACK itself fails SQLite has already
   * rolled back (that is when ROLLBACK errors). */
  (void)run(s->rollback);
  return rc;
}

/* ---- read path --------------------------------------------------------------- */

static const char *col_text(sqlite3_stmt *stmt, int col) {
  const unsigned char *t = sqlite3_column_text(stmt, col);
  return t ? (const char *)t : "";
}

/* A NULL column stays NULL (not recorded), as opposed to col_text's "". */
static char *col_dup_or_null(sqlite3_stmt *stmt, int col) {
  const unsigned char *t = sqlite3_column_text(stmt, col);
  return t ? tp_xstrdup((const char *)t) : NULL;
}

static tp_store_opt col_opt(sqlite3_stmt *stmt, int col) {
  if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
    return (tp_store_opt){.set = false};
  return (tp_store_opt){.set = true, .v = sqlite3_column_int64(stmt, col)};
}

/* Binds ?1 since, ?2 until and (when set) ?3 target. */
static bool bind_filter(sqlite3_stmt *stmt, const tp_store_filter *f) {
  binder b = {.stmt = stmt, .idx = 0, .rc = SQLITE_OK};
  bind_i64(&b, f->since_unix_ns);
  bind_i64(&b, f->until_unix_ns);
  if (f->target != NULL)
    bind_text(&b, f->target);
  return b.rc == SQLITE_OK;
}

static tp_store_row row_from(sqlite3_stmt *stmt) {
  return (tp_store_row){
      .target = col_text(stmt, 0),
      .profile = col_text(stmt, 1),
      .region = col_text(stmt, 2),
      .ok = sqlite3_column_int(stmt, 3) != 0,
      .error_class = col_text(stmt, 4),
      .handshake_ns = (uint64_t)sqlite3_column_int64(stmt, 5),
      .loop_lag_ns = (uint64_t)sqlite3_column_int64(stmt, 6),
      .started_unix_ns = sqlite3_column_int64(stmt, 7),
      .mode = col_text(stmt, 8),
      .resumed = sqlite3_column_int(stmt, 9) != 0,
      .hello_retry_request = sqlite3_column_int(stmt, 10) != 0,
      .early_data_attempted = sqlite3_column_int(stmt, 11) != 0,
      .early_data_accepted = sqlite3_column_int(stmt, 12) != 0,
      .days_to_earliest_expiry = col_opt(stmt, 13),
      .ocsp_age_seconds = col_opt(stmt, 14),
      .address_family = col_text(stmt, 15),
      .emulation_checked = sqlite3_column_int(stmt, 16) != 0,
      .emulation_divergence = col_text(stmt, 17),
      .early_data_policy_violation = sqlite3_column_int(stmt, 18) != 0,
      .agent_id = col_text(stmt, 19),
      .error_detail = col_text(stmt, 20),
      .connect_ns = (uint64_t)sqlite3_column_int64(stmt, 21),
      .total_ns = (uint64_t)sqlite3_column_int64(stmt, 22),
      .tls_version = col_text(stmt, 23),
      .cipher = col_text(stmt, 24),
      .group = col_text(stmt, 25),
      .ocsp_stapled = sqlite3_column_int(stmt, 26) != 0,
      .row_id = sqlite3_column_int64(stmt, 27),
  };
}

static tp_err sqlite_scan(tp_store *store, const tp_store_filter *filter, tp_store_row_fn fn,
                          void *ctx, char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  if (s->no_schema)
    return TP_E_OK;
  sqlite3_stmt *stmt = filter->target ? s->scan_target : s->scan_all;
  tp_err rc = TP_E_OK;
  if (!bind_filter(stmt, filter)) {
    rc = fail(s, err, errlen, "cannot bind scan");
    goto out;
  }
  int step;
  while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
    tp_store_row row = row_from(stmt);
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

static tp_err sqlite_scan_chain(tp_store *store, int64_t row_id, tp_store_cert_fn fn, void *ctx,
                               char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  if (s->no_schema)
    return TP_E_OK;
  sqlite3_stmt *stmt = s->chain_of;
  tp_err rc = TP_E_OK;
  if (sqlite3_bind_int64(stmt, 1, row_id) != SQLITE_OK) {
    rc = fail(s, err, errlen, "cannot bind chain scan");
    goto out;
  }
  int step;
  while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
    tp_store_chain_cert cert = {
        .position = (uint32_t)sqlite3_column_int(stmt, 0),
        .subject = col_text(stmt, 1),
        .issuer = col_text(stmt, 2),
        .not_before_unix = sqlite3_column_int64(stmt, 3),
        .not_after_unix = sqlite3_column_int64(stmt, 4),
    };
    rc = fn(&cert, ctx);
    if (rc != TP_E_OK)
      goto out;
  }
  if (step != SQLITE_DONE)
    rc = fail(s, err, errlen, "chain scan failed");
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
  sqlite3_stmt *st = s->latest;
  out->days_to_earliest_expiry = col_opt(st, 6);
  out->started_unix_ns = sqlite3_column_int64(st, 7);
  out->resumed = sqlite3_column_int(st, 8) != 0;
  out->hello_retry_request = sqlite3_column_int(st, 9) != 0;
  bool v2_lists = sqlite3_column_type(st, 10) != SQLITE_NULL;
  int64_t id = sqlite3_column_int64(st, 32);
  out->mode = col_dup_or_null(st, 12);
  out->fidelity_note = col_dup_or_null(st, 13);
  out->ticket_received = col_opt(st, 14);
  out->resumption_handshake_ns = col_opt(st, 15);
  out->early_data_attempted = col_opt(st, 16);
  out->early_data_accepted = col_opt(st, 17);
  out->chain_length_sent = col_opt(st, 18);
  out->chain_complete = col_opt(st, 19);
  out->ocsp_stapled = sqlite3_column_int(st, 20) != 0;
  if (out->ocsp_stapled) {
    out->ocsp_cert_status = col_dup_or_null(st, 21);
    out->ocsp_this_update_unix = col_opt(st, 22);
    out->ocsp_next_update_unix = col_opt(st, 23);
    out->ocsp_age_seconds = col_opt(st, 24);
  }
  out->http_status = col_opt(st, 25);
  out->http_present = out->http_status.set;
  out->http_first_byte_ns = col_opt(st, 26);
  out->http_hsts = col_opt(st, 27);
  out->address_family = col_dup_or_null(st, 28);
  out->emulation_checked = col_opt(st, 29);
  out->emulation_divergence = col_dup_or_null(st, 30);
  out->early_data_policy_violation = col_opt(st, 31);
  (void)sqlite3_reset(s->latest);
  rc = tp__sqlite_latest_lists(s, id, v2_lists, out, err, errlen);
  if (rc != TP_E_OK)
    tp_store_facts_clear(out);
out:
  (void)sqlite3_reset(s->latest);
  (void)sqlite3_clear_bindings(s->latest);
  return rc;
}

static const tp_store_ops sqlite_ops = {
    .name = "sqlite",
    .put_batch = sqlite_put_batch,
    .scan = sqlite_scan,
    .scan_chain = sqlite_scan_chain,
    .latest = sqlite_latest,
    .scan_spools = tp__sqlite_scan_spools,
    .scan_drops = tp__sqlite_scan_drops,
    .maintain = tp__sqlite_maintain,
    .scan_rollups = tp__sqlite_scan_rollups,
    .horizon = tp__sqlite_horizon,
    .close = sqlite_close,
};
