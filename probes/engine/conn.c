/* conn.c - one connection attempt's socket: created fresh, connected, driven
 * by readiness, closed whole. Its GnuTLS session is tls.c's; its payload is
 * exchange.c's; this file owns the fd, the uv_poll_t and the phase clock, and
 * dispatches readiness to the phase that waits for it.
 *
 * Why uv_poll_t on our own non-blocking socket rather than uv_tcp_t with
 * GnuTLS push/pull callbacks: GnuTLS then reads and writes the kernel socket
 * directly (no copy through libuv read buffers, no pull-timeout emulation),
 * gnutls_record_get_direction() tells exactly which readiness to wait for,
 * and the connect() errno reaches the classifier unchanged. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classify.h"
#include "probe_internal.h"
#include "tp_mem.h"

static void on_poll(uv_poll_t *handle, int status, int events);

void tp__conn_begin_phase(tp_conn *c, conn_phase phase, uint64_t now) {
  c->phase = phase;
  c->t_phase = now;
  c->t_active = now;
  c->deadline_extended = false;
  c->phase_lag = 0;
}

/* Re-arms the poll handle only when the wanted direction changes: libuv's
 * uv_poll_start is an epoll_ctl DEL and ADD even for the same events. */
static void arm_poll(tp_conn *c, int events) {
  if (c->poll_events == events)
    return;
  int rc = uv_poll_start(&c->poll, events, on_poll);
  if (rc < 0) {
    tp__probe_finish(c->probe, TP_OUTCOME_OTHER, uv_strerror(rc));
    return;
  }
  c->poll_events = events;
}

static void dispatch(tp_conn *c, int status, uint64_t now);

/* Runs the phase that waits, again while it asks to read what tls.c has
 * already read ahead of GnuTLS: the socket is drained, so the poll would not
 * report it. GnuTLS returns GNUTLS_E_AGAIN after a post-handshake message
 * (a TLS 1.3 NewSessionTicket) without reading further, so the bytes behind
 * it are still in the buffer. A round that consumed nothing gives up to the
 * poll (and the phase's deadline) instead of spinning. */
static void run_phase(tp_conn *c, int status, uint64_t now) {
  c->dispatching = true;
  for (;;) {
    uint64_t before = c->read_consumed;
    c->buffered_wait = false;
    dispatch(c, status, now);
    if (!c->buffered_wait || c->phase == CONN_CLOSING)
      break;
    if (c->read_consumed == before) {
      arm_poll(c, c->wanted_events);
      break;
    }
    now = uv_hrtime();
  }
  c->dispatching = false;
}

void tp__conn_wait(tp_conn *c, int events) {
  if ((events & UV_READABLE) && c->read_off < c->read_len) {
    c->buffered_wait = true;
    c->wanted_events = events;
    if (!c->dispatching)
      run_phase(c, 0, uv_hrtime()); /* called from outside a readiness callback */
    return;
  }
  arm_poll(c, events);
}

void tp__conn_wait_for_session(tp_conn *c) {
  tp__conn_wait(c, gnutls_record_get_direction(c->session) ? UV_WRITABLE : UV_READABLE);
}

/* ---- closing whole ---------------------------------------------------- */

static void free_conn(tp_conn *c) {
  if (c->session != NULL)
    gnutls_deinit(c->session);
  if (c->fd >= 0)
    close(c->fd);
  tp__exchange_free(&c->exchange);
  free(c->read_buf);
  free(c);
}

static void on_conn_closed(uv_handle_t *handle) {
  tp_conn *c = handle->data;
  tp_probe *p = c->probe;
  tp_attempt_kind kind = c->kind;
  bool report = c->report;
  tp_verdict verdict = c->verdict;
  free_conn(c);
  p->conn = NULL;
  if (report)
    tp__probe_attempt_done(p, kind, &verdict);
  else
    tp__probe_conn_gone(p);
}

static void close_conn(tp_conn *c) {
  if (c->phase == CONN_CLOSING)
    return;
  c->phase = CONN_CLOSING;
  uv_timer_stop(&c->probe->timer);
  if (c->handshake_done && c->session != NULL) /* polite close_notify; best effort */
    (void)gnutls_bye(c->session, GNUTLS_SHUT_WR);
  c->poll_open = false;
  uv_close((uv_handle_t *)&c->poll, on_conn_closed);
}

void tp__conn_end(tp_conn *c, const tp_verdict *verdict) {
  if (c->phase == CONN_CLOSING)
    return;
  c->verdict = *verdict;
  c->report = true;
  close_conn(c);
}

void tp__conn_abort(tp_conn *c) {
  c->report = false;
  close_conn(c);
}

/* ---- connect ---------------------------------------------------------- */

