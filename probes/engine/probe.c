/* probe.c - the probe state machine on libuv and the engine that bounds it.
 *
 *   RESOLVE -> CONNECT -> HANDSHAKE -> (verify) -> [HTTP] -> DONE
 *   resumption / early_data modes add a second round on the same address:
 *   ... -> [TICKET] -> RECONNECT -> CONNECT -> HANDSHAKE (resuming) -> [HTTP] -> DONE
 *   a handshake_failure alert adds up to two diagnostic rounds (start_diagnosis)
 *
 * Why uv_poll_t on our own non-blocking socket rather than uv_tcp_t with
 * GnuTLS push/pull callbacks: GnuTLS then reads and writes the kernel socket
 * directly (no copy through libuv read buffers, no pull-timeout emulation),
 * gnutls_record_get_direction() tells exactly which readiness to wait for,
 * and the connect() errno reaches the classifier unchanged. The cost is a
 * few lines of socket code that libuv would otherwise hide.
 *
 * Each callback stamps uv_hrtime() on entry, before any crypto, and measures
 * how long its event waited behind other callbacks of the same loop
 * iteration (loop lag, see lag_at()). Durations have that lag subtracted. */
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "certinfo.h"
#include "chain.h"
#include "classify.h"
#include "hello.h"
#include "http.h"
#include "ocsp.h"
#include "profile_internal.h"
#include "tp_buf.h"
#include "tp_mem.h"

#define DIAG_NONE (-1)

/* How long a TLS 1.3 client waits for the server's NewSessionTicket, which
 * arrives after the handshake (RFC 8446 §4.6.1), before resuming anyway. */
#define TICKET_WAIT_MS 1000

typedef enum {
  ST_QUEUED,
  ST_RESOLVE,
  ST_CONNECT,
  ST_HANDSHAKE,
  ST_CERT_CHECK,
  ST_HTTP,
  ST_TICKET,
  ST_RECONNECT,
  ST_DONE
} probe_state;

typedef struct tp_probe {
  tp_probe_engine *engine;
  tp_target target; /* borrowed strings */
  const tp_profile *profile;
  tp_probe_timeouts timeouts;
  tp_probe_done_cb cb;
  void *cb_data;
  struct tp_probe *next; /* pending queue link */

  probe_state state;
  int round; /* 1 = first connection, 2 = the resuming one */
  uv_getaddrinfo_t gai;
  uv_timer_t timer;
  uv_poll_t poll;
  bool gai_active, poll_open;
  int open_handles; /* closes still to come before the probe may be freed */
  int fd;
  gnutls_session_t session;
  bool handshake_done;
  bool server_hello_seen; /* the peer spoke TLS at least once */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  gnutls_datum_t session_data; /* round 1 session, for resumption */

  /* Diagnosis of a handshake_failure alert: which widened handshake runs
   * (DIAG_NONE when none), and the original failure it may refine. */
  int diag;
  tp_outcome primary_outcome;
  char primary_detail[384];

  /* HTTP exchange */
  char *request;
  size_t request_len, request_sent;
  tp_buf response_head;
  uint64_t t_request_sent;
  bool got_first_byte;

  uint64_t t_start, t_phase; /* uv_hrtime() */
  uint64_t phase_lag;        /* loop lag seen in the current phase */
  uint64_t total_lag;
  tp_result *result;
} tp_probe;

struct tp_probe_engine {
  uv_loop_t *loop;
  const tp_log *log;
  unsigned max_in_flight, max_pending;
  unsigned in_flight, pending;
  tp_probe *queue_head, *queue_tail;
  /* Loop-lag reference: stamped just before the loop blocks in poll. */
  uv_prepare_t prepare;
  uint64_t prepare_ns, idle_at_prepare;
  void (*on_closed)(void *);
  void *closed_data;
};

static void start_probe(tp_probe *p);
static void step_handshake(tp_probe *p);
static void step_http(tp_probe *p);
static void step_ticket(tp_probe *p, bool give_up);
static void step_cert_check(tp_probe *p, bool give_up);
static void connect_round(tp_probe *p, uint64_t now);
static const char *expected_name(const tp_probe *p);

/* ---- loop lag --------------------------------------------------------- */

static void on_prepare(uv_prepare_t *handle) {
  tp_probe_engine *e = handle->data;
  e->prepare_ns = uv_hrtime();
  e->idle_at_prepare = uv_metrics_idle_time(e->loop);
}

/* How long the event being handled at `now` waited since the kernel reported
 * it: the loop's poll returned at prepare time + time blocked in poll (libuv's
 * idle-time metric, updated before the first I/O callback runs); everything
 * after that until `now` was spent in callbacks that ran before this one.
 * Events that became ready while the previous iteration was busy are not
 * seen here (their wait is invisible without kernel timestamps). */
static uint64_t lag_at(const tp_probe_engine *e, uint64_t now) {
  uint64_t idle = uv_metrics_idle_time(e->loop);
  uint64_t poll_returned = e->prepare_ns + (idle - e->idle_at_prepare);
  return now > poll_returned ? now - poll_returned : 0;
}

/* Stamps an event: accumulates its lag and returns the raw time. */
static uint64_t stamp_event(tp_probe *p) {
  uint64_t now = uv_hrtime();
  uint64_t lag = lag_at(p->engine, now);
  p->phase_lag += lag;
  p->total_lag += lag;
  return now;
}

static uint64_t elapsed_without_lag(uint64_t from, uint64_t to, uint64_t lag) {
  uint64_t raw = to > from ? to - from : 0;
  return raw > lag ? raw - lag : 0;
}

