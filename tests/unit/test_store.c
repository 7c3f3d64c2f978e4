/* test_store.c - the SQLite backend's open/migrate contract: schema created on
 * first open, version recorded, real version 1, 2 and 5 databases migrated with their
 * rows intact (version 5 -> 6 rewrites every row into the narrow layout: every column
 * of every row reads back the same through the `results` view and the store API),
 * the version 3 columns round-tripped, newer schemas refused, read-only opens never
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
#include "tlsprobe.pb-c.h"

static const tp_store_filter all_rows = {.since_unix_ns = 0, .until_unix_ns = INT64_MAX};

/* The version 1 schema exactly as the first collector release created it. */
static const char V1_DDL[] =
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
    "CREATE INDEX results_series ON results (target, profile, region, started_unix_ns);";

/* Two rows as a version 1 collector stored them: a success with a chain expiring
 * in 42 days, and a refused connection (no chain, days 0). */
static const char V1_ROWS[] =
    "INSERT INTO batches VALUES ('agent-1', -6, 7, 1700000000000000005, 2);"
    "INSERT INTO results VALUES (1, 1700000000000000005, 'agent-1', -6, 7, 'eu', 'web',"
    " 'localhost', 443, 'web.test', 'modern', '127.0.0.1', 1, 1699999999000000000, 10, 20,"
    " 2000000, 3000000, 5, 1, 'ok', '', 'TLS1.3', 'TLS_AES_128_GCM_SHA256', 'X25519', 'h2',"
    " 0, 1, 'ECDSA-SHA256', '[{\"subject\":\"CN=web\"}]', 42);"
    "INSERT INTO results VALUES (2, 1700000000000000005, 'agent-1', -6, 7, 'eu', 'web',"
    " 'localhost', 443, 'web.test', 'modern', '127.0.0.1', 2, 1699999999500000000, 10, 0,"
    " 0, 40, 0, 0, 'connection_refused', 'ECONNREFUSED', '', '', '', '', 0, 0, '', '[]', 0);"
    "PRAGMA user_version = 1;";

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
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 10);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM sqlite_master WHERE"
                                    " (type='index' AND name = 'result_rows_started')"
                                    " OR (type='table' AND name = 'series_latest')"),
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
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 10);
}

typedef struct collected {
  tp_store_row rows[8];
  char family[8][16];      /* copies of address_family */
  char divergence[8][128]; /* copies of emulation_divergence */
  size_t n;
} collected;

/* Keeps the non-string fields of up to 8 rows (strings die with the callback),
 * and copies of the version 3 strings. */
static tp_err collect_row(const tp_store_row *row, void *ctx) {
  collected *c = ctx;
  assert_true(c->n < 8);
  assert_non_null(row->address_family);
  assert_non_null(row->emulation_divergence);
  snprintf(c->family[c->n], sizeof(c->family[0]), "%s", row->address_family);
  snprintf(c->divergence[c->n], sizeof(c->divergence[0]), "%s", row->emulation_divergence);
  c->rows[c->n] = *row;
  c->rows[c->n].target = c->rows[c->n].profile = c->rows[c->n].region = NULL;
  c->rows[c->n].error_class = c->rows[c->n].mode = NULL;
  c->rows[c->n].address_family = c->rows[c->n].emulation_divergence = NULL;
  c->n++;
  return TP_E_OK;
}

/* Stores one result without a chain through the store API. */
static void put_chainless(tp_store *s, uint64_t seq) {
  char err[512] = "";
  tp_store_put_outcome put = {.duplicate = true};
  Tlsprobe__V1__ProbeResult r = TLSPROBE__V1__PROBE_RESULT__INIT;
  Tlsprobe__V1__ProbeResult *rp = &r;
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  r.target = "web";
  r.profile = "modern";
  r.region = "eu";
  r.port = 443;
  r.started_unix_ns = 1700000000000000000;
  r.error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_CONNECTION_REFUSED;
  r.mode = "handshake";
  r.result_seq = seq;
  b.agent_id = "agent-2";
  b.batch_seq = seq;
  b.results = &rp;
  b.n_results = 1;
  if (tp_store_put_batch(s, &b, 1700000000000000001, &put, err, sizeof(err)) != TP_E_OK)
    fail_msg("put: %s", err);
  assert_false(put.duplicate);
}

