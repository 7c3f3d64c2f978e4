/* pusher_spool.c - results into the spools (checked against the wire contract,
 * encoded once, kept in memory while the spool cannot be written) and the next
 * lease out of them. */
#include "pusher_internal.h"

#include <stdlib.h>

#include "batch.h"
#include "validate.h"

#define FALLBACK_MAX_BYTES ((uint64_t)64 * 1024 * 1024) /* memory while the disk is full */

static void fill_identity(tp_pusher *p, tp_result_pb *w, const tp_result *r) {
  tp_result_pb_init(w, r);
  w->msg.agent_id = p->agent_id;
  w->msg.region = p->region;
}

/* Converts *slot to its wire form in w. The collector rejects a whole batch for one
 * invalid result, so each is checked here with the same rules; one that fails is
 * replaced by a minimal error result for its target (the target must not go
 * silent), and dropped only if even that fails (its identity itself is broken).
 * TP_E_VALIDATE = dropped; *slot is then freed. */
static tp_err wire_result(tp_pusher *p, tp_result **slot, tp_result_pb *w) {
  char reason[256];
  fill_identity(p, w, *slot);
  if (tp_validate_result(p->agent_id, &w->msg, reason, sizeof(reason)) == TP_E_OK)
    return TP_E_OK;
  tp_result_pb_clear(w);
  tp_result *minimal = tp_result_minimal_error(*slot, reason);
  tp_log_error(p->log, "replacing an invalid result by a minimal error result (a bug: please report it)",
               "target=%s profile=%s reason=\"%s\"", minimal->target, minimal->profile, reason);
  p->stats.invalid++;
  tp_result_free(*slot);
  *slot = minimal;
  fill_identity(p, w, minimal);
  if (tp_validate_result(p->agent_id, &w->msg, reason, sizeof(reason)) == TP_E_OK)
    return TP_E_OK;
  tp_log_error(p->log, "dropping an invalid result (its identity breaks the wire contract)",
               "target=%s reason=\"%s\"", minimal->target, reason);
  p->stats.invalid_dropped++;
  tp_result_pb_clear(w);
  tp_result_free(minimal);
  *slot = NULL;
  return TP_E_VALIDATE;
}

void tp__pusher_log_spool_trouble(tp_pusher *p, const char *what) {
  uint64_t suppressed = 0;
  if (!tp__pusher_log_allowed(&p->spool_log, uv_now(p->loop), &suppressed))
    return;
  tp_spool_stats s;
  tp_spool_get_stats(p->spool, &s);
  tp_log_error(p->log, what,
               "spool=%s io_errors=%llu lost_to_errors=%llu similar_since_last=%llu"
               " (probing continues; losses are reported to the collector)",
               tp_spool_describe(p->spool), (unsigned long long)s.io_errors,
               (unsigned long long)s.dropped_error, (unsigned long long)suppressed);
}

/* The spool cannot be written (disk full, I/O error): keep the result in memory,
 * under a spool identity of its own, until the collector takes it; what a
 * bounded memory spool must drop is counted and reported like any drop. */
static void keep_in_memory(tp_pusher *p, const uint8_t *record, size_t len, int64_t produced) {
  tp__pusher_log_spool_trouble(p, "cannot write a result to the spool; keeping results in memory");
  if (p->fallback == NULL) {
    if (tp_spool_open_memory(FALLBACK_MAX_BYTES, &p->fallback) != TP_E_OK) {
      tp_spool_count_drop(p->spool, TP_SPOOL_DROP_ERROR, 0, produced);
      return;
    }
  }
  if (tp_spool_append(p->fallback, record, len, produced, NULL) != TP_E_OK)
    tp_spool_count_drop(p->spool, TP_SPOOL_DROP_ERROR, 0, produced);
}

uint64_t tp__pusher_unsent(const tp_pusher *p) {
  tp_spool_stats s;
  tp_spool_get_stats(p->spool, &s);
  uint64_t n = s.records;
  if (p->fallback != NULL) {
    tp_spool_get_stats(p->fallback, &s);
    n += s.records;
  }
  return n;
}

/* Memory first while it holds anything: it is the copy a stop would lose. Results
 * the collector would refuse as too old go first, counted. */
void tp__pusher_next_lease(tp_pusher *p) {
  tp_spool *order[2] = {p->fallback, p->spool};
  int64_t oldest = tp__pusher_now_ns() - (int64_t)p->max_result_age_ms * 1000000;
  for (size_t i = 0; i < 2 && p->lease == NULL; i++) {
    if (order[i] == NULL)
      continue;
    tp_spool_stats before, after;
    tp_spool_get_stats(order[i], &before);
    if (tp_spool_expire(order[i], oldest) != TP_E_OK)
      tp__pusher_log_spool_trouble(p, "cannot drop results too old to send");
    tp_spool_get_stats(order[i], &after);
    if (after.dropped_too_old != before.dropped_too_old)
      tp_log_warn(p->log, "dropped results too old for the collector (reported as too_old)",
                  "results=%llu max_result_age_ms=%llu",
                  (unsigned long long)(after.dropped_too_old - before.dropped_too_old),
                  (unsigned long long)p->max_result_age_ms);
    size_t max_records = p->drops_only_next ? 0 : p->cap_records;
    if (tp_spool_lease_next(order[i], max_records, p->max_batch_bytes, &p->lease) != TP_E_OK) {
      tp__pusher_log_spool_trouble(p, "cannot lease from the spool (reading it, or deleting a batch already delivered, failed)");
      p->lease = NULL;
      continue;
    }
    p->lease_spool = order[i];
  }
  p->drops_only_next = false;
}

void tp_pusher_submit(tp_pusher *p, tp_result *r) {
  tp_result_pb w;
  int64_t produced = r->started_unix_ns > 0 ? r->started_unix_ns : tp__pusher_now_ns();
  if (wire_result(p, &r, &w) != TP_E_OK) {
    tp_spool_count_drop(p->spool, TP_SPOOL_DROP_INVALID, 0, produced);
    return;
  }
  uint8_t *record = NULL;
  size_t len = 0;
  tp_batch_encode_record(&w.msg, &record, &len);
  tp_result_pb_clear(&w);
  tp_result_free(r);
  uint64_t full_before = p->stats.spool.dropped_full;
  if (tp_spool_append(p->spool, record, len, produced, NULL) != TP_E_OK)
    keep_in_memory(p, record, len, produced);
  free(record);
  tp_spool_get_stats(p->spool, &p->stats.spool);
  if (p->stats.spool.dropped_full != full_before) {
    uint64_t suppressed = 0;
    if (tp__pusher_log_allowed(&p->spool_log, uv_now(p->loop), &suppressed))
      tp_log_warn(p->log, "spool full: dropped the oldest results (reported to the collector)",
                  "spool=%s dropped_total=%llu", tp_spool_describe(p->spool),
                  (unsigned long long)p->stats.spool.dropped_full);
  }
  if (p->stats.spool.records >= p->batch_size)
    tp__pusher_maybe_push(p);
}

