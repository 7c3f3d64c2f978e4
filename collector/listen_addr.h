/* listen_addr.h - parses the collector's `listen:` value ("127.0.0.1:8470",
 * "[::1]:8470") into a socket address. Only numeric literals are accepted: a
 * collector must bind exactly where the operator said, not where DNS points. */
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

#endif
