/* store_sqlite_intern.c - the content-addressed dictionaries of schema version 6.
 *
 * What repeats from result to result -- a series' names, the negotiated facts and the
 * profile's fidelity note, the certificate chain -- is stored once, in a dictionary
 * table, and each result row holds its id. The key of a dictionary row is its content
 * as the table stores it (tp__key_*: every column tagged, so NULL and '' differ) and
 * its hash, kept in the table's `h` column and indexed: the writer finds an existing
 * row by hash and compares the content, and inserts a new row otherwise. A hash
 * collision therefore costs a comparison, never a wrong id.
 *
 * The writer's cache may know a row by a cheaper key of the same content: a chain by
 * its certificates' fields rather than its JSON (encoding the JSON of every result's
 * chain was a third of the decoding threads' time). The table's key is then built
 * only on a cache miss, once per distinct content.
 *
 * The writer (one thread, the ingest writer) keeps what it has interned in memory,
 * bounded: a miss costs one indexed lookup, so the cache may be emptied at any time --
 * after any rollback (what it remembers may have been undone) or when it outgrows its
 * bound. Nothing here ever deletes a dictionary row: rows refer to them by id until
 * retention deletes the rows, and the dictionaries are as small as the content is
 * varied (docs/collector.md, "Storage").
 *
 * Readers (scans) map ids back to strings through their own cache, loaded on demand
 * (tables are read whole, in id order, from where the last load stopped). */
#include <stdlib.h>

#include "store_sqlite_internal.h"
#include "tp_mem.h"

/* Beyond these the writer's cache starts again from empty (each dictionary). */
#define DICT_MAX_ARENA ((size_t)64 * 1024 * 1024)
#define DICT_MAX_SLOTS ((size_t)1 << 20)
/* A key holds at most a chain's JSON (bounded by the body it came from, six-fold
 * with escaping): this only stops a bug. */
#define KEY_CAP ((size_t)2 * 1024 * 1024 * 1024)

static const char *const SERIES_COLUMNS[] = {"target", "profile", "region",  "host",
                                             "port",   "sni",     "address", "address_family"};
static const char *const SHAPES_COLUMNS[] = {"error_class",
                                             "tls_version",
                                             "cipher",
                                             "grp",
                                             "alpn",
                                             "server_signature_algorithm",
                                             "mode",
                                             "groups_offered",
                                             "key_shares_offered",
                                             "fidelity_note",
                                             "emulation_divergence",
                                             "ocsp_cert_status"};
