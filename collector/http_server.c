/* http_server.c - libmicrohttpd glue: routing, authentication, per-request body
 * accumulation within the per-body and all-bodies caps, status codes, request logs,
 * and the connection guard. Decoding, validation and storage are ingest.c's job, on
 * the ingest queue's threads (ingest_queue.h): a complete body is handed over and its
 * connection suspended (MHD_suspend_connection) until the queue answers -- after the
 * commit that stored it -- and resumes it, so this one MHD thread keeps serving every
 * other connection meanwhile, and everything else here stays single-threaded.
 *
 * Per-connection state (conn_ctx) lives from MHD's STARTED to its CLOSED notification
 * (MHD closes the socket only after CLOSED, so the watchdog may shut a listed socket
 * down while it holds guard_mu). Per-request state (struct request) is created on the
 * first callback of a POST /v1/results and freed only in on_completed, which MHD
 * calls for every request however it ends (client gone, timeout, shutdown). */
#include "http_server.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth_tokens.h"
#include "ingest.h"
#include "ingest_queue.h"
#include "rate_limit.h"
#include "tp_mem.h"

#define DEFAULT_CONNECTION_LIMIT 256
#define DEFAULT_CONNECTION_TIMEOUT_S 10
#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define DEFAULT_REQUEST_TIMEOUT_MS 60000
#define DEFAULT_MAX_BUFFERED ((uint64_t)64 * 1024 * 1024)
#define LISTEN_BACKLOG 128
/* After a body went over a cap we keep reading (and dropping) it so the client gets
 * an answer instead of a reset -- but only up to this much, then we hang up. */
#define MAX_DISCARD_BYTES ((size_t)16 * 1024 * 1024)
/* First allocation for a body of unknown length (chunked); doubled as it grows. */
#define FIRST_CHUNK ((size_t)16 * 1024)
#define WATCHDOG_TICK_MS 250
#define ID_MAX 130 /* an agent id (128) + NUL, with room */

static const char PATH_RESULTS[] = "/v1/results";
static const char PATH_HEALTH[] = "/healthz";
static const char PROTOBUF_TYPE[] = "application/x-protobuf";
static const char TEXT_TYPE[] = "text/plain; charset=utf-8";

typedef enum { CONN_AWAIT_HEAD, CONN_IN_REQUEST } conn_phase;

typedef struct conn_ctx {
  struct conn_ctx *prev, *next; /* guard list, under guard_mu */
  int fd;
  uint64_t tls_epoch;
  conn_phase phase; /* under guard_mu */
  uint64_t phase_start_ms;
  bool shut;
  /* the client certificate's verdict, per connection and trust generation */
  bool cert_checked;
  uint64_t cert_gen;
  tp_err cert_rc;
  char cert_identity[ID_MAX];
  char cert_why[160];
} conn_ctx;

struct tp_http_server {
  struct MHD_Daemon *daemon;
  int listen_fd; /* ours until MHD starts */
  tp_store *store; /* borrowed; used only by the ingest queue's writer thread */
  tp_ingest_queue *queue;
  pthread_mutex_t answer_mu; /* a request's answer, handed from the queue's threads */
  const tp_log *log; /* borrowed */
  tp_http_options opt; /* with defaults applied */
  tp_listen_addr listen;
  tp_time_window window;
  uint16_t port;
  tp_rate_limit *rate;
  uint64_t buffered; /* body bytes allocated, all requests (MHD thread only) */
  tp_log_limit reject_log, busy_log, mhd_log;
  /* connection guard */
  pthread_mutex_t guard_mu;
  pthread_cond_t guard_cond;
  pthread_t watchdog;
  bool watchdog_started, stopping;
  conn_ctx *conns;
  unsigned long slow_head, slow_request; /* closed since the last log line */
  uint64_t slow_logged_ms;
};

typedef enum {
  REQ_BODY,     /* the body is being read */
  REQ_QUEUED,   /* with the ingest queue; the connection is suspended */
  REQ_ANSWERED, /* the queue's answer is in `reply`; the connection is resumed */
} req_state;

typedef struct request {
  tp_http_server *srv;
  struct MHD_Connection *conn;
  req_state state; /* under srv->answer_mu once queued */
  tp_ingest_reply reply;
  uint8_t *body;
  size_t len, alloc;
  unsigned fail_status; /* 413 or 503 once the body is being discarded */
  const char *fail_reason;
  size_t discarded;
  bool authenticated;
  char identity[ID_MAX];
} request;

/* ---- helpers ----------------------------------------------------------------- */

