/* metrics_server.c - GET /metrics on the main loop (see metrics_server.h).
 *
 * One conn per accepted socket: a TCP handle and a deadline timer, both embedded,
 * freed in the last close callback. A connection reads its head into a fixed
 * buffer, is answered once, then half-closed (FIN) and read until the client's
 * FIN or the linger deadline, so unread request bytes cannot turn our close into a
 * reset that destroys the answer in flight. */
#include "metrics_server.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_request.h"
#include "tp_mem.h"
#include "tp_prom.h"

#define LISTEN_BACKLOG 16

typedef struct conn {
  tp_agent_metrics_server *srv;
  struct conn *prev, *next;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t write;
  uv_shutdown_t shutdown;
  int open_handles;
  bool answered, closing;
  size_t len;
  uint8_t head[TP_HTTP_REQUEST_MAX_HEAD];
  char scratch[512]; /* bytes read after the answer, dropped */
  char reply_head[256];
  tp_buf body;
} conn;

struct tp_agent_metrics_server {
  uv_loop_t *loop;
  const tp_log *log;
  uv_tcp_t listener;
  bool listener_open, closing;
  uint16_t port;
  tp_agent_metrics_render_fn render;
  void *data;
  conn *conns;
  unsigned n_conns;
};

static void maybe_free(tp_agent_metrics_server *srv) {
  if (srv->closing && !srv->listener_open && srv->conns == NULL)
    free(srv);
}

/* ---- one connection ----------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *handle) {
  conn *c = handle->data;
  if (--c->open_handles > 0)
    return;
  tp_agent_metrics_server *srv = c->srv;
  tp_buf_free(&c->body);
  free(c);
  maybe_free(srv);
}

static void conn_close(conn *c) {
  if (c->closing)
    return;
  c->closing = true;
  tp_agent_metrics_server *srv = c->srv;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  srv->n_conns--;
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_deadline(uv_timer_t *timer) {
  conn_close(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn *c = req->data;
  if (status < 0) {
    conn_close(c);
    return;
  }
  /* The answer is on its way: wait a little for the client's FIN. */
  uv_timer_stop(&c->timer);
  if (uv_timer_start(&c->timer, on_deadline, TP_AGENT_METRICS_LINGER_MS, 0) < 0)
    conn_close(c);
}

static void on_written(uv_write_t *req, int status) {
  conn *c = req->data;
  if (status < 0 || c->closing) {
    conn_close(c);
    return;
  }
  c->shutdown.data = c;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
    conn_close(c);
}

/* Sends the status line, headers and (unless head_only) c->body; the connection
 * closes after it. */
static void send_reply(conn *c, unsigned status, const char *reason, const char *type,
                       bool head_only, const char *extra) {
  c->answered = true;
  int n = snprintf(c->reply_head, sizeof(c->reply_head),
                   "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                   "Connection: close\r\n\r\n",
                   status, reason, type, c->body.len, extra ? extra : "");
  if (n < 0 || (size_t)n >= sizeof(c->reply_head)) {
    conn_close(c);
    return;
  }
  uv_buf_t bufs[2] = {uv_buf_init(c->reply_head, (unsigned)n),
                      uv_buf_init((char *)c->body.data, (unsigned)c->body.len)};
  c->write.data = c;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, bufs, head_only || c->body.len == 0 ? 1 : 2,
               on_written) < 0)
    conn_close(c);
}

static void send_text(conn *c, unsigned status, const char *reason, const char *text,
                      bool head_only, const char *extra) {
  tp_buf_reset(&c->body);
  if (tp_buf_append(&c->body, text, strlen(text)) != TP_E_OK) {
    conn_close(c);
    return;
  }
  send_reply(c, status, reason, "text/plain; charset=utf-8", head_only, extra);
}

static bool slice_is(const char *p, size_t n, const char *s) {
  return strlen(s) == n && memcmp(p, s, n) == 0;
}

