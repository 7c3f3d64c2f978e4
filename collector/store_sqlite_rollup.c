/* store_sqlite_rollup.c - the SQLite backend's rollups (schema version 5), per minute
 * and per hour: folding raw results into them, and reading them back for the report.
 *
 * Folding a chunk of results is SQL: one INSERT ... SELECT ... GROUP BY groups the
 * chunk by (target, profile, region, agent, family, minute) and counts; then one
 * INSERT ... ON CONFLICT DO UPDATE per span merges each group into its existing row
 * if there is one -- the "read existing row, merge, write" of an upsert without a
 * round trip through C per row. Hour rows merge the chunk's minutes, not the stored
 * minute rows: the sketches merge exactly (sketch.h), so an hour row is the same
 * numbers as its minutes, and neither depends on the other's retention. The latency sketches and the outcome counts are built and
 * merged by six SQL functions registered here (tp_sketch_of / tp_classes_of build
 * them, tp_sketch_merge / tp_classes_merge merge two, tp_sketch_sum / tp_classes_sum
 * merge a group's), which are the only writers of those blobs; a blob that does not decode fails the statement, so a
 * damaged row is reported, never silently merged into.
 *
 * The counters follow report.c's definitions exactly (docs in store.h): an exact
 * success is ok with no emulation divergence; rates and sketches are over exact
 * successes; NULL columns of rows stored before schema versions 2 and 3 read as the
 * report reads them (0 / ""). Schema version 6: the raw rows are ids into
 * dictionaries and bits (store_sqlite_internal.h), and saturated results are counted
 * (`saturated`) but kept out of the sketches. */
#include <stdlib.h>
#include <string.h>

#include "outcome.h"
#include "negotiated_mix.h"
#include "outcome_counts.h"
#include "sketch.h"
#include "store_sqlite_internal.h"
#include "tp_mem.h"

/* A chunk is read and grouped once, per minute, into a connection-private temporary
 * table; minute rows and hour rows are then both merged from it, so the raw rows --
 * wide, and the bulk of the work -- are read once whatever the number of spans. */
#define ROLLUP_VALUES                                                                          \
  "probes, successes, divergent, classes, hrr, resumption_probes, resumed,"                    \
  " early_data_attempts, early_data_accepts, early_data_violations, emulation_checked,"        \
  " ocsp_stapled, ocsp_max_age_seconds, min_days_to_expiry, loop_lag_max_ns, loop_lag_sum_ns," \
  " handshake_sketch, connect_sketch, total_sketch, saturated, negotiated"
#define ROLLUP_KEY "target, profile, region, agent_id, address_family"

static const char SQL_CHUNK_TABLE[] =
    "CREATE TEMP TABLE IF NOT EXISTS fold_chunk (start_unix_ns, " ROLLUP_KEY ", " ROLLUP_VALUES
    ")";
static const char SQL_CHUNK_CLEAR[] = "DELETE FROM temp.fold_chunk";
/* results with ?1 < id <= ?2, per minute x group. The rows are narrow (ids and bits):
 * they are grouped per minute x series x spool first, then named through the
 * dictionaries once per part, and the parts that share a group's names (series of
 * other hosts or addresses, other spools of the agent) merged. Saturated results
 * count everywhere but in the latency sketches (their latencies measure the agent
 * too). */