static void peer_host(struct MHD_Connection *conn, char *host, size_t hostlen, char *port,
                      size_t portlen) {
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(host, hostlen, "?");
  snprintf(port, portlen, "?");
  if (info == NULL || info->client_addr == NULL)
    return;
  const struct sockaddr *sa = info->client_addr;
  socklen_t salen =
      sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (getnameinfo(sa, salen, host, (socklen_t)hostlen, port, (socklen_t)portlen,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    snprintf(host, hostlen, "?");
}

/* "127.0.0.1:5555" / "[::1]:5555" for logs; "?" if unknown. */
static void peer_name(struct MHD_Connection *conn, char *out, size_t len) {
  char host[INET6_ADDRSTRLEN + 1], port[8];
  peer_host(conn, host, sizeof(host), port, sizeof(port));
  snprintf(out, len, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
}

/* Request paths are attacker-chosen: keep log lines one line of key=value. */
static void loggable(const char *in, char *out, size_t len) {
  size_t i = 0;
  for (; in[i] != '\0' && i + 1 < len; i++)
    out[i] = (in[i] > 0x20 && in[i] < 0x7F && in[i] != '"') ? in[i] : '?';
  out[i] = '\0';
}

/* A response with one optional extra header. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               const void *data, size_t len, const char *hname,
                               const char *hvalue) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result rc = MHD_NO;
  if (resp == NULL)
    return MHD_NO; /* out of memory: MHD closes the connection */
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES)
    goto out;
  if (hname != NULL && MHD_add_response_header(resp, hname, hvalue) != MHD_YES)
    goto out;
  rc = MHD_queue_response(conn, status, resp);
out:
  MHD_destroy_response(resp);
  return rc;
}

/* Text reply "<reason>\n" for every non-200 answer, logged at warn with the peer
 * (at most 20 lines per 10 s: a flood of garbage must not become a flood of logs). */
static enum MHD_Result reject_with(tp_http_server *srv, struct MHD_Connection *conn,
                                   unsigned status, const char *reason, const char *hname,
                                   const char *hvalue) {
  char peer[80], body[320];
  unsigned long suppressed = 0;
  if (tp_log_limit_take(&srv->reject_log, tp_monotonic_ms(), &suppressed)) {
    peer_name(conn, peer, sizeof(peer));
    char note[48] = "";
    if (suppressed > 0)
      snprintf(note, sizeof(note), " suppressed_before=%lu", suppressed);
    tp_log_warn(srv->log, "rejected", "status=%u peer=%s reason=\"%s\"%s", status, peer, reason,
                note);
  }
  int n = snprintf(body, sizeof(body), "%s\n", reason);
  size_t len = n < 0 ? 0 : ((size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1);
  return respond(conn, status, TEXT_TYPE, body, len, hname, hvalue);
}

static enum MHD_Result reject(tp_http_server *srv, struct MHD_Connection *conn, unsigned status,
                              const char *reason) {
  return reject_with(srv, conn, status, reason, NULL, NULL);
}

/* 503 for a resource limit: the agent retries after a second. */
static enum MHD_Result busy(tp_http_server *srv, struct MHD_Connection *conn, const char *reason) {
  return reject_with(srv, conn, MHD_HTTP_SERVICE_UNAVAILABLE, reason, MHD_HTTP_HEADER_RETRY_AFTER,
                     "1");
}

static bool is_protobuf(const char *content_type) {
  size_t n = sizeof(PROTOBUF_TYPE) - 1;
  if (content_type == NULL || strncasecmp(content_type, PROTOBUF_TYPE, n) != 0)
    return false;
  char next = content_type[n];
  return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* Content-Length when present and well-formed (then *known), else unknown. */
static bool declared_length(struct MHD_Connection *conn, unsigned long long *out) {
  const char *cl =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  char *end = NULL;
  if (cl == NULL || *cl < '0' || *cl > '9')
    return false;
  errno = 0;
  unsigned long long n = strtoull(cl, &end, 10);
  if (end == cl || *end != '\0')
    return false;
  *out = errno == ERANGE ? ULLONG_MAX : n;
  return true;
}

static int64_t now_unix_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
    return 0;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static conn_ctx *conn_of(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return info != NULL ? info->socket_context : NULL;
}

/* ---- the connection guard ----------------------------------------------------- */

static void set_phase(tp_http_server *srv, conn_ctx *ctx, conn_phase phase) {
  if (ctx == NULL)
    return;
  pthread_mutex_lock(&srv->guard_mu);
  ctx->phase = phase;
  ctx->phase_start_ms = tp_monotonic_ms();
  pthread_mutex_unlock(&srv->guard_mu);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  tp_http_server *srv = cls;
  conn_ctx *ctx = *socket_context;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
      /* Unguarded connections must not exist: hang this one up. */
      if (fd != NULL)
        (void)shutdown(fd->connect_fd, SHUT_RDWR);
      return;
    }
    ctx->fd = fd != NULL ? fd->connect_fd : -1;
    ctx->tls_epoch = srv->opt.tls ? tp_tls_server_conn_opened(srv->opt.tls) : 0;
    ctx->phase = CONN_AWAIT_HEAD;
    ctx->phase_start_ms = tp_monotonic_ms();
    pthread_mutex_lock(&srv->guard_mu);
    ctx->next = srv->conns;
    if (srv->conns != NULL)
      srv->conns->prev = ctx;
    srv->conns = ctx;
    pthread_mutex_unlock(&srv->guard_mu);
    *socket_context = ctx;
    return;
  }
  if (ctx == NULL)
    return;
  pthread_mutex_lock(&srv->guard_mu);
  if (ctx->prev != NULL)
    ctx->prev->next = ctx->next;
  else
    srv->conns = ctx->next;
  if (ctx->next != NULL)
    ctx->next->prev = ctx->prev;
  pthread_mutex_unlock(&srv->guard_mu);
  if (srv->opt.tls != NULL)
    tp_tls_server_conn_closed(srv->opt.tls, ctx->tls_epoch);
  free(ctx);
  *socket_context = NULL;
}

/* Shuts down every connection past its deadline: the request head within
 * header_timeout of connecting or of the previous answer, the whole request within
 * request_timeout. libmicrohttpd's own timeout is an idle timeout, which a client
 * that trickles a byte every few seconds never trips. Called with guard_mu held. */
static void sweep(tp_http_server *srv, uint64_t now) {
  for (conn_ctx *c = srv->conns; c != NULL; c = c->next) {
    uint64_t limit =
        c->phase == CONN_AWAIT_HEAD ? srv->opt.header_timeout_ms : srv->opt.request_timeout_ms;
    if (c->shut || c->fd < 0 || now - c->phase_start_ms <= limit)
      continue;
    /* shutdown, not close: the socket stays MHD's, which sees EOF and closes it. */
    (void)shutdown(c->fd, SHUT_RDWR);
    c->shut = true;
    if (c->phase == CONN_AWAIT_HEAD)
      srv->slow_head++;
    else
      srv->slow_request++;
  }
  /* One line per 5 s at most, with what was closed since the last one. */
  if ((srv->slow_head || srv->slow_request) && now - srv->slow_logged_ms >= 5000) {
    tp_log_warn(srv->log, "closed slow connections",
                "count=%lu head_incomplete=%lu request_incomplete=%lu header_timeout_ms=%" PRIu64
                " request_timeout_ms=%" PRIu64,
                srv->slow_head + srv->slow_request, srv->slow_head, srv->slow_request,
                srv->opt.header_timeout_ms, srv->opt.request_timeout_ms);
    srv->slow_head = srv->slow_request = 0;
    srv->slow_logged_ms = now;
  }
}

static void *watchdog_main(void *arg) {
  tp_http_server *srv = arg;
  pthread_mutex_lock(&srv->guard_mu);
  while (!srv->stopping) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += WATCHDOG_TICK_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    (void)pthread_cond_timedwait(&srv->guard_cond, &srv->guard_mu, &until);
    if (!srv->stopping)
      sweep(srv, tp_monotonic_ms());
  }
  pthread_mutex_unlock(&srv->guard_mu);
  return NULL;
}

