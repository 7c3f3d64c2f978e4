/* channel.c - one c-ares channel driven by one libuv loop: the classic
 * integration for c-ares 1.18, which has no event thread of its own
 * (curl's and node's shape):
 *
 *   c-ares opens/closes a socket ─► on_sock_state ─► one uv_poll_t per socket
 *   the socket is ready          ─► on_poll       ─► ares_process_fd(fd)
 *   a retry/timeout is due        ─► on_ares_timer ─► ares_process_fd(BAD, BAD)
 *
 * and after every one of those, tp__resolve_settle() (resolve.c) re-arms the
 * timer from ares_timeout() and runs the callbacks that became due. c-ares's
 * own timeouts are its retry schedule only; request deadlines are resolve.c's. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "resolve_internal.h"
#include "tp_mem.h"

#define DEFAULT_TRY_TIMEOUT_MS 1000
#define DEFAULT_TRIES 2
#define MAX_TRY_TIMEOUT_MS 60000 /* c-ares doubles it per round: keep it far from INT_MAX */
#define MAX_TRIES 16

typedef struct tp__rsock {
  uv_poll_t poll; /* poll.data = this */
  tp_resolver *r;
  ares_socket_t fd;
  int events;     /* what c-ares last asked for */
  tp__rlink link; /* in r->socks until its poll starts closing */
} tp__rsock;

static tp__rsock *find_sock(tp_resolver *r, ares_socket_t fd) {
  for (tp__rlink *l = r->socks.next; l != &r->socks; l = l->next) {
    tp__rsock *s = TP__RLIST_ENTRY(l, tp__rsock, link);
    if (s->fd == fd)
      return s;
  }
  return NULL;
}

static void on_sock_closed(uv_handle_t *handle) {
  tp__rsock *s = handle->data;
  tp_resolver *r = s->r;
  free(s);
  tp__resolve_handle_closed(r);
}

/* Unlinked at once: c-ares may open a new socket with the same fd number
 * before this poll has finished closing, and that one needs its own poll. */
static void close_sock(tp__rsock *s) {
  tp__rlist_remove(&s->link);
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  tp__rsock *s = handle->data;
  tp_resolver *r = s->r;
  ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
  if (status < 0) {
    /* POLLERR (e.g. ICMP port unreachable on the UDP socket): libuv stopped
     * the poll. Let c-ares read and write so it sees the socket's error,
     * closes it and moves the query to the next server. */
    rfd = wfd = s->fd;
  } else {
    if (events & UV_READABLE)
      rfd = s->fd;
    if (events & UV_WRITABLE)
      wfd = s->fd;
  }
  ares_socket_t fd = s->fd;
  ares_process_fd(r->channel, rfd, wfd); /* may close s (then it is unlinked, not yet freed) */
  /* Usually the error read closed the socket. If c-ares kept it, watch it
   * again: it would not tell us (its wishes did not change) and the answers
   * arriving on it would never be read. */
  if (status < 0 && !r->closing && find_sock(r, fd) == s && uv_poll_start(&s->poll, s->events, on_poll) < 0)
    close_sock(s);
  tp__resolve_settle(r);
}

/* c-ares tells what it wants of a socket; (0, 0) means it is about to close
 * it. A poll that cannot be set up leaves its queries to c-ares's timer: they
 * time out and are retried, never hang. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable) {
  tp_resolver *r = data;
  tp__rsock *s = find_sock(r, fd);
  if (!readable && !writable) {
    if (s != NULL)
      close_sock(s);
    return;
  }
  if (r->closing)
    return;
  if (s == NULL) {
    s = tp_xcalloc(1, sizeof(*s));
    s->r = r;
    s->fd = fd;
    if (uv_poll_init_socket(r->loop, &s->poll, fd) < 0) {
      free(s);
      return;
    }
    s->poll.data = s;
    tp__rlist_insert_before(&r->socks, &s->link);
    r->open_handles++;
  }
  s->events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  if (uv_poll_start(&s->poll, s->events, on_poll) < 0)
    close_sock(s);
}

static void on_ares_timer(uv_timer_t *timer) {
  tp_resolver *r = timer->data;
  ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  tp__resolve_settle(r);
}

void tp__resolve_channel_arm_timer(tp_resolver *r) {
  if (r->closing)
    return;
  struct timeval tv;
  struct timeval *next = ares_timeout(r->channel, NULL, &tv);
  if (next == NULL) {
    (void)uv_timer_stop(&r->ares_timer);
    return;
  }
  /* ares_timeout() rounds down to the millisecond; round up instead and never
   * arm 0: a timer re-armed with 0 from its own callback would run again in
   * the same uv__run_timers pass, forever, since loop time does not advance. */
  uint64_t ms = (uint64_t)next->tv_sec * 1000 + ((uint64_t)next->tv_usec + 999) / 1000;
  if (ms == 0)
    ms = 1;
  (void)uv_timer_start(&r->ares_timer, on_ares_timer, ms, 0); /* fails only for a closing handle */
}

tp_err tp__resolve_channel_open(tp_resolver *r, const tp_resolver_options *opt) {
  struct ares_options ao;
  memset(&ao, 0, sizeof(ao));
  unsigned try_ms = opt->try_timeout_ms != 0 ? opt->try_timeout_ms : DEFAULT_TRY_TIMEOUT_MS;
  unsigned tries = opt->tries != 0 ? opt->tries : DEFAULT_TRIES;
  ao.timeout = (int)(try_ms < MAX_TRY_TIMEOUT_MS ? try_ms : MAX_TRY_TIMEOUT_MS);
  ao.tries = (int)(tries < MAX_TRIES ? tries : MAX_TRIES);
  ao.sock_state_cb = on_sock_state;
  ao.sock_state_cb_data = r;
  int optmask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;

  if (opt->servers != NULL && opt->servers[0] == '\0')
    return TP_E_CONFIG; /* c-ares would accept it and then have no server at all */
  int rc = ares_init_options(&r->channel, &ao, optmask);
  if (rc != ARES_SUCCESS)
    return rc == ARES_ENOMEM ? TP_E_NOMEM : TP_E_IO;
  if (opt->servers != NULL) {
    rc = ares_set_servers_ports_csv(r->channel, opt->servers);
    if (rc != ARES_SUCCESS) {
      ares_destroy(r->channel); /* no socket exists yet: no sock_state call */
      r->channel = NULL;
      return rc == ARES_ENOMEM ? TP_E_NOMEM : TP_E_CONFIG;
    }
  }
  (void)uv_timer_init(r->loop, &r->ares_timer); /* only links the handle into the loop */
  r->ares_timer.data = r;
  r->open_handles++;
  return TP_E_OK;
}

static void on_ares_timer_closed(uv_handle_t *handle) {
  tp__resolve_handle_closed(handle->data);
}

void tp__resolve_channel_close(tp_resolver *r) {
  /* Runs every lookup's callback with ARES_EDESTRUCTION (resolve.c detached
   * them all before) and tells on_sock_state (0, 0) for each socket. */
  ares_destroy(r->channel);
  r->channel = NULL;
  while (!tp__rlist_empty(&r->socks))
    close_sock(TP__RLIST_ENTRY(r->socks.next, tp__rsock, link));
  (void)uv_timer_stop(&r->ares_timer);
  uv_close((uv_handle_t *)&r->ares_timer, on_ares_timer_closed);
}
