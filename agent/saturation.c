/* saturation.c - marking results taken under saturation and adapting the
 * in-flight limit (saturation.h). */
#include "saturation.h"

#include <stdlib.h>
#include <unistd.h>

#include "tp_mem.h"

#define TICK_MS 100
#define NS_PER_MS 1000000ull
/* Halve at most this often: a cut needs time to show in the next samples. */
#define CUT_EVERY_NS (500 * NS_PER_MS)
/* After a cut, wait this long before growing again (no sawtooth at 10 Hz). */
#define GROW_AFTER_CUT_NS (1000 * NS_PER_MS)

void tp_saturation_ctl_init(tp_saturation_ctl *ctl, const tp_saturation_options *o) {
  *ctl = (tp_saturation_ctl){.o = *o, .limit = o->max_in_flight};
  if (ctl->o.min_in_flight == 0)
    ctl->o.min_in_flight = 1;
  if (ctl->o.min_in_flight > ctl->o.max_in_flight)
    ctl->o.min_in_flight = ctl->o.max_in_flight;
}

void tp_saturation_ctl_judge(tp_saturation_ctl *ctl, tp_result *r, bool cpu_wait_known,
                             unsigned cpu_wait_permille) {
  bool lagged = r->loop_lag_ns > ctl->o.max_loop_lag_ns;
  bool late = r->schedule_lateness_ns > ctl->o.max_lateness_ns;
  bool starved = cpu_wait_known && cpu_wait_permille > ctl->o.max_cpu_wait_permille;
  r->saturated = lagged || late || starved;
  if (lagged || starved)
    ctl->overloaded = true;
  ctl->results++;
  if (r->saturated)
    ctl->saturated++;
}

unsigned tp_saturation_ctl_tick(tp_saturation_ctl *ctl, uint64_t now_ns, bool cpu_wait_known,
                                unsigned tick_cpu_wait_permille, unsigned pending) {
  bool overloaded =
      ctl->overloaded || (cpu_wait_known && tick_cpu_wait_permille > ctl->o.max_cpu_wait_permille);
  ctl->overloaded = false;
  if (!ctl->o.adaptive)
    return ctl->limit;
  bool cut_recently = ctl->last_cut_ns != 0 && now_ns - ctl->last_cut_ns < CUT_EVERY_NS;
  if (overloaded) {
    if (!cut_recently && ctl->limit > ctl->o.min_in_flight) {
      unsigned half = ctl->limit / 2;
      ctl->limit = half < ctl->o.min_in_flight ? ctl->o.min_in_flight : half;
      ctl->last_cut_ns = now_ns;
    }
    return ctl->limit;
  }
  bool settled = ctl->last_cut_ns == 0 || now_ns - ctl->last_cut_ns >= GROW_AFTER_CUT_NS;
  if (pending > 0 && settled && ctl->limit < ctl->o.max_in_flight)
    ctl->limit++;
  return ctl->limit;
}

/* ---- the per-loop part ------------------------------------------------ */

struct tp_saturation {
  uv_timer_t timer;
  tp_probe_engine *engine; /* borrowed */
  tp_saturation_ctl ctl;
  tp_cpu_wait_ring ring;
  int schedstat_fd; /* -1 = not open */
  bool cpu_wait_available;
  const tp_log *log; /* borrowed; NULL = tp_log defaults (stderr) */
};

static void sample(tp_saturation *s) {
  uint64_t waited;
  if (!s->cpu_wait_available)
    return;
  tp_err rc = tp_cpu_wait_read_thread(&s->schedstat_fd, &waited);
  if (rc != TP_E_OK) {
    /* One failure: stop asking (no log spam at 10 Hz), but say so once: from now on
     * only loop lag and lateness mark results saturated. */
    s->cpu_wait_available = false;
    tp_log_warn(s->log, "cannot read the loop thread's CPU wait; saturation judged without it",
                "source=/proc/thread-self/schedstat error=\"%s\"", tp_err_name(rc));
    return;
  }
  tp_cpu_wait_ring_add(&s->ring, uv_hrtime(), waited);
}

static void on_tick(uv_timer_t *timer) {
  tp_saturation *s = timer->data;
  sample(s);
  unsigned permille = 0;
  bool known =
      s->cpu_wait_available && tp_cpu_wait_ring_permille(&s->ring, uv_hrtime() - 1, &permille);
  unsigned before = s->ctl.limit;
  unsigned limit = tp_saturation_ctl_tick(&s->ctl, uv_hrtime(), known, permille,
                                          tp_probe_engine_pending(s->engine));
  if (limit != before)
    (void)tp_probe_engine_set_max_in_flight(s->engine, limit); /* limit is within 1..max */
}

tp_err tp_saturation_new(uv_loop_t *loop, const tp_saturation_options *options,
                         tp_probe_engine *engine, const tp_log *log, tp_saturation **out) {
  if (options->max_in_flight == 0)
    return TP_E_INVAL;
  tp_saturation *s = tp_xcalloc(1, sizeof(*s));
  if (uv_timer_init(loop, &s->timer) != 0) {
    free(s);
    return TP_E_LOOP;
  }
  s->timer.data = s;
  s->engine = engine;
  s->log = log;
  s->schedstat_fd = -1;
  s->cpu_wait_available = true;
  tp_saturation_ctl_init(&s->ctl, options);
  *out = s;
  return TP_E_OK;
}

void tp_saturation_start(tp_saturation *s) {
  sample(s); /* opens this thread's counter: the loop's thread, not the creator's */
  (void)uv_timer_start(&s->timer, on_tick, TICK_MS, TICK_MS); /* fails only without a callback */
  uv_unref((uv_handle_t *)&s->timer); /* sampling alone must not keep the loop alive */
}

void tp_saturation_judge(tp_saturation *s, tp_result *r, uint64_t started_ns) {
  unsigned permille = 0;
  bool known = s->cpu_wait_available && tp_cpu_wait_ring_permille(&s->ring, started_ns, &permille);
  tp_saturation_ctl_judge(&s->ctl, r, known, permille);
}

unsigned tp_saturation_limit(const tp_saturation *s) { return s->ctl.limit; }

static void on_closed(uv_handle_t *handle) {
  tp_saturation *s = handle->data;
  if (s->schedstat_fd >= 0)
    (void)close(s->schedstat_fd);
  free(s);
}

void tp_saturation_close(tp_saturation *s) {
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, on_closed);
}
