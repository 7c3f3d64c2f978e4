/* pusher.c - spool leases -> protobuf -> HTTP(S) POST via curl_multi_socket_action
 * on libuv (curl's docs/examples/multi-uv.c shape: a uv_poll_t per curl socket and
 * one uv_timer_t for curl's timeouts), with every state in struct tp_pusher. What
 * each collector answer does is in pusher.h. */
#include "pusher.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "tlsprobe.pb-c.h"
#include "tp_buf.h"
#include "tp_mem.h"
#include "tp_rand.h"
#include "tp_secret.h"
#include "validate.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define PERMANENT_RETRY_MS 300000 /* 3xx, 401, 403...: someone must fix a config */
#define RETRY_AFTER_MAX_S 300
#define ACK_MAX_BYTES 4096
#define LOG_EVERY_MS 60000 /* repeated failures: one line per minute, with counts */
#define MAX_TOKEN_BYTES 512
#define FALLBACK_MAX_BYTES ((uint64_t)64 * 1024 * 1024) /* memory while the disk is full */
/* The body is the records plus framing and the batch header; leave room for both. */
#define BODY_OVERHEAD_BYTES ((size_t)256 * 1024)

/* A socket curl asked us to watch. Freed in its close callback. */
typedef struct curl_socket_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  tp_pusher *pusher;
} curl_socket_ctx;

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
  uint64_t last_replaced_seq; /* a refused single result already replaced once */
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

static void maybe_push(tp_pusher *p);

/* True when this occurrence should be logged; *suppressed = how many were not
 * since the last line. */
static bool log_allowed(log_limit *l, uint64_t now_ms, uint64_t *suppressed) {
  if (l->logged_once && now_ms - l->last_ms < LOG_EVERY_MS) {
    l->suppressed++;
    return false;
  }
  *suppressed = l->suppressed;
  l->suppressed = 0;
  l->last_ms = now_ms;
  l->logged_once = true;
  return true;
}

