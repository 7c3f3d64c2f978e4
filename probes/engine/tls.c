/* tls.c - one attempt's GnuTLS session: set up from the profile's shared
 * priority cache and credentials, driven non-blocking by readiness, and the
 * classification of its fatal errors. The session belongs to the tp_conn and
 * dies with it (conn.c). */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "classify.h"
#include "hello.h"
#include "probe_internal.h"
#include "tp_limits.h"
#include "tp_mem.h"
#include "tp_text.h"

/* ---- handshake hook: evidence from our own ClientHello ------------------ */

static char **group_names(const uint16_t *ids, size_t n) {
  char **names = tp_xcalloc(n ? n : 1, sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    char buf[16];
    names[i] = tp_xstrdup(tp_hello_group_name(ids[i], buf, sizeof(buf)));
  }
  return names;
}

static void record_client_hello(tp_result *r, const gnutls_datum_t *msg) {
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
  size_t n_groups = offer.n_groups < TP_V_MAX_OFFERED ? offer.n_groups : TP_V_MAX_OFFERED;
  size_t n_shares = offer.n_key_shares < TP_V_MAX_OFFERED ? offer.n_key_shares : TP_V_MAX_OFFERED;
  r->groups_offered = group_names(offer.groups, n_groups);
  r->n_groups_offered = n_groups;
  r->key_shares_offered = group_names(offer.key_shares, n_shares);
  r->n_key_shares_offered = n_shares;
}

/* RFC 8446 §4.1.3 / RFC 5246 §7.4.1.3: legacy_version(2) random(32)
 * session_id<0..32> cipher_suite(2). GnuTLS names the suite only once the
 * handshake completes; a failed one still chose it. */
static void remember_server_suite(tp_conn *c, const gnutls_datum_t *msg) {
  const uint8_t *b = msg->data;
  size_t len = msg->size;
  if (len >= 4 && b[0] == GNUTLS_HANDSHAKE_SERVER_HELLO) { /* with its 4-byte header */
    b += 4;
    len -= 4;
  }
  if (len < 35)
    return;
  size_t sid = b[34];
  if (len < 35 + sid + 2)
    return;
  c->server_suite[0] = b[35 + sid];
  c->server_suite[1] = b[36 + sid];
  c->have_server_suite = true;
}

static int on_handshake_message(gnutls_session_t session, unsigned int htype, unsigned when,
                                unsigned int incoming, const gnutls_datum_t *msg) {
  tp_conn *c = gnutls_session_get_ptr(session);
  tp_result *r = c->probe->result;
  (void)when;
  if (c->kind == TP_ATTEMPT_PRIMARY) {
    if (htype == GNUTLS_HANDSHAKE_CLIENT_HELLO && !incoming && r->groups_offered == NULL)
      record_client_hello(r, msg); /* the first ClientHello: what the profile offers */
    else if (htype == GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST && incoming)
      r->hello_retry_request = true; /* RFC 8446 §4.1.4 */
  }
  if (incoming &&
      (htype == GNUTLS_HANDSHAKE_SERVER_HELLO || htype == GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST))
    c->server_hello_seen = true;
  if (incoming && htype == GNUTLS_HANDSHAKE_SERVER_HELLO)
    remember_server_suite(c, msg);
  return 0;
}

/* ---- transport: the socket, read ahead ---------------------------------- */

/* GnuTLS reads each record with two recv() calls, its 5-byte header and then
 * its body (lib/buffers.c), so a TLS 1.3 server flight of six records cost
 * twelve syscalls. The pull function reads whatever the socket holds into the
 * connection's read-ahead buffer in one recv() and serves GnuTLS from it. It
 * returns EAGAIN only when the buffer is empty and the socket said EAGAIN, so
 * gnutls_record_get_direction() and waiting for readability mean what they
 * meant with GnuTLS reading the socket itself: nothing is ever left buffered
 * while the connection waits. Writes still go straight to the socket. */
#define READ_AHEAD_BYTES (16 * 1024)

