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

/* The decoder allocates from an arena: a few large blocks per batch instead of a
 * malloc and a free per string and sub-message (the batch is freed whole, at once,
 * by dropping the blocks), which was a fifth of ingest's CPU. Every allocation is
 * still charged to the budget as a malloc would cost (its size plus the chunk
 * overhead), so the limits mean what they meant. */
#define ARENA_BLOCK ((size_t)64 * 1024)
#define ARENA_ALIGN 16

typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_block;

typedef struct decode_budget {
  size_t initial;
  size_t left;
  bool exhausted;      /* a request went over the budget */
  bool nomem;          /* malloc itself failed */
  arena_block *blocks; /* newest first */
} decode_budget;

static void *arena_take(decode_budget *b, size_t size) {
  size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  arena_block *a = b->blocks;
  if (a == NULL || a->cap - a->used < need) {
    size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
    a = malloc(sizeof(*a) + cap);
    if (a == NULL)
      return NULL;
    a->used = 0;
    a->cap = cap;
    a->next = b->blocks;
    b->blocks = a;
  }
  void *p = a->data + a->used;
  a->used += need;
  return p;
}

static void *budget_alloc(void *data, size_t size) {
  decode_budget *b = data;
  size_t cost = size + ALLOC_OVERHEAD;
  if (cost < size || cost > b->left) {
    b->exhausted = true;
    return NULL;
  }
  void *p = arena_take(b, size > 0 ? size : 1);
  if (p == NULL) {
    b->nomem = true;
    return NULL;
  }
  b->left -= cost;
  return p;
}

/* Nothing to do: the blocks go with the batch (budget_release). */
static void budget_free(void *data, void *p) {
  (void)data;
  (void)p;
}