static void begin_phase(tp_probe *p, probe_state state, uint64_t now) {
  p->state = state;
  p->t_phase = now;
  p->phase_lag = 0;
}

/* ---- completion ------------------------------------------------------- */

static void release_probe(tp_probe *p) {
  tp_probe_engine *e = p->engine;
  if (p->session != NULL)
    gnutls_deinit(p->session);
  if (p->fd >= 0)
    close(p->fd);
  gnutls_free(p->session_data.data);
  free(p->request);
  tp_buf_free(&p->response_head);
  tp_result *result = p->result;
  tp_probe_done_cb cb = p->cb;
  void *cb_data = p->cb_data;
  free(p);
  e->in_flight--;
  /* Start the next queued probe before handing the result out, so a callback
   * that submits more work sees a consistent engine. */
  if (e->queue_head != NULL && e->in_flight < e->max_in_flight) {
    tp_probe *next = e->queue_head;
    e->queue_head = next->next;
    if (e->queue_head == NULL)
      e->queue_tail = NULL;
    e->pending--;
    start_probe(next);
  }
  cb(result, cb_data);
}

static void maybe_release(tp_probe *p) {
  if (p->open_handles == 0 && !p->gai_active)
    release_probe(p);
}

static void on_handle_closed(uv_handle_t *handle) {
  tp_probe *p = handle->data;
  p->open_handles--;
  maybe_release(p);
}

static void close_poll(tp_probe *p, uv_close_cb cb) {
  if (!p->poll_open)
    return;
  p->poll_open = false;
  uv_close((uv_handle_t *)&p->poll, cb);
}

static void finish(tp_probe *p, tp_outcome outcome, const char *detail) {
  if (p->state == ST_DONE)
    return;
  uint64_t now = uv_hrtime();
  p->state = ST_DONE;
  tp_result *r = p->result;
  bool diagnosed = outcome == TP_OUTCOME_NO_SHARED_GROUP || outcome == TP_OUTCOME_NO_SHARED_CIPHER;
  if (p->diag != DIAG_NONE && !diagnosed) {
    /* A diagnostic handshake that failed or timed out proves nothing: the
     * original failure stands. */
    outcome = p->primary_outcome;
    detail = p->primary_detail;
  }
  r->outcome = outcome;
  free(r->detail);
  r->detail = detail != NULL && detail[0] != '\0' ? tp_xstrdup(detail) : NULL;
  if (p->diag == DIAG_NONE) { /* else fixed when the real probe ended */
    r->total_ns = elapsed_without_lag(p->t_start, now, p->total_lag);
    r->loop_lag_ns = p->total_lag;
  }

  if (p->handshake_done && p->session != NULL) /* polite close_notify; best effort */
    (void)gnutls_bye(p->session, GNUTLS_SHUT_WR);
  if (p->gai_active)
    (void)uv_cancel((uv_req_t *)&p->gai); /* on_resolved still runs, with ECANCELED */
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, on_handle_closed);
  close_poll(p, on_handle_closed);
}

/* ---- timeouts --------------------------------------------------------- */

static void on_timeout(uv_timer_t *timer) {
  tp_probe *p = timer->data;
  char detail[128];
  switch (p->state) {
  case ST_RESOLVE:
    snprintf(detail, sizeof(detail), "name resolution did not finish within %llu ms",
             (unsigned long long)p->timeouts.connect_ms);
    finish(p, TP_OUTCOME_DNS_FAILURE, detail);
    break;
  case ST_CONNECT:
    snprintf(detail, sizeof(detail), "TCP connect did not finish within %llu ms",
             (unsigned long long)p->timeouts.connect_ms);
    finish(p, TP_OUTCOME_CONNECT_TIMEOUT, detail);
    break;
  case ST_HANDSHAKE:
    snprintf(detail, sizeof(detail), "TLS handshake did not finish within %llu ms",
             (unsigned long long)p->timeouts.handshake_ms);
    finish(p, TP_OUTCOME_HANDSHAKE_TIMEOUT, detail);
    break;
  case ST_HTTP:
    snprintf(detail, sizeof(detail), "no complete HTTP response head within %llu ms",
             (unsigned long long)p->timeouts.handshake_ms);
    finish(p, TP_OUTCOME_HTTP_STATUS, detail);
    break;
  case ST_TICKET:
    /* No ticket in time: resume with what we have (the result will say). */
    step_ticket(p, true);
    break;
  case ST_CERT_CHECK:
    step_cert_check(p, true); /* no verdict on our certificate: it was accepted */
    break;
  case ST_QUEUED:
  case ST_RECONNECT:
  case ST_DONE:
    break;
  }
}

static void arm_timer(tp_probe *p, uint64_t ms) {
  int rc = uv_timer_start(&p->timer, on_timeout, ms, 0);
  if (rc < 0)
    finish(p, TP_OUTCOME_OTHER, uv_strerror(rc));
}

/* ---- handshake hook: evidence from our own ClientHello ------------------ */

static char **group_names(const uint16_t *ids, size_t n) {
  char **names = tp_xcalloc(n ? n : 1, sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    char buf[16];
    names[i] = tp_xstrdup(tp_hello_group_name(ids[i], buf, sizeof(buf)));
  }
  return names;
}

