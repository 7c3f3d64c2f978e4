/* agent.c - component wiring and the shutdown sequence (see agent.h).
 *
 * Threads: the main loop owns the result spool and the pusher (libcurl);
 * each of `loops` worker threads owns a loop with its own probe engine and a
 * shard of the series. One loop per core keeps a saturated loop's queueing
 * out of the reported latencies (docs/architecture.md, "Timing honesty").
 * Workers hand results to the main loop through a mutex-protected inbox and
 * uv_async_send(); nothing else is shared except the read-only config and
 * profiles (GnuTLS priority caches and credentials are safe to share
 * read-only between threads). The optional /metrics responder runs on the main
 * loop and reads the workers' health through each one's tp_loop_stats (mutex). */
#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "agent_metrics.h"
#include "metrics_server.h"
#include "probe.h"
#include "pusher.h"
#include "spool.h"
#include "saturation.h"
#include "scheduler.h"
#include "tp_mem.h"
#include "tp_yaml.h"

/* How long shutdown may spend pushing what is spooled (the rest stays spooled). */
#define FLUSH_DEADLINE_MS 10000

typedef struct worker {
  tp_agent *agent;
  unsigned index;
  uv_loop_t loop;
  bool loop_initialised, thread_started;
  uv_thread_t thread;
  tp_probe_engine *engine;
  tp_saturation *saturation;
  tp_scheduler *scheduler;
  uv_async_t stop_async; /* main -> worker: stop scheduling */
  bool async_initialised;
  bool stopping, closing;
  uint64_t skipped; /* read by main after the thread ended */
  tp_loop_stats stats; /* written by the worker, read by /metrics on main */
  bool stats_initialised;
} worker;

struct tp_agent {
  const tp_agent_config *config;
  const tp_log *log;
  uv_loop_t loop; /* main loop: pusher, signals, inbox */
  bool loop_initialised;
  tp_profile **profiles;
  size_t n_profiles;
  worker *workers;
  unsigned n_workers;
  tp_spool *spool;
  tp_pusher *pusher;
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t run_for;

  /* worker -> main handoff, guarded by inbox_lock */
  uv_mutex_t inbox_lock;
  bool inbox_lock_initialised;
  tp_result **inbox;
  size_t inbox_len, inbox_cap;
  unsigned workers_finished;
  uv_async_t inbox_async;

  bool stopping, draining, joined;
  uint64_t produced;
  uint64_t results_by[TP_AGENT_METRICS_OUTCOMES]; /* produced, by outcome (agent_metrics.h) */
  tp_agent_metrics_server *metrics; /* NULL without a metrics: section */
  tp_agent_stats final_stats;
};

static void close_main_handles(tp_agent *a);
static void on_probe_result(tp_result *result, void *data);

/* ---- worker side ------------------------------------------------------ */

static void on_worker_handle_closed(uv_handle_t *handle) {
  (void)handle;
}

static void worker_close(worker *w) {
  if (w->closing)
    return;
  w->closing = true;
  if (w->scheduler != NULL) {
    w->skipped = tp_scheduler_skipped(w->scheduler);
    tp_scheduler_close(w->scheduler);
    w->scheduler = NULL;
  }
  if (w->saturation != NULL) {
    tp_saturation_close(w->saturation);
    w->saturation = NULL;
  }
  if (w->engine != NULL) {
    tp_probe_engine_close(w->engine, NULL, NULL);
    w->engine = NULL;
  }
  if (w->async_initialised)
    uv_close((uv_handle_t *)&w->stop_async, on_worker_handle_closed);
}

/* Called on the worker thread once its last probe has reported. */
static void worker_finished(worker *w) {
  worker_close(w);
  tp_agent *a = w->agent;
  uv_mutex_lock(&a->inbox_lock);
  a->workers_finished++;
  uv_mutex_unlock(&a->inbox_lock);
  uv_async_send(&a->inbox_async);
}