static const char SQL_CHUNK_FILL[] =
    "INSERT INTO temp.fold_chunk"
    " SELECT start, target, profile, region, agent_id, family, sum(probes), sum(successes),"
    " sum(divergent), tp_classes_sum(classes), sum(hrr), sum(resumption_probes), sum(resumed),"
    " sum(ed_attempts), sum(ed_accepts), sum(violations), sum(checked), sum(stapled),"
    " max(staple_age), min(days), max(lag_max), sum(lag_sum), tp_sketch_sum(hs),"
    " tp_sketch_sum(conn), tp_sketch_sum(tot), sum(saturated), tp_mix_sum(mix)"
    " FROM (SELECT s.target AS target, s.profile AS profile, s.region AS region,"
    " k.agent_id AS agent_id, coalesce(s.address_family, '') AS family, g.*"
    " FROM (SELECT series, spool, start, count(*) AS probes, sum(exact) AS successes,"
    "  sum(ok AND NOT exact) AS divergent, tp_classes_of(error_class) AS classes,"
    "  sum(exact AND hrr) AS hrr, sum(exact AND resumable) AS resumption_probes,"
    "  sum(exact AND resumable AND resumed) AS resumed, sum(exact AND ed_sent) AS ed_attempts,"
    "  sum(exact AND ed_sent AND ed_accepted) AS ed_accepts, sum(violation) AS violations,"
    "  sum(exact AND checked) AS checked, sum(stapled) AS stapled, max(staple_age) AS staple_age,"
    "  min(days) AS days, max(loop_lag_ns) AS lag_max, sum(loop_lag_ns) AS lag_sum,"
    "  tp_sketch_of(CASE WHEN exact AND NOT saturated THEN handshake_ns END) AS hs,"
    "  tp_sketch_of(CASE WHEN exact AND NOT saturated THEN connect_ns END) AS conn,"
    "  tp_sketch_of(CASE WHEN exact AND NOT saturated THEN total_ns END) AS tot,"
    "  sum(saturated) AS saturated,"
    "  tp_mix_of(CASE WHEN exact THEN coalesce(tls_version, '') END, cipher, grp) AS mix"
    "  FROM (SELECT r.series AS series, r.spool AS spool,"
    "   r.started_unix_ns - r.started_unix_ns % 60000000000 AS start, (r.flags & 1) <> 0 AS ok,"
    "   (r.flags & 1) <> 0 AND coalesce(f.emulation_divergence, '') = '' AS exact,"
    "   f.error_class AS error_class, f.tls_version AS tls_version, f.cipher AS cipher,"
    "   f.grp AS grp, (r.flags & 4) <> 0 AS hrr,"
    "   coalesce(f.mode, '') IN ('resumption', 'early_data') AS resumable,"
    "   (r.flags & 2) <> 0 AS resumed, (r.flags & 16) <> 0 AS ed_sent,"
    "   (r.flags & 32) <> 0 AS ed_accepted, (r.flags & 1024) <> 0 AS violation,"
    "   (r.flags & 512) <> 0 AS checked, (r.flags & 64) <> 0 AS stapled,"
    "   CASE WHEN r.flags & 64 THEN r.ocsp_age_seconds END AS staple_age,"
    "   CASE WHEN r.days_to_earliest_expiry = 0 AND r.chain IS NULL THEN NULL"
    "    ELSE r.days_to_earliest_expiry END AS days,"
    "   r.loop_lag_ns AS loop_lag_ns, r.handshake_ns AS handshake_ns,"
    "   r.connect_ns AS connect_ns, r.total_ns AS total_ns, (r.flags & 2048) <> 0 AS saturated"
    "   FROM result_rows AS r JOIN shapes AS f ON f.id = r.shape"
    "   WHERE r.id > ?1 AND r.id <= ?2)"
    "  GROUP BY series, spool, start) AS g"
    " JOIN series AS s ON s.id = g.series JOIN spool_keys AS k ON k.id = g.spool)"
    " GROUP BY target, profile, region, agent_id, family, start";

/* The upsert's merge of a new part into an existing row: counts add, extremes
 * stay extreme, blobs merge. */
#define ROLLUP_MERGE                                                                           \
  " ON CONFLICT (span_ns, " ROLLUP_KEY ", start_unix_ns)"                                      \
  " DO UPDATE SET probes = probes + excluded.probes,"                                          \
  " successes = successes + excluded.successes, divergent = divergent + excluded.divergent,"   \
  " classes = tp_classes_merge(classes, excluded.classes), hrr = hrr + excluded.hrr,"          \
  " resumption_probes = resumption_probes + excluded.resumption_probes,"                       \
  " resumed = resumed + excluded.resumed,"                                                     \
  " early_data_attempts = early_data_attempts + excluded.early_data_attempts,"                 \
  " early_data_accepts = early_data_accepts + excluded.early_data_accepts,"                    \
  " early_data_violations = early_data_violations + excluded.early_data_violations,"           \
  " emulation_checked = emulation_checked + excluded.emulation_checked,"                       \
  " ocsp_stapled = ocsp_stapled + excluded.ocsp_stapled,"                                      \
  /* Scalar max()/min() are NULL when either side is: coalesce picks the other. */           \
  " ocsp_max_age_seconds = coalesce(max(ocsp_max_age_seconds, excluded.ocsp_max_age_seconds)," \
  "  ocsp_max_age_seconds, excluded.ocsp_max_age_seconds),"                                    \
  " min_days_to_expiry = coalesce(min(min_days_to_expiry, excluded.min_days_to_expiry),"       \
  "  min_days_to_expiry, excluded.min_days_to_expiry),"                                        \
  " loop_lag_max_ns = max(loop_lag_max_ns, excluded.loop_lag_max_ns),"                         \
  " loop_lag_sum_ns = loop_lag_sum_ns + excluded.loop_lag_sum_ns,"                             \
  " handshake_sketch = tp_sketch_merge(handshake_sketch, excluded.handshake_sketch),"          \
  " connect_sketch = tp_sketch_merge(connect_sketch, excluded.connect_sketch),"                \
  " total_sketch = tp_sketch_merge(total_sketch, excluded.total_sketch),"                      \
  " saturated = saturated + excluded.saturated,"                                             \
  " negotiated = tp_mix_merge(negotiated, excluded.negotiated)"

