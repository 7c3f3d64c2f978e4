/* batch.c - spool records <-> ResultBatch bytes (see batch.h). */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"
#include "tp_limits.h"
#include "tp_mem.h"
#include "tp_text.h"

#define TAG_RESULTS 0x2A    /* field 5, length-delimited */
#define TAG_RESULT_SEQ 0x48 /* field 9, varint */

void tp_batch_encode_record(const Tlsprobe__V1__ProbeResult *msg, uint8_t **out, size_t *len) {
  Tlsprobe__V1__ProbeResult copy = *msg;
  copy.agent_id = (char *)""; /* the batch names the agent */
  copy.result_seq = 0;        /* the spool numbers it */
  *len = tlsprobe__v1__probe_result__get_packed_size(&copy);
  *out = tp_xmalloc(*len ? *len : 1);
  (void)tlsprobe__v1__probe_result__pack(&copy, *out);
}

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

static tp_err append_record(tp_buf *out, const tp_spool_record *r) {
  uint8_t seq[11], head[11];
  seq[0] = TAG_RESULT_SEQ;
  size_t seq_len = 1 + put_varint(seq + 1, r->seq);
  head[0] = TAG_RESULTS;
  size_t head_len = 1 + put_varint(head + 1, (uint64_t)r->len + seq_len);
  tp_err rc = tp_buf_append(out, head, head_len);
  if (rc == TP_E_OK)
    rc = tp_buf_append(out, r->data, r->len);
  if (rc == TP_E_OK)
    rc = tp_buf_append(out, seq, seq_len);
  return rc;
}

tp_err tp_batch_body(const char *agent_id, uint64_t instance_id, const tp_spool_lease *lease,
                     int64_t sent_unix_ns, tp_buf *out) {
  Tlsprobe__V1__ResultBatch msg = TLSPROBE__V1__RESULT_BATCH__INIT;
  Tlsprobe__V1__DropReport *drops = tp_xcalloc(lease->n_drops + 1, sizeof(*drops));
  Tlsprobe__V1__DropReport **ptrs = tp_xcalloc(lease->n_drops + 1, sizeof(*ptrs));
  for (size_t i = 0; i < lease->n_drops; i++) {
    const tp_spool_drop *d = &lease->drops[i];
    tlsprobe__v1__drop_report__init(&drops[i]);
    drops[i].drop_id = d->drop_id;
    drops[i].count = d->count;
    drops[i].reason = (char *)d->reason;
    drops[i].first_seq = d->first_seq;
    drops[i].last_seq = d->last_seq;
    drops[i].first_unix_ns = d->first_unix_ns;
    drops[i].last_unix_ns = d->last_unix_ns;
    ptrs[i] = &drops[i];
  }
  msg.agent_id = (char *)agent_id;
  msg.instance_id = instance_id;
  msg.batch_seq = lease->batch_seq;
  msg.sent_unix_ns = sent_unix_ns;
  msg.n_drops = lease->n_drops;
  msg.drops = ptrs;
  size_t head_len = tlsprobe__v1__result_batch__get_packed_size(&msg);
  uint8_t *head = tp_xmalloc(head_len ? head_len : 1);
  (void)tlsprobe__v1__result_batch__pack(&msg, head);
  tp_buf_reset(out);
  tp_err rc = tp_buf_append(out, head, head_len);
  for (size_t i = 0; rc == TP_E_OK && i < lease->n_records; i++)
    rc = append_record(out, &lease->records[i]);
  free(head);
  free(ptrs);
  free(drops);
  return rc == TP_E_OK ? TP_E_OK : TP_E_TOOBIG;
}

tp_err tp_batch_minimal_record(const uint8_t *data, size_t len, const char *why, uint8_t **out,
                               size_t *out_len) {
  Tlsprobe__V1__ProbeResult *old = tlsprobe__v1__probe_result__unpack(NULL, len, data);
  if (old == NULL)
    return TP_E_DECODE;
  Tlsprobe__V1__ProbeResult m = TLSPROBE__V1__PROBE_RESULT__INIT;
  char detail[TP_V_MAX_DETAIL];
  const char *was = tp_outcome_name((int)old->error_class);
  snprintf(detail, sizeof(detail), "%s (the result of %zu bytes was %s); replaced by this minimal record",
           why, len, was ? was : "?");
  char *fitted = tp_text_fit_str(detail, TP_V_MAX_DETAIL);
  /* Identity and time are what the report groups by: keep them. They passed the
   * agent's validation when the record was written. */
  m.region = old->region;
  m.target = old->target;
  m.host = old->host;
  m.port = old->port;
  m.sni = old->sni;
  m.profile = old->profile;
  m.address = old->address;
  m.address_family = old->address_family;
  m.mode = old->mode;
  m.started_unix_ns = old->started_unix_ns;
  m.total_ns = old->total_ns;
  m.ok = 0;
  m.error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OTHER;
  m.error_detail = fitted;
  tp_batch_encode_record(&m, out, out_len);
  free(fitted);
  tlsprobe__v1__probe_result__free_unpacked(old, NULL);
  return TP_E_OK;
}
