/* probe.c - one probe from start to result: resolve, then a sequence of
 * connection attempts chosen by next_attempt(), one deadline timer, finish.
 *
 *   RESOLVE -> PRIMARY ─ok─────────────────────────────► DONE
 *                 │ └─ok, mode resumption/early_data──► RESUME ─► DONE
 *                 └─alert handshake_failure──► DIAG_GROUPS ─► DIAG_CIPHERS ─► DONE
 *
 * Every attempt is a fresh tp_conn (conn.c) destroyed whole before the next
 * one starts; the probe only carries what spans attempts (probe_internal.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aia.h"
#include "probe_internal.h"
#include "resolve.h"
#include "tp_limits.h"
#include "tp_mem.h"
#include "tp_text.h"

static void use_address(tp_probe *p, size_t i);

/* ---- clocks ----------------------------------------------------------- */

uint64_t tp__elapsed_without_lag(uint64_t from, uint64_t to, uint64_t lag) {
  uint64_t raw = to > from ? to - from : 0;
  return raw > lag ? raw - lag : 0;
}

/* Stamps an event at callback entry, before any crypto: accumulates its loop
 * lag into the probe and the running phase, and returns the raw time. */
uint64_t tp__probe_stamp(tp_probe *p, uint64_t *phase_lag) {
  uint64_t now = uv_hrtime();
  uint64_t lag = tp__engine_lag_at(p->engine, now);
  *phase_lag += lag;
  p->total_lag += lag;
  return now;
}

/* ---- completion ------------------------------------------------------- */

static void release_probe(tp_probe *p) {
  tp_probe_engine *e = p->engine;
  gnutls_free(p->session_data.data);
  for (size_t i = 0; i < p->n_peer_der; i++)
    free(p->peer_der[i].data);
  free(p->peer_der);
  tp_result *result = p->result;
  tp_probe_done_cb cb = p->cb;
  void *cb_data = p->cb_data;
  free(p);
  tp__engine_probe_released(e);
  cb(result, cb_data);
}

static void maybe_release(tp_probe *p) {
  if (p->state == PROBE_DONE && p->open_handles == 0 && p->dns == NULL && p->conn == NULL &&
      p->aia == NULL)
    release_probe(p);
}

static void on_timer_closed(uv_handle_t *handle) {
  tp_probe *p = handle->data;
  p->open_handles--;
  maybe_release(p);
}

/* Called by conn.c when an attempt's handles are closed and it is freed. */
static void conn_gone(tp_probe *p) {
  p->conn = NULL;
  maybe_release(p);
}

static void finish(tp_probe *p, tp_outcome outcome, const char *detail) {
  if (p->state == PROBE_DONE)
    return;
  p->state = PROBE_DONE;
  tp_result *r = p->result;
  r->outcome = outcome;
  free(r->detail);
  r->detail = detail != NULL && detail[0] != '\0' ? tp_text_fit_str(detail, TP_V_MAX_DETAIL) : NULL;
  if (!p->timings_fixed) /* else fixed when the primary attempt ended */
    tp__probe_end_timings(p);
  if (p->dns != NULL) { /* no callback follows a cancel */
    tp_resolve_cancel(p->dns);
    p->dns = NULL;
  }
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, on_timer_closed);
  if (p->conn != NULL)
    tp__conn_abort(p->conn); /* conn_gone() follows */
  if (p->aia != NULL)
    tp__aia_abort(p->aia); /* likewise */
}

void tp__probe_finish(tp_probe *p, tp_outcome outcome, const char *detail) {
  finish(p, outcome, detail);
}

/* ---- the attempt table ------------------------------------------------ */

void tp__probe_end_timings(tp_probe *p) {
  p->result->total_ns = tp__elapsed_without_lag(p->t_start, uv_hrtime(), p->total_lag);
  p->result->loop_lag_ns = p->total_lag;
}

void tp__probe_start_attempt(tp_probe *p, tp_attempt_kind kind) {
  p->state = PROBE_RUNNING;
  (void)tp__conn_start(p, kind); /* sets p->conn; NULL when it failed the probe already */
}

/* Which attempt follows the one that just ended (its handles are closed and
 * it is freed): the whole probe flow in one place. */
