/* store_sqlite_facts.c - the latest result's lists, structured: the chain (certificates
 * with their SAN lists) and the offered groups and key shares are kept as JSON text in
 * their dictionaries (chains.chain_json, shapes.groups_offered / key_shares_offered:
 * chain_json.c, tp_json_str_array), and SQLite's JSON functions unpack them here, so
 * the report gets the same structs from any backend. */
#include <stdlib.h>

#include "store_sqlite_internal.h"
#include "tp_mem.h"

/* json_each over one list of the result's shape: ?1 = the result's id. The column is
 * named in the text (never user input). NULL or invalid JSON yields no rows. */
#define SQL_LIST(column)                                                                       \
  "SELECT CAST(e.value AS TEXT) FROM result_rows AS r JOIN shapes AS f ON f.id = r.shape,"    \
  " json_each(f." column ") AS e WHERE r.id = ?1 AND json_valid(f." column ") ORDER BY e.key"
static const char SQL_GROUPS[] = SQL_LIST("groups_offered");
static const char SQL_SHARES[] = SQL_LIST("key_shares_offered");
#define SQL_CHAIN_OF_ROW                                                                       \
  " FROM result_rows AS r JOIN chains AS ch ON ch.id = r.chain, json_each(ch.chain_json) AS c"
static const char SQL_CERTS[] =
    "SELECT CAST(c.key AS INTEGER), json_extract(c.value, '$.subject'),"
    " json_extract(c.value, '$.issuer'), json_extract(c.value, '$.not_before_unix'),"
    " json_extract(c.value, '$.not_after_unix'), json_extract(c.value, '$.key_type'),"
    " json_extract(c.value, '$.key_bits'), json_extract(c.value, '$.signature_algorithm')"
    SQL_CHAIN_OF_ROW " WHERE r.id = ?1 AND json_valid(ch.chain_json) ORDER BY c.key";
static const char SQL_SANS[] =
    "SELECT CAST(c.key AS INTEGER), CAST(s.value AS TEXT)" SQL_CHAIN_OF_ROW
    ", json_each(c.value, '$.san_dns') AS s"
    " WHERE r.id = ?1 AND json_valid(ch.chain_json) ORDER BY c.key, s.key";

static char *text_dup(sqlite3_stmt *stmt, int col) {
  const unsigned char *t = sqlite3_column_text(stmt, col);
  return tp_xstrdup(t ? (const char *)t : "");
}

static void push(tp_store_strings *l, char *item) {
  l->items = tp_xrealloc(l->items, (l->n + 1) * sizeof(l->items[0]));
  l->items[l->n++] = item;
}

/* Runs a one-off statement over row id, calling `row` for each result row. */
static tp_err each_row(sqlite_store *s, const char *sql, int64_t id,
                       void (*row)(sqlite3_stmt *stmt, void *ctx), void *ctx, char *err,
                       size_t errlen) {
  sqlite3_stmt *stmt = NULL;
  tp_err rc = TP_E_OK;
  if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK ||
      sqlite3_bind_int64(stmt, 1, id) != SQLITE_OK) {
    snprintf(err, errlen, "%s: cannot read the latest result's lists: %s", s->path,
             sqlite3_errmsg(s->db));
    rc = TP_E_STORE;
    goto out;
  }
  int step;
  while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
    row(stmt, ctx);
  if (step != SQLITE_DONE) {
    snprintf(err, errlen, "%s: reading the latest result's lists failed: %s", s->path,
             sqlite3_errmsg(s->db));
    rc = TP_E_STORE;
  }
out:
  sqlite3_finalize(stmt);
  return rc;
}

static void on_item(sqlite3_stmt *stmt, void *ctx) { push(ctx, text_dup(stmt, 0)); }

static void on_cert(sqlite3_stmt *stmt, void *ctx) {
  tp_store_facts *f = ctx;
  f->chain = tp_xrealloc(f->chain, (f->n_chain + 1) * sizeof(f->chain[0]));
  f->chain[f->n_chain++] = (tp_store_cert){
      .subject = text_dup(stmt, 1),
      .issuer = text_dup(stmt, 2),
      .san_dns = {.set = true},
      .not_before_unix = sqlite3_column_int64(stmt, 3),
      .not_after_unix = sqlite3_column_int64(stmt, 4),
      .key_type = text_dup(stmt, 5),
      .key_bits = (uint32_t)sqlite3_column_int64(stmt, 6),
      .signature_algorithm = text_dup(stmt, 7),
  };
}

static void on_san(sqlite3_stmt *stmt, void *ctx) {
  tp_store_facts *f = ctx;
  int64_t pos = sqlite3_column_int64(stmt, 0);
  if (pos >= 0 && (size_t)pos < f->n_chain)
    push(&f->chain[pos].san_dns, text_dup(stmt, 1));
}

tp_err tp__sqlite_latest_lists(sqlite_store *s, int64_t id, bool v2_lists, tp_store_facts *out,
                               char *err, size_t errlen) {
  tp_err rc = each_row(s, SQL_CERTS, id, on_cert, out, err, errlen);
  if (rc == TP_E_OK)
    rc = each_row(s, SQL_SANS, id, on_san, out, err, errlen);
  out->groups_offered.set = out->key_shares_offered.set = v2_lists;
  if (rc == TP_E_OK && v2_lists)
    rc = each_row(s, SQL_GROUPS, id, on_item, &out->groups_offered, err, errlen);
  if (rc == TP_E_OK && v2_lists)
    rc = each_row(s, SQL_SHARES, id, on_item, &out->key_shares_offered, err, errlen);
  return rc;
}
