/* pusher_http.c - libcurl's multi interface on the agent's libuv loop (curl's
 * docs/examples/multi-uv.c shape: a uv_poll_t per curl socket and one uv_timer_t for
 * curl's timeouts), the request with its TLS options, and the credentials. libcurl
 * is only the transport to our own collector; it never carries a client profile. */
#include "pusher_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_mem.h"
#include "tp_secret.h"

/* A socket curl asked us to watch. Freed in its close callback. */
typedef struct curl_socket_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  tp_pusher *pusher;
} curl_socket_ctx;

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

/* Keeps the first ACK_MAX_BYTES of the answer (an ack, or the start of an error
 * page) and swallows the rest: refusing the rest would make curl fail the transfer
 * and hide the HTTP status (a proxy's 413 page would look like a network error). */
static size_t on_response_body(char *data, size_t size, size_t nmemb, void *userp) {
  tp_pusher *p = userp;
  size_t len = size * nmemb;
  size_t room = p->response.cap - p->response.len;
  if (room > 0)
    (void)tp_buf_append(&p->response, data, len < room ? len : room);
  return len;
}

static void check_multi_info(tp_pusher *p) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == p->easy)
      tp__pusher_request_finished(p, msg->data.result);
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

tp_err tp__pusher_start_request(tp_pusher *p) {
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
  /* libcurl does not copy CURLOPT_HTTPHEADER: the list a request in flight was given
   * must live until that request ends (a SIGHUP can come mid-request). */
  if (p->request_active && p->stale_headers == NULL)
    p->stale_headers = p->headers;
  else
    curl_slist_free_all(p->headers);
  p->headers = h;
  return TP_E_OK;
}

void tp__pusher_request_ended(tp_pusher *p) {
  curl_slist_free_all(p->stale_headers);
  p->stale_headers = NULL;
}

void tp_pusher_reload(tp_pusher *p) {
  char err[512] = "cannot build the request headers (out of memory)";
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
      tp__pusher_maybe_push(p);
    }
  }
  explicit_bzero(old, sizeof(old));
}

/* A token or key others can read is a credential others can use: say so (once, at
 * start), and go on. */
void tp__pusher_warn_loose_secrets(const tp_pusher *p) {
  const char *files[] = {p->token_file, p->client_key_file};
  char why[96];
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    if (files[i] != NULL && tp_secret_file_too_open(files[i], why, sizeof(why)))
      tp_log_warn(p->log, "a secret file is readable by others: chmod 600 it", "file=%s why=\"%s\"",
                  files[i], why);
  }
}

/* ---- lifetime --------------------------------------------------------------------- */

tp_err tp__pusher_http_init(tp_pusher *p, char *err, size_t errlen) {
  tp_err rc = TP_E_OK;
  if (p->token_file != NULL && (rc = load_token(p, err, errlen)) != TP_E_OK)
    return rc;
  snprintf(err, errlen, "cannot initialise libcurl for %s", p->url);
  p->multi = curl_multi_init();
  p->easy = curl_easy_init();
  if (p->multi == NULL || p->easy == NULL || build_headers(p) != TP_E_OK)
    return TP_E_HTTP;
  if (curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb) != CURLM_OK ||
      curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p) != CURLM_OK ||
      curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb) != CURLM_OK ||
      curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p) != CURLM_OK)
    return TP_E_HTTP;
  err[0] = '\0';
  return TP_E_OK;
}

/* Safe on a half-initialised pusher (a failed tp__pusher_http_init). */
void tp__pusher_http_close(tp_pusher *p) {
  if (p->request_active) {
    curl_multi_remove_handle(p->multi, p->easy); /* closes curl's sockets via curl_socket_cb */
    p->request_active = false;
  }
  if (p->easy != NULL)
    curl_easy_cleanup(p->easy);
  if (p->multi != NULL)
    curl_multi_cleanup(p->multi);
  curl_slist_free_all(p->headers);
  tp__pusher_request_ended(p);
  p->easy = NULL;
  p->multi = NULL;
  p->headers = NULL;
}
