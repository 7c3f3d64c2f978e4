/* listen_addr.c - "host:port" / "[v6]:port" parsing with inet_pton and a fully
 * checked port (no atoi: "80x", "-1" and "99999" must all be errors), and binding
 * the parsed address. */
#include "listen_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static tp_err parse_port(const char *text, uint16_t *out) {
  uint32_t value = 0;
  if (*text == '\0')
    return TP_E_INVAL;
  for (const char *p = text; *p != '\0'; p++) {
    if (*p < '0' || *p > '9')
      return TP_E_INVAL;
    value = value * 10 + (uint32_t)(*p - '0');
    if (value > 65535)
      return TP_E_INVAL;
  }
  *out = (uint16_t)value;
  return TP_E_OK;
}

/* Splits text into host and port strings; brackets are required around IPv6
 * literals because the port separator is also the v6 group separator. */
static tp_err split_host_port(const char *text, char *host, size_t hostlen, const char **port) {
  const char *colon;
  const char *start = text;
  size_t n;
  if (*text == '[') {
    const char *close = strchr(text, ']');
    if (close == NULL || close[1] != ':')
      return TP_E_INVAL;
    start = text + 1;
    n = (size_t)(close - start);
    colon = close + 1;
  } else {
    colon = strrchr(text, ':');
    if (colon == NULL)
      return TP_E_INVAL;
    n = (size_t)(colon - text);
  }
  if (n == 0 || n >= hostlen)
    return TP_E_INVAL;
  memcpy(host, start, n);
  host[n] = '\0';
  *port = colon + 1;
  return TP_E_OK;
}

tp_err tp_listen_addr_parse(const char *text, tp_listen_addr *out, char *err, size_t errlen) {
  const char *port_text = NULL;
  memset(out, 0, sizeof(*out));
  if (text == NULL || split_host_port(text, out->host, sizeof(out->host), &port_text) != TP_E_OK) {
    snprintf(err, errlen, "\"%s\" is not ADDRESS:PORT (e.g. 127.0.0.1:8470 or [::1]:8470)",
             text ? text : "");
    return TP_E_INVAL;
  }
  if (parse_port(port_text, &out->port) != TP_E_OK) {
    snprintf(err, errlen, "port \"%s\" is not a number in 0..65535", port_text);
    return TP_E_INVAL;
  }
  struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
  if (text[0] != '[' && inet_pton(AF_INET, out->host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(out->port);
    out->len = sizeof(*v4);
    return TP_E_OK;
  }
  if (text[0] == '[' && inet_pton(AF_INET6, out->host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(out->port);
    out->len = sizeof(*v6);
    return TP_E_OK;
  }
  snprintf(err, errlen, "\"%s\" is not a numeric IPv4 address or a bracketed IPv6 address",
           out->host);
  return TP_E_INVAL;
}

tp_err tp_listen_addr_bind(const tp_listen_addr *addr, int backlog, int *fd_out, uint16_t *port_out,
                           char *err, size_t errlen) {
  int one = 1;
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof(bound);
  const char *what = "socket";
  int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    goto fail;
  what = "setsockopt";
  /* REUSEADDR: a restart must not wait out TIME_WAIT; a live listener still
   * makes bind fail with EADDRINUSE. */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    goto fail;
  if (addr->ss.ss_family == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
    goto fail;
  what = "bind";
  if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0)
    goto fail;
  what = "listen";
  if (listen(fd, backlog) != 0)
    goto fail;
  what = "getsockname";
  if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0)
    goto fail;
  *port_out = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  *fd_out = fd;
  return TP_E_OK;
fail:
  snprintf(err, errlen, "cannot listen on %s%s%s:%u: %s: %s",
           addr->ss.ss_family == AF_INET6 ? "[" : "", addr->host,
           addr->ss.ss_family == AF_INET6 ? "]" : "", addr->port, what, strerror(errno));
  if (fd >= 0)
    close(fd);
  return TP_E_IO;
}
