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

/* What one put_batch added. Results are identified by (agent_id, instance_id,
 * result_seq) and drop reports by (agent_id, instance_id, drop_id): whatever was
 * stored before, in any batch, is skipped, so a re-send counts nothing twice. */
typedef struct tp_store_put_outcome {
  uint32_t results_stored; /* newly stored results */
  uint32_t drops_stored;   /* newly stored drop reports */
  bool duplicate;          /* nothing of the batch was new */
} tp_store_put_outcome;

/* Stores a validated batch in one transaction, durable when this returns
 * (TP_E_OK): the caller may acknowledge it. TP_E_STORE on failure with a message
 * in err (nothing stored). */
tp_err tp_store_put_batch(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                          int64_t received_unix_ns, tp_store_put_outcome *out, char *err,
                          size_t errlen);

/* Which entries a put_batch newly stored, for callers that count per result (the
 * metrics): caller-owned arrays of batch->n_results and batch->n_drops entries,
 * zeroed by the caller; the store sets true for each new one. Meaningful only when
 * the put returned TP_E_OK. */
typedef struct tp_store_put_marks {
  bool *results;
  bool *drops;
} tp_store_put_marks;
/* tp_store_put_batch that also fills marks (NULL: none). */
tp_err tp_store_put_batch_marked(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                                 int64_t received_unix_ns, tp_store_put_outcome *out,
                                 const tp_store_put_marks *marks, char *err, size_t errlen);

/* A column that may be NULL: not reported on the wire (an absent message) or
 * stored before the schema version that added it. */
typedef struct tp_store_opt {
  bool set;
  int64_t v;
} tp_store_opt;

/* One stored result as the report needs it; strings are borrowed for the duration
 * of the callback only. Columns added by schema versions 2 and 3 read as
 * 0/false/"" for rows stored before them. Every string is untrusted agent input:
 * escape before printing. */
typedef struct tp_store_row {
  int64_t row_id; /* the backend's identity of the row: for tp_store_scan_chain */
  const char *target;
  const char *profile;
  const char *region;
  const char *agent_id;
  bool ok;
  const char *error_class;  /* snake_case name */
  const char *error_detail; /* "" on success */
  uint64_t connect_ns;
  uint64_t handshake_ns;
  uint64_t total_ns;
  uint64_t loop_lag_ns;
  int64_t started_unix_ns;
  const char *tls_version; /* negotiated facts; "" when the handshake did not finish */
  const char *cipher;
  const char *group;
  const char *mode; /* "handshake", "resumption", "early_data"; "" = not reported */
  bool resumed;
  bool hello_retry_request;
  bool early_data_attempted;
  bool early_data_accepted;
  tp_store_opt days_to_earliest_expiry; /* unset when no chain was received */
  bool ocsp_stapled;
  tp_store_opt ocsp_age_seconds;        /* unset when no OCSP response was stapled */
  /* schema version 3 */
  const char *address_family; /* "ipv4", "ipv6"; "" = not reported */
  bool emulation_checked;     /* negotiated facts compared with the real client's offer */
  /* What was outside the real client's offer; "" = exact (or not checked). */
  const char *emulation_divergence;
  bool early_data_policy_violation; /* a non-safe request was processed as 0-RTT data */
} tp_store_row;

/* Which results a scan returns: started in [since, until), and of one target when
 * `target` is set (exact name; the report applies globs itself). */
typedef struct tp_store_filter {
  int64_t since_unix_ns;
  int64_t until_unix_ns; /* exclusive; INT64_MAX = no end */
  const char *target;    /* NULL = every target */
} tp_store_filter;

/* Return non-OK to stop the scan; that error is returned by tp_store_scan. */
typedef tp_err (*tp_store_row_fn)(const tp_store_row *row, void *ctx);

/* Calls fn for each result the filter selects, oldest first (started_unix_ns, then
 * storage order). A range scan: its cost follows the window, not the table. */
tp_err tp_store_scan(tp_store *store, const tp_store_filter *filter, tp_store_row_fn fn,
                     void *ctx, char *err, size_t errlen);

/* One certificate of a stored result's chain; strings borrowed for the callback.
 * position 0 is the leaf. */
typedef struct tp_store_chain_cert {
  uint32_t position;
  const char *subject;
  const char *issuer;
  int64_t not_before_unix;
  int64_t not_after_unix;
} tp_store_chain_cert;
typedef tp_err (*tp_store_cert_fn)(const tp_store_chain_cert *cert, void *ctx);
/* The chain of the result row_id (a tp_store_row's), one call per certificate in
 * position order; none when it has no chain. Cheap: one row by its identity. */
