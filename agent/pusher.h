/* pusher.h - ships queued results to the collector as protobuf batches over
 * HTTP POST, with libcurl's multi interface on the agent's libuv loop.
 *
 * A batch is taken out of the queue, serialised once and kept -- same bytes,
 * same (instance_id, batch_seq) -- until the collector acknowledges it, so a
 * retry after a lost response is recognised by the collector as a duplicate
 * and counted once. Failed pushes back off exponentially (1 s doubling, capped
 * at 30 s, with jitter). A batch the collector rejects as invalid (HTTP 4xx)
 * would be rejected forever: it is dropped, logged and counted as rejected.
 *
 * libcurl is only the transport to our own collector; it never carries a
 * client profile (its GnuTLS backend ignores cipher lists). */
#ifndef TP_PUSHER_H
#define TP_PUSHER_H
#include <stdint.h>
#include <uv.h>

#include "queue.h"
#include "tp_error.h"
#include "tp_log.h"

typedef struct tp_pusher_options {
  const char *url;
  const char *agent_id;
  const char *region;
  unsigned batch_size;
  uint64_t flush_interval_ms;
  uint64_t timeout_ms; /* per HTTP request */
} tp_pusher_options;

typedef struct tp_pusher_stats {
  uint64_t pushed;     /* results acknowledged by the collector */
  uint64_t duplicates; /* results in batches the collector already had */
  uint64_t rejected;   /* results in batches the collector refused (4xx) */
  uint64_t invalid;    /* results that broke the wire contract, sent as minimal error results */
  uint64_t invalid_dropped; /* ... whose minimal replacement broke it too (identity): dropped */
  uint64_t batches;    /* acknowledged batches */
  uint64_t failures;   /* failed attempts (network, 5xx, bad ack) */
  uint64_t unsent;     /* results in the queue or in an unacknowledged batch */
} tp_pusher_stats;

typedef struct tp_pusher tp_pusher;

/* The queue is borrowed and must outlive the pusher. curl_global_init must
 * have been called (by main). */
tp_err tp_pusher_new(uv_loop_t *loop, const tp_pusher_options *options, tp_queue *queue,
                     const tp_log *log, tp_pusher **out);
/* Starts the periodic flush timer. */
void tp_pusher_start(tp_pusher *pusher);
/* Tells the pusher new results were queued (pushes early on a full batch). */
void tp_pusher_notify(tp_pusher *pusher);
/* Pushes everything queued, back to back, until the queue is empty or
 * `deadline_ms` elapsed; then calls done(data). Retries keep their backoff. */
void tp_pusher_flush(tp_pusher *pusher, uint64_t deadline_ms, void (*done)(void *data),
                     void *data);
void tp_pusher_get_stats(const tp_pusher *pusher, tp_pusher_stats *stats);
/* Aborts any request, closes handles; freed in the last close callback.
 * Results of an unacknowledged batch are freed (counted in unsent before). */
void tp_pusher_close(tp_pusher *pusher);

#endif
