/* store.h - the collector's storage interface. Callers see an opaque tp_store and
 * these functions only; the backend (SQLite today, PostgreSQL later) sits behind a
 * vtable inside the struct (store_impl.h), so ingest and report never know which.
 *
 * Threading: a tp_store is used by one thread at a time -- except tp_store_prepare,
 * which touches no connection and may run on any thread at once. While serving, the
 * ingest writer thread (ingest_queue.h) has one and the maintenance thread
 * (maintenance.h) another, on the same database; the report command has its own,
 * read-only.
 *
 * Long windows: raw results are kept for the raw retention (7 days by default);
 * rollups per minute and per hour (counters and latency sketches per target x
 * profile x region x agent x address family) for the rollup retention (90 days).
 * tp_store_maintain folds new results into rollups and applies both retentions;
 * tp_store_scan_rollups reads them and tp_store_horizon_get says which of the two
 * covers a window. */
#ifndef TP_STORE_H
#define TP_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outcome_counts.h"
#include "negotiated_mix.h"
#include "sketch.h"
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

/* ---- group commit ------------------------------------------------------------------ */

/* What a backend can work out from a batch alone, before it has the connection (the
 * SQLite backend: each result's content keys -- its series, its facts, its chain as
 * JSON -- and their hashes): made by tp_store_prepare on the decoding thread, so the
 * one thread that writes only looks them up. Opaque; free with tp_store_prep_free. */
typedef struct tp_store_prep tp_store_prep;

/* Thread-safe (no connection is touched; any number of threads at once, also while
 * another thread writes). *out = NULL when the backend needs nothing (then put
 * works it out itself). TP_E_STORE with err when the batch cannot be encoded. The
 * prep borrows nothing from the batch, but belongs to it: pass it with that batch
 * only. */
tp_err tp_store_prepare(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                        tp_store_prep **out, char *err, size_t errlen);
void tp_store_prep_free(tp_store *store, tp_store_prep *prep);

/* One batch of a group: the caller fills the inputs, the store the results. */
typedef struct tp_store_put {
  const Tlsprobe__V1__ResultBatch *batch; /* validated */
  const tp_store_prep *prep;              /* tp_store_prepare's, or NULL */
  int64_t received_unix_ns;
  const tp_store_put_marks *marks; /* NULL: none */
  /* results */
  tp_err rc;                /* TP_E_OK: stored by the commit; TP_E_STORE: nothing of it */
  tp_store_put_outcome out; /* meaningful when rc == TP_E_OK */
  char err[256];            /* when rc != TP_E_OK */
} tp_store_put;

/* Stores n validated batches in ONE transaction (group commit: one fsync for all).
 * Each batch is stored as if put alone, in array order -- a result two batches of
 * the group carry is new for the first and a duplicate for the second -- so each
 * outcome and its marks are what tp_store_put_batch_marked would have given. A batch
 * that fails by itself (puts[i].rc = TP_E_STORE) leaves no trace and the others go
 * on. Returns TP_E_OK when the commit succeeded: every put with rc == TP_E_OK is
 * durable and may be acknowledged. When the transaction itself fails (BEGIN, COMMIT,
 * a failure that ends the transaction such as a full disk) nothing of the group is
 * stored: every put gets rc = TP_E_STORE and the function returns TP_E_STORE with a
 * message in err. */
tp_err tp_store_put_batches(tp_store *store, tp_store_put *puts, size_t n, char *err,
                            size_t errlen);

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
  /* schema version 6; 0/false for rows stored before it */
  uint64_t schedule_lateness_ns; /* actual start - planned start, on the agent */
  bool saturated;                /* the agent was saturated: the latencies measure it too */
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
/* The chain of the newest result with a chain of the series named (target, profile,
 * region; any host, port or address), if that result started at or after
 * since_unix_ns: one call per certificate in position order. TP_E_NOTFOUND when there
 * is none. Cheap (the store keeps each series' newest chain as results arrive) and
 * still answered after raw retention deleted the result. The same certificates as
 * tp_store_scan_chain of the window's newest row with a chain, for a window that ends
 * now. */