/* ---- authentication ------------------------------------------------------------ */

/* "Bearer <token>" (RFC 6750 §2.1; the scheme is case-insensitive). */
static bool parse_bearer(const char *value, const char **token, size_t *len) {
  static const char scheme[] = "Bearer ";
  if (strncasecmp(value, scheme, sizeof(scheme) - 1) != 0)
    return false;
  const char *p = value + sizeof(scheme) - 1;
  while (*p == ' ')
    p++;
  size_t n = 0;
  while (p[n] > 0x20 && p[n] < 0x7F)
    n++;
  const char *rest = p + n;
  while (*rest == ' ')
    rest++;
  if (n == 0 || n > TP_TOKEN_MAX || *rest != '\0')
    return false;
  *token = p;
  *len = n;
  return true;
}

/* The client certificate's identity: TP_E_OK, TP_E_NOTFOUND (none) or TP_E_TLS
 * (presented but refused, why set). Cached per connection. */
static tp_err cert_identity(tp_http_server *srv, struct MHD_Connection *conn, conn_ctx *ctx,
                            char *id, char *why, size_t why_len) {
  if (srv->opt.tls == NULL)
    return TP_E_NOTFOUND;
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (info == NULL || info->tls_session == NULL)
    return TP_E_NOTFOUND;
  uint64_t gen = tp_tls_server_trust_generation(srv->opt.tls);
  if (ctx == NULL || !ctx->cert_checked || ctx->cert_gen != gen) {
    char identity[ID_MAX] = "", reason[160] = "";
    tp_err rc = tp_tls_server_peer_identity(srv->opt.tls, (gnutls_session_t)info->tls_session,
                                            identity, sizeof(identity), reason, sizeof(reason));
    if (ctx == NULL) {
      snprintf(id, ID_MAX, "%s", identity);
      snprintf(why, why_len, "%s", reason);
      return rc;
    }
    ctx->cert_checked = true;
    ctx->cert_gen = gen;
    ctx->cert_rc = rc;
    snprintf(ctx->cert_identity, sizeof(ctx->cert_identity), "%s", identity);
    snprintf(ctx->cert_why, sizeof(ctx->cert_why), "%s", reason);
  }
  snprintf(id, ID_MAX, "%s", ctx->cert_identity);
  snprintf(why, why_len, "%s", ctx->cert_why);
  return ctx->cert_rc;
}

