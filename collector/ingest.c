/* ingest.c - decode -> validate -> store -> ack. Sits between http_server.c (which
 * bounded the body) and the store. Nothing is stored unless the whole batch is
 * valid, so a rejected batch can be fixed and re-sent without double counting. */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsprobe.pb-c.h"
#include "tp_mem.h"
#include "validate.h"

/* The agent id is logged before it is validated: neutralize anything that could
 * forge log fields or lines. */
static void copy_for_log(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src[i] != '\0' && i + 1 < cap; i++)
    dst[i] = (src[i] > 0x20 && src[i] < 0x7F && src[i] != '"') ? src[i] : '?';
  dst[i] = '\0';
}

static void build_ack(const Tlsprobe__V1__ResultBatch *batch, tp_ingest_reply *reply) {
  Tlsprobe__V1__BatchAck ack = TLSPROBE__V1__BATCH_ACK__INIT;
  ack.batch_seq = batch->batch_seq;
  ack.stored = reply->stored;
  ack.duplicate = reply->duplicate;
  reply->ack_len = tlsprobe__v1__batch_ack__get_packed_size(&ack);
  /* +1: a zero-length ack (all fields default) still gets a valid pointer. */
  reply->ack = tp_xmalloc(reply->ack_len + 1);
  size_t packed = tlsprobe__v1__batch_ack__pack(&ack, reply->ack);
  /* pack writes exactly get_packed_size bytes; a mismatch is a protobuf-c bug. */
  if (packed != reply->ack_len)
    abort();
}

tp_err tp_ingest_batch(tp_store *store, const uint8_t *body, size_t len, int64_t received_unix_ns,
                       tp_ingest_reply *reply) {
  tp_err rc = TP_E_OK;
  memset(reply, 0, sizeof(*reply));
  Tlsprobe__V1__ResultBatch *batch = tlsprobe__v1__result_batch__unpack(NULL, len, body);
  if (batch == NULL) {
    reply->http_status = 400;
    snprintf(reply->reason, sizeof(reply->reason), "malformed protobuf");
    rc = TP_E_DECODE;
    goto out;
  }
  reply->results = batch->n_results;
  copy_for_log(reply->agent_id, sizeof(reply->agent_id), batch->agent_id);
  rc = tp_validate_batch(batch, reply->reason, sizeof(reply->reason));
  if (rc != TP_E_OK) {
    reply->http_status = 400;
    goto out;
  }
  tp_store_put_outcome put;
  rc = tp_store_put_batch(store, batch, received_unix_ns, &put, reply->reason,
                          sizeof(reply->reason));
  if (rc != TP_E_OK) {
    reply->http_status = 503;
    goto out;
  }
  reply->duplicate = put.duplicate;
  reply->stored = put.results_stored;
  reply->drops_stored = put.drops_stored;
  reply->drops = batch->n_drops;
  build_ack(batch, reply);
  reply->http_status = 200;
out:
  if (batch != NULL)
    tlsprobe__v1__result_batch__free_unpacked(batch, NULL);
  return rc;
}

void tp_ingest_reply_clear(tp_ingest_reply *reply) {
  free(reply->ack);
  reply->ack = NULL;
  reply->ack_len = 0;
}
