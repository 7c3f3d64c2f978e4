/* spool.c - the spool's policy, the same for every backend: the size bound
 * (drop oldest, counted), losses counted until they can be reported, one lease at
 * a time, and the counters. */
#include "spool_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* When full, free at least this fraction of the bound at once: one drop report
 * and one delete per burst instead of one per appended result. */
#define DROP_CHUNK_DIVISOR 64

void tp__spool_init(tp_spool *s, const tp_spool_ops *ops, uint64_t max_bytes) {
  s->ops = ops;
  s->max_bytes = max_bytes < TP_SPOOL_MIN_MAX_BYTES ? TP_SPOOL_MIN_MAX_BYTES : max_bytes;
}

void tp__spool_free_records(tp_spool_record *records, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(records[i].data);
  free(records);
}

void tp_spool_lease_free(tp_spool_lease *lease) {
  if (lease == NULL)
    return;
  tp__spool_free_records(lease->records, lease->n_records);
  free(lease->drops);
  free(lease);
}

void tp_spool_close(tp_spool *s) {
  if (s == NULL)
    return;
  tp_spool_lease_free(s->delivered);
  s->delivered = NULL;
  s->ops->close(s);
}

/* Retries deleting a delivered lease. Until it is gone the spool takes no record
 * and cuts no lease: a new lease would re-send what the collector holds (an ack
 * that fails, a re-send, again: a loop against the collector), and the records it
 * protects from the size bound must not be reported lost. */
static tp_err settle_delivered(tp_spool *s) {
  if (s->delivered == NULL)
    return TP_E_OK;
  if (s->ops->ack(s, s->delivered) != TP_E_OK) {
    s->stats.io_errors++;
    return TP_E_IO;
  }
  tp_spool_lease_free(s->delivered);
  s->delivered = NULL;
  s->lease_last_seq = 0;
  return TP_E_OK;
}

uint64_t tp_spool_id(const tp_spool *s) { return s->id; }

const char *tp_spool_describe(const tp_spool *s) { return s->description; }

void tp_spool_get_stats(const tp_spool *s, tp_spool_stats *stats) {
  *stats = s->stats;
  stats->records = s->records;
  stats->bytes = s->bytes;
}

static void pending_add(tp_spool_pending *p, int64_t produced_unix_ns) {
  if (p->count == 0 || produced_unix_ns < p->first_unix_ns)
    p->first_unix_ns = produced_unix_ns;
  if (p->count == 0 || produced_unix_ns > p->last_unix_ns)
    p->last_unix_ns = produced_unix_ns;
  p->count++;
}

/* Writes counted losses as a drop report; they stay pending if that fails. */
static void report_pending(tp_spool *s, tp_spool_pending *p, const char *reason) {
  if (p->count == 0)
    return;
  tp_spool_drop d = {.count = p->count,
                     .reason = reason,
                     .first_unix_ns = p->first_unix_ns,
                     .last_unix_ns = p->last_unix_ns};
  if (s->ops->add_drop(s, &d) != TP_E_OK) {
    s->stats.io_errors++;
    return;
  }
  *p = (tp_spool_pending){0};
}

static void report_all_pending(tp_spool *s) {
  report_pending(s, &s->pending_error, TP_SPOOL_DROP_ERROR);
  report_pending(s, &s->pending_invalid, TP_SPOOL_DROP_INVALID);
}

void tp_spool_count_drop(tp_spool *s, const char *reason, uint64_t seq, int64_t produced_unix_ns) {
  bool invalid = strcmp(reason, TP_SPOOL_DROP_INVALID) == 0;
  if (invalid)
    s->stats.dropped_invalid++;
  else
    s->stats.dropped_error++;
  if (seq != 0) {
    /* Numbered: reported with its number, so the collector does not also count it
     * as missing. Should that write fail, it is still counted, unnumbered. */
    tp_spool_drop d = {.count = 1,
                       .reason = invalid ? TP_SPOOL_DROP_INVALID : TP_SPOOL_DROP_ERROR,
                       .first_seq = seq,
                       .last_seq = seq,
                       .first_unix_ns = produced_unix_ns,
                       .last_unix_ns = produced_unix_ns};
    if (s->ops->add_drop(s, &d) == TP_E_OK)
      return;
    s->stats.io_errors++;
  }
  pending_add(invalid ? &s->pending_invalid : &s->pending_error, produced_unix_ns);
  report_all_pending(s);
}

/* Makes room for `len` more bytes by dropping the oldest records outside the
 * lease, each contiguous run deleted and reported as one spool_full drop in the
 * same transaction (a crash cannot lose the report). If only leased records are
 * left the bound is exceeded by at most that lease, until its ack. */
