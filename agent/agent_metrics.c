/* agent_metrics.c - the agent's /metrics text from a snapshot (see agent_metrics.h). */
#include "agent_metrics.h"

#include <stdio.h>

#include "outcome.h"
#include "spool.h"
#include "tp_prom.h"

static void info(tp_prom_writer *w, const tp_agent_metrics_snapshot *s) {
  tp_prom_family(w, "tlsprobe_agent_info", "gauge",
                 "Always 1: the agent's identity, version and spool (labels).");
  tp_prom_label l[5] = {{"agent", s->agent_id},
                        {"region", s->region},
                        {"version", s->version},
                        {"spool", s->spool},
                        {"spool_durable", s->spool_durable ? "true" : "false"}};
  tp_prom_u64(w, "tlsprobe_agent_info", l, 5, 1);
}

static uint64_t in_flight(const tp_loop_numbers *n) {
  return n->in_flight;
}
static uint64_t pending(const tp_loop_numbers *n) {
  return n->pending;
}
static uint64_t started(const tp_loop_numbers *n) {
  return n->started;
}
static uint64_t skipped(const tp_loop_numbers *n) {
  return n->skipped;
}
static uint64_t saturated(const tp_loop_numbers *n) {
  return n->saturated;
}
static uint64_t in_flight_limit(const tp_loop_numbers *n) {
  return n->in_flight_limit;
}

/* One family with one sample per probe loop. */
static void per_loop(tp_prom_writer *w, const tp_agent_metrics_snapshot *s, const char *name,
                     const char *type, const char *help, uint64_t (*get)(const tp_loop_numbers *)) {
  char loop[16];
  tp_prom_label l[1] = {{"loop", loop}};
  tp_prom_family(w, name, type, help);
  for (unsigned i = 0; i < s->loops; i++) {
    snprintf(loop, sizeof(loop), "%u", i);
    tp_prom_u64(w, name, l, 1, get(&s->loop[i]));
  }
}

static void loops(tp_prom_writer *w, const tp_agent_metrics_snapshot *s) {
  per_loop(w, s, "tlsprobe_agent_probes_in_flight", "gauge",
           "Probes running on the loop (limits.max_in_flight bounds them).", in_flight);
  per_loop(w, s, "tlsprobe_agent_probes_pending", "gauge",
           "Probes due but waiting for a free slot on the loop (limits.max_pending bounds "
           "them); their clocks start when they start.",
           pending);
  per_loop(w, s, "tlsprobe_agent_probes_started_total", "counter",
           "Due probes handed to the loop's engine.", started);
  per_loop(w, s, "tlsprobe_agent_probes_skipped_total", "counter",
           "Due probes not run: the series' previous probe was still running, or the pending "
           "queue was full.",
           skipped);
  per_loop(w, s, "tlsprobe_agent_saturated_results_total", "counter",
           "Results taken while the loop was saturated (loop lag, lateness or CPU wait past "
           "saturation.*): their timings measure the agent too.",
           saturated);
  per_loop(w, s, "tlsprobe_agent_in_flight_limit", "gauge",
           "The loop's adaptive in-flight limit (saturation.adaptive), between "
           "saturation.min_in_flight and limits.max_in_flight; 0 before the first result.",
           in_flight_limit);
  tp_prom_family(w, "tlsprobe_agent_probe_slots", "gauge",
                 "limits.max_in_flight and limits.max_pending, per loop.");
  tp_prom_label kind_in_flight[1] = {{"kind", "in_flight"}};
  tp_prom_u64(w, "tlsprobe_agent_probe_slots", kind_in_flight, 1, s->max_in_flight);
  tp_prom_label kind_pending[1] = {{"kind", "pending"}};
  tp_prom_u64(w, "tlsprobe_agent_probe_slots", kind_pending, 1, s->max_pending);

  static const tp_prom_buckets late = {tp_loop_late_bounds, tp_loop_late_text,
                                       TP_LOOP_LATE_BUCKETS};
  static const char LATE[] = "tlsprobe_agent_schedule_lateness_seconds";
  tp_prom_family(w, LATE, "histogram",
                 "How late each due probe's timer fired against its planned time (a busy or "
                 "stalled loop); each result carries its own lateness including the wait for a "
                 "slot (tlsprobe_agent_probes_pending).");
  char loop[16];
  tp_prom_label l[1] = {{"loop", loop}};
  for (unsigned i = 0; i < s->loops; i++) {
    snprintf(loop, sizeof(loop), "%u", i);
    tp_prom_histogram(w, LATE, l, 1, &late, s->loop[i].late, (double)s->loop[i].late_sum_ns / 1e9);
  }
}

