/* listen_addr.h - parses a `listen:` value ("127.0.0.1:8470", "[::1]:8470": the
 * collector's listeners, the agent's metrics port) into a socket address and binds
 * it. Only numeric literals are accepted: a server must bind exactly where the
 * operator said, not where DNS points. Binding is ours, not the HTTP library's, so
 * a port in use is reported with its errno and port 0 can report the kernel's choice. */
#ifndef TP_LISTEN_ADDR_H
#define TP_LISTEN_ADDR_H
#include <stdint.h>
#include <sys/socket.h>

#include "tp_error.h"

typedef struct tp_listen_addr {
  struct sockaddr_storage ss;
  socklen_t len;
  char host[64]; /* the literal without brackets, for logs */
  uint16_t port; /* 0 = let the kernel choose */
} tp_listen_addr;

/* TP_E_INVAL with a reason in err (what is wrong, not where: the caller knows
 * the file position). */
tp_err tp_listen_addr_parse(const char *text, tp_listen_addr *out, char *err, size_t errlen);
/* A non-blocking, close-on-exec listening TCP socket on addr (SO_REUSEADDR; IPv6
 * sockets are v6-only) and the port it got. TP_E_IO with "cannot listen on ADDR:
 * STEP: ERRNO" in err. */
tp_err tp_listen_addr_bind(const tp_listen_addr *addr, int backlog, int *fd_out, uint16_t *port_out,
                           char *err, size_t errlen);

#endif
