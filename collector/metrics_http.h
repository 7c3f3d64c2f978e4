/* metrics_http.h - the collector's metrics listener (`metrics: {listen: ...}`):
 *
 *   GET /metrics   the registry (metrics.c) in the Prometheus text format 0.0.4
 *   GET /healthz   "ok\n"
 *
 * A listener of its own, plaintext, on its own libmicrohttpd thread: the ingest
 * listener is HTTPS with agent credentials, and target names are not for whoever
 * can reach it, so the scrape address is a separate decision (loopback by default;
 * put it behind the network's own controls). The registry is shared with the
 * ingest thread under its own mutex; nothing else is (no store, no credentials).
 * Bounded: a few connections at once, an idle timeout, and a cap on the rendered
 * text. Like the ingest listener, the socket is bound first (tp_metrics_server_new)
 * so a port in use fails before the database is touched. */
#ifndef TP_METRICS_HTTP_H
#define TP_METRICS_HTTP_H
#include <stddef.h>
#include <stdint.h>

#include "listen_addr.h"
#include "metrics.h"
#include "tp_error.h"
#include "tp_log.h"

typedef struct tp_metrics_server tp_metrics_server;

#define TP_METRICS_SERVER_CONNECTIONS 16
#define TP_METRICS_SERVER_TIMEOUT_S 10
/* Rendered text at most (50,000 label sets of long names fit). */
#define TP_METRICS_SERVER_MAX_BYTES ((size_t)256 * 1024 * 1024)

/* Binds and listens. TP_E_IO with err set when the address is taken. */
tp_err tp_metrics_server_new(const tp_listen_addr *listen, const tp_log *log,
                             tp_metrics_server **out, char *err, size_t errlen);
/* Starts serving metrics (borrowed: must outlive the server). TP_E_HTTP with err. */
tp_err tp_metrics_server_run(tp_metrics_server *server, tp_metrics *metrics, char *err,
                             size_t errlen);
uint16_t tp_metrics_server_port(const tp_metrics_server *server);
/* Stops serving (joins the thread) and frees the server; NULL is a no-op. */
void tp_metrics_server_stop(tp_metrics_server *server);

#endif