static tp_err make_room(tp_spool *s, size_t len) {
  if (s->bytes + len <= s->max_bytes)
    return TP_E_OK;
  uint64_t need = s->bytes + len - s->max_bytes;
  uint64_t chunk = s->max_bytes / DROP_CHUNK_DIVISOR;
  if (need < chunk)
    need = chunk;
  while (need > 0) {
    tp_spool_drop run = {0};
    uint64_t freed = 0;
    tp_err rc = s->ops->discard_oldest(s, s->lease_last_seq, need, INT64_MAX, TP_SPOOL_DROP_FULL,
                                       &run, &freed);
    if (rc != TP_E_OK)
      return rc; /* nothing deleted */
    if (run.count == 0)
      break; /* nothing outside the lease */
    s->records -= run.count < s->records ? run.count : s->records;
    s->bytes -= freed < s->bytes ? freed : s->bytes;
    s->stats.dropped_full += run.count;
    need = freed >= need ? 0 : need - freed;
  }
  return TP_E_OK;
}

tp_err tp_spool_append(tp_spool *s, const uint8_t *data, size_t len, int64_t produced_unix_ns,
                       uint64_t *seq) {
  uint64_t assigned = 0;
  tp_err rc = settle_delivered(s);
  if (rc != TP_E_OK)
    return rc; /* the caller keeps it elsewhere, as for a failed write */
  report_all_pending(s);
  rc = make_room(s, len);
  if (rc == TP_E_OK)
    rc = s->ops->append(s, data, len, produced_unix_ns, &assigned);
  if (rc != TP_E_OK) {
    s->stats.io_errors++; /* the caller keeps it elsewhere or counts the drop */
    return TP_E_IO;
  }
  s->records++;
  s->bytes += len;
  if (seq != NULL)
    *seq = assigned;
  return TP_E_OK;
}

tp_err tp_spool_lease_next(tp_spool *s, size_t max_records, size_t max_bytes, tp_spool_lease **out) {
  *out = NULL;
  if (s->leased)
    return TP_E_INVAL; /* one lease at a time: a caller bug */
  tp_err rc = settle_delivered(s);
  if (rc != TP_E_OK)
    return rc;
  report_all_pending(s);
  rc = s->ops->lease(s, max_records, max_bytes, out);
  if (rc != TP_E_OK) {
    s->stats.io_errors++;
    return rc;
  }
  if (*out == NULL)
    return TP_E_OK;
  s->leased = true;
  s->lease_last_seq = (*out)->n_records ? (*out)->records[(*out)->n_records - 1].seq : 0;
  return TP_E_OK;
}

tp_err tp_spool_ack(tp_spool *s, tp_spool_lease *lease) {
  tp_err rc = s->ops->ack(s, lease);
  /* Delivered either way: no longer waiting. */
  s->records -= lease->n_records < s->records ? lease->n_records : s->records;
  s->bytes -= lease->bytes < s->bytes ? lease->bytes : s->bytes;
  s->leased = false;
  if (rc != TP_E_OK) {
    /* Still persisted: kept (with lease_last_seq guarding it) until its deletion
     * succeeds; see settle_delivered. */
    s->stats.io_errors++;
    s->delivered = lease;
    return rc;
  }
  s->lease_last_seq = 0;
  tp_spool_lease_free(lease);
  return TP_E_OK;
}

void tp_spool_nack(tp_spool *s, tp_spool_lease *lease, bool keep_batch) {
  s->leased = false;
  if (!keep_batch) {
    if (s->ops->dissolve(s, lease) == TP_E_OK)
      s->lease_last_seq = 0;
    else
      s->stats.io_errors++; /* the same batch is offered again: only less flexible */
  }
  tp_spool_lease_free(lease);
}

tp_err tp_spool_replace(tp_spool *s, uint64_t seq, const uint8_t *data, size_t len) {
  size_t old_len = 0;
  tp_err rc = s->ops->replace(s, seq, data, len, &old_len);
  if (rc != TP_E_OK) {
    s->stats.io_errors++;
    return rc;
  }
  s->bytes = s->bytes - (old_len < s->bytes ? old_len : s->bytes) + len;
  return TP_E_OK;
}

tp_err tp_spool_expire(tp_spool *s, int64_t before_unix_ns) {
  for (;;) {
    tp_spool_drop run = {0};
    uint64_t freed = 0;
    tp_err rc = s->ops->discard_oldest(s, s->lease_last_seq, UINT64_MAX, before_unix_ns,
                                       TP_SPOOL_DROP_TOO_OLD, &run, &freed);
    if (rc != TP_E_OK) {
      s->stats.io_errors++;
      return rc;
    }
    if (run.count == 0)
      return TP_E_OK;
    s->records -= run.count < s->records ? run.count : s->records;
    s->bytes -= freed < s->bytes ? freed : s->bytes;
    s->stats.dropped_too_old += run.count;
  }
}

tp_err tp_spool_forfeit(tp_spool *s, uint64_t seq, const char *reason) {
  size_t len = 0;
  if (s->leased)
    return TP_E_INVAL; /* release the lease first: its drop reports must survive */
  tp_err rc = s->ops->forfeit(s, seq, reason, &len);
  if (rc != TP_E_OK) {
    if (rc != TP_E_NOTFOUND)
      s->stats.io_errors++;
    return rc;
  }
  s->records -= s->records > 0 ? 1 : 0;
  s->bytes -= len < s->bytes ? len : s->bytes;
  if (strcmp(reason, TP_SPOOL_DROP_INVALID) == 0)
    s->stats.dropped_invalid++;
  else
    s->stats.dropped_error++;
  return TP_E_OK;
}
