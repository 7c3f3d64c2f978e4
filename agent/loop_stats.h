/* loop_stats.h - what one probe loop reports about its own health for the agent's
 * /metrics: probes in flight and queued, how late due probes started against their
 * plan, probes skipped. Written by the loop's scheduler on its worker thread, read
 * by the main loop when a scrape comes: the only state the metrics share across
 * threads, so it carries its own mutex (taken for a few stores per probe). */
#ifndef TP_LOOP_STATS_H
#define TP_LOOP_STATS_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "probe.h"
#include "tp_error.h"

/* Lateness buckets, seconds: a timer on an idle loop fires within a millisecond; a
 * saturated loop or a stalled host shows up in the upper ones. */
#define TP_LOOP_LATE_BUCKETS 8
extern const double tp_loop_late_bounds[TP_LOOP_LATE_BUCKETS];
extern const char *const tp_loop_late_text[TP_LOOP_LATE_BUCKETS];

typedef struct tp_loop_numbers {
  unsigned in_flight, pending; /* the engine's, after the last submit or finish */
  uint64_t started;            /* probes submitted (due and not skipped) */
  uint64_t skipped;            /* due, but the previous one still ran or the queue was full */
  uint64_t late[TP_LOOP_LATE_BUCKETS + 1]; /* due probes by lateness, not cumulative */
  uint64_t late_sum_ns;
  uint64_t saturated;       /* results marked as taken under saturation (saturation.h) */
  unsigned in_flight_limit; /* the adaptive in-flight limit after the last result; 0 = none */
  tp_probe_cache_stats caches; /* the engine's, after the last result */
} tp_loop_numbers;

typedef struct tp_loop_stats {
  uv_mutex_t mu;
  tp_loop_numbers n; /* under mu */
} tp_loop_stats;

tp_err tp_loop_stats_init(tp_loop_stats *s);
void tp_loop_stats_destroy(tp_loop_stats *s);
/* A due probe's timer fired late_ns after its planned time. */
void tp_loop_stats_due(tp_loop_stats *s, uint64_t late_ns);
void tp_loop_stats_started(tp_loop_stats *s, unsigned in_flight, unsigned pending);
void tp_loop_stats_skipped(tp_loop_stats *s);
void tp_loop_stats_load(tp_loop_stats *s, unsigned in_flight, unsigned pending);
/* A result was judged: saturated or not, and the in-flight limit now. */
void tp_loop_stats_judged(tp_loop_stats *s, bool saturated, unsigned in_flight_limit);
void tp_loop_stats_caches(tp_loop_stats *s, const tp_probe_cache_stats *caches);
/* A consistent copy, from any thread. */
void tp_loop_stats_read(tp_loop_stats *s, tp_loop_numbers *out);

#endif