typedef struct auth_verdict {
  unsigned status; /* 0 = in */
  char reason[240];
  bool authenticated;
  char identity[ID_MAX];
} auth_verdict;

static void refuse(auth_verdict *v, unsigned status, const char *reason) {
  v->status = status;
  snprintf(v->reason, sizeof(v->reason), "%s", reason);
}

/* Who is asking: a client certificate and/or a bearer token, which must agree. */
static void authenticate(tp_http_server *srv, struct MHD_Connection *conn, auth_verdict *v) {
  char cert_id[ID_MAX] = "", token_id[ID_MAX] = "", why[160] = "";
  memset(v, 0, sizeof(*v));
  tp_auth *auth = srv->opt.auth;
  if (auth == NULL)
    return; /* no policy: anyone, as in unit tests */
  tp_err crc = cert_identity(srv, conn, conn_of(conn), cert_id, why, sizeof(why));
  if (crc == TP_E_TLS) {
    refuse(v, MHD_HTTP_UNAUTHORIZED, why);
    return;
  }
  bool have_token = false;
  const char *header =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (header != NULL && tp_auth_uses_tokens(auth)) {
    const char *token;
    size_t len;
    if (!parse_bearer(header, &token, &len)) {
      refuse(v, MHD_HTTP_UNAUTHORIZED, "Authorization must be \"Bearer <token>\"");
      return;
    }
    if (!tp_auth_token_owner(auth, token, len, token_id, sizeof(token_id))) {
      refuse(v, MHD_HTTP_UNAUTHORIZED, "unknown or revoked token");
      return;
    }
    have_token = true;
  }
  if (crc == TP_E_OK && have_token && strcmp(cert_id, token_id) != 0) {
    snprintf(v->reason, sizeof(v->reason),
             "client certificate (\"%.64s\") and token (\"%.64s\") name different agents",
             cert_id, token_id);
    v->status = MHD_HTTP_FORBIDDEN;
    return;
  }
  if (crc == TP_E_OK || have_token) {
    v->authenticated = true;
    snprintf(v->identity, sizeof(v->identity), "%s", crc == TP_E_OK ? cert_id : token_id);
    return;
  }
  if (tp_auth_allows_anyone(auth))
    return;
  bool certs = srv->opt.tls != NULL && tp_tls_server_client_ca_pem(srv->opt.tls) != NULL;
  snprintf(v->reason, sizeof(v->reason), "authentication required: %s%s%s",
           tp_auth_uses_tokens(auth) ? "send Authorization: Bearer <token>" : "",
           tp_auth_uses_tokens(auth) && certs ? " or " : "",
           certs ? "present a client certificate" : "");
  v->status = MHD_HTTP_UNAUTHORIZED;
}

/* ---- request bodies --------------------------------------------------------------- */

/* Grows req's buffer to hold `need` bytes, charged against max_buffered_bytes. */
static tp_err body_reserve(tp_http_server *srv, request *req, size_t need) {
  if (need <= req->alloc)
    return TP_E_OK;
  size_t want = req->alloc ? req->alloc * 2 : FIRST_CHUNK;
  if (want < need)
    want = need;
  if (want > srv->opt.max_body_bytes)
    want = srv->opt.max_body_bytes;
  size_t delta = want - req->alloc;
  if (srv->buffered + delta > srv->opt.max_buffered_bytes)
    return TP_E_FULL;
  uint8_t *p = realloc(req->body, want);
  if (p == NULL)
    return TP_E_NOMEM;
  req->body = p;
  req->alloc = want;
  srv->buffered += delta;
  return TP_E_OK;
}

static void body_release(tp_http_server *srv, request *req) {
  free(req->body);
  srv->buffered -= req->alloc;
  req->body = NULL;
  req->alloc = req->len = 0;
}

static void log_busy(tp_http_server *srv, const char *what) {
  unsigned long suppressed = 0;
  if (tp_log_limit_take(&srv->busy_log, tp_monotonic_ms(), &suppressed))
    tp_log_warn(srv->log, "request refused for lack of memory",
                "limit=%s buffered_bytes=%" PRIu64 " max_buffered_bytes=%" PRIu64
                " suppressed_before=%lu",
                what, srv->buffered, srv->opt.max_buffered_bytes, suppressed);
}

static const char BUSY_BUFFERS[] =
    "collector busy: request bodies in memory are at limits.max_buffered_bytes, retry later";
static const char BUSY_NOMEM[] = "collector out of memory, retry later";

/* ---- request phases ---------------------------------------------------------- */