static void next_attempt(tp_probe *p, tp_attempt_kind kind, const tp_verdict *v) {
  switch (kind) {
  case TP_ATTEMPT_PRIMARY:
    if (v->next_address && p->addr_index + 1 < p->n_addrs) {
      use_address(p, p->addr_index + 1); /* RFC 8305: the next address, same budget */
      tp__probe_start_attempt(p, TP_ATTEMPT_PRIMARY);
      return;
    }
    if (v->outcome == TP_OUTCOME_OK && tp__resume_wanted(p)) {
      tp__probe_start_attempt(p, TP_ATTEMPT_RESUME);
      return;
    }
    if (v->diagnosable) {
      tp__diagnosis_begin(p, v);
      return;
    }
    if (v->aia_url[0] != '\0') {
      tp__aia_begin(p, v);
      return;
    }
    finish(p, v->outcome, v->detail);
    return;
  case TP_ATTEMPT_RESUME:
    finish(p, v->outcome, v->detail);
    return;
  case TP_ATTEMPT_DIAG_GROUPS:
  case TP_ATTEMPT_DIAG_CIPHERS:
    tp__diagnosis_next(p, kind, v);
    return;
  }
}

void tp__probe_attempt_done(tp_probe *p, tp_attempt_kind kind, const tp_verdict *verdict) {
  if (p->state == PROBE_DONE) {
    maybe_release(p);
    return;
  }
  next_attempt(p, kind, verdict);
}

/* ---- timeouts --------------------------------------------------------- */

static void on_timeout(uv_timer_t *timer) {
  tp_probe *p = timer->data;
  if (p->state == PROBE_RESOLVE) {
    char detail[TP_V_MAX_HOST + 96];
    snprintf(detail, sizeof(detail), "cannot resolve \"%s\": no answer within %llu ms",
             p->target.host, (unsigned long long)p->timeouts.connect_ms);
    finish(p, TP_OUTCOME_DNS_FAILURE, detail);
    return;
  }
  if (p->state == PROBE_RUNNING && p->conn != NULL)
    tp__conn_on_timeout(p->conn);
  else if (p->state == PROBE_RUNNING && p->aia != NULL)
    tp__aia_on_timeout(p->aia);
}

/* Deadlines count from now, not from the loop's cached time: after a busy
 * iteration that time is stale and the deadline would come early. */
void tp__probe_arm_timer(tp_probe *p, uint64_t ms) {
  uv_update_time(tp__engine_loop(p->engine));
  p->timer_due_ns = uv_hrtime() + ms * 1000000ull;
  int rc = uv_timer_start(&p->timer, on_timeout, ms, 0);
  if (rc < 0)
    finish(p, TP_OUTCOME_OTHER, uv_strerror(rc));
}

/* ---- resolve ---------------------------------------------------------- */

/* Makes addrs[i] the address of the next attempts and records it. */
static void use_address(tp_probe *p, size_t i) {
  char text[INET6_ADDRSTRLEN] = "";
  p->addr_index = i;
  p->addr = p->addrs[i];
  p->addrlen = p->addr_lens[i];
  int family = p->addr.ss_family;
  const void *src = family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)&p->addr)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)&p->addr)->sin_addr;
  p->result->address_family = family == AF_INET6 ? "ipv6" : "ipv4";
  if (inet_ntop(family, src, text, sizeof(text)) != NULL) {
    free(p->result->address);
    p->result->address = tp_xstrdup(text);
  }
}

/* The resolver answers in RFC 8305 §4 order already (IPv6 and IPv4
 * interleaved, IPv6 first, deduplicated); keep the first TP_PROBE_MAX_ADDRS. */
static void take_addresses(tp_probe *p, const tp_resolve_result *res) {
  p->n_addrs = 0;
  for (size_t i = 0; i < res->count && p->n_addrs < TP_PROBE_MAX_ADDRS; i++) {
    p->addrs[p->n_addrs] = res->addrs[i].addr;
    p->addr_lens[p->n_addrs] = res->addrs[i].len;
    p->n_addrs++;
  }
}

static tp_resolve_family resolve_family(tp_family family) {
  switch (family) {
  case TP_FAMILY_IPV4:
    return TP_RESOLVE_V4;
  case TP_FAMILY_IPV6:
    return TP_RESOLVE_V6;
  case TP_FAMILY_ANY:
    break;
  }
  return TP_RESOLVE_ANY;
}

/* How long the next connect may take: all that is left of connect_timeout for
 * the last address; for an earlier one its share of what is left, but at least
 * TP_PROBE_ADDR_MIN_BUDGET_MS, so one silent address cannot eat the budget of
 * the others. Other attempts reconnect to the address that worked. */
uint64_t tp__probe_connect_budget_ms(const tp_probe *p, tp_attempt_kind kind) {
  if (kind != TP_ATTEMPT_PRIMARY || p->n_addrs <= 1)
    return p->timeouts.connect_ms;
  uint64_t now = uv_hrtime();
  uint64_t left = p->connect_deadline > now ? (p->connect_deadline - now + 999999) / 1000000 : 0;
  size_t remaining = p->n_addrs - p->addr_index;
  if (remaining <= 1)
    return left > 0 ? left : 1;
  uint64_t share = left / remaining;
  return share > TP_PROBE_ADDR_MIN_BUDGET_MS ? share : TP_PROBE_ADDR_MIN_BUDGET_MS;
}

