/* store_sqlite.c - the SQLite storage backend.
 *
 * Owns the sqlite3 connection, the schema and its migrations; the statements are
 * prepared once at open by the files that use them (store_sqlite_internal.h lists
 * them). Durability: WAL + synchronous=FULL, i.e. a committed batch survives a
 * collector crash and an OS crash; the ack is only sent after COMMIT returned, and
 * the agent then deletes its copy. Group commit (store_sqlite_write.c) makes that one
 * fsync per group of batches instead of one per batch.
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

#include "store_sqlite_internal.h"
#include "tp_mem.h"

#define SCHEMA_VERSION 10
#define BUSY_TIMEOUT_MS 5000

/* Migration SQL, then an optional step in C for what SQL alone cannot do. */
typedef struct migration {
  const char *sql;
  tp_err (*step)(sqlite_store *s, char *err, size_t errlen);
} migration;

/* Version 10's addition to the trigger: a failed result's detail into class_latest. */
#define SQL_RESULTS_TRIGGER_CLASS_V10 \
    " INSERT INTO class_latest (series, error_class, started_unix_ns, row_id, detail)" \
    "  SELECT r.series, f.error_class, r.started_unix_ns, r.id, r.error_detail" \
    "  FROM result_rows AS r JOIN shapes AS f ON f.id = r.shape" \
    "  JOIN spool_keys AS k ON k.id = r.spool WHERE r.id = last_insert_rowid()" \
    "  AND k.agent_id = NEW.agent_id AND k.instance_id = NEW.instance_id" \
    "  AND r.result_seq = NEW.result_seq AND f.error_class <> 'ok'" SQL_CLASS_LATEST_MERGE ";"

static tp_err relax_days_not_null(sqlite_store *s, char *err, size_t errlen);
static tp_err finish_v6(sqlite_store *s, char *err, size_t errlen);

/* The results view's INSTEAD OF INSERT trigger up to its series_latest statement, which
 * changed in version 8 (the newest chain too): versions 6 and 8 each end it their way. */
