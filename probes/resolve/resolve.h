/* resolve.h - name resolution on the probe's own libuv loop (c-ares).
 *
 * Why not uv_getaddrinfo: libuv serves every getaddrinfo from its 4-thread
 * pool and a running lookup cannot be cancelled, so four blackholed names
 * stall every other probe of the process. Here each loop has its own resolver
 * whose lookups are non-blocking UDP/TCP exchanges driven by the loop, each
 * request has its own deadline, and a slow name only delays itself.
 *
 * Threads: a resolver belongs to one loop and is used from that loop's thread
 * only. tp_resolve_global_init() is main's job (like gnutls_global_init).
 *
 * Callbacks: a request's callback runs exactly once, from the loop (never
 * inside tp_resolve_start), unless tp_resolve_cancel() was called first. The
 * request is freed when its callback returns: drop your pointer to it there.
 * Inside a callback you may start requests, cancel other requests and close
 * the resolver. */
#ifndef TP_RESOLVE_H
#define TP_RESOLVE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "tp_error.h"

/* At most this many addresses per answer (RFC 8305 clients need a handful;
 * the rest is reported as truncated). */
#define TP_RESOLVE_MAX_ADDRS 16

/* ---- process-wide ------------------------------------------------------ */

/* main only, once, before any resolver exists (c-ares's ares_library_init,
 * with tp_xmalloc's abort-on-OOM policy for c-ares's allocations too). */
tp_err tp_resolve_global_init(void);
/* main only, after every resolver is closed. */
void tp_resolve_global_cleanup(void);

/* ---- families and outcomes --------------------------------------------- */

typedef enum {
  TP_RESOLVE_ANY, /* "both": AAAA and A, interleaved IPv6 first (RFC 8305 §4) */
  TP_RESOLVE_V4,  /* "ipv4": A only */
  TP_RESOLVE_V6,  /* "ipv6": AAAA only */
} tp_resolve_family;

/* "both" / "ipv4" / "ipv6" (the configuration's words). */
const char *tp_resolve_family_name(tp_resolve_family family);
/* Parses one of those words; false (and *out untouched) for anything else. */
bool tp_resolve_family_parse(const char *text, tp_resolve_family *out);

#define TP_RESOLVE_STATUS_MAP(X)                                                              \
  X(OK, "ok")                     /* at least one address */                                 \
  X(NONAME, "no_such_name")       /* NXDOMAIN, or no address of the requested family */      \
  X(TIMEOUT, "timeout")           /* our deadline, or c-ares gave up on every server */      \
  X(CANCELLED, "cancelled")       /* only through tp_resolver_close() */                      \
  X(ERROR, "error")               /* SERVFAIL, REFUSED, bad name, no server reachable, ... */

typedef enum {
#define TP_RESOLVE_STATUS_ENUM(name, text) TP_RESOLVE_##name,
  TP_RESOLVE_STATUS_MAP(TP_RESOLVE_STATUS_ENUM)
#undef TP_RESOLVE_STATUS_ENUM
  TP_RESOLVE__STATUS_COUNT
} tp_resolve_status;

/* Stable snake_case name; "?" out of range. */
const char *tp_resolve_status_name(tp_resolve_status status);

typedef struct {
  struct sockaddr_storage addr; /* port already set */
  socklen_t len;
} tp_resolve_addr;

typedef struct {
  tp_resolve_status status;
  /* What happened, for a result's detail: a static c-ares message
   * (ares_strerror, safe from any thread) or our own; never NULL, valid until
   * the callback returns. Contains no text from the network. */
  const char *message;
  size_t count;   /* addresses in addrs; 0 unless status is OK */
  bool truncated; /* more than TP_RESOLVE_MAX_ADDRS were answered */
  /* Connection order: c-ares's RFC 6724 order within each family, then the
   * families interleaved starting with IPv6 (RFC 8305 §4), duplicates removed. */
  tp_resolve_addr addrs[TP_RESOLVE_MAX_ADDRS];
} tp_resolve_result;

/* ---- IP literals, synchronously ---------------------------------------- */

/* If host is an IPv4 literal (dotted quad only: inet_pton, not "127.1") or an
 * IPv6 literal (optionally "%scope"), fills *out and returns true: status OK
 * with one address, or NONAME when the literal's family was not requested.
 * Returns false, *out untouched, for anything else. No I/O, no loop: the
 * engine calls it first so a literal costs no resolver round trip. */
