/* agent.h - wires config, profiles, probe engine, scheduler, spool and pusher
 * on one libuv loop, and sequences shutdown:
 *   stop scheduling -> drop queued probes -> wait for probes in flight (each
 *   bounded by its timeouts) -> flush results (bounded; what is left stays in
 *   the spool for the next start) -> close handles.
 * SIGINT/SIGTERM or the optional run-for timer start the shutdown; SIGHUP
 * reloads the collector token. */
#ifndef TP_AGENT_H
#define TP_AGENT_H
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "tp_error.h"
#include "tp_log.h"

typedef struct tp_agent tp_agent;

typedef struct tp_agent_stats {
  uint64_t produced, pushed, duplicates, rejected, replaced, invalid, invalid_dropped, dropped,
      skipped, unsent;
  bool spool_durable;  /* false: a memory spool (configured, or the file could not be opened) */
  const char *spool;   /* "sqlite:PATH" or "memory"; valid until tp_agent_free */
} tp_agent_stats;

/* Builds every component; on failure writes a message to err. The config and
 * log are borrowed and must outlive the agent. check_only (--check): nothing is
 * created on disk; the spool's directory is only checked to be writable. */
tp_err tp_agent_new(const tp_agent_config *config, const tp_log *log, bool check_only,
                    tp_agent **out, char *err, size_t errlen);
/* Runs until shutdown completes. run_for_ms = 0 runs until a signal. */
tp_err tp_agent_run(tp_agent *agent, uint64_t run_for_ms);
void tp_agent_get_stats(const tp_agent *agent, tp_agent_stats *stats);
void tp_agent_free(tp_agent *agent);

#endif
