/* store_sqlite_internal.h - shared by the SQLite backend's files only: the
 * backend struct, the schema version 6 row layout, and the small statement helpers
 * every file uses.
 *
 * Files: store_sqlite.c (open, schema and migrations, close), store_sqlite_write.c
 * (group commit, exactly-once by seen sets), store_sqlite_intern.c (content-addressed
 * dictionaries: the writer's interning and the readers' id -> strings caches),
 * store_sqlite_read.c (scan, chain, latest), store_sqlite_facts.c (the latest result's
 * lists), store_sqlite_delivery.c (drops, spool counters), store_sqlite_rollup.c and
 * store_sqlite_maintain.c (long windows). */
#ifndef TP_STORE_SQLITE_INTERNAL_H
#define TP_STORE_SQLITE_INTERNAL_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store_impl.h"
#include "tp_buf.h"

/* ---- schema version 6: one narrow row per result ---------------------------------------
 *
 * result_rows holds integers only but for error_detail; what repeats lives once in a
 * dictionary table and is referenced by id: spool_keys (agent_id, instance_id), series
 * (target, profile, region, host, port, sni, address, address_family), shapes (the
 * outcome and negotiated facts: error_class, tls_version, cipher, grp, alpn,
 * server_signature_algorithm, mode, groups_offered, key_shares_offered, fidelity_note,
 * emulation_divergence, ocsp_cert_status) and chains (chain_json). Booleans are bits
 * of `flags`. The view `results` shows every version 5 column (and the version 6
 * ones), so SQL written against earlier versions reads the same. */

enum {
  FLAG_OK = 1 << 0,
  FLAG_RESUMED = 1 << 1,
  FLAG_HRR = 1 << 2,
  FLAG_TICKET = 1 << 3,
  FLAG_ED_ATTEMPTED = 1 << 4,
  FLAG_ED_ACCEPTED = 1 << 5,
  FLAG_STAPLED = 1 << 6,
  FLAG_CHAIN_COMPLETE = 1 << 7,
  FLAG_HSTS = 1 << 8,
  FLAG_EMU_CHECKED = 1 << 9,
  FLAG_ED_VIOLATION = 1 << 10,
  FLAG_SATURATED = 1 << 11,
  /* NULL ("not recorded": a row stored before schema version 2 or 3, migrated) for
   * the booleans that could be NULL: set, the column reads NULL as it did. Rows
   * written by version 6 never set them (so their flags stay below 2^12, 2 bytes). */
  FLAG_NULL_TICKET = 1 << 12,
  FLAG_NULL_ED_ATTEMPTED = 1 << 13,
  FLAG_NULL_ED_ACCEPTED = 1 << 14,
  FLAG_NULL_STAPLED = 1 << 15,
  FLAG_NULL_CHAIN_COMPLETE = 1 << 16,
  FLAG_NULL_EMU_CHECKED = 1 << 17,
  FLAG_NULL_ED_VIOLATION = 1 << 18,
};

/* ---- content-addressed dictionaries (store_sqlite_intern.c) ------------------------- */

/* A content key: the fields of one dictionary row, each as a tag byte ('N' NULL, 'T'
 * text + 4-byte length + bytes, 'I' + 8 bytes), so NULL and '' differ. The writer
 * builds it from the wire, the migration's SQL function tp_intern_hash from version 5
 * columns: the same content has the same key and hash either way. */
tp_err tp__key_text(tp_buf *key, const char *s); /* s NULL: SQL NULL */
tp_err tp__key_text_n(tp_buf *key, const char *s, size_t n);
tp_err tp__key_int(tp_buf *key, int64_t v);
uint64_t tp__key_hash(const void *p, size_t n);

/* The writer's view of one dictionary table: content key -> id, cached in memory
 * (bounded), backed by the table's `h` index on a miss. */
typedef struct tp__dict_slot {
  uint64_t h;
  int64_t id;
  size_t off, len; /* the key in the arena */
} tp__dict_slot;

