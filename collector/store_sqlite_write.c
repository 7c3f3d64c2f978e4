/* store_sqlite_write.c - the SQLite backend's write path: group commit and
 * exactly-once.
 *
 * Group commit. tp_store_put_batches stores many batches in one BEGIN IMMEDIATE ...
 * COMMIT. A batch that fails by itself (say, a result that cannot be encoded) rolls
 * the transaction back and the group is stored again without it; a failure of the
 * transaction itself (a full disk, an I/O error, a failed COMMIT) fails every batch
 * of the group, and none of them is acknowledged. With synchronous=FULL the one COMMIT
 * is the one fsync of the WAL for the whole group: that, and not the rows, is what
 * bounded ingest to one batch per fsync before (docs/collector.md, "Storage").
 *
 * Exactly once. A result is identified by (agent_id, instance_id, result_seq). Each
 * spool's stored result_seq values are kept as sorted disjoint intervals, in the
 * table `seen` (spool, first_seq, last_seq) and in memory for the spools in use: an
 * agent numbers results 1, 2, 3... and delivers them mostly in order, so a spool is
 * one interval plus one per gap, and a re-sent result is recognised in memory, with
 * no index entry per row (version 5's unique index cost ~20 bytes and a B-tree insert
 * per result). The intervals a batch changed are written in its transaction, so
 * `seen` and result_rows commit or roll back together; after any rollback the
 * in-memory copies are dropped and reloaded from the file when next needed.
 *
 * What the writer needs of each result -- its values as integers and the content keys
 * of its series, facts and chain (store_sqlite_intern.c) -- is laid out by
 * tp_store_prepare, which may run on the decoding threads; put computes it itself
 * when given no prep. */
#include <stdlib.h>

#include "chain_json.h"
#include "json_out.h"
#include "outcome.h"
#include "store_sqlite_internal.h"
#include "tp_mem.h"

/* Beyond this many intervals in memory, all spools are dropped between two
 * transactions (and reloaded as they deliver again). */
#define SEEN_MAX_CACHED ((size_t)1 << 20)
#define SPOOLS_MAX_CACHED ((size_t)1 << 16)
/* Keys are built from at most max_body_bytes of input; escaping can grow it six-fold,
 * so this only stops a bug, never a legal batch. */
#define PREP_KEYS_CAP ((size_t)2 * 1024 * 1024 * 1024)
/* Rows per multi-row INSERT: 24 values each, within SQLite's default limit of 32766
 * parameters. */
#define ROWS_PER_INSERT 32

/* ---- prepared content keys ------------------------------------------------------------ */

typedef struct prep_key {
  uint64_t h;
  size_t off, len; /* len 0: none (a result without a chain) */
} prep_key;

enum { KEY_SERIES, KEY_SHAPE, KEY_CHAIN, N_KEYS };

/* What result_rows stores of one result, as integers (NULL: INT64_MIN), laid out for
 * the writer to read in one sequential sweep: the decoded results were built by a
 * worker on another core, and chasing their pointers was most of the writer's own
 * time (cache misses). */
#define NO_VALUE INT64_MIN
enum {
  V_SEQ,
  V_STARTED,
  V_DNS,
  V_CONNECT,
  V_HANDSHAKE,
  V_TOTAL,
  V_LAG,
  V_LATENESS,
  V_RESUMPTION,
  V_FLAGS,
  V_DAYS,
  V_CHAIN_LEN,
  V_OCSP_THIS,
  V_OCSP_NEXT,
  V_OCSP_AGE,
  V_HTTP_STATUS,
  V_HTTP_FIRST_BYTE,
  N_VALUES
};

typedef struct prep_row {
  int64_t v[N_VALUES];
  const char *detail; /* into the batch */
  const char *cls;    /* static outcome name */
  bool failed;        /* not ok: its detail goes to class_latest */
  prep_key k[N_KEYS];
} prep_row;

struct tp_store_prep {
  size_t n;
  prep_row *rows;
  tp_buf keys;
};

static tp_err series_key(tp_buf *k, const Tlsprobe__V1__ProbeResult *r) {
  tp_err rc = tp__key_text(k, r->target);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->profile);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->region);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->host);
  if (rc == TP_E_OK)
    rc = tp__key_int(k, r->port);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->sni);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->address);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->address_family);
  return rc;
}

/* ---- the table's keys (built on a cache miss only) ---- */

/* The offered lists are kept as JSON arrays of strings, as version 5 stored them. */
static tp_err list_json_key(tp_buf *k, char *const *items, size_t n) {
  tp_buf json;
  tp_buf_init(&json, PREP_KEYS_CAP);
  tp_err rc = tp_json_str_array(&json, items, n);
  if (rc == TP_E_OK)
    rc = tp__key_text_n(k, (const char *)json.data, json.len);
  tp_buf_free(&json);
  return rc;
}

static const char *class_name(const Tlsprobe__V1__ProbeResult *r) {
  const char *cls = tp_outcome_name((int)r->error_class);
  return cls ? cls : "other";
}

/* shapes' columns: error_class, tls_version, cipher, grp, alpn,
 * server_signature_algorithm, mode, groups_offered, key_shares_offered, fidelity_note,
 * emulation_divergence, ocsp_cert_status. */
static tp_err shape_texts(tp_buf *k, const Tlsprobe__V1__ProbeResult *r) {
  const char *texts[] = {class_name(r), r->tls_version, r->cipher,
                         r->group,      r->alpn,        r->server_signature_algorithm,
                         r->mode};
  tp_err rc = TP_E_OK;
  for (size_t i = 0; rc == TP_E_OK && i < sizeof(texts) / sizeof(texts[0]); i++)
    rc = tp__key_text(k, texts[i]);
  return rc;
}

static tp_err shape_tail(tp_buf *k, const Tlsprobe__V1__ProbeResult *r) {
  tp_err rc = tp__key_text(k, r->fidelity_note);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->emulation_divergence);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->ocsp != NULL ? r->ocsp->cert_status : NULL);
  return rc;
}

