/* metrics_http.c - GET /metrics on its own libmicrohttpd daemon (see metrics_http.h).
 * Each scrape renders the registry into a fresh buffer that MHD sends and frees,
 * so no response outlives the registry's lock. */
#include "metrics_http.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rate_limit.h"
#include "tp_buf.h"
#include "tp_mem.h"
#include "tp_prom.h"

#define LISTEN_BACKLOG 16

static const char TEXT_TYPE[] = "text/plain; charset=utf-8";

struct tp_metrics_server {
  struct MHD_Daemon *daemon;
  int listen_fd; /* ours until MHD starts */
  uint16_t port;
  tp_listen_addr listen;
  const tp_log *log;
  tp_metrics *metrics;  /* borrowed */
  tp_log_limit mhd_log; /* MHD thread only */
};

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status,
                                    const char *text, const char *hname, const char *hvalue) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result rc = MHD_NO;
  if (resp == NULL)
    return MHD_NO;
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, TEXT_TYPE) == MHD_YES &&
      (hname == NULL || MHD_add_response_header(resp, hname, hvalue) == MHD_YES))
    rc = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return rc;
}

static enum MHD_Result respond_metrics(tp_metrics_server *srv, struct MHD_Connection *conn) {
  tp_buf text;
  tp_buf_init(&text, TP_METRICS_SERVER_MAX_BYTES);
  tp_err rc = tp_metrics_render(srv->metrics, &text);
  if (rc != TP_E_OK) {
    tp_buf_free(&text);
    tp_log_error(srv->log, "metrics not served", "reason=\"rendered text exceeds %zu bytes\"",
                 TP_METRICS_SERVER_MAX_BYTES);
    return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                        "metrics exceed the response limit\n", NULL, NULL);
  }
  /* MHD frees the buffer (malloc'd by tp_buf) once it is sent. */
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(text.len, text.data, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    tp_buf_free(&text);
    return MHD_NO;
  }
  enum MHD_Result result = MHD_NO;
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, TP_PROM_CONTENT_TYPE) ==
      MHD_YES)
    result = MHD_queue_response(conn, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  return result;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  (void)req_cls;
  tp_metrics_server *srv = cls;
  /* Answered from the head, on the first call: nothing here takes a body (MHD
   * discards one that follows, as the ingest listener's early refusals rely on). */
  if (strcmp(url, "/metrics") != 0 && strcmp(url, "/healthz") != 0)
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found (try /metrics)\n", NULL, NULL);
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed (use GET)\n",
                        MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  if (strcmp(url, "/healthz") == 0)
    return respond_text(conn, MHD_HTTP_OK, "ok\n", NULL, NULL);
  return respond_metrics(srv, conn);
}

/* libmicrohttpd's own messages: 5 lines per 10 s at most. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                             va_list ap) {
  tp_metrics_server *srv = cls;
  char msg[512];
  unsigned long suppressed = 0;
  if (!tp_log_limit_take(&srv->mhd_log, tp_monotonic_ms(), &suppressed))
    return;
  vsnprintf(msg, sizeof(msg), fmt, ap);
  msg[strcspn(msg, "\r\n\"")] = '\0';
  tp_log_warn(srv->log, "libmicrohttpd", "listener=metrics detail=\"%s\" suppressed_before=%lu",
              msg, suppressed);
}

tp_err tp_metrics_server_new(const tp_listen_addr *listen, const tp_log *log,
                             tp_metrics_server **out, char *err, size_t errlen) {
  tp_metrics_server *srv = tp_xcalloc(1, sizeof(*srv));
  srv->listen = *listen;
  srv->log = log;
  srv->mhd_log = (tp_log_limit){.lines = 5, .window_ms = 10000};
  srv->listen_fd = -1;
  tp_err rc = tp_listen_addr_bind(&srv->listen, LISTEN_BACKLOG, &srv->listen_fd, &srv->port, err,
                                  errlen);
  if (rc != TP_E_OK) {
    free(srv);
    *out = NULL;
    return rc;
  }
  *out = srv;
  return TP_E_OK;
}

tp_err tp_metrics_server_run(tp_metrics_server *srv, tp_metrics *metrics, char *err,
                             size_t errlen) {
  srv->metrics = metrics;
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  if (srv->listen.ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  srv->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
      MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)TP_METRICS_SERVER_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)TP_METRICS_SERVER_TIMEOUT_S, MHD_OPTION_END);
  if (srv->daemon == NULL) {
    snprintf(err, errlen, "cannot start the metrics listener (libmicrohttpd refused the options)");
    return TP_E_HTTP;
  }
  srv->listen_fd = -1; /* MHD's now */
  return TP_E_OK;
}

uint16_t tp_metrics_server_port(const tp_metrics_server *srv) {
  return srv->port;
}

void tp_metrics_server_stop(tp_metrics_server *srv) {
  if (srv == NULL)
    return;
  if (srv->daemon != NULL)
    MHD_stop_daemon(srv->daemon);
  if (srv->listen_fd >= 0)
    close(srv->listen_fd);
  free(srv);
}
