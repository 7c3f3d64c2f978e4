/* engine.c - the probe engine: bounds probes in flight, queues the rest, and
 * keeps the loop-lag reference every probe's timestamps are corrected with
 * (docs/architecture.md "Timing honesty"). Probes themselves: probe.c. */
#include <stdlib.h>

#include "aia.h"
#include "probe_internal.h"
#include "resolve.h"
#include "tp_mem.h"
#include "verify_cache.h"

struct tp_probe_engine {
  uv_loop_t *loop;
  const tp_log *log;
  unsigned max_in_flight, max_pending;
  unsigned in_flight, pending;
  tp_probe *queue_head, *queue_tail;
  /* Loop-lag reference: stamped just before the loop blocks in poll. */
  uv_prepare_t prepare;
  uint64_t prepare_ns, idle_at_prepare;
  void (*on_closed)(void *);
  void *closed_data;
  tp_aia_cache *aia_cache; /* issuers fetched by AIA, per URL (aia.c) */
  tp_resolver *resolver;   /* DNS on this loop (c-ares) */
  tp_engine_caches caches; /* verified chains, certificate facts (verify_cache.h) */
};

/* Largest max_in_flight accepted: keeps 16 * max_in_flight and the agent's
 * file-descriptor arithmetic far from overflow. */
#define MAX_IN_FLIGHT_LIMIT 65536u

static void on_prepare(uv_prepare_t *handle) {
  tp_probe_engine *e = handle->data;
  e->prepare_ns = uv_hrtime();
  e->idle_at_prepare = uv_metrics_idle_time(e->loop);
}

/* How long the event being handled at `now` waited since the kernel reported
 * it: the loop's poll returned at prepare time + time blocked in poll (libuv's
 * idle-time metric, updated before the first I/O callback runs); everything
 * after that until `now` was spent in callbacks that ran before this one.
 * Events that became ready while the previous iteration was busy are not
 * seen here (their wait is invisible without kernel timestamps). */
uint64_t tp__engine_lag_at(const tp_probe_engine *e, uint64_t now) {
  uint64_t idle = uv_metrics_idle_time(e->loop);
  uint64_t poll_returned = e->prepare_ns + (idle - e->idle_at_prepare);
  return now > poll_returned ? now - poll_returned : 0;
}

uv_loop_t *tp__engine_loop(const tp_probe_engine *e) {
  return e->loop;
}

tp_aia_cache *tp__engine_aia_cache(tp_probe_engine *e) {
  return e->aia_cache;
}

tp_resolver *tp__engine_resolver(tp_probe_engine *e) {
  return e->resolver;
}

/* Starts queued probes while there are free slots. */
static void start_queued(tp_probe_engine *e) {
  while (e->queue_head != NULL && e->in_flight < e->max_in_flight) {
    tp_probe *next = e->queue_head;
    e->queue_head = next->next;
    if (e->queue_head == NULL)
      e->queue_tail = NULL;
    e->pending--;
    e->in_flight++;
    tp__probe_start(next);
  }
}

tp_engine_caches *tp__engine_caches(tp_probe_engine *e) {
  return &e->caches;
}

void tp_probe_engine_cache_stats(const tp_probe_engine *e, tp_probe_cache_stats *out) {
  *out = e->caches.stats;
  out->verify_entries = e->caches.verified ? tp__digest_cache_count(e->caches.verified) : 0;
  out->facts_entries = e->caches.facts ? tp__digest_cache_count(e->caches.facts) : 0;
}

/* A probe was freed: start the next queued one before its result is handed
 * out, so a callback that submits more work sees a consistent engine. */
void tp__engine_probe_released(tp_probe_engine *e) {
  e->in_flight--;
  start_queued(e);
}

static void on_unused_engine_closed(uv_handle_t *handle) {
  free(handle->data);
}