static void test_migrate_real_v1_database(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  tp_store_facts facts;
  exec_sql(f->db, V1_DDL);
  exec_sql(f->db, V1_ROWS);
  /* A connection that read the version 1 schema before the migration must see the
   * relaxed column afterwards (it re-reads the schema when the cookie changed). */
  sqlite3 *early = NULL;
  assert_int_equal(sqlite3_open(f->db, &early), SQLITE_OK);
  assert_int_equal(sqlite3_exec(early, "SELECT count(*) FROM results", NULL, NULL, NULL),
                   SQLITE_OK);

  /* Read-only opens refuse to migrate and say what to do. */
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READONLY, &s, err, sizeof(err)),
                   TP_E_STORE);
  assert_non_null(strstr(err, "schema version 1 is older than 10; start the collector once"));

  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 10);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM pragma_integrity_check"
                                    " WHERE integrity_check = 'ok'"),
                   1);
  /* Old rows intact: every version 1 column unchanged... */
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results WHERE id=1 AND agent_id='agent-1'"
                                    " AND instance_id=-6 AND batch_seq=7 AND region='eu'"
                                    " AND target='web' AND host='localhost' AND port=443"
                                    " AND sni='web.test' AND profile='modern' AND result_seq=1"
                                    " AND started_unix_ns=1699999999000000000 AND dns_ns=10"
                                    " AND connect_ns=20 AND handshake_ns=2000000"
                                    " AND total_ns=3000000 AND loop_lag_ns=5 AND ok=1"
                                    " AND error_class='ok' AND tls_version='TLS1.3'"
                                    " AND grp='X25519' AND alpn='h2' AND resumed=0"
                                    " AND hello_retry_request=1"
                                    " AND server_signature_algorithm='ECDSA-SHA256'"
                                    " AND chain_json='[{\"subject\":\"CN=web\"}]'"
                                    " AND days_to_earliest_expiry=42"),
                   1);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results WHERE id=2"
                                    " AND error_class='connection_refused'"
                                    " AND error_detail='ECONNREFUSED' AND chain_json='[]'"
                                    " AND days_to_earliest_expiry=0"),
                   1);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM batches WHERE result_count=2"), 1);
  /* ...and every new column NULL ("not recorded"). */
  assert_int_equal(
      query_int(f->db, "SELECT count(*) FROM results WHERE groups_offered IS NULL"
                       " AND key_shares_offered IS NULL AND mode IS NULL"
                       " AND ticket_received IS NULL AND resumption_handshake_ns IS NULL"
                       " AND early_data_attempted IS NULL AND early_data_accepted IS NULL"
                       " AND fidelity_note IS NULL AND ocsp_stapled IS NULL"
                       " AND ocsp_cert_status IS NULL AND ocsp_this_update_unix IS NULL"
                       " AND ocsp_next_update_unix IS NULL AND ocsp_age_seconds IS NULL"
                       " AND chain_length_sent IS NULL AND chain_complete IS NULL"
                       " AND http_status IS NULL AND http_first_byte_ns IS NULL"
                       " AND http_hsts IS NULL AND address_family IS NULL"
                       " AND emulation_checked IS NULL AND emulation_divergence IS NULL"
                       " AND early_data_policy_violation IS NULL"),
      2);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name='results'"
                                    " AND sql LIKE '%days_to_earliest_expiry INTEGER NOT NULL%'"),
                   0);
  assert_int_equal(sqlite3_exec(early, "UPDATE result_rows SET days_to_earliest_expiry = NULL"
                                       " WHERE id = 2;"
                                       "UPDATE result_rows SET days_to_earliest_expiry = 0"
                                       " WHERE id = 2", /* back to the version 1 value */
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(early);

  /* Reads treat the old chainless row's 0 as "no expiry". */
  collected c = {.n = 0};
  const tp_store_row *rows = c.rows;
  assert_int_equal(tp_store_scan(s, &all_rows, collect_row, &c, err, sizeof(err)), TP_E_OK);
  assert_int_equal(c.n, 2);
  assert_int_equal(rows[0].started_unix_ns, 1699999999000000000); /* oldest first */
  assert_true(rows[0].days_to_earliest_expiry.set);
  assert_int_equal(rows[0].days_to_earliest_expiry.v, 42);
  assert_true(rows[0].hello_retry_request);
  assert_false(rows[1].days_to_earliest_expiry.set);
  assert_false(rows[1].ocsp_age_seconds.set);
  assert_string_equal(c.divergence[0], ""); /* NULL reads as "exact" */
  assert_false(rows[0].early_data_policy_violation);
  assert_int_equal(tp_store_latest(s, "web", "modern", "eu", 0, &facts, err, sizeof(err)), TP_E_OK);
  assert_int_equal(facts.started_unix_ns, 1699999999500000000);
  assert_false(facts.days_to_earliest_expiry.set);
  assert_null(facts.mode);
  assert_null(facts.address_family);
  assert_null(facts.emulation_divergence);
  assert_false(facts.emulation_checked.set);
  assert_false(facts.groups_offered.set); /* stored before version 2: absent, not empty */
  assert_false(facts.key_shares_offered.set);
  assert_false(facts.chain_complete.set);
  assert_false(facts.ocsp_stapled);
  assert_false(facts.http_present);
  tp_store_facts_clear(&facts);

  /* New rows store NULL without a chain; the old rows are still there. */
  put_chainless(s, 1);
  tp_store_close(s);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results"), 3);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results WHERE agent_id='agent-2'"
                                    " AND days_to_earliest_expiry IS NULL AND mode='handshake'"
                                    " AND ocsp_stapled=0 AND http_status IS NULL"),
                   1);
  /* Reopening: nothing left to migrate. */
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  tp_store_close(s);
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 10);
}

/* The version 2 schema as a version 2 collector left it: version 1's tables with
 * days_to_earliest_expiry relaxed, then the 18 ADD COLUMNs of migration 1 -> 2. */
static const char V2_ALTER[] =
    "ALTER TABLE results ADD COLUMN groups_offered TEXT;"
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
    "ALTER TABLE results ADD COLUMN http_hsts INTEGER;";

/* A version 2 row with every version 2 fact: an early_data success with a staple
 * and an HTTP request (no chain: NULL days). */
static const char V2_ROWS[] =
    "INSERT INTO batches VALUES ('agent-1', 3, 9, 1700000000000000005, 1);"
    "INSERT INTO results VALUES (1, 1700000000000000005, 'agent-1', 3, 9, 'eu', 'web',"
    " 'localhost', 443, 'web.test', 'modern', '::1', 1, 1699999999000000000, 10, 20,"
    " 2000000, 3000000, 5, 1, 'ok', '', 'TLS1.3', 'TLS_AES_128_GCM_SHA256', 'X25519', 'h2',"
    " 1, 0, 'ECDSA-SHA256', '[]', NULL, '[\"X25519\"]', '[\"X25519\"]', 'early_data', 1,"
    " 700000, 1, 1, 'SSL 3.0 unsupported', 1, 'good', 1699990000, 1700590000, 10000, 2, 1,"
    " 204, 1500000, 1);"
    "PRAGMA user_version = 2;";

static void test_migrate_real_v2_database(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  tp_store_facts facts;
  char ddl[sizeof(V1_DDL)];
  memcpy(ddl, V1_DDL, sizeof(ddl));
  char *nn = strstr(ddl, "days_to_earliest_expiry INTEGER NOT NULL");
  assert_non_null(nn);
  memcpy(nn + strlen("days_to_earliest_expiry INTEGER"), "         ", 9); /* as 1 -> 2 left it */
  exec_sql(f->db, ddl);
  exec_sql(f->db, V2_ALTER);
  exec_sql(f->db, V2_ROWS);

  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READONLY, &s, err, sizeof(err)),
                   TP_E_STORE);
  assert_non_null(strstr(err, "schema version 2 is older than 10; start the collector once"));
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 2);

  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 10);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM pragma_integrity_check"
                                    " WHERE integrity_check = 'ok'"),
                   1);
  /* The version 2 row intact, its version 3 columns NULL. */
  assert_int_equal(
      query_int(f->db, "SELECT count(*) FROM results WHERE id=1 AND address='::1' AND ok=1"
                       " AND resumed=1 AND days_to_earliest_expiry IS NULL"
                       " AND groups_offered='[\"X25519\"]' AND mode='early_data'"
                       " AND ticket_received=1 AND resumption_handshake_ns=700000"
                       " AND early_data_attempted=1 AND early_data_accepted=1"
                       " AND fidelity_note='SSL 3.0 unsupported' AND ocsp_stapled=1"
                       " AND ocsp_cert_status='good' AND ocsp_age_seconds=10000"
                       " AND chain_length_sent=2 AND chain_complete=1 AND http_status=204"
                       " AND http_first_byte_ns=1500000 AND http_hsts=1"
                       " AND address_family IS NULL AND emulation_checked IS NULL"
                       " AND emulation_divergence IS NULL"
                       " AND early_data_policy_violation IS NULL"),
      1);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM batches WHERE batch_seq=9"), 1);

  /* Read back: "not recorded" is "" / false in rows, NULL / unset in facts; the
   * version 2 facts are still there. */
  collected c = {.n = 0};
  assert_int_equal(tp_store_scan(s, &all_rows, collect_row, &c, err, sizeof(err)), TP_E_OK);
  assert_int_equal(c.n, 1);
  assert_string_equal(c.family[0], "");
  assert_string_equal(c.divergence[0], "");
  assert_false(c.rows[0].emulation_checked);
  assert_false(c.rows[0].early_data_policy_violation);
  assert_true(c.rows[0].early_data_accepted);
  assert_int_equal(c.rows[0].ocsp_age_seconds.v, 10000);
  assert_int_equal(tp_store_latest(s, "web", "modern", "eu", 0, &facts, err, sizeof(err)), TP_E_OK);
  assert_string_equal(facts.mode, "early_data");
  assert_true(facts.http_present);
  assert_null(facts.address_family);
  assert_null(facts.emulation_divergence);
  assert_false(facts.emulation_checked.set);
  assert_false(facts.early_data_policy_violation.set);
  tp_store_facts_clear(&facts);
  tp_store_close(s);

  /* Reopening: nothing left to migrate, the row still there. */
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  tp_store_close(s);
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 10);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results"), 1);
}