static int64_t now_unix_ns(void) {
  struct timespec now;
  if (clock_gettime(CLOCK_REALTIME, &now) != 0)
    return 0;
  return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* ---- results into the spool ------------------------------------------------------ */

static void fill_identity(tp_pusher *p, tp_result_pb *w, const tp_result *r) {
  tp_result_pb_init(w, r);
  w->msg.agent_id = p->agent_id;
  w->msg.region = p->region;
}

/* Converts *slot to its wire form in w. The collector rejects a whole batch for one
 * invalid result, so each is checked here with the same rules; one that fails is
 * replaced by a minimal error result for its target (the target must not go
 * silent), and dropped only if even that fails (its identity itself is broken).
 * TP_E_VALIDATE = dropped; *slot is then freed. */
static tp_err wire_result(tp_pusher *p, tp_result **slot, tp_result_pb *w) {
  char reason[256];
  fill_identity(p, w, *slot);
  if (tp_validate_result(p->agent_id, &w->msg, reason, sizeof(reason)) == TP_E_OK)
    return TP_E_OK;
  tp_result_pb_clear(w);
  tp_result *minimal = tp_result_minimal_error(*slot, reason);
  tp_log_error(p->log, "replacing an invalid result by a minimal error result (a bug: please report it)",
               "target=%s profile=%s reason=\"%s\"", minimal->target, minimal->profile, reason);
  p->stats.invalid++;
  tp_result_free(*slot);
  *slot = minimal;
  fill_identity(p, w, minimal);
  if (tp_validate_result(p->agent_id, &w->msg, reason, sizeof(reason)) == TP_E_OK)
    return TP_E_OK;
  tp_log_error(p->log, "dropping an invalid result (its identity breaks the wire contract)",
               "target=%s reason=\"%s\"", minimal->target, reason);
  p->stats.invalid_dropped++;
  tp_result_pb_clear(w);
  tp_result_free(minimal);
  *slot = NULL;
  return TP_E_VALIDATE;
}

static void log_spool_trouble(tp_pusher *p, const char *what) {
  uint64_t suppressed = 0;
  if (!log_allowed(&p->spool_log, uv_now(p->loop), &suppressed))
    return;
  tp_spool_stats s;
  tp_spool_get_stats(p->spool, &s);
  tp_log_error(p->log, what,
               "spool=%s io_errors=%llu lost_to_errors=%llu similar_since_last=%llu"
               " (probing continues; losses are reported to the collector)",
               tp_spool_describe(p->spool), (unsigned long long)s.io_errors,
               (unsigned long long)s.dropped_error, (unsigned long long)suppressed);
}

/* The spool cannot be written (disk full, I/O error): keep the result in memory,
 * under a spool identity of its own, until the collector takes it; what a
 * bounded memory spool must drop is counted and reported like any drop. */
static void keep_in_memory(tp_pusher *p, const uint8_t *record, size_t len, int64_t produced) {
  log_spool_trouble(p, "cannot write a result to the spool; keeping results in memory");
  if (p->fallback == NULL) {
    if (tp_spool_open_memory(FALLBACK_MAX_BYTES, &p->fallback) != TP_E_OK) {
      tp_spool_count_drop(p->spool, TP_SPOOL_DROP_ERROR, produced);
      return;
    }
  }
  if (tp_spool_append(p->fallback, record, len, produced, NULL) != TP_E_OK)
    tp_spool_count_drop(p->spool, TP_SPOOL_DROP_ERROR, produced);
}

static uint64_t unsent(const tp_pusher *p) {
  tp_spool_stats s;
  tp_spool_get_stats(p->spool, &s);
  uint64_t n = s.records;
  if (p->fallback != NULL) {
    tp_spool_get_stats(p->fallback, &s);
    n += s.records;
  }
  return n;
}

/* Memory first while it holds anything: it is the copy a stop would lose. Results
 * the collector would refuse as too old go first, counted. */
static void next_lease(tp_pusher *p) {
  tp_spool *order[2] = {p->fallback, p->spool};
  int64_t oldest = now_unix_ns() - (int64_t)p->max_result_age_ms * 1000000;
  for (size_t i = 0; i < 2 && p->lease == NULL; i++) {
    if (order[i] == NULL)
      continue;
    tp_spool_stats before, after;
    tp_spool_get_stats(order[i], &before);
    if (tp_spool_expire(order[i], oldest) != TP_E_OK)
      log_spool_trouble(p, "cannot drop results too old to send");
    tp_spool_get_stats(order[i], &after);
    if (after.dropped_too_old != before.dropped_too_old)
      tp_log_warn(p->log, "dropped results too old for the collector (reported as too_old)",
                  "results=%llu max_result_age_ms=%llu",
                  (unsigned long long)(after.dropped_too_old - before.dropped_too_old),
                  (unsigned long long)p->max_result_age_ms);
    if (tp_spool_lease_next(order[i], p->cap_records, p->max_batch_bytes, &p->lease) != TP_E_OK) {
      log_spool_trouble(p, "cannot read the spool");
      p->lease = NULL;
      continue;
    }
    p->lease_spool = order[i];
  }
}

void tp_pusher_submit(tp_pusher *p, tp_result *r) {
  tp_result_pb w;
  int64_t produced = r->started_unix_ns > 0 ? r->started_unix_ns : now_unix_ns();
  if (wire_result(p, &r, &w) != TP_E_OK) {
    tp_spool_count_drop(p->spool, TP_SPOOL_DROP_INVALID, produced);
    return;
  }
  uint8_t *record = NULL;
  size_t len = 0;
  tp_batch_encode_record(&w.msg, &record, &len);
  tp_result_pb_clear(&w);
  tp_result_free(r);
  uint64_t full_before = p->stats.spool.dropped_full;
  if (tp_spool_append(p->spool, record, len, produced, NULL) != TP_E_OK)
    keep_in_memory(p, record, len, produced);
  free(record);
  tp_spool_get_stats(p->spool, &p->stats.spool);
  if (p->stats.spool.dropped_full != full_before) {
    uint64_t suppressed = 0;
    if (log_allowed(&p->spool_log, uv_now(p->loop), &suppressed))
      tp_log_warn(p->log, "spool full: dropped the oldest results (reported to the collector)",
                  "spool=%s dropped_total=%llu", tp_spool_describe(p->spool),
                  (unsigned long long)p->stats.spool.dropped_full);
  }
  if (p->stats.spool.records >= p->batch_size)
    maybe_push(p);
}

/* ---- curl <-> libuv --------------------------------------------------- */

static void check_multi_info(tp_pusher *p);

static void on_curl_socket_closed(uv_handle_t *handle) {
  free(handle->data);
}

static void on_curl_socket(uv_poll_t *handle, int status, int events) {
  curl_socket_ctx *ctx = handle->data;
  tp_pusher *p = ctx->pusher;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  int running = 0;
  (void)curl_multi_socket_action(p->multi, ctx->fd, flags, &running);
  check_multi_info(p);
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp) {
  tp_pusher *p = userp;
  curl_socket_ctx *ctx = socketp;
  (void)easy;
  if (action == CURL_POLL_REMOVE) {
    if (ctx != NULL) {
      uv_poll_stop(&ctx->poll);
      uv_close((uv_handle_t *)&ctx->poll, on_curl_socket_closed);
      curl_multi_assign(p->multi, fd, NULL);
    }
    return 0;
  }
  if (ctx == NULL) {
    ctx = tp_xcalloc(1, sizeof(*ctx));
    ctx->fd = fd;
    ctx->pusher = p;
    if (uv_poll_init_socket(p->loop, &ctx->poll, fd) < 0) {
      free(ctx);
      return -1; /* curl fails the transfer; we retry later */
    }
    ctx->poll.data = ctx;
    curl_multi_assign(p->multi, fd, ctx);
  }
  int events = 0;
  if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
    events |= UV_READABLE;
  if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
    events |= UV_WRITABLE;
  return uv_poll_start(&ctx->poll, events, on_curl_socket) < 0 ? -1 : 0;
}

static void on_curl_timeout(uv_timer_t *timer) {
  tp_pusher *p = timer->data;
  int running = 0;
  (void)curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_multi_info(p);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  tp_pusher *p = userp;
  (void)multi;
  if (timeout_ms < 0) {
    uv_timer_stop(&p->curl_timer);
    return 0;
  }
  /* 0 means "call socket_action now": do it from the loop, not re-entrantly. */
  return uv_timer_start(&p->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0) < 0 ? -1 : 0;
}

static size_t on_response_body(char *data, size_t size, size_t nmemb, void *userp) {
  tp_pusher *p = userp;
  size_t len = size * nmemb;
  return tp_buf_append(&p->response, data, len) == TP_E_OK ? len : 0; /* 0 aborts */
}

/* ---- request outcome -------------------------------------------------------------- */

static void on_retry_timer(uv_timer_t *timer) {
  tp_pusher *p = timer->data;
  p->backing_off = false;
  maybe_push(p);
}

static void wait_then_retry(tp_pusher *p, uint64_t delay_ms) {
  p->backing_off = true;
  if (uv_timer_start(&p->retry_timer, on_retry_timer, delay_ms, 0) < 0)
    p->backing_off = false;
}

/* Exponential backoff with jitter, or the collector's Retry-After when it gave one. */
static uint64_t backoff_ms(tp_pusher *p, long retry_after_s) {
  if (retry_after_s > 0)
    return (uint64_t)(retry_after_s < RETRY_AFTER_MAX_S ? retry_after_s : RETRY_AFTER_MAX_S) *
           1000;
  uint64_t backoff = BACKOFF_MIN_MS;
  for (unsigned i = 1; i < p->consecutive_failures && backoff < BACKOFF_MAX_MS; i++)
    backoff *= 2;
  if (backoff > BACKOFF_MAX_MS)
    backoff = BACKOFF_MAX_MS;
  return backoff / 2 + tp_rng_below(&p->rng, backoff / 2 + 1); /* jitter: [b/2, b] */
}

static void log_push_failure(tp_pusher *p, bool permanent, uint64_t retry_ms, const char *reason) {
  uint64_t suppressed = 0;
  if (!log_allowed(&p->push_log, uv_now(p->loop), &suppressed))
    return;
  tp_spool_stats s;
  tp_spool_get_stats(p->spool, &s);
  tp_log_write(
      p->log, permanent ? TP_LOG_ERROR : TP_LOG_WARN,
      permanent ? "collector refuses our pushes (fix the configuration)" : "push failed, will retry",
      "batch_seq=%llu results=%zu spooled=%llu retry_in_ms=%llu failures_since_last_line=%llu"
      " reason=\"%s\"",
      (unsigned long long)p->lease->batch_seq, p->lease->n_records, (unsigned long long)s.records,
      (unsigned long long)retry_ms, (unsigned long long)suppressed, reason);
}

/* The same batch again later: it stays leased. */
static void retry_later(tp_pusher *p, bool permanent, long retry_after_s, const char *reason) {
  p->stats.failures++;
  p->consecutive_failures++;
  uint64_t delay = permanent ? PERMANENT_RETRY_MS : backoff_ms(p, retry_after_s);
  log_push_failure(p, permanent, delay, reason);
  wait_then_retry(p, delay);
}

static void release_lease(tp_pusher *p, bool keep_batch) {
  tp_spool_nack(p->lease_spool, p->lease, keep_batch);
  p->lease = NULL;
}

static void lease_acknowledged(tp_pusher *p, const Tlsprobe__V1__BatchAck *ack) {
  tp_spool_lease *l = p->lease;
  size_t n = l->n_records;
  p->stats.pushed += n;
  if (n > ack->stored)
    p->stats.duplicates += n - ack->stored;
  p->stats.batches++;
  p->consecutive_failures = 0;
  tp_log_debug(p->log, "pushed batch", "batch_seq=%llu results=%zu drops=%zu stored=%u duplicate=%d",
               (unsigned long long)l->batch_seq, n, l->n_drops, ack->stored,
               ack->duplicate ? 1 : 0);
  p->lease = NULL;
  if (tp_spool_ack(p->lease_spool, l) != TP_E_OK)
    log_spool_trouble(p, "cannot delete an acknowledged batch from the spool (it will be re-sent)");
  if (p->cap_records < p->batch_size)
    p->cap_records = p->cap_records * 2 < p->batch_size ? p->cap_records * 2 : p->batch_size;
}

/* A lone record the collector will not take: replace it by a minimal error record
 * once; if that is refused too, drop it and count it. */
static void refuse_single(tp_pusher *p, const char *why) {
  tp_spool_record *r = &p->lease->records[0];
  if (r->seq != p->last_replaced_seq) {
    uint8_t *minimal = NULL;
    size_t len = 0;
    if (tp_batch_minimal_record(r->data, r->len, why, &minimal, &len) == TP_E_OK &&
        tp_spool_replace(p->lease_spool, r->seq, minimal, len) == TP_E_OK) {
      tp_log_warn(p->log, "replacing a result the collector refused by a minimal error result",
                  "result_seq=%llu bytes=%zu reason=\"%s\"", (unsigned long long)r->seq, r->len,
                  why);
      p->last_replaced_seq = r->seq;
      p->stats.replaced++;
      free(minimal);
      release_lease(p, false);
      return;
    }
    free(minimal);
  }
  tp_log_error(p->log, "dropping a result the collector refuses (counted as invalid_result)",
               "result_seq=%llu reason=\"%s\"", (unsigned long long)r->seq, why);
  int64_t produced = r->produced_unix_ns;
  p->stats.rejected++;
  tp_spool_lease *l = p->lease;
  p->lease = NULL;
  if (tp_spool_ack(p->lease_spool, l) != TP_E_OK)
    log_spool_trouble(p, "cannot delete a refused result from the spool");
  tp_spool_count_drop(p->lease_spool, TP_SPOOL_DROP_INVALID, produced);
}

/* 413 or 400: halve the batch until the culprit is alone, then refuse_single. */
static void split_or_refuse(tp_pusher *p, const char *why) {
  tp_spool_lease *l = p->lease;
  if (l->n_records > 1) {
    p->cap_records = (unsigned)(l->n_records / 2);
    p->stats.splits++;
    tp_log_info(p->log, "collector refused a batch: splitting it", "batch_seq=%llu results=%zu next=%u reason=\"%s\"",
                (unsigned long long)l->batch_seq, l->n_records, p->cap_records, why);
    release_lease(p, false);
  } else if (l->n_records == 1) {
    refuse_single(p, why);
  } else {
    /* Only drop reports, refused: nothing more to isolate. Losing the count is
     * better than blocking every later result behind it. */
    tp_log_error(p->log, "collector refused our drop reports; discarding them",
                 "batch_seq=%llu drops=%zu reason=\"%s\"", (unsigned long long)l->batch_seq,
                 l->n_drops, why);
    p->lease = NULL;
    if (tp_spool_ack(p->lease_spool, l) != TP_E_OK)
      log_spool_trouble(p, "cannot delete refused drop reports from the spool");
  }
}

/* The collector's one-line reason, printable, for logs. */
static void response_reason(const tp_pusher *p, char *out, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < p->response.len && n + 1 < len; i++) {
    char c = (char)p->response.data[i];
    if (c == '\n')
      break;
    out[n++] = (c >= 0x20 && c < 0x7F && c != '"') ? c : '?';
  }
  out[n] = '\0';
}