#define SQL_RESULTS_TRIGGER_HEAD \
    "CREATE TRIGGER results_insert INSTEAD OF INSERT ON results BEGIN" \
    " INSERT INTO spool_keys (agent_id, instance_id) SELECT NEW.agent_id, NEW.instance_id" \
    "  WHERE NOT EXISTS (SELECT 1 FROM spool_keys WHERE agent_id = NEW.agent_id" \
    "  AND instance_id = NEW.instance_id);" \
    " INSERT INTO series (target, profile, region, host, port, sni, address, address_family)" \
    "  SELECT NEW.target, NEW.profile, NEW.region, NEW.host, NEW.port, NEW.sni, NEW.address," \
    "  NEW.address_family WHERE NOT EXISTS (SELECT 1 FROM series WHERE target IS NEW.target" \
    "  AND profile IS NEW.profile AND region IS NEW.region AND host IS NEW.host" \
    "  AND port IS NEW.port AND sni IS NEW.sni AND address IS NEW.address" \
    "  AND address_family IS NEW.address_family);" \
    " INSERT INTO shapes (error_class, tls_version, cipher, grp, alpn," \
    "  server_signature_algorithm, mode, groups_offered, key_shares_offered, fidelity_note," \
    "  emulation_divergence, ocsp_cert_status)" \
    "  SELECT NEW.error_class, NEW.tls_version, NEW.cipher, NEW.grp, NEW.alpn," \
    "  NEW.server_signature_algorithm, NEW.mode, NEW.groups_offered, NEW.key_shares_offered," \
    "  NEW.fidelity_note, NEW.emulation_divergence, NEW.ocsp_cert_status" \
    "  WHERE NOT EXISTS (SELECT 1 FROM shapes WHERE error_class IS NEW.error_class" \
    "  AND tls_version IS NEW.tls_version AND cipher IS NEW.cipher AND grp IS NEW.grp" \
    "  AND alpn IS NEW.alpn AND server_signature_algorithm IS NEW.server_signature_algorithm" \
    "  AND mode IS NEW.mode AND groups_offered IS NEW.groups_offered" \
    "  AND key_shares_offered IS NEW.key_shares_offered AND fidelity_note IS NEW.fidelity_note" \
    "  AND emulation_divergence IS NEW.emulation_divergence" \
    "  AND ocsp_cert_status IS NEW.ocsp_cert_status);" \
    " INSERT INTO chains (chain_json) SELECT NEW.chain_json" \
    "  WHERE coalesce(NEW.chain_json, '[]') <> '[]'" \
    "  AND NOT EXISTS (SELECT 1 FROM chains WHERE chain_json = NEW.chain_json);" \
    " INSERT INTO result_rows (id, spool, result_seq, series, shape, chain, started_unix_ns," \
    "  received_delay_ns, batch_seq, dns_ns, connect_ns, handshake_ns, total_ns, loop_lag_ns," \
    "  schedule_lateness_ns, resumption_handshake_ns, flags, error_detail," \
    "  days_to_earliest_expiry, chain_length_sent, ocsp_this_update_unix," \
    "  ocsp_next_update_unix, ocsp_age_seconds, http_status, http_first_byte_ns)" \
    "  SELECT NEW.id, k.id, NEW.result_seq," \
    "  (SELECT id FROM series WHERE target IS NEW.target AND profile IS NEW.profile" \
    "   AND region IS NEW.region AND host IS NEW.host AND port IS NEW.port AND sni IS NEW.sni" \
    "   AND address IS NEW.address AND address_family IS NEW.address_family" \
    "   ORDER BY id LIMIT 1)," \
    "  (SELECT id FROM shapes WHERE error_class IS NEW.error_class" \
    "   AND tls_version IS NEW.tls_version AND cipher IS NEW.cipher AND grp IS NEW.grp" \
    "   AND alpn IS NEW.alpn AND server_signature_algorithm IS NEW.server_signature_algorithm" \
    "   AND mode IS NEW.mode AND groups_offered IS NEW.groups_offered" \
    "   AND key_shares_offered IS NEW.key_shares_offered AND fidelity_note IS NEW.fidelity_note" \
    "   AND emulation_divergence IS NEW.emulation_divergence" \
    "   AND ocsp_cert_status IS NEW.ocsp_cert_status ORDER BY id LIMIT 1)," \
    "  (SELECT id FROM chains WHERE chain_json = NEW.chain_json AND NEW.chain_json <> '[]'" \
    "   ORDER BY id LIMIT 1)," \
    "  NEW.started_unix_ns, NEW.received_unix_ns - NEW.started_unix_ns, NEW.batch_seq," \
    "  NEW.dns_ns, NEW.connect_ns, NEW.handshake_ns, NEW.total_ns, NEW.loop_lag_ns," \
    "  NEW.schedule_lateness_ns, NEW.resumption_handshake_ns," \
    "  (NEW.ok <> 0) | ((NEW.resumed <> 0) << 1) | ((NEW.hello_retry_request <> 0) << 2)" \
    "  | ((coalesce(NEW.ticket_received, 0) <> 0) << 3)" \
    "  | ((coalesce(NEW.early_data_attempted, 0) <> 0) << 4)" \
    "  | ((coalesce(NEW.early_data_accepted, 0) <> 0) << 5)" \
    "  | ((coalesce(NEW.ocsp_stapled, 0) <> 0) << 6)" \
    "  | ((coalesce(NEW.chain_complete, 0) <> 0) << 7)" \
    "  | ((coalesce(NEW.http_hsts, 0) <> 0) << 8)" \
    "  | ((coalesce(NEW.emulation_checked, 0) <> 0) << 9)" \
    "  | ((coalesce(NEW.early_data_policy_violation, 0) <> 0) << 10)" \
    "  | ((coalesce(NEW.saturated, 0) <> 0) << 11)" \
    "  | ((NEW.ticket_received IS NULL) << 12) | ((NEW.early_data_attempted IS NULL) << 13)" \
    "  | ((NEW.early_data_accepted IS NULL) << 14) | ((NEW.ocsp_stapled IS NULL) << 15)" \
    "  | ((NEW.chain_complete IS NULL) << 16) | ((NEW.emulation_checked IS NULL) << 17)" \
    "  | ((NEW.early_data_policy_violation IS NULL) << 18)," \
    "  NEW.error_detail, NEW.days_to_earliest_expiry, NEW.chain_length_sent," \
    "  NEW.ocsp_this_update_unix, NEW.ocsp_next_update_unix, NEW.ocsp_age_seconds," \
    "  NEW.http_status, NEW.http_first_byte_ns" \
    "  FROM spool_keys AS k WHERE k.agent_id = NEW.agent_id AND k.instance_id = NEW.instance_id" \
    /* covered: the interval starting last at or before the number reaches it (one seek \
     * in the primary key, whatever the number of intervals) */ \
    "  AND NOT EXISTS (SELECT 1 FROM (SELECT last_seq FROM seen WHERE spool = k.id" \
    "  AND first_seq <= NEW.result_seq ORDER BY first_seq DESC LIMIT 1)" \
    "  WHERE last_seq >= NEW.result_seq);" \
    /* A new row's number extends the interval just below it, or starts one. */ \
    " UPDATE seen SET last_seq = NEW.result_seq" \
    "  WHERE last_seq = NEW.result_seq - 1 AND (spool, first_seq) = (SELECT r.spool," \
    "  (SELECT max(first_seq) FROM seen WHERE spool = r.spool AND first_seq <= NEW.result_seq)" \
    "  FROM result_rows AS r JOIN spool_keys AS k ON k.id = r.spool" \
    "  WHERE r.id = last_insert_rowid() AND k.agent_id = NEW.agent_id" \
    "  AND k.instance_id = NEW.instance_id AND r.result_seq = NEW.result_seq);" \
    " INSERT OR IGNORE INTO seen (spool, first_seq, last_seq)" \
    "  SELECT r.spool, r.result_seq, r.result_seq FROM result_rows AS r" \
    "  JOIN spool_keys AS k ON k.id = r.spool WHERE r.id = last_insert_rowid()" \
    "  AND k.agent_id = NEW.agent_id AND k.instance_id = NEW.instance_id" \
    "  AND r.result_seq = NEW.result_seq AND NOT EXISTS (SELECT 1 FROM (SELECT last_seq" \
    "  FROM seen WHERE spool = r.spool AND first_seq <= NEW.result_seq" \
    "  ORDER BY first_seq DESC LIMIT 1) WHERE last_seq >= NEW.result_seq);"

