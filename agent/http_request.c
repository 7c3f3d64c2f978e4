/* http_request.c - request-line and header-field syntax of RFC 9112 §2-§5, over
 * a bounded buffer (see http_request.h). Lines end with LF, optionally preceded
 * by CR (§2.2 lets a recipient accept a bare LF); any other CR is refused. */
#include "http_request.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

typedef struct line {
  size_t start, end; /* content, without CR LF */
} line;

typedef enum { LINE_OK, LINE_MORE, LINE_BAD } line_status;

/* The line starting at *pos; *pos moves past its LF. */
static line_status next_line(const uint8_t *data, size_t len, size_t *pos, line *out) {
  for (size_t i = *pos; i < len; i++) {
    if (data[i] == '\n') {
      out->start = *pos;
      out->end = i > *pos && data[i - 1] == '\r' ? i - 1 : i;
      *pos = i + 1;
      return LINE_OK;
    }
    /* A CR not followed by LF: invalid (§2.2). One at the very end may be the first
     * half of a CR LF still to come. */
    if (data[i] == '\r' && i + 1 < len && data[i + 1] != '\n')
      return LINE_BAD;
  }
  return LINE_MORE;
}

/* RFC 9110 §5.6.2 token characters. */
static bool is_tchar(uint8_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static tp_http_request_status bad(tp_http_request *out, const char *why) {
  out->why = why;
  return TP_HTTP_REQUEST_BAD;
}

/* method SP request-target SP HTTP-version (§3). */
static tp_http_request_status request_line(const uint8_t *data, line l, tp_http_request *out) {
  size_t i = l.start;
  while (i < l.end && is_tchar(data[i]))
    i++;
  out->method = (const char *)data + l.start;
  out->method_len = i - l.start;
  if (out->method_len == 0 || out->method_len > TP_HTTP_REQUEST_MAX_METHOD)
    return bad(out, "bad method");
  if (i >= l.end || data[i] != ' ')
    return bad(out, "bad request line");
  size_t t = ++i;
  while (i < l.end && data[i] > 0x20 && data[i] < 0x7F)
    i++;
  out->target = (const char *)data + t;
  out->target_len = i - t;
  if (out->target_len == 0 || i >= l.end || data[i] != ' ')
    return bad(out, "bad request target");
  const void *query = memchr(out->target, '?', out->target_len);
  out->path_len = query ? (size_t)((const char *)query - out->target) : out->target_len;
  i++;
  size_t vlen = l.end - i;
  const char *v = (const char *)data + i;
  if (vlen == 8 && memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '0' || v[7] == '1')) {
    out->version_minor = (unsigned)(v[7] - '0');
    return TP_HTTP_REQUEST_OK;
  }
  if (vlen == 8 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
      v[7] >= '0' && v[7] <= '9') {
    out->why = "HTTP version not supported (HTTP/1.0 and HTTP/1.1 only)";
    return TP_HTTP_REQUEST_VERSION;
  }
  return bad(out, "bad HTTP version");
}

/* field-name ":" OWS field-value OWS (§5); *is_host when the name is Host. */
static tp_http_request_status header_line(const uint8_t *data, line l, tp_http_request *out,
                                          bool *is_host) {
  size_t i = l.start;
  if (data[i] == ' ' || data[i] == '\t')
    return bad(out, "obsolete line folding"); /* §5.2: may be refused */
  while (i < l.end && is_tchar(data[i]))
    i++;
  if (i == l.start)
    return bad(out, "bad header name");
  if (i >= l.end || data[i] != ':')
    /* §5.1: whitespace between name and colon MUST be refused (smuggling). */
    return bad(out, data[i] == ' ' || data[i] == '\t' ? "whitespace before a header's colon"
                                                     : "bad header name");
  *is_host = i - l.start == 4 && strncasecmp((const char *)data + l.start, "host", 4) == 0;
  for (i++; i < l.end; i++) {
    uint8_t c = data[i];
    if (c < 0x20 ? c != '\t' : c == 0x7F)
      return bad(out, "control character in a header value");
  }
  return TP_HTTP_REQUEST_OK;
}

tp_http_request_status tp_http_request_parse(const uint8_t *data, size_t len,
                                             tp_http_request *out) {
  memset(out, 0, sizeof(*out));
  size_t pos = 0;
  /* §2.2: empty lines before the request-line are ignored. */
  while (pos < len && (data[pos] == '\n' || (data[pos] == '\r' && pos + 1 < len &&
                                              data[pos + 1] == '\n')))
    pos += data[pos] == '\r' ? 2 : 1;
  line l;
  line_status ls = next_line(data, len, &pos, &l);
  if (ls != LINE_OK)
    return ls == LINE_BAD ? bad(out, "bare CR") : TP_HTTP_REQUEST_INCOMPLETE;
  tp_http_request_status st = request_line(data, l, out);
  if (st != TP_HTTP_REQUEST_OK)
    return st;
  unsigned hosts = 0;
  for (;;) {
    ls = next_line(data, len, &pos, &l);
    if (ls == LINE_BAD)
      return bad(out, "bare CR");
    if (ls == LINE_MORE)
      return TP_HTTP_REQUEST_INCOMPLETE;
    if (l.start == l.end)
      break; /* the empty line: end of the head */
    if (++out->n_headers > TP_HTTP_REQUEST_MAX_HEADERS)
      return bad(out, "too many header fields");
    bool is_host = false;
    st = header_line(data, l, out, &is_host);
    if (st != TP_HTTP_REQUEST_OK)
      return st;
    hosts += is_host;
  }
  /* RFC 9112 §3.2: a 1.1 request without Host, or with more than one, gets 400. */
  if (hosts > 1 || (out->version_minor == 1 && hosts == 0))
    return bad(out, hosts > 1 ? "more than one Host" : "HTTP/1.1 request without Host");
  out->head_len = pos;
  return TP_HTTP_REQUEST_OK;
}
