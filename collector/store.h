/* store.h - the collector's storage interface. Callers see an opaque tp_store and
 * these functions only; the backend (SQLite today, PostgreSQL later) sits behind a
 * vtable inside the struct (store_impl.h), so ingest and report never know which.
 *
 * Threading: a tp_store is used by one thread at a time (the collector's single
 * MHD thread while serving; the report command alone otherwise). */
#ifndef TP_STORE_H
#define TP_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsprobe.pb-c.h"
#include "tp_error.h"

typedef struct tp_store tp_store;

typedef enum {
  TP_STORE_READWRITE, /* create the database if missing and migrate it to the current schema */
  TP_STORE_READONLY,  /* the file must exist; it is never written (report) */
} tp_store_mode;

/* Opens a SQLite store. On failure returns TP_E_STORE (TP_E_NOTFOUND for a missing
 * file in read-only mode) with a message in err. Close with tp_store_close. */
tp_err tp_store_open_sqlite(const char *path, tp_store_mode mode, tp_store **out, char *err,
                            size_t errlen);
void tp_store_close(tp_store *store);

/* Stores every result of a validated batch atomically, or nothing. If the batch
 * (agent_id, instance_id, batch_seq) was stored before, stores nothing and sets
 * *duplicate. TP_E_STORE on failure with a message in err (nothing stored). */
tp_err tp_store_put_batch(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                          int64_t received_unix_ns, bool *duplicate, char *err, size_t errlen);

/* One stored result as the report needs it; strings are borrowed for the duration
 * of the callback only. */
typedef struct tp_store_row {
  const char *target;
  const char *profile;
  const char *region;
  bool ok;
  const char *error_class; /* snake_case name */
  uint64_t handshake_ns;
  uint64_t loop_lag_ns;
} tp_store_row;

/* Return non-OK to stop the scan; that error is returned by tp_store_scan. */
typedef tp_err (*tp_store_row_fn)(const tp_store_row *row, void *ctx);

/* Calls fn for each result started at or after since_unix_ns (and of `target` if
 * non-NULL), ordered by target, profile, region (byte order). */
tp_err tp_store_scan(tp_store *store, int64_t since_unix_ns, const char *target, tp_store_row_fn fn,
                     void *ctx, char *err, size_t errlen);

/* The latest result's negotiated facts for one series (all strings owned; free with
 * tp_store_facts_clear). chain_json is the stored JSON array text. */
typedef struct tp_store_facts {
  char *tls_version;
  char *cipher;
  char *group;
  char *alpn;
  char *error_detail;
  char *chain_json;
  int32_t days_to_earliest_expiry;
  int64_t started_unix_ns;
} tp_store_facts;

/* TP_E_NOTFOUND if the series has no result in the window. */
tp_err tp_store_latest(tp_store *store, const char *target, const char *profile, const char *region,
                       int64_t since_unix_ns, tp_store_facts *out, char *err, size_t errlen);
void tp_store_facts_clear(tp_store_facts *facts);

#endif