static tp_err shape_db_key(const void *arg, tp_buf *k) {
  const Tlsprobe__V1__ProbeResult *r = arg;
  tp_err rc = shape_texts(k, r);
  if (rc == TP_E_OK)
    rc = list_json_key(k, r->groups_offered, r->n_groups_offered);
  if (rc == TP_E_OK)
    rc = list_json_key(k, r->key_shares_offered, r->n_key_shares_offered);
  return rc == TP_E_OK ? shape_tail(k, r) : rc;
}

static tp_err chain_db_key(const void *arg, tp_buf *k) {
  const Tlsprobe__V1__ProbeResult *r = arg;
  tp_buf json;
  tp_buf_init(&json, PREP_KEYS_CAP);
  tp_err rc = tp_chain_json_encode(r->chain, r->n_chain, &json);
  if (rc == TP_E_OK)
    rc = tp__key_text_n(k, (const char *)json.data, json.len);
  tp_buf_free(&json);
  return rc;
}

/* ---- the cache's keys (built for every result, on the decoding threads) ---- */

static tp_err list_key(tp_buf *k, char *const *items, size_t n) {
  tp_err rc = tp__key_int(k, (int64_t)n);
  for (size_t i = 0; rc == TP_E_OK && i < n; i++)
    rc = tp__key_text(k, items[i] ? items[i] : "");
  return rc;
}

/* The same content as shape_db_key, with the lists as items rather than JSON. */
static tp_err shape_key(tp_buf *k, const Tlsprobe__V1__ProbeResult *r) {
  tp_err rc = shape_texts(k, r);
  if (rc == TP_E_OK)
    rc = list_key(k, r->groups_offered, r->n_groups_offered);
  if (rc == TP_E_OK)
    rc = list_key(k, r->key_shares_offered, r->n_key_shares_offered);
  return rc == TP_E_OK ? shape_tail(k, r) : rc;
}

/* Every field chain_json.c writes, tagged. */
static tp_err chain_key(tp_buf *k, const Tlsprobe__V1__ProbeResult *r) {
  tp_err rc = tp__key_int(k, (int64_t)r->n_chain);
  for (size_t i = 0; rc == TP_E_OK && i < r->n_chain; i++) {
    const Tlsprobe__V1__CertificateFacts *c = r->chain[i];
    rc = tp__key_text(k, c->subject);
    if (rc == TP_E_OK)
      rc = tp__key_text(k, c->issuer);
    if (rc == TP_E_OK)
      rc = list_key(k, c->san_dns, c->n_san_dns);
    if (rc == TP_E_OK)
      rc = tp__key_int(k, c->not_before_unix);
    if (rc == TP_E_OK)
      rc = tp__key_int(k, c->not_after_unix);
    if (rc == TP_E_OK)
      rc = tp__key_text(k, c->key_type);
    if (rc == TP_E_OK)
      rc = tp__key_int(k, c->key_bits);
    if (rc == TP_E_OK)
      rc = tp__key_text(k, c->signature_algorithm);
  }
  return rc;
}

/* One key: appended by fn, then hashed where it lies. */
static tp_err add_key(tp_store_prep *p, prep_key *out,
                      tp_err (*fn)(tp_buf *, const Tlsprobe__V1__ProbeResult *),
                      const Tlsprobe__V1__ProbeResult *r) {
  size_t off = p->keys.len;
  tp_err rc = fn(&p->keys, r);
  if (rc != TP_E_OK)
    return rc;
  *out = (prep_key){.off = off, .len = p->keys.len - off};
  out->h = tp__key_hash(p->keys.data + off, out->len);
  return TP_E_OK;
}

static int64_t flags_of(const Tlsprobe__V1__ProbeResult *r);

static void row_values(prep_row *row, const Tlsprobe__V1__ProbeResult *r) {
  int64_t *v = row->v;
  v[V_SEQ] = u64_bits(r->result_seq);
  v[V_STARTED] = r->started_unix_ns;
  v[V_DNS] = u64_bits(r->dns_ns);
  v[V_CONNECT] = u64_bits(r->connect_ns);
  v[V_HANDSHAKE] = u64_bits(r->handshake_ns);
  v[V_TOTAL] = u64_bits(r->total_ns);
  v[V_LAG] = u64_bits(r->loop_lag_ns);
  v[V_LATENESS] = u64_bits(r->schedule_lateness_ns);
  v[V_RESUMPTION] = u64_bits(r->resumption_handshake_ns);
  v[V_FLAGS] = flags_of(r);
  /* meaningless without a chain (tlsprobe.proto) */
  v[V_DAYS] = r->n_chain > 0 ? r->days_to_earliest_expiry : NO_VALUE;
  v[V_CHAIN_LEN] = r->chain_length_sent;
  v[V_OCSP_THIS] = r->ocsp != NULL ? r->ocsp->this_update_unix : NO_VALUE;
  v[V_OCSP_NEXT] = r->ocsp != NULL ? r->ocsp->next_update_unix : NO_VALUE;
  v[V_OCSP_AGE] = r->ocsp != NULL ? r->ocsp->age_seconds : NO_VALUE;
  v[V_HTTP_STATUS] = r->http != NULL ? r->http->status : NO_VALUE;
  v[V_HTTP_FIRST_BYTE] = r->http != NULL ? u64_bits(r->http->first_byte_ns) : NO_VALUE;
  row->detail = r->error_detail;
  row->cls = class_name(r);
  row->failed = r->error_class != TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK;
}

tp_err tp__sqlite_prepare_batch(const Tlsprobe__V1__ResultBatch *batch, tp_store_prep **out,
                                char *err, size_t errlen) {
  tp_store_prep *p = tp_xcalloc(1, sizeof(*p));
  tp_err rc = TP_E_OK;
  tp_buf_init(&p->keys, PREP_KEYS_CAP);
  p->n = batch->n_results;
  p->rows = tp_xcalloc(p->n ? p->n : 1, sizeof(*p->rows));
  for (size_t i = 0; rc == TP_E_OK && i < p->n; i++) {
    const Tlsprobe__V1__ProbeResult *r = batch->results[i];
    prep_row *row = &p->rows[i];
    row_values(row, r);
    rc = add_key(p, &row->k[KEY_SERIES], series_key, r);
    if (rc == TP_E_OK)
      rc = add_key(p, &row->k[KEY_SHAPE], shape_key, r);
    if (rc == TP_E_OK && r->n_chain > 0)
      rc = add_key(p, &row->k[KEY_CHAIN], chain_key, r);
  }
  if (rc != TP_E_OK) {
    snprintf(err, errlen, "result too large to encode");
    tp__sqlite_prep_free(p);
    return TP_E_STORE;
  }
  *out = p;
  return TP_E_OK;
}