#define ROLLUP_INSERT "INSERT INTO rollups (span_ns, start_unix_ns, " ROLLUP_KEY ", " ROLLUP_VALUES ")"
/* WHERE true: SQLite's documented way to keep "ON CONFLICT" from parsing as a join
 * constraint after INSERT ... SELECT. */
static const char SQL_MERGE_MINUTES[] =
    ROLLUP_INSERT " SELECT 60000000000, start_unix_ns, " ROLLUP_KEY ", " ROLLUP_VALUES
                  " FROM temp.fold_chunk WHERE true" ROLLUP_MERGE;
/* Rows of a span (SPAN, a literal in ns) from rows of a finer one: one per group and
 * SPAN, every counter and blob merged like the upsert merges them. Used for the chunk's
 * hours and days (from its minutes) and by the migration that made day rows (from the
 * stored hours, store_sqlite.c). */
#define SQL_ROLLUP_COARSER(SPAN, FROM)                                                          \
  ROLLUP_INSERT " SELECT " SPAN ", start_unix_ns - start_unix_ns % " SPAN " AS coarse, "        \
  ROLLUP_KEY ", sum(probes), sum(successes), sum(divergent), tp_classes_sum(classes),"         \
  " sum(hrr), sum(resumption_probes), sum(resumed), sum(early_data_attempts),"                \
  " sum(early_data_accepts), sum(early_data_violations), sum(emulation_checked),"             \
  " sum(ocsp_stapled), max(ocsp_max_age_seconds), min(min_days_to_expiry),"                   \
  " max(loop_lag_max_ns), sum(loop_lag_sum_ns), tp_sketch_sum(handshake_sketch),"             \
  " tp_sketch_sum(connect_sketch), tp_sketch_sum(total_sketch), sum(saturated),"              \
  " tp_mix_sum(negotiated) FROM " FROM " GROUP BY " ROLLUP_KEY ", coarse" ROLLUP_MERGE
/* The chunk's minutes of one hour (day), merged like their hour (day) row merges them. */
static const char SQL_MERGE_HOURS[] =
    SQL_ROLLUP_COARSER("3600000000000", "temp.fold_chunk WHERE true");
static const char SQL_MERGE_DAYS[] =
    SQL_ROLLUP_COARSER("86400000000000", "temp.fold_chunk WHERE true");
/* Schema version 9: day rows from the stored hour rows. */
const char tp__sqlite_days_from_hours[] =
    SQL_ROLLUP_COARSER("86400000000000", "rollups WHERE span_ns = 3600000000000");

/* ---- SQL functions ---------------------------------------------------------------- */

static void result_sketch(sqlite3_context *ctx, const tp_sketch *sk) {
  tp_buf b;
  tp_buf_init(&b, TP_SKETCH_MAX_BLOB);
  if (tp_sketch_encode(sk, &b) != TP_E_OK)
    sqlite3_result_error(ctx, "latency sketch too large to encode", -1);
  else
    sqlite3_result_blob(ctx, b.data, (int)b.len, SQLITE_TRANSIENT);
  tp_buf_free(&b);
}

/* tp_sketch_of(ns): aggregate; NULL arguments are skipped, NULL when all were. */
static void sketch_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  tp_sketch **sk = sqlite3_aggregate_context(ctx, sizeof(*sk));
  if (sk == NULL) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
    return;
  sqlite3_int64 v = sqlite3_value_int64(argv[0]);
  if (v < 0) {
    sqlite3_result_error(ctx, "tp_sketch_of: negative duration in results", -1);
    return;
  }
  if (*sk == NULL)
    *sk = tp_sketch_new();
  if (tp_sketch_add(*sk, (uint64_t)v) != TP_E_OK)
    sqlite3_result_error(ctx, "tp_sketch_of: too many values for one sketch", -1);
}