bool tp_resolve_numeric(const char *host, uint16_t port, tp_resolve_family family,
                        tp_resolve_result *out);

/* ---- the resolver ------------------------------------------------------ */

typedef struct {
  /* NULL: the servers of /etc/resolv.conf. Else "ip[:port],..." as
   * ares_set_servers_ports_csv takes it ("127.0.0.1:5353,[::1]:53"), for
   * tests and operators. Search domains and ndots still come from
   * resolv.conf (and LOCALDOMAIN / RES_OPTIONS). */
  const char *servers;
  /* c-ares's timeout for the first try of a query on one server; each later
   * round over all servers doubles it. 0: 1000 ms. Not the request deadline
   * (tp_resolve_start's timeout_ms), which ends the request regardless. */
  unsigned try_timeout_ms;
  /* Rounds over the server list. 0: 2. With 1 server and the defaults c-ares
   * gives up after 1 s + 2 s = 3 s. */
  unsigned tries;
  /* c-ares lookups at once that a request waits for; further requests wait
   * in FIFO order, and that wait counts against their own deadline. 0: 64. */
  unsigned max_in_flight;
  /* A lookup whose request was cancelled or timed out keeps running inside
   * c-ares (which cannot cancel one query) until c-ares gives up on it
   * (try_timeout_ms and tries): it is "abandoned" and no longer takes a slot,
   * so a blackholed name costs other requests nothing. Only a flood of them
   * meets this safety valve: no lookup starts while max_abandoned are
   * abandoned. 0: 1024 (a few hundred bytes each inside c-ares). */
  unsigned max_abandoned;
  /* Requests waiting for a slot; beyond, tp_resolve_start says TP_E_FULL.
   * 0: 1024. */
  unsigned max_waiting;
} tp_resolver_options;

typedef struct tp_resolver tp_resolver;
typedef struct tp_resolve_req tp_resolve_req;

/* result is only valid during the call; copy the addresses you keep. */
typedef void (*tp_resolve_cb)(const tp_resolve_result *result, void *data);

/* opt NULL: all defaults. TP_E_CONFIG: servers unparseable; TP_E_IO: c-ares
 * could not initialise (its configuration files). The resolver must be closed
 * with tp_resolver_close() before the loop is closed. */
tp_err tp_resolver_new(uv_loop_t *loop, const tp_resolver_options *opt, tp_resolver **out);

/* Starts resolving host for port. timeout_ms (1 ms .. 24 h) is this request's own
 * deadline, counted from now, waiting for a slot included; when it passes the
 * callback gets TIMEOUT while every other request carries on. IP literals are
 * answered without c-ares, through the callback as well (deferred to the
 * loop); use tp_resolve_numeric() first to skip the loop round.
 * *out (may be NULL if you never cancel) is valid until the callback returns
 * or tp_resolve_cancel(). TP_E_INVAL: bad arguments, empty or over-long host,
 * or the resolver is closing; TP_E_FULL: max_waiting requests are waiting.
 * On error no callback will come. */
tp_err tp_resolve_start(tp_resolver *r, const char *host, uint16_t port, tp_resolve_family family,
                        uint64_t timeout_ms, tp_resolve_cb cb, void *data, tp_resolve_req **out);

/* Cancels a request whose callback has not run yet: the callback is
 * guaranteed not to run, and req is freed before this returns. (Its c-ares
 * lookup, if one is running, is abandoned: its answer will be ignored.)
 * From the request's own callback it does nothing; after that callback
 * returned, req is freed and must not be passed here. */
void tp_resolve_cancel(tp_resolve_req *req);

typedef struct {
  unsigned active;    /* c-ares lookups with a request waiting for them */
  unsigned abandoned; /* c-ares lookups nobody waits for any more (cancelled, timed out) */
  unsigned waiting;   /* requests waiting for a slot */
} tp_resolver_stats;

void tp_resolver_get_stats(const tp_resolver *r, tp_resolver_stats *out);

/* Closes the resolver: every request whose callback has not run gets it with
 * CANCELLED, from the loop, after this returns (once the handles are
 * closed); then the resolver is freed and on_closed(data) runs (on_closed
 * may be NULL). Until then tp_resolve_start() on r says TP_E_INVAL and
 * tp_resolve_cancel() still works; after on_closed, r is gone. */
void tp_resolver_close(tp_resolver *r, void (*on_closed)(void *data), void *data);

#endif