void tp__sqlite_prep_free(tp_store_prep *p) {
  if (p == NULL)
    return;
  tp_buf_free(&p->keys);
  free(p->rows);
  free(p);
}

/* ---- spools and their seen sets ------------------------------------------------------- */

static uint64_t spool_hash(const char *agent_id, uint64_t instance_id) {
  return tp__key_hash(agent_id, strlen(agent_id)) ^ (instance_id * UINT64_C(0x9E3779B97F4A7C15));
}

static void spool_free(tp__spool *sp) {
  free(sp->agent_id);
  free(sp->iv);
  free(sp->touched);
  free(sp);
}

static void spools_forget(sqlite_store *s) {
  for (size_t i = 0; i < s->spools_cap; i++)
    if (s->spools[i] != NULL)
      spool_free(s->spools[i]);
  free(s->spools);
  s->spools = NULL;
  s->spools_cap = s->spools_used = s->seen_cached = 0;
}

/* Everything the writer remembers beyond the file, after a rollback. */
static void forget_all(sqlite_store *s) {
  spools_forget(s);
  tp__sqlite_dicts_forget(s);
}

static void spools_insert(sqlite_store *s, tp__spool *sp) {
  if ((s->spools_used + 1) * 2 > s->spools_cap) {
    size_t cap = s->spools_cap ? s->spools_cap * 2 : 64;
    tp__spool **fresh = tp_xcalloc(cap, sizeof(*fresh));
    for (size_t i = 0; i < s->spools_cap; i++) {
      tp__spool *o = s->spools[i];
      if (o == NULL)
        continue;
      size_t j = spool_hash(o->agent_id, o->instance_id) & (cap - 1);
      while (fresh[j] != NULL)
        j = (j + 1) & (cap - 1);
      fresh[j] = o;
    }
    free(s->spools);
    s->spools = fresh;
    s->spools_cap = cap;
  }
  size_t j = spool_hash(sp->agent_id, sp->instance_id) & (s->spools_cap - 1);
  while (s->spools[j] != NULL)
    j = (j + 1) & (s->spools_cap - 1);
  s->spools[j] = sp;
  s->spools_used++;
}

static tp__spool *spools_find(sqlite_store *s, const char *agent_id, uint64_t instance_id) {
  if (s->spools_cap == 0)
    return NULL;
  size_t mask = s->spools_cap - 1;
  for (size_t j = spool_hash(agent_id, instance_id) & mask; s->spools[j] != NULL;
       j = (j + 1) & mask) {
    tp__spool *sp = s->spools[j];
    if (sp->instance_id == instance_id && strcmp(sp->agent_id, agent_id) == 0)
      return sp;
  }
  return NULL;
}

static void iv_insert_at(tp__spool *sp, size_t pos, int64_t first, int64_t last) {
  if (sp->n == sp->alloc) {
    sp->alloc = sp->alloc ? sp->alloc * 2 : 4;
    sp->iv = tp_xrealloc(sp->iv, sp->alloc * sizeof(sp->iv[0]));
  }
  memmove(sp->iv + pos + 1, sp->iv + pos, (sp->n - pos) * sizeof(sp->iv[0]));
  sp->iv[pos] = (tp__seen_iv){.first = first, .last = last};
  sp->n++;
}

static void iv_remove_at(tp__spool *sp, size_t pos) {
  memmove(sp->iv + pos, sp->iv + pos + 1, (sp->n - pos - 1) * sizeof(sp->iv[0]));
  sp->n--;
}

static void touch(tp__spool *sp, int64_t first) {
  if (sp->n_touched > 0 && sp->touched[sp->n_touched - 1] == first)
    return; /* the common case: the last interval grows result by result */
  if (sp->n_touched == sp->alloc_touched) {
    sp->alloc_touched = sp->alloc_touched ? sp->alloc_touched * 2 : 8;
    sp->touched = tp_xrealloc(sp->touched, sp->alloc_touched * sizeof(sp->touched[0]));
  }
  sp->touched[sp->n_touched++] = first;
}