static void record_client_hello(tp_probe *p, const gnutls_datum_t *msg) {
  tp_result *r = p->result;
  const uint8_t *body = msg->data;
  size_t len = msg->size;
  /* Accept the message with or without its 4-byte handshake header. */
  if (len >= 4 && body[0] == GNUTLS_HANDSHAKE_CLIENT_HELLO &&
      (((size_t)body[1] << 16) | ((size_t)body[2] << 8) | body[3]) == len - 4) {
    body += 4;
    len -= 4;
  }
  tp_hello_offer offer;
  if (tp_hello_parse_client_hello(body, len, &offer) != 0)
    return;
  r->groups_offered = group_names(offer.groups, offer.n_groups);
  r->n_groups_offered = offer.n_groups;
  r->key_shares_offered = group_names(offer.key_shares, offer.n_key_shares);
  r->n_key_shares_offered = offer.n_key_shares;
}

static int on_handshake_message(gnutls_session_t session, unsigned int htype, unsigned when,
                                unsigned int incoming, const gnutls_datum_t *msg) {
  tp_probe *p = gnutls_session_get_ptr(session);
  (void)when;
  if (htype == GNUTLS_HANDSHAKE_CLIENT_HELLO && !incoming && p->result->groups_offered == NULL)
    record_client_hello(p, msg); /* the first ClientHello: what the profile offers */
  else if (htype == GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST && incoming)
    p->result->hello_retry_request = true; /* RFC 8446 §4.1.4 */
  if (incoming && (htype == GNUTLS_HANDSHAKE_SERVER_HELLO ||
                   htype == GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST))
    p->server_hello_seen = true;
  return 0;
}

/* ---- verification and facts ------------------------------------------- */

static char *dup_or_null(const char *s) {
  return s != NULL ? tp_xstrdup(s) : NULL;
}

static void collect_session_facts(tp_probe *p) {
  tp_result *r = p->result;
  gnutls_session_t s = p->session;
  r->tls_version = dup_or_null(gnutls_protocol_get_name(gnutls_protocol_get_version(s)));
  r->cipher = dup_or_null(gnutls_ciphersuite_get(s));
  gnutls_group_t group = gnutls_group_get(s);
  if (group != GNUTLS_GROUP_INVALID)
    r->group = dup_or_null(gnutls_group_get_name(group));
  int sign = gnutls_sign_algorithm_get(s);
  if (sign > 0)
    r->server_signature_algorithm = dup_or_null(gnutls_sign_get_name((gnutls_sign_algorithm_t)sign));
  gnutls_datum_t alpn;
  if (gnutls_alpn_get_selected_protocol(s, &alpn) == 0)
    r->alpn = tp_xstrndup((const char *)alpn.data, alpn.size);
  r->resumed = gnutls_session_is_resumed(s) != 0;
}

/* Verifies the peer chain; returns the outcome and fills detail. Facts are
 * collected first so they survive a failed verification. */
static tp_outcome verify_peer(tp_probe *p, char *detail, size_t len) {
  int64_t now_unix = p->result->started_unix_ns / 1000000000;
  collect_session_facts(p);
  tp_certinfo_collect(p->session, now_unix, p->result);
  tp_ocsp_collect(p->session, now_unix, p->result);
  unsigned status = 0;
  int rc = gnutls_certificate_verify_peers3(p->session, expected_name(p), &status);
  if (rc < 0) {
    snprintf(detail, len, "certificate verification could not run: %s", gnutls_strerror(rc));
    return TP_OUTCOME_OTHER;
  }
  p->result->chain_complete = (status & GNUTLS_CERT_SIGNER_NOT_FOUND) == 0;
  tp_outcome outcome = tp_classify_verify_status(status, detail, len);
  if (outcome == TP_OUTCOME_UNKNOWN_CA) {
    size_t n_pool;
    const gnutls_x509_crt_t *pool = tp__profile_intermediates(p->profile, &n_pool);
    outcome = tp_chain_diagnose_signer_not_found(p->session, tp__profile_credentials(p->profile),
                                                 pool, n_pool, expected_name(p), detail, len);
  }
  return outcome;
}

/* ---- second round (resumption / early data) ---------------------------- */

static void on_connection_closed(uv_handle_t *handle) {
  tp_probe *p = handle->data;
  p->open_handles--;
  if (p->session != NULL) {
    gnutls_deinit(p->session);
    p->session = NULL;
  }
  if (p->fd >= 0) {
    close(p->fd);
    p->fd = -1;
  }
  if (p->state == ST_DONE) { /* timed out while closing */
    maybe_release(p);
    return;
  }
  p->handshake_done = false;
  connect_round(p, uv_hrtime());
}

/* Closes the current connection, then connects again (the round or the
 * diagnosis to run next is set by the caller). */
static void reconnect(tp_probe *p) {
  p->state = ST_RECONNECT;
  uv_timer_stop(&p->timer);
  close_poll(p, on_connection_closed);
}

/* Saves the session (with its ticket) and reconnects to the same address. */
static void start_reconnect(tp_probe *p) {
  int rc = gnutls_session_get_data2(p->session, &p->session_data);
  if (rc < 0) {
    char detail[160];
    snprintf(detail, sizeof(detail), "cannot keep the session for resumption: %s",
             gnutls_strerror(rc));
    finish(p, TP_OUTCOME_OTHER, detail);
    return;
  }
  (void)gnutls_bye(p->session, GNUTLS_SHUT_WR);
  p->round = 2;
  reconnect(p);
}

static bool wants_second_round(const tp_probe *p) {
  return p->round == 1 && tp_profile_mode(p->profile) != TP_MODE_HANDSHAKE;
}

/* TLS 1.3 tickets come after the handshake (RFC 8446 §4.6.1): read until one
 * arrived, the peer stops talking, or the wait timer gives up. TLS 1.2
 * tickets (or session IDs) are settled inside the handshake itself. */
