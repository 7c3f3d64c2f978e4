/* ingest.c - decode -> authorize -> validate -> store -> ack. Sits between
 * http_server.c (which bounded the body) and the store. Nothing is stored unless the
 * whole batch is valid, so a rejected batch can be fixed and re-sent without double
 * counting.
 *
 * Decoding is bounded before it allocates: protobuf-c turns every 2-byte empty
 * sub-message into a struct of hundreds of bytes (a 4 MiB body of empty results was
 * 2 M results and 780 MB), so the top-level results are counted in the wire bytes
 * first, and the decoder allocates through a budget sized from the body and that
 * count. Allocation failure on this path is an answer (503), never an abort. */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsprobe.pb-c.h"

/* What glibc's malloc spends beyond the requested size (the chunk header and
 * rounding): 2 M allocations of 9 bytes cost 64 MB, not 18. */
#define ALLOC_OVERHEAD 16
/* Per result counted in the wire: its struct, its pointer and room for the small
 * things it may carry besides its bytes (OCSP/HTTP structs, unknown fields of a
 * newer agent). */
#define PER_RESULT_ALLOWANCE (sizeof(Tlsprobe__V1__ProbeResult) + sizeof(void *) + 1024)
#define PER_DROP_ALLOWANCE (sizeof(Tlsprobe__V1__DropReport) + sizeof(void *) + 256)
#define BASE_ALLOWANCE ((size_t)64 * 1024)

enum { FIELD_RESULTS = 5, FIELD_DROPS = 6 };

/* The agent id is logged before it is validated: neutralize anything that could
 * forge log fields or lines. */
static void copy_for_log(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src[i] != '\0' && i + 1 < cap; i++)
    dst[i] = (src[i] > 0x20 && src[i] < 0x7F && src[i] != '"') ? src[i] : '?';
  dst[i] = '\0';
}

/* ---- counting in the wire bytes ------------------------------------------------ */

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* Walks the top-level fields of a ResultBatch (proto3 wire format: tag = field << 3 |
 * wire type) and counts results and drops. false = not well-formed at the top level,
 * which protobuf-c would refuse too. */
static bool count_top_level(const uint8_t *p, size_t len, size_t *results, size_t *drops) {
  const uint8_t *end = p + len;
  *results = *drops = 0;
  while (p < end) {
    uint64_t tag, n;
    if (!read_varint(&p, end, &tag) || (tag >> 3) == 0)
      return false;
    switch (tag & 7) {
    case 0: /* varint */
      if (!read_varint(&p, end, &n))
        return false;
      break;
    case 1: /* 64-bit */
      if (end - p < 8)
        return false;
      p += 8;
      break;
    case 2: /* length-delimited */
      if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p))
        return false;
      p += n;
      *results += (tag >> 3) == FIELD_RESULTS;
      *drops += (tag >> 3) == FIELD_DROPS;
      break;
    case 5: /* 32-bit */
      if (end - p < 4)
        return false;
      p += 4;
      break;
    default: /* groups (3, 4) are not proto3; 6 and 7 do not exist */
      return false;
    }
  }
  return true;
}

/* ---- the decode budget ----------------------------------------------------------- */

typedef struct decode_budget {
  size_t left;
  bool exhausted; /* a request went over the budget */
  bool nomem;     /* malloc itself failed */
} decode_budget;

static void *budget_alloc(void *data, size_t size) {
  decode_budget *b = data;
  size_t cost = size + ALLOC_OVERHEAD;
  if (cost < size || cost > b->left) {
    b->exhausted = true;
    return NULL;
  }
  void *p = malloc(size > 0 ? size : 1);
  if (p == NULL) {
    b->nomem = true;
    return NULL;
  }
  b->left -= cost;
  return p;
}

static void budget_free(void *data, void *p) {
  (void)data;
  free(p);
}