static bool is_transient(long status) {
  return status == 408 || status == 429 || status >= 500 || status == 0;
}

static void handle_ok(tp_pusher *p) {
  Tlsprobe__V1__BatchAck *ack =
      tlsprobe__v1__batch_ack__unpack(NULL, p->response.len, p->response.data);
  if (ack != NULL && ack->batch_seq == p->lease->batch_seq)
    lease_acknowledged(p, ack);
  else
    retry_later(p, false, 0, "collector answered 200 without a valid acknowledgement");
  if (ack != NULL)
    tlsprobe__v1__batch_ack__free_unpacked(ack, NULL);
}

static void request_finished(tp_pusher *p, CURLcode code) {
  long status = 0;
  curl_off_t retry_after = 0;
  char reason[512], body_reason[256];
  curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
  if (curl_easy_getinfo(p->easy, CURLINFO_RETRY_AFTER, &retry_after) != CURLE_OK)
    retry_after = 0;
  curl_multi_remove_handle(p->multi, p->easy);
  p->request_active = false;
  response_reason(p, body_reason, sizeof(body_reason));

  if (code != CURLE_OK) {
    snprintf(reason, sizeof(reason), "%s: %s", curl_easy_strerror(code),
             p->curl_error[0] ? p->curl_error : "-");
    /* A certificate the collector's name or our CA does not match will not fix
     * itself by retrying fast. */
    bool permanent = code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
                     code == CURLE_SSL_CERTPROBLEM;
    retry_later(p, permanent, 0, reason);
  } else if (status == 200) {
    handle_ok(p);
  } else if (status == 413) {
    split_or_refuse(p, "exceeds the collector's body limit (HTTP 413)");
  } else if (status == 400 || status == 422) {
    snprintf(reason, sizeof(reason), "refused by the collector (HTTP %ld: %s)", status, body_reason);
    split_or_refuse(p, reason);
  } else {
    snprintf(reason, sizeof(reason), "HTTP %ld: %s", status, body_reason);
    retry_later(p, !is_transient(status), (long)retry_after, reason);
  }
  maybe_push(p);
}

