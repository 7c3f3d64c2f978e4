/* http_server.c - libmicrohttpd glue: routing, per-request body accumulation
 * through a capped tp_buf, status codes, request logging. Decoding, validation
 * and storage are ingest.c's job.
 *
 * Per-request state (struct request) is created on the first callback of a POST
 * /v1/results and freed only in on_completed, which MHD calls for every request
 * however it ends (client gone, timeout, shutdown). */
#include "http_server.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ingest.h"
#include "tp_buf.h"
#include "tp_mem.h"

#define DEFAULT_CONNECTION_LIMIT 256
#define DEFAULT_CONNECTION_TIMEOUT_S 30
#define LISTEN_BACKLOG 128
/* After a body went over the cap we keep reading (and dropping) it so the client
 * gets a 413 instead of a reset -- but only up to this much, then we hang up. */
#define MAX_DISCARD_BYTES ((size_t)16 * 1024 * 1024)

static const char PATH_RESULTS[] = "/v1/results";
static const char PATH_HEALTH[] = "/healthz";
static const char PROTOBUF_TYPE[] = "application/x-protobuf";

struct tp_http_server {
  struct MHD_Daemon *daemon;
  tp_store *store;   /* borrowed; used only from the MHD thread */
  const tp_log *log; /* borrowed */
  size_t max_body;
  uint16_t port;
};

typedef struct request {
  tp_buf body;
  bool too_big;
  size_t discarded;
} request;

/* ---- helpers ----------------------------------------------------------------- */