static void sketch_final(sqlite3_context *ctx) {
  tp_sketch **sk = sqlite3_aggregate_context(ctx, 0);
  if (sk == NULL || *sk == NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  result_sketch(ctx, *sk);
  tp_sketch_free(*sk);
  *sk = NULL;
}

/* Decodes argument i into sk; false after setting the statement's error. */
static bool arg_sketch(sqlite3_context *ctx, sqlite3_value *v, tp_sketch *sk) {
  char err[160], msg[200];
  const void *blob = sqlite3_value_blob(v);
  int len = sqlite3_value_bytes(v);
  if (tp_sketch_decode(sk, blob ? blob : "", blob ? (size_t)len : 0, err, sizeof(err)) ==
      TP_E_OK)
    return true;
  snprintf(msg, sizeof(msg), "stored %s", err);
  sqlite3_result_error(ctx, msg, -1);
  return false;
}

/* tp_sketch_merge(a, b): NULL stands for empty. */
/* The two-argument merges: a NULL side yields the other. True when that answered. */
static bool merge_with_null(sqlite3_context *ctx, sqlite3_value **argv) {
  for (int i = 0; i < 2; i++)
    if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
      sqlite3_result_value(ctx, argv[1 - i]);
      return true;
    }
  return false;
}

static void sketch_merge(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (merge_with_null(ctx, argv))
    return;
  tp_sketch *a = tp_sketch_new(), *b = tp_sketch_new();
  if (arg_sketch(ctx, argv[0], a) && arg_sketch(ctx, argv[1], b)) {
    if (tp_sketch_merge(a, b) != TP_E_OK)
      sqlite3_result_error(ctx, "tp_sketch_merge: too many values for one sketch", -1);
    else
      result_sketch(ctx, a);
  }
  tp_sketch_free(a);
  tp_sketch_free(b);
}

/* tp_sketch_sum(blob): aggregate merge; NULL blobs are skipped, NULL when all were. */
static void sketch_sum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  tp_sketch **sk = sqlite3_aggregate_context(ctx, sizeof(*sk));
  if (sk == NULL) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
    return;
  tp_sketch *part = tp_sketch_new();
  if (*sk == NULL)
    *sk = tp_sketch_new();
  if (arg_sketch(ctx, argv[0], part) && tp_sketch_merge(*sk, part) != TP_E_OK)
    sqlite3_result_error(ctx, "tp_sketch_sum: too many values for one sketch", -1);
  tp_sketch_free(part);
}

static void result_counts(sqlite3_context *ctx, const tp_outcome_counts *c) {
  tp_buf b;
  tp_buf_init(&b, 4096);
  if (tp_outcome_counts_encode(c, &b) != TP_E_OK)
    sqlite3_result_error(ctx, "outcome counts too large to encode", -1);
  else
    sqlite3_result_blob(ctx, b.data, (int)b.len, SQLITE_TRANSIENT);
  tp_buf_free(&b);
}

/* tp_classes_of(error_class): aggregate over snake_case outcome names. */
static void classes_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  tp_outcome_counts *c = sqlite3_aggregate_context(ctx, sizeof(*c)); /* zeroed by SQLite */
  const unsigned char *name = sqlite3_value_text(argv[0]);
  tp_outcome cls;
  if (c == NULL) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (name == NULL || !tp_outcome_from_name((const char *)name, &cls) ||
      (int)cls >= TP_OUTCOME_SLOTS) {
    sqlite3_result_error(ctx, "results hold an unknown error class", -1);
    return;
  }
  if (tp_outcome_counts_total(c) >= TP_OUTCOME_COUNTS_MAX) {
    sqlite3_result_error(ctx, "tp_classes_of: too many probes", -1);
    return;
  }
  c->n[cls]++;
}

static void classes_final(sqlite3_context *ctx) {
  tp_outcome_counts *c = sqlite3_aggregate_context(ctx, sizeof(*c));
  if (c == NULL)
    sqlite3_result_error_nomem(ctx);
  else
    result_counts(ctx, c);
}

static bool arg_counts(sqlite3_context *ctx, sqlite3_value *v, tp_outcome_counts *c) {
  char err[160], msg[200];
  const void *blob = sqlite3_value_blob(v);
  int len = sqlite3_value_bytes(v);
  if (tp_outcome_counts_decode(blob ? blob : "", blob ? (size_t)len : 0, c, err, sizeof(err)) ==
      TP_E_OK)
    return true;
  snprintf(msg, sizeof(msg), "stored %s", err);
  sqlite3_result_error(ctx, msg, -1);
  return false;
}

static void classes_merge(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  tp_outcome_counts a, b;
  if (!arg_counts(ctx, argv[0], &a) || !arg_counts(ctx, argv[1], &b))
    return;
  if (tp_outcome_counts_merge(&a, &b) != TP_E_OK)
    sqlite3_result_error(ctx, "tp_classes_merge: too many probes", -1);
  else
    result_counts(ctx, &a);
}