static void on_worker_stop(uv_async_t *handle) {
  worker *w = handle->data;
  if (w->stopping)
    return;
  w->stopping = true;
  tp_scheduler_stop(w->scheduler);
  (void)tp_probe_engine_cancel_pending(w->engine); /* callbacks come back with NULL */
  if (tp_scheduler_outstanding(w->scheduler) == 0)
    worker_finished(w);
}

static void on_probe_result(tp_result *result, void *data) {
  worker *w = data;
  tp_agent *a = w->agent;
  uv_mutex_lock(&a->inbox_lock);
  if (a->inbox_len == a->inbox_cap) {
    a->inbox_cap = a->inbox_cap ? 2 * a->inbox_cap : 64;
    a->inbox = tp_xrealloc(a->inbox, a->inbox_cap * sizeof(tp_result *));
  }
  a->inbox[a->inbox_len++] = result;
  uv_mutex_unlock(&a->inbox_lock);
  uv_async_send(&a->inbox_async);
  if (w->stopping && tp_scheduler_outstanding(w->scheduler) == 0)
    worker_finished(w);
}

static void worker_main(void *arg) {
  worker *w = arg;
  tp_saturation_start(w->saturation); /* on this thread: its CPU-wait counter is per thread */
  tp_scheduler_start(w->scheduler);
  (void)uv_run(&w->loop, UV_RUN_DEFAULT);
}

static tp_err worker_init(tp_agent *a, worker *w, unsigned index) {
  const tp_agent_config *c = a->config;
  w->agent = a;
  w->index = index;
  if (tp_loop_stats_init(&w->stats) != TP_E_OK)
    return TP_E_LOOP;
  w->stats_initialised = true;
  if (uv_loop_init(&w->loop) != 0)
    return TP_E_LOOP;
  w->loop_initialised = true;
  tp_probe_engine_options eo = {.max_in_flight = c->max_in_flight,
                                .max_pending = c->max_pending,
                                .dns_servers = c->dns_servers};
  if (tp_probe_engine_new(&w->loop, &eo, a->log, &w->engine) != TP_E_OK)
    return TP_E_LOOP;
  tp_saturation_options so = {.max_loop_lag_ns = c->max_loop_lag_ms * 1000000,
                              .max_lateness_ns = c->max_lateness_ms * 1000000,
                              .max_cpu_wait_permille = c->max_cpu_wait_percent * 10,
                              .adaptive = c->adaptive_in_flight,
                              .min_in_flight = c->min_in_flight,
                              .max_in_flight = c->max_in_flight};
  if (tp_saturation_new(&w->loop, &so, w->engine, a->log, &w->saturation) != TP_E_OK)
    return TP_E_LOOP;
  tp_err rc = tp_scheduler_new(&w->loop, c, a->profiles, index, a->n_workers, w->engine, a->log,
                               on_probe_result, w, &w->scheduler);
  if (rc != TP_E_OK)
    return rc;
  tp_scheduler_set_stats(w->scheduler, &w->stats);
  tp_scheduler_set_saturation(w->scheduler, w->saturation);
  if (uv_async_init(&w->loop, &w->stop_async, on_worker_stop) != 0)
    return TP_E_LOOP;
  w->stop_async.data = w;
  w->async_initialised = true;
  return TP_E_OK;
}

/* Runs on the main thread after the worker's thread ended (or never ran). */
static void worker_destroy(worker *w) {
  if (!w->loop_initialised)
    return;
  worker_close(w);
  (void)uv_run(&w->loop, UV_RUN_DEFAULT); /* deliver the close callbacks */
  int rc = uv_loop_close(&w->loop);
  if (rc != 0)
    tp_log_warn(w->agent->log, "worker loop closed with handles still open", "worker=%u error=\"%s\"",
                w->index, uv_strerror(rc));
  w->loop_initialised = false;
}

/* ---- main side -------------------------------------------------------- */

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

static void on_inbox(uv_async_t *handle);

/* One scrape: the main loop's own numbers where they live, the workers' through
 * their stats. */