static enum MHD_Result on_other_path(tp_http_server *srv, struct MHD_Connection *conn,
                                     const char *url, const char *method) {
  char path[128], verb[16];
  if (strcmp(url, PATH_HEALTH) == 0) {
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
      return reject_with(srv, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed",
                         MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    tp_log_debug(srv->log, "request", "method=GET path=%s status=200", PATH_HEALTH);
    return respond(conn, MHD_HTTP_OK, TEXT_TYPE, "ok\n", 3, NULL, NULL);
  }
  loggable(url, path, sizeof(path));
  loggable(method, verb, sizeof(verb));
  tp_log_debug(srv->log, "request", "method=%s path=%s status=404", verb, path);
  return respond(conn, MHD_HTTP_NOT_FOUND, TEXT_TYPE, "not found\n", 10, NULL, NULL);
}

/* Per agent (or, unauthenticated, per address): 429 with Retry-After. */
static bool over_rate(tp_http_server *srv, struct MHD_Connection *conn, const auth_verdict *v,
                      unsigned *retry_after) {
  char key[ID_MAX + 64], host[INET6_ADDRSTRLEN + 1], port[8];
  if (srv->rate == NULL)
    return false;
  if (v->authenticated) {
    snprintf(key, sizeof(key), "agent:%s", v->identity);
  } else {
    peer_host(conn, host, sizeof(host), port, sizeof(port));
    snprintf(key, sizeof(key), "addr:%s", host);
  }
  return !tp_rate_limit_allow(srv->rate, key, tp_monotonic_ms(), retry_after);
}

/* First callback: headers are in, no body read yet. Everything that can be
 * decided from the headers is answered here, before a byte of body is buffered. */
static enum MHD_Result on_headers(tp_http_server *srv, struct MHD_Connection *conn, const char *url,
                                  const char *method, void **req_cls) {
  auth_verdict v;
  unsigned long long declared = 0;
  unsigned retry_after = 1;
  char value[16];
  set_phase(srv, conn_of(conn), CONN_IN_REQUEST);
  if (strcmp(url, PATH_RESULTS) != 0)
    return on_other_path(srv, conn, url, method);
  if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
    return reject_with(srv, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed (use POST)",
                       MHD_HTTP_HEADER_ALLOW, "POST");
  authenticate(srv, conn, &v);
  if (v.status == MHD_HTTP_UNAUTHORIZED)
    return reject_with(srv, conn, v.status, v.reason, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                       "Bearer realm=\"tlsprobe\"");
  if (v.status != 0)
    return reject(srv, conn, v.status, v.reason);
  if (over_rate(srv, conn, &v, &retry_after)) {
    snprintf(value, sizeof(value), "%u", retry_after);
    return reject_with(srv, conn, MHD_HTTP_TOO_MANY_REQUESTS,
                       "too many requests from this agent (limits.agent_requests_per_second)",
                       MHD_HTTP_HEADER_RETRY_AFTER, value);
  }
  const char *type =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (!is_protobuf(type))
    return reject(srv, conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                  "Content-Type must be application/x-protobuf");
  bool known = declared_length(conn, &declared);
  if (known && declared > srv->opt.max_body_bytes)
    return reject(srv, conn, MHD_HTTP_CONTENT_TOO_LARGE, "body exceeds max_body_bytes");
  request *req = calloc(1, sizeof(*req));
  if (req == NULL)
    return busy(srv, conn, BUSY_NOMEM);
  req->authenticated = v.authenticated;
  snprintf(req->identity, sizeof(req->identity), "%s", v.identity);
  /* A declared length is reserved whole now, so a body that cannot be held is
   * refused before it is sent. */
  tp_err rc = known ? body_reserve(srv, req, (size_t)declared) : TP_E_OK;
  if (rc != TP_E_OK) {
    free(req);
    log_busy(srv, rc == TP_E_FULL ? "max_buffered_bytes" : "malloc");
    return busy(srv, conn, rc == TP_E_FULL ? BUSY_BUFFERS : BUSY_NOMEM);
  }
  *req_cls = req;
  return MHD_YES;
}

static void discard(tp_http_server *srv, request *req, unsigned status, const char *reason) {
  req->fail_status = status;
  req->fail_reason = reason;
  body_release(srv, req);
}

static enum MHD_Result on_body_chunk(tp_http_server *srv, request *req, const char *data,
                                     size_t *size) {
  if (req->fail_status == 0) {
    /* Chunked bodies have no Content-Length: the caps are only hit here. */
    if (*size > srv->opt.max_body_bytes - req->len) {
      discard(srv, req, MHD_HTTP_CONTENT_TOO_LARGE, "body exceeds max_body_bytes");
    } else {
      tp_err rc = body_reserve(srv, req, req->len + *size);
      if (rc == TP_E_OK) {
        memcpy(req->body + req->len, data, *size);
        req->len += *size;
      } else {
        log_busy(srv, rc == TP_E_FULL ? "max_buffered_bytes" : "malloc");
        discard(srv, req, MHD_HTTP_SERVICE_UNAVAILABLE,
                rc == TP_E_FULL ? BUSY_BUFFERS : BUSY_NOMEM);
      }
    }
  }
  if (req->fail_status != 0) {
    req->discarded += *size;
    if (req->discarded > MAX_DISCARD_BYTES)
      return MHD_NO; /* hang up: not worth reading further to answer */
  }
  *size = 0;
  return MHD_YES;
}

/* The queue's answer (a worker's refusal, or the writer's after the commit): kept for
 * the MHD thread, which answers when the connection is resumed. */
static void on_answered(void *ctx, tp_ingest_reply *reply) {
  request *req = ctx;
  pthread_mutex_lock(&req->srv->answer_mu);
  req->reply = *reply; /* the ack moves over */
  req->state = REQ_ANSWERED;
  pthread_mutex_unlock(&req->srv->answer_mu);
  MHD_resume_connection(req->conn);
}

/* The answer to a request the queue has answered (the connection was resumed). */
static enum MHD_Result send_answer(tp_http_server *srv, struct MHD_Connection *conn,
                                   request *req) {
  char peer[80];
  tp_ingest_reply *reply = &req->reply;
  /* The body is no longer needed: give its bytes back before answering. */
  body_release(srv, req);
  enum MHD_Result result;
  if (reply->http_status == MHD_HTTP_OK) {
    peer_name(conn, peer, sizeof(peer));
    tp_log_debug(srv->log, "request",
                 "method=POST path=%s status=200 peer=%s agent=%s results=%zu stored=%" PRIu32
                 " duplicate=%s",
                 PATH_RESULTS, peer, reply->agent_id, reply->results, reply->stored,
                 reply->duplicate ? "true" : "false");
    result = respond(conn, MHD_HTTP_OK, PROTOBUF_TYPE, reply->ack, reply->ack_len, NULL, NULL);
  } else if (reply->http_status == MHD_HTTP_SERVICE_UNAVAILABLE) {
    /* A store failure says why in the log; the agent only hears "retry". */
    if (strstr(reply->reason, "out of memory") != NULL || strstr(reply->reason, "busy") != NULL) {
      log_busy(srv, "malloc");
      result = busy(srv, conn, reply->reason);
    } else {
      tp_log_error(srv->log, "store failed", "error=\"%s\"", reply->reason);
      result = busy(srv, conn, "storage unavailable, retry later");
    }
  } else {
    result = reject(srv, conn, (unsigned)reply->http_status, reply->reason);
  }
  tp_ingest_reply_clear(reply);
  return result;
}

static const char BUSY_QUEUE[] =
    "collector busy: too many batches waiting to be stored, retry later";

static enum MHD_Result on_body_done(tp_http_server *srv, struct MHD_Connection *conn,
                                    request *req) {
  static const uint8_t empty[1];
  pthread_mutex_lock(&srv->answer_mu);
  req_state state = req->state;
  pthread_mutex_unlock(&srv->answer_mu);
  if (state == REQ_ANSWERED)
    return send_answer(srv, conn, req);
  if (state == REQ_QUEUED)
    return MHD_YES; /* not resumed yet: nothing to say */
  if (req->fail_status == MHD_HTTP_SERVICE_UNAVAILABLE)
    return busy(srv, conn, req->fail_reason);
  if (req->fail_status != 0)
    return reject(srv, conn, req->fail_status, req->fail_reason);
  if (tp_ingest_queue_reserve(srv->queue) != TP_E_OK) {
    log_busy(srv, "ingest queue");
    return busy(srv, conn, BUSY_QUEUE);
  }
  tp_time_window window = srv->window;
  tp_ingest_params params = {
      .received_unix_ns = now_unix_ns(),
      .window = srv->opt.max_result_age_ms ? &window : NULL,
      .identity = req->authenticated ? req->identity : NULL,
      .metrics = srv->opt.metrics,
  };
  window.now_unix_ns = params.received_unix_ns;
  req->srv = srv;
  req->conn = conn;
  req->state = REQ_QUEUED; /* before the queue can see it */
  /* Suspended before it is handed over: the answer may come (and resume it) at once. */
  MHD_suspend_connection(conn);
  tp_ingest_queue_submit(srv->queue, req->body ? req->body : empty, req->len, &params,
                         on_answered, req);
  return MHD_YES;
}

/* Every answer to POST /v1/results, by status, whichever step gave it (the metrics'
 * view of what agents hear). Nothing is queued yet while a body is being read. */
static void count_answer(tp_http_server *srv, struct MHD_Connection *conn, const char *url) {
  if (srv->opt.metrics == NULL || strcmp(url, PATH_RESULTS) != 0)
    return;
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
  if (info != NULL && info->http_status != 0)
    tp_metrics_on_answer(srv->opt.metrics, info->http_status);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
  (void)version;
  tp_http_server *srv = cls;
  request *req = *req_cls;
  enum MHD_Result rc;
  if (req == NULL) {
    rc = on_headers(srv, conn, url, method, req_cls);
    if (*req_cls == NULL)
      count_answer(srv, conn, url); /* answered from the head */
    return rc;
  }
  if (*upload_data_size > 0)
    return on_body_chunk(srv, req, upload_data, upload_data_size);
  rc = on_body_done(srv, conn, req);
  count_answer(srv, conn, url);
  return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)toe;
  tp_http_server *srv = cls;
  request *req = *req_cls;
  /* The next request's head has header_timeout from now. */
  set_phase(srv, conn_of(conn), CONN_AWAIT_HEAD);
  if (req == NULL)
    return;
  /* Never while queued: a suspended connection is not completed (the queue answers and
   * resumes every request before the daemon stops). An answer not sent is dropped. */
  if (req->state == REQ_ANSWERED)
    tp_ingest_reply_clear(&req->reply);
  body_release(srv, req);
  free(req);
  *req_cls = NULL;
}