/* tp_classes_sum(blob): aggregate merge of outcome counts. */
static void classes_sum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  tp_outcome_counts *c = sqlite3_aggregate_context(ctx, sizeof(*c)), part;
  if (c == NULL) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (arg_counts(ctx, argv[0], &part) && tp_outcome_counts_merge(c, &part) != TP_E_OK)
    sqlite3_result_error(ctx, "tp_classes_sum: too many probes", -1);
}

/* ---- the negotiated mix: tp_mix_of / tp_mix_merge / tp_mix_sum ---------------------- */

static void result_mix(sqlite3_context *ctx, const tp_mix *mix) {
  tp_buf b;
  tp_buf_init(&b, 64 * 1024);
  if (tp_mix_encode(mix, &b) != TP_E_OK)
    sqlite3_result_error(ctx, "negotiated mix too large to encode", -1);
  else
    sqlite3_result_blob(ctx, b.data, (int)b.len, SQLITE_TRANSIENT);
  tp_buf_free(&b);
}

/* The aggregate's mix, made on the first step; NULL after setting an error. */
static tp_mix *aggregate_mix(sqlite3_context *ctx) {
  tp_mix **mix = sqlite3_aggregate_context(ctx, sizeof(*mix));
  if (mix == NULL) {
    sqlite3_result_error_nomem(ctx);
    return NULL;
  }
  if (*mix == NULL)
    *mix = tp_mix_new();
  return *mix;
}

static bool arg_mix(sqlite3_context *ctx, sqlite3_value *v, tp_mix *mix) {
  char err[160], msg[200];
  const void *blob = sqlite3_value_blob(v);
  int len = sqlite3_value_bytes(v);
  if (tp_mix_decode(mix, blob ? blob : "", blob ? (size_t)len : 0, err, sizeof(err)) == TP_E_OK)
    return true;
  snprintf(msg, sizeof(msg), "stored %s", err);
  sqlite3_result_error(ctx, msg, -1);
  return false;
}

/* tp_mix_of(version, cipher, group): aggregate; a NULL version skips the row. */
static void mix_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  tp_mix *mix = aggregate_mix(ctx);
  if (mix == NULL || sqlite3_value_type(argv[0]) == SQLITE_NULL)
    return;
  const char *names[3];
  for (int k = 0; k < 3; k++) {
    const unsigned char *t = sqlite3_value_text(argv[k]);
    names[k] = t ? (const char *)t : "";
  }
  tp_err rc = tp_mix_add(mix, names[0], names[1], names[2], 1);
  if (rc == TP_E_INVAL) /* longer than the wire allows: only a hand-edited row */
    rc = tp_mix_add(mix, "?", "?", "?", 1);
  if (rc != TP_E_OK)
    sqlite3_result_error(ctx, "tp_mix_of: too many successes for one mix", -1);
}

/* tp_mix_sum(blob): aggregate merge; NULL blobs are skipped. */
static void mix_sum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  tp_mix *mix = aggregate_mix(ctx);
  if (mix == NULL || sqlite3_value_type(argv[0]) == SQLITE_NULL)
    return;
  tp_mix *part = tp_mix_new();
  if (arg_mix(ctx, argv[0], part) && tp_mix_merge(mix, part) != TP_E_OK)
    sqlite3_result_error(ctx, "tp_mix_sum: too many successes for one mix", -1);
  tp_mix_free(part);
}

/* Both aggregates: an empty mix when no row counted (NULL means "not recorded"). */
static void mix_final(sqlite3_context *ctx) {
  tp_mix **mix = sqlite3_aggregate_context(ctx, 0);
  if (mix == NULL || *mix == NULL) {
    tp_mix *empty = tp_mix_new();
    result_mix(ctx, empty);
    tp_mix_free(empty);
    return;
  }
  result_mix(ctx, *mix);
  tp_mix_free(*mix);
  *mix = NULL;
}

/* tp_mix_merge(a, b): NULL (a span rolled up before schema version 7) yields the other. */
static void mix_merge(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (merge_with_null(ctx, argv))
    return;
  tp_mix *a = tp_mix_new(), *b = tp_mix_new();
  if (arg_mix(ctx, argv[0], a) && arg_mix(ctx, argv[1], b)) {
    if (tp_mix_merge(a, b) != TP_E_OK)
      sqlite3_result_error(ctx, "tp_mix_merge: too many successes for one mix", -1);
    else
      result_mix(ctx, a);
  }
  tp_mix_free(a);
  tp_mix_free(b);
}