static ssize_t on_pull(gnutls_transport_ptr_t ptr, void *data, size_t len) {
  tp_conn *c = ptr;
  if (c->read_off == c->read_len) {
    if (len >= READ_AHEAD_BYTES) /* nothing to gain from a copy */
      return recv(c->fd, data, len, 0);
    if (c->read_buf == NULL)
      c->read_buf = tp_xmalloc(READ_AHEAD_BYTES);
    ssize_t n = recv(c->fd, c->read_buf, READ_AHEAD_BYTES, 0);
    if (n <= 0)
      return n; /* errno says why; GnuTLS reads it (EAGAIN, EINTR, ECONNRESET...) */
    c->read_off = 0;
    c->read_len = (size_t)n;
  }
  size_t take = c->read_len - c->read_off < len ? c->read_len - c->read_off : len;
  memcpy(data, c->read_buf + c->read_off, take);
  c->read_off += take;
  c->read_consumed += take;
  return (ssize_t)take;
}

/* GnuTLS calls this only with a timeout set (ms > 0), which the engine never
 * sets (its own timer bounds each phase): say "data may be there" rather
 * than block the loop; the pull then answers EAGAIN if it is not. */
static int on_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms) {
  tp_conn *c = ptr;
  if (c->read_off < c->read_len)
    return 1;
  struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
  int rc = poll(&pfd, 1, 0);
  if (rc != 0)
    return rc;
  return ms == 0 ? 0 : 1;
}

/* One sendmsg per flight, as GnuTLS's own writev would, and the time the peer's
 * clock starts: a timeout blames the server only for time it had after our last
 * bytes (conn.c). giovec_t is struct iovec. MSG_NOSIGNAL: a peer that closed gives
 * EPIPE, not SIGPIPE. */
static ssize_t on_vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt) {
  tp_conn *c = ptr;
  struct msghdr msg = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)iovcnt};
  ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
  if (n > 0)
    c->t_active = uv_hrtime();
  return n; /* -1: errno says why (EAGAIN...), GnuTLS reads it */
}

static void set_transport(tp_conn *c) {
  gnutls_transport_set_ptr(c->session, c);
  gnutls_transport_set_pull_function(c->session, on_pull);
  gnutls_transport_set_pull_timeout_function(c->session, on_pull_timeout);
  gnutls_transport_set_vec_push_function(c->session, on_vec_push);
}

/* ---- session setup ---------------------------------------------------- */

static gnutls_priority_t attempt_priority(const tp_conn *c) {
  const tp_profile *profile = c->probe->profile;
  switch (c->kind) {
  case TP_ATTEMPT_DIAG_GROUPS:
    return tp__profile_widened_priority(profile, TP_WIDEN_GROUPS);
  case TP_ATTEMPT_DIAG_CIPHERS:
    return tp__profile_widened_priority(profile, TP_WIDEN_CIPHERS);
  case TP_ATTEMPT_PRIMARY:
  case TP_ATTEMPT_RESUME:
    break;
  }
  return tp__profile_priority(profile);
}

tp_err tp__tls_start(tp_conn *c, uint64_t now) {
  tp_probe *p = c->probe;
  gnutls_session_t s = NULL;
  unsigned flags =
      GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL | tp__profile_session_flags(p->profile);
  if (c->kind == TP_ATTEMPT_RESUME && tp_profile_mode(p->profile) == TP_MODE_EARLY_DATA)
    flags |= GNUTLS_ENABLE_EARLY_DATA;
  if (gnutls_init(&s, flags) < 0)
    return TP_E_TLS;
  c->session = s; /* deinit with the conn */
  gnutls_session_set_ptr(s, c);
  if (gnutls_priority_set(s, attempt_priority(c)) < 0)
    return TP_E_TLS;
  if (gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tp__profile_credentials(p->profile)) < 0)
    return TP_E_TLS;
  const char *sni = p->result->sni;
  if (sni != NULL && gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni)) < 0)
    return TP_E_TLS;
  unsigned n_alpn;
  const gnutls_datum_t *alpn = tp__profile_alpn(p->profile, &n_alpn);
  if (n_alpn > 0 && gnutls_alpn_set_protocols(s, alpn, n_alpn, 0) < 0)
    return TP_E_TLS;
  gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_POST,
                                     on_handshake_message);
  if (c->kind == TP_ATTEMPT_RESUME && tp__resume_prepare(c) != TP_E_OK)
    return TP_E_TLS;
  set_transport(c);
  /* Our timer bounds the handshake; GnuTLS's own timeout would race it. */
  gnutls_handshake_set_timeout(s, 0);
  tp__conn_begin_phase(c, CONN_HANDSHAKE, now);
  tp__probe_arm_timer(p, p->timeouts.handshake_ms);
  return TP_E_OK;
}