static void step_ticket(tp_probe *p, bool give_up) {
  gnutls_session_t s = p->session;
  bool tls13 = gnutls_protocol_get_version(s) == GNUTLS_TLS1_3;
  ssize_t rc = GNUTLS_E_AGAIN;
  if (tls13 && !give_up) {
    uint8_t sink[4096];
    do
      rc = gnutls_record_recv(s, sink, sizeof(sink)); /* processes NewSessionTicket */
    while (rc > 0 || rc == GNUTLS_E_INTERRUPTED);
  }
  bool have_ticket = (gnutls_session_get_flags(s) & GNUTLS_SFLAGS_SESSION_TICKET) != 0;
  if (tls13 && !give_up && !have_ticket && rc == GNUTLS_E_AGAIN)
    return; /* keep waiting (the caller polls for input) */
  p->result->ticket_received = have_ticket;
  start_reconnect(p);
}

/* Classifies a fatal GnuTLS error in any phase. After the server asked for a
 * client certificate, its fatal alert is about that certificate. */
static tp_outcome classify_fatal(tp_probe *p, int rc, int sys_errno, char *detail, size_t len) {
  gnutls_alert_description_t alert = gnutls_alert_get(p->session);
  tp_outcome outcome = tp_classify_handshake(rc, alert, sys_errno, detail, len);
  if (outcome == TP_OUTCOME_NOT_TLS && (p->server_hello_seen || p->round > 1)) {
    /* It answered with a valid ServerHello: it speaks TLS, and this is a
     * protocol error or interoperability problem, not a wrong service. */
    snprintf(detail, len, "%s after the server's hello: %s", gnutls_strerror_name(rc),
             gnutls_strerror(rc));
    outcome = TP_OUTCOME_OTHER;
  }
  if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED && gnutls_certificate_client_get_request_status(p->session))
    outcome = tp_classify_client_cert_alert(outcome, alert,
                                            tp__profile_has_client_certificate(p->profile),
                                            gnutls_certificate_get_ours(p->session) != NULL, detail,
                                            len);
  return outcome;
}

/* ---- HTTP ------------------------------------------------------------- */

static const char *http_host(const tp_probe *p) {
  const tp_http_spec *http = tp_profile_http(p->profile);
  if (http->host != NULL)
    return http->host;
  return p->result->sni != NULL ? p->result->sni : p->target.host;
}

static void prepare_request(tp_probe *p) {
  const tp_http_spec *http = tp_profile_http(p->profile);
  free(p->request);
  p->request = tp_http_build_request(http->method ? http->method : "GET",
                                     http->path ? http->path : "/", http_host(p));
  p->request_len = strlen(p->request);
  p->request_sent = 0;
}

static bool wants_http(const tp_probe *p) {
  if (tp_profile_http(p->profile)->method != NULL)
    return true;
  /* early data carries a request, so its round needs one */
  return p->round == 2 && tp_profile_mode(p->profile) == TP_MODE_EARLY_DATA;
}

static void on_poll(uv_poll_t *handle, int status, int events);

static void wait_for(tp_probe *p, int events) {
  int rc = uv_poll_start(&p->poll, events, on_poll);
  if (rc < 0)
    finish(p, TP_OUTCOME_OTHER, uv_strerror(rc));
}

static void wait_for_session(tp_probe *p) {
  wait_for(p, gnutls_record_get_direction(p->session) ? UV_WRITABLE : UV_READABLE);
}

static void after_exchange(tp_probe *p);

static void http_done(tp_probe *p) {
  tp_result *r = p->result;
  tp_http_response resp;
  int rc = tp_http_parse_head(&p->response_head, &resp);
  r->http_done = true;
  r->http_status = resp.status;
  r->http_hsts = resp.hsts;
  char detail[160];
  if (rc < 0 || resp.status == 0) {
    snprintf(detail, sizeof(detail), "the server's answer is not an HTTP/1.x response");
    finish(p, TP_OUTCOME_HTTP_STATUS, detail);
    return;
  }
  if (resp.status >= 400) {
    snprintf(detail, sizeof(detail), "HTTP status %u", resp.status);
    finish(p, TP_OUTCOME_HTTP_STATUS, detail);
    return;
  }
  after_exchange(p);
}

static void step_http(tp_probe *p) {
  gnutls_session_t s = p->session;
  while (p->request_sent < p->request_len) {
    ssize_t n = gnutls_record_send(s, p->request + p->request_sent, p->request_len - p->request_sent);
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
      wait_for_session(p);
      return;
    }
    if (n < 0) {
      char detail[256];
      tp_outcome outcome = classify_fatal(p, (int)n, errno, detail, sizeof(detail));
      finish(p, outcome, detail);
      return;
    }
    p->request_sent += (size_t)n;
    if (p->request_sent == p->request_len)
      p->t_request_sent = uv_hrtime();
  }
  for (;;) {
    uint8_t buf[4096];
    ssize_t n = gnutls_record_recv(s, buf, sizeof(buf));
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
      wait_for_session(p);
      return;
    }
    if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) { /* EOF: judge what arrived */
      http_done(p);
      return;
    }
    if (n < 0 && !gnutls_error_is_fatal((int)n))
      continue; /* e.g. a TLS 1.3 NewSessionTicket processed inside recv */
    if (n < 0) {
      char detail[256];
      tp_outcome outcome = classify_fatal(p, (int)n, errno, detail, sizeof(detail));
      finish(p, outcome, detail);
      return;
    }
    if (!p->got_first_byte && p->t_request_sent != 0) {
      p->got_first_byte = true;
      p->result->http_first_byte_ns =
          elapsed_without_lag(p->t_request_sent, uv_hrtime(), p->phase_lag);
    }
    tp_http_response resp;
    bool full = tp_buf_append(&p->response_head, buf, (size_t)n) != TP_E_OK;
    if (full || tp_http_parse_head(&p->response_head, &resp) <= 0) {
      http_done(p); /* head complete, not HTTP, or bigger than we ever read */
      return;
    }
  }
}