static void check_multi_info(tp_pusher *p) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == p->easy)
      request_finished(p, msg->data.result);
  }
}

/* ---- pushing ---------------------------------------------------------------------- */

static CURLcode set_tls_options(tp_pusher *p) {
  CURLcode c = CURLE_OK;
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_SSL_VERIFYPEER, 1L);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_SSL_VERIFYHOST, 2L);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  if (c == CURLE_OK && p->ca_file != NULL) c = curl_easy_setopt(p->easy, CURLOPT_CAINFO, p->ca_file);
  if (c == CURLE_OK && p->client_cert_file != NULL)
    c = curl_easy_setopt(p->easy, CURLOPT_SSLCERT, p->client_cert_file);
  if (c == CURLE_OK && p->client_key_file != NULL)
    c = curl_easy_setopt(p->easy, CURLOPT_SSLKEY, p->client_key_file);
  return c;
}

static tp_err start_request(tp_pusher *p) {
  tp_buf_reset(&p->response);
  p->curl_error[0] = '\0';
  curl_easy_reset(p->easy);
  CURLcode c = CURLE_OK;
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_POST, 1L);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body.data);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body.len);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, on_response_body);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->curl_error);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_FOLLOWLOCATION, 0L);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
  if (c == CURLE_OK) c = set_tls_options(p);
  if (c != CURLE_OK)
    return TP_E_HTTP;
  if (curl_multi_add_handle(p->multi, p->easy) != CURLM_OK)
    return TP_E_HTTP;
  p->request_active = true;
  return TP_E_OK;
}