tp_err tp_store_scan_latest_chain(tp_store *store, const char *target, const char *profile,
                                  const char *region, int64_t since_unix_ns, tp_store_cert_fn fn,
                                  void *ctx, char *err, size_t errlen);
/* Each series name (target, profile, region) whose newest chain started at or after
 * since_unix_ns, once: the series tp_store_scan_latest_chain answers for, whether or not
 * their results are rolled up yet. Strings borrowed for the callback. */
typedef tp_err (*tp_store_series_fn)(const char *target, const char *profile, const char *region,
                                     void *ctx);
tp_err tp_store_scan_chain_series(tp_store *store, int64_t since_unix_ns, tp_store_series_fn fn,
                                  void *ctx, char *err, size_t errlen);

/* The newest failure of one class of one series (any host, port or address: one
 * entry per stored series row). Strings borrowed for the callback. */
typedef struct tp_store_detail {
  const char *target, *profile, *region;
  const char *address_family; /* "" when not reported */
  const char *error_class;    /* an outcome name, never "ok" */
  int64_t started_unix_ns;
  int64_t row_id; /* ties: the higher is the newer */
  const char *detail;
} tp_store_detail;
typedef tp_err (*tp_store_detail_fn)(const tp_store_detail *d, void *ctx);
/* Every series' newest failure per class that started at or after since_unix_ns, kept
 * as results arrive (schema version 10) and still there after raw retention: the
 * error details of a window that ends now, whatever serves its counts. Any order. */
tp_err tp_store_scan_latest_details(tp_store *store, int64_t since_unix_ns,
                                    tp_store_detail_fn fn, void *ctx, char *err, size_t errlen);

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

/* ---- long windows: maintenance, rollups, horizon ---------------------------------- */

#define TP_STORE_ROLLUP_MINUTE_NS INT64_C(60000000000)
#define TP_STORE_ROLLUP_HOUR_NS INT64_C(3600000000000)
#define TP_STORE_ROLLUP_DAY_NS INT64_C(86400000000000)
/* Rows per maintenance transaction when tp_store_maintain_limits leaves it 0. */
#define TP_STORE_MAINTAIN_CHUNK 1000

typedef struct tp_store_maintain_limits {
  /* Raw results started longer ago than this are deleted -- only once rolled up.
   * 0 = keep raw results for ever. */
  uint64_t raw_retention_ms;
  /* Rollups (by whole hours), drop reports (by when the lost results were produced)
   * and the batch log (by arrival) older than this are deleted. 0 = keep for ever.
   * The spools' delivery counters are never deleted. */
  uint64_t rollup_retention_ms;
  uint32_t chunk_rows; /* rows per transaction [TP_STORE_MAINTAIN_CHUNK] */
  /* Called between two transactions with how long the last one held the write
   * lock; returning false ends the pass there (stats.stopped). This is where the
   * caller yields to ingest and notices shutdown. NULL = never stop. */
  bool (*between)(void *ctx, uint64_t txn_ns);
  void *ctx;
} tp_store_maintain_limits;

typedef struct tp_store_maintain_stats {
  uint64_t rolled_up;        /* raw results folded into rollups */
  uint64_t rollup_rows;      /* rollup rows (minute and hour) inserted or updated */
  uint64_t raw_deleted;      /* raw results deleted by retention */
  uint64_t rollups_deleted;  /* rollup rows deleted by retention */
  uint64_t drops_deleted;    /* drop reports deleted */
  uint64_t batches_deleted;  /* batch log rows deleted */
  uint32_t transactions;     /* write transactions committed */
  uint64_t max_txn_ns;       /* the longest of them (how long ingest could wait) */
  bool stopped;              /* `between` ended the pass before it was done */
} tp_store_maintain_stats;

