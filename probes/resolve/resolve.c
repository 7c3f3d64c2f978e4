/* resolve.c - requests of one resolver: slots, deadlines, cancellation and
 * callback delivery (channel.c drives c-ares, addrs.c orders the answers).
 *
 *   tp_resolve_start ─► WAITING ─(slot)─► ACTIVE ─(c-ares answers)─► DONE ─► callback, free
 *                          │                 │                        ▲
 *                          └──(deadline)─────┴──(deadline: TIMEOUT)───┘
 *   tp_resolve_cancel: from any state but the callback itself, freed at once.
 *
 * c-ares 1.18 cannot cancel one query (ares_cancel ends all of a channel's),
 * so a request and its c-ares lookup are separate objects: cancelling or
 * timing out a request detaches it (lookup->req = NULL) and the lookup, now
 * abandoned, frees itself when c-ares finally calls back. An abandoned
 * lookup gives its slot to the next request at once, so a blackholed name
 * costs others nothing; only max_abandoned of them stop new lookups, a
 * safety valve against a flood growing c-ares without bound.
 *
 * Callbacks run only from loop callbacks that are not c-ares's (socket,
 * timer, idle), never inside tp_resolve_start (ares_getaddrinfo answers
 * literals, /etc/hosts and some errors before it returns) and never inside a
 * c-ares callback (which must not destroy the channel, and a callback may
 * close the resolver). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolve_internal.h"
#include "tp_mem.h"

#define DEFAULT_MAX_IN_FLIGHT 64
#define DEFAULT_MAX_ABANDONED 1024
#define DEFAULT_MAX_WAITING 1024
#define MAX_TIMEOUT_MS (24ull * 3600 * 1000) /* keeps deadline arithmetic far from overflow */
#define MAX_HOST_LEN 255 /* RFC 1035 §2.3.4, in text with an optional final dot */

typedef enum { REQ_WAITING, REQ_ACTIVE, REQ_DONE, REQ_DELIVERING } req_state;

typedef struct tp__lookup tp__lookup;

struct tp_resolve_req {
  tp_resolver *r;
  req_state state;
  tp__rlink by_deadline; /* in r->deadlines while WAITING or ACTIVE */
  tp__rlink queue;       /* in r->waiting (WAITING) or r->done (DONE) */
  tp__lookup *lookup;    /* ACTIVE: the c-ares lookup, which points back */
  uint64_t deadline_ns;  /* uv_hrtime() */
  uint64_t timeout_ms;
  uint16_t port;
  tp_resolve_family family;
  tp_resolve_cb cb;
  void *data;
  tp_resolve_result result;
  char message[112]; /* our own messages; result.message may point here */
  char host[];
};

/* One ares_getaddrinfo; lives until c-ares calls on_lookup_done. */
struct tp__lookup {
  tp_resolver *r;
  tp_resolve_req *req; /* NULL once abandoned */
};

/* ---- bookkeeping -------------------------------------------------------- */

static bool slot_free(const tp_resolver *r) {
  return r->active < r->max_in_flight && r->abandoned < r->max_abandoned;
}

static void detach(tp_resolve_req *req) {
  tp_resolver *r = req->r;
  req->lookup->req = NULL;
  req->lookup = NULL;
  r->active--;
  r->abandoned++;
}

/* Takes req out of the deadline list and its queue, whatever its state, and
 * abandons its lookup; afterwards it is in no list. */
static void unlink_req(tp_resolve_req *req) {
  tp__rlist_remove(&req->by_deadline);
  tp__rlist_remove(&req->queue);
  if (req->state == REQ_WAITING)
    req->r->n_waiting--;
  if (req->state == REQ_ACTIVE)
    detach(req);
}

static void on_deliver(uv_idle_t *idle);

static void complete(tp_resolve_req *req) {
  tp_resolver *r = req->r;
  req->state = REQ_DONE;
  tp__rlist_insert_before(&r->done, &req->queue);
  if (!r->closing)
    (void)uv_idle_start(&r->deliver_idle, on_deliver); /* no-op when started; cannot fail */
}