static bool flushing(const tp_pusher *p) {
  return p->flush_done != NULL;
}

static void on_flush_complete(uv_timer_t *timer) {
  tp_pusher *p = timer->data;
  void (*done)(void *) = p->flush_done;
  p->flush_done = NULL;
  p->flush_completing = false;
  done(p->flush_data);
}

/* done() may close the pusher (the agent's shutdown does), so it is never called from
 * here: this runs inside curl's callbacks (check_multi_info is still iterating curl's
 * message list), and curl_multi_cleanup under them is a use after free (valgrind found
 * it). A zero timeout calls it from the loop instead. */
static void finish_flush_if_done(tp_pusher *p) {
  if (!flushing(p) || p->flush_completing)
    return;
  bool drained = p->lease == NULL && unsent(p) == 0;
  if (!drained && uv_now(p->loop) < p->flush_deadline)
    return;
  p->flush_completing = true;
  (void)uv_timer_start(&p->flush_timer, on_flush_complete, 0, 0);
}

/* Leases the next batch (or takes the one waiting for a retry) and sends it. */
static void maybe_push(tp_pusher *p) {
  if (p->request_active || p->backing_off) {
    finish_flush_if_done(p);
    return;
  }
  if (p->lease == NULL)
    next_lease(p);
  if (p->lease != NULL) {
    if (tp_batch_body(p->agent_id, tp_spool_id(p->lease_spool), p->lease, now_unix_ns(),
                      &p->body) !=
        TP_E_OK)
      split_or_refuse(p, "batch larger than the agent's own body limit");
    else if (start_request(p) != TP_E_OK)
      retry_later(p, false, 0, "cannot set up the HTTP request");
  }
  finish_flush_if_done(p);
}