tp_err tp_probe_engine_new(uv_loop_t *loop, const tp_probe_engine_options *options,
                           const tp_log *log, tp_probe_engine **out) {
  unsigned in_flight = options && options->max_in_flight ? options->max_in_flight : 64;
  if (in_flight > MAX_IN_FLIGHT_LIMIT)
    return TP_E_INVAL;
  tp_probe_engine *e = tp_xcalloc(1, sizeof(*e));
  e->loop = loop;
  e->log = log;
  e->max_in_flight = in_flight;
  e->max_pending = options && options->max_pending ? options->max_pending : 16 * in_flight;
  /* Needed for lag_at(); harmless if already enabled on this loop. */
  if (uv_loop_configure(loop, UV_METRICS_IDLE_TIME) < 0 || uv_prepare_init(loop, &e->prepare) < 0) {
    free(e);
    return TP_E_LOOP;
  }
  e->prepare.data = e;
  (void)uv_prepare_start(&e->prepare, on_prepare); /* fails only for a NULL callback */
  uv_unref((uv_handle_t *)&e->prepare); /* the engine alone must not keep the loop alive */
  e->prepare_ns = uv_hrtime();
  e->idle_at_prepare = uv_metrics_idle_time(loop);
  /* Lookups beyond what probes in flight can use wait in the resolver. */
  tp_resolver_options ro = {.servers = options ? options->dns_servers : NULL,
                            .max_in_flight = in_flight,
                            .max_waiting = in_flight * 2};
  if (tp_resolver_new(loop, &ro, &e->resolver) != TP_E_OK) {
    /* e is freed once the loop has closed the prepare handle */
    uv_prepare_stop(&e->prepare);
    uv_close((uv_handle_t *)&e->prepare, on_unused_engine_closed);
    return TP_E_CONFIG;
  }
  e->aia_cache = tp__aia_cache_new();
  tp__engine_caches_init(&e->caches, options);
  *out = e;
  return TP_E_OK;
}

tp_err tp_probe_engine_submit(tp_probe_engine *e, const tp_target *target,
                              const tp_profile *profile, const tp_probe_timeouts *timeouts,
                              tp_probe_done_cb cb, void *data) {
  if (target == NULL || target->host == NULL || target->name == NULL || profile == NULL ||
      cb == NULL || target->port == 0 || timeouts == NULL)
    return TP_E_INVAL;
  bool start_now = e->in_flight < e->max_in_flight;
  if (!start_now && e->pending >= e->max_pending)
    return TP_E_FULL;
  tp_probe *p = tp_xcalloc(1, sizeof(*p));
  p->engine = e;
  p->target = *target;
  p->profile = profile;
  p->timeouts = *timeouts;
  p->cb = cb;
  p->cb_data = data;
  p->state = PROBE_QUEUED;
  if (start_now) {
    e->in_flight++;
    tp__probe_start(p);
    return TP_E_OK;
  }
  if (e->queue_tail != NULL)
    e->queue_tail->next = p;
  else
    e->queue_head = p;
  e->queue_tail = p;
  e->pending++;
  return TP_E_OK;
}

tp_err tp_probe_engine_set_max_in_flight(tp_probe_engine *e, unsigned max_in_flight) {
  if (max_in_flight == 0 || max_in_flight > MAX_IN_FLIGHT_LIMIT)
    return TP_E_INVAL;
  e->max_in_flight = max_in_flight;
  start_queued(e);
  return TP_E_OK;
}

unsigned tp_probe_engine_max_in_flight(const tp_probe_engine *e) {
  return e->max_in_flight;
}

unsigned tp_probe_engine_in_flight(const tp_probe_engine *e) {
  return e->in_flight;
}

unsigned tp_probe_engine_pending(const tp_probe_engine *e) {
  return e->pending;
}

unsigned tp_probe_engine_cancel_pending(tp_probe_engine *e) {
  unsigned dropped = 0;
  while (e->queue_head != NULL) {
    tp_probe *p = e->queue_head;
    e->queue_head = p->next;
    e->pending--;
    p->cb(NULL, p->cb_data);
    free(p);
    dropped++;
  }
  e->queue_tail = NULL;
  return dropped;
}

static void on_engine_closed(uv_handle_t *handle) {
  tp_probe_engine *e = handle->data;
  void (*cb)(void *) = e->on_closed;
  void *data = e->closed_data;
  tp__aia_cache_free(e->aia_cache);
  tp__engine_caches_free(&e->caches);
  free(e);
  if (cb != NULL)
    cb(data);
}

static void on_resolver_closed(void *data) {
  tp_probe_engine *e = data;
  e->resolver = NULL;
  uv_prepare_stop(&e->prepare);
  uv_close((uv_handle_t *)&e->prepare, on_engine_closed);
}

void tp_probe_engine_close(tp_probe_engine *e, void (*on_closed)(void *data), void *data) {
  (void)tp_probe_engine_cancel_pending(e);
  e->on_closed = on_closed;
  e->closed_data = data;
  if (e->resolver != NULL)
    tp_resolver_close(e->resolver, on_resolver_closed, e);
  else
    on_resolver_closed(e);
}