/* ---- classification ----------------------------------------------------- */

/* Classifies a fatal GnuTLS error in any phase. After the server asked for a
 * client certificate, its fatal alert is about that certificate. */
tp_outcome tp__tls_classify_fatal(tp_conn *c, int rc, int sys_errno, char *detail, size_t len) {
  gnutls_alert_description_t alert = gnutls_alert_get(c->session);
  tp_outcome outcome = tp_classify_handshake(rc, alert, sys_errno, detail, len);
  if (outcome == TP_OUTCOME_NOT_TLS && (c->server_hello_seen || c->kind == TP_ATTEMPT_RESUME)) {
    /* It answered with a valid ServerHello: it speaks TLS, and this is a
     * protocol error or interoperability problem, not a wrong service. */
    snprintf(detail, len, "%s after the server's hello: %s", gnutls_strerror_name(rc),
             gnutls_strerror(rc));
    outcome = TP_OUTCOME_OTHER;
  }
  if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED && gnutls_certificate_client_get_request_status(c->session))
    outcome = tp_classify_client_cert_alert(outcome, alert,
                                            tp__profile_has_client_certificate(c->probe->profile),
                                            gnutls_certificate_get_ours(c->session) != NULL, detail,
                                            len);
  return outcome;
}

/* ---- after the handshake ---------------------------------------------- */

void tp__tls_continue_after_handshake(tp_conn *c, uint64_t now) {
  if (tp__exchange_wanted(c))
    tp__exchange_start(c, now);
  else
    tp__attempt_after_exchange(c);
}

/* TLS 1.3 (RFC 8446 §4.4.2): the client's handshake completes before the
 * server has judged the client's Certificate, so a certificate_required or
 * bad_certificate alert arrives afterwards. When the server asked for a
 * certificate, read for about a round trip to catch that verdict. */
void tp__tls_step_cert_check(tp_conn *c, bool give_up) {
  if (!give_up) {
    uint8_t sink[4096];
    ssize_t rc;
    do
      rc = gnutls_record_recv(c->session, sink, sizeof(sink));
    while (rc > 0 || rc == GNUTLS_E_INTERRUPTED ||
           (rc < 0 && rc != GNUTLS_E_AGAIN && !gnutls_error_is_fatal((int)rc)));
    if (rc == GNUTLS_E_AGAIN) {
      tp__conn_wait(c, UV_READABLE); /* keep waiting */
      return;
    }
    if (rc < 0) {
      tp_verdict v = {0};
      v.outcome = tp__tls_classify_fatal(c, (int)rc, errno, v.detail, sizeof(v.detail));
      bool sent = gnutls_certificate_get_ours(c->session) != NULL;
      if (sent && v.outcome != TP_OUTCOME_CLIENT_CERT_REJECTED) {
        /* The server asked for a certificate, got ours, and the session died
         * within the round trip in which it judges it. OpenSSL's TLS 1.3
         * certificate alert is not decodable by GnuTLS 3.7 (gnutls-cli fails
         * the same way), so the error itself is reported as evidence. */
        const char *name = gnutls_strerror_name((int)rc);
        snprintf(v.detail, sizeof(v.detail),
                 "the server ended the session right after receiving the profile's client "
                 "certificate (%s); it refused the certificate",
                 name ? name : "?");
        v.outcome = TP_OUTCOME_CLIENT_CERT_REJECTED;
      }
      tp__conn_end(c, &v);
      return;
    }
    /* rc == 0: closed without an alert; nothing says the certificate was refused */
  }
  tp__tls_continue_after_handshake(c, uv_hrtime());
}

