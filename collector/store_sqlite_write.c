/* store_sqlite_write.c - the SQLite backend's write path: group commit and
 * exactly-once.
 *
 * Group commit. tp_store_put_batches stores many batches in one BEGIN IMMEDIATE ...
 * COMMIT, each inside its own SAVEPOINT: a batch that fails alone (say, a result that
 * cannot be encoded) is rolled back to its savepoint and the others go on; a failure
 * that ends the transaction (SQLite rolls back by itself on a full disk or an I/O
 * error; a failed COMMIT) fails every batch of the group, and none of them is
 * acknowledged. With synchronous=FULL the one COMMIT is the one fsync of the WAL for
 * the whole group: that, and not the rows, is what bounded ingest to one batch per
 * fsync before (docs/collector.md, "Storage").
 *
 * Exactly once. A result is identified by (agent_id, instance_id, result_seq). Each
 * spool's stored result_seq values are kept as sorted disjoint intervals, in the
 * table `seen` (spool, first_seq, last_seq) and in memory for the spools in use: an
 * agent numbers results 1, 2, 3... and delivers them mostly in order, so a spool is
 * one interval plus one per gap, and a re-sent result is recognised in memory, with
 * no index entry per row (version 5's unique index cost ~20 bytes and a B-tree insert
 * per result). The intervals a batch changed are written in the batch's own savepoint,
 * so `seen` and result_rows commit or roll back together; after any rollback the
 * in-memory copies are dropped and reloaded from the file when next needed.
 *
 * Content keys (series, facts, chain JSON) are computed by tp_store_prepare, which may
 * run on the decoding threads; put computes them itself when given no prep. */
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

/* ---- prepared content keys ------------------------------------------------------------ */

typedef struct prep_key {
  uint64_t h;
  size_t off, len; /* len 0: none (a result without a chain) */
} prep_key;

enum { KEY_SERIES, KEY_SHAPE, KEY_CHAIN, N_KEYS };

struct tp_store_prep {
  size_t n;
  prep_key (*k)[N_KEYS];
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

/* The offered lists are kept as JSON arrays of strings, as version 5 stored them. */
static tp_err list_key(tp_buf *k, tp_buf *scratch, char *const *items, size_t n) {
  tp_buf_reset(scratch);
  tp_err rc = tp_json_str_array(scratch, items, n);
  return rc == TP_E_OK ? tp__key_text_n(k, (const char *)scratch->data, scratch->len) : rc;
}

static tp_err shape_key(tp_buf *k, tp_buf *scratch, const Tlsprobe__V1__ProbeResult *r) {
  const char *cls = tp_outcome_name((int)r->error_class);
  tp_err rc = tp__key_text(k, cls ? cls : "other");
  const char *texts[] = {r->tls_version, r->cipher, r->group, r->alpn,
                         r->server_signature_algorithm, r->mode};
  for (size_t i = 0; rc == TP_E_OK && i < sizeof(texts) / sizeof(texts[0]); i++)
    rc = tp__key_text(k, texts[i]);
  if (rc == TP_E_OK)
    rc = list_key(k, scratch, r->groups_offered, r->n_groups_offered);
  if (rc == TP_E_OK)
    rc = list_key(k, scratch, r->key_shares_offered, r->n_key_shares_offered);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->fidelity_note);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->emulation_divergence);
  if (rc == TP_E_OK)
    rc = tp__key_text(k, r->ocsp != NULL ? r->ocsp->cert_status : NULL);
  return rc;
}

/* One key: appended by fn, then hashed where it lies. */
static tp_err add_key(tp_store_prep *p, prep_key *out, tp_err (*fn)(tp_buf *, tp_buf *,
                                                                   const Tlsprobe__V1__ProbeResult *),
                      tp_buf *scratch, const Tlsprobe__V1__ProbeResult *r) {
  size_t off = p->keys.len;
  tp_err rc = fn(&p->keys, scratch, r);
  if (rc != TP_E_OK)
    return rc;
  *out = (prep_key){.off = off, .len = p->keys.len - off};
  out->h = tp__key_hash(p->keys.data + off, out->len);
  return TP_E_OK;
}