/* One maintenance pass, in transactions of at most chunk_rows rows each:
 *  1. rollup: every result stored since the last pass (by its row id, so a late
 *     result lands in its own minute, whenever it arrives) is merged into its
 *     minute's and its hour's rollup rows, and the watermark -- the highest row id
 *     rolled up -- advances in the same transaction: each result is counted exactly
 *     once, and a pass that stops or fails midway loses nothing;
 *  2. retention: raw results older than raw_retention_ms and rolled up, then rollup
 *     rows, drop reports and batch-log rows older than rollup_retention_ms.
 * now_unix_ns is the clock the retentions count from (a parameter for tests).
 * Running it again with nothing new adds nothing. TP_E_STORE with a message on
 * failure (what was committed before stays, consistent); TP_E_INVAL on a read-only
 * store. */
tp_err tp_store_maintain(tp_store *store, int64_t now_unix_ns,
                         const tp_store_maintain_limits *limits, tp_store_maintain_stats *stats,
                         char *err, size_t errlen);

/* Rollups come in three spans with the same fields: a row of span s starting at t
 * holds the results started in [t, t + s) (t a multiple of s since the epoch, UTC).
 * Hour rows are the same numbers as their 60 minute rows merged, day rows (schema
 * version 9) as their 24 hours: a long window reads day rows for its whole days, hour
 * rows for the whole hours at its edges and minute rows for the ragged rest. */
typedef enum {
  TP_STORE_ROLLUP_MINUTE, /* TP_STORE_ROLLUP_MINUTE_NS */
  TP_STORE_ROLLUP_HOUR,   /* TP_STORE_ROLLUP_HOUR_NS */
  TP_STORE_ROLLUP_DAY,    /* TP_STORE_ROLLUP_DAY_NS */
} tp_store_rollup_span;

/* The length of a span, in nanoseconds. */
int64_t tp_store_rollup_span_ns(tp_store_rollup_span span);

/* Which rollup rows tp_store_scan_rollups delivers, besides their span: those
 * overlapping [since_unix_ns, until_unix_ns) -- so a window's partial first and
 * last spans come whole (align the window to the span for exact edges) -- and whose
 * fields match these patterns: shell-style globs, case-sensitive (`*` any string,
 * `?` one character, `[abc]`, `[a-z]`, `[^abc]`), NULL = any; a pattern without
 * those characters is an exact match. address_family is "ipv4", "ipv6" or "" (not
 * reported). */
typedef struct tp_store_rollup_filter {
  const char *target, *profile, *region, *agent_id, *address_family;
  /* Parts of the rows the caller does not read (TP_STORE_ROLLUP_PART_* bits; 0 =
   * every part): the store neither reads nor decodes them -- the blobs are most of a
   * scan's cost, and an SLO needs counts only. An omitted part reads as empty: classes
   * all zero, sketches and the mix NULL. */
  unsigned omit;
} tp_store_rollup_filter;

#define TP_STORE_ROLLUP_PART_CLASSES 1u
#define TP_STORE_ROLLUP_PART_HANDSHAKE 2u
#define TP_STORE_ROLLUP_PART_CONNECT 4u
#define TP_STORE_ROLLUP_PART_TOTAL 8u
#define TP_STORE_ROLLUP_PART_MIX 16u

typedef enum {
  /* target, profile, region, agent_id, address_family (byte order), then start:
   * one group's rows together, oldest first -- for aggregates per group. */
  TP_STORE_ROLLUPS_BY_GROUP,
  /* start, then the group fields: every group's row of one minute (hour) together
   * -- for time series. */
  TP_STORE_ROLLUPS_BY_MINUTE,
  /* start only, ties in whatever order the index holds them: no sort (a sort of a
   * 7-day window's hour rows is a third of a report's time) -- for aggregates that
   * group by hashing and do not depend on the order. */
  TP_STORE_ROLLUPS_BY_START,
} tp_store_rollup_order;

/* One span of one group, as the report needs it. Strings and sketches are
 * borrowed for the duration of the callback (copy or tp_sketch_merge them into
 * your own). Definitions are the report's (report.h): a "success" is exact (ok and
 * no emulation divergence); divergent successes are counted apart and feed nothing
 * else; the rates' counters and the latency sketches are over exact successes. */