/* The version 5 schema as a version 5 collector left it: version 1's tables with the
 * expiry column relaxed, then migrations 1 -> 2 ... 4 -> 5 (every column and index). */
static const char V5_DDL[] =
    "CREATE TABLE batches (agent_id TEXT NOT NULL, instance_id INTEGER NOT NULL,"
    " batch_seq INTEGER NOT NULL, received_unix_ns INTEGER NOT NULL,"
    " result_count INTEGER NOT NULL, PRIMARY KEY (agent_id, instance_id, batch_seq));"
    "CREATE TABLE results (id INTEGER PRIMARY KEY, received_unix_ns INTEGER NOT NULL,"
    " agent_id TEXT NOT NULL, instance_id INTEGER NOT NULL, batch_seq INTEGER NOT NULL,"
    " region TEXT NOT NULL, target TEXT NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL,"
    " sni TEXT NOT NULL, profile TEXT NOT NULL, address TEXT NOT NULL,"
    " result_seq INTEGER NOT NULL, started_unix_ns INTEGER NOT NULL, dns_ns INTEGER NOT NULL,"
    " connect_ns INTEGER NOT NULL, handshake_ns INTEGER NOT NULL, total_ns INTEGER NOT NULL,"
    " loop_lag_ns INTEGER NOT NULL, ok INTEGER NOT NULL, error_class TEXT NOT NULL,"
    " error_detail TEXT NOT NULL, tls_version TEXT NOT NULL, cipher TEXT NOT NULL,"
    " grp TEXT NOT NULL, alpn TEXT NOT NULL, resumed INTEGER NOT NULL,"
    " hello_retry_request INTEGER NOT NULL, server_signature_algorithm TEXT NOT NULL,"
    " chain_json TEXT NOT NULL, days_to_earliest_expiry INTEGER,"
    " groups_offered TEXT, key_shares_offered TEXT, mode TEXT, ticket_received INTEGER,"
    " resumption_handshake_ns INTEGER, early_data_attempted INTEGER,"
    " early_data_accepted INTEGER, fidelity_note TEXT, ocsp_stapled INTEGER,"
    " ocsp_cert_status TEXT, ocsp_this_update_unix INTEGER, ocsp_next_update_unix INTEGER,"
    " ocsp_age_seconds INTEGER, chain_length_sent INTEGER, chain_complete INTEGER,"
    " http_status INTEGER, http_first_byte_ns INTEGER, http_hsts INTEGER,"
    " address_family TEXT, emulation_checked INTEGER, emulation_divergence TEXT,"
    " early_data_policy_violation INTEGER);"
    "CREATE INDEX results_started ON results (started_unix_ns);"
    "CREATE INDEX results_series ON results (target, profile, region, started_unix_ns);"
    "CREATE UNIQUE INDEX results_identity ON results (agent_id, instance_id, result_seq);"
    "CREATE TABLE drops (agent_id TEXT NOT NULL, instance_id INTEGER NOT NULL,"
    " drop_id INTEGER NOT NULL, received_unix_ns INTEGER NOT NULL, count INTEGER NOT NULL,"
    " reason TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,"
    " first_unix_ns INTEGER NOT NULL, last_unix_ns INTEGER NOT NULL,"
    " PRIMARY KEY (agent_id, instance_id, drop_id)) WITHOUT ROWID;"
    "CREATE INDEX drops_time ON drops (last_unix_ns);"
    "CREATE TABLE spools (agent_id TEXT NOT NULL, instance_id INTEGER NOT NULL,"
    " first_received_unix_ns INTEGER NOT NULL, last_received_unix_ns INTEGER NOT NULL,"
    " last_started_unix_ns INTEGER NOT NULL, results INTEGER NOT NULL, max_seq INTEGER NOT NULL,"
    " dropped INTEGER NOT NULL, dropped_with_seq INTEGER NOT NULL,"
    " PRIMARY KEY (agent_id, instance_id)) WITHOUT ROWID;"
    "CREATE TABLE rollups (id INTEGER PRIMARY KEY, span_ns INTEGER NOT NULL,"
    " start_unix_ns INTEGER NOT NULL, target TEXT NOT NULL, profile TEXT NOT NULL,"
    " region TEXT NOT NULL, agent_id TEXT NOT NULL, address_family TEXT NOT NULL,"
    " probes INTEGER NOT NULL, successes INTEGER NOT NULL, divergent INTEGER NOT NULL,"
    " classes BLOB NOT NULL, hrr INTEGER NOT NULL, resumption_probes INTEGER NOT NULL,"
    " resumed INTEGER NOT NULL, early_data_attempts INTEGER NOT NULL,"
    " early_data_accepts INTEGER NOT NULL, early_data_violations INTEGER NOT NULL,"
    " emulation_checked INTEGER NOT NULL, ocsp_stapled INTEGER NOT NULL,"
    " ocsp_max_age_seconds INTEGER, min_days_to_expiry INTEGER,"
    " loop_lag_max_ns INTEGER NOT NULL, loop_lag_sum_ns INTEGER NOT NULL,"
    " handshake_sketch BLOB, connect_sketch BLOB, total_sketch BLOB);"
    "CREATE UNIQUE INDEX rollups_key ON rollups"
    " (span_ns, target, profile, region, agent_id, address_family, start_unix_ns);"
    "CREATE INDEX rollups_start ON rollups (span_ns, start_unix_ns);"
    "CREATE TABLE rollup_state (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " watermark INTEGER NOT NULL, raw_complete_since_unix_ns INTEGER NOT NULL,"
    " rollups_complete_since_unix_ns INTEGER NOT NULL);"
    "INSERT INTO rollup_state VALUES (1, 0, 0, 0);"
    "CREATE INDEX batches_received ON batches (received_unix_ns);";