typedef struct tp__dict {
  const char *table;
  const char *const *columns; /* the key's fields, in key order */
  size_t n_columns;
  tp__dict_slot *slots; /* open addressing on h; id 0 = empty */
  size_t cap, used;
  tp_buf arena;
  sqlite3_stmt *find;   /* SELECT id, columns... FROM table WHERE h = ?1 */
  sqlite3_stmt *insert; /* INSERT INTO table (h, columns...) VALUES (...) */
  tp_buf scratch;       /* a found row's key, re-encoded */
  tp_buf db_key;        /* the table's key of what is looked up */
  uint64_t hits, misses, inserted;
} tp__dict;

typedef enum { DICT_SERIES, DICT_SHAPES, DICT_CHAINS, N_DICTS } tp__dict_kind;

/* The readers' view: id -> the row's text columns (NULL stays NULL), loaded on demand,
 * whole tables being small. */
typedef struct tp__names_entry {
  int64_t id;
  char **cols;
} tp__names_entry;

typedef struct tp__names {
  const char *sql; /* SELECT id, cols... FROM table WHERE id > ?1 ORDER BY id */
  size_t n_cols;
  tp__names_entry *entries; /* open addressing on id; id 0 = empty */
  size_t cap, used;
  int64_t max_id; /* the highest id loaded */
} tp__names;

typedef enum { NAMES_SERIES, NAMES_SHAPES, NAMES_SPOOLS, N_NAMES } tp__names_kind;

/* ---- exactly once: seen sets (store_sqlite_write.c) --------------------------------- */

/* The result_seq values a spool has stored, as sorted disjoint intervals (table
 * `seen`): a re-sent result is recognised without an index entry per row. */
typedef struct tp__seen_iv {
  int64_t first, last;
} tp__seen_iv;

typedef struct tp__spool {
  char *agent_id;
  uint64_t instance_id;
  int64_t id; /* spool_keys.id */
  tp__seen_iv *iv;
  size_t n, alloc;
  int64_t *touched; /* first_seq keys changed since the last flush */
  size_t n_touched, alloc_touched;
} tp__spool;

/* A series' newest row (table series_latest: what tp_store_latest reads instead of an
 * index of every row by series). */
/* A series' newest row, and its newest row with a chain (chain 0: none seen). */
typedef struct tp__latest {
  int64_t series, started, id; /* series 0: an empty slot */
  int64_t chain, chain_started, chain_row;
} tp__latest;

/* series_latest's upsert merge (schema version 8), shared by the writer and the
 * results view's trigger: the newer row by (started, id), and independently the newer
 * row with a chain by (chain_unix_ns, chain_row) -- a series whose latest results
 * failed before any certificate keeps the chain it last showed. */
#define SQL_SERIES_LATEST_NEWER                                                                    \
  "(excluded.started_unix_ns > started_unix_ns OR (excluded.started_unix_ns = started_unix_ns"    \
  " AND excluded.id > id))"
#define SQL_SERIES_LATEST_CHAIN_NEWER                                                              \
  "(excluded.chain IS NOT NULL AND (chain IS NULL OR excluded.chain_unix_ns > chain_unix_ns"       \
  " OR (excluded.chain_unix_ns = chain_unix_ns AND excluded.chain_row > chain_row)))"
/* class_latest's upsert merge (schema version 10): per series and failure class, the
 * newest result's detail by (started, row). */
#define SQL_CLASS_LATEST_MERGE                                                                     \
  " ON CONFLICT (series, error_class) DO UPDATE SET started_unix_ns = excluded.started_unix_ns,"  \
  " row_id = excluded.row_id, detail = excluded.detail"                                           \
  " WHERE excluded.started_unix_ns > started_unix_ns"                                             \
  " OR (excluded.started_unix_ns = started_unix_ns AND excluded.row_id > row_id)"

/* A failed result of the batch or group being written, for class_latest. */
typedef struct tp__failure {
  int64_t series, started, id;
  const char *cls; /* static outcome name */
  char *detail;    /* owned */
} tp__failure;