/* Version 6's last statement of the trigger: the newest row only. */
#define SQL_RESULTS_TRIGGER_LATEST_V6 \
    /* both WITHOUT ROWID: last_insert_rowid() is still the new row's */ \
    " INSERT OR REPLACE INTO series_latest (series, started_unix_ns, id)" \
    "  SELECT r.series, r.started_unix_ns, r.id FROM result_rows AS r" \
    "  JOIN spool_keys AS k ON k.id = r.spool WHERE r.id = last_insert_rowid()" \
    "  AND k.agent_id = NEW.agent_id AND k.instance_id = NEW.instance_id" \
    "  AND r.result_seq = NEW.result_seq AND NOT EXISTS (SELECT 1 FROM series_latest AS l" \
    "  WHERE l.series = r.series AND (l.started_unix_ns > r.started_unix_ns" \
    "  OR (l.started_unix_ns = r.started_unix_ns AND l.id > r.id)));"

/* Version 8's: the newest row and the newest row with a chain, merged like the writer's. */
#define SQL_RESULTS_TRIGGER_LATEST_V8 \
    " INSERT INTO series_latest (series, started_unix_ns, id, chain, chain_unix_ns, chain_row)" \
    "  SELECT r.series, r.started_unix_ns, r.id, r.chain," \
    "  CASE WHEN r.chain IS NOT NULL THEN r.started_unix_ns END," \
    "  CASE WHEN r.chain IS NOT NULL THEN r.id END FROM result_rows AS r" \
    "  JOIN spool_keys AS k ON k.id = r.spool WHERE r.id = last_insert_rowid()" \
    "  AND k.agent_id = NEW.agent_id AND k.instance_id = NEW.instance_id" \
    "  AND r.result_seq = NEW.result_seq" SQL_SERIES_LATEST_MERGE ";"

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
    /* 5 -> 6: one narrow row per result (store_sqlite_internal.h). What repeats is
     * stored once in a dictionary and referenced by id -- spool_keys, series, shapes
     * (outcome and negotiated facts), chains -- booleans are bits of `flags`, and
     * exactly-once moves from the unique index results_identity to `seen`, each spool's
     * stored result_seq values as intervals (store_sqlite_write.c): 0.87-1.4 KiB per
     * result becomes ~110 bytes, indexes included. Every row is copied (ids kept: the
     * rollup watermark refers to them) and checked counted before `results` is
     * dropped; `results` becomes a view with every version 5 column, so SQL written
     * against earlier versions reads on. The dictionaries' `h` is tp_intern_hash of
     * their content, the key the writer finds them by. rollups gain `saturated`. The
     * copy rewrites the database: minutes for millions of rows, the file keeps the
     * old pages free (VACUUM returns them). */
    {"CREATE TABLE spool_keys ("
     "  id INTEGER PRIMARY KEY,"
     "  agent_id TEXT NOT NULL,"
     "  instance_id INTEGER NOT NULL,"
     "  UNIQUE (agent_id, instance_id));"
     "CREATE TABLE seen ("
     "  spool INTEGER NOT NULL,"
     "  first_seq INTEGER NOT NULL,"
     "  last_seq INTEGER NOT NULL,"
     "  PRIMARY KEY (spool, first_seq)) WITHOUT ROWID;"
     "CREATE TABLE series ("
     "  id INTEGER PRIMARY KEY,"
     "  h INTEGER,"
     "  target TEXT NOT NULL,"
     "  profile TEXT NOT NULL,"
     "  region TEXT NOT NULL,"
     "  host TEXT NOT NULL,"
     "  port INTEGER NOT NULL,"
     "  sni TEXT NOT NULL,"
     "  address TEXT NOT NULL,"
     "  address_family TEXT);"
     "CREATE INDEX series_h ON series (h);"
     "CREATE INDEX series_name ON series (target, profile, region);"
     "CREATE TABLE shapes ("
     "  id INTEGER PRIMARY KEY,"
     "  h INTEGER,"
     "  error_class TEXT NOT NULL,"
     "  tls_version TEXT NOT NULL,"
     "  cipher TEXT NOT NULL,"
     "  grp TEXT NOT NULL,"
     "  alpn TEXT NOT NULL,"
     "  server_signature_algorithm TEXT NOT NULL,"
     "  mode TEXT,"
     "  groups_offered TEXT,"
     "  key_shares_offered TEXT,"
     "  fidelity_note TEXT,"
     "  emulation_divergence TEXT,"
     "  ocsp_cert_status TEXT);"
     "CREATE INDEX shapes_h ON shapes (h);"
     "CREATE TABLE chains ("
     "  id INTEGER PRIMARY KEY,"
     "  h INTEGER,"
     "  chain_json TEXT NOT NULL);"
     "CREATE INDEX chains_h ON chains (h);"
     "CREATE TABLE result_rows ("
     "  id INTEGER PRIMARY KEY,"
     "  spool INTEGER NOT NULL,"
     "  result_seq INTEGER NOT NULL,"
     "  series INTEGER NOT NULL,"
     "  shape INTEGER NOT NULL,"
     "  chain INTEGER,"
     "  started_unix_ns INTEGER NOT NULL,"
     "  received_delay_ns INTEGER NOT NULL,"
     "  batch_seq INTEGER NOT NULL,"
     "  dns_ns INTEGER NOT NULL,"
     "  connect_ns INTEGER NOT NULL,"
     "  handshake_ns INTEGER NOT NULL,"
     "  total_ns INTEGER NOT NULL,"
     "  loop_lag_ns INTEGER NOT NULL,"
     "  schedule_lateness_ns INTEGER,"
     "  resumption_handshake_ns INTEGER,"
     "  flags INTEGER NOT NULL,"
     "  error_detail TEXT NOT NULL,"
     "  days_to_earliest_expiry INTEGER,"
     "  chain_length_sent INTEGER,"
     "  ocsp_this_update_unix INTEGER,"
     "  ocsp_next_update_unix INTEGER,"
     "  ocsp_age_seconds INTEGER,"
     "  http_status INTEGER,"
     "  http_first_byte_ns INTEGER);"
     "INSERT INTO spool_keys (agent_id, instance_id)"
     " SELECT DISTINCT agent_id, instance_id FROM results ORDER BY agent_id, instance_id;"
     "INSERT INTO series (h, target, profile, region, host, port, sni, address, address_family)"
     " SELECT tp_intern_hash(target, profile, region, host, port, sni, address, address_family),"
     " * FROM (SELECT DISTINCT target, profile, region, host, port, sni, address, address_family"
     " FROM results);"
     "INSERT INTO shapes (h, error_class, tls_version, cipher, grp, alpn,"
     " server_signature_algorithm, mode, groups_offered, key_shares_offered, fidelity_note,"
     " emulation_divergence, ocsp_cert_status)"
     " SELECT tp_intern_hash(error_class, tls_version, cipher, grp, alpn,"
     " server_signature_algorithm, mode, groups_offered, key_shares_offered, fidelity_note,"
     " emulation_divergence, ocsp_cert_status), * FROM (SELECT DISTINCT error_class,"
     " tls_version, cipher, grp, alpn, server_signature_algorithm, mode, groups_offered,"
     " key_shares_offered, fidelity_note, emulation_divergence, ocsp_cert_status FROM results);"
     "INSERT INTO chains (h, chain_json) SELECT tp_intern_hash(chain_json), chain_json"
     " FROM (SELECT DISTINCT chain_json FROM results WHERE chain_json <> '[]');"
     "INSERT INTO result_rows (id, spool, result_seq, series, shape, chain, started_unix_ns,"
     " received_delay_ns, batch_seq, dns_ns, connect_ns, handshake_ns, total_ns, loop_lag_ns,"
     " schedule_lateness_ns, resumption_handshake_ns, flags, error_detail,"
     " days_to_earliest_expiry, chain_length_sent, ocsp_this_update_unix,"
     " ocsp_next_update_unix, ocsp_age_seconds, http_status, http_first_byte_ns)"
     " SELECT r.id, k.id, r.result_seq,"
     " (SELECT s.id FROM series AS s WHERE s.h = tp_intern_hash(r.target, r.profile, r.region,"
     "  r.host, r.port, r.sni, r.address, r.address_family) AND s.target IS r.target"
     "  AND s.profile IS r.profile AND s.region IS r.region AND s.host IS r.host"
     "  AND s.port IS r.port AND s.sni IS r.sni AND s.address IS r.address"
     "  AND s.address_family IS r.address_family ORDER BY s.id LIMIT 1),"
     " (SELECT f.id FROM shapes AS f WHERE f.h = tp_intern_hash(r.error_class, r.tls_version,"
     "  r.cipher, r.grp, r.alpn, r.server_signature_algorithm, r.mode, r.groups_offered,"
     "  r.key_shares_offered, r.fidelity_note, r.emulation_divergence, r.ocsp_cert_status)"
     "  AND f.error_class IS r.error_class AND f.tls_version IS r.tls_version"
     "  AND f.cipher IS r.cipher AND f.grp IS r.grp AND f.alpn IS r.alpn"
     "  AND f.server_signature_algorithm IS r.server_signature_algorithm AND f.mode IS r.mode"
     "  AND f.groups_offered IS r.groups_offered AND f.key_shares_offered IS r.key_shares_offered"
     "  AND f.fidelity_note IS r.fidelity_note AND f.emulation_divergence IS r.emulation_divergence"
     "  AND f.ocsp_cert_status IS r.ocsp_cert_status ORDER BY f.id LIMIT 1),"
     " CASE WHEN r.chain_json <> '[]' THEN (SELECT c.id FROM chains AS c"
     "  WHERE c.h = tp_intern_hash(r.chain_json) AND c.chain_json = r.chain_json"
     "  ORDER BY c.id LIMIT 1) END,"
     " r.started_unix_ns, r.received_unix_ns - r.started_unix_ns, r.batch_seq, r.dns_ns,"
     " r.connect_ns, r.handshake_ns, r.total_ns, r.loop_lag_ns, NULL, r.resumption_handshake_ns,"
     " (r.ok <> 0) | ((r.resumed <> 0) << 1) | ((r.hello_retry_request <> 0) << 2)"
     " | ((coalesce(r.ticket_received, 0) <> 0) << 3)"
     " | ((coalesce(r.early_data_attempted, 0) <> 0) << 4)"
     " | ((coalesce(r.early_data_accepted, 0) <> 0) << 5)"
     " | ((coalesce(r.ocsp_stapled, 0) <> 0) << 6) | ((coalesce(r.chain_complete, 0) <> 0) << 7)"
     " | ((coalesce(r.http_hsts, 0) <> 0) << 8) | ((coalesce(r.emulation_checked, 0) <> 0) << 9)"
     " | ((coalesce(r.early_data_policy_violation, 0) <> 0) << 10)"
     " | ((r.ticket_received IS NULL) << 12) | ((r.early_data_attempted IS NULL) << 13)"
    " | ((r.early_data_accepted IS NULL) << 14) | ((r.ocsp_stapled IS NULL) << 15)"
    " | ((r.chain_complete IS NULL) << 16) | ((r.emulation_checked IS NULL) << 17)"
    " | ((r.early_data_policy_violation IS NULL) << 18),"
     " r.error_detail, r.days_to_earliest_expiry, r.chain_length_sent, r.ocsp_this_update_unix,"
     " r.ocsp_next_update_unix, r.ocsp_age_seconds, r.http_status, r.http_first_byte_ns"
     " FROM results AS r JOIN spool_keys AS k ON k.agent_id = r.agent_id"
     " AND k.instance_id = r.instance_id ORDER BY r.id;",
     finish_v6},
    /* 6 -> 7: the negotiated mix of rollups (negotiated_mix.h), so version, cipher and
     * group distributions hold over windows only rollups cover. NULL in spans rolled
     * up before: not recorded (the report counts them apart). */
    {"ALTER TABLE rollups ADD COLUMN negotiated BLOB;", NULL},
    /* 7 -> 8: each series' newest chain beside its newest row (store_sqlite_internal.h),
     * so `report expiry` finds the certificates a series shows now with one lookup
     * instead of a scan of the window's rows -- and still after raw retention (the
     * chains dictionary is never deleted). Filled from the rows there are. */
    {"ALTER TABLE series_latest ADD COLUMN chain INTEGER;"
     "ALTER TABLE series_latest ADD COLUMN chain_unix_ns INTEGER;"
     "ALTER TABLE series_latest ADD COLUMN chain_row INTEGER;"
     "UPDATE series_latest SET chain = b.chain, chain_unix_ns = b.started_unix_ns,"
     " chain_row = b.id FROM (SELECT series, chain, started_unix_ns, id FROM (SELECT series,"
     " chain, started_unix_ns, id, row_number() OVER (PARTITION BY series"
     " ORDER BY started_unix_ns DESC, id DESC) AS n FROM result_rows WHERE chain IS NOT NULL)"
     " WHERE n = 1) AS b WHERE b.series = series_latest.series;"
     "DROP TRIGGER results_insert;" SQL_RESULTS_TRIGGER_HEAD SQL_RESULTS_TRIGGER_LATEST_V8
     " END;",
     NULL},
    /* 8 -> 9: day rows beside the minute and hour rows (store.h), the stored hours
     * merged per UTC day, so a 30-day window reads 30 rows per group instead of 720. */
    {tp__sqlite_days_from_hours, NULL},
    /* 9 -> 10: per series and failure class the newest result's detail (written like
     * series_latest), so an errors view that rollups serve still shows what failed, and
     * past raw retention. Filled from the rows there are. */
    {"CREATE TABLE class_latest ("
     "  series INTEGER NOT NULL,"
     "  error_class TEXT NOT NULL,"
     "  started_unix_ns INTEGER NOT NULL,"
     "  row_id INTEGER NOT NULL,"
     "  detail TEXT NOT NULL,"
     "  PRIMARY KEY (series, error_class)) WITHOUT ROWID;"
     "INSERT INTO class_latest SELECT series, error_class, started_unix_ns, id, error_detail"
     " FROM (SELECT r.series AS series, f.error_class AS error_class,"
     " r.started_unix_ns AS started_unix_ns, r.id AS id, r.error_detail AS error_detail,"
     " row_number() OVER (PARTITION BY r.series, f.error_class"
     " ORDER BY r.started_unix_ns DESC, r.id DESC) AS n"
     " FROM result_rows AS r JOIN shapes AS f ON f.id = r.shape WHERE f.error_class <> 'ok')"
     " WHERE n = 1;"
     "DROP TRIGGER results_insert;" SQL_RESULTS_TRIGGER_HEAD SQL_RESULTS_TRIGGER_LATEST_V8
     SQL_RESULTS_TRIGGER_CLASS_V10 " END;",
     NULL},
};

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