/* The engine's chain-verification cache (docs/internals/engine-caches.md): a hit
 * skipped the chain's signature checks; a recheck was cached but verified again. */
static void caches(tp_prom_writer *w, const tp_agent_metrics_snapshot *s) {
  static const char VERIFY[] = "tlsprobe_agent_verify_cache_total";
  tp_prom_family(w, VERIFY, "counter",
                 "Chains verified per loop: from the cache (hit), by GnuTLS because not cached "
                 "(miss) or by GnuTLS although cached (recheck: validity window, staple, age).");
  char loop[16];
  for (unsigned i = 0; i < s->loops; i++) {
    snprintf(loop, sizeof(loop), "%u", i);
    const tp_probe_cache_stats *c = &s->loop[i].caches;
    const struct {
      const char *result;
      uint64_t n;
    } rows[] = {{"hit", c->verify_hits}, {"miss", c->verify_misses}, {"recheck", c->verify_rechecks}};
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
      tp_prom_label l[2] = {{"loop", loop}, {"result", rows[r].result}};
      tp_prom_u64(w, VERIFY, l, 2, rows[r].n);
    }
  }
  static const char ENTRIES[] = "tlsprobe_agent_cache_entries";
  tp_prom_family(w, ENTRIES, "gauge",
                 "Entries held per loop by the engine's caches (verify: chains that verified; "
                 "facts: certificates parsed), each bounded.");
  for (unsigned i = 0; i < s->loops; i++) {
    snprintf(loop, sizeof(loop), "%u", i);
    tp_prom_label lv[2] = {{"loop", loop}, {"cache", "verify"}};
    tp_prom_u64(w, ENTRIES, lv, 2, s->loop[i].caches.verify_entries);
    tp_prom_label lf[2] = {{"loop", loop}, {"cache", "facts"}};
    tp_prom_u64(w, ENTRIES, lf, 2, s->loop[i].caches.facts_entries);
  }
}

static void results(tp_prom_writer *w, const tp_agent_metrics_snapshot *s) {
  static const char NAME[] = "tlsprobe_agent_results_total";
  tp_prom_family(w, NAME, "counter",
                 "Results the agent's probes produced, by result: ok, divergent (a success only "
                 "through what the emulated client never offers) or the error class.");
  for (int i = 0; i < TP_AGENT_METRICS_OUTCOMES; i++) {
    const char *name = i == TP_AGENT_METRICS_DIVERGENT ? "divergent" : tp_outcome_name(i);
    if (name == NULL)
      continue;
    tp_prom_label l[1] = {{"result", name}};
    tp_prom_u64(w, NAME, l, 1, s->results[i]);
  }
}

