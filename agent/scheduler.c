/* scheduler.c - one uv_timer per series, re-armed each period with jitter. */
#include "scheduler.h"

#include <stdlib.h>
#include <time.h>

#include "tp_mem.h"
#include "tp_rand.h"

typedef struct series {
  tp_scheduler *owner;
  uv_timer_t timer;
  tp_target target; /* strings borrowed from the config */
  const tp_profile *profile;
  uint64_t interval_ms;
  uint64_t due_ms; /* loop time the timer was armed for */
  bool busy;       /* a probe of this series is running */
  /* the running probe's plan: how late its tick fired, the wall clock at the tick
   * (the engine stamps its start on the same clock) and the tick's monotonic time */
  uint64_t tick_late_ns;
  int64_t tick_unix_ns;
  uint64_t tick_ns;
} series;

struct tp_scheduler {
  tp_probe_engine *engine;
  const tp_log *log;
  tp_probe_timeouts timeouts;
  tp_scheduler_result_cb on_result;
  void *data;
  series *series;
  size_t n_series;
  size_t open_timers;
  unsigned outstanding;
  uint64_t skipped;
  tp_rng rng; /* per scheduler, no global */
  bool running;
  uv_loop_t *loop;
  tp_loop_stats *stats; /* NULL = not reported */
  tp_saturation *saturation; /* NULL = results are not judged */
};

/* Uniform in [0, bound); bound > 0. Modulo bias is irrelevant for jitter. */
static uint64_t random_below(tp_scheduler *s, uint64_t bound) {
  return tp_rng_below(&s->rng, bound);
}

/* The engine families a configured target is probed with: `both` is one series
 * per family, its results labelled by address_family. */
static size_t target_families(tp_agent_family family, tp_family out[2]) {
  switch (family) {
  case TP_AGENT_FAMILY_IPV4:
    out[0] = TP_FAMILY_IPV4;
    return 1;
  case TP_AGENT_FAMILY_IPV6:
    out[0] = TP_FAMILY_IPV6;
    return 1;
  case TP_AGENT_FAMILY_BOTH:
    out[0] = TP_FAMILY_IPV6;
    out[1] = TP_FAMILY_IPV4;
    return 2;
  case TP_AGENT_FAMILY_ANY:
    break;
  }
  out[0] = TP_FAMILY_ANY;
  return 1;
}

/* interval ± 10 %, never below 1 ms. */
static uint64_t jittered(tp_scheduler *s, uint64_t interval_ms) {
  uint64_t spread = interval_ms / 5;
  if (spread == 0)
    return interval_ms;
  uint64_t v = interval_ms - spread / 2 + random_below(s, spread + 1);
  return v ? v : 1;
}

static void on_tick(uv_timer_t *timer);

/* The timer is armed against the loop's cached time, as libuv computes its expiry,
 * so due_ms is exactly when libuv meant it to fire. */
static void arm(tp_scheduler *s, series *se, uint64_t delay_ms) {
  se->due_ms = uv_now(s->loop) + delay_ms;
  (void)uv_timer_start(&se->timer, on_tick, delay_ms, 0);
}

static int64_t wall_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Lateness = how late the tick fired + how long the probe then queued in the
 * engine for a slot (its start stamp minus the tick's, both wall clock, a short
 * interval; a clock step in between is clamped to zero). */
static void set_lateness(const series *se, tp_result *r) {
  int64_t queued = r->started_unix_ns - se->tick_unix_ns;
  r->schedule_lateness_ns = se->tick_late_ns + (queued > 0 ? (uint64_t)queued : 0);
}

static void on_probe_done(tp_result *result, void *data) {
  series *se = data;
  tp_scheduler *s = se->owner;
  se->busy = false;
  s->outstanding--;
  if (s->stats != NULL)
    tp_loop_stats_load(s->stats, tp_probe_engine_in_flight(s->engine),
                       tp_probe_engine_pending(s->engine));
  if (result == NULL) /* cancelled before it started, nothing to report */
    return;
  set_lateness(se, result);
  if (s->stats != NULL) {
    tp_probe_cache_stats caches;
    tp_probe_engine_cache_stats(s->engine, &caches);
    tp_loop_stats_caches(s->stats, &caches);
  }
  if (s->saturation != NULL) {
    tp_saturation_judge(s->saturation, result, se->tick_ns);
    if (s->stats != NULL)
      tp_loop_stats_judged(s->stats, result->saturated, tp_saturation_limit(s->saturation));
  }
  s->on_result(result, s->data);
}

/* How late this tick runs against its plan: fresh time (not the loop's cached
 * one), so callbacks that ran before it in this iteration count too. */
static uint64_t tick_lateness(const series *se, uint64_t now_ns) {
  uint64_t due_ns = se->due_ms * 1000000;
  return now_ns > due_ns ? now_ns - due_ns : 0;
}