/* libmicrohttpd's own messages ("Server reached connection limit...", TLS handshake
 * errors): 10 lines per 10 s at most, or a connection flood floods the log. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                             va_list ap) {
  tp_http_server *srv = cls;
  char msg[512];
  unsigned long suppressed = 0;
  if (!tp_log_limit_take(&srv->mhd_log, tp_monotonic_ms(), &suppressed))
    return;
  vsnprintf(msg, sizeof(msg), fmt, ap);
  msg[strcspn(msg, "\r\n\"")] = '\0';
  char note[48] = "";
  if (suppressed > 0)
    snprintf(note, sizeof(note), " suppressed_before=%lu", suppressed);
  tp_log_warn(srv->log, "libmicrohttpd", "detail=\"%s\"%s", msg, note);
}

/* ---- lifecycle --------------------------------------------------------------- */

static void apply_defaults(tp_http_options *o) {
  if (o->connection_limit == 0)
    o->connection_limit = DEFAULT_CONNECTION_LIMIT;
  if (o->connection_timeout_s == 0)
    o->connection_timeout_s = DEFAULT_CONNECTION_TIMEOUT_S;
  if (o->header_timeout_ms == 0)
    o->header_timeout_ms = DEFAULT_HEADER_TIMEOUT_MS;
  if (o->request_timeout_ms == 0)
    o->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
  if (o->max_buffered_bytes == 0)
    o->max_buffered_bytes = DEFAULT_MAX_BUFFERED;
  if (o->max_buffered_bytes < o->max_body_bytes)
    o->max_buffered_bytes = o->max_body_bytes;
  if (o->agent_burst == 0)
    o->agent_burst = 2 * o->agent_rate;
}

