/* pusher.c - batches -> protobuf -> HTTP POST via curl_multi_socket_action on
 * libuv (curl's docs/examples/multi-uv.c shape: a uv_poll_t per curl socket
 * and one uv_timer_t for curl's timeouts), with every state in struct
 * tp_pusher. */
#include "pusher.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "tlsprobe.pb-c.h"
#include "tp_buf.h"
#include "tp_mem.h"
#include "tp_rand.h"
#include "validate.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define ACK_MAX_BYTES 4096

/* One batch, kept with its serialised body until acknowledged. */
typedef struct batch {
  tp_result **results;
  size_t n;
  uint8_t *body;
  size_t body_len;
  uint64_t seq;
} batch;

/* A socket curl asked us to watch. Freed in its close callback. */
typedef struct curl_socket_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  tp_pusher *pusher;
} curl_socket_ctx;

struct tp_pusher {
  uv_loop_t *loop;
  const tp_log *log;
  tp_queue *queue;
  char *url, *agent_id, *region;
  unsigned batch_size;
  uint64_t flush_interval_ms, timeout_ms;
  uint64_t instance_id, next_batch_seq, next_result_seq;

  CURLM *multi;
  CURL *easy;
  struct curl_slist *headers;
  tp_buf response;
  char curl_error[CURL_ERROR_SIZE];
  bool request_active;

  uv_timer_t curl_timer;  /* curl's own timeout */
  uv_timer_t flush_timer; /* periodic flush */
  uv_timer_t retry_timer; /* backoff after a failure */
  int open_handles;
  bool backing_off;
  unsigned consecutive_failures;
  tp_rng rng; /* retry jitter */

  batch *current;

  /* flush-on-shutdown */
  void (*flush_done)(void *);
  void *flush_data;
  uint64_t flush_deadline; /* uv_now() ms */

  tp_pusher_stats stats;
};

static void maybe_push(tp_pusher *p);

/* ---- batches ---------------------------------------------------------- */

static void batch_free(batch *b) {
  if (b == NULL)
    return;
  for (size_t i = 0; i < b->n; i++)
    tp_result_free(b->results[i]);
  free(b->results);
  free(b->body);
  free(b);
}

static void fill_batch_identity(tp_pusher *p, tp_result_pb *w, const tp_result *r) {
  tp_result_pb_init(w, r);
  w->msg.agent_id = p->agent_id;
  w->msg.region = p->region;
  w->msg.result_seq = p->next_result_seq;
}

/* Converts *slot to its wire form in w. The collector rejects a whole batch for
 * one invalid result, so each is checked here with the same rules; one that
 * fails is replaced by a minimal error result for its target (the target must
 * not go silent), and dropped only if even that fails (its identity itself is
 * broken). TP_E_VALIDATE = dropped; *slot is then freed. */
