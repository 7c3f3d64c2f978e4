/* spool.h - the agent's results waiting for the collector, kept until it
 * acknowledges them: append -> lease -> ack (or nack).
 *
 * Records are opaque bytes (a serialized ProbeResult without its result_seq):
 * the spool numbers them (result_seq, strictly increasing from 1 and never
 * reused, also across restarts), hands out the oldest as a lease with a batch
 * number, and deletes them only when that lease is acknowledged. A crash between
 * lease and ack loses nothing: the lease (batch number and sequence range) is
 * persisted with it and offered again, unchanged, by the first lease after the
 * restart, so the collector recognises the re-send.
 *
 * Bounded by bytes: an append that would exceed the bound drops the oldest
 * records not in the lease, and counts them in a drop report (reason
 * "spool_full"); a record that cannot be written (disk full, I/O error) is
 * counted as "spool_error". Drop reports are part of the next lease, so loss
 * reaches the collector like results do.
 *
 * Two implementations: SQLite (durable, the default) and memory (tests,
 * `spool: memory`: the same semantics, lost with the process). Single-threaded:
 * the agent's main loop owns its spool. */
#ifndef TP_SPOOL_H
#define TP_SPOOL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tp_error.h"

typedef struct tp_spool tp_spool;

#define TP_SPOOL_DEFAULT_MAX_BYTES ((uint64_t)256 * 1024 * 1024)
#define TP_SPOOL_MIN_MAX_BYTES ((uint64_t)64 * 1024)
/* Drop reports per lease (the wire allows 1000 per batch). */
#define TP_SPOOL_MAX_LEASE_DROPS 100

/* DropReport.reason values (tlsprobe.proto). */
#define TP_SPOOL_DROP_FULL "spool_full"
#define TP_SPOOL_DROP_ERROR "spool_error"
#define TP_SPOOL_DROP_INVALID "invalid_result"
#define TP_SPOOL_DROP_TOO_OLD "too_old"

typedef struct tp_spool_record {
  uint64_t seq;
  int64_t produced_unix_ns;
  uint8_t *data; /* owned by the lease */
  size_t len;
} tp_spool_record;

typedef struct tp_spool_drop {
  uint64_t drop_id;
  uint64_t count;
  const char *reason; /* one of TP_SPOOL_DROP_* (static) */
  uint64_t first_seq, last_seq; /* 0/0: the lost results were never numbered */
  int64_t first_unix_ns, last_unix_ns;
} tp_spool_drop;

/* The oldest records and pending drop reports, under one batch number. */
typedef struct tp_spool_lease {
  uint64_t batch_seq;
  tp_spool_record *records;
  size_t n_records;
  tp_spool_drop *drops;
  size_t n_drops;
  size_t bytes; /* sum of the records' len */
} tp_spool_lease;

typedef struct tp_spool_stats {
  uint64_t records; /* waiting, leased or not */
  uint64_t bytes;   /* their payload bytes */
  uint64_t dropped_full;    /* results dropped by the size bound (since open) */
  uint64_t dropped_error;   /* results lost to write errors (since open) */
  uint64_t dropped_invalid; /* results the producer could not encode (since open) */
  uint64_t dropped_too_old; /* results older than the collector accepts (since open) */
  uint64_t io_errors;       /* failed spool operations (since open) */
} tp_spool_stats;

/* Opens (creating if missing) the spool file at path. max_bytes bounds the
 * records' payload (the file itself is a little larger: SQLite pages, indexes).
 * TP_E_CONFIG: another process has it open; TP_E_IO: it cannot be read or written. */
tp_err tp_spool_open_sqlite(const char *path, uint64_t max_bytes, tp_spool **out, char *err,
                            size_t errlen);
tp_err tp_spool_open_memory(uint64_t max_bytes, tp_spool **out);
void tp_spool_close(tp_spool *spool);

/* Random when the spool was created; the wire's ResultBatch.instance_id. */
uint64_t tp_spool_id(const tp_spool *spool);
/* "sqlite:PATH" or "memory", for logs. */
const char *tp_spool_describe(const tp_spool *spool);

/* Copies the record in and numbers it (*seq, may be NULL). TP_E_IO when it could
 * not be written (disk full, I/O error): nothing is numbered, and the caller keeps
 * the record elsewhere or counts it lost with tp_spool_count_drop(spool_error). */
tp_err tp_spool_append(tp_spool *spool, const uint8_t *data, size_t len, int64_t produced_unix_ns,
                       uint64_t *seq);
/* Counts one lost result (reason TP_SPOOL_DROP_*): seq is its number, or 0 when it
 * never got one (it never reached a spool). */
void tp_spool_count_drop(tp_spool *spool, const char *reason, uint64_t seq,
                         int64_t produced_unix_ns);

/* The persisted lease if one is outstanding (a restart, or after a nack),
 * else a new one of the oldest records: at most max_records and max_bytes (but
 * at least one record, whatever its size, unless max_records is 0: drop reports
 * only), and the pending drop reports (at most TP_SPOOL_MAX_LEASE_DROPS).
 * *out = NULL when there is nothing to send. One lease at a time. */
tp_err tp_spool_lease_next(tp_spool *spool, size_t max_records, size_t max_bytes,
                      tp_spool_lease **out);
/* The collector stored the lease: delete its records and drop reports. Takes it.
 * TP_E_IO: the deletion failed (disk full); the records count as delivered (not
 * waiting, never leased again by this process) and the deletion is retried by the
 * next append or lease, which fail with TP_E_IO until it succeeds. A restart before
 * that re-sends them as the same batch. */
tp_err tp_spool_ack(tp_spool *spool, tp_spool_lease *lease);
/* Not delivered; keep everything. keep_batch: the next lease re-sends the same
 * batch (a retry); false: the lease is dissolved so the next one may be cut
 * differently (smaller, after a 413). Frees it. */
void tp_spool_nack(tp_spool *spool, tp_spool_lease *lease, bool keep_batch);
/* Drops (and reports as too_old) the waiting records produced before
 * before_unix_ns that are not in the lease: the collector would refuse them, and
 * sending them only to be refused one by one would hold up everything behind. */
tp_err tp_spool_expire(tp_spool *spool, int64_t before_unix_ns);
/* Gives up one waiting record that the collector refuses: deletes it and reports it
 * lost under its number (reason TP_SPOOL_DROP_*), in one transaction. No lease may be
 * out (nack it first, so the drop reports it carried are kept). */
tp_err tp_spool_forfeit(tp_spool *spool, uint64_t seq, const char *reason);
/* Replaces a waiting record's bytes (a result too large for the collector,
 * replaced by a minimal error result under the same number). */
tp_err tp_spool_replace(tp_spool *spool, uint64_t seq, const uint8_t *data, size_t len);

void tp_spool_get_stats(const tp_spool *spool, tp_spool_stats *stats);
void tp_spool_lease_free(tp_spool_lease *lease);

#endif
