/* scheduler.h - runs every (job, target, profile) series at its interval.
 * Each series gets a random phase in [0, interval) and ±10% jitter on every
 * period, so a thousand series configured alike do not fire in the same
 * millisecond. A series whose previous probe is still running skips its turn
 * (counted) instead of piling probes onto a slow target. */
#ifndef TP_SCHEDULER_H
#define TP_SCHEDULER_H
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "loop_stats.h"
#include "probe.h"
#include "saturation.h"
#include "tp_log.h"

typedef struct tp_scheduler tp_scheduler;

/* Receives each finished probe's result (ownership passes). */
typedef void (*tp_scheduler_result_cb)(tp_result *result, void *data);

/* profiles[i] is the built profile of config->profiles[i]; both must outlive
 * the scheduler. Series are numbered in config order (job, target, profile);
 * this scheduler runs those with number % shard_count == shard_index, so
 * several loops can split the work without overlap. */
tp_err tp_scheduler_new(uv_loop_t *loop, const tp_agent_config *config,
                        tp_profile *const *profiles, unsigned shard_index, unsigned shard_count,
                        tp_probe_engine *engine, const tp_log *log,
                        tp_scheduler_result_cb on_result, void *data, tp_scheduler **out);
size_t tp_scheduler_series(const tp_scheduler *scheduler);
/* Reports lateness, starts, skips and the engine's load into stats (borrowed, must
 * outlive the scheduler; NULL = none). Set before tp_scheduler_start. */
void tp_scheduler_set_stats(tp_scheduler *scheduler, tp_loop_stats *stats);
/* Every result gets its schedule lateness; with a saturation judge (borrowed, must
 * outlive the scheduler; NULL = none) it is also marked saturated or not. */
void tp_scheduler_set_saturation(tp_scheduler *scheduler, tp_saturation *saturation);
void tp_scheduler_start(tp_scheduler *scheduler);
/* Stops firing; probes already submitted still report through on_result. */
void tp_scheduler_stop(tp_scheduler *scheduler);
/* Probes submitted whose result has not come back yet. */
unsigned tp_scheduler_outstanding(const tp_scheduler *scheduler);
uint64_t tp_scheduler_skipped(const tp_scheduler *scheduler);
/* Closes the timers; the scheduler is freed in the last close callback.
 * Requires tp_scheduler_outstanding() == 0. */
void tp_scheduler_close(tp_scheduler *scheduler);

#endif
