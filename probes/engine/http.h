/* http.h - the one HTTP/1.1 exchange a probe may make after its handshake,
 * over its own TLS session (libcurl cannot carry a client profile). Not an
 * HTTP client: one request, the status line and headers read into a bounded
 * buffer, the body ignored; the probe closes the connection afterwards. */
#ifndef TP_HTTP_H
#define TP_HTTP_H
#include <stdbool.h>
#include <stddef.h>

#include "tp_buf.h"

#define TP_HTTP_MAX_HEADER_BYTES 16384

/* Formats the request into a new string (caller frees). */
char *tp_http_build_request(const char *method, const char *path, const char *host);

typedef struct tp_http_response {
  unsigned status; /* 0 until a valid status line was seen */
  bool hsts;       /* Strict-Transport-Security present */
  bool complete;   /* the header block ended */
} tp_http_response;

/* Parses what has been received so far. Returns 0 when `head` holds a full
 * header block (or enough for a verdict), 1 when more bytes are needed, -1
 * when the bytes are not an HTTP/1.x response. */
int tp_http_parse_head(const tp_buf *head, tp_http_response *out);

#endif
