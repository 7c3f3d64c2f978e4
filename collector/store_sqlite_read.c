/* store_sqlite_read.c - the SQLite backend's read path over schema version 6: range
 * scans of result_rows (the dictionaries' strings come from the store's id -> names
 * cache, not from a join per row), one row's chain, a series' latest facts.
 *
 * Every string handed out is borrowed: from the names cache (stable until the store
 * is closed) or from the statement (until the next step). */
#include <stdlib.h>

#include "store_sqlite_internal.h"
#include "tp_mem.h"

#define SQL_SCAN_COLUMNS                                                                           \
  "SELECT series, shape, spool, flags, handshake_ns, loop_lag_ns, started_unix_ns, " SQL_DAYS6     \
  ", CASE WHEN flags & 64 THEN ocsp_age_seconds END, error_detail, connect_ns, total_ns, id,"      \
  " coalesce(schedule_lateness_ns, 0) FROM result_rows"
/* Range scans: the started index bounds the rows read by the window, so a short
 * window over a large table stays cheap. One target's scan reads the window too
 * (there is no index of rows by series: it would cost every group commit a page per
 * series), skipping the other targets' rows by their series id. */
static const char SQL_SCAN_ALL[] = SQL_SCAN_COLUMNS
    " WHERE started_unix_ns >= ?1 AND started_unix_ns < ?2 ORDER BY started_unix_ns, id";
static const char SQL_SCAN_TARGET[] = SQL_SCAN_COLUMNS
    " WHERE series IN (SELECT id FROM series WHERE target = ?3)"
    " AND started_unix_ns >= ?1 AND started_unix_ns < ?2 ORDER BY started_unix_ns, id";
/* One row's chain, unpacked by SQLite's JSON functions so callers get structured
 * fields whatever the stored encoding (chain_json.c). */
static const char SQL_CHAIN[] =
    "SELECT CAST(c.key AS INTEGER), json_extract(c.value, '$.subject'),"
    " json_extract(c.value, '$.issuer'), json_extract(c.value, '$.not_before_unix'),"
    " json_extract(c.value, '$.not_after_unix')"
    " FROM result_rows AS r JOIN chains AS ch ON ch.id = r.chain, json_each(ch.chain_json) AS c"
    " WHERE r.id = ?1 AND json_valid(ch.chain_json) ORDER BY c.key";
/* The newest chain of the series with these names (one per host, port, address...),
 * from series_latest (schema version 8). */
static const char SQL_LATEST_CHAIN[] =
    "SELECT CAST(c.key AS INTEGER), json_extract(c.value, '$.subject'),"
    " json_extract(c.value, '$.issuer'), json_extract(c.value, '$.not_before_unix'),"
    " json_extract(c.value, '$.not_after_unix')"
    " FROM (SELECT l.chain AS chain FROM series AS s JOIN series_latest AS l ON l.series = s.id"
    "  WHERE s.target = ?1 AND s.profile = ?2 AND s.region = ?3 AND l.chain IS NOT NULL"
    "  AND l.chain_unix_ns >= ?4 ORDER BY l.chain_unix_ns DESC, l.chain_row DESC LIMIT 1) AS n"
    " JOIN chains AS ch ON ch.id = n.chain, json_each(ch.chain_json) AS c"
    " WHERE json_valid(ch.chain_json) ORDER BY c.key";
/* The series names with a newest chain since ?1 (series_latest, schema version 8). */
static const char SQL_CHAIN_SERIES[] =
    "SELECT DISTINCT s.target, s.profile, s.region FROM series AS s"
    " JOIN series_latest AS l ON l.series = s.id"
    " WHERE l.chain IS NOT NULL AND l.chain_unix_ns >= ?1";
/* Every series' newest failure per class since ?1 (class_latest, schema version 10). */
static const char SQL_LATEST_DETAILS[] =
    "SELECT s.target, s.profile, s.region, coalesce(s.address_family, ''), c.error_class,"
    " c.started_unix_ns, c.row_id, c.detail FROM class_latest AS c JOIN series AS s"
    " ON s.id = c.series WHERE c.started_unix_ns >= ?1 ORDER BY c.started_unix_ns, c.row_id";