/* The verdict on our certificate comes after the server's own processing, which is
 * not bounded by the round trip: a loaded server (seen: openssl s_server beside an
 * ASan build, 1 in 10) answered after 100 ms and the refusal read as ok. */
#define CERT_VERDICT_MIN_WAIT_MS 300

static void start_cert_check(tp_conn *c, uint64_t now) {
  tp_probe *p = c->probe;
  /* about four connect round trips beyond a fixed floor, never past the handshake timeout */
  uint64_t wait_ms = CERT_VERDICT_MIN_WAIT_MS + 4 * p->result->connect_ns / 1000000;
  if (wait_ms > p->timeouts.handshake_ms)
    wait_ms = p->timeouts.handshake_ms;
  tp__conn_begin_phase(c, CONN_CERT_CHECK, now);
  tp__probe_arm_timer(p, wait_ms);
  if (p->state != PROBE_DONE)
    tp__tls_step_cert_check(c, false);
}

static void primary_handshake_done(tp_conn *c, uint64_t now) {
  tp_result *r = c->probe->result;
  r->handshake_ns = tp__elapsed_without_lag(c->t_phase, now, c->phase_lag);
  tp_verdict v = {0};
  tp__verify_primary(c, &v);
  if (v.outcome != TP_OUTCOME_OK) {
    tp__conn_end(c, &v);
    return;
  }
  if (gnutls_protocol_get_version(c->session) == GNUTLS_TLS1_3 &&
      gnutls_certificate_client_get_request_status(c->session))
    start_cert_check(c, now);
  else
    tp__tls_continue_after_handshake(c, now);
}

static void diagnostic_handshake_done(tp_conn *c, int rc) {
  tp_verdict v = {0};
  if (rc != GNUTLS_E_SUCCESS) {
    v.outcome = TP_OUTCOME_OTHER;
    snprintf(v.detail, sizeof(v.detail), "%s", gnutls_strerror(rc));
  } else {
    v.outcome = TP_OUTCOME_OK;
    gnutls_group_t g = gnutls_group_get(c->session);
    const char *name = c->kind == TP_ATTEMPT_DIAG_GROUPS && g != GNUTLS_GROUP_INVALID
                           ? gnutls_group_get_name(g)
                           : gnutls_ciphersuite_get(c->session);
    snprintf(v.chosen, sizeof(v.chosen), "%s", name ? name : "?");
  }
  tp__conn_end(c, &v);
}

void tp__tls_step_handshake(tp_conn *c) {
  int rc;
  int sys_errno;
  /* Warning alerts (e.g. unrecognized_name) and EINTR are not failures: try
   * again at once, a bounded number of times. */
  for (int attempts = 0;; attempts++) {
    errno = 0;
    rc = gnutls_handshake(c->session);
    sys_errno = errno;
    if ((rc != GNUTLS_E_WARNING_ALERT_RECEIVED && rc != GNUTLS_E_INTERRUPTED) || attempts >= 8)
      break;
  }
  if (rc == GNUTLS_E_AGAIN) {
    tp__conn_wait_for_session(c);
    return;
  }
  if (c->kind == TP_ATTEMPT_DIAG_GROUPS || c->kind == TP_ATTEMPT_DIAG_CIPHERS) {
    diagnostic_handshake_done(c, rc);
    return;
  }
  uint64_t now = uv_hrtime();
  if (rc == GNUTLS_E_SUCCESS) {
    c->handshake_done = true;
    if (c->kind == TP_ATTEMPT_PRIMARY)
      primary_handshake_done(c, now);
    else
      tp__resume_handshake_done(c, tp__elapsed_without_lag(c->t_phase, now, c->phase_lag));
    return;
  }
  tp_verdict v = {0};
  v.outcome = tp__tls_classify_fatal(c, rc, sys_errno, v.detail, sizeof(v.detail));
  if (c->kind == TP_ATTEMPT_PRIMARY)
    tp__verify_collect_failure_facts(c);
  v.diagnosable = c->kind == TP_ATTEMPT_PRIMARY && tp__diagnosis_wanted(c, v.outcome);
  tp__conn_end(c, &v);
}