static tp_err series_fn(tp_buf *k, tp_buf *scratch, const Tlsprobe__V1__ProbeResult *r) {
  (void)scratch;
  return series_key(k, r);
}

static tp_err chain_fn(tp_buf *k, tp_buf *scratch, const Tlsprobe__V1__ProbeResult *r) {
  tp_buf_reset(scratch);
  tp_err rc = tp_chain_json_encode(r->chain, r->n_chain, scratch);
  return rc == TP_E_OK ? tp__key_text_n(k, (const char *)scratch->data, scratch->len) : rc;
}

tp_err tp__sqlite_prepare_batch(const Tlsprobe__V1__ResultBatch *batch, tp_store_prep **out,
                                char *err, size_t errlen) {
  tp_store_prep *p = tp_xcalloc(1, sizeof(*p));
  tp_buf scratch;
  tp_err rc = TP_E_OK;
  tp_buf_init(&p->keys, PREP_KEYS_CAP);
  tp_buf_init(&scratch, PREP_KEYS_CAP);
  p->n = batch->n_results;
  p->k = tp_xcalloc(p->n ? p->n : 1, sizeof(*p->k));
  for (size_t i = 0; rc == TP_E_OK && i < p->n; i++) {
    const Tlsprobe__V1__ProbeResult *r = batch->results[i];
    rc = add_key(p, &p->k[i][KEY_SERIES], series_fn, &scratch, r);
    if (rc == TP_E_OK)
      rc = add_key(p, &p->k[i][KEY_SHAPE], shape_key, &scratch, r);
    if (rc == TP_E_OK && r->n_chain > 0)
      rc = add_key(p, &p->k[i][KEY_CHAIN], chain_fn, &scratch, r);
  }
  tp_buf_free(&scratch);
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
  free(p->k);
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
 * ones deleted. Inside the batch's savepoint. */
static tp_err seen_flush(sqlite_store *s, tp__spool *sp, char *err, size_t errlen) {
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

static tp_err insert_row(sqlite_store *s, const Tlsprobe__V1__ResultBatch *batch,
                         const Tlsprobe__V1__ProbeResult *r, const row_refs *ref,
                         int64_t received_unix_ns, char *err, size_t errlen) {
  const Tlsprobe__V1__OcspFacts *ocsp = r->ocsp;
  const Tlsprobe__V1__HttpFacts *http = r->http;
  binder b = {.stmt = s->insert_row, .idx = 0, .rc = SQLITE_OK};
  bind_i64(&b, ref->spool);
  bind_i64(&b, u64_bits(r->result_seq));
  bind_i64(&b, ref->series);
  bind_i64(&b, ref->shape);
  if (ref->chain != 0)
    bind_i64(&b, ref->chain);
  else
    bind_null(&b);
  bind_i64(&b, r->started_unix_ns);
  /* received - started: a few seconds take 4-5 bytes where the time takes 8 */
  bind_i64(&b, received_unix_ns - r->started_unix_ns);
  bind_i64(&b, u64_bits(batch->batch_seq));
  bind_i64(&b, u64_bits(r->dns_ns));
  bind_i64(&b, u64_bits(r->connect_ns));
  bind_i64(&b, u64_bits(r->handshake_ns));
  bind_i64(&b, u64_bits(r->total_ns));
  bind_i64(&b, u64_bits(r->loop_lag_ns));
  bind_i64(&b, u64_bits(r->schedule_lateness_ns));
  bind_i64(&b, u64_bits(r->resumption_handshake_ns));
  bind_i64(&b, flags_of(r));
  bind_text(&b, r->error_detail);
  if (r->n_chain > 0)
    bind_i64(&b, r->days_to_earliest_expiry);
  else
    bind_null(&b); /* meaningless without a chain (tlsprobe.proto) */
  bind_i64(&b, r->chain_length_sent);
  if (ocsp != NULL) {
    bind_i64(&b, ocsp->this_update_unix);
    bind_i64(&b, ocsp->next_update_unix);
    bind_i64(&b, ocsp->age_seconds);
  } else {
    for (int i = 0; i < 3; i++)
      bind_null(&b);
  }
  if (http != NULL) {
    bind_i64(&b, http->status);
    bind_i64(&b, u64_bits(http->first_byte_ns));
  } else {
    bind_null(&b);
    bind_null(&b);
  }
  tp_err rc = TP_E_OK;
  if (b.rc != SQLITE_OK || run(s->insert_row) != SQLITE_OK)
    rc = fail(s, err, errlen, "cannot insert result");
  /* Bindings point into the batch; drop them so no statement outlives its data. */
  (void)sqlite3_clear_bindings(s->insert_row);
  return rc;
}

static tp_err intern_key(sqlite_store *s, tp__dict_kind kind, const tp_store_prep *p,
                         const prep_key *k, int64_t *id, char *err, size_t errlen) {
  return tp__sqlite_intern(s, kind, p->keys.data + k->off, k->len, k->h, id, err, errlen);
}

static tp_err refs_of(sqlite_store *s, const tp_store_prep *p, size_t i, row_refs *ref, char *err,
                      size_t errlen) {
  const prep_key *k = p->k[i];
  tp_err rc = intern_key(s, DICT_SERIES, p, &k[KEY_SERIES], &ref->series, err, errlen);
  if (rc == TP_E_OK)
    rc = intern_key(s, DICT_SHAPES, p, &k[KEY_SHAPE], &ref->shape, err, errlen);
  ref->chain = 0;
  if (rc == TP_E_OK && k[KEY_CHAIN].len > 0)
    rc = intern_key(s, DICT_CHAINS, p, &k[KEY_CHAIN], &ref->chain, err, errlen);
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
  tp_err rc = spool_get(s, batch, &sp, put->err, sizeof(put->err));
  for (size_t i = 0; rc == TP_E_OK && i < batch->n_results; i++) {
    const Tlsprobe__V1__ProbeResult *r = batch->results[i];
    /* result_seq is 1..INT64_MAX (validated) */
    if (!seen_add(s, sp, (int64_t)r->result_seq))
      continue; /* stored before: a re-send */
    row_refs ref = {.spool = sp->id};
    rc = refs_of(s, p, i, &ref, put->err, sizeof(put->err));
    if (rc == TP_E_OK)
      rc = insert_row(s, batch, r, &ref, put->received_unix_ns, put->err, sizeof(put->err));
    if (rc != TP_E_OK)
      break;
    put->out.results_stored++;
    if (put->marks != NULL)
      put->marks->results[i] = true;
    if (r->result_seq > *max_seq)
      *max_seq = r->result_seq;
    if (r->started_unix_ns > *last_started)
      *last_started = r->started_unix_ns;
  }
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
    rc = tp__sqlite_put_delivery(s, batch, put->received_unix_ns, &put->out, max_seq,
                                 last_started, put->marks != NULL ? put->marks->drops : NULL,
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
  for (size_t i = 0; i < n; i++) {
    puts[i].rc = TP_E_STORE;
    puts[i].out = (tp_store_put_outcome){0};
    if (puts[i].err[0] == '\0')
      snprintf(puts[i].err, sizeof(puts[i].err), "%s", err);
  }
  return TP_E_STORE;
}

tp_err tp__sqlite_put_batches(tp_store *store, tp_store_put *puts, size_t n, char *err,
                              size_t errlen) {
  sqlite_store *s = from_base(store);
  bool savepoints = n > 1; /* alone, a batch's failure is the transaction's */
  if (s->seen_cached > SEEN_MAX_CACHED || s->spools_used > SPOOLS_MAX_CACHED)
    spools_forget(s);
  if (run(s->begin) != SQLITE_OK) {
    fail(s, err, errlen, "cannot begin transaction");
    return fail_group(s, puts, n, false, err);
  }
  for (size_t i = 0; i < n; i++) {
    tp_store_put *put = &puts[i];
    put->err[0] = '\0';
    if (savepoints && run(s->savepoint) != SQLITE_OK) {
      fail(s, err, errlen, "cannot start a batch's savepoint");
      return fail_group(s, puts, n, true, err);
    }
    put->rc = put_one(s, put);
    if (put->rc == TP_E_OK) {
      if (savepoints && run(s->release) != SQLITE_OK) {
        fail(s, err, errlen, "cannot release a batch's savepoint");
        return fail_group(s, puts, n, true, err);
      }
      continue;
    }
    /* This batch alone, unless the error ended the transaction (SQLite rolls back by
     * itself on SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM...). */
    snprintf(err, errlen, "%s", put->err);
    if (!savepoints || sqlite3_get_autocommit(s->db))
      return fail_group(s, puts, n, true, err);
    put->out = (tp_store_put_outcome){0};
    if (run(s->rollback_to) != SQLITE_OK || run(s->release) != SQLITE_OK) {
      fail(s, err, errlen, "cannot roll a batch back to its savepoint");
      return fail_group(s, puts, n, true, err);
    }
    forget_all(s); /* its dictionary rows and seen intervals are gone */
  }
  /* synchronous=FULL: when COMMIT returns, the group is on disk and may be acked. */
  if (run(s->commit) != SQLITE_OK) {
    fail(s, err, errlen, "cannot commit batch");
    return fail_group(s, puts, n, true, err);
  }
  for (size_t i = 0; i < n; i++)
    if (puts[i].rc == TP_E_OK)
      puts[i].out.duplicate = puts[i].out.results_stored == 0 && puts[i].out.drops_stored == 0;
  return TP_E_OK;
}

/* ---- statements ----------------------------------------------------------------------- */

/* ON CONFLICT ... DO NOTHING names the identity constraint, so a re-sent batch is
 * skipped while any other constraint still fails loudly (OR IGNORE would hide a NOT
 * NULL violation too). */
static const char SQL_INSERT_BATCH[] =
    "INSERT INTO batches (agent_id, instance_id, batch_seq, received_unix_ns, result_count)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (agent_id, instance_id, batch_seq) DO NOTHING";
static const char SQL_INSERT_ROW[] =
    "INSERT INTO result_rows (spool, result_seq, series, shape, chain, started_unix_ns,"
    " received_delay_ns, batch_seq, dns_ns, connect_ns, handshake_ns, total_ns, loop_lag_ns,"
    " schedule_lateness_ns, resumption_handshake_ns, flags, error_detail,"
    " days_to_earliest_expiry, chain_length_sent, ocsp_this_update_unix, ocsp_next_update_unix,"
    " ocsp_age_seconds, http_status, http_first_byte_ns)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
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

tp_err tp__sqlite_prepare_write(sqlite_store *s, char *err, size_t errlen) {
  struct {
    const char *sql;
    sqlite3_stmt **stmt;
  } all[] = {
      {"BEGIN IMMEDIATE", &s->begin},
      {"COMMIT", &s->commit},
      {"ROLLBACK", &s->rollback},
      {"SAVEPOINT tp_batch", &s->savepoint},
      {"RELEASE tp_batch", &s->release},
      {"ROLLBACK TO tp_batch", &s->rollback_to},
      {SQL_INSERT_BATCH, &s->insert_batch},
      {SQL_INSERT_ROW, &s->insert_row},
      {SQL_SPOOL_FIND, &s->spool_find},
      {SQL_SPOOL_INSERT, &s->spool_insert},
      {SQL_SEEN_LOAD, &s->seen_load},
      {SQL_SEEN_UPSERT, &s->seen_upsert},
      {SQL_SEEN_DELETE, &s->seen_delete},
  };
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    if (sqlite3_prepare_v3(s->db, all[i].sql, -1, SQLITE_PREPARE_PERSISTENT, all[i].stmt, NULL) !=
        SQLITE_OK)
      return fail(s, err, errlen, "cannot prepare statement");
  return TP_E_OK;
}

void tp__sqlite_finalize_write(sqlite_store *s) {
  sqlite3_stmt *stmts[] = {s->begin,       s->commit,       s->rollback,    s->savepoint,
                           s->release,     s->rollback_to,  s->insert_batch, s->insert_row,
                           s->spool_find,  s->spool_insert, s->seen_load,   s->seen_upsert,
                           s->seen_delete};
  for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
    sqlite3_finalize(stmts[i]);
  spools_forget(s);
}