/* The chain as chain_json.c writes it: three certificates, SANs on the leaf. */
#define V5_CHAIN                                                                              \
  "'[{\"subject\":\"CN=web.test\",\"issuer\":\"CN=Mid\",\"san_dns\":[\"web.test\","          \
  "\"www.web.test\"],\"not_before_unix\":1690000000,\"not_after_unix\":1710000000,"           \
  "\"key_type\":\"EC/ECDSA\",\"key_bits\":256,\"signature_algorithm\":\"ECDSA-SHA256\"},"     \
  "{\"subject\":\"CN=Mid\",\"issuer\":\"CN=Root\",\"san_dns\":[],\"not_before_unix\":1600000000," \
  "\"not_after_unix\":1800000000,\"key_type\":\"RSA\",\"key_bits\":2048,"                    \
  "\"signature_algorithm\":\"RSA-SHA256\"},{\"subject\":\"CN=Root\",\"issuer\":\"CN=Root\","  \
  "\"san_dns\":[],\"not_before_unix\":1500000000,\"not_after_unix\":1900000000,"              \
  "\"key_type\":\"RSA\",\"key_bits\":4096,\"signature_algorithm\":\"RSA-SHA256\"}]'"

/* Rows as version 1..5 collectors left them in a version 5 file: agent-1's spool 9
 * holds numbers 1, 2, 3 and 5 (4 was lost), agent-2's spool 4 number 1. Every NULL a
 * column could hold is somewhere: version 1 and 2 rows (later columns NULL), no staple,
 * no HTTP, no chain. Rows 1 and 2 share the chain and the series. */
static const char V5_ROWS[] =
    "INSERT INTO batches VALUES ('agent-1', 9, 1, 1700000000900000000, 4),"
    " ('agent-2', 4, 1, 1700000000900000000, 1);"
    "INSERT INTO results VALUES"
    /* 1: version 5, every fact */
    " (1, 1700000000900000000, 'agent-1', 9, 1, 'eu', 'web', 'web.test', 443, 'web.test',"
    "  'firefox', '::1', 1, 1700000000000000000, 100, 200, 3000000, 4000000, 7, 1, 'ok', '',"
    "  'TLS1.3', 'TLS_AES_128_GCM_SHA256', 'X25519', 'h2', 1, 1, 'ECDSA-SHA256', " V5_CHAIN ","
    "  42, '[\"X25519\",\"SECP256R1\"]', '[\"X25519\"]', 'early_data', 1, 700000, 1, 1,"
    "  'GREASE not reproduced', 1, 'good', 1699990000, 1700590000, 10000, 3, 1, 200,"
    "  1500000, 1, 'ipv6', 1, 'cipher X not offered', 1),"
    /* 2: version 5, a failure with the same chain, no staple, no HTTP */
    " (2, 1700000000900000000, 'agent-1', 9, 1, 'eu', 'web', 'web.test', 443, 'web.test',"
    "  'firefox', '::1', 2, 1700000001000000000, 100, 200, 0, 300, 0, 0, 'expired',"
    "  'certificate expired 3 days ago', '', '', '', '', 0, 0, '', " V5_CHAIN ", -3,"
    "  '[\"X25519\",\"SECP256R1\"]', '[\"X25519\"]', 'handshake', 0, 0, 0, 0, '', 0, NULL,"
    "  NULL, NULL, NULL, 3, 0, NULL, NULL, NULL, 'ipv6', 0, '', 0),"
    /* 3: as a version 1 collector stored it (no chain: days 0) */
    " (3, 1700000000900000000, 'agent-1', 9, 1, 'eu', 'web', 'web.test', 443, 'web.test',"
    "  'firefox', '::1', 3, 1700000002000000000, 10, 20, 0, 40, 0, 0, 'connection_refused',"
    "  'ECONNREFUSED', '', '', '', '', 0, 0, '', '[]', 0, NULL, NULL, NULL, NULL, NULL, NULL,"
    "  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    "  NULL, NULL),"
    /* 5: as a version 2 collector stored it (version 3 columns NULL) */
    " (4, 1700000000900000000, 'agent-1', 9, 1, 'us', 'api', 'api.test', 8443, '',"
    "  'modern', '10.0.0.1', 5, 1700000003000000000, 0, 300, 2000000, 2500000, 3, 1, 'ok',"
    "  '', 'TLS1.2', 'ECDHE-RSA-AES128-GCM-SHA256', 'SECP256R1', '', 0, 0, 'RSA-SHA256', '[]',"
    "  NULL, '[]', '[]', 'resumption', 1, 900000, 0, 0, '', 1, 'revoked', 1699000000, 0, 99,"
    "  0, 0, 204, 800000, 0, NULL, NULL, NULL, NULL),"
    /* agent-2's: version 5, nothing optional */
    " (5, 1700000000900000000, 'agent-2', 4, 1, '', 'web', 'web.test', 443, 'web.test',"
    "  'firefox', '::1', 1, 1700000004000000000, 0, 1, 2, 3, 0, 1, 'ok', '', 'TLS1.3', 'c',"
    "  'g', '', 0, 0, 's', '[]', NULL, '[]', '[]', 'handshake', 0, 0, 0, 0, '', 0, NULL, NULL,"
    "  NULL, NULL, 0, 0, NULL, NULL, NULL, '', 0, '', 0);"
    "INSERT INTO drops VALUES ('agent-1', 9, 1, 1700000000900000000, 1, 'spool_full', 4, 4,"
    " 1700000002500000000, 1700000002500000000);"
    "INSERT INTO spools VALUES ('agent-1', 9, 1700000000900000000, 1700000000900000000,"
    " 1700000003000000000, 4, 5, 1, 1), ('agent-2', 4, 1700000000900000000,"
    " 1700000000900000000, 1700000004000000000, 1, 1, 0, 0);"
    "UPDATE rollup_state SET watermark = 2;" /* a pass had rolled up rows 1 and 2 */
    "PRAGMA user_version = 5;";