static size_t budget_for(size_t len, size_t results, size_t drops) {
  size_t b = BASE_ALLOWANCE;
  /* len <= 64 MiB (config) and results/drops are within the wire limits here, so
   * none of these overflow a 64-bit size_t. */
  b += len * TP_INGEST_DECODE_FACTOR;
  b += results * PER_RESULT_ALLOWANCE;
  b += drops * PER_DROP_ALLOWANCE;
  return b;
}

static void fail(tp_ingest_reply *reply, int status, const char *reason) {
  reply->http_status = status;
  snprintf(reply->reason, sizeof(reply->reason), "%s", reason);
}

/* Decodes within the budget; on failure fills reply and returns the error. */
static tp_err decode(const uint8_t *body, size_t len, Tlsprobe__V1__ResultBatch **out,
                     ProtobufCAllocator *alloc, decode_budget *budget, tp_ingest_reply *reply) {
  size_t results, drops;
  *out = NULL;
  if (!count_top_level(body, len, &results, &drops)) {
    fail(reply, 400, "malformed protobuf");
    return TP_E_DECODE;
  }
  /* The same messages tp_validate_batch gives, before a byte is allocated for them. */
  if (results > TP_V_MAX_RESULTS || drops > TP_V_MAX_DROPS) {
    reply->http_status = 400;
    if (results > TP_V_MAX_RESULTS)
      snprintf(reply->reason, sizeof(reply->reason), "results: %zu results exceeds the limit of %d",
               results, TP_V_MAX_RESULTS);
    else
      snprintf(reply->reason, sizeof(reply->reason),
               "drops: %zu drop reports exceeds the limit of %d", drops, TP_V_MAX_DROPS);
    return TP_E_TOOBIG;
  }
  *budget = (decode_budget){.left = budget_for(len, results, drops)};
  *alloc = (ProtobufCAllocator){.alloc = budget_alloc, .free = budget_free, .allocator_data = budget};
  *out = tlsprobe__v1__result_batch__unpack(alloc, len, body);
  if (*out != NULL)
    return TP_E_OK;
  if (budget->nomem) {
    fail(reply, 503, "out of memory, retry later");
    return TP_E_NOMEM;
  }
  if (budget->exhausted) {
    fail(reply, 400, "batch too large to decode");
    return TP_E_TOOBIG;
  }
  fail(reply, 400, "malformed protobuf");
  return TP_E_DECODE;
}

/* 403 unless the batch speaks for the agent that authenticated. Before validation:
 * whoever sends another agent's id must hear "not yours", not a detail of the batch. */
static tp_err authorize(const Tlsprobe__V1__ResultBatch *batch, const char *identity,
                        tp_ingest_reply *reply) {
  /* An empty id is a broken batch, not an impersonation: validation says so. */
  if (identity == NULL || batch->agent_id[0] == '\0' || strcmp(batch->agent_id, identity) == 0)
    return TP_E_OK;
  char shown[68];
  copy_for_log(shown, sizeof(shown), batch->agent_id); /* identity is a valid id already */
  reply->http_status = 403;
  snprintf(reply->reason, sizeof(reply->reason),
           "agent_id \"%s\" is not the authenticated agent \"%s\"", shown, identity);
  return TP_E_VALIDATE;
}

/* Stores the batch; with metrics, marks which results and drop reports are new and
 * counts those once the commit succeeded -- never a re-sent result, never a batch
 * that rolled back. The marks are allocated here, before anything is written, so
 * running out of memory is a 503 the agent retries, not a stored batch uncounted. */
static tp_err put_batch(tp_store *store, const Tlsprobe__V1__ResultBatch *batch,
                        const tp_ingest_params *params, tp_store_put_outcome *put,
                        tp_ingest_reply *reply) {
  if (params->metrics == NULL)
    return tp_store_put_batch(store, batch, params->received_unix_ns, put, reply->reason,
                              sizeof(reply->reason));
  bool *marks = calloc(batch->n_results + batch->n_drops + 1, sizeof(bool));
  if (marks == NULL) {
    snprintf(reply->reason, sizeof(reply->reason), "out of memory, retry later");
    return TP_E_NOMEM;
  }
  tp_store_put_marks m = {.results = marks, .drops = marks + batch->n_results};
  tp_err rc = tp_store_put_batch_marked(store, batch, params->received_unix_ns, put, &m,
                                        reply->reason, sizeof(reply->reason));
  if (rc == TP_E_OK)
    tp_metrics_on_stored(params->metrics, batch, m.results, m.drops, params->received_unix_ns);
  free(marks);
  return rc;
}