static void budget_release(decode_budget *b) {
  while (b->blocks != NULL) {
    arena_block *next = b->blocks->next;
    free(b->blocks);
    b->blocks = next;
  }
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
  size_t size = budget_for(len, results, drops);
  *budget = (decode_budget){.initial = size, .left = size};
  *alloc = (ProtobufCAllocator){.alloc = budget_alloc, .free = budget_free, .allocator_data = budget};
  *out = tlsprobe__v1__result_batch__unpack(alloc, len, body);
  if (*out != NULL)
    return TP_E_OK;
  budget_release(budget); /* what the failed decode allocated */
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

struct tp_ingest_job {
  tp_store *store;
  const tp_ingest_params *params;
  Tlsprobe__V1__ResultBatch *batch;
  ProtobufCAllocator alloc;
  decode_budget budget; /* alloc's data */
  tp_store_prep *prep;
  bool *marks; /* with metrics: which results and drops the put newly stored */
  tp_store_put_marks m;
  tp_store_put put;
};

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

static void job_free(tp_ingest_job *job) {
  /* The decoded batch lives in the arena: dropping its blocks frees it whole (no
   * free_unpacked walk over every field). */
  budget_release(&job->budget);
  tp_store_prep_free(job->store, job->prep);
  free(job->marks);
  free(job);
}

/* With metrics, the marks of which results and drop reports are new are allocated
 * here, before anything is written, so running out of memory is a 503 the agent
 * retries, not a stored batch uncounted. */
static tp_err make_put(tp_ingest_job *job, tp_ingest_reply *reply) {
  const Tlsprobe__V1__ResultBatch *batch = job->batch;
  char err[256];
  if (job->params->metrics != NULL) {
    job->marks = calloc(batch->n_results + batch->n_drops + 1, sizeof(bool));
    if (job->marks == NULL) {
      fail(reply, 503, "out of memory, retry later");
      return TP_E_NOMEM;
    }
    job->m = (tp_store_put_marks){.results = job->marks, .drops = job->marks + batch->n_results};
  }
  if (tp_store_prepare(job->store, batch, &job->prep, err, sizeof(err)) != TP_E_OK) {
    snprintf(reply->reason, sizeof(reply->reason), "%s", err);
    reply->http_status = 503;
    return TP_E_STORE;
  }
  job->put = (tp_store_put){.batch = batch,
                            .prep = job->prep,
                            .received_unix_ns = job->params->received_unix_ns,
                            .marks = job->marks != NULL ? &job->m : NULL};
  return TP_E_OK;
}

tp_err tp_ingest_prepare(tp_store *store, const uint8_t *body, size_t len,
                         const tp_ingest_params *params, tp_ingest_job **out,
                         tp_ingest_reply *reply) {
  memset(reply, 0, sizeof(*reply));
  *out = NULL;
  tp_ingest_job *job = calloc(1, sizeof(*job));
  if (job == NULL) {
    fail(reply, 503, "out of memory, retry later");
    return TP_E_NOMEM;
  }
  job->store = store;
  job->params = params;
  tp_err rc = decode(body, len, &job->batch, &job->alloc, &job->budget, reply);
  if (rc != TP_E_OK)
    goto out;
  reply->results = job->batch->n_results;
  reply->drops = job->batch->n_drops;
  copy_for_log(reply->agent_id, sizeof(reply->agent_id), job->batch->agent_id);
  rc = authorize(job->batch, params->identity, reply);
  if (rc != TP_E_OK)
    goto out;
  rc = tp_validate_batch(job->batch, reply->reason, sizeof(reply->reason));
  if (rc == TP_E_OK && params->window != NULL)
    rc = tp_validate_batch_window(job->batch, params->window, reply->reason, sizeof(reply->reason));
  if (rc != TP_E_OK) {
    reply->http_status = 400;
    goto out;
  }
  rc = make_put(job, reply);
out:
  if (rc == TP_E_OK) {
    *out = job;
    return TP_E_OK;
  }
  /* A batch that decoded and was not stored: its results are counted as refused or
   * failed. */
  if (params->metrics != NULL && job->batch != NULL)
    tp_metrics_on_not_stored(params->metrics, job->batch->n_results, reply->http_status);
  job_free(job);
  return rc;
}

tp_store_put *tp_ingest_job_put(tp_ingest_job *job) { return &job->put; }

size_t tp_ingest_job_bytes(const tp_ingest_job *job) {
  return job->budget.initial - job->budget.left;
}

size_t tp_ingest_job_results(const tp_ingest_job *job) { return job->batch->n_results; }

tp_err tp_ingest_finish(tp_ingest_job *job, tp_ingest_reply *reply) {
  const tp_store_put *put = &job->put;
  const tp_ingest_params *params = job->params;
  tp_err rc = put->rc;
  if (rc != TP_E_OK) {
    snprintf(reply->reason, sizeof(reply->reason), "%s", put->err);
    reply->http_status = 503;
    if (params->metrics != NULL)
      tp_metrics_on_not_stored(params->metrics, job->batch->n_results, 503);
    job_free(job);
    return rc;
  }
  /* Committed: count what it newly stored, whatever the answer below. */
  if (params->metrics != NULL)
    tp_metrics_on_stored(params->metrics, job->batch, job->m.results, job->m.drops,
                         params->received_unix_ns);
  reply->duplicate = put->out.duplicate;
  reply->stored = put->out.results_stored;
  reply->drops_stored = put->out.drops_stored;
  rc = build_ack(job->batch, reply);
  if (rc != TP_E_OK)
    fail(reply, 503, "out of memory, retry later");
  else
    reply->http_status = 200;
  job_free(job);
  return rc;
}

void tp_ingest_job_abandon(tp_ingest_job *job, tp_ingest_reply *reply, const char *reason) {
  fail(reply, 503, reason);
  if (job->params->metrics != NULL)
    tp_metrics_on_not_stored(job->params->metrics, job->batch->n_results, 503);
  job_free(job);
}

tp_err tp_ingest_batch_ex(tp_store *store, const uint8_t *body, size_t len,
                          const tp_ingest_params *params, tp_ingest_reply *reply) {
  tp_ingest_job *job = NULL;
  char err[256];
  tp_err rc = tp_ingest_prepare(store, body, len, params, &job, reply);
  if (rc != TP_E_OK)
    return rc;
  /* A group of one: the group's own failure is the put's (its rc and err say so). */
  (void)tp_store_put_batches(store, tp_ingest_job_put(job), 1, err, sizeof(err));
  return tp_ingest_finish(job, reply);
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