/* The second half of 5 -> 6, once every row was copied: count them (a row the copy's
 * join had missed would vanish with the table), then the seen intervals, drop the old
 * table, index the new one (built sorted, after the copy), and the compatibility view
 * and trigger. */
static const char SQL_V6_FINISH[] =
    "INSERT INTO seen (spool, first_seq, last_seq)"
    " SELECT spool, min(result_seq), max(result_seq) FROM (SELECT spool, result_seq,"
    "  result_seq - row_number() OVER (PARTITION BY spool ORDER BY result_seq) AS island"
    "  FROM result_rows) GROUP BY spool, island;"
    "DROP TABLE results;"
    "CREATE INDEX result_rows_started ON result_rows (started_unix_ns);"
    /* Instead of an index of every row by series (which a group commit had to update
     * in one leaf page per series: most of the write-ahead log): each series' newest
     * row, for tp_store_latest, written once per series per group. */
    "CREATE TABLE series_latest ("
    "  series INTEGER PRIMARY KEY,"
    "  started_unix_ns INTEGER NOT NULL,"
    "  id INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO series_latest SELECT series, started_unix_ns, id FROM (SELECT series,"
    " started_unix_ns, id, row_number() OVER (PARTITION BY series"
    " ORDER BY started_unix_ns DESC, id DESC) AS n FROM result_rows) WHERE n = 1;"
    "ALTER TABLE rollups ADD COLUMN saturated INTEGER NOT NULL DEFAULT 0;"
    /* Every version 5 column in version 5's order, then version 6's. */
    "CREATE VIEW results AS SELECT r.id AS id,"
    " r.started_unix_ns + r.received_delay_ns AS received_unix_ns, k.agent_id AS agent_id,"
    " k.instance_id AS instance_id, r.batch_seq AS batch_seq, s.region AS region,"
    " s.target AS target, s.host AS host, s.port AS port, s.sni AS sni, s.profile AS profile,"
    " s.address AS address, r.result_seq AS result_seq, r.started_unix_ns AS started_unix_ns,"
    " r.dns_ns AS dns_ns, r.connect_ns AS connect_ns, r.handshake_ns AS handshake_ns,"
    " r.total_ns AS total_ns, r.loop_lag_ns AS loop_lag_ns, r.flags & 1 AS ok,"
    " f.error_class AS error_class, r.error_detail AS error_detail,"
    " f.tls_version AS tls_version, f.cipher AS cipher, f.grp AS grp, f.alpn AS alpn,"
    " (r.flags >> 1) & 1 AS resumed, (r.flags >> 2) & 1 AS hello_retry_request,"
    " f.server_signature_algorithm AS server_signature_algorithm,"
    " coalesce(c.chain_json, '[]') AS chain_json,"
    " r.days_to_earliest_expiry AS days_to_earliest_expiry,"
    " f.groups_offered AS groups_offered, f.key_shares_offered AS key_shares_offered,"
    " f.mode AS mode,"
    " CASE WHEN r.flags & 4096 THEN NULL ELSE (r.flags >> 3) & 1 END AS ticket_received,"
    " r.resumption_handshake_ns AS resumption_handshake_ns,"
    " CASE WHEN r.flags & 8192 THEN NULL ELSE (r.flags >> 4) & 1 END AS early_data_attempted,"
    " CASE WHEN r.flags & 16384 THEN NULL ELSE (r.flags >> 5) & 1 END AS early_data_accepted,"
    " f.fidelity_note AS fidelity_note,"
    " CASE WHEN r.flags & 32768 THEN NULL ELSE (r.flags >> 6) & 1 END AS ocsp_stapled,"
    " f.ocsp_cert_status AS ocsp_cert_status, r.ocsp_this_update_unix AS ocsp_this_update_unix,"
    " r.ocsp_next_update_unix AS ocsp_next_update_unix, r.ocsp_age_seconds AS ocsp_age_seconds,"
    " r.chain_length_sent AS chain_length_sent,"
    " CASE WHEN r.flags & 65536 THEN NULL ELSE (r.flags >> 7) & 1 END AS chain_complete,"
    " r.http_status AS http_status, r.http_first_byte_ns AS http_first_byte_ns,"
    " CASE WHEN r.http_status IS NULL THEN NULL ELSE (r.flags >> 8) & 1 END AS http_hsts,"
    " s.address_family AS address_family,"
    " CASE WHEN r.flags & 131072 THEN NULL ELSE (r.flags >> 9) & 1 END AS emulation_checked,"
    " f.emulation_divergence AS emulation_divergence,"
    " CASE WHEN r.flags & 262144 THEN NULL ELSE (r.flags >> 10) & 1 END"
    "  AS early_data_policy_violation,"
    " r.schedule_lateness_ns AS schedule_lateness_ns,"
    " CASE WHEN r.schedule_lateness_ns IS NULL THEN NULL ELSE (r.flags >> 11) & 1 END"
    "  AS saturated"
    " FROM result_rows AS r JOIN spool_keys AS k ON k.id = r.spool"
    " JOIN series AS s ON s.id = r.series JOIN shapes AS f ON f.id = r.shape"
    " LEFT JOIN chains AS c ON c.id = r.chain;"
    /* A row written through the view (by hand, or a tool of an earlier version) goes
     * into the tables the way the writer puts it: dictionaries found or added (without
     * `h`: the writer then adds its own copy once, harmless), a result its spool has
     * seen skipped, else stored and added to `seen`. last_insert_rowid() inside a
     * trigger is the trigger's own last insert (lang_createtrigger.html), so it names
     * the new row only if there is one. */
    SQL_RESULTS_TRIGGER_HEAD SQL_RESULTS_TRIGGER_LATEST_V6 " END;";