/* Every version 5 column of every row, in one string: what the migration must keep. */
#define V5_COLUMNS                                                                           \
  "id, received_unix_ns, agent_id, instance_id, batch_seq, region, target, host, port, sni,"  \
  " profile, address, result_seq, started_unix_ns, dns_ns, connect_ns, handshake_ns,"         \
  " total_ns, loop_lag_ns, ok, error_class, error_detail, tls_version, cipher, grp, alpn,"    \
  " resumed, hello_retry_request, server_signature_algorithm, chain_json,"                   \
  " days_to_earliest_expiry, groups_offered, key_shares_offered, mode, ticket_received,"     \
  " resumption_handshake_ns, early_data_attempted, early_data_accepted, fidelity_note,"      \
  " ocsp_stapled, ocsp_cert_status, ocsp_this_update_unix, ocsp_next_update_unix,"           \
  " ocsp_age_seconds, chain_length_sent, chain_complete, http_status, http_first_byte_ns,"   \
  " http_hsts, address_family, emulation_checked, emulation_divergence,"                     \
  " early_data_policy_violation"

static char *all_columns(const char *path) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT " V5_COLUMNS " FROM results ORDER BY id", -1,
                                      &st, NULL),
                   SQLITE_OK);
  size_t cap = 1 << 16, len = 0;
  char *out = calloc(1, cap);
  assert_non_null(out);
  while (sqlite3_step(st) == SQLITE_ROW) {
    for (int c = 0; c < sqlite3_column_count(st); c++) {
      const char *kind = sqlite3_column_type(st, c) == SQLITE_NULL      ? "N"
                         : sqlite3_column_type(st, c) == SQLITE_INTEGER ? "I"
                                                                        : "T";
      const unsigned char *t = sqlite3_column_text(st, c);
      len += (size_t)snprintf(out + len, cap - len, "%s:%s|", kind, t ? (const char *)t : "");
      assert_true(len < cap);
    }
    len += (size_t)snprintf(out + len, cap - len, "\n");
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

static tp_err count_cert(const tp_store_chain_cert *c, void *ctx) {
  int *n = ctx;
  assert_int_equal(c->position, *n);
  (*n)++;
  return TP_E_OK;
}

typedef struct details_seen {
  int n;
  char text[8][96]; /* "target class detail" */
} details_seen;

static tp_err note_detail(const tp_store_detail *d, void *ctx) {
  details_seen *ds = ctx;
  assert_true(ds->n < 8);
  snprintf(ds->text[ds->n++], sizeof(ds->text[0]), "%s %s %s", d->target, d->error_class,
           d->detail);
  return TP_E_OK;
}

static int cmp_text(const void *a, const void *b) { return strcmp(a, b); }

/* The details since `since`, sorted, joined by "; ". */
static char *latest_details(tp_store *s, int64_t since) {
  char err[256] = "";
  details_seen ds = {0};
  if (tp_store_scan_latest_details(s, since, note_detail, &ds, err, sizeof(err)) != TP_E_OK)
    fail_msg("latest details: %s", err);
  qsort(ds.text, (size_t)ds.n, sizeof(ds.text[0]), cmp_text);
  static char out[1024];
  out[0] = '\0';
  for (int i = 0; i < ds.n; i++)
    snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? "; " : "", ds.text[i]);
  return out;
}

