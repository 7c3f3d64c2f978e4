/* spool_internal.h - for spool backends only. spool.c owns the policy (the size
 * bound, counting losses, one lease at a time); a backend stores records, drop
 * reports and the lease, and answers the primitive operations below. */
#ifndef TP_SPOOL_INTERNAL_H
#define TP_SPOOL_INTERNAL_H
#include "spool.h"

typedef struct tp_spool_ops {
  /* Stores a record under the next number (never reused). */
  tp_err (*append)(tp_spool *s, const uint8_t *data, size_t len, int64_t produced_unix_ns,
                   uint64_t *seq);
  /* In one transaction: deletes the oldest records numbered above after_seq, one
   * contiguous run of numbers produced before before_ns, until at least `need`
   * payload bytes are freed or the run ends, and records that run as a drop report
   * of `reason` (as add_drop). Fills *run (count, seqs, times; count 0 = nothing to
   * delete) and *freed. On failure nothing is deleted. */
  tp_err (*discard_oldest)(tp_spool *s, uint64_t after_seq, uint64_t need, int64_t before_ns,
                           const char *reason, tp_spool_drop *run, uint64_t *freed);
  /* In one transaction: deletes record seq (not in a lease) and records it as a
   * numbered drop report of `reason`; *len = its bytes. TP_E_NOTFOUND if absent. */
  tp_err (*forfeit)(tp_spool *s, uint64_t seq, const char *reason, size_t *len);
  /* Adds to the pending drop reports, merged into the newest pending one when
   * it has the same reason and continues its numbers. */
  tp_err (*add_drop)(tp_spool *s, const tp_spool_drop *drop);
  /* The outstanding lease (*resumed = true), else a new one as tp_spool_lease
   * describes. *out NULL when there is nothing to send. */
  tp_err (*lease)(tp_spool *s, size_t max_records, size_t max_bytes, tp_spool_lease **out);
  tp_err (*ack)(tp_spool *s, const tp_spool_lease *lease);
  tp_err (*dissolve)(tp_spool *s, const tp_spool_lease *lease);
  /* *old_len: the replaced record's length (for the byte count). */
  tp_err (*replace)(tp_spool *s, uint64_t seq, const uint8_t *data, size_t len, size_t *old_len);
  void (*close)(tp_spool *s); /* frees the backend struct too */
} tp_spool_ops;

/* Losses not yet written as a drop report (the write itself may be what fails). */
typedef struct tp_spool_pending {
  uint64_t count;
  int64_t first_unix_ns, last_unix_ns;
} tp_spool_pending;

struct tp_spool {
  const tp_spool_ops *ops;
  uint64_t id;
  uint64_t max_bytes;
  uint64_t records, bytes;     /* maintained by spool.c from the backend's answers */
  /* Highest number in the persisted lease (0 = none): records up to it are never
   * dropped, since that batch may be on its way or stored already. */
  uint64_t lease_last_seq;
  bool leased;                 /* a lease is handed out to the caller (one at a time) */
  /* Acknowledged by the collector, but deleting it failed (disk full): it is not
   * waiting any more and this process never sends it again; its deletion is
   * retried before the next append or lease, which fail until it succeeds (a
   * restart re-sends it as the same batch, which the collector recognises). */
  tp_spool_lease *delivered;
  tp_spool_pending pending_error, pending_invalid;
  tp_spool_stats stats;
  char description[160];
};

/* Called by a backend's open once its struct is filled (id, counts, lease). */
void tp__spool_init(tp_spool *s, const tp_spool_ops *ops, uint64_t max_bytes);
void tp__spool_free_records(tp_spool_record *records, size_t n);

#endif