static void on_flush_timer(uv_timer_t *timer) {
  maybe_push(timer->data);
}

void tp_pusher_flush(tp_pusher *p, uint64_t deadline_ms, void (*done)(void *), void *data) {
  p->flush_done = done;
  p->flush_data = data;
  p->flush_deadline = uv_now(p->loop) + deadline_ms;
  /* The deadline also needs a clock tick when nothing else happens. */
  (void)uv_timer_start(&p->flush_timer, on_flush_timer, 0, deadline_ms < 100 ? deadline_ms : 100);
  maybe_push(p);
}

/* ---- credentials ------------------------------------------------------------------ */

/* Reads the first line of the token file into the Authorization header. */
static tp_err load_token(tp_pusher *p, char *err, size_t errlen) {
  char token[MAX_TOKEN_BYTES + 2];
  FILE *f = fopen(p->token_file, "re");
  if (f == NULL) {
    snprintf(err, errlen, "%s: cannot read the collector token: %s", p->token_file,
             tp_errno_text(errno, (char[128]){0}, 128));
    return TP_E_CONFIG;
  }
  bool got = fgets(token, sizeof(token), f) != NULL;
  fclose(f);
  size_t n = got ? strcspn(token, "\r\n") : 0;
  token[n] = '\0';
  bool printable = n > 0 && n <= MAX_TOKEN_BYTES;
  for (size_t i = 0; printable && i < n; i++)
    printable = token[i] > 0x20 && token[i] < 0x7F;
  if (!printable) {
    snprintf(err, errlen, "%s: the first line must be the token (1..%d printable characters)",
             p->token_file, MAX_TOKEN_BYTES);
    return TP_E_CONFIG;
  }
  snprintf(p->auth_header, sizeof(p->auth_header), "Authorization: Bearer %s", token);
  explicit_bzero(token, sizeof(token));
  return TP_E_OK;
}