static void test_migrate_populated_v5_database(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  tp_store_facts facts;
  exec_sql(f->db, V5_DDL);
  exec_sql(f->db, V5_ROWS);
  char *before = all_columns(f->db);
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READONLY, &s, err, sizeof(err)),
                   TP_E_STORE);
  assert_non_null(strstr(err, "schema version 5 is older than 10"));
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 10);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM pragma_integrity_check"
                                    " WHERE integrity_check = 'ok'"),
                   1);
  /* Every column of every row, NULLs included, reads the same through the view. */
  char *after = all_columns(f->db);
  assert_string_equal(before, after);
  free(before);
  free(after);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'results'"
                                    " AND type = 'view'"),
                   1);
  /* Stored once: the shared chain, the shared series (row 3's is its own: its
   * address_family is NULL, "not recorded", not "ipv6"). */
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM chains"), 1);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM series"), 4);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM spool_keys"), 2);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM chains WHERE h IS NULL"), 0);
  assert_int_equal(query_int(f->db, "SELECT watermark FROM rollup_state"), 2);
  /* The numbers each spool has: agent-1 1-3 and 5, agent-2 1. */
  assert_int_equal(query_int(f->db, "SELECT group_concat(first_seq || '-' || last_seq) ="
                                    " '1-3,5-5' FROM seen JOIN spool_keys k ON k.id = spool"
                                    " WHERE k.agent_id = 'agent-1' ORDER BY first_seq"),
                   1);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM drops"), 1);
  assert_int_equal(query_int(f->db, "SELECT results + max_seq + dropped FROM spools"
                                    " WHERE agent_id = 'agent-1'"),
                   10);

  /* The store API reads the migrated rows as it read version 5's. */
  collected c = {.n = 0};
  assert_int_equal(tp_store_scan(s, &all_rows, collect_row, &c, err, sizeof(err)), TP_E_OK);
  assert_int_equal(c.n, 5);
  assert_true(c.rows[0].ok && c.rows[0].resumed && c.rows[0].hello_retry_request);
  assert_true(c.rows[0].early_data_accepted && c.rows[0].ocsp_stapled);
  assert_true(c.rows[0].emulation_checked && c.rows[0].early_data_policy_violation);
  assert_string_equal(c.family[0], "ipv6");
  assert_string_equal(c.divergence[0], "cipher X not offered");
  assert_int_equal(c.rows[0].days_to_earliest_expiry.v, 42);
  assert_int_equal(c.rows[0].ocsp_age_seconds.v, 10000);
  assert_int_equal(c.rows[0].schedule_lateness_ns, 0); /* not recorded before version 6 */
  assert_false(c.rows[0].saturated);
  assert_int_equal(c.rows[1].days_to_earliest_expiry.v, -3);
  assert_false(c.rows[2].days_to_earliest_expiry.set); /* version 1: 0 without a chain */
  assert_int_equal(tp_store_latest(s, "web", "firefox", "eu", 0, &facts, err, sizeof(err)),
                   TP_E_OK);
  assert_int_equal(facts.started_unix_ns, 1700000002000000000); /* row 3, version 1 */
  assert_null(facts.mode);
  assert_false(facts.groups_offered.set);
  assert_false(facts.ticket_received.set);
  assert_false(facts.emulation_checked.set);
  assert_int_equal(facts.n_chain, 0);
  tp_store_facts_clear(&facts);
  assert_int_equal(tp_store_latest(s, "api", "modern", "us", 0, &facts, err, sizeof(err)),
                   TP_E_OK);
  assert_string_equal(facts.mode, "resumption");
  assert_true(facts.ticket_received.set && facts.ticket_received.v == 1);
  assert_true(facts.ocsp_stapled);
  assert_string_equal(facts.ocsp_cert_status, "revoked");
  assert_true(facts.http_present && facts.http_status.v == 204 && facts.http_hsts.v == 0);
  assert_false(facts.emulation_checked.set); /* version 2 */
  assert_null(facts.address_family);
  tp_store_facts_clear(&facts);
  int certs = 0;
  assert_int_equal(tp_store_scan_chain(s, 1, count_cert, &certs, err, sizeof(err)), TP_E_OK);
  assert_int_equal(certs, 3);
  /* Version 10 filled each series' newest failure per class from the rows. */
  assert_string_equal(latest_details(s, 0), "web connection_refused ECONNREFUSED; "
                                            "web expired certificate expired 3 days ago");
  /* Version 8 filled each series' newest chain from the rows: row 2's (row 3, newer, has
   * none); api's rows have no chain. */
  assert_int_equal(query_int(f->db, "SELECT chain_row FROM series_latest AS l JOIN series AS s"
                                    " ON s.id = l.series WHERE s.target = 'web'"
                                    " AND s.address_family = 'ipv6' AND s.region = 'eu'"),
                   2);
  certs = 0;
  assert_int_equal(tp_store_scan_latest_chain(s, "web", "firefox", "eu", 0, count_cert, &certs,
                                              err, sizeof(err)),
                   TP_E_OK);
  assert_int_equal(certs, 3);
  assert_int_equal(tp_store_scan_latest_chain(s, "web", "firefox", "eu", 1700000001000000001,
                                              count_cert, &certs, err, sizeof(err)),
                   TP_E_NOTFOUND);
  assert_int_equal(tp_store_scan_latest_chain(s, "api", "modern", "us", 0, count_cert, &certs,
                                              err, sizeof(err)),
                   TP_E_NOTFOUND);

  /* Exactly once across the migration: agent-1's spool re-sends 1..6; only 4 and 6 are
   * new. */
  Tlsprobe__V1__ProbeResult r[6];
  Tlsprobe__V1__ProbeResult *rp[6];
  bool marks_r[6] = {false}, marks_d[1] = {false};
  for (int i = 0; i < 6; i++) {
    tlsprobe__v1__probe_result__init(&r[i]);
    r[i].target = "web";
    r[i].profile = "firefox";
    r[i].region = "eu";
    r[i].port = 443;
    r[i].ok = 1;
    r[i].error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
    r[i].started_unix_ns = 1700000010000000000 + i;
    r[i].result_seq = (uint64_t)i + 1;
    r[i].schedule_lateness_ns = 1234;
    r[i].saturated = i == 5;
    rp[i] = &r[i];
  }
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  b.agent_id = "agent-1";
  b.instance_id = 9;
  b.batch_seq = 2;
  b.results = rp;
  b.n_results = 6;
  tp_store_put_outcome put;
  tp_store_put_marks marks = {.results = marks_r, .drops = marks_d};
  assert_int_equal(tp_store_put_batch_marked(s, &b, 1700000011000000000, &put, &marks, err,
                                             sizeof(err)),
                   TP_E_OK);
  assert_int_equal(put.results_stored, 2);
  assert_false(put.duplicate);
  for (int i = 0; i < 6; i++)
    assert_int_equal(marks_r[i], i == 3 || i == 5);
  assert_int_equal(query_int(f->db, "SELECT group_concat(first_seq || '-' || last_seq) ="
                                    " '1-6' FROM seen JOIN spool_keys k ON k.id = spool"
                                    " WHERE k.agent_id = 'agent-1'"),
                   1);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results WHERE result_seq = 6"
                                    " AND agent_id = 'agent-1' AND saturated = 1"
                                    " AND schedule_lateness_ns = 1234"),
                   1);
  /* The new rows joined the migrated series and spool. */
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM spool_keys"), 2);
  assert_int_equal(tp_store_latest(s, "web", "firefox", "eu", 0, &facts, err, sizeof(err)),
                   TP_E_OK);
  assert_int_equal(facts.started_unix_ns, 1700000010000000005);
  tp_store_facts_clear(&facts);

  /* The first maintenance pass rolls up what the old watermark had not reached (rows 3,
   * 4, 5 and the two new ones), saturated counted apart. */
  tp_store_maintain_limits limits = {0};
  tp_store_maintain_stats st;
  assert_int_equal(tp_store_maintain(s, 1700000020000000000, &limits, &st, err, sizeof(err)),
                   TP_E_OK);
  assert_int_equal(st.rolled_up, 5);
  assert_int_equal(query_int(f->db, "SELECT sum(saturated) FROM rollups WHERE span_ns ="
                                    " 60000000000"),
                   1);
  tp_store_close(s);

  /* Reopening: nothing left to migrate; read-only opens read it. */
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READONLY, &s, err, sizeof(err)), TP_E_OK);
  collected ro = {.n = 0};
  assert_int_equal(tp_store_scan(s, &all_rows, collect_row, &ro, err, sizeof(err)), TP_E_OK);
  assert_int_equal(ro.n, 7);
  assert_true(ro.rows[6].saturated);
  assert_int_equal(ro.rows[6].schedule_lateness_ns, 1234);
  tp_store_close(s);
}

/* The version 3 facts through the store API: one result with each of them, one
 * with none (an agent older than the fields). */