tp_err tp__sqlite_register_rollup_functions(sqlite_store *s, char *err, size_t errlen) {
  /* DIRECTONLY: usable in our statements, never from a trigger or view someone
   * planted in the file. */
  int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY;
  if (sqlite3_create_function(s->db, "tp_sketch_of", 1, flags, NULL, NULL, sketch_step,
                              sketch_final) != SQLITE_OK ||
      sqlite3_create_function(s->db, "tp_sketch_merge", 2, flags, NULL, sketch_merge, NULL,
                              NULL) != SQLITE_OK ||
      sqlite3_create_function(s->db, "tp_classes_of", 1, flags, NULL, NULL, classes_step,
                              classes_final) != SQLITE_OK ||
      sqlite3_create_function(s->db, "tp_classes_merge", 2, flags, NULL, classes_merge, NULL,
                              NULL) != SQLITE_OK ||
      sqlite3_create_function(s->db, "tp_sketch_sum", 1, flags, NULL, NULL, sketch_sum_step,
                              sketch_final) != SQLITE_OK ||
      sqlite3_create_function(s->db, "tp_classes_sum", 1, flags, NULL, NULL, classes_sum_step,
                              classes_final) != SQLITE_OK ||
      sqlite3_create_function(s->db, "tp_mix_of", 3, flags, NULL, NULL, mix_step, mix_final) !=
          SQLITE_OK ||
      sqlite3_create_function(s->db, "tp_mix_sum", 1, flags, NULL, NULL, mix_sum_step,
                              mix_final) != SQLITE_OK ||
      sqlite3_create_function(s->db, "tp_mix_merge", 2, flags, NULL, mix_merge, NULL, NULL) !=
          SQLITE_OK)
    return fail(s, err, errlen, "cannot register the rollup functions");
  return TP_E_OK;
}

/* ---- folding ------------------------------------------------------------------------ */

/* Runs one statement of the fold; *rows += the rows it changed. */
static tp_err fold_step(sqlite_store *s, const char *sql, int64_t lo, int64_t hi, uint64_t *rows,
                        char *err, size_t errlen) {
  sqlite3_stmt *stmt = NULL;
  tp_err rc = TP_E_OK;
  /* Prepared per chunk: a pass runs once an interval, on its own connection, and
   * the statements cost microseconds to prepare next to the chunk's milliseconds. */
  if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot prepare a rollup statement");
  binder b = {.stmt = stmt, .idx = 0, .rc = SQLITE_OK};
  if (sqlite3_bind_parameter_count(stmt) == 2) {
    bind_i64(&b, lo);
    bind_i64(&b, hi);
  }
  if (b.rc != SQLITE_OK || run(stmt) != SQLITE_OK)
    rc = fail(s, err, errlen, "cannot fold results into rollups");
  else if (rows != NULL)
    *rows += (uint64_t)sqlite3_changes(s->db);
  sqlite3_finalize(stmt);
  return rc;
}

tp_err tp__sqlite_fold(sqlite_store *s, int64_t watermark, int64_t hi, uint64_t *rows, char *err,
                       size_t errlen) {
  *rows = 0;
  tp_err rc = fold_step(s, SQL_CHUNK_TABLE, 0, 0, NULL, err, errlen);
  if (rc == TP_E_OK)
    rc = fold_step(s, SQL_CHUNK_CLEAR, 0, 0, NULL, err, errlen);
  if (rc == TP_E_OK)
    rc = fold_step(s, SQL_CHUNK_FILL, watermark, hi, NULL, err, errlen);
  if (rc == TP_E_OK)
    rc = fold_step(s, SQL_MERGE_MINUTES, 0, 0, rows, err, errlen);
  if (rc == TP_E_OK)
    rc = fold_step(s, SQL_MERGE_HOURS, 0, 0, rows, err, errlen);
  if (rc == TP_E_OK)
    rc = fold_step(s, SQL_MERGE_DAYS, 0, 0, rows, err, errlen);
  return rc;
}

/* ---- reading ------------------------------------------------------------------------ */

#define SQL_ROLLUP_COLUMNS                                                                    \
  "SELECT start_unix_ns, target, profile, region, agent_id, address_family, probes,"         \
  " successes, divergent, CASE WHEN ?9 & 1 THEN NULL ELSE classes END, hrr,"                  \
  " resumption_probes, resumed, early_data_attempts, early_data_accepts,"                     \
  " early_data_violations, emulation_checked, ocsp_stapled, ocsp_max_age_seconds,"            \
  " min_days_to_expiry, loop_lag_max_ns, loop_lag_sum_ns,"                                    \
  " CASE WHEN ?9 & 2 THEN NULL ELSE handshake_sketch END,"                                    \
  " CASE WHEN ?9 & 4 THEN NULL ELSE connect_sketch END,"                                      \
  " CASE WHEN ?9 & 8 THEN NULL ELSE total_sketch END, saturated,"                             \
  " CASE WHEN ?9 & 16 THEN NULL ELSE negotiated END"                                          \
  " FROM rollups INDEXED BY rollups_start"                                                    \
  " WHERE span_ns = ?8 AND start_unix_ns > ?1 AND start_unix_ns < ?2 AND target GLOB ?3"      \
  " AND profile GLOB ?4 AND region GLOB ?5 AND agent_id GLOB ?6 AND address_family GLOB ?7"
