/* maintenance.h - the collector's storage maintenance, on its own thread while
 * serving: every `interval` one tp_store_maintain pass (fold new results into the
 * per-minute rollups, then apply the raw and rollup retentions), through its own
 * store connection to the same database.
 *
 * Why a thread and a connection of its own: ingest runs on libmicrohttpd's single
 * thread with the serving store, and a pass over a backlog (the first one after a
 * migration rolls up every stored result) takes seconds to minutes. In WAL mode the
 * two connections only contend for the write lock, which a pass takes in chunks of
 * TP_STORE_MAINTAIN_CHUNK rows (~10-25 ms); between chunks it pauses three times as
 * long as the chunk took (2..200 ms), so an ingest waiting for the lock gets it
 * within a chunk and a pass catching up on a backlog takes at most about a quarter
 * of the writer's time -- while ingest has requests in hand; when it has none, the next
 * chunk follows at once (an agent arriving meanwhile waits at most one chunk, as it
 * would have with the pause: the gauge counts a request from its reservation, before
 * its body is decoded, so the next check already sees it). Keeping up (a pass per interval over what arrived since)
 * costs a few percent of it.
 *
 * Logs one line per pass that did something (counts and milliseconds), an error
 * line per failed pass (the next pass retries; committed chunks stay), nothing when
 * idle. tp_maintenance_stop returns within one chunk. */
#ifndef TP_MAINTENANCE_H
#define TP_MAINTENANCE_H
#include <stdatomic.h>
#include <stdint.h>

#include "tp_error.h"
#include "tp_log.h"

typedef struct tp_maintenance tp_maintenance;

typedef struct tp_maintenance_options {
  const char *database;         /* SQLite file, already created and migrated by serve */
  uint64_t interval_ms;         /* between passes; the first runs one interval after start */
  uint64_t raw_retention_ms;    /* tp_store_maintain_limits */
  uint64_t rollup_retention_ms;
  uint32_t chunk_rows;          /* 0 = TP_STORE_MAINTAIN_CHUNK */
  /* Optional: the requests ingest has taken and not answered (tp_ingest_queue_options
   * .pending_gauge; borrowed). While it reads 0 a pass goes on to its next chunk without
   * the pause: a backlog is worked off at full speed when no agent is waiting. */
  const atomic_uint *ingest_pending;
} tp_maintenance_options;

/* Opens the thread's own read-write store and starts the thread. The log is
 * borrowed (it must outlive tp_maintenance_stop). TP_E_STORE or TP_E_IO with a
 * message in err on failure. */
tp_err tp_maintenance_start(const tp_maintenance_options *options, const tp_log *log,
                            tp_maintenance **out, char *err, size_t errlen);
/* Wakes the thread, waits for it (it finishes at most its current chunk), closes
 * its store and frees it. NULL is ignored. */
void tp_maintenance_stop(tp_maintenance *m);

#endif