static tp_err render_metrics(tp_buf *out, void *data) {
  tp_agent *a = data;
  const tp_agent_config *c = a->config;
  tp_loop_numbers *loops = tp_xcalloc(a->n_workers ? a->n_workers : 1, sizeof(*loops));
  for (unsigned i = 0; i < a->n_workers; i++)
    tp_loop_stats_read(&a->workers[i].stats, &loops[i]);
  tp_agent_metrics_snapshot s = {
      .agent_id = c->agent_id,
      .region = c->region,
      .version = TP_VERSION,
      .spool = tp_spool_describe(a->spool),
      .spool_durable = strncmp(tp_spool_describe(a->spool), "sqlite:", strlen("sqlite:")) == 0,
      .spool_max_bytes = c->spool_max_bytes,
      .loops = a->n_workers,
      .loop = loops,
      .max_in_flight = c->max_in_flight,
      .max_pending = c->max_pending,
  };
  memcpy(s.results, a->results_by, sizeof(s.results));
  tp_pusher_get_stats(a->pusher, &s.push);
  tp_err rc = tp_agent_metrics_render(&s, out);
  free(loops);
  return rc;
}

static tp_err start_metrics(tp_agent *a, char *err, size_t errlen) {
  const tp_agent_config *c = a->config;
  char why[256];
  tp_err rc = tp_agent_metrics_server_start(&a->loop, &c->metrics_listen, render_metrics, a,
                                            a->log, &a->metrics, why, sizeof(why));
  if (rc != TP_E_OK) {
    snprintf(err, errlen, "%s: metrics.listen: %s", c->path, why);
    return rc;
  }
  tp_log_info(a->log, "metrics listening", "address=%s port=%u path=/metrics",
              c->metrics_listen.host, tp_agent_metrics_server_port(a->metrics));
  return TP_E_OK;
}

/* The durable spool (or the memory one when configured). A spool file that cannot
 * be opened at start (disk full, permissions changed) does not stop the monitor:
 * it runs on a memory spool, says so at error level, and loses only what is still
 * unsent when it stops. A spool in use by another agent is a configuration error. */
