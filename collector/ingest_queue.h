/* ingest_queue.h - group commit between the HTTP server and the store. Request
 * bodies are decoded and validated by a few worker threads at once (tp_ingest_prepare);
 * one writer thread -- the only user of the store -- takes every batch that is ready
 * and stores them in one transaction (tp_store_put_batches), then answers each: a
 * request's BatchAck is built only after the transaction that holds it committed, and
 * a failed commit answers every request of its group 503 (the agents retry; nothing
 * acknowledged is lost, nothing refused is half stored).
 *
 *   http_server --submit--> [decode queue] --workers--> [commit queue] --writer--> store
 *        ^                                                                   |
 *        +------------------------- done(ctx, reply) -----------------------+
 *
 * Bounded: at most max_pending requests are taken (decoding, waiting or being
 * stored); beyond, tp_ingest_queue_reserve says TP_E_FULL and the server answers 503
 * with Retry-After. Decoded batches held in memory are bounded too (503 beyond). */
#ifndef TP_INGEST_QUEUE_H
#define TP_INGEST_QUEUE_H
#include <stddef.h>
#include <stdint.h>

#include <stdatomic.h>

#include "ingest.h"
#include "store.h"
#include "tp_error.h"

typedef struct tp_ingest_queue tp_ingest_queue;

/* Zero values are the defaults in brackets. */
typedef struct tp_ingest_queue_options {
  unsigned workers;         /* decoding threads [the CPUs, 1..16] */
  unsigned max_pending;     /* requests taken and not yet answered [1024] */
  size_t max_decoded_bytes; /* decoded batches waiting in memory [256 MiB] */
  unsigned max_group;       /* batches per transaction [256] */
  size_t max_group_results; /* results per transaction, unless one batch has more [100000] */
  /* Optional [none]: kept equal to the requests taken and not yet answered, for readers
   * on other threads -- maintenance works off a backlog without pausing while it is 0. */
  atomic_uint *pending_gauge;
} tp_ingest_queue_options;

/* The answer to one request, from a worker (refused, 400/403/503) or from the writer
 * (after the commit): reply is the callee's to clear (tp_ingest_reply_clear). Called
 * exactly once per submitted request, on one of the queue's threads, never with a
 * lock of the queue held. */
typedef void (*tp_ingest_done_fn)(void *ctx, tp_ingest_reply *reply);

/* Starts the threads; the queue borrows store (the writer thread is its only user
 * from now on). TP_E_NOMEM with err when a thread cannot be started. */
tp_err tp_ingest_queue_new(tp_store *store, const tp_ingest_queue_options *options,
                           tp_ingest_queue **out, char *err, size_t errlen);

/* Takes a place for one request: TP_E_FULL when max_pending are taken or the queue is
 * stopping (answer 503 now). On TP_E_OK the caller must submit exactly one request. */
tp_err tp_ingest_queue_reserve(tp_ingest_queue *q);
/* Hands over a reserved request. body stays the caller's and must stay valid until
 * done is called; params is copied (the strings it points to -- identity -- must stay
 * valid until done too; the time window is copied). */
void tp_ingest_queue_submit(tp_ingest_queue *q, const uint8_t *body, size_t len,
                            const tp_ingest_params *params, tp_ingest_done_fn done, void *ctx);

typedef struct tp_ingest_queue_stats {
  uint64_t groups;    /* transactions */
  uint64_t batches;   /* batches stored through them */
  uint64_t max_group; /* the most batches one transaction held */
  uint64_t full;      /* reservations refused */
} tp_ingest_queue_stats;
void tp_ingest_queue_stats_get(tp_ingest_queue *q, tp_ingest_queue_stats *out);

/* Stops taking requests (reserve says TP_E_FULL from now on), finishes every one
 * taken -- each done is called, stored and answered like any other -- and joins the
 * threads. The queue stays valid for reserve until it is freed, so a server thread
 * that still calls it is answered 503. */
void tp_ingest_queue_stop(tp_ingest_queue *q);
/* tp_ingest_queue_stop if not done, then frees the queue. */
void tp_ingest_queue_free(tp_ingest_queue *q);

#endif