static void connected(tp_conn *c, uint64_t now) {
  if (c->kind == TP_ATTEMPT_PRIMARY)
    c->probe->result->connect_ns = tp__elapsed_without_lag(c->t_phase, now, c->phase_lag);
  if (tp__tls_start(c, now) != TP_E_OK) {
    tp__probe_finish(c->probe, TP_OUTCOME_OTHER, "cannot set up the TLS session (GnuTLS)");
    return;
  }
  tp__tls_step_handshake(c);
}

/* Appends which address failed when the probe has others to try, so the
 * final detail says how many were tried. */
static void mark_address(tp_conn *c, tp_verdict *v) {
  tp_probe *p = c->probe;
  if (c->kind != TP_ATTEMPT_PRIMARY || p->n_addrs < 2)
    return;
  v->next_address = true;
  size_t used = strlen(v->detail);
  snprintf(v->detail + used, sizeof(v->detail) - used, " (address %zu of %zu, %s)",
           p->addr_index + 1, p->n_addrs, p->result->address ? p->result->address : "?");
}

static void connect_failed(tp_conn *c, int err) {
  tp_verdict v = {0};
  v.outcome = tp_classify_connect_errno(err, v.detail, sizeof(v.detail));
  mark_address(c, &v);
  tp__conn_end(c, &v);
}

static void step_connect(tp_conn *c, int status, uint64_t now) {
  /* libuv reports POLLERR as UV_EBADF; the socket's pending error is the
   * real reason (ECONNREFUSED, ENETUNREACH...). */
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  if (err == 0 && status < 0)
    err = -status;
  if (err != 0) {
    connect_failed(c, err);
    return;
  }
  connected(c, now);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  tp_conn *c = handle->data;
  (void)events;
  if (c->phase == CONN_CLOSING)
    return;
  uint64_t now = tp__probe_stamp(c->probe, &c->phase_lag);
  run_phase(c, status, now);
}

/* Hands readiness to the phase that waits for it. */
static void dispatch(tp_conn *c, int status, uint64_t now) {
  switch (c->phase) {
  case CONN_CONNECT:
    step_connect(c, status, now);
    return;
  case CONN_HANDSHAKE: /* a poll error means a broken socket; GnuTLS will see it */
    tp__tls_step_handshake(c);
    return;
  case CONN_CERT_CHECK:
    tp__tls_step_cert_check(c, false);
    return;
  case CONN_EXCHANGE:
    tp__exchange_step(c);
    return;
  case CONN_TICKET:
    tp__resume_step_ticket(c, false);
    return;
  case CONN_CLOSING:
    return;
  }
}

/* A stall shorter than this is scheduling noise, not a reason to doubt a timeout. */
#define TP_CONN_STALL_TOLERANCE_NS (10 * 1000000ull)

/* True when the peer's answer is already there, unread: bytes tls.c read ahead, or
 * the socket readable -- or, while connecting, writable (the connect finished). */
static bool answer_waiting(const tp_conn *c) {
  if (c->read_off < c->read_len)
    return true;
  short events = c->phase == CONN_CONNECT ? POLLOUT : POLLIN;
  struct pollfd pfd = {.fd = c->fd, .events = events};
  return poll(&pfd, 1, 0) == 1 && pfd.revents != 0;
}

/* How long the agent's own loop kept this phase waiting: the wake-ups that came
 * late, and how late the deadline's timer itself fired. */
static uint64_t phase_stall_ns(const tp_conn *c) {
  uint64_t now = uv_hrtime();
  uint64_t due = c->probe->timer_due_ns;
  return c->phase_lag + (now > due ? now - due : 0);
}

/* A timeout blames the server (or the path) only with evidence. When the agent's
 * loop kept up (stall within tolerance), the deadline is the evidence. After a
 * stall (the timer fired late, or the phase's wake-ups came late):
 *  1. what the phase waits for, if already waiting unread, is processed now, and
 *     the real answer decides (refused, the next phase under its own deadline, a
 *     verdict on the handshake);
 *  2. a server silent for at least half the budget after the agent's last bytes
 *     went out is blamed: it had its time;
 *  3. otherwise the stall took the server's time: the deadline moves once, by the
 *     stall (at most the budget), and the next timeout judges again;
 *  4. if the agent stalled again and the server still had less than half its
 *     budget, the verdict is "other" (the prober's own, category internal), saying
 *     why.
 * Returns true when the timeout was settled so (c may be closing). */