/* The time range is always given, so both orders start from the (span, start) index;
 * the group order then sorts what the range selected (SQLite would otherwise walk the
 * whole key index to avoid the sort, reading every row ever kept). */
static const char SQL_SCAN_BY_GROUP[] = SQL_ROLLUP_COLUMNS
    " ORDER BY target, profile, region, agent_id, address_family, start_unix_ns";
static const char SQL_SCAN_BY_MINUTE[] = SQL_ROLLUP_COLUMNS
    " ORDER BY start_unix_ns, target, profile, region, agent_id, address_family";
static const char SQL_SCAN_BY_START[] = SQL_ROLLUP_COLUMNS " ORDER BY start_unix_ns";

typedef struct scan {
  sqlite_store *s;
  sqlite3_stmt *stmt;
  tp_sketch *sk[3];
  tp_mix *mix;
  unsigned omit; /* TP_STORE_ROLLUP_PART_* not read */
  char *err;
  size_t errlen;
} scan;

static const char *text_at(sqlite3_stmt *stmt, int col) {
  const unsigned char *t = sqlite3_column_text(stmt, col);
  return t ? (const char *)t : "";
}

static uint64_t count_at(sqlite3_stmt *stmt, int col) {
  sqlite3_int64 v = sqlite3_column_int64(stmt, col);
  return v < 0 ? 0 : (uint64_t)v; /* only our upserts write these: never negative */
}

static tp_store_opt opt_at(sqlite3_stmt *stmt, int col) {
  if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
    return (tp_store_opt){.set = false};
  return (tp_store_opt){.set = true, .v = sqlite3_column_int64(stmt, col)};
}

/* A decode failure names the row, so an operator can find (and delete) it. */
static tp_err bad_blob(scan *sc, const tp_store_rollup_row *row, const char *column,
                       const char *why) {
  snprintf(sc->err, sc->errlen,
           "%s: rollup row (target \"%.64s\", start %lld, span %lld s) has a damaged %s: %s",
           sc->s->path, row->target, (long long)row->start_unix_ns,
           (long long)(row->span_ns / 1000000000), column, why);
  return TP_E_STORE;
}

static tp_err decode_blobs(scan *sc, tp_store_rollup_row *row) {
  static const char *const names[3] = {"handshake_sketch", "connect_sketch", "total_sketch"};
  static const unsigned parts[3] = {TP_STORE_ROLLUP_PART_HANDSHAKE, TP_STORE_ROLLUP_PART_CONNECT,
                                    TP_STORE_ROLLUP_PART_TOTAL};
  char why[160];
  sqlite3_stmt *st = sc->stmt;
  if (sc->omit & TP_STORE_ROLLUP_PART_CLASSES) {
    memset(&row->classes, 0, sizeof(row->classes));
  } else {
    const void *classes = sqlite3_column_blob(st, 9);
    if (tp_outcome_counts_decode(classes ? classes : "", (size_t)sqlite3_column_bytes(st, 9),
                                 &row->classes, why, sizeof(why)) != TP_E_OK)
      return bad_blob(sc, row, "classes", why);
  }
  const tp_sketch **out[3] = {&row->handshake_ns, &row->connect_ns, &row->total_ns};
  for (int i = 0; i < 3; i++) {
    *out[i] = NULL;
    if (sc->omit & parts[i])
      continue;
    *out[i] = sc->sk[i];
    if (sqlite3_column_type(st, 22 + i) == SQLITE_NULL) { /* no exact success in the span */
      tp_sketch_clear(sc->sk[i]);
      continue;
    }
    const void *blob = sqlite3_column_blob(st, 22 + i);
    size_t len = (size_t)sqlite3_column_bytes(st, 22 + i);
    if (tp_sketch_decode(sc->sk[i], blob ? blob : "", blob ? len : 0, why, sizeof(why)) !=
        TP_E_OK)
      return bad_blob(sc, row, names[i], why);
  }
  row->negotiated = NULL;
  /* NULL: rolled up before version 7, or omitted */
  if (sqlite3_column_type(st, 26) != SQLITE_NULL) {
    const void *blob = sqlite3_column_blob(st, 26);
    size_t len = (size_t)sqlite3_column_bytes(st, 26);
    if (tp_mix_decode(sc->mix, blob ? blob : "", blob ? len : 0, why, sizeof(why)) != TP_E_OK)
      return bad_blob(sc, row, "negotiated", why);
    row->negotiated = sc->mix;
  }
  return TP_E_OK;
}