static tp_err open_spool(tp_agent *a, bool check_only, char *err, size_t errlen) {
  const tp_agent_config *c = a->config;
  if (check_only && !c->spool_memory) {
    /* --check creates nothing: say whether the agent could create its spool. */
    char dir[TP_AGENT_MAX_PATH + 1], why[128];
    snprintf(dir, sizeof(dir), "%s", c->spool_path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
      snprintf(dir, sizeof(dir), ".");
    else
      slash[slash == dir ? 1 : 0] = '\0';
    if (access(c->spool_path, R_OK | W_OK) != 0 && access(dir, W_OK | X_OK) != 0) {
      snprintf(err, errlen, "spool %s: cannot be created in %s: %s", c->spool_path, dir,
               tp_errno_text(errno, why, sizeof(why)));
      return TP_E_CONFIG;
    }
  }
  if (c->spool_memory || check_only) {
    if (tp_spool_open_memory(c->spool_max_bytes, &a->spool) == TP_E_OK)
      return TP_E_OK;
    snprintf(err, errlen, "cannot create the memory spool (no random id from the kernel)");
    return TP_E_IO;
  }
  tp_err rc = tp_spool_open_sqlite(c->spool_path, c->spool_max_bytes, &a->spool, err, errlen);
  if (rc == TP_E_OK)
    return TP_E_OK;
  if (rc == TP_E_CONFIG)
    return rc; /* another agent has it: two agents on one spool is a configuration error */
  tp_log_error(a->log, "cannot open the spool; results are kept in memory until restart",
               "error=\"%s\"", err);
  if (tp_spool_open_memory(c->spool_max_bytes, &a->spool) == TP_E_OK)
    return TP_E_OK;
  snprintf(err, errlen, "cannot create the memory spool (no random id from the kernel)");
  return TP_E_IO;
}

tp_err tp_agent_new(const tp_agent_config *config, const tp_log *log, bool check_only,
                    tp_agent **out, char *err, size_t errlen) {
  tp_agent *a = tp_xcalloc(1, sizeof(*a));
  a->config = config;
  a->log = log;
  tp_err rc = build_profiles(a, err, errlen);
  if (rc != TP_E_OK)
    goto fail;
  rc = TP_E_LOOP;
  if (uv_mutex_init(&a->inbox_lock) != 0) {
    snprintf(err, errlen, "cannot create a mutex");
    goto fail;
  }
  a->inbox_lock_initialised = true;
  if (uv_loop_init(&a->loop) != 0) {
    snprintf(err, errlen, "cannot initialise the event loop");
    goto fail;
  }
  a->loop_initialised = true;
  if (uv_async_init(&a->loop, &a->inbox_async, on_inbox) != 0) {
    snprintf(err, errlen, "cannot initialise the event loop");
    goto fail;
  }
  a->inbox_async.data = a;
  rc = open_spool(a, check_only, err, errlen);
  if (rc != TP_E_OK)
    goto fail;
  tp_pusher_options po = {.url = config->collector_url,
                          .agent_id = config->agent_id,
                          .region = config->region,
                          .batch_size = config->batch_size,
                          .max_batch_bytes = config->max_batch_bytes,
                          .flush_interval_ms = config->flush_interval_ms,
                          .timeout_ms = config->push_timeout_ms,
                          .max_result_age_ms = config->max_result_age_ms,
                          .ca_file = config->ca_file,
                          .client_cert_file = config->client_cert_file,
                          .client_key_file = config->client_key_file,
                          .token_file = config->token_file};
  rc = tp_pusher_new(&a->loop, &po, a->spool, log, &a->pusher, err, errlen);
  if (rc != TP_E_OK)
    goto fail;
  rc = TP_E_LOOP;
  a->n_workers = config->loops;
  a->workers = tp_xcalloc(a->n_workers, sizeof(worker));
  for (unsigned i = 0; i < a->n_workers; i++) {
    rc = worker_init(a, &a->workers[i], i);
    if (rc != TP_E_OK) {
      snprintf(err, errlen, "cannot set up probe loop %u: %s", i, tp_strerror(rc));
      goto fail;
    }
  }
  /* --check binds nothing: a running agent may hold the port. */
  if (config->metrics_enabled && !check_only && (rc = start_metrics(a, err, errlen)) != TP_E_OK)
    goto fail;
  *out = a;
  return TP_E_OK;
fail:
  tp_agent_free(a);
  return rc;
}

static void on_main_handle_closed(uv_handle_t *handle) {
  (void)handle;
}

static void join_workers(tp_agent *a) {
  if (a->joined)
    return;
  a->joined = true;
  for (unsigned i = 0; i < a->n_workers; i++) {
    worker *w = &a->workers[i];
    if (w->thread_started) {
      uv_thread_join(&w->thread);
      w->thread_started = false;
    }
  }
}

static uint64_t total_skipped(const tp_agent *a) {
  uint64_t skipped = 0;
  for (unsigned i = 0; i < a->n_workers; i++)
    skipped += a->workers[i].skipped;
  return skipped;
}

static void snapshot_stats(tp_agent *a) {
  tp_pusher_stats ps;
  tp_pusher_get_stats(a->pusher, &ps);
  a->final_stats = (tp_agent_stats){
      .produced = a->produced,
      .pushed = ps.pushed,
      .duplicates = ps.duplicates,
      .rejected = ps.rejected,
      .invalid = ps.invalid,
      .invalid_dropped = ps.invalid_dropped,
      .replaced = ps.replaced,
      .dropped = ps.spool.dropped_full + ps.spool.dropped_error + ps.spool.dropped_too_old,
      .skipped = total_skipped(a),
      .unsent = ps.unsent,
      .spool = tp_spool_describe(a->spool),
      .spool_durable = strncmp(tp_spool_describe(a->spool), "sqlite:", strlen("sqlite:")) == 0,
  };
}

static void close_main_handles(tp_agent *a) {
  /* First: a scrape reads the pusher. */
  tp_agent_metrics_server_close(a->metrics);
  a->metrics = NULL;
  if (a->pusher != NULL) {
    tp_pusher_close(a->pusher);
    a->pusher = NULL;
  }
  uv_handle_t *own[] = {(uv_handle_t *)&a->sigint, (uv_handle_t *)&a->sigterm,
                        (uv_handle_t *)&a->sighup, (uv_handle_t *)&a->run_for,
                        (uv_handle_t *)&a->inbox_async};
  for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
    if (own[i]->loop != NULL && !uv_is_closing(own[i]))
      uv_close(own[i], on_main_handle_closed);
}

static void on_flushed(void *data) {
  tp_agent *a = data;
  snapshot_stats(a);
  close_main_handles(a);
}

/* Takes everything the workers handed over into the spool. */
static void drain_inbox(tp_agent *a, unsigned *finished) {
  uv_mutex_lock(&a->inbox_lock);
  tp_result **batch = a->inbox;
  size_t n = a->inbox_len;
  a->inbox = NULL;
  a->inbox_len = a->inbox_cap = 0;
  *finished = a->workers_finished;
  uv_mutex_unlock(&a->inbox_lock);
  for (size_t i = 0; i < n; i++) {
    tp_result *r = batch[i];
    a->produced++;
    bool divergent = r->outcome == TP_OUTCOME_OK && r->emulation_divergence != NULL &&
                     r->emulation_divergence[0] != '\0';
    unsigned slot = divergent ? TP_AGENT_METRICS_DIVERGENT : (unsigned)r->outcome;
    if (slot < TP_AGENT_METRICS_OUTCOMES)
      a->results_by[slot]++;
    tp_log_debug(a->log, "probe done",
                 "target=%s profile=%s outcome=%s detail=\"%s\" handshake_us=%llu lag_us=%llu"
                 " late_us=%llu saturated=%s",
                 r->target, r->profile, tp_outcome_name((int)r->outcome), r->detail ? r->detail : "",
                 (unsigned long long)(r->handshake_ns / 1000),
                 (unsigned long long)(r->loop_lag_ns / 1000),
                 (unsigned long long)(r->schedule_lateness_ns / 1000),
                 r->saturated ? "true" : "false");
    tp_pusher_submit(a->pusher, r);
  }
  free(batch);
}

static void on_inbox(uv_async_t *handle) {
  tp_agent *a = handle->data;
  unsigned finished;
  drain_inbox(a, &finished);
  if (!a->stopping || a->draining || finished < a->n_workers)
    return;
  /* Every worker has reported its last probe: their threads are ending. */
  join_workers(a);
  drain_inbox(a, &finished); /* results sent between the two locks */
  a->draining = true;
  tp_spool_stats st;
  tp_spool_get_stats(a->spool, &st);
  tp_log_info(a->log, "flushing results", "spooled=%llu", (unsigned long long)st.records);
  tp_pusher_flush(a->pusher, FLUSH_DEADLINE_MS, on_flushed, a);
}

static void begin_shutdown(tp_agent *a, const char *why) {
  if (a->stopping)
    return;
  a->stopping = true;
  tp_log_info(a->log, "stopping", "reason=%s", why);
  uv_timer_stop(&a->run_for);
  uv_signal_stop(&a->sigint);
  uv_signal_stop(&a->sigterm);
  uv_signal_stop(&a->sighup);
  for (unsigned i = 0; i < a->n_workers; i++)
    uv_async_send(&a->workers[i].stop_async);
  uv_async_send(&a->inbox_async); /* re-check with zero workers / all finished */
}

static void on_signal(uv_signal_t *handle, int signum) {
  begin_shutdown(handle->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* SIGHUP re-reads the credentials that may be rotated under a running agent (the
 * token file; certificate and key files are read at every new connection anyway).
 * Targets and profiles are not reloaded yet: say so instead of dying (the default
 * action of SIGHUP) or pretending. */
static void on_sighup(uv_signal_t *handle, int signum) {
  tp_agent *a = handle->data;
  (void)signum;
  tp_log_info(a->log, "SIGHUP: reloading collector credentials",
              "note=\"targets, profiles and jobs are read at start only\"");
  tp_pusher_reload(a->pusher);
}

static void on_run_for(uv_timer_t *timer) {
  begin_shutdown(timer->data, "run-for elapsed");
}

tp_err tp_agent_run(tp_agent *a, uint64_t run_for_ms) {
  if (uv_signal_init(&a->loop, &a->sigint) != 0 || uv_signal_init(&a->loop, &a->sigterm) != 0 ||
      uv_signal_init(&a->loop, &a->sighup) != 0 || uv_timer_init(&a->loop, &a->run_for) != 0)
    return TP_E_LOOP;
  a->sigint.data = a->sigterm.data = a->sighup.data = a->run_for.data = a;
  if (uv_signal_start(&a->sigint, on_signal, SIGINT) != 0 ||
      uv_signal_start(&a->sigterm, on_signal, SIGTERM) != 0 ||
      uv_signal_start(&a->sighup, on_sighup, SIGHUP) != 0)
    return TP_E_LOOP;
  if (run_for_ms > 0 && uv_timer_start(&a->run_for, on_run_for, run_for_ms, 0) != 0)
    return TP_E_LOOP;
  size_t series = 0;
  for (unsigned i = 0; i < a->n_workers; i++)
    series += tp_scheduler_series(a->workers[i].scheduler);
  tp_log_info(a->log, "agent started",
              "agent_id=%s region=%s profiles=%zu targets=%zu jobs=%zu series=%zu loops=%u",
              a->config->agent_id, a->config->region, a->config->n_profiles, a->config->n_targets,
              a->config->n_jobs, series, a->n_workers);
  tp_pusher_start(a->pusher);
  for (unsigned i = 0; i < a->n_workers; i++) {
    worker *w = &a->workers[i];
    if (uv_thread_create(&w->thread, worker_main, w) != 0) {
      tp_log_error(a->log, "cannot start a probe thread", "worker=%u", i);
      /* Workers that never ran have nothing to report: count them finished. */
      uv_mutex_lock(&a->inbox_lock);
      a->workers_finished += a->n_workers - i;
      uv_mutex_unlock(&a->inbox_lock);
      begin_shutdown(a, "thread start failure");
      break;
    }
    w->thread_started = true;
  }
  (void)uv_run(&a->loop, UV_RUN_DEFAULT);
  return TP_E_OK;
}

void tp_agent_get_stats(const tp_agent *a, tp_agent_stats *stats) {
  *stats = a->final_stats;
}

void tp_agent_free(tp_agent *a) {
  if (a == NULL)
    return;
  /* Normally every thread has ended and every handle is closed by now; after
   * --check or a failed start, close what is open and let the loops deliver
   * the close callbacks before closing them. */
  join_workers(a);
  for (unsigned i = 0; i < a->n_workers; i++) {
    worker_destroy(&a->workers[i]);
    /* No scrape reads it any more: the responder closes with the main handles,
     * before the main loop ends (or below, first of them). */
    if (a->workers[i].stats_initialised)
      tp_loop_stats_destroy(&a->workers[i].stats);
  }
  free(a->workers);
  if (a->loop_initialised) {
    close_main_handles(a);
    (void)uv_run(&a->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&a->loop);
    if (rc != 0)
      tp_log_warn(a->log, "event loop closed with handles still open", "error=\"%s\"",
                  uv_strerror(rc));
  }
  for (size_t i = 0; i < a->inbox_len; i++)
    tp_result_free(a->inbox[i]);
  free(a->inbox);
  if (a->inbox_lock_initialised)
    uv_mutex_destroy(&a->inbox_lock);
  tp_spool_close(a->spool);
  for (size_t i = 0; i < a->n_profiles; i++)
    tp_profile_free(a->profiles[i]);
  free(a->profiles);
  free(a);
}
