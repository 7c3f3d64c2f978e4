/* probe_internal.h - the engine's internal types, shared by its files only.
 *
 * A probe (tp_probe) is a sequence of connection attempts (tp_conn): the
 * primary handshake, the resuming one, and up to two diagnostic handshakes.
 * Each attempt owns its socket, poll handle, GnuTLS session, exchange state
 * and phase clock; it is created fresh (conn_new) and destroyed whole
 * (conn_close), so nothing of one connection can leak into the next. The
 * probe owns what spans attempts: the deadline timer, the resolved address,
 * the saved session for resumption, the primary verdict under diagnosis and
 * the result. probe.c decides which attempt comes next (one transition
 * function, next_attempt); the other files each own one phase:
 *
 *   engine.c     in-flight bound, pending queue, loop-lag reference
 *   probe.c      probe lifecycle, the attempt table, timeouts, finish
 *   conn.c       one attempt's socket: connect, readiness, close whole
 *   tls.c        one attempt's GnuTLS session and handshake driving
 *   verify.c     facts and certificate verification of the primary attempt
 *   diagnosis.c  what a handshake_failure alert means (widened handshakes)
 *   resume.c     ticket wait, saved session, 0-RTT data
 *   exchange.c   the payload after the handshake (HTTP request or raw bytes)
 */
#ifndef TP_PROBE_INTERNAL_H
#define TP_PROBE_INTERNAL_H
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "outcome.h"
#include "probe.h"
#include "profile_internal.h"
#include "tp_buf.h"

/* Kinds of connection attempt, in the order a probe may make them. */
typedef enum {
  TP_ATTEMPT_PRIMARY,      /* the probe's real handshake: timings and facts */
  TP_ATTEMPT_RESUME,       /* resumption / early_data modes: resume the saved session */
  TP_ATTEMPT_DIAG_GROUPS,  /* after handshake_failure: offer every group */
  TP_ATTEMPT_DIAG_CIPHERS, /* ... then every cipher suite */
} tp_attempt_kind;

/* Phases of one attempt. */
typedef enum {
  CONN_CONNECT,
  CONN_HANDSHAKE,
  CONN_CERT_CHECK, /* TLS 1.3: waiting for the verdict on our client certificate */
  CONN_EXCHANGE,   /* the payload (HTTP request/response or raw bytes) */
  CONN_TICKET,     /* TLS 1.3: waiting for the NewSessionTicket */
  CONN_CLOSING,    /* uv_close pending; no more events */
} conn_phase;

/* What the payload exchange of one attempt has done (exchange.c). */
typedef struct tp_exchange {
  char *request; /* NULL = no payload on this attempt */
  size_t request_len, request_sent;
  bool expect_reply; /* false for raw payloads sent without waiting for an answer */
  bool is_http;      /* an HTTP request (judged on its status), not raw bytes */
  bool sent_as_early_data;
  tp_buf response_head;
  uint64_t t_request_sent;
  bool got_first_byte;
} tp_exchange;

/* How an attempt ended. */
typedef struct tp_verdict {
  tp_outcome outcome;
  char detail[640];
  /* TP_ATTEMPT_DIAG_*: the name the server chose in a widened handshake. */
  char chosen[64];
  /* A handshake_failure alert, which servers send both when no group and when
   * no cipher is shared: diagnostic attempts may refine it. */
  bool diagnosable;
  /* unknown_ca whose missing issuer is named by this AIA caIssuers URL, to be
   * fetched as evidence (aia.c); "" = nothing to fetch. */
  char aia_url[512];
  /* The primary attempt could not connect to this address: try the next. */
  bool next_address;
} tp_verdict;

typedef struct tp_probe tp_probe;

typedef struct tp_conn {
  tp_probe *probe;
  tp_attempt_kind kind;
  conn_phase phase;
  int fd;
  uv_poll_t poll;
  bool poll_open;
  int poll_events; /* what the poll handle watches now; re-armed only on change */
  /* A wait for readability that bytes already read ahead satisfy (conn.c
   * run_phase): the phase runs again at once instead of waiting for a poll. */
  bool dispatching, buffered_wait;
  int wanted_events;
  gnutls_session_t session;
  uint8_t *read_buf; /* read ahead of GnuTLS (tls.c on_pull); NULL until the first read */
  size_t read_off, read_len;
  uint64_t read_consumed; /* bytes handed to GnuTLS from the buffer, ever */
  bool handshake_done;
  bool server_hello_seen; /* the peer spoke TLS at least once */
  uint8_t server_suite[2]; /* cipher suite of the ServerHello, if one was seen */
  bool have_server_suite;
  tp_exchange exchange;
  uint64_t t_phase, phase_lag; /* uv_hrtime() at phase start; loop lag seen since */
  uint64_t t_active; /* uv_hrtime() of the phase's start or of our last bytes sent */
  bool deadline_extended; /* the phase's deadline was moved once for a stall of ours */
  uint64_t connect_budget_ms;  /* this attempt's connect deadline */
  tp_verdict verdict;          /* set by tp__conn_end, reported once closed */
  bool report;                 /* false after tp__conn_abort */
} tp_conn;


typedef enum { PROBE_QUEUED, PROBE_RESOLVE, PROBE_RUNNING, PROBE_DONE } probe_state;

#define TP_PROBE_MAX_ADDRS 8 /* at most TP_RESOLVE_MAX_ADDRS */
/* An address that fails to connect gives way to the next after at most this
 * long (RFC 8305 §5 recommends 250 ms as the connection attempt delay). */
#define TP_PROBE_ADDR_MIN_BUDGET_MS 250