static tp_err wire_result(tp_pusher *p, tp_result **slot, tp_result_pb *w) {
  char reason[256];
  fill_batch_identity(p, w, *slot);
  if (tp_validate_result(p->agent_id, &w->msg, reason, sizeof(reason)) == TP_E_OK)
    return TP_E_OK;
  tp_result_pb_clear(w);
  tp_result *minimal = tp_result_minimal_error(*slot, reason);
  tp_log_error(p->log, "replacing an invalid result by a minimal error result (a bug: please report it)",
               "target=%s profile=%s reason=\"%s\"", minimal->target, minimal->profile, reason);
  p->stats.invalid++;
  tp_result_free(*slot);
  *slot = minimal;
  fill_batch_identity(p, w, minimal);
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

/* Takes up to batch_size results out of the queue and serialises them. */
static batch *batch_build(tp_pusher *p) {
  size_t queued = tp_queue_length(p->queue);
  if (queued == 0)
    return NULL;
  size_t max = queued < p->batch_size ? queued : p->batch_size;
  batch *b = tp_xcalloc(1, sizeof(*b));
  b->results = tp_xcalloc(max, sizeof(tp_result *));
  b->n = tp_queue_take(p->queue, b->results, max);
  b->seq = p->next_batch_seq++;

  tp_result_pb *wire = tp_xcalloc(b->n, sizeof(*wire));
  Tlsprobe__V1__ProbeResult **ptrs = tp_xcalloc(b->n, sizeof(*ptrs));
  size_t kept = 0;
  for (size_t i = 0; i < b->n; i++) {
    tp_result_pb *w = &wire[kept];
    if (wire_result(p, &b->results[i], w) != TP_E_OK)
      continue; /* dropped, logged and counted */
    p->next_result_seq++;
    b->results[kept] = b->results[i];
    ptrs[kept] = &w->msg;
    kept++;
  }
  b->n = kept;
  Tlsprobe__V1__ResultBatch msg = TLSPROBE__V1__RESULT_BATCH__INIT;
  msg.agent_id = p->agent_id;
  msg.instance_id = p->instance_id;
  msg.batch_seq = b->seq;
  struct timespec now;
  if (clock_gettime(CLOCK_REALTIME, &now) == 0)
    msg.sent_unix_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
  msg.n_results = b->n;
  msg.results = ptrs;
  b->body_len = tlsprobe__v1__result_batch__get_packed_size(&msg);
  b->body = tp_xmalloc(b->body_len);
  tlsprobe__v1__result_batch__pack(&msg, b->body);

  for (size_t i = 0; i < b->n; i++)
    tp_result_pb_clear(&wire[i]);
  free(ptrs);
  free(wire);
  if (b->n == 0) { /* every result was invalid: nothing to send */
    batch_free(b);
    return NULL;
  }
  return b;
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

/* ---- request outcome -------------------------------------------------- */

static void on_retry_timer(uv_timer_t *timer) {
  tp_pusher *p = timer->data;
  p->backing_off = false;
  maybe_push(p);
}

static void schedule_retry(tp_pusher *p, const char *reason) {
  p->stats.failures++;
  p->consecutive_failures++;
  uint64_t backoff = BACKOFF_MIN_MS;
  for (unsigned i = 1; i < p->consecutive_failures && backoff < BACKOFF_MAX_MS; i++)
    backoff *= 2;
  if (backoff > BACKOFF_MAX_MS)
    backoff = BACKOFF_MAX_MS;
  backoff = backoff / 2 + tp_rng_below(&p->rng, backoff / 2 + 1); /* jitter: [b/2, b] */
  tp_log_warn(p->log, "push failed, will retry", "batch_seq=%llu results=%zu retry_in_ms=%llu reason=\"%s\"",
              (unsigned long long)p->current->seq, p->current->n, (unsigned long long)backoff, reason);
  p->backing_off = true;
  if (uv_timer_start(&p->retry_timer, on_retry_timer, backoff, 0) < 0)
    p->backing_off = false;
}

static void batch_acknowledged(tp_pusher *p, const Tlsprobe__V1__BatchAck *ack) {
  batch *b = p->current;
  if (ack->duplicate)
    p->stats.duplicates += b->n;
  p->stats.pushed += b->n;
  p->stats.batches++;
  p->consecutive_failures = 0;
  tp_log_debug(p->log, "pushed batch", "batch_seq=%llu results=%zu stored=%u duplicate=%d",
               (unsigned long long)b->seq, b->n, ack->stored, ack->duplicate ? 1 : 0);
  batch_free(b);
  p->current = NULL;
}

static void batch_rejected(tp_pusher *p, long status) {
  batch *b = p->current;
  p->stats.rejected += b->n;
  tp_log_error(p->log, "collector rejected batch; dropping it",
               "batch_seq=%llu results=%zu status=%ld reason=\"%.200s\"",
               (unsigned long long)b->seq, b->n, status,
               p->response.len ? (const char *)p->response.data : "");
  batch_free(b);
  p->current = NULL;
}

static void request_finished(tp_pusher *p, CURLcode code) {
  long status = 0;
  char reason[512];
  curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_multi_remove_handle(p->multi, p->easy);
  p->request_active = false;

  if (code != CURLE_OK) {
    snprintf(reason, sizeof(reason), "%s: %s", curl_easy_strerror(code),
             p->curl_error[0] ? p->curl_error : "-");
    schedule_retry(p, reason);
  } else if (status == 200) {
    Tlsprobe__V1__BatchAck *ack =
        tlsprobe__v1__batch_ack__unpack(NULL, p->response.len, p->response.data);
    if (ack == NULL || ack->batch_seq != p->current->seq) {
      snprintf(reason, sizeof(reason), "collector answered 200 without a valid acknowledgement");
      schedule_retry(p, reason);
    } else {
      batch_acknowledged(p, ack);
    }
    if (ack != NULL)
      tlsprobe__v1__batch_ack__free_unpacked(ack, NULL);
  } else if (status >= 400 && status < 500 && status != 408 && status != 429) {
    batch_rejected(p, status);
  } else {
    snprintf(reason, sizeof(reason), "HTTP %ld", status);
    schedule_retry(p, reason);
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

/* ---- pushing ---------------------------------------------------------- */

static tp_err start_request(tp_pusher *p) {
  batch *b = p->current;
  tp_buf_reset(&p->response);
  p->curl_error[0] = '\0';
  curl_easy_reset(p->easy);
  CURLcode c = CURLE_OK;
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_POST, 1L);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, b->body);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->body_len);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, on_response_body);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->curl_error);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
  if (c == CURLE_OK) c = curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
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