/* ---- callbacks to the caller --------------------------------------------- */

static void deliver_one(tp_resolver *r) {
  tp_resolve_req *req = TP__RLIST_ENTRY(r->done.next, tp_resolve_req, queue);
  tp__rlist_remove(&req->queue);
  req->state = REQ_DELIVERING; /* tp_resolve_cancel(req) from its own callback: no-op */
  req->cb(&req->result, req->data);
  free(req);
}

static void drain(tp_resolver *r) {
  while (!r->closing && !tp__rlist_empty(&r->done))
    deliver_one(r);
  if (!r->closing)
    (void)uv_idle_stop(&r->deliver_idle);
}

static void on_deliver(uv_idle_t *idle) {
  drain(idle->data);
}

/* ---- c-ares lookups -------------------------------------------------------- */

static void on_lookup_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai) {
  (void)timeouts;
  tp__lookup *lk = arg;
  tp_resolver *r = lk->r;
  tp_resolve_req *req = lk->req;
  free(lk);
  if (req == NULL) {
    r->abandoned--;
    ares_freeaddrinfo(ai);
    return;
  }
  r->active--;
  req->lookup = NULL;
  tp__rlist_remove(&req->by_deadline);
  tp__resolve_fill(&req->result, status, ai, req->family, req->port);
  ares_freeaddrinfo(ai);
  complete(req);
}

static void start_lookup(tp_resolve_req *req) {
  tp_resolver *r = req->r;
  tp__lookup *lk = tp_xmalloc(sizeof(*lk));
  lk->r = r;
  lk->req = req;
  req->lookup = lk;
  req->state = REQ_ACTIVE;
  r->active++;
  struct ares_addrinfo_hints hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = req->family == TP_RESOLVE_V4 ? AF_INET
                    : req->family == TP_RESOLVE_V6 ? AF_INET6
                                                    : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  /* No service: the port is ours to set. c-ares sorts by RFC 6724. */
  ares_getaddrinfo(r->channel, req->host, NULL, &hints, on_lookup_done, lk); /* may call back now */
}

/* Starts waiting requests while there are slots, then re-arms c-ares's timer
 * (a new query has a retry due). */
static void kick(tp_resolver *r) {
  if (r->closing)
    return;
  while (!tp__rlist_empty(&r->waiting) && slot_free(r)) {
    tp_resolve_req *req = TP__RLIST_ENTRY(r->waiting.next, tp_resolve_req, queue);
    tp__rlist_remove(&req->queue);
    r->n_waiting--;
    start_lookup(req);
  }
  tp__resolve_channel_arm_timer(r);
}

void tp__resolve_settle(tp_resolver *r) {
  kick(r);
  drain(r);
}

/* ---- deadlines ---------------------------------------------------------------- */

static void on_deadline(uv_timer_t *timer);

static void arm_deadline(tp_resolver *r) {
  if (r->closing)
    return;
  if (tp__rlist_empty(&r->deadlines)) {
    (void)uv_timer_stop(&r->deadline_timer);
    return;
  }
  tp_resolve_req *first = TP__RLIST_ENTRY(r->deadlines.next, tp_resolve_req, by_deadline);
  uint64_t now = uv_hrtime();
  uint64_t delay_ms = first->deadline_ns > now ? (first->deadline_ns - now + 999999) / 1000000 : 1;
  (void)uv_timer_start(&r->deadline_timer, on_deadline, delay_ms, 0);
}

/* Mostly appends: deadlines of equal timeouts arrive in order. */
static void insert_by_deadline(tp_resolver *r, tp_resolve_req *req) {
  tp__rlink *at = &r->deadlines;
  while (at->prev != &r->deadlines &&
         TP__RLIST_ENTRY(at->prev, tp_resolve_req, by_deadline)->deadline_ns > req->deadline_ns)
    at = at->prev;
  tp__rlist_insert_before(at, &req->by_deadline);
}