/* The newest row of each series with these names (one per host, port, address...),
 * from series_latest, then the newest of those. */
static const char SQL_LATEST[] =
    "SELECT f.tls_version, f.cipher, f.grp, f.alpn, r.error_detail, "
    "CASE WHEN r.days_to_earliest_expiry = 0 AND r.chain IS NULL THEN NULL"
    " ELSE r.days_to_earliest_expiry END,"
    " r.started_unix_ns, r.flags, f.groups_offered, f.mode, f.fidelity_note,"
    " r.resumption_handshake_ns, r.chain_length_sent, f.ocsp_cert_status,"
    " r.ocsp_this_update_unix, r.ocsp_next_update_unix, r.ocsp_age_seconds, r.http_status,"
    " r.http_first_byte_ns, s.address_family, f.emulation_divergence, r.id"
    " FROM series AS s JOIN series_latest AS l ON l.series = s.id"
    " JOIN result_rows AS r ON r.id = l.id JOIN shapes AS f ON f.id = r.shape"
    " WHERE s.target = ?1 AND s.profile = ?2 AND s.region = ?3 AND r.started_unix_ns >= ?4"
    " ORDER BY r.started_unix_ns DESC, r.id DESC LIMIT 1";

enum {
  C_SERIES,
  C_SHAPE,
  C_SPOOL,
  C_FLAGS,
  C_HANDSHAKE,
  C_LAG,
  C_STARTED,
  C_DAYS,
  C_OCSP_AGE,
  C_DETAIL,
  C_CONNECT,
  C_TOTAL,
  C_ID,
  C_LATENESS
};

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

static const char *or_empty(const char *s) { return s ? s : ""; }

/* Binds ?1 since, ?2 until and (when set) ?3 target. */
static bool bind_filter(sqlite3_stmt *stmt, const tp_store_filter *f) {
  binder b = {.stmt = stmt, .idx = 0, .rc = SQLITE_OK};
  bind_i64(&b, f->since_unix_ns);
  bind_i64(&b, f->until_unix_ns);
  if (f->target != NULL)
    bind_text(&b, f->target);
  return b.rc == SQLITE_OK;
}

/* The row's names through the dictionaries; TP_E_STORE naming the row when one of
 * them is missing (a damaged file: no writer of ours deletes dictionary rows). */
