/* batch.h - the bytes the pusher sends: spool records in, a ResultBatch body out.
 *
 * A spool record is a serialized ProbeResult without agent_id (the batch names
 * the agent) and without result_seq (the spool numbers it). A batch body is a
 * ResultBatch header packed by protobuf-c followed by each record framed as
 * field 5 with its number appended as field 9: protobuf allows a message's
 * fields in any order and the framing is exactly what protobuf-c would write, so
 * records are never decoded or re-encoded on the way out. */
#ifndef TP_BATCH_H
#define TP_BATCH_H
#include <stddef.h>
#include <stdint.h>

#include "spool.h"
#include "tlsprobe.pb-c.h"
#include "tp_buf.h"
#include "tp_error.h"

/* Serializes a checked result (its wire form, agent_id left empty) as a record.
 * *out is malloc'd. */
void tp_batch_encode_record(const Tlsprobe__V1__ProbeResult *msg, uint8_t **out, size_t *len);

/* The POST body for a lease. TP_E_TOOBIG if it would exceed out's cap. */
tp_err tp_batch_body(const char *agent_id, uint64_t instance_id, const tp_spool_lease *lease,
                     int64_t sent_unix_ns, tp_buf *out);

/* A minimal error record standing in for `data` (a record the collector refused
 * or that alone exceeds its body limit): the same target, profile, address and
 * start, error class other, and `why` in the detail. TP_E_DECODE if data is not
 * a ProbeResult. *out is malloc'd. */
tp_err tp_batch_minimal_record(const uint8_t *data, size_t len, const char *why, uint8_t **out,
                               size_t *out_len);

#endif