static void finish_flush_if_done(tp_pusher *p) {
  if (!flushing(p))
    return;
  bool drained = p->current == NULL && tp_queue_length(p->queue) == 0;
  if (!drained && uv_now(p->loop) < p->flush_deadline)
    return;
  void (*done)(void *) = p->flush_done;
  p->flush_done = NULL;
  done(p->flush_data);
}

static void maybe_push(tp_pusher *p) {
  if (p->request_active || p->backing_off) {
    finish_flush_if_done(p);
    return;
  }
  if (p->current == NULL) {
    /* Between flush ticks only full batches go out; a flush sends what is there. */
    p->current = batch_build(p);
  }
  if (p->current != NULL && start_request(p) != TP_E_OK)
    schedule_retry(p, "cannot set up the HTTP request");
  finish_flush_if_done(p);
}

static void on_flush_timer(uv_timer_t *timer) {
  maybe_push(timer->data);
}

void tp_pusher_notify(tp_pusher *p) {
  if (tp_queue_length(p->queue) >= p->batch_size)
    maybe_push(p);
}

void tp_pusher_flush(tp_pusher *p, uint64_t deadline_ms, void (*done)(void *), void *data) {
  p->flush_done = done;
  p->flush_data = data;
  p->flush_deadline = uv_now(p->loop) + deadline_ms;
  /* The deadline also needs a clock tick when nothing else happens. */
  (void)uv_timer_start(&p->flush_timer, on_flush_timer, 0, deadline_ms < 100 ? deadline_ms : 100);
  maybe_push(p);
}

/* ---- lifetime --------------------------------------------------------- */

tp_err tp_pusher_new(uv_loop_t *loop, const tp_pusher_options *o, tp_queue *queue,
                     const tp_log *log, tp_pusher **out) {
  tp_pusher *p = tp_xcalloc(1, sizeof(*p));
  p->loop = loop;
  p->log = log;
  p->queue = queue;
  p->url = tp_xstrdup(o->url);
  p->agent_id = tp_xstrdup(o->agent_id);
  p->region = tp_xstrdup(o->region);
  p->batch_size = o->batch_size ? o->batch_size : 200;
  p->flush_interval_ms = o->flush_interval_ms ? o->flush_interval_ms : 2000;
  p->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
  tp_buf_init(&p->response, ACK_MAX_BYTES);
  if (uv_random(NULL, NULL, &p->instance_id, sizeof(p->instance_id), 0, NULL) != 0)
    p->instance_id = uv_hrtime();
  tp_rng_seed(&p->rng, p->instance_id | 1);
  p->next_batch_seq = 1;
  p->next_result_seq = 1;

  p->multi = curl_multi_init();
  p->easy = curl_easy_init();
  p->headers = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
  if (p->headers != NULL)
    p->headers = curl_slist_append(p->headers, "Expect:"); /* no 100-continue round trip */
  if (p->multi == NULL || p->easy == NULL || p->headers == NULL)
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
  free(p->url);
  free(p->agent_id);
  free(p->region);
  free(p);
  return TP_E_HTTP;
}

void tp_pusher_start(tp_pusher *p) {
  (void)uv_timer_start(&p->flush_timer, on_flush_timer, p->flush_interval_ms,
                       p->flush_interval_ms);
  tp_log_info(p->log, "pusher started", "url=%s instance_id=%016llx batch_size=%u", p->url,
              (unsigned long long)p->instance_id, p->batch_size);
}

void tp_pusher_get_stats(const tp_pusher *p, tp_pusher_stats *stats) {
  *stats = p->stats;
  stats->unsent = tp_queue_length(p->queue) + (p->current ? p->current->n : 0);
}

static void on_pusher_handle_closed(uv_handle_t *handle) {
  tp_pusher *p = handle->data;
  if (--p->open_handles > 0)
    return;
  tp_buf_free(&p->response);
  free(p->url);
  free(p->agent_id);
  free(p->region);
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
  batch_free(p->current);
  p->current = NULL;
  uv_close((uv_handle_t *)&p->curl_timer, on_pusher_handle_closed);
  uv_close((uv_handle_t *)&p->flush_timer, on_pusher_handle_closed);
  uv_close((uv_handle_t *)&p->retry_timer, on_pusher_handle_closed);
}