static tp_err row_from(sqlite_store *s, sqlite3_stmt *st, tp_store_row *row, char *err,
                       size_t errlen) {
  char *const *series = NULL, *const *shape = NULL, *const *spool = NULL;
  tp_err rc =
      tp__sqlite_names(s, NAMES_SERIES, sqlite3_column_int64(st, C_SERIES), &series, err, errlen);
  if (rc == TP_E_OK)
    rc = tp__sqlite_names(s, NAMES_SHAPES, sqlite3_column_int64(st, C_SHAPE), &shape, err, errlen);
  if (rc == TP_E_OK)
    rc = tp__sqlite_names(s, NAMES_SPOOLS, sqlite3_column_int64(st, C_SPOOL), &spool, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  if (series == NULL || shape == NULL || spool == NULL) {
    snprintf(err, errlen, "%s: result row %lld refers to a %s that is not stored", s->path,
             (long long)sqlite3_column_int64(st, C_ID),
             series == NULL  ? "series"
             : shape == NULL ? "shape"
                             : "spool");
    return TP_E_STORE;
  }
  int64_t flags = sqlite3_column_int64(st, C_FLAGS);
  *row = (tp_store_row){
      .row_id = sqlite3_column_int64(st, C_ID),
      .target = or_empty(series[0]),
      .profile = or_empty(series[1]),
      .region = or_empty(series[2]),
      .address_family = or_empty(series[3]),
      .agent_id = or_empty(spool[0]),
      .error_class = or_empty(shape[0]),
      .tls_version = or_empty(shape[1]),
      .cipher = or_empty(shape[2]),
      .group = or_empty(shape[3]),
      .mode = or_empty(shape[4]),
      .emulation_divergence = or_empty(shape[5]),
      .ok = (flags & FLAG_OK) != 0,
      .resumed = (flags & FLAG_RESUMED) != 0,
      .hello_retry_request = (flags & FLAG_HRR) != 0,
      .early_data_attempted = (flags & FLAG_ED_ATTEMPTED) != 0,
      .early_data_accepted = (flags & FLAG_ED_ACCEPTED) != 0,
      .ocsp_stapled = (flags & FLAG_STAPLED) != 0,
      .emulation_checked = (flags & FLAG_EMU_CHECKED) != 0,
      .early_data_policy_violation = (flags & FLAG_ED_VIOLATION) != 0,
      .saturated = (flags & FLAG_SATURATED) != 0,
      .error_detail = col_text(st, C_DETAIL),
      .connect_ns = (uint64_t)sqlite3_column_int64(st, C_CONNECT),
      .handshake_ns = (uint64_t)sqlite3_column_int64(st, C_HANDSHAKE),
      .total_ns = (uint64_t)sqlite3_column_int64(st, C_TOTAL),
      .loop_lag_ns = (uint64_t)sqlite3_column_int64(st, C_LAG),
      .schedule_lateness_ns = (uint64_t)sqlite3_column_int64(st, C_LATENESS),
      .started_unix_ns = sqlite3_column_int64(st, C_STARTED),
      .days_to_earliest_expiry = col_opt(st, C_DAYS),
      .ocsp_age_seconds = col_opt(st, C_OCSP_AGE),
  };
  return TP_E_OK;
}

tp_err tp__sqlite_scan(tp_store *store, const tp_store_filter *filter, tp_store_row_fn fn,
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
    tp_store_row row;
    rc = row_from(s, stmt, &row, err, errlen);
    if (rc == TP_E_OK)
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

/* Runs a prepared chain query (bound) to its end: one call per certificate. *found
 * says whether there was one. */
static tp_err each_cert(sqlite_store *s, sqlite3_stmt *stmt, tp_store_cert_fn fn, void *ctx,
                        bool *found, char *err, size_t errlen) {
  tp_err rc = TP_E_OK;
  int step;
  *found = false;
  while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
    tp_store_chain_cert cert = {
        .position = (uint32_t)sqlite3_column_int(stmt, 0),
        .subject = col_text(stmt, 1),
        .issuer = col_text(stmt, 2),
        .not_before_unix = sqlite3_column_int64(stmt, 3),
        .not_after_unix = sqlite3_column_int64(stmt, 4),
    };
    *found = true;
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

tp_err tp__sqlite_scan_chain(tp_store *store, int64_t row_id, tp_store_cert_fn fn, void *ctx,
                             char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  if (s->no_schema)
    return TP_E_OK;
  bool found;
  if (sqlite3_bind_int64(s->chain_of, 1, row_id) != SQLITE_OK)
    return fail(s, err, errlen, "cannot bind chain scan");
  return each_cert(s, s->chain_of, fn, ctx, &found, err, errlen);
}

tp_err tp__sqlite_scan_chain_series(tp_store *store, int64_t since_unix_ns, tp_store_series_fn fn,
                                    void *ctx, char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  if (s->no_schema)
    return TP_E_OK;
  sqlite3_stmt *st = s->chain_series;
  tp_err rc = TP_E_OK;
  if (sqlite3_bind_int64(st, 1, since_unix_ns) != SQLITE_OK) {
    rc = fail(s, err, errlen, "cannot bind the chain series scan");
    goto out;
  }
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    rc = fn(col_text(st, 0), col_text(st, 1), col_text(st, 2), ctx);
    if (rc != TP_E_OK)
      goto out;
  }
  if (step != SQLITE_DONE)
    rc = fail(s, err, errlen, "chain series scan failed");
out:
  (void)sqlite3_reset(st);
  (void)sqlite3_clear_bindings(st);
  return rc;
}

tp_err tp__sqlite_scan_latest_details(tp_store *store, int64_t since_unix_ns,
                                      tp_store_detail_fn fn, void *ctx, char *err,
                                      size_t errlen) {
  sqlite_store *s = from_base(store);
  if (s->no_schema)
    return TP_E_OK;
  sqlite3_stmt *st = s->latest_details;
  tp_err rc = TP_E_OK;
  if (sqlite3_bind_int64(st, 1, since_unix_ns) != SQLITE_OK) {
    rc = fail(s, err, errlen, "cannot bind the latest details scan");
    goto out;
  }
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    tp_store_detail d = {.target = col_text(st, 0),
                         .profile = col_text(st, 1),
                         .region = col_text(st, 2),
                         .address_family = col_text(st, 3),
                         .error_class = col_text(st, 4),
                         .started_unix_ns = sqlite3_column_int64(st, 5),
                         .row_id = sqlite3_column_int64(st, 6),
                         .detail = col_text(st, 7)};
    rc = fn(&d, ctx);
    if (rc != TP_E_OK)
      goto out;
  }
  if (step != SQLITE_DONE)
    rc = fail(s, err, errlen, "latest details scan failed");
out:
  (void)sqlite3_reset(st);
  (void)sqlite3_clear_bindings(st);
  return rc;
}

tp_err tp__sqlite_scan_latest_chain(tp_store *store, const char *target, const char *profile,
                                    const char *region, int64_t since_unix_ns,
                                    tp_store_cert_fn fn, void *ctx, char *err, size_t errlen) {
  sqlite_store *s = from_base(store);
  if (s->no_schema)
    return TP_E_NOTFOUND;
  binder b = {.stmt = s->latest_chain, .idx = 0, .rc = SQLITE_OK};
  bind_text(&b, target);
  bind_text(&b, profile);
  bind_text(&b, region);
  bind_i64(&b, since_unix_ns);
  if (b.rc != SQLITE_OK) {
    (void)sqlite3_clear_bindings(s->latest_chain);
    return fail(s, err, errlen, "cannot bind latest chain");
  }
  bool found;
  tp_err rc = each_cert(s, s->latest_chain, fn, ctx, &found, err, errlen);
  return rc == TP_E_OK && !found ? TP_E_NOTFOUND : rc;
}

/* A boolean that may be NULL (unset): a row migrated from before its version. */
static tp_store_opt flag_opt(int64_t flags, int64_t bit, int64_t null_bit) {
  if (flags & null_bit)
    return (tp_store_opt){.set = false};
  return (tp_store_opt){.set = true, .v = (flags & bit) != 0};
}

enum {
  L_VERSION,
  L_CIPHER,
  L_GROUP,
  L_ALPN,
  L_DETAIL,
  L_DAYS,
  L_STARTED,
  L_FLAGS,
  L_GROUPS,
  L_MODE,
  L_NOTE,
  L_RESUMPTION,
  L_CHAIN_LEN,
  L_OCSP_STATUS,
  L_OCSP_THIS,
  L_OCSP_NEXT,
  L_OCSP_AGE,
  L_HTTP_STATUS,
  L_HTTP_FIRST_BYTE,
  L_FAMILY,
  L_DIVERGENCE,
  L_ID
};

static void facts_from(sqlite3_stmt *st, tp_store_facts *out) {
  int64_t flags = sqlite3_column_int64(st, L_FLAGS);
  out->tls_version = tp_xstrdup(col_text(st, L_VERSION));
  out->cipher = tp_xstrdup(col_text(st, L_CIPHER));
  out->group = tp_xstrdup(col_text(st, L_GROUP));
  out->alpn = tp_xstrdup(col_text(st, L_ALPN));
  out->error_detail = tp_xstrdup(col_text(st, L_DETAIL));
  out->days_to_earliest_expiry = col_opt(st, L_DAYS);
  out->started_unix_ns = sqlite3_column_int64(st, L_STARTED);
  out->resumed = (flags & FLAG_RESUMED) != 0;
  out->hello_retry_request = (flags & FLAG_HRR) != 0;
  out->mode = col_dup_or_null(st, L_MODE);
  out->fidelity_note = col_dup_or_null(st, L_NOTE);
  out->ticket_received = flag_opt(flags, FLAG_TICKET, FLAG_NULL_TICKET);
  out->resumption_handshake_ns = col_opt(st, L_RESUMPTION);
  out->early_data_attempted = flag_opt(flags, FLAG_ED_ATTEMPTED, FLAG_NULL_ED_ATTEMPTED);
  out->early_data_accepted = flag_opt(flags, FLAG_ED_ACCEPTED, FLAG_NULL_ED_ACCEPTED);
  out->chain_length_sent = col_opt(st, L_CHAIN_LEN);
  out->chain_complete = flag_opt(flags, FLAG_CHAIN_COMPLETE, FLAG_NULL_CHAIN_COMPLETE);
  out->ocsp_stapled = (flags & FLAG_STAPLED) != 0;
  if (out->ocsp_stapled) {
    out->ocsp_cert_status = col_dup_or_null(st, L_OCSP_STATUS);
    out->ocsp_this_update_unix = col_opt(st, L_OCSP_THIS);
    out->ocsp_next_update_unix = col_opt(st, L_OCSP_NEXT);
    out->ocsp_age_seconds = col_opt(st, L_OCSP_AGE);
  }
  out->http_status = col_opt(st, L_HTTP_STATUS);
  out->http_present = out->http_status.set;
  out->http_first_byte_ns = col_opt(st, L_HTTP_FIRST_BYTE);
  if (out->http_present)
    out->http_hsts = (tp_store_opt){.set = true, .v = (flags & FLAG_HSTS) != 0};
  out->address_family = col_dup_or_null(st, L_FAMILY);
  out->emulation_checked = flag_opt(flags, FLAG_EMU_CHECKED, FLAG_NULL_EMU_CHECKED);
  out->emulation_divergence = col_dup_or_null(st, L_DIVERGENCE);
  out->early_data_policy_violation = flag_opt(flags, FLAG_ED_VIOLATION, FLAG_NULL_ED_VIOLATION);
}

tp_err tp__sqlite_latest(tp_store *store, const char *target, const char *profile,
                         const char *region, int64_t since_unix_ns, tp_store_facts *out, char *err,
                         size_t errlen) {
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
  facts_from(s->latest, out);
  bool v2_lists = sqlite3_column_type(s->latest, L_GROUPS) != SQLITE_NULL;
  int64_t id = sqlite3_column_int64(s->latest, L_ID);
  (void)sqlite3_reset(s->latest);
  rc = tp__sqlite_latest_lists(s, id, v2_lists, out, err, errlen);
  if (rc != TP_E_OK)
    tp_store_facts_clear(out);
out:
  (void)sqlite3_reset(s->latest);
  (void)sqlite3_clear_bindings(s->latest);
  return rc;
}

tp_err tp__sqlite_prepare_read(sqlite_store *s, char *err, size_t errlen) {
  struct {
    const char *sql;
    sqlite3_stmt **stmt;
  } all[] = {
      {SQL_SCAN_ALL, &s->scan_all},
      {SQL_SCAN_TARGET, &s->scan_target},
      {SQL_CHAIN, &s->chain_of},
      {SQL_LATEST, &s->latest},
      {SQL_LATEST_CHAIN, &s->latest_chain},
      {SQL_LATEST_DETAILS, &s->latest_details},
      {SQL_CHAIN_SERIES, &s->chain_series},
  };
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    if (sqlite3_prepare_v3(s->db, all[i].sql, -1, SQLITE_PREPARE_PERSISTENT, all[i].stmt, NULL) !=
        SQLITE_OK)
      return fail(s, err, errlen, "cannot prepare statement");
  return TP_E_OK;
}

void tp__sqlite_finalize_read(sqlite_store *s) {
  sqlite3_finalize(s->scan_all);
  sqlite3_finalize(s->scan_target);
  sqlite3_finalize(s->chain_of);
  sqlite3_finalize(s->latest);
  sqlite3_finalize(s->latest_chain);
  sqlite3_finalize(s->latest_details);
  sqlite3_finalize(s->chain_series);
}
