/* resume.c - modes resumption and early_data: after the primary attempt, wait
 * for the TLS 1.3 NewSessionTicket, keep the session, and resume it on a new
 * attempt to the same address, in early_data with the 0-RTT payload queued
 * with the ClientHello (RFC 8446 §2.3, §4.2.10). */
#include <stdio.h>

#include "probe_internal.h"

/* How long a TLS 1.3 client waits for the server's NewSessionTicket, which
 * arrives after the handshake (RFC 8446 §4.6.1), before resuming anyway. */
#define TICKET_WAIT_MS 1000

bool tp__resume_wanted(const tp_probe *p) {
  return tp_profile_mode(p->profile) != TP_MODE_HANDSHAKE;
}

static void end_ok(tp_conn *c) {
  tp_verdict v = {0};
  v.outcome = TP_OUTCOME_OK;
  tp__conn_end(c, &v);
}

/* Keeps the primary session (with its ticket) for the resuming attempt. */
static void save_session(tp_conn *c) {
  tp_probe *p = c->probe;
  int rc = gnutls_session_get_data2(c->session, &p->session_data);
  if (rc < 0) {
    tp_verdict v = {0};
    v.outcome = TP_OUTCOME_OTHER;
    snprintf(v.detail, sizeof(v.detail), "cannot keep the session for resumption: %s",
             gnutls_strerror(rc));
    tp__conn_end(c, &v);
    return;
  }
  end_ok(c);
}

/* TLS 1.3 tickets come after the handshake (RFC 8446 §4.6.1): read until one
 * arrived, the peer stops talking, or the wait timer gives up. TLS 1.2
 * tickets (or session IDs) are settled inside the handshake itself. */
void tp__resume_step_ticket(tp_conn *c, bool give_up) {
  gnutls_session_t s = c->session;
  bool tls13 = gnutls_protocol_get_version(s) == GNUTLS_TLS1_3;
  ssize_t rc = GNUTLS_E_AGAIN;
  if (tls13 && !give_up) {
    uint8_t sink[4096];
    do
      rc = gnutls_record_recv(s, sink, sizeof(sink)); /* processes NewSessionTicket */
    while (rc > 0 || rc == GNUTLS_E_INTERRUPTED);
  }
  bool have_ticket = (gnutls_session_get_flags(s) & GNUTLS_SFLAGS_SESSION_TICKET) != 0;
  if (tls13 && !give_up && !have_ticket && rc == GNUTLS_E_AGAIN) {
    tp__conn_wait(c, UV_READABLE); /* keep waiting */
    return;
  }
  c->probe->result->ticket_received = have_ticket;
  save_session(c);
}

static void start_ticket_wait(tp_conn *c) {
  tp__conn_begin_phase(c, CONN_TICKET, uv_hrtime());
  tp__probe_arm_timer(c->probe, TICKET_WAIT_MS);
  if (c->probe->state != PROBE_DONE)
    tp__resume_step_ticket(c, false);
}

void tp__attempt_after_exchange(tp_conn *c) {
  if (c->kind == TP_ATTEMPT_PRIMARY && tp__resume_wanted(c->probe)) {
    start_ticket_wait(c);
    return;
  }
  end_ok(c);
}

/* Set up before the resuming attempt's handshake: the saved session, and in
 * early_data mode the payload queued to leave with the ClientHello if the
 * ticket allows early data. */
tp_err tp__resume_prepare(tp_conn *c) {
  tp_probe *p = c->probe;
  gnutls_session_t s = c->session;
  if (gnutls_session_set_data(s, p->session_data.data, p->session_data.size) < 0)
    return TP_E_TLS;
  if (tp_profile_mode(p->profile) != TP_MODE_EARLY_DATA)
    return TP_E_OK;
  tp__exchange_prepare(c);
  tp_exchange *x = &c->exchange;
  ssize_t n = gnutls_record_send_early_data(s, x->request, x->request_len);
  p->result->early_data_attempted = n >= 0;
  x->sent_as_early_data = n >= 0;
  /* Accepted 0-RTT data leaves with the ClientHello: time to first byte
   * counts from here (a rejected payload is sent again and re-stamped). */
  x->t_request_sent = uv_hrtime();
  return TP_E_OK;
}

void tp__resume_handshake_done(tp_conn *c, uint64_t took) {
  tp_result *r = c->probe->result;
  tp_exchange *x = &c->exchange;
  /* A resumed session sends no certificate; the primary attempt verified it. */
  r->resumption_handshake_ns = took;
  r->resumed = gnutls_session_is_resumed(c->session) != 0;
  if (x->sent_as_early_data) {
    r->early_data_accepted = (gnutls_session_get_flags(c->session) & GNUTLS_SFLAGS_EARLY_DATA) != 0;
    /* Accepted data is already on the wire; rejected 0-RTT data is dropped by
     * the server, so it is sent again over the established connection. */
    x->request_sent = r->early_data_accepted ? x->request_len : 0;
    if (!r->early_data_accepted)
      x->sent_as_early_data = false;
  }
  tp__tls_continue_after_handshake(c, uv_hrtime());
}
