/* saturation.h - knowing when the agent's own timings are wrong, and backing off.
 *
 * A probe's durations measure the server only while the agent keeps up. Three
 * signals say it did not, per probe loop:
 *   - loop lag: the probe's events waited behind other callbacks on the loop
 *     (measured by the engine, already subtracted, but a sign of overload);
 *   - lateness: the probe started long after its planned time (timer fired late
 *     or it queued behind max_in_flight);
 *   - CPU wait: the loop's thread was runnable but not running (another process
 *     or the agent's other threads had the CPUs), a wait no user-space clock
 *     subtracts (cpu_wait.h).
 * A result past any threshold is marked `saturated`; the collector keeps such
 * results out of latency percentiles by default and counts them per agent.
 *
 * With `adaptive`, the controller lowers the engine's in-flight limit while lag
 * or CPU wait says the loop is overloaded (halving, at most every 500 ms, down to
 * min_in_flight) and raises it by one per healthy 100 ms while probes are queued,
 * up to the configured limit: fewer probes at once leave each one's timing its
 * own. Lateness alone never lowers the limit (that would only add queueing). */
#ifndef TP_SATURATION_H
#define TP_SATURATION_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cpu_wait.h"
#include "probe.h"
#include "result.h"
#include "tp_error.h"
#include "tp_log.h"

typedef struct tp_saturation_options {
  uint64_t max_loop_lag_ns;
  uint64_t max_lateness_ns;
  unsigned max_cpu_wait_permille;
  bool adaptive;
  unsigned min_in_flight, max_in_flight; /* max = limits.max_in_flight */
} tp_saturation_options;

/* The controller's pure state: no loop, no clock (tests drive it). */
typedef struct tp_saturation_ctl {
  tp_saturation_options o;
  unsigned limit;              /* the in-flight limit it wants now */
  uint64_t last_cut_ns;        /* when it last lowered the limit */
  bool overloaded;             /* lag or CPU wait past threshold since the last tick */
  uint64_t saturated, results; /* counted by tp_saturation_ctl_judge */
} tp_saturation_ctl;

void tp_saturation_ctl_init(tp_saturation_ctl *ctl, const tp_saturation_options *options);
/* Marks r->saturated from its loop lag, its lateness and the CPU wait over its
 * lifetime (cpu_wait_known = false: not available). */
void tp_saturation_ctl_judge(tp_saturation_ctl *ctl, tp_result *r, bool cpu_wait_known,
                             unsigned cpu_wait_permille);
/* One controller step at now_ns: `tick_cpu_wait_permille` is the loop's CPU wait
 * over the last sample interval (known or not), `pending` the probes queued.
 * Returns the new in-flight limit. */
unsigned tp_saturation_ctl_tick(tp_saturation_ctl *ctl, uint64_t now_ns, bool cpu_wait_known,
                                unsigned tick_cpu_wait_permille, unsigned pending);

/* The per-loop part: a 100 ms timer sampling the thread's CPU wait and stepping
 * the controller against the engine. Runs on the loop's thread. */
typedef struct tp_saturation tp_saturation;

tp_err tp_saturation_new(uv_loop_t *loop, const tp_saturation_options *options,
                         tp_probe_engine *engine, const tp_log *log, tp_saturation **out);
/* Call on the loop's thread (the CPU-wait counter is per thread). */
void tp_saturation_start(tp_saturation *s);
/* Judges a finished probe that was due at started_ns (uv_hrtime). */
void tp_saturation_judge(tp_saturation *s, tp_result *r, uint64_t started_ns);
unsigned tp_saturation_limit(const tp_saturation *s);
/* Stops and closes the timer; freed in its close callback. */
void tp_saturation_close(tp_saturation *s);

#endif