tp_err tp_store_scan_chain(tp_store *store, int64_t row_id, tp_store_cert_fn fn, void *ctx,
                           char *err, size_t errlen);

/* A list of strings that may be absent (stored before the schema version that added
 * it): set = false. */
typedef struct tp_store_strings {
  bool set;
  char **items; /* owned */
  size_t n;
} tp_store_strings;

/* One certificate as the agent reported it (all owned). */
typedef struct tp_store_cert {
  char *subject, *issuer;
  tp_store_strings san_dns;
  int64_t not_before_unix, not_after_unix;
  char *key_type;
  uint32_t key_bits;
  char *signature_algorithm;
} tp_store_cert;

/* The latest result's facts for one series (all strings owned; free with
 * tp_store_facts_clear). Structured whatever the backend keeps: the chain as
 * certificates, the offered groups and key shares as string lists. The strings
 * added by schema versions 2 and 3 are NULL, their lists and options unset, for
 * rows stored before them. */
typedef struct tp_store_facts {
  char *tls_version;
  char *cipher;
  char *group;
  char *alpn;
  char *error_detail;
  tp_store_cert *chain; /* in the order the server sent them */
  size_t n_chain;
  tp_store_opt days_to_earliest_expiry; /* unset without a chain */
  int64_t started_unix_ns;
  bool resumed;
  bool hello_retry_request;
  /* schema version 2 */
  tp_store_strings groups_offered;
  tp_store_strings key_shares_offered;
  char *mode;
  char *fidelity_note;
  tp_store_opt ticket_received, resumption_handshake_ns, early_data_attempted,
      early_data_accepted, chain_length_sent, chain_complete;
  bool ocsp_stapled;
  char *ocsp_cert_status; /* NULL unless stapled */
  tp_store_opt ocsp_this_update_unix, ocsp_next_update_unix, ocsp_age_seconds;
  bool http_present; /* an HTTP request was made */
  tp_store_opt http_status, http_first_byte_ns, http_hsts;
  /* schema version 3 */
  char *address_family;
  char *emulation_divergence;
  tp_store_opt emulation_checked, early_data_policy_violation;
} tp_store_facts;

/* Delivery counters of one agent spool (agent_id, instance_id): what arrived,
 * what the agent reported lost, and from which the report derives what is
 * missing (numbered but neither received nor reported lost) and who went silent.
 * agent_id is borrowed for the duration of the callback. */
typedef struct tp_store_spool_row {
  const char *agent_id;
  uint64_t instance_id;
  int64_t first_received_unix_ns;
  int64_t last_received_unix_ns; /* last batch that added something */
  int64_t last_started_unix_ns;  /* newest result's start time */
  uint64_t results;              /* results stored */
  uint64_t max_seq;              /* highest result_seq stored or reported lost */
  uint64_t dropped;              /* results the agent reported lost */
  uint64_t dropped_with_seq;     /* of those, numbered ones (they explain seq gaps) */
} tp_store_spool_row;
typedef tp_err (*tp_store_spool_fn)(const tp_store_spool_row *row, void *ctx);
/* Every spool, ordered by agent_id then first_received_unix_ns. */
tp_err tp_store_scan_spools(tp_store *store, tp_store_spool_fn fn, void *ctx, char *err,
                            size_t errlen);

/* One drop report as the agent sent it (strings borrowed for the callback). */
typedef struct tp_store_drop_row {
  const char *agent_id;
  uint64_t instance_id;
  uint64_t drop_id;
  uint64_t count;
  const char *reason; /* "spool_full", "spool_error", "invalid_result" */
  uint64_t first_seq, last_seq; /* 0/0 = not numbered */
  int64_t first_unix_ns, last_unix_ns;
} tp_store_drop_row;
typedef tp_err (*tp_store_drop_fn)(const tp_store_drop_row *row, void *ctx);
/* Drop reports whose lost results were produced at or after since_unix_ns
 * (last_unix_ns >= since), ordered by agent_id, then first_unix_ns. */
tp_err tp_store_scan_drops(tp_store *store, int64_t since_unix_ns, tp_store_drop_fn fn, void *ctx,
                           char *err, size_t errlen);

/* TP_E_NOTFOUND if the series has no result in the window. */
tp_err tp_store_latest(tp_store *store, const char *target, const char *profile, const char *region,
                       int64_t since_unix_ns, tp_store_facts *out, char *err, size_t errlen);
void tp_store_facts_clear(tp_store_facts *facts);

#endif