#define SQL_SERIES_LATEST_MERGE                                                                    \
  " ON CONFLICT (series) DO UPDATE SET"                                                           \
  " started_unix_ns = CASE WHEN " SQL_SERIES_LATEST_NEWER " THEN excluded.started_unix_ns"        \
  "  ELSE started_unix_ns END,"                                                                   \
  " id = CASE WHEN " SQL_SERIES_LATEST_NEWER " THEN excluded.id ELSE id END,"                     \
  " chain = CASE WHEN " SQL_SERIES_LATEST_CHAIN_NEWER " THEN excluded.chain ELSE chain END,"      \
  " chain_unix_ns = CASE WHEN " SQL_SERIES_LATEST_CHAIN_NEWER " THEN excluded.chain_unix_ns"      \
  "  ELSE chain_unix_ns END,"                                                                     \
  " chain_row = CASE WHEN " SQL_SERIES_LATEST_CHAIN_NEWER " THEN excluded.chain_row"              \
  "  ELSE chain_row END"                                                                          \
  " WHERE " SQL_SERIES_LATEST_NEWER " OR " SQL_SERIES_LATEST_CHAIN_NEWER

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
  sqlite3_stmt *insert_row;
  sqlite3_stmt *insert_rows; /* the multi-row form (store_sqlite_write.c) */
  sqlite3_stmt *spool_find, *spool_insert;
  sqlite3_stmt *seen_load, *seen_upsert, *seen_delete;
  sqlite3_stmt *latest_upsert;
  sqlite3_stmt *class_upsert;
  sqlite3_stmt *scan_all;
  sqlite3_stmt *scan_target;
  sqlite3_stmt *chain_of; /* one row's chain, unpacked */
  sqlite3_stmt *latest;
  sqlite3_stmt *latest_chain; /* a series' newest chain, unpacked */
  sqlite3_stmt *latest_details; /* every series' newest failure per class */
  sqlite3_stmt *chain_series;   /* the series names with a chain since */
  /* delivery accounting (store_sqlite_delivery.c) */
  sqlite3_stmt *insert_drop;
  sqlite3_stmt *upsert_spool;
  sqlite3_stmt *scan_spools;
  sqlite3_stmt *scan_drops;
  /* the writer's dictionaries and spools (cleared whenever a rollback may have undone
   * what they remember) */
  tp__dict dicts[N_DICTS];
  tp__spool **spools; /* open addressing on (agent_id, instance_id) */
  size_t spools_cap, spools_used, seen_cached;
  /* the newest row per series: of the batch being stored, and of the group's batches
   * stored so far (open addressing on series), written before the group's COMMIT */
  tp__latest *batch_latest;
  size_t n_batch_latest, alloc_batch_latest;
  tp__latest *group_latest;
  size_t cap_group_latest, n_group_latest;
  /* failed results: the batch's, then (kept) the group's, for class_latest */
  tp__failure *batch_fail, *group_fail;
  size_t n_batch_fail, alloc_batch_fail, n_group_fail, alloc_group_fail;
  /* the readers' id -> names caches */
  tp__names names[N_NAMES];
};

/* Rows stored before schema version 2 hold 0 in days_to_earliest_expiry when there
 * was no chain; the CASE makes both generations read NULL. Over result_rows. */
#define SQL_DAYS6                                                                                  \
  "CASE WHEN days_to_earliest_expiry = 0 AND chain IS NULL THEN NULL"                              \
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

/* ---- dictionaries (store_sqlite_intern.c) ---- */

/* Prepares the writer's dictionaries (read-write stores) or readies the readers'
 * caches; the SQL function tp_intern_hash for the migration. */
tp_err tp__sqlite_dicts_prepare(sqlite_store *s, char *err, size_t errlen);
void tp__sqlite_dicts_finalize(sqlite_store *s);
tp_err tp__sqlite_register_intern_function(sqlite_store *s, char *err, size_t errlen);
/* Builds the key of the row as the table stores it (its columns: tp_intern_hash's
 * input) into out. */
typedef tp_err (*tp__db_key_fn)(const void *arg, tp_buf *out);
/* The id of the row with this content, inserted if there is none. Inside the writer's
 * transaction. key/h is what the writer's cache knows it by (cheap to build for every
 * result); db_key(arg) is called only on a cache miss, for the table's own key (NULL:
 * key is that too). */
tp_err tp__sqlite_intern(sqlite_store *s, tp__dict_kind kind, const void *key, size_t len,
                         uint64_t h, tp__db_key_fn db_key, const void *arg, int64_t *id, char *err,
                         size_t errlen);