static tp_err finish_v6(sqlite_store *s, char *err, size_t errlen) {
  int old_rows = 0, new_rows = 0;
  tp_err rc = query_int(s, "SELECT count(*) FROM results", &old_rows, err, errlen);
  if (rc == TP_E_OK)
    rc = query_int(s, "SELECT count(*) FROM result_rows", &new_rows, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  if (old_rows != new_rows) {
    snprintf(err, errlen,
             "%s: migration to version 6 copied %d of %d results; refusing to drop the rest",
             s->path, new_rows, old_rows);
    return TP_E_STORE;
  }
  if (sqlite3_exec(s->db, SQL_V6_FINISH, NULL, NULL, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "schema migration to version 6 failed");
  return TP_E_OK;
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
  /* A checkpoint (WAL pages copied into the file, both fsynced) every 16 MiB of WAL
   * rather than SQLite's 4 MiB: a quarter of the fsyncs, run by whichever connection
   * commits past the mark (mostly the ingest writer). 32 MiB of page cache per
   * connection: the tails of the table and its index, and the dictionaries, stay in
   * memory at any size of database. Temporary tables (the rollup fold's chunk) in
   * memory: they are a chunk's worth. */
  if (sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint=4096; PRAGMA cache_size=-32768;"
                   " PRAGMA temp_store=MEMORY", NULL, NULL, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot set the checkpoint interval and cache size");
  return TP_E_OK;
}

static tp_err prepare_all(sqlite_store *s, tp_store_mode mode, char *err, size_t errlen) {
  tp_err rc = TP_E_OK;
  if (mode == TP_STORE_READWRITE)
    rc = tp__sqlite_prepare_write(s, err, errlen);
  if (rc == TP_E_OK)
    rc = tp__sqlite_prepare_read(s, err, errlen);
  if (rc == TP_E_OK)
    rc = tp__sqlite_dicts_prepare(s, err, errlen);
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
    /* the migrations use them: version 6 the hash, version 9 the rollup merges */
    if (rc == TP_E_OK)
      rc = tp__sqlite_register_intern_function(s, err, errlen);
    if (rc == TP_E_OK)
      rc = tp__sqlite_register_rollup_functions(s, err, errlen);
    if (rc == TP_E_OK)
      rc = migrate(s, err, errlen);
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
  tp__sqlite_finalize_write(s);
  tp__sqlite_finalize_read(s);
  tp__sqlite_dicts_finalize(s);
  tp__sqlite_finalize_delivery(s);
  /* With every statement finalized, close cannot be SQLITE_BUSY; sqlite3_close_v2
   * would defer instead of failing if one was missed. */
  (void)sqlite3_close_v2(s->db);
  free(s->path);
  free(s);
}

static tp_err sqlite_prepare(const Tlsprobe__V1__ResultBatch *batch, tp_store_prep **out,
                             char *err, size_t errlen) {
  return tp__sqlite_prepare_batch(batch, out, err, errlen);
}

static const tp_store_ops sqlite_ops = {
    .name = "sqlite",
    .put_batches = tp__sqlite_put_batches,
    .prepare = sqlite_prepare,
    .prep_free = tp__sqlite_prep_free,
    .scan = tp__sqlite_scan,
    .scan_chain = tp__sqlite_scan_chain,
    .scan_latest_chain = tp__sqlite_scan_latest_chain,
    .scan_latest_details = tp__sqlite_scan_latest_details,
    .scan_chain_series = tp__sqlite_scan_chain_series,
    .latest = tp__sqlite_latest,
    .scan_spools = tp__sqlite_scan_spools,
    .scan_drops = tp__sqlite_scan_drops,
    .maintain = tp__sqlite_maintain,
    .scan_rollups = tp__sqlite_scan_rollups,
    .horizon = tp__sqlite_horizon,
    .close = sqlite_close,
};