static void test_v3_fields_round_trip(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  tp_store_facts facts;
  tp_store_put_outcome put = {.duplicate = true};
  Tlsprobe__V1__ProbeResult r[2] = {TLSPROBE__V1__PROBE_RESULT__INIT,
                                    TLSPROBE__V1__PROBE_RESULT__INIT};
  Tlsprobe__V1__ProbeResult *rp[2] = {&r[0], &r[1]};
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  for (int i = 0; i < 2; i++) {
    r[i].target = "web";
    r[i].profile = "android-7";
    r[i].region = "eu";
    r[i].port = 443;
    r[i].ok = 1;
    r[i].error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
    r[i].started_unix_ns = 1700000000000000000 + i; /* r[1] is the latest */
    r[i].result_seq = (uint64_t)i + 1;
  }
  r[0].address_family = "ipv6";
  r[0].emulation_checked = 1;
  r[0].emulation_divergence = "cipher TLS_RSA_AES_128_CBC_SHA1 not offered\n\"by\" the real client";
  r[0].mode = "early_data";
  r[0].early_data_attempted = r[0].early_data_accepted = 1;
  r[0].early_data_policy_violation = 1;
  b.agent_id = "agent-3";
  b.batch_seq = 1;
  b.results = rp;
  b.n_results = 2;
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  if (tp_store_put_batch(s, &b, 1700000000000000009, &put, err, sizeof(err)) != TP_E_OK)
    fail_msg("put: %s", err);
  assert_false(put.duplicate);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results WHERE started_unix_ns ="
                                    " 1700000000000000000 AND address_family='ipv6'"
                                    " AND emulation_checked=1 AND early_data_policy_violation=1"
                                    " AND emulation_divergence = 'cipher TLS_RSA_AES_128_CBC_SHA1"
                                    " not offered' || char(10) || '\"by\" the real client'"),
                   1);
  /* Not reported is stored as the wire's zero values, not NULL: NULL is kept for
   * rows older than the columns. */
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results WHERE started_unix_ns ="
                                    " 1700000000000000001 AND address_family=''"
                                    " AND emulation_checked=0 AND emulation_divergence=''"
                                    " AND early_data_policy_violation=0"),
                   1);

  collected c = {.n = 0};
  assert_int_equal(tp_store_scan(s, &all_rows, collect_row, &c, err, sizeof(err)), TP_E_OK);
  assert_int_equal(c.n, 2);
  assert_string_equal(c.family[0], "ipv6");
  assert_true(c.rows[0].emulation_checked);
  assert_string_equal(c.divergence[0],
                      "cipher TLS_RSA_AES_128_CBC_SHA1 not offered\n\"by\" the real client");
  assert_true(c.rows[0].early_data_policy_violation);
  assert_string_equal(c.family[1], "");
  assert_false(c.rows[1].emulation_checked);
  assert_string_equal(c.divergence[1], "");
  assert_false(c.rows[1].early_data_policy_violation);

  /* latest = r[1]: every version 3 fact present and zero. */
  assert_int_equal(tp_store_latest(s, "web", "android-7", "eu", 0, &facts, err, sizeof(err)),
                   TP_E_OK);
  assert_string_equal(facts.address_family, "");
  assert_string_equal(facts.emulation_divergence, "");
  assert_true(facts.emulation_checked.set);
  assert_int_equal(facts.emulation_checked.v, 0);
  assert_true(facts.early_data_policy_violation.set);
  assert_int_equal(facts.early_data_policy_violation.v, 0);
  tp_store_facts_clear(&facts);
  tp_store_close(s);

  /* A read-only open of a version 3 file reads the same. */
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READONLY, &s, err, sizeof(err)), TP_E_OK);
  collected ro = {.n = 0};
  assert_int_equal(tp_store_scan(s, &all_rows, collect_row, &ro, err, sizeof(err)), TP_E_OK);
  assert_int_equal(ro.n, 2);
  assert_string_equal(ro.family[0], "ipv6");
  assert_true(ro.rows[0].early_data_policy_violation);
  tp_store_close(s);
}

typedef struct leaf_seen {
  int certs;
  int64_t not_after;
} leaf_seen;

static tp_err note_leaf(const tp_store_chain_cert *c, void *ctx) {
  leaf_seen *l = ctx;
  if (c->position == 0)
    l->not_after = c->not_after_unix;
  l->certs++;
  return TP_E_OK;
}

/* The leaf's notAfter of the series' newest chain since `since`, or -1 if none. */
static int64_t latest_leaf(tp_store *s, const char *target, int64_t since) {
  char err[256] = "";
  leaf_seen l = {0};
  tp_err rc = tp_store_scan_latest_chain(s, target, "modern", "eu", since, note_leaf, &l, err,
                                         sizeof(err));
  if (rc == TP_E_NOTFOUND)
    return -1;
  if (rc != TP_E_OK)
    fail_msg("latest chain: %s", err);
  assert_int_equal(l.certs, 1);
  return l.not_after;
}

/* Puts one result of series (web, modern, eu) at `address`: ok with a one-certificate
 * chain expiring at not_after, or (not_after 0) a refused connection without one. */
static void put_chain_result(tp_store *s, uint64_t seq, int64_t started, int64_t not_after,
                             const char *address) {
  char err[256] = "";
  Tlsprobe__V1__CertificateFacts cert = TLSPROBE__V1__CERTIFICATE_FACTS__INIT;
  Tlsprobe__V1__CertificateFacts *certs[1] = {&cert};
  cert.subject = "CN=web";
  cert.issuer = "CN=ca";
  cert.not_before_unix = 1;
  cert.not_after_unix = not_after;
  Tlsprobe__V1__ProbeResult r = TLSPROBE__V1__PROBE_RESULT__INIT;
  Tlsprobe__V1__ProbeResult *rp[1] = {&r};
  char detail[64];
  r.target = "web";
  r.profile = "modern";
  r.region = "eu";
  r.port = 443;
  r.address = (char *)address;
  r.started_unix_ns = started;
  r.result_seq = seq;
  if (not_after != 0) {
    r.ok = 1;
    r.error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
    r.chain = certs;
    r.n_chain = 1;
    r.days_to_earliest_expiry = 30;
  } else {
    r.error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_CONNECTION_REFUSED;
    snprintf(detail, sizeof(detail), "refused at %lld", (long long)started);
    r.error_detail = detail;
  }
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  b.agent_id = "agent-c";
  b.batch_seq = seq;
  b.results = rp;
  b.n_results = 1;
  tp_store_put_outcome put;
  if (tp_store_put_batch(s, &b, started + 1000, &put, err, sizeof(err)) != TP_E_OK)
    fail_msg("put: %s", err);
  assert_int_equal(put.results_stored, 1);
}

/* Each series' newest chain (schema version 8) follows the results: a later failure
 * without a chain keeps it, an older result delivered late does not replace it, a
 * newer one at another address of the same names (another series row) does, and so
 * does a row written through the results view; a window starting after it has none. */