static tp_err build_headers(tp_pusher *p) {
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
  if (h != NULL)
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
  if (h != NULL && p->auth_header[0] != '\0')
    h = curl_slist_append(h, p->auth_header);
  if (h == NULL)
    return TP_E_NOMEM;
  curl_slist_free_all(p->headers);
  p->headers = h;
  return TP_E_OK;
}

void tp_pusher_reload(tp_pusher *p) {
  char err[512];
  if (p->token_file == NULL)
    return;
  char old[sizeof(p->auth_header)];
  memcpy(old, p->auth_header, sizeof(old));
  if (load_token(p, err, sizeof(err)) != TP_E_OK || build_headers(p) != TP_E_OK) {
    memcpy(p->auth_header, old, sizeof(old));
    tp_log_error(p->log, "keeping the old collector token", "error=\"%s\"", err);
  } else {
    tp_log_info(p->log, "collector token reloaded", "file=%s", p->token_file);
    /* A refused token waits 5 minutes between tries: the new one gets its try now. */
    if (p->backing_off) {
      uv_timer_stop(&p->retry_timer);
      p->backing_off = false;
      p->consecutive_failures = 0;
      maybe_push(p);
    }
  }
  explicit_bzero(old, sizeof(old));
}

/* ---- lifetime --------------------------------------------------------------------- */

static void free_strings(tp_pusher *p) {
  free(p->url);
  free(p->agent_id);
  free(p->region);
  free(p->token_file);
  free(p->ca_file);
  free(p->client_cert_file);
  free(p->client_key_file);
}

tp_err tp_pusher_new(uv_loop_t *loop, const tp_pusher_options *o, tp_spool *spool,
                     const tp_log *log, tp_pusher **out, char *err, size_t errlen) {
  tp_pusher *p = tp_xcalloc(1, sizeof(*p));
  tp_err rc = TP_E_HTTP;
  p->loop = loop;
  p->log = log;
  p->spool = spool;
  p->url = tp_xstrdup(o->url);
  p->agent_id = tp_xstrdup(o->agent_id);
  p->region = tp_xstrdup(o->region);
  p->token_file = tp_xstrdup_or_null(o->token_file);
  p->ca_file = tp_xstrdup_or_null(o->ca_file);
  p->client_cert_file = tp_xstrdup_or_null(o->client_cert_file);
  p->client_key_file = tp_xstrdup_or_null(o->client_key_file);
  p->batch_size = o->batch_size ? o->batch_size : 200;
  p->cap_records = p->batch_size;
  p->max_batch_bytes = o->max_batch_bytes ? o->max_batch_bytes : TP_PUSHER_DEFAULT_MAX_BATCH_BYTES;
  p->flush_interval_ms = o->flush_interval_ms ? o->flush_interval_ms : 2000;
  p->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
  p->max_result_age_ms =
      o->max_result_age_ms ? o->max_result_age_ms : TP_PUSHER_DEFAULT_MAX_RESULT_AGE_MS;
  tp_buf_init(&p->response, ACK_MAX_BYTES);
  tp_buf_init(&p->body, p->max_batch_bytes + BODY_OVERHEAD_BYTES);
  tp_rng_seed(&p->rng, tp_spool_id(spool) ^ uv_hrtime());
  snprintf(err, errlen, "cannot initialise libcurl for %s", o->url);
  if (p->token_file != NULL && (rc = load_token(p, err, errlen)) != TP_E_OK)
    goto fail;
  rc = TP_E_HTTP;
  p->multi = curl_multi_init();
  p->easy = curl_easy_init();
  if (p->multi == NULL || p->easy == NULL || build_headers(p) != TP_E_OK)
    goto fail;
  if (curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb) != CURLM_OK ||
      curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p) != CURLM_OK ||
      curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb) != CURLM_OK ||
      curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p) != CURLM_OK)
    goto fail;
  uv_timer_t *timers[] = {&p->curl_timer, &p->flush_timer, &p->retry_timer};
  for (size_t i = 0; i < 3; i++) {
    uv_timer_init(loop, timers[i]);
    timers[i]->data = p;
    p->open_handles++;
  }
  *out = p;
  return TP_E_OK;