static void start_http(tp_probe *p, uint64_t now) {
  begin_phase(p, ST_HTTP, now);
  arm_timer(p, p->timeouts.handshake_ms);
  if (p->request == NULL)
    prepare_request(p);
  step_http(p);
}

/* After the last exchange of a round: go on to the next round or finish. */
static void after_exchange(tp_probe *p) {
  if (!wants_second_round(p)) {
    finish(p, TP_OUTCOME_OK, NULL);
    return;
  }
  begin_phase(p, ST_TICKET, uv_hrtime());
  arm_timer(p, TICKET_WAIT_MS);
  if (p->state == ST_TICKET)
    step_ticket(p, false);
  if (p->state == ST_TICKET) /* still waiting: listen for the ticket */
    wait_for(p, UV_READABLE);
}

/* ---- handshake -------------------------------------------------------- */

static void continue_after_handshake(tp_probe *p, uint64_t now) {
  if (wants_http(p))
    start_http(p, now);
  else
    after_exchange(p);
}

/* TLS 1.3 (RFC 8446 §4.4.2): the client's handshake completes before the
 * server has judged the client's Certificate, so a certificate_required or
 * bad_certificate alert arrives afterwards. When the server asked for a
 * certificate, read for about a round trip to catch that verdict. */
static void step_cert_check(tp_probe *p, bool give_up) {
  if (!give_up) {
    uint8_t sink[4096];
    ssize_t rc;
    do
      rc = gnutls_record_recv(p->session, sink, sizeof(sink));
    while (rc > 0 || rc == GNUTLS_E_INTERRUPTED || (rc < 0 && rc != GNUTLS_E_AGAIN && !gnutls_error_is_fatal((int)rc)));
    if (rc == GNUTLS_E_AGAIN)
      return; /* keep waiting (the caller polls for input) */
    if (rc < 0) {
      char detail[384];
      tp_outcome outcome = classify_fatal(p, (int)rc, errno, detail, sizeof(detail));
      bool sent = gnutls_certificate_get_ours(p->session) != NULL;
      if (sent && outcome != TP_OUTCOME_CLIENT_CERT_REJECTED) {
        /* The server asked for a certificate, got ours, and the session died
         * within the round trip in which it judges it. OpenSSL's TLS 1.3
         * certificate alert is not decodable by GnuTLS 3.7 (gnutls-cli fails
         * the same way), so the error itself is reported as evidence. */
        snprintf(detail, sizeof(detail),
                 "the server ended the session right after receiving the profile's client "
                 "certificate (%s); it refused the certificate",
                 gnutls_strerror_name((int)rc) ? gnutls_strerror_name((int)rc) : "?");
        outcome = TP_OUTCOME_CLIENT_CERT_REJECTED;
      }
      finish(p, outcome, detail);
      return;
    }
    /* rc == 0: closed without an alert; nothing says the certificate was refused */
  }
  continue_after_handshake(p, uv_hrtime());
}

static void start_cert_check(tp_probe *p, uint64_t now) {
  /* about four connect round trips, at least 100 ms, never past the handshake timeout */
  uint64_t wait_ms = 100 + 4 * p->result->connect_ns / 1000000;
  if (wait_ms > p->timeouts.handshake_ms)
    wait_ms = p->timeouts.handshake_ms;
  begin_phase(p, ST_CERT_CHECK, now);
  arm_timer(p, wait_ms);
  if (p->state == ST_CERT_CHECK)
    step_cert_check(p, false);
  if (p->state == ST_CERT_CHECK)
    wait_for(p, UV_READABLE);
}

static void handshake_succeeded(tp_probe *p, uint64_t now) {
  uint64_t took = elapsed_without_lag(p->t_phase, now, p->phase_lag);
  p->handshake_done = true;
  tp_result *r = p->result;
  if (p->round == 1) {
    r->handshake_ns = took;
    char detail[512];
    tp_outcome outcome = verify_peer(p, detail, sizeof(detail));
    if (outcome != TP_OUTCOME_OK) {
      finish(p, outcome, detail);
      return;
    }
  } else {
    /* A resumed session sends no certificate; the first round verified it. */
    r->resumption_handshake_ns = took;
    r->resumed = gnutls_session_is_resumed(p->session) != 0;
    if (r->early_data_attempted) {
      r->early_data_accepted = (gnutls_session_get_flags(p->session) & GNUTLS_SFLAGS_EARLY_DATA) != 0;
      if (r->early_data_accepted)
        p->request_sent = p->request_len; /* already on the wire */
      else
        p->request_sent = 0; /* rejected 0-RTT data is dropped: send it again */
    }
  }
  if (p->round == 1 && gnutls_protocol_get_version(p->session) == GNUTLS_TLS1_3 &&
      gnutls_certificate_client_get_request_status(p->session))
    start_cert_check(p, now);
  else
    continue_after_handshake(p, now);
}

/* Server answered handshake_failure (40), which servers send both when no
 * cipher and when no group is shared. Evidence decides: one handshake that
 * offers every group, then one that offers every cipher suite. */
static void start_diagnosis(tp_probe *p, tp_outcome outcome, const char *detail) {
  p->primary_outcome = outcome;
  snprintf(p->primary_detail, sizeof(p->primary_detail), "%s", detail);
  tp_result *r = p->result;
  uint64_t now = uv_hrtime();
  r->total_ns = elapsed_without_lag(p->t_start, now, p->total_lag);
  r->loop_lag_ns = p->total_lag;
  p->diag = TP_WIDEN_GROUPS;
  reconnect(p);
}