static void test_latest_chain_follows_results(void **state) {
  /* (and, schema version 10, each series' newest failure per class: the same rules) */
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  assert_int_equal(latest_leaf(s, "web", 0), -1);
  put_chain_result(s, 1, 1000, 7000, "192.0.2.1");
  put_chain_result(s, 2, 2000, 8000, "192.0.2.1");
  put_chain_result(s, 3, 3000, 0, "192.0.2.1"); /* refused: no chain */
  assert_int_equal(latest_leaf(s, "web", 0), 8000);
  /* Failures' details (schema version 10): only the refused one, none since after it. */
  assert_string_equal(latest_details(s, 0), "web connection_refused refused at 3000");
  assert_string_equal(latest_details(s, 3001), "");
  assert_int_equal(latest_leaf(s, "web", 2000), 8000);
  assert_int_equal(latest_leaf(s, "web", 2001), -1); /* only the failure since */
  assert_int_equal(latest_leaf(s, "api", 0), -1);
  put_chain_result(s, 4, 1500, 9000, "192.0.2.1"); /* late, older */
  assert_int_equal(latest_leaf(s, "web", 0), 8000);
  put_chain_result(s, 6, 2500, 0, "192.0.2.1"); /* a late, older failure: not the newest */
  put_chain_result(s, 7, 3500, 0, "192.0.2.1"); /* a newer one replaces it */
  assert_string_equal(latest_details(s, 0), "web connection_refused refused at 3500");
  put_chain_result(s, 5, 4000, 9500, "192.0.2.2"); /* newer, another series row */
  assert_int_equal(latest_leaf(s, "web", 0), 9500);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM series WHERE target = 'web'"), 2);
  /* Through the view (its trigger merges like the writer): newer wins, older does not. */
  static const char VIEW_INSERT[] =
      "INSERT INTO results (received_unix_ns, agent_id, instance_id, batch_seq, region, target,"
      " host, port, sni, profile, address, result_seq, started_unix_ns, dns_ns, connect_ns,"
      " handshake_ns, total_ns, loop_lag_ns, ok, error_class, error_detail, tls_version, cipher,"
      " grp, alpn, resumed, hello_retry_request, server_signature_algorithm, chain_json,"
      " days_to_earliest_expiry) VALUES (%d, 'agent-v', 1, 1, 'eu', 'web', '', 443, '',"
      " 'modern', '192.0.2.1', %d, %d, 0, 0, 0, 0, 0, 1, 'ok', '', 'TLS1.3', 'c', 'g', '', 0, 0,"
      " 's', '[{\"subject\":\"CN=web\",\"issuer\":\"CN=ca\",\"not_before_unix\":1,"
      "\"not_after_unix\":%d}]', 30)";
  char sql[sizeof(VIEW_INSERT) + 64];
  snprintf(sql, sizeof(sql), VIEW_INSERT, 5001, 1, 5000, 9900);
  exec_sql(f->db, sql);
  snprintf(sql, sizeof(sql), VIEW_INSERT, 4501, 2, 100, 1234);
  exec_sql(f->db, sql);
  assert_int_equal(latest_leaf(s, "web", 0), 9900);
  /* A failure through the view: its own series row (host ''), newest of its class. */
  exec_sql(f->db,
           "INSERT INTO results (received_unix_ns, agent_id, instance_id, batch_seq, region,"
           " target, host, port, sni, profile, address, result_seq, started_unix_ns, dns_ns,"
           " connect_ns, handshake_ns, total_ns, loop_lag_ns, ok, error_class, error_detail,"
           " tls_version, cipher, grp, alpn, resumed, hello_retry_request,"
           " server_signature_algorithm, chain_json, days_to_earliest_expiry) VALUES (6001,"
           " 'agent-v', 1, 1, 'eu', 'web', '', 443, '', 'modern', '192.0.2.1', 3, 6000, 0, 0, 0,"
           " 0, 0, 0, 'handshake_timeout', 'no answer in 5 s', '', '', '', '', 0, 0, '', '[]',"
           " NULL)");
  assert_string_equal(latest_details(s, 0), "web connection_refused refused at 3500; "
                                            "web handshake_timeout no answer in 5 s");
  assert_string_equal(latest_details(s, 5000), "web handshake_timeout no answer in 5 s");
  tp_store_close(s);
}

/* Several failures of one (series, class) in one batch, out of order, and a timeout
 * among them: one upsert per key, the newest detail each. */
static void test_latest_details_within_one_batch(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)), TP_E_OK);
  static const int64_t started[4] = {10000, 12000, 11000, 11500};
  static const char *const details[4] = {"first", "newest", "middle", "a timeout"};
  Tlsprobe__V1__ProbeResult r[4];
  Tlsprobe__V1__ProbeResult *rp[4];
  for (int i = 0; i < 4; i++) {
    tlsprobe__v1__probe_result__init(&r[i]);
    r[i].target = "web";
    r[i].profile = "modern";
    r[i].region = "eu";
    r[i].port = 443;
    r[i].started_unix_ns = started[i];
    r[i].result_seq = (uint64_t)i + 1;
    r[i].error_class = i == 3 ? TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_HANDSHAKE_TIMEOUT
                              : TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_CONNECTION_REFUSED;
    r[i].error_detail = (char *)details[i];
    rp[i] = &r[i];
  }
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  b.agent_id = "agent-d";
  b.batch_seq = 1;
  b.results = rp;
  b.n_results = 4;
  tp_store_put_outcome put;
  if (tp_store_put_batch(s, &b, 20000, &put, err, sizeof(err)) != TP_E_OK)
    fail_msg("put: %s", err);
  assert_int_equal(put.results_stored, 4);
  assert_string_equal(latest_details(s, 0), "web connection_refused newest; "
                                            "web handshake_timeout a timeout");
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM class_latest"), 2);
  tp_store_close(s);
}

/* A version 1 file whose results table is not what version 1 created (here: the
 * column is already nullable) is refused, and the failed migration leaves the
 * file exactly as it was. */
static void test_migration_failure_rolls_back(void **state) {
  fixture *f = *state;
  char err[512] = "";
  tp_store *s = NULL;
  char ddl[sizeof(V1_DDL)];
  memcpy(ddl, V1_DDL, sizeof(ddl));
  char *nn = strstr(ddl, "days_to_earliest_expiry INTEGER NOT NULL");
  assert_non_null(nn);
  memcpy(nn + strlen("days_to_earliest_expiry INTEGER"), "         ", 9); /* blank NOT NULL */
  exec_sql(f->db, ddl);
  exec_sql(f->db, "PRAGMA user_version = 1");
  assert_int_equal(tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &s, err, sizeof(err)),
                   TP_E_STORE);
  assert_null(s);
  assert_non_null(strstr(err, "refusing to migrate"));
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 1);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM pragma_table_info('results')"
                                    " WHERE name = 'groups_offered'"),
                   0);
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
  assert_int_equal(tp_store_scan(s, &all_rows, count_row, &n, err, sizeof(err)), TP_E_OK);
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
      T(test_migrate_real_v1_database),
      T(test_migrate_real_v2_database),
      T(test_migrate_populated_v5_database),
      T(test_v3_fields_round_trip),
      T(test_latest_chain_follows_results),
      T(test_latest_details_within_one_batch),
      T(test_migration_failure_rolls_back),
      T(test_newer_schema_is_refused),
      T(test_readonly_missing_file),
      T(test_readonly_unmigrated_file_reads_empty),
      cmocka_unit_test(test_unwritable_path),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
