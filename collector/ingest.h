/* ingest.h - one POST /v1/results body in, one reply out: decode the ResultBatch,
 * validate it, store it (all or nothing) and build the BatchAck. A pure function of
 * the bytes and the store -- no HTTP here, so unit tests drive it directly. */
#ifndef TP_INGEST_H
#define TP_INGEST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tp_error.h"

typedef struct tp_ingest_reply {
  int http_status;  /* 200, 400 (decode/validate) or 503 (store: the agent retries) */
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

/* Returns TP_E_OK (stored or duplicate), TP_E_DECODE, TP_E_VALIDATE or TP_E_STORE;
 * `reply` is filled in every case. */
tp_err tp_ingest_batch(tp_store *store, const uint8_t *body, size_t len, int64_t received_unix_ns,
                       tp_ingest_reply *reply);
void tp_ingest_reply_clear(tp_ingest_reply *reply);

#endif
