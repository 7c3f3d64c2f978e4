/* store_impl.h - for storage backends only: the vtable behind tp_store. A backend
 * allocates a struct whose first member is `tp_store` and fills `ops`; store.c
 * dispatches the public functions through it. */
#ifndef TP_STORE_IMPL_H
#define TP_STORE_IMPL_H
#include "store.h"

typedef struct tp_store_ops {
  const char *name;
  /* tp_store_put_batches; the single-batch functions are a group of one */
  tp_err (*put_batches)(tp_store *store, tp_store_put *puts, size_t n, char *err,
                        size_t errlen);
  /* optional (NULL: nothing to prepare); thread-safe, see tp_store_prepare */
  tp_err (*prepare)(const Tlsprobe__V1__ResultBatch *batch, tp_store_prep **out, char *err,
                    size_t errlen);
  void (*prep_free)(tp_store_prep *prep);
  tp_err (*scan)(tp_store *store, const tp_store_filter *filter, tp_store_row_fn fn, void *ctx,
                 char *err, size_t errlen);
  tp_err (*scan_chain)(tp_store *store, int64_t row_id, tp_store_cert_fn fn, void *ctx,
                       char *err, size_t errlen);
  /* optional (NULL: the backend keeps none -- no details, no chain found) */
  tp_err (*scan_chain_series)(tp_store *store, int64_t since_unix_ns, tp_store_series_fn fn,
                              void *ctx, char *err, size_t errlen);
  tp_err (*scan_latest_details)(tp_store *store, int64_t since_unix_ns, tp_store_detail_fn fn,
                                void *ctx, char *err, size_t errlen);
  tp_err (*scan_latest_chain)(tp_store *store, const char *target, const char *profile,
                              const char *region, int64_t since_unix_ns, tp_store_cert_fn fn,
                              void *ctx, char *err, size_t errlen);
  tp_err (*latest)(tp_store *store, const char *target, const char *profile, const char *region,
                   int64_t since_unix_ns, tp_store_facts *out, char *err, size_t errlen);
  tp_err (*scan_spools)(tp_store *store, tp_store_spool_fn fn, void *ctx, char *err,
                        size_t errlen);
  tp_err (*scan_drops)(tp_store *store, int64_t since_unix_ns, tp_store_drop_fn fn, void *ctx,
                       char *err, size_t errlen);
  tp_err (*maintain)(tp_store *store, int64_t now_unix_ns, const tp_store_maintain_limits *limits,
                     tp_store_maintain_stats *stats, char *err, size_t errlen);
  tp_err (*scan_rollups)(tp_store *store, tp_store_rollup_span span, int64_t since_unix_ns,
                         int64_t until_unix_ns, const tp_store_rollup_filter *filter,
                         tp_store_rollup_order order, tp_store_rollup_fn fn, void *ctx,
                         char *err, size_t errlen);
  tp_err (*horizon)(tp_store *store, tp_store_horizon *out, char *err, size_t errlen);
  void (*close)(tp_store *store); /* frees the backend struct too */
} tp_store_ops;

struct tp_store {
  const tp_store_ops *ops;
};

#endif
