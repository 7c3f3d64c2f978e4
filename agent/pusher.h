/* pusher.h - ships the spool's results to the collector as protobuf batches over
 * HTTP(S) POST, with libcurl's multi interface on the agent's libuv loop.
 *
 * Delivery is at-least-once, counted exactly once by the collector: a result is
 * checked against the wire contract, written to the spool (tp_pusher_submit),
 * and leaves the spool only when the collector acknowledged the batch carrying
 * it. A lease that was not acknowledged is re-sent as the same batch; the
 * collector keys results by (agent, spool id, result_seq), so a re-send after a
 * lost answer or an agent restart stores nothing twice.
 *
 * What each answer does (docs/architecture.md has the table):
 *   200 + BatchAck of this batch    delete the lease from the spool
 *   413 (body too large)            split: half the results per batch, down to
 *                                   one; one result alone too large is replaced
 *                                   by a minimal error result under its number
 *   400 / 422 (refused as invalid)  isolate what is refused: the drop reports alone
 *                                   first, then halve the results; a single refused
 *                                   result is replaced by a minimal one, and if that
 *                                   is refused too it is given up and reported as
 *                                   invalid_result under its number
 *   408, 429, 5xx, network errors   retry the same batch with exponential backoff
 *                                   (1 s doubling to 30 s, jitter; 429/503 honour
 *                                   Retry-After up to 5 min)
 *   3xx, 401, 403, 404, other 4xx   a configuration problem on one side: retry the
 *                                   same batch every 5 min, logged at error once
 *                                   per minute; nothing is dropped (the spool's
 *                                   bound decides what is kept meanwhile)
 *
 * libcurl is only the transport to our own collector; it never carries a
 * client profile (its GnuTLS backend ignores cipher lists). */
#ifndef TP_PUSHER_H
#define TP_PUSHER_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "result.h"
#include "spool.h"
#include "tp_error.h"
#include "tp_log.h"

#define TP_PUSHER_DEFAULT_MAX_BATCH_BYTES ((size_t)1024 * 1024)
#define TP_PUSHER_DEFAULT_MAX_RESULT_AGE_MS ((uint64_t)7 * 24 * 3600 * 1000)

typedef struct tp_pusher_options {
  const char *url;
  const char *agent_id;
  const char *region;
  unsigned batch_size;     /* results per batch at most */
  size_t max_batch_bytes;  /* records' bytes per batch at most (0 = default) */
  uint64_t flush_interval_ms;
  uint64_t timeout_ms; /* per HTTP request */
  /* Results older than this when their turn comes are dropped as too_old (the
   * collector's max_result_age refuses them); 0 = 7 days. */
  uint64_t max_result_age_ms;
  /* Transport security. The collector's certificate is verified against ca_file
   * (NULL = the system trust store) and its name against the URL's host. */
  const char *ca_file;
  const char *client_cert_file, *client_key_file; /* mTLS; both or neither */
  const char *token_file; /* bearer token (one line); re-read by tp_pusher_reload */
} tp_pusher_options;

/* Why a push did not end in an acknowledgement, by the answer's class (the table
 * above); the agent's /metrics counts each. */
#define TP_PUSH_FAILURE_MAP(X)                                                          \
  X(NETWORK, "network")     /* no HTTP answer: connect, TLS handshake, timeout */      \
  X(TLS, "tls")             /* the collector's certificate failed verification */      \
  X(TOO_LARGE, "too_large") /* 413: the batch is split */                              \
  X(REFUSED, "refused")     /* 400, 422: what is refused is isolated */                \
  X(RETRY, "retry")         /* 408, 429, 5xx: the same batch after a backoff */        \
  X(BAD_ACK, "bad_ack")     /* 200 without a valid acknowledgement of this batch */    \
  X(CONFIG, "config")       /* 3xx, 401, 403, 404, other 4xx: fix the configuration */

typedef enum {
#define TP_PUSH_FAILURE_ENUM(e, name) TP_PUSH_FAILURE_##e,
  TP_PUSH_FAILURE_MAP(TP_PUSH_FAILURE_ENUM)
#undef TP_PUSH_FAILURE_ENUM
  TP_PUSH_FAILURE__COUNT
} tp_push_failure;

/* "network", "too_large", ...: the label value. */
const char *tp_push_failure_name(tp_push_failure failure);

typedef struct tp_pusher_stats {
  uint64_t pushed;     /* results acknowledged as newly stored or already stored */
  uint64_t duplicates; /* of which the collector already had (re-sends) */
  uint64_t rejected;   /* results the collector refused even as a minimal record: dropped */
  uint64_t replaced;   /* results replaced by a minimal record (too large or refused) */
  uint64_t invalid;    /* results that broke the wire contract, sent as minimal error results */
  uint64_t invalid_dropped; /* ... whose minimal replacement broke it too (identity): dropped */
  uint64_t batches;    /* acknowledged batches */
  uint64_t splits;     /* batches split after a 413 or 400 */
  uint64_t failures;   /* failed attempts (network, 5xx, bad ack, permanent answers) */
  uint64_t failures_by[TP_PUSH_FAILURE__COUNT]; /* every answer but an ack, 413/400 included */
  uint64_t unsent;     /* results still in the spool (and in memory) */
  uint64_t in_memory;  /* of which kept in memory because the spool could not be written */
  tp_spool_stats spool;
} tp_pusher_stats;

typedef struct tp_pusher tp_pusher;

/* The spool is borrowed and must outlive the pusher. curl_global_init must have
 * been called (by main). TP_E_CONFIG with a message for unreadable credentials. */
tp_err tp_pusher_new(uv_loop_t *loop, const tp_pusher_options *options, tp_spool *spool,
                     const tp_log *log, tp_pusher **out, char *err, size_t errlen);
/* Starts the periodic flush timer. */
void tp_pusher_start(tp_pusher *pusher);
/* Takes ownership of a finished probe's result: checks it (a broken one becomes a
 * minimal error result), writes it to the spool, and pushes early when a full
 * batch is waiting. Never fails: what cannot be kept is counted as a drop. */
void tp_pusher_submit(tp_pusher *pusher, tp_result *result);
/* Re-reads the token file (SIGHUP). Keeps the old token if the file is unreadable. */
void tp_pusher_reload(tp_pusher *pusher);
/* Pushes what is spooled, back to back, until the spool is empty or `deadline_ms`
 * elapsed; then calls done(data). What is left stays in the spool. */
void tp_pusher_flush(tp_pusher *pusher, uint64_t deadline_ms, void (*done)(void *data),
                     void *data);
void tp_pusher_get_stats(const tp_pusher *pusher, tp_pusher_stats *stats);
/* Aborts any request (its lease stays in the spool), closes handles; freed in
 * the last close callback. */
void tp_pusher_close(tp_pusher *pusher);

#endif