static void expire(tp_resolve_req *req) {
  tp_resolver *r = req->r;
  unsigned long long ms = (unsigned long long)req->timeout_ms;
  if (req->state == REQ_WAITING)
    snprintf(req->message, sizeof(req->message),
             "no resolver slot within %llu ms (%u lookups active, %u abandoned)", ms, r->active,
             r->abandoned);
  else
    snprintf(req->message, sizeof(req->message), "no answer within %llu ms", ms);
  memset(&req->result, 0, sizeof(req->result));
  req->result.status = TP_RESOLVE_TIMEOUT;
  req->result.message = req->message;
  unlink_req(req);
  complete(req);
}

/* Deadlines are kept in uv_hrtime(), not in the loop's millisecond clock:
 * that one is truncated and, on Linux, read from CLOCK_MONOTONIC_COARSE, so a
 * timer can fire a few milliseconds before the deadline measured by anyone
 * else; then nothing is due yet and the timer is armed again. A stale arm
 * (its request was answered or cancelled) likewise finds nothing due. */
static void on_deadline(uv_timer_t *timer) {
  tp_resolver *r = timer->data;
  uint64_t now = uv_hrtime();
  while (!tp__rlist_empty(&r->deadlines)) {
    tp_resolve_req *req = TP__RLIST_ENTRY(r->deadlines.next, tp_resolve_req, by_deadline);
    if (req->deadline_ns > now)
      break;
    expire(req);
  }
  arm_deadline(r);
  tp__resolve_settle(r); /* timed-out lookups may have freed slots */
}

/* ---- the public functions --------------------------------------------------- */

tp_err tp_resolve_global_init(void) {
  int rc = ares_library_init_mem(ARES_LIB_INIT_ALL, tp_xmalloc, free, tp_xrealloc);
  return rc == ARES_SUCCESS ? TP_E_OK : rc == ARES_ENOMEM ? TP_E_NOMEM : TP_E_IO;
}

void tp_resolve_global_cleanup(void) {
  ares_library_cleanup();
}

tp_err tp_resolver_new(uv_loop_t *loop, const tp_resolver_options *opt, tp_resolver **out) {
  if (loop == NULL || out == NULL)
    return TP_E_INVAL;
  tp_resolver_options o;
  memset(&o, 0, sizeof(o));
  if (opt != NULL)
    o = *opt;
  tp_resolver *r = tp_xcalloc(1, sizeof(*r));
  r->loop = loop;
  r->max_in_flight = o.max_in_flight != 0 ? o.max_in_flight : DEFAULT_MAX_IN_FLIGHT;
  r->max_abandoned = o.max_abandoned != 0 ? o.max_abandoned : DEFAULT_MAX_ABANDONED;
  r->max_waiting = o.max_waiting != 0 ? o.max_waiting : DEFAULT_MAX_WAITING;
  tp__rlist_init(&r->socks);
  tp__rlist_init(&r->deadlines);
  tp__rlist_init(&r->waiting);
  tp__rlist_init(&r->done);
  tp_err err = tp__resolve_channel_open(r, &o);
  if (err != TP_E_OK) {
    free(r);
    return err;
  }
  /* These only link the handles into the loop; they cannot fail. */
  (void)uv_timer_init(loop, &r->deadline_timer);
  r->deadline_timer.data = r;
  (void)uv_idle_init(loop, &r->deliver_idle);
  r->deliver_idle.data = r;
  r->open_handles += 2;
  *out = r;
  return TP_E_OK;
}