static tp_err read_row(scan *sc, int64_t span_ns, tp_store_rollup_row *row) {
  sqlite3_stmt *st = sc->stmt;
  *row = (tp_store_rollup_row){
      .start_unix_ns = sqlite3_column_int64(st, 0),
      .span_ns = span_ns,
      .target = text_at(st, 1),
      .profile = text_at(st, 2),
      .region = text_at(st, 3),
      .agent_id = text_at(st, 4),
      .address_family = text_at(st, 5),
      .probes = count_at(st, 6),
      .successes = count_at(st, 7),
      .divergent = count_at(st, 8),
      .hrr = count_at(st, 10),
      .resumption_probes = count_at(st, 11),
      .resumed = count_at(st, 12),
      .early_data_attempts = count_at(st, 13),
      .early_data_accepts = count_at(st, 14),
      .early_data_violations = count_at(st, 15),
      .emulation_checked = count_at(st, 16),
      .ocsp_stapled = count_at(st, 17),
      .ocsp_max_age_seconds = opt_at(st, 18),
      .min_days_to_expiry = opt_at(st, 19),
      .loop_lag_max_ns = count_at(st, 20),
      .loop_lag_sum_ns = count_at(st, 21),
      .saturated = count_at(st, 25),
  };
  return decode_blobs(sc, row);
}

static int64_t minus(int64_t t, int64_t span) { return t < INT64_MIN + span ? INT64_MIN : t - span; }

tp_err tp__sqlite_scan_rollups(tp_store *store, tp_store_rollup_span span, int64_t since_unix_ns,
                               int64_t until_unix_ns, const tp_store_rollup_filter *filter,
                               tp_store_rollup_order order, tp_store_rollup_fn fn, void *ctx,
                               char *err, size_t errlen) {
  int64_t span_ns = tp_store_rollup_span_ns(span);
  sqlite_store *s = from_base(store);
  if (s->no_schema)
    return TP_E_OK;
  scan sc = {.s = s, .omit = filter->omit, .err = err, .errlen = errlen};
  tp_err rc = TP_E_OK;
  const char *sql = order == TP_STORE_ROLLUPS_BY_MINUTE  ? SQL_SCAN_BY_MINUTE
                    : order == TP_STORE_ROLLUPS_BY_START ? SQL_SCAN_BY_START
                                                         : SQL_SCAN_BY_GROUP;
  if (sqlite3_prepare_v2(s->db, sql, -1, &sc.stmt, NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot prepare the rollup scan");
  binder b = {.stmt = sc.stmt, .idx = 0, .rc = SQLITE_OK};
  /* Spans overlapping [since, until): start + span > since and start < until. */
  bind_i64(&b, minus(since_unix_ns, span_ns));
  bind_i64(&b, until_unix_ns);
  const char *globs[] = {filter->target, filter->profile, filter->region, filter->agent_id,
                         filter->address_family};
  for (size_t i = 0; i < sizeof(globs) / sizeof(globs[0]); i++)
    bind_text(&b, globs[i] ? globs[i] : "*");
  bind_i64(&b, span_ns);
  bind_i64(&b, (int64_t)filter->omit);
  if (b.rc != SQLITE_OK) {
    rc = fail(s, err, errlen, "cannot bind the rollup scan");
    goto out;
  }
  for (int i = 0; i < 3; i++)
    sc.sk[i] = tp_sketch_new();
  sc.mix = tp_mix_new();
  int step;
  while ((step = sqlite3_step(sc.stmt)) == SQLITE_ROW) {
    tp_store_rollup_row row;
    rc = read_row(&sc, span_ns, &row);
    if (rc == TP_E_OK)
      rc = fn(&row, ctx);
    if (rc != TP_E_OK)
      goto out;
  }
  if (step != SQLITE_DONE)
    rc = fail(s, err, errlen, "rollup scan failed");
out:
  for (int i = 0; i < 3; i++)
    tp_sketch_free(sc.sk[i]);
  tp_mix_free(sc.mix);
  sqlite3_finalize(sc.stmt);
  return rc;
}