/* After a rollback: what the caches remember may no longer be in the file. */
void tp__sqlite_dicts_forget(sqlite_store *s);
/* The text columns of dictionary row id (cols[i] may be NULL); *cols = NULL when the
 * table has no such row. Loads what is new since the last call. */
tp_err tp__sqlite_names(sqlite_store *s, tp__names_kind kind, int64_t id, char *const **cols,
                        char *err, size_t errlen);
void tp__sqlite_names_free(sqlite_store *s);

/* ---- write path (store_sqlite_write.c) ---- */

tp_err tp__sqlite_prepare_write(sqlite_store *s, char *err, size_t errlen);
void tp__sqlite_finalize_write(sqlite_store *s);
tp_err tp__sqlite_put_batches(tp_store *store, tp_store_put *puts, size_t n, char *err,
                              size_t errlen);
tp_err tp__sqlite_prepare_batch(const Tlsprobe__V1__ResultBatch *batch, tp_store_prep **out,
                                char *err, size_t errlen);
void tp__sqlite_prep_free(tp_store_prep *prep);

/* ---- read path (store_sqlite_read.c) ---- */

tp_err tp__sqlite_prepare_read(sqlite_store *s, char *err, size_t errlen);
void tp__sqlite_finalize_read(sqlite_store *s);
tp_err tp__sqlite_scan(tp_store *store, const tp_store_filter *filter, tp_store_row_fn fn,
                       void *ctx, char *err, size_t errlen);
tp_err tp__sqlite_scan_chain_series(tp_store *store, int64_t since_unix_ns, tp_store_series_fn fn,
                                    void *ctx, char *err, size_t errlen);
tp_err tp__sqlite_scan_latest_details(tp_store *store, int64_t since_unix_ns,
                                      tp_store_detail_fn fn, void *ctx, char *err,
                                      size_t errlen);
tp_err tp__sqlite_scan_latest_chain(tp_store *store, const char *target, const char *profile,
                                    const char *region, int64_t since_unix_ns,
                                    tp_store_cert_fn fn, void *ctx, char *err, size_t errlen);
tp_err tp__sqlite_scan_chain(tp_store *store, int64_t row_id, tp_store_cert_fn fn, void *ctx,
                             char *err, size_t errlen);
tp_err tp__sqlite_latest(tp_store *store, const char *target, const char *profile,
                         const char *region, int64_t since_unix_ns, tp_store_facts *out, char *err,
                         size_t errlen);

/* ---- delivery accounting (store_sqlite_delivery.c) ---- */

/* Prepares the delivery statements (write ones only for a read-write store). */
tp_err tp__sqlite_prepare_delivery(sqlite_store *s, bool writable, char *err, size_t errlen);
void tp__sqlite_finalize_delivery(sqlite_store *s);
/* Inside put_batch's transaction: stores the batch's drop reports and updates the
 * spool's counters with what this batch newly added. */
tp_err tp__sqlite_put_delivery(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch,
                               int64_t received_unix_ns, const tp_store_put_outcome *results,
                               uint64_t max_seq_stored, int64_t last_started_stored, bool *drop_new,
                               uint32_t *drops_stored, char *err, size_t errlen);
tp_err tp__sqlite_scan_spools(tp_store *store, tp_store_spool_fn fn, void *ctx, char *err,
                              size_t errlen);
tp_err tp__sqlite_scan_drops(tp_store *store, int64_t since_unix_ns, tp_store_drop_fn fn, void *ctx,
                             char *err, size_t errlen);

/* ---- long windows (store_sqlite_rollup.c, store_sqlite_maintain.c) ---- */

/* The SQL functions the rollup statements use (tp_sketch_of, tp_sketch_merge,
 * tp_sketch_sum, tp_classes_of, tp_classes_merge, tp_classes_sum), on a read-write
 * connection. */
tp_err tp__sqlite_register_rollup_functions(sqlite_store *s, char *err, size_t errlen);
/* Inside a write transaction: folds results with watermark < id <= hi into their
 * rollup minutes and hours; *rows = rollup rows inserted or updated. */
/* Schema version 9's migration: day rows from the stored hour rows. */
extern const char tp__sqlite_days_from_hours[];
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
