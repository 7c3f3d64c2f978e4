/* http_request.h - parses one HTTP/1.x request head (RFC 9112 §2-§5) for the
 * agent's metrics responder (metrics_server.c). The bytes come from whoever can
 * reach the port, so the parser is a pure function over a bounded buffer: it never
 * reads past len, never allocates, and refuses what RFC 9112 says a server must
 * or may refuse rather than guessing (a bare CR, whitespace before a header's
 * colon, obsolete line folding, control characters, an HTTP/1.1 request without
 * exactly one Host). A body is never read: the responder answers and closes.
 * Fuzzed by tests/fuzz/fuzz_http_request.c. */
#ifndef TP_HTTP_REQUEST_H
#define TP_HTTP_REQUEST_H
#include <stddef.h>
#include <stdint.h>

/* The head the responder buffers at most; a longer one is answered 431. */
#define TP_HTTP_REQUEST_MAX_HEAD 8192
#define TP_HTTP_REQUEST_MAX_HEADERS 100
#define TP_HTTP_REQUEST_MAX_METHOD 16

typedef enum {
  TP_HTTP_REQUEST_INCOMPLETE, /* no empty line yet: read more (within the cap) */
  TP_HTTP_REQUEST_OK,
  TP_HTTP_REQUEST_BAD, /* answer 400; why says what */
  TP_HTTP_REQUEST_VERSION, /* not HTTP/1.0 or HTTP/1.1: answer 505 */
} tp_http_request_status;

/* Slices of the caller's buffer, valid while it is. */
typedef struct tp_http_request {
  const char *method;
  size_t method_len;
  const char *target; /* the request-target as sent */
  size_t target_len;
  size_t path_len;        /* target up to '?' (origin-form path) */
  unsigned version_minor; /* HTTP/1.<minor>: 0 or 1 */
  size_t n_headers;
  size_t head_len; /* bytes up to and including the empty line */
  const char *why; /* a static reason when BAD or VERSION */
} tp_http_request;

tp_http_request_status tp_http_request_parse(const uint8_t *data, size_t len,
                                             tp_http_request *out);

#endif