tp_err tp_http_server_new(const tp_http_options *options, const tp_log *log,
                          tp_http_server **out, char *err, size_t errlen) {
  *out = NULL;
  tp_http_server *srv = tp_xcalloc(1, sizeof(*srv));
  srv->log = log;
  srv->opt = *options;
  srv->listen = *options->listen;
  srv->opt.listen = &srv->listen;
  srv->listen_fd = -1;
  apply_defaults(&srv->opt);
  srv->window.max_age_ns = srv->opt.max_result_age_ms * 1000000;
  srv->window.max_skew_ns = srv->opt.max_clock_skew_ms * 1000000;
  srv->reject_log = (tp_log_limit){.lines = 20, .window_ms = 10000};
  srv->busy_log = (tp_log_limit){.lines = 5, .window_ms = 10000};
  srv->mhd_log = (tp_log_limit){.lines = 10, .window_ms = 10000};
  pthread_condattr_t attr;
  if (pthread_mutex_init(&srv->guard_mu, NULL) != 0) {
    free(srv);
    snprintf(err, errlen, "cannot create a mutex");
    return TP_E_NOMEM;
  }
  if (pthread_mutex_init(&srv->answer_mu, NULL) != 0) {
    pthread_mutex_destroy(&srv->guard_mu);
    free(srv);
    snprintf(err, errlen, "cannot create a mutex");
    return TP_E_NOMEM;
  }
  if (pthread_condattr_init(&attr) != 0 || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
      pthread_cond_init(&srv->guard_cond, &attr) != 0) {
    pthread_mutex_destroy(&srv->guard_mu);
    pthread_mutex_destroy(&srv->answer_mu);
    free(srv);
    snprintf(err, errlen, "cannot create a condition variable");
    return TP_E_NOMEM;
  }
  pthread_condattr_destroy(&attr);
  srv->rate = tp_rate_limit_new(srv->opt.agent_rate, srv->opt.agent_burst);
  tp_err rc = tp_listen_addr_bind(&srv->listen, LISTEN_BACKLOG, &srv->listen_fd, &srv->port, err,
                                  errlen);
  if (rc != TP_E_OK) {
    tp_http_server_stop(srv);
    return rc;
  }
  *out = srv;
  return TP_E_OK;
}