static void diagnosis_handshake_done(tp_probe *p, bool succeeded) {
  char detail[640];
  static const char *const dimension[TP_WIDEN__COUNT] = {
      [TP_WIDEN_GROUPS] = "group", [TP_WIDEN_CIPHERS] = "cipher suite"};
  if (succeeded) {
    gnutls_group_t g = gnutls_group_get(p->session);
    const char *name = p->diag == TP_WIDEN_GROUPS && g != GNUTLS_GROUP_INVALID
                           ? gnutls_group_get_name(g)
                           : gnutls_ciphersuite_get(p->session);
    snprintf(detail, sizeof(detail),
             "%s; a diagnostic handshake offering every %s succeeded (server chose %s): the "
             "profile and the server share no %s",
             p->primary_detail, dimension[p->diag], name ? name : "?", dimension[p->diag]);
    finish(p, p->diag == TP_WIDEN_GROUPS ? TP_OUTCOME_NO_SHARED_GROUP : TP_OUTCOME_NO_SHARED_CIPHER,
           detail);
    return;
  }
  if (p->diag == TP_WIDEN_GROUPS) {
    p->diag = TP_WIDEN_CIPHERS;
    reconnect(p);
    return;
  }
  size_t used = strlen(p->primary_detail);
  snprintf(p->primary_detail + used, sizeof(p->primary_detail) - used,
           " (diagnostic handshakes widening groups and ciphers failed too)");
  finish(p, p->primary_outcome, NULL); /* finish() reports the primary failure */
}

static void step_handshake(tp_probe *p) {
  int rc;
  int sys_errno;
  /* Warning alerts (e.g. unrecognized_name) and EINTR are not failures: try
   * again at once, a bounded number of times. */
  for (int attempts = 0;; attempts++) {
    errno = 0;
    rc = gnutls_handshake(p->session);
    sys_errno = errno;
    if ((rc != GNUTLS_E_WARNING_ALERT_RECEIVED && rc != GNUTLS_E_INTERRUPTED) || attempts >= 8)
      break;
  }
  if (rc == GNUTLS_E_AGAIN) {
    wait_for_session(p);
    return;
  }
  if (p->diag != DIAG_NONE) {
    diagnosis_handshake_done(p, rc == GNUTLS_E_SUCCESS);
    return;
  }
  if (rc == GNUTLS_E_SUCCESS) {
    handshake_succeeded(p, uv_hrtime());
    return;
  }
  char detail[256];
  tp_outcome outcome = classify_fatal(p, rc, sys_errno, detail, sizeof(detail));
  if (p->round == 1 && outcome == TP_OUTCOME_ALERT &&
      gnutls_alert_get(p->session) == GNUTLS_A_HANDSHAKE_FAILURE) {
    start_diagnosis(p, outcome, detail);
    return;
  }
  finish(p, outcome, detail);
}

/* Second-round setup: resume the saved session, maybe with 0-RTT data. */
static tp_err prepare_resumption(tp_probe *p) {
  gnutls_session_t s = p->session;
  if (gnutls_session_set_data(s, p->session_data.data, p->session_data.size) < 0)
    return TP_E_TLS;
  if (tp_profile_mode(p->profile) != TP_MODE_EARLY_DATA)
    return TP_E_OK;
  prepare_request(p);
  /* Queued now, sent with the ClientHello if the ticket allows early data. */
  ssize_t n = gnutls_record_send_early_data(s, p->request, p->request_len);
  p->result->early_data_attempted = n >= 0;
  /* Accepted 0-RTT data leaves with the ClientHello: time to first byte
   * counts from here (a rejected request is sent again and re-stamped). */
  p->t_request_sent = uv_hrtime();
  return TP_E_OK;
}

static tp_err start_handshake(tp_probe *p, uint64_t now) {
  gnutls_session_t s = NULL;
  unsigned flags = GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL;
  if (p->round == 2 && tp_profile_mode(p->profile) == TP_MODE_EARLY_DATA)
    flags |= GNUTLS_ENABLE_EARLY_DATA;
  int rc = gnutls_init(&s, flags);
  if (rc < 0)
    return TP_E_TLS;
  p->session = s; /* freed in release_probe or on_round_one_closed */
  gnutls_session_set_ptr(s, p);
  rc = gnutls_priority_set(s, p->diag != DIAG_NONE
                                 ? tp__profile_widened_priority(p->profile, (tp_widen)p->diag)
                                 : tp__profile_priority(p->profile));
  if (rc < 0)
    return TP_E_TLS;
  rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tp__profile_credentials(p->profile));
  if (rc < 0)
    return TP_E_TLS;
  if (p->result->sni != NULL) {
    rc = gnutls_server_name_set(s, GNUTLS_NAME_DNS, p->result->sni, strlen(p->result->sni));
    if (rc < 0)
      return TP_E_TLS;
  }
  unsigned n_alpn;
  const gnutls_datum_t *alpn = tp__profile_alpn(p->profile, &n_alpn);
  if (n_alpn > 0 && gnutls_alpn_set_protocols(s, alpn, n_alpn, 0) < 0)
    return TP_E_TLS;
  if (p->diag != DIAG_NONE)
    ; /* a diagnostic handshake: no evidence recorded, nothing resumed */
  else if (p->round == 1)
    gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_POST,
                                       on_handshake_message);
  else if (prepare_resumption(p) != TP_E_OK)
    return TP_E_TLS;
  gnutls_transport_set_int(s, p->fd);
  /* Our timer bounds the handshake; GnuTLS's own timeout would race it. */
  gnutls_handshake_set_timeout(s, 0);
  begin_phase(p, ST_HANDSHAKE, now);
  arm_timer(p, p->timeouts.handshake_ms);
  return TP_E_OK;
}

