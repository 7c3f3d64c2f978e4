/* http_server.h - the collector's HTTP front end (libmicrohttpd):
 *
 *   POST /v1/results  body: ResultBatch (application/x-protobuf) -> ingest.c
 *   GET  /healthz     "ok\n"
 *
 * One internal MHD thread serves every connection, so the store is only ever used
 * from that thread (SQLite connections must not be shared unsynchronized). The
 * listening socket is bound here, not by MHD, so a port in use is reported with its
 * errno and `listen: ...:0` can report the port the kernel chose. */
#ifndef TP_HTTP_SERVER_H
#define TP_HTTP_SERVER_H
#include <stddef.h>
#include <stdint.h>

#include "listen_addr.h"
#include "store.h"
#include "tp_error.h"
#include "tp_log.h"

typedef struct tp_http_server tp_http_server;

typedef struct tp_http_options {
  const tp_listen_addr *listen;
  size_t max_body_bytes;         /* bigger bodies get 413 */
  unsigned connection_limit;     /* 0 = default (256) */
  unsigned connection_timeout_s; /* idle timeout; 0 = default (30) */
} tp_http_options;

/* Binds, listens and starts serving. The server borrows store and log: both must
 * outlive it. On failure returns TP_E_IO (bind/listen) or TP_E_HTTP with err set. */
tp_err tp_http_server_start(const tp_http_options *options, tp_store *store, const tp_log *log,
                            tp_http_server **out, char *err, size_t errlen);
/* The bound port (the kernel's choice when the configured port was 0). */
uint16_t tp_http_server_port(const tp_http_server *server);
/* Stops serving (in-flight requests are completed or dropped) and frees the server. */
void tp_http_server_stop(tp_http_server *server);

#endif