/* Index of the first interval that starts after seq. */
static size_t iv_after(const tp__spool *sp, int64_t seq) {
  size_t lo = 0, hi = sp->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (sp->iv[mid].first <= seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Adds seq to the spool's set; false when it was there already (a re-send). Keeps the
 * intervals disjoint and non-adjacent, and notes which keys (first_seq) changed. */
static bool seen_add(sqlite_store *s, tp__spool *sp, int64_t seq) {
  size_t n = sp->n;
  /* seq >= 1 and first >= 1, so seq - 1 and first - 1 cannot overflow where last + 1
   * could */
  if (n > 0 && sp->iv[n - 1].last == seq - 1) {
    sp->iv[n - 1].last = seq; /* the common case: the next number */
    touch(sp, sp->iv[n - 1].first);
    return true;
  }
  size_t pos = n == 0 || seq > sp->iv[n - 1].last ? n : iv_after(sp, seq);
  if (pos > 0 && seq <= sp->iv[pos - 1].last)
    return false;
  bool left = pos > 0 && sp->iv[pos - 1].last == seq - 1;
  bool right = pos < sp->n && sp->iv[pos].first - 1 == seq;
  if (left && right) {
    sp->iv[pos - 1].last = sp->iv[pos].last;
    touch(sp, sp->iv[pos - 1].first);
    touch(sp, sp->iv[pos].first);
    iv_remove_at(sp, pos);
    s->seen_cached--;
  } else if (left) {
    sp->iv[pos - 1].last = seq;
    touch(sp, sp->iv[pos - 1].first);
  } else if (right) {
    touch(sp, sp->iv[pos].first);
    sp->iv[pos].first = seq;
    touch(sp, seq);
  } else {
    iv_insert_at(sp, pos, seq, seq);
    touch(sp, seq);
    s->seen_cached++;
  }
  return true;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Writes the intervals whose keys changed: the current ones upserted, the merged-away
 * ones deleted. Inside the batch's transaction. */
static tp_err seen_flush(sqlite_store *s, tp__spool *sp, char *err, size_t errlen) {
  if (sp->n_touched == 0)
    return TP_E_OK; /* nothing new (a re-send, or drop reports alone) */
  qsort(sp->touched, sp->n_touched, sizeof(sp->touched[0]), cmp_i64);
  tp_err rc = TP_E_OK;
  for (size_t i = 0; rc == TP_E_OK && i < sp->n_touched; i++) {
    int64_t key = sp->touched[i];
    if (i > 0 && sp->touched[i - 1] == key)
      continue;
    size_t pos = iv_after(sp, key);
    bool exists = pos > 0 && sp->iv[pos - 1].first == key;
    binder b = {.stmt = exists ? s->seen_upsert : s->seen_delete, .idx = 0, .rc = SQLITE_OK};
    bind_i64(&b, sp->id);
    bind_i64(&b, key);
    if (exists)
      bind_i64(&b, sp->iv[pos - 1].last);
    if (b.rc != SQLITE_OK || run(b.stmt) != SQLITE_OK)
      rc = fail(s, err, errlen, "cannot record the results seen");
  }
  sp->n_touched = 0;
  return rc;
}

/* The spool's id in spool_keys (created on its first batch). */
static tp_err spool_id(sqlite_store *s, const char *agent_id, uint64_t instance_id, int64_t *id,
                       bool *created, char *err, size_t errlen) {
  binder b = {.stmt = s->spool_find, .idx = 0, .rc = SQLITE_OK};
  bind_text(&b, agent_id);
  bind_i64(&b, u64_bits(instance_id));
  *created = false;
  int step = b.rc == SQLITE_OK ? sqlite3_step(s->spool_find) : b.rc;
  if (step == SQLITE_ROW)
    *id = sqlite3_column_int64(s->spool_find, 0);
  (void)sqlite3_reset(s->spool_find);
  (void)sqlite3_clear_bindings(s->spool_find);
  if (step == SQLITE_ROW)
    return TP_E_OK;
  if (step != SQLITE_DONE)
    return fail(s, err, errlen, "cannot look up a spool");
  b = (binder){.stmt = s->spool_insert, .idx = 0, .rc = SQLITE_OK};
  bind_text(&b, agent_id);
  bind_i64(&b, u64_bits(instance_id));
  int rc = b.rc == SQLITE_OK ? run(s->spool_insert) : b.rc;
  (void)sqlite3_clear_bindings(s->spool_insert);
  if (rc != SQLITE_OK)
    return fail(s, err, errlen, "cannot record a spool");
  *id = sqlite3_last_insert_rowid(s->db);
  *created = true;
  return TP_E_OK;
}

/* Loads the spool's intervals; overlapping or adjacent ones (a hand-made row through
 * the `results` view can leave some) are merged in memory. */
static tp_err seen_load(sqlite_store *s, tp__spool *sp, char *err, size_t errlen) {
  tp_err rc = TP_E_OK;
  int step;
  if (sqlite3_bind_int64(s->seen_load, 1, sp->id) != SQLITE_OK)
    return fail(s, err, errlen, "cannot bind the seen load");
  while ((step = sqlite3_step(s->seen_load)) == SQLITE_ROW) {
    int64_t first = sqlite3_column_int64(s->seen_load, 0);
    int64_t last = sqlite3_column_int64(s->seen_load, 1);
    if (last < first || first < 1)
      continue; /* not ours: result_seq starts at 1 */
    if (sp->n > 0 && first - 1 <= sp->iv[sp->n - 1].last) {
      if (last > sp->iv[sp->n - 1].last)
        sp->iv[sp->n - 1].last = last;
      continue;
    }
    iv_insert_at(sp, sp->n, first, last);
  }
  if (step != SQLITE_DONE)
    rc = fail(s, err, errlen, "cannot load the results seen");
  (void)sqlite3_reset(s->seen_load);
  s->seen_cached += sp->n;
  return rc;
}

static tp_err spool_get(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch, tp__spool **out,
                        char *err, size_t errlen) {
  *out = spools_find(s, batch->agent_id, batch->instance_id);
  if (*out != NULL)
    return TP_E_OK;
  tp__spool *sp = tp_xcalloc(1, sizeof(*sp));
  sp->agent_id = tp_xstrdup(batch->agent_id);
  sp->instance_id = batch->instance_id;
  bool created = false;
  tp_err rc = spool_id(s, batch->agent_id, batch->instance_id, &sp->id, &created, err, errlen);
  if (rc == TP_E_OK && !created)
    rc = seen_load(s, sp, err, errlen);
  if (rc != TP_E_OK) {
    spool_free(sp);
    return rc;
  }
  spools_insert(s, sp);
  *out = sp;
  return TP_E_OK;
}

static void bind_value(binder *b, int64_t v) {
  if (v == NO_VALUE)
    bind_null(b);
  else
    bind_i64(b, v);
}

/* ---- the newest row per series ---------------------------------------------------- */

static bool newer(const tp__latest *a, const tp__latest *b) {
  return a->started > b->started || (a->started == b->started && a->id > b->id);
}

static bool chain_newer(const tp__latest *a, const tp__latest *b) {
  return a->chain != 0 &&
         (b->chain == 0 || a->chain_started > b->chain_started ||
          (a->chain_started == b->chain_started && a->chain_row > b->chain_row));
}

/* Folds e into slot, the same rule as SQL_SERIES_LATEST_MERGE. */
static void latest_merge(tp__latest *slot, const tp__latest *e) {
  if (newer(e, slot)) {
    slot->started = e->started;
    slot->id = e->id;
  }
  if (chain_newer(e, slot)) {
    slot->chain = e->chain;
    slot->chain_started = e->chain_started;
    slot->chain_row = e->chain_row;
  }
}

static void batch_latest_add(sqlite_store *s, int64_t series, int64_t started, int64_t id,
                             int64_t chain) {
  if (s->n_batch_latest == s->alloc_batch_latest) {
    s->alloc_batch_latest = s->alloc_batch_latest ? s->alloc_batch_latest * 2 : 512;
    s->batch_latest =
        tp_xrealloc(s->batch_latest, s->alloc_batch_latest * sizeof(s->batch_latest[0]));
  }
  s->batch_latest[s->n_batch_latest++] = (tp__latest){.series = series,
                                                      .started = started,
                                                      .id = id,
                                                      .chain = chain,
                                                      .chain_started = chain ? started : 0,
                                                      .chain_row = chain ? id : 0};
}

static void group_latest_put(sqlite_store *s, const tp__latest *e) {
  if ((s->n_group_latest + 1) * 2 > s->cap_group_latest) {
    size_t cap = s->cap_group_latest ? s->cap_group_latest * 2 : 1024;
    tp__latest *fresh = tp_xcalloc(cap, sizeof(*fresh));
    for (size_t i = 0; i < s->cap_group_latest; i++) {
      tp__latest *o = &s->group_latest[i];
      if (o->series == 0)
        continue;
      size_t j = (size_t)o->series & (cap - 1);
      while (fresh[j].series != 0)
        j = (j + 1) & (cap - 1);
      fresh[j] = *o;
    }
    free(s->group_latest);
    s->group_latest = fresh;
    s->cap_group_latest = cap;
  }
  size_t mask = s->cap_group_latest - 1;
  size_t j = (size_t)e->series & mask;
  while (s->group_latest[j].series != 0 && s->group_latest[j].series != e->series)
    j = (j + 1) & mask;
  tp__latest *slot = &s->group_latest[j];
  if (slot->series == 0) {
    *slot = *e;
    s->n_group_latest++;
  } else {
    latest_merge(slot, e);
  }
}

static void failure_push(tp__failure **v, size_t *n, size_t *alloc, const tp__failure *f) {
  if (*n == *alloc) {
    *alloc = *alloc ? *alloc * 2 : 64;
    *v = tp_xrealloc(*v, *alloc * sizeof(**v));
  }
  (*v)[(*n)++] = *f;
}

static void batch_failure_add(sqlite_store *s, int64_t series, int64_t started, int64_t id,
                              const prep_row *row) {
  tp__failure f = {.series = series,
                   .started = started,
                   .id = id,
                   .cls = row->cls,
                   .detail = tp_xstrdup(row->detail ? row->detail : "")};
  failure_push(&s->batch_fail, &s->n_batch_fail, &s->alloc_batch_fail, &f);
}

static void failures_free(tp__failure *v, size_t *n) {
  for (size_t i = 0; i < *n; i++)
    free(v[i].detail);
  *n = 0;
}

/* A stored batch's rows join the group's; a rolled-back batch's are dropped. */
static void batch_latest_keep(sqlite_store *s, bool keep) {
  for (size_t i = 0; keep && i < s->n_batch_latest; i++)
    group_latest_put(s, &s->batch_latest[i]);
  s->n_batch_latest = 0;
  for (size_t i = 0; keep && i < s->n_batch_fail; i++)
    failure_push(&s->group_fail, &s->n_group_fail, &s->alloc_group_fail, &s->batch_fail[i]);
  if (keep)
    s->n_batch_fail = 0; /* the details moved to the group */
  else
    failures_free(s->batch_fail, &s->n_batch_fail);
}

static void group_latest_clear(sqlite_store *s) {
  if (s->n_group_latest > 0)
    memset(s->group_latest, 0, s->cap_group_latest * sizeof(s->group_latest[0]));
  s->n_group_latest = 0;
  s->n_batch_latest = 0;
  failures_free(s->group_fail, &s->n_group_fail);
  failures_free(s->batch_fail, &s->n_batch_fail);
}

/* (series, class), then newest last. */
static int cmp_failure(const void *pa, const void *pb) {
  const tp__failure *a = pa, *b = pb;
  if (a->series != b->series)
    return a->series < b->series ? -1 : 1;
  int c = strcmp(a->cls, b->cls);
  if (c != 0)
    return c;
  if (a->started != b->started)
    return a->started < b->started ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

/* One upsert per (series, class) the group's failures touched: its newest. */
static tp_err group_failures_write(sqlite_store *s, char *err, size_t errlen) {
  tp__failure *v = s->group_fail;
  size_t n = s->n_group_fail;
  if (n > 1)
    qsort(v, n, sizeof(v[0]), cmp_failure);
  for (size_t i = 0; i < n; i++) {
    if (i + 1 < n && v[i + 1].series == v[i].series && strcmp(v[i + 1].cls, v[i].cls) == 0)
      continue; /* not the newest of its key */
    binder b = {.stmt = s->class_upsert, .idx = 0, .rc = SQLITE_OK};
    bind_i64(&b, v[i].series);
    bind_text(&b, v[i].cls);
    bind_i64(&b, v[i].started);
    bind_i64(&b, v[i].id);
    bind_text(&b, v[i].detail);
    if (b.rc != SQLITE_OK || run(s->class_upsert) != SQLITE_OK)
      return fail(s, err, errlen, "cannot record the series' latest failure details");
  }
  return TP_E_OK;
}

/* One upsert per series the group touched (not per row), keeping the newer. */
static tp_err group_latest_write(sqlite_store *s, char *err, size_t errlen) {
  tp_err rc = TP_E_OK;
  for (size_t i = 0; rc == TP_E_OK && i < s->cap_group_latest && s->n_group_latest > 0; i++) {
    const tp__latest *e = &s->group_latest[i];
    if (e->series == 0)
      continue;
    binder b = {.stmt = s->latest_upsert, .idx = 0, .rc = SQLITE_OK};
    bind_i64(&b, e->series);
    bind_i64(&b, e->started);
    bind_i64(&b, e->id);
    bind_value(&b, e->chain != 0 ? e->chain : NO_VALUE);
    bind_value(&b, e->chain != 0 ? e->chain_started : NO_VALUE);
    bind_value(&b, e->chain != 0 ? e->chain_row : NO_VALUE);
    if (b.rc != SQLITE_OK || run(s->latest_upsert) != SQLITE_OK)
      rc = fail(s, err, errlen, "cannot record the series' newest results");
  }
  if (rc == TP_E_OK)
    rc = group_failures_write(s, err, errlen);
  return rc;
}

/* ---- rows ----------------------------------------------------------------------------- */

static int64_t flags_of(const Tlsprobe__V1__ProbeResult *r) {
  int64_t f = 0;
  f |= r->ok ? FLAG_OK : 0;
  f |= r->resumed ? FLAG_RESUMED : 0;
  f |= r->hello_retry_request ? FLAG_HRR : 0;
  f |= r->ticket_received ? FLAG_TICKET : 0;
  f |= r->early_data_attempted ? FLAG_ED_ATTEMPTED : 0;
  f |= r->early_data_accepted ? FLAG_ED_ACCEPTED : 0;
  f |= r->ocsp != NULL ? FLAG_STAPLED : 0;
  f |= r->chain_complete ? FLAG_CHAIN_COMPLETE : 0;
  f |= r->http != NULL && r->http->hsts ? FLAG_HSTS : 0;
  f |= r->emulation_checked ? FLAG_EMU_CHECKED : 0;
  f |= r->early_data_policy_violation ? FLAG_ED_VIOLATION : 0;
  f |= r->saturated ? FLAG_SATURATED : 0;
  return f;
}

typedef struct row_refs {
  int64_t spool, series, shape, chain; /* chain 0: none */
} row_refs;

/* Binds one row's 24 values from parameter b->idx + 1 on. */
static void bind_row(binder *b, const Tlsprobe__V1__ResultBatch *batch, const prep_row *row,
                     const row_refs *ref, int64_t received_unix_ns) {
  const int64_t *v = row->v;
  bind_i64(b, ref->spool);
  bind_i64(b, v[V_SEQ]);
  bind_i64(b, ref->series);
  bind_i64(b, ref->shape);
  bind_value(b, ref->chain != 0 ? ref->chain : NO_VALUE);
  bind_i64(b, v[V_STARTED]);
  /* received - started: a few seconds take 4-5 bytes where the time takes 8 */
  bind_i64(b, received_unix_ns - v[V_STARTED]);
  bind_i64(b, u64_bits(batch->batch_seq));
  for (int i = V_DNS; i <= V_FLAGS; i++)
    bind_i64(b, v[i]);
  bind_text(b, row->detail);
  for (int i = V_DAYS; i < N_VALUES; i++)
    bind_value(b, v[i]);
}

/* Rows waiting to be inserted, ROWS_PER_INSERT at a time by one multi-row INSERT (its
 * per-statement cost shared), then the rest one by one. */
typedef struct pending_rows {
  const prep_row *row[ROWS_PER_INSERT];
  row_refs ref[ROWS_PER_INSERT];
  size_t n;
} pending_rows;

/* Inserts the pending rows; their ids are consecutive (a new row gets max(id) + 1, and
 * this connection holds the write lock), so each row's id, for series_latest, is
 * known from the last. */
static tp_err flush_rows(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch, pending_rows *pr,
                         int64_t received_unix_ns, char *err, size_t errlen) {
  size_t done = 0;
  while (done < pr->n) {
    size_t k = pr->n - done >= ROWS_PER_INSERT ? ROWS_PER_INSERT : 1;
    sqlite3_stmt *st = k == ROWS_PER_INSERT ? s->insert_rows : s->insert_row;
    binder b = {.stmt = st, .idx = 0, .rc = SQLITE_OK};
    for (size_t j = 0; j < k; j++)
      bind_row(&b, batch, pr->row[done + j], &pr->ref[done + j], received_unix_ns);
    if (b.rc != SQLITE_OK || run(st) != SQLITE_OK)
      return fail(s, err, errlen, "cannot insert result");
    int64_t last = sqlite3_last_insert_rowid(s->db);
    for (size_t j = 0; j < k; j++) {
      const prep_row *row = pr->row[done + j];
      int64_t id = last - (int64_t)(k - 1 - j);
      batch_latest_add(s, pr->ref[done + j].series, row->v[V_STARTED], id,
                       pr->ref[done + j].chain);
      if (row->failed)
        batch_failure_add(s, pr->ref[done + j].series, row->v[V_STARTED], id, row);
    }
    done += k;
  }
  pr->n = 0;
  return TP_E_OK;
}

static tp_err intern_key(sqlite_store *s, tp__dict_kind kind, const tp_store_prep *p,
                         const prep_key *k, tp__db_key_fn db_key,
                         const Tlsprobe__V1__ProbeResult *r, int64_t *id, char *err,
                         size_t errlen) {
  return tp__sqlite_intern(s, kind, p->keys.data + k->off, k->len, k->h, db_key, r, id, err,
                           errlen);
}

static tp_err refs_of(sqlite_store *s, const tp_store_prep *p, const prep_row *row,
                      const Tlsprobe__V1__ProbeResult *r, row_refs *ref, char *err, size_t errlen) {
  const prep_key *k = row->k;
  tp_err rc = intern_key(s, DICT_SERIES, p, &k[KEY_SERIES], NULL, r, &ref->series, err, errlen);
  if (rc == TP_E_OK)
    rc = intern_key(s, DICT_SHAPES, p, &k[KEY_SHAPE], shape_db_key, r, &ref->shape, err, errlen);
  ref->chain = 0;
  if (rc == TP_E_OK && k[KEY_CHAIN].len > 0)
    rc = intern_key(s, DICT_CHAINS, p, &k[KEY_CHAIN], chain_db_key, r, &ref->chain, err, errlen);
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

/* Inserts every result of the batch its spool has not stored before, then the seen
 * intervals that changed. */
static tp_err insert_results(sqlite_store *s, tp_store_put *put, const tp_store_prep *p,
                             uint64_t *max_seq, int64_t *last_started) {
  const Tlsprobe__V1__ResultBatch *batch = put->batch;
  tp__spool *sp = NULL;
  pending_rows pr = {.n = 0};
  tp_err rc = spool_get(s, batch, &sp, put->err, sizeof(put->err));
  for (size_t i = 0; rc == TP_E_OK && i < p->n; i++) {
    const prep_row *row = &p->rows[i];
    int64_t seq = row->v[V_SEQ], started = row->v[V_STARTED];
    /* result_seq is 1..INT64_MAX (validated) */
    if (!seen_add(s, sp, seq))
      continue; /* stored before: a re-send */
    row_refs *ref = &pr.ref[pr.n];
    *ref = (row_refs){.spool = sp->id};
    /* the decoded result itself only on a dictionary miss */
    rc = refs_of(s, p, row, batch->results[i], ref, put->err, sizeof(put->err));
    if (rc != TP_E_OK)
      break;
    pr.row[pr.n++] = row;
    if (pr.n == ROWS_PER_INSERT)
      rc = flush_rows(s, batch, &pr, put->received_unix_ns, put->err, sizeof(put->err));
    put->out.results_stored++;
    if (put->marks != NULL)
      put->marks->results[i] = true;
    if ((uint64_t)seq > *max_seq)
      *max_seq = (uint64_t)seq;
    if (started > *last_started)
      *last_started = started;
  }
  if (rc == TP_E_OK)
    rc = flush_rows(s, batch, &pr, put->received_unix_ns, put->err, sizeof(put->err));
  /* The bindings point into the batch; drop them so no statement outlives its data. */
  (void)sqlite3_clear_bindings(s->insert_row);
  (void)sqlite3_clear_bindings(s->insert_rows);
  if (rc == TP_E_OK)
    rc = seen_flush(s, sp, put->err, sizeof(put->err));
  return rc;
}

/* One batch, inside the group's transaction. */
static tp_err put_one(sqlite_store *s, tp_store_put *put) {
  const Tlsprobe__V1__ResultBatch *batch = put->batch;
  tp_store_prep *local = NULL;
  const tp_store_prep *p = put->prep;
  uint64_t max_seq = 0;
  int64_t last_started = 0;
  put->out = (tp_store_put_outcome){0};
  tp_err rc = TP_E_OK;
  if (p == NULL || p->n != batch->n_results) {
    rc = tp__sqlite_prepare_batch(batch, &local, put->err, sizeof(put->err));
    p = local;
  }
  if (rc == TP_E_OK)
    rc = insert_batch_row(s, batch, put->received_unix_ns, put->err, sizeof(put->err));
  if (rc == TP_E_OK)
    rc = insert_results(s, put, p, &max_seq, &last_started);
  if (rc == TP_E_OK)
    rc = tp__sqlite_put_delivery(s, batch, put->received_unix_ns, &put->out, max_seq, last_started,
                                 put->marks != NULL ? put->marks->drops : NULL,
                                 &put->out.drops_stored, put->err, sizeof(put->err));
  tp__sqlite_prep_free(local);
  return rc;
}

/* The whole group failed: nothing of it is in the file. */
static tp_err fail_group(sqlite_store *s, tp_store_put *puts, size_t n, bool in_txn,
                         const char *err) {
  if (in_txn && !sqlite3_get_autocommit(s->db))
    (void)run(s->rollback); /* if ROLLBACK fails SQLite has already rolled back */
  forget_all(s);
  group_latest_clear(s);
  for (size_t i = 0; i < n; i++) {
    puts[i].rc = TP_E_STORE;
    puts[i].out = (tp_store_put_outcome){0};
    if (puts[i].err[0] == '\0')
      snprintf(puts[i].err, sizeof(puts[i].err), "%s", err);
  }
  return TP_E_STORE;
}

/* Whether the failure that ended a batch is the transaction's (the file, the disk,
 * memory, a lock: every batch would meet it) rather than the batch's own (a value
 * SQLite refuses, a result too large to encode). */
static bool group_level_failure(sqlite_store *s) {
  if (sqlite3_get_autocommit(s->db))
    return true; /* SQLite rolled back by itself (SQLITE_FULL, SQLITE_IOERR...) */
  switch (sqlite3_errcode(s->db)) {
  case SQLITE_FULL:
  case SQLITE_IOERR:
  case SQLITE_NOMEM:
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_CORRUPT:
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
  case SQLITE_NOTADB:
  case SQLITE_PROTOCOL:
  case SQLITE_INTERRUPT:
    return true;
  default:
    return false;
  }
}

/* A batch that failed left its results' marks set, and its earlier companions too:
 * before the group is tried again, every mark is cleared. */
static void clear_marks(tp_store_put *put) {
  if (put->marks == NULL)
    return;
  memset(put->marks->results, 0, put->batch->n_results * sizeof(bool));
  memset(put->marks->drops, 0, put->batch->n_drops * sizeof(bool));
}

/* One try at the group without the puts already failed. TP_E_OK: committed. TP_E_FULL
 * (internal): a batch failed by itself -- it is marked, the transaction rolled back,
 * and the caller tries again without it. TP_E_STORE: the group failed as a whole. */
static tp_err try_group(sqlite_store *s, tp_store_put *puts, size_t n, bool *failed, char *err,
                        size_t errlen) {
  if (run(s->begin) != SQLITE_OK) {
    fail(s, err, errlen, "cannot begin transaction");
    return TP_E_STORE;
  }
  for (size_t i = 0; i < n; i++) {
    tp_store_put *put = &puts[i];
    if (failed[i])
      continue;
    put->err[0] = '\0';
    put->rc = put_one(s, put);
    batch_latest_keep(s, put->rc == TP_E_OK);
    if (put->rc == TP_E_OK)
      continue;
    snprintf(err, errlen, "%s", put->err);
    if (n == 1 || group_level_failure(s))
      return TP_E_STORE;
    failed[i] = true;
    if (!sqlite3_get_autocommit(s->db))
      (void)run(s->rollback);
    forget_all(s);
    group_latest_clear(s);
    return TP_E_FULL;
  }
  if (group_latest_write(s, err, errlen) != TP_E_OK)
    return TP_E_STORE;
  group_latest_clear(s);
  /* synchronous=FULL: when COMMIT returns, the group is on disk and may be acked. */
  if (run(s->commit) != SQLITE_OK) {
    fail(s, err, errlen, "cannot commit batch");
    return TP_E_STORE;
  }
  return TP_E_OK;
}

/* No savepoint per batch: SQLite copies every page a savepoint touches to a
 * sub-journal first (a temporary file: ten times the bytes the rows take, on disk).
 * A batch that fails by itself -- rare, and never an agent's retry of a good one --
 * instead rolls the group back, and the group is stored again without it. */
tp_err tp__sqlite_put_batches(tp_store *store, tp_store_put *puts, size_t n, char *err,
                              size_t errlen) {
  sqlite_store *s = from_base(store);
  if (s->seen_cached > SEEN_MAX_CACHED || s->spools_used > SPOOLS_MAX_CACHED)
    spools_forget(s);
  bool *failed = tp_xcalloc(n, sizeof(bool));
  tp_err rc;
  while ((rc = try_group(s, puts, n, failed, err, errlen)) == TP_E_FULL)
    for (size_t i = 0; i < n; i++) {
      if (!failed[i]) {
        puts[i].rc = TP_E_STORE;
        puts[i].out = (tp_store_put_outcome){0};
        clear_marks(&puts[i]);
      }
    }
  if (rc != TP_E_OK) {
    free(failed);
    return fail_group(s, puts, n, true, err);
  }
  for (size_t i = 0; i < n; i++) {
    if (failed[i]) {
      puts[i].rc = TP_E_STORE;
      puts[i].out = (tp_store_put_outcome){0};
    } else {
      puts[i].out.duplicate = puts[i].out.results_stored == 0 && puts[i].out.drops_stored == 0;
    }
  }
  free(failed);
  return TP_E_OK;
}

/* ---- statements ----------------------------------------------------------------------- */

/* ON CONFLICT ... DO NOTHING names the identity constraint, so a re-sent batch is
 * skipped while any other constraint still fails loudly (OR IGNORE would hide a NOT
 * NULL violation too). */
static const char SQL_INSERT_BATCH[] =
    "INSERT INTO batches (agent_id, instance_id, batch_seq, received_unix_ns, result_count)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (agent_id, instance_id, batch_seq) DO NOTHING";
#define SQL_INSERT_ROWS_HEAD                                                                       \
  "INSERT INTO result_rows (spool, result_seq, series, shape, chain, started_unix_ns,"             \
  " received_delay_ns, batch_seq, dns_ns, connect_ns, handshake_ns, total_ns, loop_lag_ns,"        \
  " schedule_lateness_ns, resumption_handshake_ns, flags, error_detail,"                           \
  " days_to_earliest_expiry, chain_length_sent, ocsp_this_update_unix, ocsp_next_update_unix,"     \
  " ocsp_age_seconds, http_status, http_first_byte_ns) VALUES "
#define SQL_ROW_VALUES "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
static const char SQL_INSERT_ROW[] = SQL_INSERT_ROWS_HEAD SQL_ROW_VALUES;
static const char SQL_SPOOL_FIND[] =
    "SELECT id FROM spool_keys WHERE agent_id = ?1 AND instance_id = ?2";
static const char SQL_SPOOL_INSERT[] =
    "INSERT INTO spool_keys (agent_id, instance_id) VALUES (?1, ?2)";
static const char SQL_SEEN_LOAD[] =
    "SELECT first_seq, last_seq FROM seen WHERE spool = ?1 ORDER BY first_seq";
static const char SQL_SEEN_UPSERT[] =
    "INSERT INTO seen (spool, first_seq, last_seq) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (spool, first_seq) DO UPDATE SET last_seq = excluded.last_seq";
static const char SQL_SEEN_DELETE[] = "DELETE FROM seen WHERE spool = ?1 AND first_seq = ?2";
static const char SQL_CLASS_UPSERT[] =
    "INSERT INTO class_latest (series, error_class, started_unix_ns, row_id, detail)"
    " VALUES (?1, ?2, ?3, ?4, ?5)" SQL_CLASS_LATEST_MERGE;
static const char SQL_LATEST_UPSERT[] =
    "INSERT INTO series_latest (series, started_unix_ns, id, chain, chain_unix_ns, chain_row)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)" SQL_SERIES_LATEST_MERGE;

tp_err tp__sqlite_prepare_write(sqlite_store *s, char *err, size_t errlen) {
  struct {
    const char *sql;
    sqlite3_stmt **stmt;
  } all[] = {
      {"BEGIN IMMEDIATE", &s->begin},
      {"COMMIT", &s->commit},
      {"ROLLBACK", &s->rollback},
      {SQL_INSERT_BATCH, &s->insert_batch},
      {SQL_INSERT_ROW, &s->insert_row},
      {SQL_SPOOL_FIND, &s->spool_find},
      {SQL_SPOOL_INSERT, &s->spool_insert},
      {SQL_SEEN_LOAD, &s->seen_load},
      {SQL_SEEN_UPSERT, &s->seen_upsert},
      {SQL_SEEN_DELETE, &s->seen_delete},
      {SQL_LATEST_UPSERT, &s->latest_upsert},
      {SQL_CLASS_UPSERT, &s->class_upsert},
  };
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    if (sqlite3_prepare_v3(s->db, all[i].sql, -1, SQLITE_PREPARE_PERSISTENT, all[i].stmt, NULL) !=
        SQLITE_OK)
      return fail(s, err, errlen, "cannot prepare statement");
  tp_buf sql;
  tp_buf_init(&sql, 64 * 1024);
  tp_err rc = tp_buf_append(&sql, SQL_INSERT_ROWS_HEAD, strlen(SQL_INSERT_ROWS_HEAD));
  for (int i = 0; rc == TP_E_OK && i < ROWS_PER_INSERT; i++) {
    if (i > 0)
      rc = tp_buf_append(&sql, ", ", 2);
    if (rc == TP_E_OK)
      rc = tp_buf_append(&sql, SQL_ROW_VALUES, strlen(SQL_ROW_VALUES));
  }
  if (rc == TP_E_OK &&
      sqlite3_prepare_v3(s->db, (const char *)sql.data, -1, SQLITE_PREPARE_PERSISTENT,
                         &s->insert_rows, NULL) != SQLITE_OK)
    rc = fail(s, err, errlen, "cannot prepare statement");
  tp_buf_free(&sql);
  return rc;
}

void tp__sqlite_finalize_write(sqlite_store *s) {
  sqlite3_stmt *stmts[] = {s->begin,       s->commit,      s->rollback,      s->insert_batch,
                           s->insert_row,  s->spool_find,  s->spool_insert,  s->seen_load,
                           s->seen_upsert, s->seen_delete, s->latest_upsert, s->insert_rows,
                           s->class_upsert};
  for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
    sqlite3_finalize(stmts[i]);
  spools_forget(s);
  free(s->batch_latest);
  free(s->group_latest);
  failures_free(s->batch_fail, &s->n_batch_fail);
  failures_free(s->group_fail, &s->n_group_fail);
  free(s->batch_fail);
  free(s->group_fail);
}
