/* store.c - dispatch from the public tp_store_* functions to the backend vtable. */
#include "store_impl.h"

#include <stdio.h>
#include <stdlib.h>

/* A group of one: the single-batch API keeps its meaning (durable on TP_E_OK,
 * nothing stored on failure). */
static tp_err put_one(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                      int64_t received_unix_ns, tp_store_put_outcome *out,
                      const tp_store_put_marks *marks, char *err, size_t errlen) {
  tp_store_put put = {.batch = batch, .received_unix_ns = received_unix_ns, .marks = marks};
  tp_err rc = tp_store_put_batches(store, &put, 1, err, errlen);
  if (rc == TP_E_OK && put.rc != TP_E_OK) {
    snprintf(err, errlen, "%s", put.err);
    rc = put.rc;
  }
  *out = rc == TP_E_OK ? put.out : (tp_store_put_outcome){0};
  return rc;
}

tp_err tp_store_put_batch(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                          int64_t received_unix_ns, tp_store_put_outcome *out, char *err,
                          size_t errlen) {
  return put_one(store, batch, received_unix_ns, out, NULL, err, errlen);
}

tp_err tp_store_put_batch_marked(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                                 int64_t received_unix_ns, tp_store_put_outcome *out,
                                 const tp_store_put_marks *marks, char *err, size_t errlen) {
  return put_one(store, batch, received_unix_ns, out, marks, err, errlen);
}

tp_err tp_store_put_batches(tp_store *store, tp_store_put *puts, size_t n, char *err,
                            size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    puts[i].rc = TP_E_STORE;
    puts[i].out = (tp_store_put_outcome){0};
    puts[i].err[0] = '\0';
  }
  return n == 0 ? TP_E_OK : store->ops->put_batches(store, puts, n, err, errlen);
}

tp_err tp_store_prepare(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                        tp_store_prep **out, char *err, size_t errlen) {
  *out = NULL;
  return store->ops->prepare != NULL ? store->ops->prepare(batch, out, err, errlen) : TP_E_OK;
}

void tp_store_prep_free(tp_store *store, tp_store_prep *prep) {
  if (prep != NULL && store->ops->prep_free != NULL)
    store->ops->prep_free(prep);
}

tp_err tp_store_scan(tp_store *store, const tp_store_filter *filter, tp_store_row_fn fn,
                     void *ctx, char *err, size_t errlen) {
  return store->ops->scan(store, filter, fn, ctx, err, errlen);
}

tp_err tp_store_scan_chain(tp_store *store, int64_t row_id, tp_store_cert_fn fn, void *ctx,
                           char *err, size_t errlen) {
  return store->ops->scan_chain(store, row_id, fn, ctx, err, errlen);
}

tp_err tp_store_scan_latest_chain(tp_store *store, const char *target, const char *profile,
                                  const char *region, int64_t since_unix_ns, tp_store_cert_fn fn,
                                  void *ctx, char *err, size_t errlen) {
  if (store->ops->scan_latest_chain == NULL)
    return TP_E_NOTFOUND; /* a backend that keeps none */
  return store->ops->scan_latest_chain(store, target, profile, region, since_unix_ns, fn, ctx,
                                       err, errlen);
}

tp_err tp_store_scan_chain_series(tp_store *store, int64_t since_unix_ns, tp_store_series_fn fn,
                                  void *ctx, char *err, size_t errlen) {
  if (store->ops->scan_chain_series == NULL)
    return TP_E_OK; /* a backend that keeps no chains per series */
  return store->ops->scan_chain_series(store, since_unix_ns, fn, ctx, err, errlen);
}

tp_err tp_store_scan_latest_details(tp_store *store, int64_t since_unix_ns,
                                    tp_store_detail_fn fn, void *ctx, char *err, size_t errlen) {
  if (store->ops->scan_latest_details == NULL)
    return TP_E_OK; /* a backend that keeps none: no details */
  return store->ops->scan_latest_details(store, since_unix_ns, fn, ctx, err, errlen);
}

tp_err tp_store_latest(tp_store *store, const char *target, const char *profile, const char *region,
                       int64_t since_unix_ns, tp_store_facts *out, char *err, size_t errlen) {
  return store->ops->latest(store, target, profile, region, since_unix_ns, out, err, errlen);
}

void tp_store_close(tp_store *store) {
  if (store != NULL)
    store->ops->close(store);
}

static void strings_clear(tp_store_strings *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->items[i]);
  free(l->items);
  *l = (tp_store_strings){0};
}

void tp_store_facts_clear(tp_store_facts *facts) {
  for (size_t i = 0; i < facts->n_chain; i++) {
    tp_store_cert *c = &facts->chain[i];
    free(c->subject);
    free(c->issuer);
    strings_clear(&c->san_dns);
    free(c->key_type);
    free(c->signature_algorithm);
  }
  free(facts->chain);
  free(facts->tls_version);
  free(facts->cipher);
  free(facts->group);
  free(facts->alpn);
  free(facts->error_detail);
  strings_clear(&facts->groups_offered);
  strings_clear(&facts->key_shares_offered);
  free(facts->mode);
  free(facts->fidelity_note);
  free(facts->ocsp_cert_status);
  free(facts->address_family);
  free(facts->emulation_divergence);
  *facts = (tp_store_facts){0};
}

tp_err tp_store_scan_spools(tp_store *store, tp_store_spool_fn fn, void *ctx, char *err,
                            size_t errlen) {
  return store->ops->scan_spools(store, fn, ctx, err, errlen);
}

tp_err tp_store_scan_drops(tp_store *store, int64_t since_unix_ns, tp_store_drop_fn fn, void *ctx,
                           char *err, size_t errlen) {
  return store->ops->scan_drops(store, since_unix_ns, fn, ctx, err, errlen);
}

tp_err tp_store_maintain(tp_store *store, int64_t now_unix_ns,
                         const tp_store_maintain_limits *limits, tp_store_maintain_stats *stats,
                         char *err, size_t errlen) {
  *stats = (tp_store_maintain_stats){0};
  return store->ops->maintain(store, now_unix_ns, limits, stats, err, errlen);
}

int64_t tp_store_rollup_span_ns(tp_store_rollup_span span) {
  switch (span) {
  case TP_STORE_ROLLUP_DAY:
    return TP_STORE_ROLLUP_DAY_NS;
  case TP_STORE_ROLLUP_HOUR:
    return TP_STORE_ROLLUP_HOUR_NS;
  case TP_STORE_ROLLUP_MINUTE:
    break;
  }
  return TP_STORE_ROLLUP_MINUTE_NS;
}

tp_err tp_store_scan_rollups(tp_store *store, tp_store_rollup_span span, int64_t since_unix_ns,
                             int64_t until_unix_ns, const tp_store_rollup_filter *filter,
                             tp_store_rollup_order order, tp_store_rollup_fn fn, void *ctx,
                             char *err, size_t errlen) {
  static const tp_store_rollup_filter any = {0};
  return store->ops->scan_rollups(store, span, since_unix_ns, until_unix_ns,
                                  filter ? filter : &any, order, fn, ctx, err, errlen);
}

tp_err tp_store_horizon_get(tp_store *store, tp_store_horizon *out, char *err, size_t errlen) {
  *out = (tp_store_horizon){0};
  return store->ops->horizon(store, out, err, errlen);
}
