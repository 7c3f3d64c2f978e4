/* ingest.h - one POST /v1/results body in, one reply out: decode the ResultBatch
 * within a memory budget, check it was sent by the authenticated agent, validate it
 * (contract and time window), store it (all or nothing) and build the BatchAck. A
 * pure function of the bytes, the parameters and the store -- no HTTP here, so unit
 * tests and the fuzz target drive it directly.
 *
 * In two halves for group commit (ingest_queue.h): tp_ingest_prepare does everything
 * up to the store on any thread (many at once), the caller stores the job's put
 * together with other jobs' (tp_store_put_batches), and tp_ingest_finish counts what
 * the commit stored and builds the answer. tp_ingest_batch_ex is the two halves
 * around a group of one. */
#ifndef TP_INGEST_H
#define TP_INGEST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "store.h"
#include "tp_error.h"
#include "validate.h"

typedef struct tp_ingest_reply {
  int http_status;  /* 200, 400 (decode/validate), 403 (agent_id is not the authenticated
                       agent) or 503 (store or memory: the agent retries) */
  char reason[256]; /* for non-200: short specific reason, sent as the response body */
  uint8_t *ack;     /* for 200: serialized BatchAck, owned; free with tp_ingest_reply_clear */
  size_t ack_len;
  bool duplicate;        /* nothing of the batch was new (a re-send) */
  uint32_t stored;       /* results newly stored */
  uint32_t drops_stored; /* drop reports newly stored */
  size_t results;        /* results in the batch (0 if it did not decode) */
  size_t drops;          /* drop reports in the batch */
  char agent_id[130]; /* for logs; empty if the batch did not decode */
} tp_ingest_reply;

typedef struct tp_ingest_params {
  int64_t received_unix_ns;
  /* Believable result times; NULL = any positive time (tools and tests that replay
   * old batches; the HTTP server always passes the configured window). */
  const tp_time_window *window;
  /* The agent the request authenticated as; the batch's agent_id must equal it.
   * NULL = unauthenticated (auth.allow_unauthenticated): any agent_id. */
  const char *identity;
  /* Counts what the store newly committed (and what it refused); NULL = no metrics. */
  tp_metrics *metrics;
} tp_ingest_params;

/* Decoding may allocate at most this many bytes per body byte (plus a fixed allowance
 * per result, counted in the wire bytes before anything is allocated). */
#define TP_INGEST_DECODE_FACTOR 8

/* Returns TP_E_OK (stored or duplicate), TP_E_DECODE (malformed), TP_E_TOOBIG (over
 * the result limit or the decode budget: 400 "batch too large to decode"),
 * TP_E_VALIDATE (400, or 403 for another agent's id), TP_E_NOMEM or TP_E_STORE (503);
 * `reply` is filled in every case. */
tp_err tp_ingest_batch_ex(tp_store *store, const uint8_t *body, size_t len,
                          const tp_ingest_params *params, tp_ingest_reply *reply);

/* A decoded, validated batch on its way to the store. */
typedef struct tp_ingest_job tp_ingest_job;

/* Decodes, authorizes and validates body, and has the store prepare it
 * (tp_store_prepare). Touches no store connection: any thread, many at once. The
 * body may be freed when this returns. TP_E_OK: *job holds the batch (reply zeroed);
 * otherwise *job is NULL and reply holds the answer (400, 403, 503), with the
 * results counted as refused or failed in params->metrics. params (and what it
 * points to) must outlive the job. */
tp_err tp_ingest_prepare(tp_store *store, const uint8_t *body, size_t len,
                         const tp_ingest_params *params, tp_ingest_job **job,
                         tp_ingest_reply *reply);
/* The job's request to tp_store_put_batches (owned by the job; the store fills its
 * results in place). */
tp_store_put *tp_ingest_job_put(tp_ingest_job *job);
/* Bytes the decoded batch holds (for the caller's memory bound). */
size_t tp_ingest_job_bytes(const tp_ingest_job *job);
size_t tp_ingest_job_results(const tp_ingest_job *job);
/* After the put's group was stored (or failed): counts what the commit newly stored
 * in the metrics -- only when the put's rc is TP_E_OK, i.e. committed --, builds the
 * reply (200 + BatchAck, or 503) and frees the job. Returns what tp_ingest_batch_ex
 * would have. */
tp_err tp_ingest_finish(tp_ingest_job *job, tp_ingest_reply *reply);
/* Frees a job that will not be stored (shutdown), counting it as failed (503). */
void tp_ingest_job_abandon(tp_ingest_job *job, tp_ingest_reply *reply, const char *reason);
/* tp_ingest_batch_ex without a time window or identity. */
tp_err tp_ingest_batch(tp_store *store, const uint8_t *body, size_t len, int64_t received_unix_ns,
                       tp_ingest_reply *reply);
void tp_ingest_reply_clear(tp_ingest_reply *reply);

#endif