/* ---- connect ---------------------------------------------------------- */

static void connected(tp_probe *p, uint64_t now) {
  if (p->round == 1 && p->diag == DIAG_NONE)
    p->result->connect_ns = elapsed_without_lag(p->t_phase, now, p->phase_lag);
  if (start_handshake(p, now) != TP_E_OK) {
    finish(p, TP_OUTCOME_OTHER, "cannot set up the TLS session (GnuTLS)");
    return;
  }
  step_handshake(p);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  tp_probe *p = handle->data;
  (void)events;
  if (p->state == ST_DONE || p->state == ST_RECONNECT)
    return;
  uint64_t now = stamp_event(p);
  switch (p->state) {
  case ST_CONNECT: {
    /* libuv reports POLLERR as UV_EBADF; the socket's pending error is the
     * real reason (ECONNREFUSED, ENETUNREACH...). */
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = errno;
    if (err == 0 && status < 0)
      err = -status;
    if (err != 0) {
      char detail[128];
      tp_outcome outcome = tp_classify_connect_errno(err, detail, sizeof(detail));
      finish(p, outcome, detail);
      return;
    }
    connected(p, now);
    return;
  }
  case ST_HANDSHAKE: /* a poll error means a broken socket; GnuTLS will see it */
    step_handshake(p);
    return;
  case ST_HTTP:
    step_http(p);
    return;
  case ST_TICKET:
    step_ticket(p, false);
    if (p->state == ST_TICKET)
      wait_for(p, UV_READABLE);
    return;
  case ST_CERT_CHECK:
    step_cert_check(p, false);
    if (p->state == ST_CERT_CHECK)
      wait_for(p, UV_READABLE);
    return;
  default:
    return;
  }
}

static void connect_round(tp_probe *p, uint64_t now) {
  begin_phase(p, ST_CONNECT, now);
  arm_timer(p, p->timeouts.connect_ms);
  if (p->state == ST_DONE)
    return;
  p->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (p->fd < 0) {
    char detail[128];
    snprintf(detail, sizeof(detail), "socket: %s", strerror(errno));
    finish(p, TP_OUTCOME_OTHER, detail);
    return;
  }
  int rc = uv_poll_init_socket(p->engine->loop, &p->poll, p->fd);
  if (rc < 0) {
    finish(p, TP_OUTCOME_OTHER, uv_strerror(rc));
    return;
  }
  p->poll.data = p;
  p->poll_open = true;
  p->open_handles++;
  if (connect(p->fd, (const struct sockaddr *)&p->addr, p->addrlen) == 0) {
    connected(p, uv_hrtime()); /* possible on loopback */
    return;
  }
  if (errno != EINPROGRESS) {
    char detail[128];
    tp_outcome outcome = tp_classify_connect_errno(errno, detail, sizeof(detail));
    finish(p, outcome, detail);
    return;
  }
  wait_for(p, UV_WRITABLE);
}

/* ---- resolve ---------------------------------------------------------- */

static void remember_address(tp_probe *p, const struct addrinfo *ai) {
  char text[INET6_ADDRSTRLEN] = "";
  memcpy(&p->addr, ai->ai_addr, ai->ai_addrlen);
  p->addrlen = ai->ai_addrlen;
  const void *src = ai->ai_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
  if (inet_ntop(ai->ai_family, src, text, sizeof(text)) != NULL)
    p->result->address = tp_xstrdup(text);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  tp_probe *p = req->data;
  p->gai_active = false;
  if (p->state == ST_DONE) { /* timed out meanwhile */
    uv_freeaddrinfo(res);
    maybe_release(p);
    return;
  }
  uint64_t now = stamp_event(p);
  p->result->dns_ns = elapsed_without_lag(p->t_phase, now, p->phase_lag);
  if (status < 0 || res == NULL || res->ai_addrlen > sizeof(p->addr)) {
    char detail[256];
    snprintf(detail, sizeof(detail), "cannot resolve \"%s\": %s", p->target.host,
             status < 0 ? uv_strerror(status) : "no usable address");
    finish(p, TP_OUTCOME_DNS_FAILURE, detail);
    uv_freeaddrinfo(res);
    return;
  }
  remember_address(p, res);
  uv_freeaddrinfo(res);
  connect_round(p, now);
}

/* ---- start ------------------------------------------------------------ */