tp_err tp_resolve_start(tp_resolver *r, const char *host, uint16_t port, tp_resolve_family family,
                        uint64_t timeout_ms, tp_resolve_cb cb, void *data, tp_resolve_req **out) {
  if (out != NULL)
    *out = NULL;
  if (r == NULL || r->closing || host == NULL || cb == NULL || timeout_ms == 0 ||
      timeout_ms > MAX_TIMEOUT_MS ||
      (family != TP_RESOLVE_ANY && family != TP_RESOLVE_V4 && family != TP_RESOLVE_V6))
    return TP_E_INVAL;
  size_t len = strnlen(host, MAX_HOST_LEN + 1);
  if (len == 0 || len > MAX_HOST_LEN)
    return TP_E_INVAL;
  tp_resolve_result literal;
  bool is_literal = tp_resolve_numeric(host, port, family, &literal);
  if (!is_literal && !slot_free(r) && r->n_waiting >= r->max_waiting)
    return TP_E_FULL;

  tp_resolve_req *req = tp_xcalloc(1, sizeof(*req) + len + 1);
  req->r = r;
  memcpy(req->host, host, len + 1);
  req->port = port;
  req->family = family;
  req->cb = cb;
  req->data = data;
  req->timeout_ms = timeout_ms;
  tp__rlist_init(&req->by_deadline);
  tp__rlist_init(&req->queue);
  if (out != NULL)
    *out = req;

  if (is_literal) {
    req->result = literal; /* its message is static */
    complete(req);
    return TP_E_OK;
  }
  /* From now, not from the loop's cached time, which is stale after a busy
   * iteration and would bring the deadline early. */
  req->deadline_ns = uv_hrtime() + timeout_ms * 1000000u;
  req->state = REQ_WAITING;
  insert_by_deadline(r, req);
  tp__rlist_insert_before(&r->waiting, &req->queue);
  r->n_waiting++;
  arm_deadline(r);
  kick(r); /* an answer c-ares gives at once waits in r->done for the idle */
  return TP_E_OK;
}

void tp_resolve_cancel(tp_resolve_req *req) {
  if (req == NULL || req->state == REQ_DELIVERING)
    return;
  tp_resolver *r = req->r;
  bool was_active = req->state == REQ_ACTIVE;
  unlink_req(req);
  free(req);
  if (was_active)
    kick(r); /* its slot is free now (the lookup counts as abandoned) */
}

void tp_resolver_get_stats(const tp_resolver *r, tp_resolver_stats *out) {
  out->active = r->active;
  out->abandoned = r->abandoned;
  out->waiting = r->n_waiting;
}

static void finish_close(tp_resolver *r) {
  while (!tp__rlist_empty(&r->done))
    deliver_one(r); /* CANCELLED; a callback may cancel the others */
  void (*on_closed)(void *) = r->on_closed;
  void *data = r->closed_data;
  free(r);
  if (on_closed != NULL)
    on_closed(data);
}

void tp__resolve_handle_closed(tp_resolver *r) {
  r->open_handles--;
  if (r->closing && r->open_handles == 0)
    finish_close(r);
}

static void on_handle_closed(uv_handle_t *handle) {
  tp__resolve_handle_closed(handle->data);
}

void tp_resolver_close(tp_resolver *r, void (*on_closed)(void *data), void *data) {
  if (r == NULL || r->closing)
    return;
  r->closing = true;
  r->on_closed = on_closed;
  r->closed_data = data;
  /* Every request not yet called back ends CANCELLED, in deadline order
   * after those that were already done. */
  while (!tp__rlist_empty(&r->deadlines)) {
    tp_resolve_req *req = TP__RLIST_ENTRY(r->deadlines.next, tp_resolve_req, by_deadline);
    unlink_req(req);
    complete(req);
  }
  for (tp__rlink *l = r->done.next; l != &r->done; l = l->next) {
    tp_resolve_req *req = TP__RLIST_ENTRY(l, tp_resolve_req, queue);
    memset(&req->result, 0, sizeof(req->result));
    req->result.status = TP_RESOLVE_CANCELLED;
    req->result.message = "resolver closed";
  }
  tp__resolve_channel_close(r); /* abandoned lookups end here, with ARES_EDESTRUCTION */
  (void)uv_timer_stop(&r->deadline_timer);
  (void)uv_idle_stop(&r->deliver_idle);
  uv_close((uv_handle_t *)&r->deadline_timer, on_handle_closed);
  uv_close((uv_handle_t *)&r->deliver_idle, on_handle_closed);
}