struct tp_probe {
  tp_probe_engine *engine;
  tp_target target; /* borrowed strings */
  const tp_profile *profile;
  tp_probe_timeouts timeouts;
  tp_probe_done_cb cb;
  void *cb_data;
  tp_probe *next; /* pending queue link */

  probe_state state;
  uv_timer_t timer; /* one deadline for whatever phase runs now */
  uint64_t timer_due_ns; /* uv_hrtime() the deadline is due at */
  struct tp_resolve_req *dns; /* the lookup running now, or NULL */
  uint64_t t_resolve;
  int open_handles; /* close callbacks still to come before the probe may be freed */
  /* The addresses to try, in order (RFC 8305 §4: families interleaved, IPv6
   * first); addr is the one the current attempt uses. */
  struct sockaddr_storage addrs[TP_PROBE_MAX_ADDRS];
  socklen_t addr_lens[TP_PROBE_MAX_ADDRS];
  size_t n_addrs, addr_index;
  uint64_t connect_deadline; /* uv_hrtime() by which some address must connect */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  tp_conn *conn; /* the attempt running now, or NULL */

  gnutls_datum_t session_data; /* the primary session, for TP_ATTEMPT_RESUME */
  tp_verdict primary;          /* the failure a diagnosis or an AIA fetch may refine */
  bool timings_fixed;          /* total_ns ended with the primary attempt */
  gnutls_datum_t *peer_der;    /* the chain as sent, kept for re-verification (aia.c) */
  size_t n_peer_der;
  struct tp_aia_fetch *aia;    /* the AIA fetch running now, or NULL */

  uint64_t t_start;             /* uv_hrtime() */
  uint64_t resolve_lag, total_lag;
  tp_result *result;
};

/* engine.c */
uint64_t tp__engine_lag_at(const tp_probe_engine *engine, uint64_t now);
uv_loop_t *tp__engine_loop(const tp_probe_engine *engine);
struct tp_aia_cache *tp__engine_aia_cache(tp_probe_engine *engine);
struct tp_engine_caches *tp__engine_caches(tp_probe_engine *engine); /* verify_cache.h */
struct tp_resolver *tp__engine_resolver(tp_probe_engine *engine);
void tp__engine_probe_released(tp_probe_engine *engine);
void tp__probe_start(tp_probe *p); /* probe.c; the engine starts queued probes */

/* probe.c */
uint64_t tp__probe_stamp(tp_probe *p, uint64_t *phase_lag); /* now; adds loop lag */
uint64_t tp__elapsed_without_lag(uint64_t from, uint64_t to, uint64_t lag);
void tp__probe_arm_timer(tp_probe *p, uint64_t ms);
void tp__probe_finish(tp_probe *p, tp_outcome outcome, const char *detail); /* ends the probe */
void tp__probe_start_attempt(tp_probe *p, tp_attempt_kind kind);
void tp__probe_end_timings(tp_probe *p); /* total_ns and loop_lag_ns fixed now */
void tp__probe_attempt_done(tp_probe *p, tp_attempt_kind kind, const tp_verdict *verdict);
const char *tp__probe_expected_name(const tp_probe *p);
uint64_t tp__probe_connect_budget_ms(const tp_probe *p, tp_attempt_kind kind);
void tp__probe_conn_gone(tp_probe *p); /* the attempt is freed; nothing to report */

/* conn.c */
tp_conn *tp__conn_start(tp_probe *p, tp_attempt_kind kind); /* NULL: probe already failed */
void tp__conn_begin_phase(tp_conn *c, conn_phase phase, uint64_t now);
void tp__conn_wait(tp_conn *c, int events);     /* UV_READABLE / UV_WRITABLE */
void tp__conn_wait_for_session(tp_conn *c);     /* what GnuTLS wants next */
void tp__conn_end(tp_conn *c, const tp_verdict *verdict); /* closes it whole, then reports */
void tp__conn_abort(tp_conn *c);                /* closes it whole, reports nothing */
void tp__conn_on_timeout(tp_conn *c);

/* tls.c */
tp_err tp__tls_start(tp_conn *c, uint64_t now);
void tp__tls_step_handshake(tp_conn *c);
tp_outcome tp__tls_classify_fatal(tp_conn *c, int rc, int sys_errno, char *detail, size_t len);
void tp__tls_continue_after_handshake(tp_conn *c, uint64_t now);
void tp__tls_step_cert_check(tp_conn *c, bool give_up);

/* verify.c */
/* Fills v->outcome, v->detail and, for an AIA fetch to come, v->aia_url. */
void tp__verify_primary(tp_conn *c, tp_verdict *v);
void tp__verify_collect_failure_facts(tp_conn *c); /* after a ServerHello, if any */

/* diagnosis.c */
bool tp__diagnosis_wanted(const tp_conn *c, tp_outcome outcome);
/* The probe's next step after the primary attempt failed diagnosably, or a
 * diagnostic attempt ended. */
void tp__diagnosis_begin(tp_probe *p, const tp_verdict *primary);
void tp__diagnosis_next(tp_probe *p, tp_attempt_kind kind, const tp_verdict *verdict);

/* resume.c */
bool tp__resume_wanted(const tp_probe *p);
tp_err tp__resume_prepare(tp_conn *c);
void tp__resume_handshake_done(tp_conn *c, uint64_t took);
void tp__resume_step_ticket(tp_conn *c, bool give_up);

/* exchange.c */
bool tp__exchange_wanted(const tp_conn *c);
void tp__exchange_prepare(tp_conn *c);
void tp__exchange_start(tp_conn *c, uint64_t now);
void tp__exchange_step(tp_conn *c);
void tp__exchange_free(tp_exchange *x);

/* After the last exchange of an attempt: the ticket wait or the verdict. */
void tp__attempt_after_exchange(tp_conn *c);

#endif