/* The options array for MHD_start_daemon; the logger first, so errors in the
 * options after it are routed through it. */
static size_t build_options(tp_http_server *srv, struct MHD_OptionItem *ops) {
  size_t n = 0;
#define OPT(o, v, p) ops[n++] = (struct MHD_OptionItem){(o), (intptr_t)(v), (void *)(p)}
  OPT(MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv);
  OPT(MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, NULL);
  OPT(MHD_OPTION_CONNECTION_LIMIT, srv->opt.connection_limit, NULL);
  if (srv->opt.per_ip_limit > 0)
    OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, srv->opt.per_ip_limit, NULL);
  OPT(MHD_OPTION_CONNECTION_TIMEOUT, srv->opt.connection_timeout_s, NULL);
  OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv);
  OPT(MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv);
  if (srv->opt.tls != NULL) {
    OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, TP_TLS_SERVER_PRIORITIES);
    OPT(MHD_OPTION_HTTPS_CERT_CALLBACK, 0, tp_tls_server_retrieve);
    if (tp_tls_server_client_ca_pem(srv->opt.tls) != NULL)
      OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0, tp_tls_server_client_ca_pem(srv->opt.tls));
  }
  OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
  return n;
}

tp_err tp_http_server_run(tp_http_server *srv, tp_store *store, char *err, size_t errlen) {
  struct MHD_OptionItem ops[16];
  srv->store = store;
  if (srv->opt.tls != NULL && (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
                               MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES)) {
    snprintf(err, errlen, "this libmicrohttpd has no HTTPS support (or no certificate callback)");
    return TP_E_HTTP;
  }
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  if (srv->listen.ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  if (srv->opt.tls != NULL)
    flags |= MHD_USE_TLS;
  (void)build_options(srv, ops);
  if (pthread_create(&srv->watchdog, NULL, watchdog_main, srv) != 0) {
    snprintf(err, errlen, "cannot start the connection watchdog thread");
    return TP_E_HTTP;
  }
  srv->watchdog_started = true;
  tp_ingest_queue_options qopt = {.workers = srv->opt.ingest_workers,
                                  .max_pending = srv->opt.ingest_max_pending,
                                  .pending_gauge = srv->opt.ingest_pending};
  tp_err rc = tp_ingest_queue_new(store, &qopt, &srv->queue, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, ops,
                                 MHD_OPTION_END);
  if (srv->daemon == NULL) {
    snprintf(err, errlen, "cannot start HTTP server (libmicrohttpd refused the options)");
    return TP_E_HTTP; /* the socket stays ours: MHD only takes it when it starts */
  }
  srv->listen_fd = -1; /* MHD's now */
  return TP_E_OK;
}

tp_err tp_http_server_start(const tp_http_options *options, tp_store *store, const tp_log *log,
                            tp_http_server **out, char *err, size_t errlen) {
  tp_err rc = tp_http_server_new(options, log, out, err, errlen);
  if (rc == TP_E_OK && (rc = tp_http_server_run(*out, store, err, errlen)) != TP_E_OK) {
    tp_http_server_stop(*out);
    *out = NULL;
  }
  return rc;
}

uint16_t tp_http_server_port(const tp_http_server *server) { return server->port; }

void tp_http_server_stop(tp_http_server *server) {
  if (server == NULL)
    return;
  /* Every request the queue took is stored and answered first (each suspended
   * connection resumed); requests after that are answered 503. Then MHD_stop_daemon
   * joins the MHD thread and closes the listening socket; every connection's CLOSED
   * notification has run when it returns, and nothing can reach the queue any more. */
  tp_ingest_queue_stop(server->queue);
  if (server->daemon != NULL)
    MHD_stop_daemon(server->daemon);
  if (server->queue != NULL) {
    tp_ingest_queue_stats st;
    tp_ingest_queue_stats_get(server->queue, &st);
    tp_log_info(server->log, "ingest stopped",
                "transactions=%" PRIu64 " batches=%" PRIu64 " max_batches_per_transaction=%" PRIu64
                " refused_busy=%" PRIu64,
                st.groups, st.batches, st.max_group, st.full);
  }
  tp_ingest_queue_free(server->queue);
  if (server->listen_fd >= 0)
    close(server->listen_fd);
  if (server->watchdog_started) {
    pthread_mutex_lock(&server->guard_mu);
    server->stopping = true;
    pthread_cond_signal(&server->guard_cond);
    pthread_mutex_unlock(&server->guard_mu);
    pthread_join(server->watchdog, NULL);
  }
  pthread_cond_destroy(&server->guard_cond);
  pthread_mutex_destroy(&server->guard_mu);
  pthread_mutex_destroy(&server->answer_mu);
  tp_rate_limit_free(server->rate);
  free(server);
}
