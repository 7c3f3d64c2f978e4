/* pusher.c - the pusher's delivery policy (what each collector answer does, see
 * pusher.h), the shutdown flush and the lifetime. Results go into the spools in
 * pusher_spool.c; libcurl on libuv, TLS and credentials are pusher_http.c's. */
#include "pusher_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "tlsprobe.pb-c.h"
#include "tp_mem.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define PERMANENT_RETRY_MS 300000 /* 3xx, 401, 403...: someone must fix a config */
#define RETRY_AFTER_MAX_S 300
#define LOG_EVERY_MS 60000 /* repeated failures: one line per minute, with counts */
/* The body is the records plus framing and the batch header; leave room for both. */
#define BODY_OVERHEAD_BYTES ((size_t)256 * 1024)

/* True when this occurrence should be logged; *suppressed = how many were not
 * since the last line. */
bool tp__pusher_log_allowed(log_limit *l, uint64_t now_ms, uint64_t *suppressed) {
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

int64_t tp__pusher_now_ns(void) {
  struct timespec now;
  if (clock_gettime(CLOCK_REALTIME, &now) != 0)
    return 0;
  return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* ---- request outcome -------------------------------------------------------------- */

const char *tp_push_failure_name(tp_push_failure failure) {
  switch (failure) {
#define TP_PUSH_FAILURE_CASE(e, name)                                                           \
  case TP_PUSH_FAILURE_##e:                                                                     \
    return name;
    TP_PUSH_FAILURE_MAP(TP_PUSH_FAILURE_CASE)
#undef TP_PUSH_FAILURE_CASE
  case TP_PUSH_FAILURE__COUNT:
    break;
  }
  return "?";
}

/* A certificate the collector's name or our CA does not match will not fix itself by
 * retrying fast. */
static bool tls_refused(CURLcode code) {
  return code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
         code == CURLE_SSL_CERTPROBLEM;
}

/* The class of an answer that is not a 200 (pusher.h), from curl's code and the status. */
static tp_push_failure failure_class(CURLcode code, long status) {
  if (code != CURLE_OK)
    return tls_refused(code) ? TP_PUSH_FAILURE_TLS : TP_PUSH_FAILURE_NETWORK;
  if (status == 413)
    return TP_PUSH_FAILURE_TOO_LARGE;
  if (status == 400 || status == 422)
    return TP_PUSH_FAILURE_REFUSED;
  return status == 408 || status == 429 || status >= 500 || status == 0 ? TP_PUSH_FAILURE_RETRY
                                                                         : TP_PUSH_FAILURE_CONFIG;
}

static void on_retry_timer(uv_timer_t *timer) {
  tp_pusher *p = timer->data;
  p->backing_off = false;
  tp__pusher_maybe_push(p);
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
  if (!tp__pusher_log_allowed(&p->push_log, uv_now(p->loop), &suppressed))
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
    tp__pusher_log_spool_trouble(p, "cannot delete an acknowledged batch from the spool (new results stay in memory until it can)");
  if (p->cap_records < p->batch_size)
    p->cap_records = p->cap_records * 2 < p->batch_size ? p->cap_records * 2 : p->batch_size;
}

/* A lone record the collector will not take: replace it by a minimal error record
 * once; if that is refused too, give it up -- deleted and reported lost under its
 * number in one spool transaction, after the lease (and the drop reports it carried,
 * which the collector did not take either) went back to the spool. */
static void refuse_single(tp_pusher *p, const char *why) {
  tp_spool_record *r = &p->lease->records[0];
  tp_spool *spool = p->lease_spool;
  uint64_t seq = r->seq;
  if (seq != p->last_replaced_seq || spool != p->last_replaced_spool) {
    uint8_t *minimal = NULL;
    size_t len = 0;
    if (tp_batch_minimal_record(r->data, r->len, why, &minimal, &len) == TP_E_OK &&
        tp_spool_replace(spool, seq, minimal, len) == TP_E_OK) {
      tp_log_warn(p->log, "replacing a result the collector refused by a minimal error result",
                  "result_seq=%llu bytes=%zu reason=\"%s\"", (unsigned long long)seq, r->len, why);
      p->last_replaced_seq = seq;
      p->last_replaced_spool = spool;
      p->stats.replaced++;
      free(minimal);
      release_lease(p, false);
      return;
    }
    free(minimal);
  }
  tp_log_error(p->log, "dropping a result the collector refuses (counted as invalid_result)",
               "result_seq=%llu reason=\"%s\"", (unsigned long long)seq, why);
  release_lease(p, false);
  if (tp_spool_forfeit(spool, seq, TP_SPOOL_DROP_INVALID) != TP_E_OK) {
    /* Still spooled: it is offered again (and refused) after a pause, not in a loop. */
    tp__pusher_log_spool_trouble(p, "cannot drop a refused result from the spool");
    retry_later(p, false, 0, "cannot drop a refused result from the spool");
    return;
  }
  p->stats.rejected++;
}

/* 413 or 400: find what the collector refuses. Drop reports first (a batch of them
 * alone), then halve the results until the culprit is alone, then refuse_single. */
static void split_or_refuse(tp_pusher *p, const char *why) {
  tp_spool_lease *l = p->lease;
  if (l->n_drops > 0 && l->n_records > 0) {
    p->drops_only_next = true;
    tp_log_info(p->log, "collector refused a batch: trying its drop reports alone",
                "batch_seq=%llu results=%zu drops=%zu reason=\"%s\"",
                (unsigned long long)l->batch_seq, l->n_records, l->n_drops, why);
    release_lease(p, false);
  } else if (l->n_records > 1) {
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
      tp__pusher_log_spool_trouble(p, "cannot delete refused drop reports from the spool");
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
  if (ack != NULL && ack->batch_seq == p->lease->batch_seq) {
    lease_acknowledged(p, ack);
  } else {
    p->stats.failures_by[TP_PUSH_FAILURE_BAD_ACK]++;
    retry_later(p, false, 0, "collector answered 200 without a valid acknowledgement");
  }
  if (ack != NULL)
    tlsprobe__v1__batch_ack__free_unpacked(ack, NULL);
}

void tp__pusher_request_finished(tp_pusher *p, CURLcode code) {
  long status = 0;
  curl_off_t retry_after = 0;
  char reason[512], body_reason[256];
  curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
  if (curl_easy_getinfo(p->easy, CURLINFO_RETRY_AFTER, &retry_after) != CURLE_OK)
    retry_after = 0;
  curl_multi_remove_handle(p->multi, p->easy);
  p->request_active = false;
  tp__pusher_request_ended(p);
  response_reason(p, body_reason, sizeof(body_reason));
  /* Every answer but a 200 counts here; a 200 without a valid ack in handle_ok. */
  if (code != CURLE_OK || status != 200)
    p->stats.failures_by[failure_class(code, status)]++;

  if (code != CURLE_OK) {
    snprintf(reason, sizeof(reason), "%s: %s", curl_easy_strerror(code),
             p->curl_error[0] ? p->curl_error : "-");
    retry_later(p, tls_refused(code), 0, reason);
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
  tp__pusher_maybe_push(p);
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
  bool drained = p->lease == NULL && tp__pusher_unsent(p) == 0;
  if (!drained && uv_now(p->loop) < p->flush_deadline)
    return;
  p->flush_completing = true;
  (void)uv_timer_start(&p->flush_timer, on_flush_complete, 0, 0);
}

/* Leases the next batch (or takes the one waiting for a retry) and sends it. */
void tp__pusher_maybe_push(tp_pusher *p) {
  if (p->request_active || p->backing_off) {
    finish_flush_if_done(p);
    return;
  }
  if (p->lease == NULL)
    tp__pusher_next_lease(p);
  if (p->lease != NULL) {
    if (tp_batch_body(p->agent_id, tp_spool_id(p->lease_spool), p->lease, tp__pusher_now_ns(),
                      &p->body) !=
        TP_E_OK)
      split_or_refuse(p, "batch larger than the agent's own body limit");
    else if (tp__pusher_start_request(p) != TP_E_OK)
      retry_later(p, false, 0, "cannot set up the HTTP request");
  }
  finish_flush_if_done(p);
}

static void on_flush_timer(uv_timer_t *timer) {
  tp__pusher_maybe_push(timer->data);
}

void tp_pusher_flush(tp_pusher *p, uint64_t deadline_ms, void (*done)(void *), void *data) {
  p->flush_done = done;
  p->flush_data = data;
  p->flush_deadline = uv_now(p->loop) + deadline_ms;
  /* The deadline also needs a clock tick when nothing else happens. */
  (void)uv_timer_start(&p->flush_timer, on_flush_timer, 0, deadline_ms < 100 ? deadline_ms : 100);
  tp__pusher_maybe_push(p);
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
  tp_err rc = tp__pusher_http_init(p, err, errlen);
  if (rc != TP_E_OK)
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
  tp__pusher_http_close(p);
  explicit_bzero(p->auth_header, sizeof(p->auth_header));
  tp_buf_free(&p->response);
  tp_buf_free(&p->body);
  free_strings(p);
  free(p);
  return rc;
}

void tp_pusher_start(tp_pusher *p) {
  tp__pusher_warn_loose_secrets(p);
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
  stats->unsent = tp__pusher_unsent(p);
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
  tp__pusher_http_close(p);
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