static bool settle_stalled_timeout(tp_conn *c, uint64_t budget_ms, const char *what) {
  uint64_t stall = phase_stall_ns(c);
  if (stall <= TP_CONN_STALL_TOLERANCE_NS)
    return false;
  /* The loop's lag now is the result's too (it marks the result saturated) and,
   * subtracted from the phase's time, keeps the stall out of its timings. */
  uint64_t now = tp__probe_stamp(c->probe, &c->phase_lag);
  bool answered = answer_waiting(c);
  if (answered) {
    conn_phase before = c->phase;
    run_phase(c, 0, now);
    if (c->phase != before)
      return true;
    now = uv_hrtime();
  }
  uint64_t budget_ns = budget_ms * 1000000ull;
  uint64_t server_had = now > c->t_active ? now - c->t_active : 0;
  if (server_had * 2 >= budget_ns)
    return false; /* silent for half its budget after our last bytes: its timeout */
  if (!c->deadline_extended) {
    c->deadline_extended = true;
    uint64_t extra_ms = (stall < budget_ns ? stall : budget_ns) / 1000000ull;
    tp__probe_arm_timer(c->probe, extra_ms > 0 ? extra_ms : 1);
    return true;
  }
  tp_verdict v = {.outcome = TP_OUTCOME_OTHER};
  snprintf(v.detail, sizeof(v.detail),
           "inconclusive: the %s timed out (%llu ms, extended once) while this agent's loop was"
           " stalled %llu ms%s; the server had only %llu ms after the agent's last bytes: the"
           " agent's own saturation, not evidence against the server",
           what, (unsigned long long)budget_ms, (unsigned long long)(stall / 1000000ull),
           answered ? " (the server had answered; the agent fell behind)" : "",
           (unsigned long long)(server_had / 1000000ull));
  tp__conn_end(c, &v);
  return true;
}

/* The deadline of the running phase passed. */
void tp__conn_on_timeout(tp_conn *c) {
  tp_probe *p = c->probe;
  tp_verdict v = {0};
  if ((c->phase == CONN_CONNECT &&
       settle_stalled_timeout(c, c->connect_budget_ms, "TCP connect")) ||
      (c->phase == CONN_HANDSHAKE &&
       settle_stalled_timeout(c, p->timeouts.handshake_ms, "TLS handshake")) ||
      (c->phase == CONN_EXCHANGE &&
       settle_stalled_timeout(c, p->timeouts.handshake_ms, "request after the handshake")))
    return;
  switch (c->phase) {
  case CONN_CONNECT:
    v.outcome = TP_OUTCOME_CONNECT_TIMEOUT;
    snprintf(v.detail, sizeof(v.detail), "TCP connect did not finish within %llu ms",
             (unsigned long long)c->connect_budget_ms);
    mark_address(c, &v);
    break;
  case CONN_HANDSHAKE:
    v.outcome = TP_OUTCOME_HANDSHAKE_TIMEOUT;
    snprintf(v.detail, sizeof(v.detail), "TLS handshake did not finish within %llu ms",
             (unsigned long long)p->timeouts.handshake_ms);
    break;
  case CONN_EXCHANGE:
    /* the default 0-RTT payload (GET /) is HTTP too; a raw one is not */
    v.outcome = c->exchange.is_http ? TP_OUTCOME_HTTP_STATUS : TP_OUTCOME_OTHER;
    snprintf(v.detail, sizeof(v.detail), "no complete %s within %llu ms",
             v.outcome == TP_OUTCOME_HTTP_STATUS ? "HTTP response head" : "answer to the payload",
             (unsigned long long)p->timeouts.handshake_ms);
    break;
  case CONN_TICKET:
    tp__resume_step_ticket(c, true); /* no ticket in time: the result will say */
    return;
  case CONN_CERT_CHECK:
    tp__tls_step_cert_check(c, true); /* no verdict on our certificate: it was accepted */
    return;
  case CONN_CLOSING:
    return;
  }
  tp__conn_end(c, &v);
}

/* Opens the attempt's socket and starts connecting to the probe's address.
 * Returns NULL when the probe failed instead (nothing left open). */
tp_conn *tp__conn_start(tp_probe *p, tp_attempt_kind kind) {
  tp_conn *c = tp_xcalloc(1, sizeof(*c));
  c->probe = p;
  c->kind = kind;
  c->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    char detail[128];
    /* strerror() is not thread-safe, and probes run on worker threads. */
    snprintf(detail, sizeof(detail), "socket: %s", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
    free(c);
    tp__probe_finish(p, TP_OUTCOME_OTHER, detail);
    return NULL;
  }
  int rc = uv_poll_init_socket(tp__engine_loop(p->engine), &c->poll, c->fd);
  if (rc < 0) {
    close(c->fd);
    free(c);
    tp__probe_finish(p, TP_OUTCOME_OTHER, uv_strerror(rc));
    return NULL;
  }
  c->poll.data = c;
  c->poll_open = true;
  p->conn = c;
  tp__conn_begin_phase(c, CONN_CONNECT, uv_hrtime());
  c->connect_budget_ms = tp__probe_connect_budget_ms(p, kind);
  tp__probe_arm_timer(p, c->connect_budget_ms);
  if (p->state == PROBE_DONE)
    return c; /* finish() is closing it */
  if (connect(c->fd, (const struct sockaddr *)&p->addr, p->addrlen) == 0) {
    connected(c, uv_hrtime()); /* possible on loopback */
    return p->conn;
  }
  if (errno != EINPROGRESS) {
    connect_failed(c, errno);
    return c;
  }
  tp__conn_wait(c, UV_WRITABLE);
  return c;
}
