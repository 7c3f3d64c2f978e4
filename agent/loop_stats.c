/* loop_stats.c - one probe loop's health numbers behind a mutex (see loop_stats.h). */
#include "loop_stats.h"

#include <string.h>

const double tp_loop_late_bounds[TP_LOOP_LATE_BUCKETS] = {0.001, 0.005, 0.01, 0.05,
                                                          0.1,   0.5,   1,    5};
const char *const tp_loop_late_text[TP_LOOP_LATE_BUCKETS] = {"0.001", "0.005", "0.01", "0.05",
                                                             "0.1",   "0.5",   "1",    "5"};
static const uint64_t LATE_NS[TP_LOOP_LATE_BUCKETS] = {1000000,   5000000,   10000000,
                                                       50000000,  100000000, 500000000,
                                                       1000000000, 5000000000};

tp_err tp_loop_stats_init(tp_loop_stats *s) {
  memset(&s->n, 0, sizeof(s->n));
  return uv_mutex_init(&s->mu) == 0 ? TP_E_OK : TP_E_NOMEM;
}

void tp_loop_stats_destroy(tp_loop_stats *s) {
  uv_mutex_destroy(&s->mu);
}

void tp_loop_stats_due(tp_loop_stats *s, uint64_t late_ns) {
  size_t b = 0;
  while (b < TP_LOOP_LATE_BUCKETS && late_ns > LATE_NS[b])
    b++;
  uv_mutex_lock(&s->mu);
  s->n.late[b]++;
  s->n.late_sum_ns += late_ns;
  uv_mutex_unlock(&s->mu);
}

void tp_loop_stats_started(tp_loop_stats *s, unsigned in_flight, unsigned pending) {
  uv_mutex_lock(&s->mu);
  s->n.started++;
  s->n.in_flight = in_flight;
  s->n.pending = pending;
  uv_mutex_unlock(&s->mu);
}

void tp_loop_stats_skipped(tp_loop_stats *s) {
  uv_mutex_lock(&s->mu);
  s->n.skipped++;
  uv_mutex_unlock(&s->mu);
}

void tp_loop_stats_load(tp_loop_stats *s, unsigned in_flight, unsigned pending) {
  uv_mutex_lock(&s->mu);
  s->n.in_flight = in_flight;
  s->n.pending = pending;
  uv_mutex_unlock(&s->mu);
}

void tp_loop_stats_judged(tp_loop_stats *s, bool saturated, unsigned in_flight_limit) {
  uv_mutex_lock(&s->mu);
  if (saturated)
    s->n.saturated++;
  s->n.in_flight_limit = in_flight_limit;
  uv_mutex_unlock(&s->mu);
}

void tp_loop_stats_caches(tp_loop_stats *s, const tp_probe_cache_stats *caches) {
  uv_mutex_lock(&s->mu);
  s->n.caches = *caches;
  uv_mutex_unlock(&s->mu);
}

void tp_loop_stats_read(tp_loop_stats *s, tp_loop_numbers *out) {
  uv_mutex_lock(&s->mu);
  *out = s->n;
  uv_mutex_unlock(&s->mu);
}
