/* exchange.c - the payload of one attempt after (or, as 0-RTT data, with) its
 * handshake: an HTTP request whose response head is judged, or raw bytes for a
 * service that is not HTTP. The tp_exchange lives in its tp_conn, so every
 * attempt starts with a fresh one (a resumed connection sends its own request
 * and is judged on its own answer). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "probe_internal.h"
#include "tp_mem.h"

void tp__exchange_free(tp_exchange *x) {
  free(x->request);
  x->request = NULL;
  tp_buf_free(&x->response_head);
}

static bool early_data_attempt(const tp_conn *c) {
  return c->kind == TP_ATTEMPT_RESUME && tp_profile_mode(c->probe->profile) == TP_MODE_EARLY_DATA;
}

/* Primary and resumed attempts send the profile's HTTP request when it has
 * one; an early-data attempt always carries its 0-RTT payload. */
bool tp__exchange_wanted(const tp_conn *c) {
  if (c->kind != TP_ATTEMPT_PRIMARY && c->kind != TP_ATTEMPT_RESUME)
    return false;
  if (early_data_attempt(c))
    return true;
  return tp_profile_http(c->probe->profile)->method != NULL;
}

static const char *http_host(const tp_probe *p) {
  const tp_http_spec *http = tp_profile_http(p->profile);
  if (http->host != NULL)
    return http->host;
  return p->result->sni != NULL ? p->result->sni : p->target.host;
}

void tp__exchange_prepare(tp_conn *c) {
  tp_exchange *x = &c->exchange;
  const tp_profile *profile = c->probe->profile;
  const tp_early_data_spec *early = tp_profile_early_data(profile);
  tp__exchange_free(x);
  tp_buf_init(&x->response_head, TP_HTTP_MAX_HEADER_BYTES);
  if (early_data_attempt(c) && early->raw != NULL) {
    x->request = tp_xmalloc(early->raw_len ? early->raw_len : 1);
    memcpy(x->request, early->raw, early->raw_len);
    x->request_len = early->raw_len;
    x->expect_reply = early->expect_reply != 0;
    x->is_http = false;
  } else {
    const tp_http_spec *http = tp_profile_http(profile);
    x->request = tp_http_build_request(http->method ? http->method : "GET",
                                       http->path ? http->path : "/", http_host(c->probe));
    x->request_len = strlen(x->request);
    x->expect_reply = true;
    x->is_http = true;
  }
  x->request_sent = 0;
}

static bool is_http_payload(const tp_conn *c) {
  return c->exchange.is_http;
}

static void end_with(tp_conn *c, tp_outcome outcome, const char *detail) {
  tp_verdict v = {0};
  v.outcome = outcome;
  snprintf(v.detail, sizeof(v.detail), "%s", detail ? detail : "");
  tp__conn_end(c, &v);
}

/* RFC 8470 §5.2: 425 Too Early is how a server correctly refuses a request
 * that arrived as early data. */
#define HTTP_TOO_EARLY 425

static void judge_http(tp_conn *c) {
  tp_probe *p = c->probe;
  tp_result *r = p->result;
  tp_http_response resp;
  int rc = tp_http_parse_head(&c->exchange.response_head, &resp);
  /* The last attempt that exchanged is the one reported: in early_data mode
   * that is the 0-RTT request's own answer. */
  r->http_done = true;
  r->http_status = resp.status;
  r->http_hsts = resp.hsts;
  if (rc < 0 || resp.status == 0) {
    end_with(c, TP_OUTCOME_HTTP_STATUS, "the server's answer is not an HTTP/1.x response");
    return;
  }
  bool early = c->exchange.sent_as_early_data && r->early_data_accepted;
  if (early && resp.status != HTTP_TOO_EARLY &&
      tp_http_method_is_unsafe_for_early_data(tp_profile_http(p->profile)->method))
    r->early_data_policy_violation = true;
  if (resp.status >= 400 && !(early && resp.status == HTTP_TOO_EARLY)) {
    char detail[64];
    snprintf(detail, sizeof(detail), "HTTP status %u", resp.status);
    end_with(c, TP_OUTCOME_HTTP_STATUS, detail);
    return;
  }
  tp__attempt_after_exchange(c);
}

static void fail_fatal(tp_conn *c, int rc) {
  tp_verdict v = {0};
  v.outcome = tp__tls_classify_fatal(c, rc, errno, v.detail, sizeof(v.detail));
  tp__conn_end(c, &v);
}

static void stamp_first_byte(tp_conn *c) {
  tp_exchange *x = &c->exchange;
  if (x->got_first_byte || x->t_request_sent == 0)
    return;
  x->got_first_byte = true;
  if (is_http_payload(c))
    c->probe->result->http_first_byte_ns =
        tp__elapsed_without_lag(x->t_request_sent, uv_hrtime(), c->phase_lag);
}

void tp__exchange_step(tp_conn *c) {
  tp_exchange *x = &c->exchange;
  gnutls_session_t s = c->session;
  while (x->request_sent < x->request_len) {
    ssize_t n = gnutls_record_send(s, x->request + x->request_sent, x->request_len - x->request_sent);
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
      tp__conn_wait_for_session(c);
      return;
    }
    if (n < 0) {
      fail_fatal(c, (int)n);
      return;
    }
    x->request_sent += (size_t)n;
    if (x->request_sent == x->request_len)
      x->t_request_sent = uv_hrtime();
  }
  if (!x->expect_reply) { /* raw payload, no answer expected: sent is done */
    tp__attempt_after_exchange(c);
    return;
  }
  for (;;) {
    uint8_t buf[4096];
    ssize_t n = gnutls_record_recv(s, buf, sizeof(buf));
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
      tp__conn_wait_for_session(c);
      return;
    }
    bool eof = n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION;
    if (!eof && n < 0 && !gnutls_error_is_fatal((int)n))
      continue; /* e.g. a TLS 1.3 NewSessionTicket processed inside recv */
    if (!eof && n < 0) {
      fail_fatal(c, (int)n);
      return;
    }
    if (!is_http_payload(c)) { /* raw: any answer, or a clean close, ends it */
      if (!eof)
        stamp_first_byte(c);
      tp__attempt_after_exchange(c);
      return;
    }
    if (eof) { /* judge what arrived */
      judge_http(c);
      return;
    }
    stamp_first_byte(c);
    tp_http_response resp;
    bool full = tp_buf_append(&x->response_head, buf, (size_t)n) != TP_E_OK;
    if (full || tp_http_parse_head(&x->response_head, &resp) <= 0) {
      judge_http(c); /* head complete, not HTTP, or bigger than we ever read */
      return;
    }
  }
}

void tp__exchange_start(tp_conn *c, uint64_t now) {
  tp_probe *p = c->probe;
  tp__conn_begin_phase(c, CONN_EXCHANGE, now);
  tp__probe_arm_timer(p, p->timeouts.handshake_ms);
  if (p->state == PROBE_DONE)
    return;
  if (c->exchange.request == NULL)
    tp__exchange_prepare(c);
  tp__exchange_step(c);
}