static void answer(conn *c, const tp_http_request *req) {
  bool get = slice_is(req->method, req->method_len, "GET");
  bool head = slice_is(req->method, req->method_len, "HEAD");
  if (!slice_is(req->target, req->path_len, "/metrics")) {
    send_text(c, 404, "Not Found", "not found (try /metrics)\n", head, NULL);
    return;
  }
  if (!get && !head) {
    send_text(c, 405, "Method Not Allowed", "method not allowed (use GET)\n", false,
              "Allow: GET, HEAD\r\n");
    return;
  }
  tp_buf_reset(&c->body);
  if (c->srv->render(&c->body, c->srv->data) != TP_E_OK) {
    tp_log_error(c->srv->log, "metrics not served",
                 "reason=\"rendered text exceeds %zu bytes\"", TP_AGENT_METRICS_MAX_BYTES);
    send_text(c, 500, "Internal Server Error", "metrics exceed the response limit\n", head, NULL);
    return;
  }
  send_reply(c, 200, "OK", TP_PROM_CONTENT_TYPE, head, NULL);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn *c = handle->data;
  if (c->answered)
    *buf = uv_buf_init(c->scratch, sizeof(c->scratch));
  else
    *buf = uv_buf_init((char *)c->head + c->len, (unsigned)(sizeof(c->head) - c->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn *c = stream->data;
  if (nread < 0) { /* EOF (after our answer: the client's FIN) or an error */
    conn_close(c);
    return;
  }
  if (nread == 0 || c->answered || c->closing)
    return; /* nothing, or bytes after the head: dropped */
  c->len += (size_t)nread;
  tp_http_request req;
  switch (tp_http_request_parse(c->head, c->len, &req)) {
  case TP_HTTP_REQUEST_OK:
    answer(c, &req);
    break;
  case TP_HTTP_REQUEST_BAD:
    send_text(c, 400, "Bad Request", req.why, false, NULL);
    break;
  case TP_HTTP_REQUEST_VERSION:
    send_text(c, 505, "HTTP Version Not Supported", req.why, false, NULL);
    break;
  case TP_HTTP_REQUEST_INCOMPLETE:
    if (c->len == sizeof(c->head))
      send_text(c, 431, "Request Header Fields Too Large", "request head too large\n", false,
                NULL);
    break;
  }
}

/* ---- the listener --------------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status) {
  tp_agent_metrics_server *srv = listener->data;
  if (status < 0) {
    tp_log_warn(srv->log, "metrics: accept failed", "error=\"%s\"", uv_strerror(status));
    return;
  }
  conn *c = tp_xcalloc(1, sizeof(*c));
  c->srv = srv;
  tp_buf_init(&c->body, TP_AGENT_METRICS_MAX_BYTES);
  if (uv_tcp_init(srv->loop, &c->tcp) < 0) {
    free(c);
    return;
  }
  c->tcp.data = c;
  c->open_handles = 1;
  c->next = srv->conns;
  if (srv->conns != NULL)
    srv->conns->prev = c;
  srv->conns = c;
  srv->n_conns++;
  if (uv_timer_init(srv->loop, &c->timer) < 0) {
    /* Only the TCP handle exists: close it alone. */
    c->closing = true;
    srv->conns = c->next;
    if (c->next != NULL)
      c->next->prev = NULL;
    srv->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    return;
  }
  c->timer.data = c;
  c->open_handles = 2;
  /* Accepted even when over the cap (so the listener does not stall on it), then
   * closed at once. */
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0 ||
      srv->n_conns > TP_AGENT_METRICS_MAX_CONNECTIONS ||
      uv_timer_start(&c->timer, on_deadline, TP_AGENT_METRICS_HEAD_TIMEOUT_MS, 0) < 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
    conn_close(c);
}

tp_err tp_agent_metrics_server_start(uv_loop_t *loop, const tp_listen_addr *listen,
                                     tp_agent_metrics_render_fn render, void *data,
                                     const tp_log *log, tp_agent_metrics_server **out, char *err,
                                     size_t errlen) {
  int fd = -1;
  *out = NULL;
  tp_agent_metrics_server *srv = tp_xcalloc(1, sizeof(*srv));
  srv->loop = loop;
  srv->log = log;
  srv->render = render;
  srv->data = data;
  tp_err rc = tp_listen_addr_bind(listen, LISTEN_BACKLOG, &fd, &srv->port, err, errlen);
  if (rc != TP_E_OK) {
    free(srv);
    return rc;
  }
  int uv_rc = uv_tcp_init(loop, &srv->listener);
  if (uv_rc < 0) {
    close(fd);
    free(srv);
    snprintf(err, errlen, "metrics listener: %s", uv_strerror(uv_rc));
    return TP_E_IO;
  }
  srv->listener.data = srv;
  srv->listener_open = true;
  uv_rc = uv_tcp_open(&srv->listener, fd);
  if (uv_rc < 0)
    close(fd); /* not the handle's yet */
  else
    uv_rc = uv_listen((uv_stream_t *)&srv->listener, LISTEN_BACKLOG, on_connection);
  if (uv_rc < 0) {
    snprintf(err, errlen, "metrics listener: %s", uv_strerror(uv_rc));
    tp_agent_metrics_server_close(srv);
    return TP_E_IO;
  }
  *out = srv;
  return TP_E_OK;
}

uint16_t tp_agent_metrics_server_port(const tp_agent_metrics_server *srv) {
  return srv->port;
}

static void on_listener_closed(uv_handle_t *handle) {
  tp_agent_metrics_server *srv = handle->data;
  srv->listener_open = false;
  maybe_free(srv);
}

void tp_agent_metrics_server_close(tp_agent_metrics_server *srv) {
  if (srv == NULL || srv->closing)
    return;
  srv->closing = true;
  while (srv->conns != NULL)
    conn_close(srv->conns);
  if (srv->listener_open)
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
  else
    maybe_free(srv);
}
