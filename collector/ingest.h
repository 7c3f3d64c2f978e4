/* ingest.h - one POST /v1/results body in, one reply out: decode the ResultBatch
 * within a memory budget, check it was sent by the authenticated agent, validate it
 * (contract and time window), store it (all or nothing) and build the BatchAck. A
 * pure function of the bytes, the parameters and the store -- no HTTP here, so unit
 * tests and the fuzz target drive it directly. */
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
/* tp_ingest_batch_ex without a time window or identity. */
tp_err tp_ingest_batch(tp_store *store, const uint8_t *body, size_t len, int64_t received_unix_ns,
                       tp_ingest_reply *reply);
void tp_ingest_reply_clear(tp_ingest_reply *reply);

#endif
