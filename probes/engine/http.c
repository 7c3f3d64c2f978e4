/* http.c - request formatting and status line / header parsing. */
#include "http.h"

#include <string.h>
#include <strings.h>

#include "tp_mem.h"

/* No "Connection: close": only the response head is read and then the probe
 * closes. Asking the server to close first races a 0-RTT handshake -- nginx
 * answers early data and closes before our EndOfEarlyData/Finished arrive,
 * which the client then sees as a reset. */
char *tp_http_build_request(const char *method, const char *path, const char *host) {
  return tp_xasprintf("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlsprobe\r\nAccept: */*\r\n\r\n",
                      method, path, host);
}

/* "HTTP/1.1 200 OK" -> 200; 0 if not a status line. */
static unsigned parse_status_line(const char *line, size_t len) {
  if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ')
    return 0;
  unsigned status = 0;
  for (int i = 9; i < 12; i++) {
    if (line[i] < '0' || line[i] > '9')
      return 0;
    status = status * 10 + (unsigned)(line[i] - '0');
  }
  if (len > 12 && line[12] != ' ')
    return 0;
  return status >= 100 ? status : 0;
}

int tp_http_parse_head(const tp_buf *head, tp_http_response *out) {
  out->status = 0;
  out->hsts = false;
  out->complete = false;
  if (head->len == 0)
    return 1;
  const char *data = (const char *)head->data;
  const char *end = data + head->len;
  const char *eol = memchr(data, '\n', head->len);
  if (eol == NULL) { /* a prefix of "HTTP/1." may still become a status line */
    size_t n = head->len < 7 ? head->len : 7;
    return memcmp(data, "HTTP/1.", n) == 0 ? 1 : -1;
  }
  size_t line_len = (size_t)(eol - data);
  if (line_len > 0 && data[line_len - 1] == '\r')
    line_len--;
  out->status = parse_status_line(data, line_len);
  if (out->status == 0)
    return -1;
  for (const char *line = eol + 1; line < end;) {
    const char *next = memchr(line, '\n', (size_t)(end - line));
    if (next == NULL)
      return 1;
    size_t len = (size_t)(next - line);
    if (len > 0 && line[len - 1] == '\r')
      len--;
    if (len == 0) {
      out->complete = true;
      return 0;
    }
    static const char hsts[] = "strict-transport-security:";
    if (len >= sizeof(hsts) - 1 && strncasecmp(line, hsts, sizeof(hsts) - 1) == 0)
      out->hsts = true;
    line = next + 1;
  }
  return 1;
}