static void spool(tp_prom_writer *w, const tp_agent_metrics_snapshot *s) {
  const tp_spool_stats *st = &s->push.spool;
  tp_prom_family(w, "tlsprobe_agent_spool_records", "gauge",
                 "Results waiting in the spool for the collector's acknowledgement.");
  tp_prom_u64(w, "tlsprobe_agent_spool_records", NULL, 0, st->records);
  tp_prom_family(w, "tlsprobe_agent_spool_bytes", "gauge", "Their payload bytes.");
  tp_prom_u64(w, "tlsprobe_agent_spool_bytes", NULL, 0, st->bytes);
  tp_prom_family(w, "tlsprobe_agent_spool_limit_bytes", "gauge",
                 "spool.max_bytes: beyond it the oldest results are dropped (spool_full).");
  tp_prom_u64(w, "tlsprobe_agent_spool_limit_bytes", NULL, 0, s->spool_max_bytes);
  tp_prom_family(w, "tlsprobe_agent_unsent_results", "gauge",
                 "Results not yet acknowledged, in the spool and in memory (a spool that cannot "
                 "be written).");
  tp_prom_u64(w, "tlsprobe_agent_unsent_results", NULL, 0, s->push.unsent);
  tp_prom_family(w, "tlsprobe_agent_memory_results", "gauge",
                 "Of those, kept in memory because the spool file could not be written.");
  tp_prom_u64(w, "tlsprobe_agent_memory_results", NULL, 0, s->push.in_memory);
  tp_prom_family(w, "tlsprobe_agent_spool_errors_total", "counter",
                 "Failed spool operations (disk full, I/O errors).");
  tp_prom_u64(w, "tlsprobe_agent_spool_errors_total", NULL, 0, st->io_errors);
  static const char DROPPED[] = "tlsprobe_agent_spool_dropped_results_total";
  tp_prom_family(w, DROPPED, "counter",
                 "Results lost before delivery since the agent started, by reason; each loss is "
                 "also reported to the collector (tlsprobe_agent_dropped_results_total there).");
  const struct {
    const char *reason;
    uint64_t n;
  } drops[] = {{TP_SPOOL_DROP_FULL, st->dropped_full},
               {TP_SPOOL_DROP_ERROR, st->dropped_error},
               {TP_SPOOL_DROP_INVALID, st->dropped_invalid},
               {TP_SPOOL_DROP_TOO_OLD, st->dropped_too_old}};
  for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++) {
    tp_prom_label l[1] = {{"reason", drops[i].reason}};
    tp_prom_u64(w, DROPPED, l, 1, drops[i].n);
  }
}

static void push(tp_prom_writer *w, const tp_agent_metrics_snapshot *s) {
  const tp_pusher_stats *p = &s->push;
  tp_prom_family(w, "tlsprobe_agent_pushed_results_total", "counter",
                 "Results the collector acknowledged (stored now or before).");
  tp_prom_u64(w, "tlsprobe_agent_pushed_results_total", NULL, 0, p->pushed);
  tp_prom_family(w, "tlsprobe_agent_pushed_duplicate_results_total", "counter",
                 "Of those, results the collector already had (re-sends).");
  tp_prom_u64(w, "tlsprobe_agent_pushed_duplicate_results_total", NULL, 0, p->duplicates);
  tp_prom_family(w, "tlsprobe_agent_pushed_batches_total", "counter", "Acknowledged batches.");
  tp_prom_u64(w, "tlsprobe_agent_pushed_batches_total", NULL, 0, p->batches);
  static const char FAILURES[] = "tlsprobe_agent_push_failures_total";
  tp_prom_family(w, FAILURES, "counter",
                 "Pushes that did not end in an acknowledgement, by the answer's class: network, "
                 "tls (certificate verification), too_large (413), refused (400/422), retry "
                 "(408/429/5xx), bad_ack, config (3xx/401/403/404/other 4xx).");
  for (int f = 0; f < TP_PUSH_FAILURE__COUNT; f++) {
    tp_prom_label l[1] = {{"answer", tp_push_failure_name((tp_push_failure)f)}};
    tp_prom_u64(w, FAILURES, l, 1, p->failures_by[f]);
  }
  tp_prom_family(w, "tlsprobe_agent_replaced_results_total", "counter",
                 "Results sent as a minimal error result instead (broke the wire contract, too "
                 "large, or refused by the collector).");
  tp_prom_u64(w, "tlsprobe_agent_replaced_results_total", NULL, 0, p->invalid + p->replaced);
}

tp_err tp_agent_metrics_render(const tp_agent_metrics_snapshot *s, tp_buf *out) {
  tp_prom_writer w;
  tp_prom_begin(&w, out);
  info(&w, s);
  loops(&w, s);
  caches(&w, s);
  results(&w, s);
  spool(&w, s);
  push(&w, s);
  return tp_prom_end(&w);
}