/* "127.0.0.1:5555" / "[::1]:5555" for logs; "?" if unknown. */
static void peer_name(struct MHD_Connection *conn, char *out, size_t len) {
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  char host[INET6_ADDRSTRLEN], port[8];
  snprintf(out, len, "?");
  if (info == NULL || info->client_addr == NULL)
    return;
  const struct sockaddr *sa = info->client_addr;
  socklen_t salen =
      sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (getnameinfo(sa, salen, host, sizeof(host), port, sizeof(port),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return;
  snprintf(out, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* Request paths are attacker-chosen: keep log lines one line of key=value. */
static void loggable(const char *in, char *out, size_t len) {
  size_t i = 0;
  for (; in[i] != '\0' && i + 1 < len; i++)
    out[i] = (in[i] > 0x20 && in[i] < 0x7F && in[i] != '"') ? in[i] : '?';
  out[i] = '\0';
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               const void *data, size_t len, const char *allow) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result rc = MHD_NO;
  if (resp == NULL)
    return MHD_NO;
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES)
    goto out;
  if (allow != NULL && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)
    goto out;
  rc = MHD_queue_response(conn, status, resp);
out:
  MHD_destroy_response(resp);
  return rc;
}

/* Text reply "<reason>\n" for every non-200 answer, logged at warn with the peer. */
static enum MHD_Result reject(tp_http_server *srv, struct MHD_Connection *conn, unsigned status,
                              const char *reason, const char *allow) {
  char peer[80], body[320];
  peer_name(conn, peer, sizeof(peer));
  tp_log_warn(srv->log, "rejected", "status=%u peer=%s reason=\"%s\"", status, peer, reason);
  int n = snprintf(body, sizeof(body), "%s\n", reason);
  size_t len = n < 0 ? 0 : ((size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1);
  return respond(conn, status, "text/plain; charset=utf-8", body, len, allow);
}

static bool is_protobuf(const char *content_type) {
  size_t n = sizeof(PROTOBUF_TYPE) - 1;
  if (content_type == NULL || strncasecmp(content_type, PROTOBUF_TYPE, n) != 0)
    return false;
  char next = content_type[n];
  return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* Content-Length, when present and well-formed, lets us refuse before reading. */
static bool declared_too_big(struct MHD_Connection *conn, size_t cap) {
  const char *cl =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  char *end = NULL;
  if (cl == NULL || *cl < '0' || *cl > '9')
    return false;
  errno = 0;
  unsigned long long n = strtoull(cl, &end, 10);
  if (end == cl || *end != '\0')
    return false;
  return errno == ERANGE || n > cap;
}

static int64_t now_unix_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
    return 0;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- request phases ---------------------------------------------------------- */

/* First callback: headers are in, no body read yet. Everything that can be
 * decided from the headers is answered here, before a byte of body is buffered. */
static enum MHD_Result on_headers(tp_http_server *srv, struct MHD_Connection *conn, const char *url,
                                  const char *method, void **req_cls) {
  char path[128], verb[16];
  if (strcmp(url, PATH_HEALTH) == 0) {
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
      return reject(srv, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", "GET, HEAD");
    tp_log_debug(srv->log, "request", "method=GET path=%s status=200", PATH_HEALTH);
    return respond(conn, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n", 3, NULL);
  }
  if (strcmp(url, PATH_RESULTS) != 0) {
    loggable(url, path, sizeof(path));
    loggable(method, verb, sizeof(verb));
    tp_log_debug(srv->log, "request", "method=%s path=%s status=404", verb, path);
    return respond(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", "not found\n", 10, NULL);
  }
  if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
    return reject(srv, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed (use POST)", "POST");
  const char *type =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (!is_protobuf(type))
    return reject(srv, conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                  "Content-Type must be application/x-protobuf", NULL);
  if (declared_too_big(conn, srv->max_body))
    return reject(srv, conn, MHD_HTTP_CONTENT_TOO_LARGE, "body exceeds max_body_bytes", NULL);
  request *req = tp_xcalloc(1, sizeof(*req));
  tp_buf_init(&req->body, srv->max_body);
  *req_cls = req;
  return MHD_YES;
}

static enum MHD_Result on_body_chunk(request *req, const char *data, size_t *size) {
  if (!req->too_big && tp_buf_append(&req->body, data, *size) != TP_E_OK) {
    /* Chunked bodies have no Content-Length: the cap is only hit here. */
    req->too_big = true;
    tp_buf_free(&req->body);
  }
  if (req->too_big) {
    req->discarded += *size;
    if (req->discarded > MAX_DISCARD_BYTES)
      return MHD_NO; /* hang up: not worth reading further to say 413 */
  }
  *size = 0;
  return MHD_YES;
}

static enum MHD_Result on_body_done(tp_http_server *srv, struct MHD_Connection *conn,
                                    request *req) {
  tp_ingest_reply reply;
  char peer[80];
  if (req->too_big)
    return reject(srv, conn, MHD_HTTP_CONTENT_TOO_LARGE, "body exceeds max_body_bytes", NULL);
  tp_err rc = tp_ingest_batch(srv->store, req->body.data, req->body.len, now_unix_ns(), &reply);
  enum MHD_Result result;
  if (rc == TP_E_OK) {
    peer_name(conn, peer, sizeof(peer));
    tp_log_debug(srv->log, "request",
                 "method=POST path=%s status=200 peer=%s agent=%s results=%zu stored=%" PRIu32
                 " duplicate=%s",
                 PATH_RESULTS, peer, reply.agent_id, reply.results, reply.stored,
                 reply.duplicate ? "true" : "false");
    result = respond(conn, MHD_HTTP_OK, PROTOBUF_TYPE, reply.ack, reply.ack_len, NULL);
  } else {
    if (rc == TP_E_STORE)
      tp_log_error(srv->log, "store failed", "error=\"%s\"", reply.reason);
    result = reject(srv, conn, (unsigned)reply.http_status,
                    rc == TP_E_STORE ? "storage unavailable, retry later" : reply.reason, NULL);
  }
  tp_ingest_reply_clear(&reply);
  return result;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
  (void)version;
  tp_http_server *srv = cls;
  request *req = *req_cls;
  if (req == NULL)
    return on_headers(srv, conn, url, method, req_cls);
  if (*upload_data_size > 0)
    return on_body_chunk(req, upload_data, upload_data_size);
  return on_body_done(srv, conn, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  request *req = *req_cls;
  if (req == NULL)
    return;
  tp_buf_free(&req->body);
  free(req);
  *req_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                             va_list ap) {
  tp_http_server *srv = cls;
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  msg[strcspn(msg, "\r\n\"")] = '\0';
  tp_log_warn(srv->log, "libmicrohttpd", "detail=\"%s\"", msg);
}

/* ---- lifecycle --------------------------------------------------------------- */

static tp_err bind_listen(const tp_listen_addr *addr, int *fd_out, uint16_t *port_out, char *err,
                          size_t errlen) {
  int one = 1;
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof(bound);
  const char *what = "socket";
  int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    goto fail;
  what = "setsockopt";
  /* REUSEADDR: a restart must not wait out TIME_WAIT; a live listener still
   * makes bind fail with EADDRINUSE. */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    goto fail;
  if (addr->ss.ss_family == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
    goto fail;
  what = "bind";
  if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0)
    goto fail;
  what = "listen";
  if (listen(fd, LISTEN_BACKLOG) != 0)
    goto fail;
  what = "getsockname";
  if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0)
    goto fail;
  *port_out = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  *fd_out = fd;
  return TP_E_OK;
fail:
  snprintf(err, errlen, "cannot listen on %s%s%s:%u: %s: %s",
           addr->ss.ss_family == AF_INET6 ? "[" : "", addr->host,
           addr->ss.ss_family == AF_INET6 ? "]" : "", addr->port, what, strerror(errno));
  if (fd >= 0)
    close(fd);
  return TP_E_IO;
}

tp_err tp_http_server_start(const tp_http_options *options, tp_store *store, const tp_log *log,
                            tp_http_server **out, char *err, size_t errlen) {
  int fd = -1;
  *out = NULL;
  tp_http_server *srv = tp_xcalloc(1, sizeof(*srv));
  srv->store = store;
  srv->log = log;
  srv->max_body = options->max_body_bytes;
  tp_err rc = bind_listen(options->listen, &fd, &srv->port, err, errlen);
  if (rc != TP_E_OK)
    goto out;
  unsigned limit = options->connection_limit ? options->connection_limit : DEFAULT_CONNECTION_LIMIT;
  unsigned timeout =
      options->connection_timeout_s ? options->connection_timeout_s : DEFAULT_CONNECTION_TIMEOUT_S;
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  if (options->listen->ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  srv->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, srv,
      /* the logger first, so option errors below are routed through it */
      MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
      MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT, timeout,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
  if (srv->daemon == NULL) {
    snprintf(err, errlen, "cannot start HTTP server (libmicrohttpd refused the options)");
    rc = TP_E_HTTP;
    close(fd); /* MHD only takes ownership of the socket when it starts */
    goto out;
  }
out:
  if (rc != TP_E_OK) {
    free(srv);
    return rc;
  }
  *out = srv;
  return TP_E_OK;
}

uint16_t tp_http_server_port(const tp_http_server *server) { return server->port; }

void tp_http_server_stop(tp_http_server *server) {
  if (server == NULL)
    return;
  /* MHD_stop_daemon joins the MHD thread and closes the listening socket. */
  MHD_stop_daemon(server->daemon);
  free(server);
}
