/* pusher_internal.h - shared by the pusher's files only (pusher.c: the delivery
 * policy and lifetime; pusher_spool.c: results into and out of the spools;
 * pusher_http.c: libcurl on libuv, TLS and credentials). */
#ifndef TP_PUSHER_INTERNAL_H
#define TP_PUSHER_INTERNAL_H
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "pusher.h"
#include "tp_buf.h"
#include "tp_rand.h"

#define ACK_MAX_BYTES 4096
#define MAX_TOKEN_BYTES 512

/* "Say it once a minute": the first event logs, later ones are counted into the
 * next line. */
typedef struct log_limit {
  uint64_t last_ms;
  uint64_t suppressed;
  bool logged_once;
} log_limit;

struct tp_pusher {
  uv_loop_t *loop;
  const tp_log *log;
  tp_spool *spool;      /* borrowed: the durable spool */
  tp_spool *fallback;   /* owned: memory, only while the spool cannot be written */
  tp_spool *lease_spool; /* where p->lease came from */
  char *url, *agent_id, *region, *token_file;
  char *ca_file, *client_cert_file, *client_key_file;
  char auth_header[MAX_TOKEN_BYTES + 32]; /* "Authorization: Bearer ..."; "" = none */
  unsigned batch_size;
  size_t max_batch_bytes;
  unsigned cap_records; /* results per lease now: halved by 413/400, regrown by acks */
  uint64_t last_replaced_seq; /* a refused single result already replaced once ... */
  const tp_spool *last_replaced_spool; /* ... in this spool */
  bool drops_only_next; /* a refused batch carried drop reports: try them alone first */
  struct curl_slist *stale_headers; /* replaced by a reload while a request used them */
  uint64_t flush_interval_ms, timeout_ms, max_result_age_ms;

  CURLM *multi;
  CURL *easy;
  struct curl_slist *headers;
  tp_buf response;
  tp_buf body;
  char curl_error[CURL_ERROR_SIZE];
  bool request_active;

  uv_timer_t curl_timer;  /* curl's own timeout */
  uv_timer_t flush_timer; /* periodic flush */
  uv_timer_t retry_timer; /* backoff after a failure */
  int open_handles;
  bool backing_off;
  unsigned consecutive_failures;
  tp_rng rng; /* retry jitter */
  log_limit push_log, spool_log;

  tp_spool_lease *lease; /* the batch in flight or waiting for a retry */

  /* flush-on-shutdown */
  void (*flush_done)(void *);
  void *flush_data;
  bool flush_completing; /* done() is due on the next loop turn */
  uint64_t flush_deadline; /* uv_now() ms */

  tp_pusher_stats stats;
};

/* pusher.c */
bool tp__pusher_log_allowed(log_limit *l, uint64_t now_ms, uint64_t *suppressed);
int64_t tp__pusher_now_ns(void);
/* Leases the next batch (or takes the one waiting for a retry) and sends it. */
void tp__pusher_maybe_push(tp_pusher *p);
/* A request ended (called from curl's message loop). */
void tp__pusher_request_finished(tp_pusher *p, CURLcode code);

/* pusher_spool.c */
void tp__pusher_log_spool_trouble(tp_pusher *p, const char *what);
uint64_t tp__pusher_unsent(const tp_pusher *p);
/* Sets p->lease (and p->lease_spool) to the next batch, or leaves it NULL. */
void tp__pusher_next_lease(tp_pusher *p);

/* pusher_http.c */
/* libcurl's handles, callbacks and headers (and the token, when configured). */
tp_err tp__pusher_http_init(tp_pusher *p, char *err, size_t errlen);
void tp__pusher_http_close(tp_pusher *p);
tp_err tp__pusher_start_request(tp_pusher *p);
/* Frees what only the ended request still needed (headers replaced by a reload). */
void tp__pusher_request_ended(tp_pusher *p);
void tp__pusher_warn_loose_secrets(const tp_pusher *p);

#endif
