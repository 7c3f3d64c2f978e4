/* http_server.h - the collector's HTTP(S) front end (libmicrohttpd):
 *
 *   POST /v1/results  body: ResultBatch (application/x-protobuf) -> ingest.c
 *   GET  /healthz     "ok\n" (no credentials needed)
 *
 * One internal MHD thread serves every connection; complete bodies go to the ingest
 * queue (ingest_queue.h: decoding workers, one writer thread that is the store's
 * only user, group commit), and the connection waits suspended for its answer. The
 * listening socket is bound here, not by MHD, so a port in use is reported with its
 * errno and `listen: ...:0` can report the port the kernel chose -- and binding is a
 * step of its own (tp_http_server_new) so serve can claim the port before it touches
 * the database.
 *
 * What a hostile client can cost is bounded: connections in total and per address,
 * an idle timeout, a deadline for the request head and one for the whole request (a
 * watchdog thread shuts down connections past them: slowloris), bytes buffered for
 * bodies across all connections (503 beyond), requests per agent per second (429 +
 * Retry-After), and the decode budget (ingest.c). Allocation failure answers 503. */
#ifndef TP_HTTP_SERVER_H
#define TP_HTTP_SERVER_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "listen_addr.h"
#include "metrics.h"
#include "store.h"
#include "tls_server.h"
#include "tp_error.h"
#include "tp_log.h"

typedef struct tp_http_server tp_http_server;

/* Zero values are the defaults in brackets, so {.listen, .max_body_bytes} is a
 * plaintext server that accepts anyone, without a time window or rate limit (the
 * agent's unit tests use that). */
typedef struct tp_http_options {
  const tp_listen_addr *listen;
  size_t max_body_bytes;         /* bigger bodies get 413 */
  unsigned connection_limit;     /* [256] */
  unsigned per_ip_limit;         /* [no limit] */
  unsigned connection_timeout_s; /* idle timeout [10] */
  uint64_t header_timeout_ms;    /* request head complete within [10 s] */
  uint64_t request_timeout_ms;   /* whole request within [60 s] */
  uint64_t max_buffered_bytes;   /* bodies in memory, all connections [64 MiB] */
  unsigned agent_rate;           /* requests per second per agent [no limit] */
  unsigned agent_burst;          /* [2 x agent_rate] */
  uint64_t max_result_age_ms;    /* time window; 0 = none */
  uint64_t max_clock_skew_ms;
  tp_tls_server *tls; /* HTTPS when set [plaintext]; borrowed */
  tp_auth *auth;      /* agent credentials [anyone]; borrowed */
  tp_metrics *metrics; /* counts answers and stored results [none]; borrowed */
  unsigned ingest_workers;     /* decoding threads [the CPUs] */
  unsigned ingest_max_pending; /* requests in the ingest queue; 503 beyond [1024] */
  atomic_uint *ingest_pending; /* tp_ingest_queue_options.pending_gauge [none]; borrowed */
} tp_http_options;

/* Binds and listens (no thread yet). TP_E_IO with err set when the address is taken. */
tp_err tp_http_server_new(const tp_http_options *options, const tp_log *log,
                          tp_http_server **out, char *err, size_t errlen);
/* Starts serving with store (from now on used by the ingest queue's writer thread
 * only, until the server is stopped). The server borrows store, log, tls and auth: all
 * must outlive it. TP_E_HTTP with err set when libmicrohttpd refuses. */
tp_err tp_http_server_run(tp_http_server *server, tp_store *store, char *err, size_t errlen);
/* new + run. */
tp_err tp_http_server_start(const tp_http_options *options, tp_store *store, const tp_log *log,
                            tp_http_server **out, char *err, size_t errlen);
/* The bound port (the kernel's choice when the configured port was 0). */
uint16_t tp_http_server_port(const tp_http_server *server);
/* Stops serving (in-flight requests are completed or dropped) and frees the server. */
void tp_http_server_stop(tp_http_server *server);

#endif
