/* resolve_internal.h - what resolve.c (requests, deadlines, delivery),
 * channel.c (c-ares driven by the loop) and addrs.c (answers into connection
 * order) share. Nothing outside probes/resolve/ includes it. */
#ifndef TP_RESOLVE_INTERNAL_H
#define TP_RESOLVE_INTERNAL_H
#include <ares.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "resolve.h"

/* ---- an intrusive circular list (libuv's queue.h idea) ----------------- */

typedef struct tp__rlink {
  struct tp__rlink *prev, *next;
} tp__rlink;

#define TP__RLIST_ENTRY(link, type, member) ((type *)(void *)((char *)(link) - offsetof(type, member)))

static inline void tp__rlist_init(tp__rlink *head) {
  head->prev = head->next = head;
}
static inline bool tp__rlist_empty(const tp__rlink *head) {
  return head->next == head;
}
/* Links n just before at (at == head: append). */
static inline void tp__rlist_insert_before(tp__rlink *at, tp__rlink *n) {
  n->next = at;
  n->prev = at->prev;
  at->prev->next = n;
  at->prev = n;
}
/* Unlinks n and leaves it pointing at itself, so a second remove is harmless. */
static inline void tp__rlist_remove(tp__rlink *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}

/* ---- the resolver ------------------------------------------------------ */

struct tp_resolver {
  uv_loop_t *loop;
  ares_channel channel;      /* NULL once closing */
  uv_timer_t ares_timer;     /* channel.c: when c-ares next has a retry or timeout due */
  uv_timer_t deadline_timer; /* resolve.c: the earliest request deadline */
  uv_idle_t deliver_idle;    /* resolve.c: callbacks never run inside tp_resolve_start */
  tp__rlink socks;           /* channel.c: tp__rsock, one uv_poll_t per c-ares socket */
  tp__rlink deadlines;       /* requests WAITING or ACTIVE, earliest deadline first */
  tp__rlink waiting;         /* requests WAITING for a slot, FIFO */
  tp__rlink done;            /* requests DONE, callbacks to run, FIFO */
  unsigned max_in_flight;
  unsigned max_abandoned;
  unsigned max_waiting;
  unsigned active;    /* c-ares lookups a request waits for */
  unsigned abandoned; /* c-ares lookups whose request was cancelled or timed out */
  unsigned n_waiting;
  unsigned open_handles; /* freed when closing and this reaches 0 */
  bool closing;
  void (*on_closed)(void *data);
  void *closed_data;
};

/* resolve.c: after c-ares ran (a socket event, its timer): start waiting
 * requests on free slots, re-arm c-ares's timer, run due callbacks. Must not
 * be called from inside a c-ares callback. */
void tp__resolve_settle(tp_resolver *r);
/* resolve.c: a handle of r finished closing (the last one frees r). */
void tp__resolve_handle_closed(tp_resolver *r);

/* channel.c: creates r->channel wired to r->loop and inits r->ares_timer. */
tp_err tp__resolve_channel_open(tp_resolver *r, const tp_resolver_options *opt);
/* channel.c: re-arms r->ares_timer from ares_timeout() (stops it when idle). */
void tp__resolve_channel_arm_timer(tp_resolver *r);
/* channel.c: ares_destroy (every lookup's callback runs with
 * ARES_EDESTRUCTION), then closes the socket polls and the timer. */
void tp__resolve_channel_close(tp_resolver *r);

/* addrs.c: c-ares's answer into *res, in RFC 8305 §4 connection order. */
void tp__resolve_fill(tp_resolve_result *res, int ares_status, const struct ares_addrinfo *ai,
                      tp_resolve_family family, uint16_t port);

#endif
