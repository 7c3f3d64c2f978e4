/* metrics_server.h - the agent's GET /metrics responder: a tiny HTTP/1.x server on
 * the agent's main libuv loop (`metrics: {listen: ...}`).
 *
 * Why not libcurl or libmicrohttpd: libcurl is a client; libmicrohttpd would add a
 * thread of its own, and every number it served would then have to be
 * thread-safe, while on the main loop the spool, the pusher and the counters are
 * read where they live. The probe engine links no HTTP code either way: this is
 * tp_agent's.
 *
 * What one client can cost is bounded: a request head of at most
 * TP_HTTP_REQUEST_MAX_HEAD bytes (431 beyond) complete within
 * TP_AGENT_METRICS_HEAD_TIMEOUT_MS of connecting (slowloris), at most
 * TP_AGENT_METRICS_MAX_CONNECTIONS at once (more are closed as they arrive: they
 * fit in fd_budget.h's spare descriptors), one request per connection (answered,
 * then the connection is closed), no body ever read. Answers: 200 for GET/HEAD
 * /metrics, 404 for other paths, 405 for other methods, 400/431/505 for heads the
 * parser refuses (http_request.h). */
#ifndef TP_AGENT_METRICS_SERVER_H
#define TP_AGENT_METRICS_SERVER_H
#include <stdint.h>
#include <uv.h>

#include "listen_addr.h"
#include "tp_buf.h"
#include "tp_error.h"
#include "tp_log.h"

#define TP_AGENT_METRICS_MAX_CONNECTIONS 4
#define TP_AGENT_METRICS_HEAD_TIMEOUT_MS 5000
#define TP_AGENT_METRICS_LINGER_MS 1000 /* after the answer: wait for the client's FIN */
#define TP_AGENT_METRICS_MAX_BYTES ((size_t)16 * 1024 * 1024)

typedef struct tp_agent_metrics_server tp_agent_metrics_server;

/* Renders the exposition into out (appending); called on the loop for each scrape. */
typedef tp_err (*tp_agent_metrics_render_fn)(tp_buf *out, void *data);

/* Binds listen and serves on loop until tp_agent_metrics_server_close. TP_E_IO with
 * err set when the address is taken or libuv refuses the socket. */
tp_err tp_agent_metrics_server_start(uv_loop_t *loop, const tp_listen_addr *listen,
                                     tp_agent_metrics_render_fn render, void *data,
                                     const tp_log *log, tp_agent_metrics_server **out, char *err,
                                     size_t errlen);
uint16_t tp_agent_metrics_server_port(const tp_agent_metrics_server *server);
/* Closes the listener and every connection; freed in the last close callback. */
void tp_agent_metrics_server_close(tp_agent_metrics_server *server);

#endif