static void start_connecting(tp_probe *p) {
  p->connect_deadline = uv_hrtime() + p->timeouts.connect_ms * 1000000;
  use_address(p, 0);
  tp__probe_start_attempt(p, TP_ATTEMPT_PRIMARY);
}

static void resolve_failed(tp_probe *p, const char *why) {
  char detail[TP_V_MAX_HOST + 160];
  snprintf(detail, sizeof(detail), "cannot resolve \"%s\"%s: %s", p->target.host,
           p->target.family == TP_FAMILY_IPV4   ? " (IPv4)"
           : p->target.family == TP_FAMILY_IPV6 ? " (IPv6)"
                                                : "",
           why);
  finish(p, TP_OUTCOME_DNS_FAILURE, detail);
}

static void on_resolved(const tp_resolve_result *res, void *data) {
  tp_probe *p = data;
  p->dns = NULL; /* the resolver frees the request after this callback */
  uint64_t now = tp__probe_stamp(p, &p->resolve_lag);
  p->result->dns_ns = tp__elapsed_without_lag(p->t_resolve, now, p->resolve_lag);
  if (res->status != TP_RESOLVE_OK || res->count == 0) {
    resolve_failed(p, res->message);
    return;
  }
  take_addresses(p, res);
  start_connecting(p);
}

/* An IP literal needs no lookup (dns_ns stays 0); a name is resolved on the
 * loop by c-ares within connect_timeout, its own deadline: a name that never
 * answers delays only the probes of that name. */
static void start_resolve(tp_probe *p) {
  tp_resolve_result literal;
  tp_resolve_family family = resolve_family(p->target.family);
  if (tp_resolve_numeric(p->target.host, p->target.port, family, &literal)) {
    if (literal.status != TP_RESOLVE_OK || literal.count == 0) {
      resolve_failed(p, literal.message);
      return;
    }
    take_addresses(p, &literal);
    start_connecting(p);
    return;
  }
  p->t_resolve = uv_hrtime();
  tp_err rc = tp_resolve_start(tp__engine_resolver(p->engine), p->target.host, p->target.port,
                               family, p->timeouts.connect_ms, on_resolved, p, &p->dns);
  if (rc != TP_E_OK) {
    p->dns = NULL;
    resolve_failed(p, rc == TP_E_FULL ? "too many lookups waiting for the resolver"
                                      : tp_strerror(rc));
  }
}

/* ---- start ------------------------------------------------------------ */

static bool is_ip_literal(const char *host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The name the certificate must match: the profile's override, else the
 * target's sni, else its host (an IP literal is checked against IP SANs). */
const char *tp__probe_expected_name(const tp_probe *p) {
  if (tp_profile_sni_mode(p->profile) == TP_SNI_OVERRIDE)
    return tp_profile_sni_name(p->profile);
  return p->target.sni != NULL ? p->target.sni : p->target.host;
}

/* Identity strings come from configuration, which the agent validates against
 * the same limits; they are fitted anyway so the engine alone cannot produce a
 * result its contract rejects. */
static void fill_identity(tp_probe *p) {
  tp_result *r = p->result;
  r->target = tp_text_fit_str(p->target.name, TP_V_MAX_TARGET);
  r->host = tp_text_fit_str(p->target.host, TP_V_MAX_HOST);
  r->port = p->target.port;
  r->profile = tp_text_fit_str(tp_profile_name(p->profile), TP_V_MAX_PROFILE);
  const char *name = tp__probe_expected_name(p);
  /* RFC 6066 §3: SNI carries host names only, never IP literals. */
  if (tp_profile_sni_mode(p->profile) != TP_SNI_OFF && !is_ip_literal(name))
    r->sni = tp_text_fit_str(name, TP_V_MAX_HOST);
  r->fidelity_note = tp_text_fit_str(tp_profile_fidelity_note(p->profile), TP_V_MAX_NOTE);
  r->mode = tp_profile_mode(p->profile);
}

void tp__probe_start(tp_probe *p) {
  tp_probe_engine *e = p->engine;
  struct timespec wall;
  p->result = tp_result_new();
  fill_identity(p);
  clock_gettime(CLOCK_REALTIME, &wall);
  p->result->started_unix_ns = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec;
  p->t_start = uv_hrtime();
  p->state = PROBE_RESOLVE;

  /* The timer is initialised first so finish() can always close it. */
  uv_timer_init(tp__engine_loop(e), &p->timer);
  p->timer.data = p;
  p->open_handles = 1;
  tp__probe_arm_timer(p, p->timeouts.connect_ms);
  if (p->state == PROBE_DONE)
    return;
  start_resolve(p);
}

void tp__probe_conn_gone(tp_probe *p) {
  conn_gone(p);
}