static void on_tick(uv_timer_t *timer) {
  series *se = timer->data;
  tp_scheduler *s = se->owner;
  if (!s->running)
    return;
  uint64_t now_ns = uv_hrtime(), late_ns = tick_lateness(se, now_ns);
  if (s->stats != NULL)
    tp_loop_stats_due(s->stats, late_ns);
  arm(s, se, jittered(s, se->interval_ms));
  if (se->busy) {
    s->skipped++;
    if (s->stats != NULL)
      tp_loop_stats_skipped(s->stats);
    tp_log_debug(s->log, "skipped probe: previous one still running", "target=%s profile=%s",
                 se->target.name, tp_profile_name(se->profile));
    return;
  }
  /* The plan of the probe about to run (a busy series keeps its running one's). */
  se->tick_ns = now_ns;
  se->tick_late_ns = late_ns;
  se->tick_unix_ns = wall_now_ns();
  tp_err rc = tp_probe_engine_submit(s->engine, &se->target, se->profile, &s->timeouts,
                                     on_probe_done, se);
  if (rc != TP_E_OK) {
    s->skipped++;
    if (s->stats != NULL)
      tp_loop_stats_skipped(s->stats);
    tp_log_warn(s->log, "probe not started", "target=%s profile=%s reason=\"%s\"",
                se->target.name, tp_profile_name(se->profile), tp_strerror(rc));
    return;
  }
  se->busy = true;
  s->outstanding++;
  if (s->stats != NULL)
    tp_loop_stats_started(s->stats, tp_probe_engine_in_flight(s->engine),
                          tp_probe_engine_pending(s->engine));
}

tp_err tp_scheduler_new(uv_loop_t *loop, const tp_agent_config *config,
                        tp_profile *const *profiles, unsigned shard_index, unsigned shard_count,
                        tp_probe_engine *engine, const tp_log *log,
                        tp_scheduler_result_cb on_result, void *data, tp_scheduler **out) {
  if (shard_count == 0 || shard_index >= shard_count)
    return TP_E_INVAL;
  tp_scheduler *s = tp_xcalloc(1, sizeof(*s));
  s->loop = loop;
  s->engine = engine;
  s->log = log;
  s->on_result = on_result;
  s->data = data;
  s->timeouts.connect_ms = config->connect_timeout_ms;
  s->timeouts.handshake_ms = config->handshake_timeout_ms;
  uint64_t seed = 0;
  if (uv_random(NULL, NULL, &seed, sizeof(seed), 0, NULL) != 0 || seed == 0)
    seed = uv_hrtime() | 1;
  tp_rng_seed(&s->rng, seed);

  /* A target with family: both is two series (one per family). */
  size_t total = 0;
  for (size_t j = 0; j < config->n_jobs; j++)
    total += 2 * config->jobs[j].n_targets * config->jobs[j].n_profiles;
  s->series = tp_xcalloc(total / shard_count + 1, sizeof(series));
  size_t number = 0;
  for (size_t j = 0; j < config->n_jobs; j++) {
    const tp_agent_job_config *job = &config->jobs[j];
    for (size_t t = 0; t < job->n_targets; t++) {
      const tp_agent_target_config *tc = &config->targets[job->target_index[t]];
      tp_family families[2];
      size_t n_families = target_families(tc->family, families);
      for (size_t p = 0; p < job->n_profiles; p++) {
        for (size_t f = 0; f < n_families; f++, number++) {
          if (number % shard_count != shard_index)
            continue;
          series *se = &s->series[s->n_series++];
          se->owner = s;
          se->target = (tp_target){.name = tc->name,
                                   .host = tc->host,
                                   .port = tc->port,
                                   .sni = tc->sni,
                                   .family = families[f]};
          se->profile = profiles[job->profile_index[p]];
          se->interval_ms = job->interval_ms;
          uv_timer_init(loop, &se->timer);
          se->timer.data = se;
          s->open_timers++;
        }
      }
    }
  }
  *out = s;
  return TP_E_OK;
}

void tp_scheduler_start(tp_scheduler *s) {
  s->running = true;
  /* The loop's clock is as old as the loop; the plan starts now. */
  uv_update_time(s->loop);
  for (size_t i = 0; i < s->n_series; i++)
    arm(s, &s->series[i], random_below(s, s->series[i].interval_ms));
}

void tp_scheduler_set_stats(tp_scheduler *s, tp_loop_stats *stats) {
  s->stats = stats;
}

void tp_scheduler_set_saturation(tp_scheduler *s, tp_saturation *saturation) {
  s->saturation = saturation;
}

void tp_scheduler_stop(tp_scheduler *s) {
  s->running = false;
  for (size_t i = 0; i < s->n_series; i++)
    uv_timer_stop(&s->series[i].timer);
}

size_t tp_scheduler_series(const tp_scheduler *s) {
  return s->n_series;
}

unsigned tp_scheduler_outstanding(const tp_scheduler *s) {
  return s->outstanding;
}

uint64_t tp_scheduler_skipped(const tp_scheduler *s) {
  return s->skipped;
}

static void on_timer_closed(uv_handle_t *handle) {
  series *se = handle->data;
  tp_scheduler *s = se->owner;
  if (--s->open_timers == 0) {
    free(s->series);
    free(s);
  }
}

void tp_scheduler_close(tp_scheduler *s) {
  tp_scheduler_stop(s);
  if (s->n_series == 0) {
    free(s->series);
    free(s);
    return;
  }
  for (size_t i = 0; i < s->n_series; i++)
    uv_close((uv_handle_t *)&s->series[i].timer, on_timer_closed);
}