static const char *const CHAINS_COLUMNS[] = {"chain_json"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- keys -------------------------------------------------------------------------- */

tp_err tp__key_text_n(tp_buf *key, const char *s, size_t n) {
  uint8_t head[5] = {'T', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
  if (n > UINT32_MAX)
    return TP_E_TOOBIG;
  tp_err rc = tp_buf_append(key, head, sizeof(head));
  return rc == TP_E_OK && n > 0 ? tp_buf_append(key, s, n) : rc;
}

tp_err tp__key_text(tp_buf *key, const char *s) {
  if (s == NULL)
    return tp_buf_append(key, "N", 1);
  return tp__key_text_n(key, s, strlen(s));
}

tp_err tp__key_int(tp_buf *key, int64_t v) {
  uint8_t b[9] = {'I'};
  uint64_t u = (uint64_t)v;
  for (int i = 0; i < 8; i++)
    b[1 + i] = (uint8_t)(u >> (8 * i));
  return tp_buf_append(key, b, sizeof(b));
}

static uint64_t load_le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static inline uint64_t le64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

/* 64 x 64 -> 128-bit multiply, folded (wyhash's mixing step). */
static inline uint64_t mum(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

#define K0 UINT64_C(0xa0761d6478bd642f)
#define K1 UINT64_C(0xe7037ed1a0b428db)
#define K2 UINT64_C(0x8ebc6af09c88c6e3)
#define K3 UINT64_C(0x589965cc75374cc3)

/* Not cryptographic (a collision costs a comparison), but the same on every machine
 * (bytes are read little-endian), so a database's `h` columns stay valid when the file
 * moves. wyhash's construction: one 128-bit multiply per 16 bytes, two lanes at once;
 * every result's keys (about a kilobyte) are hashed, so this is on the hot path. */
uint64_t tp__key_hash(const void *data, size_t n) {
  const uint8_t *p = data;
  uint64_t len = n, a = K0 ^ mum(len ^ K1, K2), b = a ^ K3;
  for (; n >= 32; p += 32, n -= 32) {
    a = mum(le64(p) ^ K1, le64(p + 8) ^ a);
    b = mum(le64(p + 16) ^ K2, le64(p + 24) ^ b);
  }
  a ^= b;
  for (; n >= 16; p += 16, n -= 16)
    a = mum(le64(p) ^ K1, le64(p + 8) ^ a);
  uint64_t w0 = load_le(p, n < 8 ? n : 8), w1 = n > 8 ? load_le(p + 8, n - 8) : 0;
  a = mum(w0 ^ K1, w1 ^ a);
  return mum(a ^ K3, len ^ K0);
}

/* tp_intern_hash(field, ...): the hash of these fields' key, for the migration to
 * fill the `h` columns of what it moves into the dictionaries. */
static void sql_intern_hash(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  tp_buf key;
  tp_err rc = TP_E_OK;
  tp_buf_init(&key, KEY_CAP);
  for (int i = 0; rc == TP_E_OK && i < argc; i++) {
    switch (sqlite3_value_type(argv[i])) {
    case SQLITE_NULL:
      rc = tp__key_text(&key, NULL);
      break;
    case SQLITE_INTEGER:
      rc = tp__key_int(&key, sqlite3_value_int64(argv[i]));
      break;
    default: {
      const unsigned char *t = sqlite3_value_text(argv[i]);
      rc = tp__key_text_n(&key, t ? (const char *)t : "", (size_t)sqlite3_value_bytes(argv[i]));
      break;
    }
    }
  }
  if (rc != TP_E_OK)
    sqlite3_result_error(ctx, "tp_intern_hash: key too large", -1);
  else
    sqlite3_result_int64(ctx, u64_bits(tp__key_hash(key.data, key.len)));
  tp_buf_free(&key);
}

tp_err tp__sqlite_register_intern_function(sqlite_store *s, char *err, size_t errlen) {
  int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY;
  if (sqlite3_create_function(s->db, "tp_intern_hash", -1, flags, NULL, sql_intern_hash, NULL,
                              NULL) != SQLITE_OK)
    return fail(s, err, errlen, "cannot register tp_intern_hash");
  return TP_E_OK;
}

/* ---- the writer's dictionaries ------------------------------------------------------- */

static void dict_clear(tp__dict *d) {
  free(d->slots);
  d->slots = NULL;
  d->cap = d->used = 0;
  tp_buf_free(&d->arena); /* keeps its cap */
}

static void dict_grow(tp__dict *d) {
  size_t cap = d->cap ? d->cap * 2 : 1024;
  tp__dict_slot *old = d->slots;
  size_t old_cap = d->cap;
  d->slots = tp_xcalloc(cap, sizeof(*d->slots));
  d->cap = cap;
  for (size_t i = 0; i < old_cap; i++) {
    if (old[i].id == 0)
      continue;
    size_t j = old[i].h & (cap - 1);
    while (d->slots[j].id != 0)
      j = (j + 1) & (cap - 1);
    d->slots[j] = old[i];
  }
  free(old);
}

static int64_t dict_lookup(const tp__dict *d, const void *key, size_t len, uint64_t h) {
  if (d->cap == 0)
    return 0;
  for (size_t j = h & (d->cap - 1); d->slots[j].id != 0; j = (j + 1) & (d->cap - 1)) {
    const tp__dict_slot *e = &d->slots[j];
    if (e->h == h && e->len == len && memcmp(d->arena.data + e->off, key, len) == 0)
      return e->id;
  }
  return 0;
}

/* Remembers key -> id unless that would pass the bounds, which empties the cache
 * first: the lookups it saves are cheap to redo. */
static void dict_remember(tp__dict *d, const void *key, size_t len, uint64_t h, int64_t id) {
  if (d->arena.len + len > DICT_MAX_ARENA || d->used + 1 > DICT_MAX_SLOTS)
    dict_clear(d);
  if (len > DICT_MAX_ARENA)
    return;
  if ((d->used + 1) * 2 > d->cap)
    dict_grow(d);
  size_t off = d->arena.len;
  if (tp_buf_append(&d->arena, key, len) != TP_E_OK)
    return; /* cannot happen below DICT_MAX_ARENA; not remembering is always correct */
  size_t j = h & (d->cap - 1);
  while (d->slots[j].id != 0)
    j = (j + 1) & (d->cap - 1);
  d->slots[j] = (tp__dict_slot){.h = h, .id = id, .off = off, .len = len};
  d->used++;
}

/* A found row's columns (1..n) as a key, to compare with the wanted one. */
static tp_err reencode(tp__dict *d, sqlite3_stmt *st) {
  tp_err rc = TP_E_OK;
  tp_buf_reset(&d->scratch);
  for (size_t c = 0; rc == TP_E_OK && c < d->n_columns; c++) {
    int col = (int)c + 1;
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL:
      rc = tp__key_text(&d->scratch, NULL);
      break;
    case SQLITE_INTEGER:
      rc = tp__key_int(&d->scratch, sqlite3_column_int64(st, col));
      break;
    default: {
      const unsigned char *t = sqlite3_column_text(st, col);
      rc = tp__key_text_n(&d->scratch, t ? (const char *)t : "",
                          (size_t)sqlite3_column_bytes(st, col));
    }
    }
  }
  return rc;
}

static tp_err dict_find(sqlite_store *s, tp__dict *d, const void *key, size_t len, uint64_t h,
                        int64_t *id, char *err, size_t errlen) {
  tp_err rc = TP_E_OK;
  int step;
  *id = 0;
  if (sqlite3_bind_int64(d->find, 1, u64_bits(h)) != SQLITE_OK)
    return fail(s, err, errlen, "cannot bind a dictionary lookup");
  while ((step = sqlite3_step(d->find)) == SQLITE_ROW) {
    if (reencode(d, d->find) != TP_E_OK)
      continue; /* a row too large to be ours: not a match */
    if (d->scratch.len == len && memcmp(d->scratch.data, key, len) == 0) {
      *id = sqlite3_column_int64(d->find, 0);
      break;
    }
  }
  if (step != SQLITE_ROW && step != SQLITE_DONE)
    rc = fail(s, err, errlen, "dictionary lookup failed");
  (void)sqlite3_reset(d->find);
  return rc;
}

/* Binds the key's fields as ?2.. of the insert (?1 = h). The key is ours. */
static int bind_key(sqlite3_stmt *st, const uint8_t *p, size_t len, uint64_t h) {
  const uint8_t *end = p + len;
  int rc = sqlite3_bind_int64(st, 1, u64_bits(h));
  for (int idx = 2; rc == SQLITE_OK && p < end; idx++) {
    uint8_t tag = *p++;
    if (tag == 'N') {
      rc = sqlite3_bind_null(st, idx);
    } else if (tag == 'I' && end - p >= 8) {
      rc = sqlite3_bind_int64(st, idx, (sqlite3_int64)load_le(p, 8));
      p += 8;
    } else if (tag == 'T' && end - p >= 4) {
      size_t n = (size_t)load_le(p, 4);
      p += 4;
      if ((size_t)(end - p) < n)
        return SQLITE_MISUSE;
      rc = sqlite3_bind_text(st, idx, (const char *)p, (int)n, SQLITE_STATIC);
      p += n;
    } else {
      return SQLITE_MISUSE;
    }
  }
  return rc;
}

tp_err tp__sqlite_intern(sqlite_store *s, tp__dict_kind kind, const void *key, size_t len,
                         uint64_t h, tp__db_key_fn db_key, const void *arg, int64_t *id, char *err,
                         size_t errlen) {
  tp__dict *d = &s->dicts[kind];
  *id = dict_lookup(d, key, len, h);
  if (*id != 0) {
    d->hits++;
    return TP_E_OK;
  }
  d->misses++;
  const void *dk = key;
  size_t dlen = len;
  uint64_t dh = h;
  if (db_key != NULL) {
    tp_buf_reset(&d->db_key);
    if (db_key(arg, &d->db_key) != TP_E_OK) {
      snprintf(err, errlen, "%s: result too large to encode", s->path);
      return TP_E_STORE;
    }
    dk = d->db_key.data;
    dlen = d->db_key.len;
    dh = tp__key_hash(dk, dlen);
  }
  tp_err rc = dict_find(s, d, dk, dlen, dh, id, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  if (*id == 0) {
    if (dlen > INT32_MAX || bind_key(d->insert, dk, dlen, dh) != SQLITE_OK ||
        run(d->insert) != SQLITE_OK) {
      rc = fail(s, err, errlen, "cannot insert into a dictionary");
      (void)sqlite3_clear_bindings(d->insert);
      return rc;
    }
    (void)sqlite3_clear_bindings(d->insert);
    *id = sqlite3_last_insert_rowid(s->db);
    d->inserted++;
  }
  dict_remember(d, key, len, h, *id);
  return TP_E_OK;
}

void tp__sqlite_dicts_forget(sqlite_store *s) {
  for (int k = 0; k < N_DICTS; k++)
    dict_clear(&s->dicts[k]);
}

static tp_err prepare_dict(sqlite_store *s, tp__dict *d, const char *table,
                           const char *const *columns, size_t n, char *err, size_t errlen) {
  char find[1024], insert[1024];
  size_t fo = (size_t)snprintf(find, sizeof(find), "SELECT id");
  size_t io = (size_t)snprintf(insert, sizeof(insert), "INSERT INTO %s (h", table);
  for (size_t i = 0; i < n; i++) {
    fo += (size_t)snprintf(find + fo, sizeof(find) - fo, ", %s", columns[i]);
    io += (size_t)snprintf(insert + io, sizeof(insert) - io, ", %s", columns[i]);
  }
  fo += (size_t)snprintf(find + fo, sizeof(find) - fo, " FROM %s WHERE h = ?1", table);
  io += (size_t)snprintf(insert + io, sizeof(insert) - io, ") VALUES (?1");
  for (size_t i = 0; i < n; i++)
    io += (size_t)snprintf(insert + io, sizeof(insert) - io, ", ?%zu", i + 2);
  (void)snprintf(insert + io, sizeof(insert) - io, ")");
  d->table = table;
  d->columns = columns;
  d->n_columns = n;
  tp_buf_init(&d->arena, DICT_MAX_ARENA);
  tp_buf_init(&d->scratch, KEY_CAP);
  tp_buf_init(&d->db_key, KEY_CAP);
  if (sqlite3_prepare_v3(s->db, find, -1, SQLITE_PREPARE_PERSISTENT, &d->find, NULL) != SQLITE_OK ||
      sqlite3_prepare_v3(s->db, insert, -1, SQLITE_PREPARE_PERSISTENT, &d->insert, NULL) !=
          SQLITE_OK)
    return fail(s, err, errlen, "cannot prepare a dictionary statement");
  return TP_E_OK;
}

/* ---- the readers' names -------------------------------------------------------------- */

static const char SQL_NAMES_SERIES[] =
    "SELECT id, target, profile, region, address_family FROM series WHERE id > ?1 ORDER BY id";
static const char SQL_NAMES_SHAPES[] =
    "SELECT id, error_class, tls_version, cipher, grp, mode, emulation_divergence FROM shapes"
    " WHERE id > ?1 ORDER BY id";
static const char SQL_NAMES_SPOOLS[] =
    "SELECT id, agent_id FROM spool_keys WHERE id > ?1 ORDER BY id";

static void names_insert(tp__names *n, int64_t id, char **cols) {
  if ((n->used + 1) * 2 > n->cap) {
    size_t cap = n->cap ? n->cap * 2 : 256;
    tp__names_entry *fresh = tp_xcalloc(cap, sizeof(*fresh));
    for (size_t i = 0; i < n->cap; i++) {
      if (n->entries[i].id == 0)
        continue;
      size_t j = (size_t)n->entries[i].id & (cap - 1);
      while (fresh[j].id != 0)
        j = (j + 1) & (cap - 1);
      fresh[j] = n->entries[i];
    }
    free(n->entries);
    n->entries = fresh;
    n->cap = cap;
  }
  size_t j = (size_t)id & (n->cap - 1);
  while (n->entries[j].id != 0)
    j = (j + 1) & (n->cap - 1);
  n->entries[j] = (tp__names_entry){.id = id, .cols = cols};
  n->used++;
}

static char **names_find(const tp__names *n, int64_t id) {
  if (n->cap == 0 || id == 0)
    return NULL;
  for (size_t j = (size_t)id & (n->cap - 1); n->entries[j].id != 0; j = (j + 1) & (n->cap - 1))
    if (n->entries[j].id == id)
      return n->entries[j].cols;
  return NULL;
}

static tp_err names_load(sqlite_store *s, tp__names *n, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  tp_err rc = TP_E_OK;
  int step;
  if (sqlite3_prepare_v2(s->db, n->sql, -1, &st, NULL) != SQLITE_OK ||
      sqlite3_bind_int64(st, 1, n->max_id) != SQLITE_OK) {
    rc = fail(s, err, errlen, "cannot read a dictionary");
    goto out;
  }
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    if (id <= 0)
      continue; /* not a row we wrote: never referenced */
    char **cols = tp_xcalloc(n->n_cols, sizeof(char *));
    for (size_t c = 0; c < n->n_cols; c++) {
      const unsigned char *t = sqlite3_column_text(st, (int)c + 1);
      cols[c] = t ? tp_xstrdup((const char *)t) : NULL;
    }
    names_insert(n, id, cols);
    if (id > n->max_id)
      n->max_id = id;
  }
  if (step != SQLITE_DONE)
    rc = fail(s, err, errlen, "reading a dictionary failed");
out:
  sqlite3_finalize(st);
  return rc;
}

tp_err tp__sqlite_names(sqlite_store *s, tp__names_kind kind, int64_t id, char *const **cols,
                        char *err, size_t errlen) {
  tp__names *n = &s->names[kind];
  char **found = names_find(n, id);
  if (found == NULL && id > n->max_id) {
    tp_err rc = names_load(s, n, err, errlen);
    if (rc != TP_E_OK)
      return rc;
    found = names_find(n, id);
  }
  *cols = found;
  return TP_E_OK;
}

void tp__sqlite_names_free(sqlite_store *s) {
  for (int k = 0; k < N_NAMES; k++) {
    tp__names *n = &s->names[k];
    for (size_t i = 0; i < n->cap; i++) {
      if (n->entries[i].id == 0)
        continue;
      for (size_t c = 0; c < n->n_cols; c++)
        free(n->entries[i].cols[c]);
      free(n->entries[i].cols);
    }
    free(n->entries);
    *n = (tp__names){0};
  }
}

/* ---- set-up ---------------------------------------------------------------------------- */

tp_err tp__sqlite_dicts_prepare(sqlite_store *s, char *err, size_t errlen) {
  s->names[NAMES_SERIES] = (tp__names){.sql = SQL_NAMES_SERIES, .n_cols = 4};
  s->names[NAMES_SHAPES] = (tp__names){.sql = SQL_NAMES_SHAPES, .n_cols = 6};
  s->names[NAMES_SPOOLS] = (tp__names){.sql = SQL_NAMES_SPOOLS, .n_cols = 1};
  if (!s->writable)
    return TP_E_OK;
  tp_err rc = prepare_dict(s, &s->dicts[DICT_SERIES], "series", SERIES_COLUMNS,
                           N_OF(SERIES_COLUMNS), err, errlen);
  if (rc == TP_E_OK)
    rc = prepare_dict(s, &s->dicts[DICT_SHAPES], "shapes", SHAPES_COLUMNS, N_OF(SHAPES_COLUMNS),
                      err, errlen);
  if (rc == TP_E_OK)
    rc = prepare_dict(s, &s->dicts[DICT_CHAINS], "chains", CHAINS_COLUMNS, N_OF(CHAINS_COLUMNS),
                      err, errlen);
  return rc;
}

void tp__sqlite_dicts_finalize(sqlite_store *s) {
  for (int k = 0; k < N_DICTS; k++) {
    tp__dict *d = &s->dicts[k];
    sqlite3_finalize(d->find);
    sqlite3_finalize(d->insert);
    dict_clear(d);
    tp_buf_free(&d->arena);
    tp_buf_free(&d->scratch);
    tp_buf_free(&d->db_key);
  }
  tp__sqlite_names_free(s);
}
