/* agent.c - component wiring and the shutdown sequence (see agent.h). */
#include "agent.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "probe.h"
#include "pusher.h"
#include "queue.h"
#include "scheduler.h"
#include "tp_mem.h"
#include "tp_yaml.h"

/* How long shutdown may spend pushing what is queued. */
#define FLUSH_DEADLINE_MS 10000

struct tp_agent {
  const tp_agent_config *config;
  const tp_log *log;
  uv_loop_t loop;
  bool loop_initialised;
  tp_profile **profiles;
  size_t n_profiles;
  tp_probe_engine *engine;
  tp_scheduler *scheduler;
  tp_queue *queue;
  tp_pusher *pusher;
  uv_signal_t sigint, sigterm;
  uv_timer_t run_for;
  bool stopping, draining;
  uint64_t produced;
  tp_agent_stats final_stats;
};

static void close_everything(tp_agent *a);

static void on_result(tp_result *result, void *data);

static tp_err build_profiles(tp_agent *a, char *err, size_t errlen) {
  const tp_agent_config *c = a->config;
  a->profiles = tp_xcalloc(c->n_profiles, sizeof(tp_profile *));
  a->n_profiles = c->n_profiles;
  for (size_t i = 0; i < c->n_profiles; i++) {
    char why[512];
    tp_err rc = tp_profile_new(&c->profiles[i].spec, &a->profiles[i], why, sizeof(why));
    if (rc != TP_E_OK) {
      char node[64];
      snprintf(node, sizeof(node), "profiles[%zu]", i);
      tp_yaml_error_at(err, errlen, c->path, node, "profile \"%s\": %s", c->profiles[i].spec.name,
                       why);
      return rc;
    }
    tp_log_debug(a->log, "profile ready", "profile=%s priority=\"%s\"", c->profiles[i].spec.name,
                 tp_profile_priority_string(a->profiles[i]));
  }
  return TP_E_OK;
}

tp_err tp_agent_new(const tp_agent_config *config, const tp_log *log, tp_agent **out, char *err,
                    size_t errlen) {
  tp_agent *a = tp_xcalloc(1, sizeof(*a));
  a->config = config;
  a->log = log;
  tp_err rc = build_profiles(a, err, errlen);
  if (rc != TP_E_OK)
    goto fail;
  rc = TP_E_LOOP;
  if (uv_loop_init(&a->loop) != 0) {
    snprintf(err, errlen, "cannot initialise the event loop");
    goto fail;
  }
  a->loop_initialised = true;
  tp_probe_engine_options eo = {.max_in_flight = config->max_in_flight,
                                .max_pending = config->max_pending};
  if (tp_probe_engine_new(&a->loop, &eo, log, &a->engine) != TP_E_OK) {
    snprintf(err, errlen, "cannot start the probe engine");
    goto fail;
  }
  a->queue = tp_queue_new(config->queue_limit);
  tp_pusher_options po = {.url = config->collector_url,
                          .agent_id = config->agent_id,
                          .region = config->region,
                          .batch_size = config->batch_size,
                          .flush_interval_ms = config->flush_interval_ms,
                          .timeout_ms = config->push_timeout_ms};
  if (tp_pusher_new(&a->loop, &po, a->queue, log, &a->pusher) != TP_E_OK) {
    snprintf(err, errlen, "cannot initialise libcurl for %s", config->collector_url);
    goto fail;
  }
  rc = tp_scheduler_new(&a->loop, config, a->profiles, a->engine, log, on_result, a, &a->scheduler);
  if (rc != TP_E_OK) {
    snprintf(err, errlen, "cannot create the scheduler");
    goto fail;
  }
  *out = a;
  return TP_E_OK;
fail:
  tp_agent_free(a);
  return rc;
}