static tp_err build_ack(const Tlsprobe__V1__ResultBatch *batch, tp_ingest_reply *reply) {
  Tlsprobe__V1__BatchAck ack = TLSPROBE__V1__BATCH_ACK__INIT;
  ack.batch_seq = batch->batch_seq;
  ack.stored = reply->stored;
  ack.duplicate = reply->duplicate;
  reply->ack_len = tlsprobe__v1__batch_ack__get_packed_size(&ack);
  /* +1: a zero-length ack (all fields default) still gets a valid pointer. */
  reply->ack = malloc(reply->ack_len + 1);
  if (reply->ack == NULL)
    return TP_E_NOMEM;
  size_t packed = tlsprobe__v1__batch_ack__pack(&ack, reply->ack);
  /* pack writes exactly get_packed_size bytes; a mismatch is a protobuf-c bug. */
  if (packed != reply->ack_len)
    abort();
  return TP_E_OK;
}

tp_err tp_ingest_batch_ex(tp_store *store, const uint8_t *body, size_t len,
                          const tp_ingest_params *params, tp_ingest_reply *reply) {
  Tlsprobe__V1__ResultBatch *batch = NULL;
  ProtobufCAllocator alloc;
  decode_budget budget;
  memset(reply, 0, sizeof(*reply));
  bool stored = false;
  tp_err rc = decode(body, len, &batch, &alloc, &budget, reply);
  if (rc != TP_E_OK)
    goto out;
  reply->results = batch->n_results;
  reply->drops = batch->n_drops;
  copy_for_log(reply->agent_id, sizeof(reply->agent_id), batch->agent_id);
  rc = authorize(batch, params->identity, reply);
  if (rc != TP_E_OK)
    goto out;
  rc = tp_validate_batch(batch, reply->reason, sizeof(reply->reason));
  if (rc == TP_E_OK && params->window != NULL)
    rc = tp_validate_batch_window(batch, params->window, reply->reason, sizeof(reply->reason));
  if (rc != TP_E_OK) {
    reply->http_status = 400;
    goto out;
  }
  tp_store_put_outcome put;
  rc = put_batch(store, batch, params, &put, reply);
  if (rc != TP_E_OK) {
    reply->http_status = 503;
    goto out;
  }
  stored = true;
  reply->duplicate = put.duplicate;
  reply->stored = put.results_stored;
  reply->drops_stored = put.drops_stored;
  rc = build_ack(batch, reply);
  if (rc != TP_E_OK) {
    fail(reply, 503, "out of memory, retry later");
    goto out;
  }
  reply->http_status = 200;
out:
  /* A batch that decoded and was not stored: its results are counted as refused or
   * failed (stored ones were counted by put_batch, whatever the answer). */
  if (params->metrics != NULL && batch != NULL && reply->http_status != 200 && !stored)
    tp_metrics_on_not_stored(params->metrics, batch->n_results, reply->http_status);
  if (batch != NULL)
    tlsprobe__v1__result_batch__free_unpacked(batch, &alloc);
  return rc;
}

tp_err tp_ingest_batch(tp_store *store, const uint8_t *body, size_t len, int64_t received_unix_ns,
                       tp_ingest_reply *reply) {
  tp_ingest_params params = {.received_unix_ns = received_unix_ns};
  return tp_ingest_batch_ex(store, body, len, &params, reply);
}

void tp_ingest_reply_clear(tp_ingest_reply *reply) {
  free(reply->ack);
  reply->ack = NULL;
  reply->ack_len = 0;
}