static bool is_ip_literal(const char *host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The name the certificate must match: the profile's override, else the
 * target's sni, else its host (an IP literal is checked against IP SANs). */
static const char *expected_name(const tp_probe *p) {
  if (tp_profile_sni_mode(p->profile) == TP_SNI_OVERRIDE)
    return tp_profile_sni_name(p->profile);
  return p->target.sni != NULL ? p->target.sni : p->target.host;
}

static void fill_identity(tp_probe *p) {
  tp_result *r = p->result;
  r->target = tp_xstrdup(p->target.name);
  r->host = tp_xstrdup(p->target.host);
  r->port = p->target.port;
  r->profile = tp_xstrdup(tp_profile_name(p->profile));
  const char *name = expected_name(p);
  /* RFC 6066 §3: SNI carries host names only, never IP literals. */
  if (tp_profile_sni_mode(p->profile) != TP_SNI_OFF && !is_ip_literal(name))
    r->sni = tp_xstrdup(name);
  const char *note = tp_profile_fidelity_note(p->profile);
  if (note != NULL)
    r->fidelity_note = tp_xstrdup(note);
  r->mode = tp_profile_mode(p->profile);
}

static void start_probe(tp_probe *p) {
  tp_probe_engine *e = p->engine;
  struct timespec wall;
  e->in_flight++;
  p->round = 1;
  p->result = tp_result_new();
  tp_buf_init(&p->response_head, TP_HTTP_MAX_HEADER_BYTES);
  fill_identity(p);
  clock_gettime(CLOCK_REALTIME, &wall);
  p->result->started_unix_ns = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec;
  p->t_start = uv_hrtime();
  begin_phase(p, ST_RESOLVE, p->t_start);

  /* The timer is initialised first so finish() can always close it. */
  uv_timer_init(e->loop, &p->timer);
  p->timer.data = p;
  p->open_handles = 1;
  arm_timer(p, p->timeouts.connect_ms);
  if (p->state == ST_DONE)
    return;

  char port[8];
  snprintf(port, sizeof(port), "%u", (unsigned)p->target.port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (is_ip_literal(p->target.host)) {
    /* No lookup to do: skip the thread-pool round trip (dns_ns stays 0). */
    struct addrinfo *res = NULL;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(p->target.host, port, &hints, &res) == 0 && res != NULL &&
        res->ai_addrlen <= sizeof(p->addr)) {
      remember_address(p, res);
      freeaddrinfo(res);
      connect_round(p, uv_hrtime());
      return;
    }
    if (res != NULL)
      freeaddrinfo(res);
  }
  hints.ai_flags = AI_ADDRCONFIG;
  p->gai.data = p;
  int rc = uv_getaddrinfo(e->loop, &p->gai, on_resolved, p->target.host, port, &hints);
  if (rc < 0) {
    char detail[256];
    snprintf(detail, sizeof(detail), "cannot resolve \"%s\": %s", p->target.host, uv_strerror(rc));
    finish(p, TP_OUTCOME_DNS_FAILURE, detail);
    return;
  }
  p->gai_active = true;
}

/* ---- engine ----------------------------------------------------------- */

tp_err tp_probe_engine_new(uv_loop_t *loop, const tp_probe_engine_options *options,
                           const tp_log *log, tp_probe_engine **out) {
  tp_probe_engine *e = tp_xcalloc(1, sizeof(*e));
  e->loop = loop;
  e->log = log;
  e->max_in_flight = options && options->max_in_flight ? options->max_in_flight : 64;
  e->max_pending = options && options->max_pending ? options->max_pending : 16 * e->max_in_flight;
  /* Needed for lag_at(); harmless if already enabled on this loop. */
  if (uv_loop_configure(loop, UV_METRICS_IDLE_TIME) < 0 || uv_prepare_init(loop, &e->prepare) < 0) {
    free(e);
    return TP_E_LOOP;
  }
  e->prepare.data = e;
  (void)uv_prepare_start(&e->prepare, on_prepare); /* fails only for a NULL callback */
  uv_unref((uv_handle_t *)&e->prepare); /* the engine alone must not keep the loop alive */
  e->prepare_ns = uv_hrtime();
  e->idle_at_prepare = uv_metrics_idle_time(loop);
  *out = e;
  return TP_E_OK;
}

tp_err tp_probe_engine_submit(tp_probe_engine *e, const tp_target *target,
                              const tp_profile *profile, const tp_probe_timeouts *timeouts,
                              tp_probe_done_cb cb, void *data) {
  if (target == NULL || target->host == NULL || target->name == NULL || profile == NULL ||
      cb == NULL || target->port == 0)
    return TP_E_INVAL;
  bool start_now = e->in_flight < e->max_in_flight;
  if (!start_now && e->pending >= e->max_pending)
    return TP_E_FULL;
  tp_probe *p = tp_xcalloc(1, sizeof(*p));
  p->engine = e;
  p->target = *target;
  p->profile = profile;
  p->timeouts = *timeouts;
  p->cb = cb;
  p->cb_data = data;
  p->fd = -1;
  p->diag = DIAG_NONE;
  p->state = ST_QUEUED;
  if (start_now) {
    start_probe(p);
    return TP_E_OK;
  }
  if (e->queue_tail != NULL)
    e->queue_tail->next = p;
  else
    e->queue_head = p;
  e->queue_tail = p;
  e->pending++;
  return TP_E_OK;
}

unsigned tp_probe_engine_in_flight(const tp_probe_engine *e) {
  return e->in_flight;
}

unsigned tp_probe_engine_pending(const tp_probe_engine *e) {
  return e->pending;
}

unsigned tp_probe_engine_cancel_pending(tp_probe_engine *e) {
  unsigned dropped = 0;
  while (e->queue_head != NULL) {
    tp_probe *p = e->queue_head;
    e->queue_head = p->next;
    e->pending--;
    p->cb(NULL, p->cb_data);
    free(p);
    dropped++;
  }
  e->queue_tail = NULL;
  return dropped;
}

static void on_engine_closed(uv_handle_t *handle) {
  tp_probe_engine *e = handle->data;
  void (*cb)(void *) = e->on_closed;
  void *data = e->closed_data;
  free(e);
  if (cb != NULL)
    cb(data);
}

void tp_probe_engine_close(tp_probe_engine *e, void (*on_closed)(void *data), void *data) {
  (void)tp_probe_engine_cancel_pending(e);
  e->on_closed = on_closed;
  e->closed_data = data;
  uv_prepare_stop(&e->prepare);
  uv_close((uv_handle_t *)&e->prepare, on_engine_closed);
}