/* ---- shutdown --------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *handle) {
  (void)handle;
}

static void snapshot_stats(tp_agent *a) {
  tp_pusher_stats ps;
  tp_pusher_get_stats(a->pusher, &ps);
  a->final_stats = (tp_agent_stats){
      .produced = a->produced,
      .pushed = ps.pushed,
      .duplicates = ps.duplicates,
      .rejected = ps.rejected,
      .dropped = tp_queue_dropped(a->queue),
      .skipped = tp_scheduler_skipped(a->scheduler),
      .unsent = ps.unsent,
  };
}

static void close_everything(tp_agent *a) {
  if (a->scheduler != NULL) {
    tp_scheduler_close(a->scheduler);
    a->scheduler = NULL;
  }
  if (a->pusher != NULL) {
    tp_pusher_close(a->pusher);
    a->pusher = NULL;
  }
  if (a->engine != NULL) {
    tp_probe_engine_close(a->engine, NULL, NULL);
    a->engine = NULL;
  }
  uv_handle_t *own[] = {(uv_handle_t *)&a->sigint, (uv_handle_t *)&a->sigterm,
                        (uv_handle_t *)&a->run_for};
  for (size_t i = 0; i < 3; i++)
    if (own[i]->loop != NULL && !uv_is_closing(own[i]))
      uv_close(own[i], on_handle_closed);
}

static void on_flushed(void *data) {
  tp_agent *a = data;
  snapshot_stats(a);
  close_everything(a);
}

/* Second stage: every probe has reported; push what is queued. */
static void drain_results(tp_agent *a) {
  if (a->draining)
    return;
  a->draining = true;
  tp_log_info(a->log, "flushing results", "queued=%zu", tp_queue_length(a->queue));
  tp_pusher_flush(a->pusher, FLUSH_DEADLINE_MS, on_flushed, a);
}

static void begin_shutdown(tp_agent *a, const char *why) {
  if (a->stopping)
    return;
  a->stopping = true;
  tp_log_info(a->log, "stopping", "reason=%s in_flight=%u", why,
              tp_scheduler_outstanding(a->scheduler));
  tp_scheduler_stop(a->scheduler);
  (void)tp_probe_engine_cancel_pending(a->engine);
  uv_timer_stop(&a->run_for);
  uv_signal_stop(&a->sigint);
  uv_signal_stop(&a->sigterm);
  if (tp_scheduler_outstanding(a->scheduler) == 0)
    drain_results(a);
}

static void on_signal(uv_signal_t *handle, int signum) {
  begin_shutdown(handle->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_run_for(uv_timer_t *timer) {
  begin_shutdown(timer->data, "run-for elapsed");
}

/* ---- results ---------------------------------------------------------- */

static void on_result(tp_result *result, void *data) {
  tp_agent *a = data;
  a->produced++;
  tp_log_debug(a->log, "probe done", "target=%s profile=%s outcome=%s detail=\"%s\" handshake_us=%llu lag_us=%llu",
               result->target, result->profile, tp_outcome_name((int)result->outcome), result->detail ? result->detail : "",
               (unsigned long long)(result->handshake_ns / 1000),
               (unsigned long long)(result->loop_lag_ns / 1000));
  if (tp_queue_push(a->queue, result))
    tp_log_warn(a->log, "result queue full: dropped the oldest result", "limit=%u",
                a->config->queue_limit);
  tp_pusher_notify(a->pusher);
  if (a->stopping && tp_scheduler_outstanding(a->scheduler) == 0)
    drain_results(a);
}

tp_err tp_agent_run(tp_agent *a, uint64_t run_for_ms) {
  if (uv_signal_init(&a->loop, &a->sigint) != 0 || uv_signal_init(&a->loop, &a->sigterm) != 0 ||
      uv_timer_init(&a->loop, &a->run_for) != 0)
    return TP_E_LOOP;
  a->sigint.data = a->sigterm.data = a->run_for.data = a;
  if (uv_signal_start(&a->sigint, on_signal, SIGINT) != 0 ||
      uv_signal_start(&a->sigterm, on_signal, SIGTERM) != 0)
    return TP_E_LOOP;
  if (run_for_ms > 0 && uv_timer_start(&a->run_for, on_run_for, run_for_ms, 0) != 0)
    return TP_E_LOOP;
  tp_log_info(a->log, "agent started", "agent_id=%s region=%s profiles=%zu targets=%zu jobs=%zu",
              a->config->agent_id, a->config->region, a->config->n_profiles, a->config->n_targets,
              a->config->n_jobs);
  tp_pusher_start(a->pusher);
  tp_scheduler_start(a->scheduler);
  (void)uv_run(&a->loop, UV_RUN_DEFAULT);
  return TP_E_OK;
}

void tp_agent_get_stats(const tp_agent *a, tp_agent_stats *stats) {
  *stats = a->final_stats;
}

void tp_agent_free(tp_agent *a) {
  if (a == NULL)
    return;
  if (a->loop_initialised) {
    /* Not run (e.g. --check) or stopped early: close what is open and let
     * the loop deliver the close callbacks before closing it. */
    close_everything(a);
    (void)uv_run(&a->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&a->loop);
    if (rc != 0)
      tp_log_warn(a->log, "event loop closed with handles still open", "error=\"%s\"",
                  uv_strerror(rc));
  }
  tp_queue_free(a->queue);
  for (size_t i = 0; i < a->n_profiles; i++)
    tp_profile_free(a->profiles[i]);
  free(a->profiles);
  free(a);
}