typedef struct tp_store_rollup_row {
  int64_t start_unix_ns; /* started_unix_ns rounded down to the span */
  int64_t span_ns;       /* tp_store_rollup_span_ns of the span scanned */
  const char *target, *profile, *region, *agent_id, *address_family;
  uint64_t probes;     /* every result */
  uint64_t successes;  /* exact successes */
  uint64_t divergent;  /* ok only through what the emulated client never offers */
  tp_outcome_counts classes; /* every result by outcome value (ok = successes + divergent) */
  uint64_t hrr;                   /* exact successes after a HelloRetryRequest */
  uint64_t resumption_probes;     /* exact successes of mode resumption or early_data */
  uint64_t resumed;               /* ... of which resumed */
  uint64_t early_data_attempts;   /* exact successes that sent 0-RTT data */
  uint64_t early_data_accepts;    /* ... of which the server accepted it */
  uint64_t early_data_violations; /* any result: a non-safe request processed as 0-RTT */
  uint64_t emulation_checked;     /* exact successes compared with the real client's offer */
  uint64_t ocsp_stapled;          /* any result with an OCSP staple */
  tp_store_opt ocsp_max_age_seconds; /* oldest staple; unset without one */
  /* The smallest days_to_earliest_expiry of the span (unset: no chain received).
   * The latest minute's value is the current certificate's. */
  tp_store_opt min_days_to_expiry;
  uint64_t loop_lag_max_ns; /* over every result */
  uint64_t loop_lag_sum_ns; /* over every result (mean = sum / probes) */
  /* Results taken while their agent was saturated (any outcome; schema version 6:
   * 0 for spans rolled up before). Their latencies measure the agent as much as the
   * server, so they are left out of the sketches below; every other counter has them. */
  uint64_t saturated;
  /* Over exact successes that were not saturated; empty when there are none, NULL
   * only when the filter omitted them. */
  const tp_sketch *handshake_ns, *connect_ns, *total_ns;
  /* Exact successes per negotiated (version, cipher, group); NULL when the span was
   * rolled up before schema version 7 (not recorded) or omitted by the filter. Valid
   * during the callback. */
  const tp_mix *negotiated;
} tp_store_rollup_row;

typedef tp_err (*tp_store_rollup_fn)(const tp_store_rollup_row *row, void *ctx);

/* Calls fn for each rollup row of the span and filter (NULL = everything), in the
 * order asked. A row whose blobs do not decode stops the scan with TP_E_STORE and
 * says which row. Non-OK from fn stops the scan and is returned. A read-only store
 * (the report's) can scan. */
tp_err tp_store_scan_rollups(tp_store *store, tp_store_rollup_span span, int64_t since_unix_ns,
                             int64_t until_unix_ns, const tp_store_rollup_filter *filter,
                             tp_store_rollup_order order, tp_store_rollup_fn fn, void *ctx,
                             char *err, size_t errlen);

/* What the store holds for a window, so the report can choose raw rows (exact) or
 * rollups (approximate percentiles) and say which. */
typedef struct tp_store_horizon {
  /* Every result started at or after this is still a raw row: retention has only
   * deleted older ones. 0 = nothing deleted yet (raw rows cover all time). */
  int64_t raw_complete_since_unix_ns;
  tp_store_opt oldest_raw_started_unix_ns; /* unset: no raw rows */
  /* Every rollup row (either span) starting at or after this is kept, a whole hour
   * (0 = none deleted yet). */
  int64_t rollups_complete_since_unix_ns;
  tp_store_opt oldest_rollup_start_unix_ns; /* oldest minute row; unset: no rollups */
  /* Raw results stored but not rolled up yet (the next maintenance pass's work):
   * rollups lack them, raw rows have them. */
  uint64_t results_not_rolled_up;
} tp_store_horizon;

tp_err tp_store_horizon_get(tp_store *store, tp_store_horizon *out, char *err, size_t errlen);

#endif