fail:
  curl_slist_free_all(p->headers);
  if (p->easy != NULL)
    curl_easy_cleanup(p->easy);
  if (p->multi != NULL)
    curl_multi_cleanup(p->multi);
  explicit_bzero(p->auth_header, sizeof(p->auth_header));
  tp_buf_free(&p->response);
  tp_buf_free(&p->body);
  free_strings(p);
  free(p);
  return rc;
}

/* A token or key others can read is a credential others can use: say so (once, at
 * start), and go on. */
static void warn_loose_secrets(const tp_pusher *p) {
  const char *files[] = {p->token_file, p->client_key_file};
  char why[96];
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    if (files[i] != NULL && tp_secret_file_too_open(files[i], why, sizeof(why)))
      tp_log_warn(p->log, "a secret file is readable by others: chmod 600 it", "file=%s why=\"%s\"",
                  files[i], why);
  }
}

void tp_pusher_start(tp_pusher *p) {
  warn_loose_secrets(p);
  (void)uv_timer_start(&p->flush_timer, on_flush_timer, p->flush_interval_ms,
                       p->flush_interval_ms);
  tp_spool_stats s;
  tp_spool_get_stats(p->spool, &s);
  tp_log_info(p->log, "pusher started",
              "url=%s spool=%s spool_id=%016llx spooled=%llu batch_size=%u auth=%s", p->url,
              tp_spool_describe(p->spool), (unsigned long long)tp_spool_id(p->spool),
              (unsigned long long)s.records, p->batch_size,
              p->client_cert_file ? (p->token_file ? "mtls+token" : "mtls")
                                  : (p->token_file ? "token" : "none"));
}

void tp_pusher_get_stats(const tp_pusher *p, tp_pusher_stats *stats) {
  *stats = p->stats;
  tp_spool_get_stats(p->spool, &stats->spool);
  stats->in_memory = 0;
  if (p->fallback != NULL) {
    tp_spool_stats m;
    tp_spool_get_stats(p->fallback, &m);
    stats->in_memory = m.records;
    stats->spool.dropped_full += m.dropped_full;
    stats->spool.dropped_error += m.dropped_error;
    stats->spool.dropped_too_old += m.dropped_too_old;
  }
  stats->unsent = unsent(p);
}

static void on_pusher_handle_closed(uv_handle_t *handle) {
  tp_pusher *p = handle->data;
  if (--p->open_handles > 0)
    return;
  tp_buf_free(&p->response);
  tp_buf_free(&p->body);
  explicit_bzero(p->auth_header, sizeof(p->auth_header));
  free_strings(p);
  free(p);
}

void tp_pusher_close(tp_pusher *p) {
  if (p->request_active) {
    curl_multi_remove_handle(p->multi, p->easy); /* closes curl's sockets via curl_socket_cb */
    p->request_active = false;
  }
  curl_easy_cleanup(p->easy);
  curl_multi_cleanup(p->multi);
  curl_slist_free_all(p->headers);
  p->headers = NULL;
  if (p->lease != NULL)
    release_lease(p, true); /* re-sent as the same batch at the next start */
  if (p->fallback != NULL) {
    tp_spool_stats m;
    tp_spool_get_stats(p->fallback, &m);
    if (m.records > 0)
      tp_log_error(p->log, "results kept in memory (the spool could not be written) are lost",
                   "results=%llu", (unsigned long long)m.records);
    tp_spool_close(p->fallback);
    p->fallback = NULL;
  }
  uv_close((uv_handle_t *)&p->curl_timer, on_pusher_handle_closed);
  uv_close((uv_handle_t *)&p->flush_timer, on_pusher_handle_closed);
  uv_close((uv_handle_t *)&p->retry_timer, on_pusher_handle_closed);
}
