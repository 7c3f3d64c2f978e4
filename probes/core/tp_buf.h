/* tp_buf.h - a growable byte buffer with a hard cap (curl's dynbuf idea).
 * Every byte that comes from the network is accumulated through one of these,
 * so an over-long body or header is an error (TP_E_TOOBIG), never an unbounded
 * allocation. The struct is public so it can be embedded; treat fields as
 * read-only outside tp_buf.c. */
#ifndef TP_BUF_H
#define TP_BUF_H
#include <stddef.h>
#include <stdint.h>

#include "tp_error.h"

typedef struct tp_buf {
  uint8_t *data; /* NUL-terminated when len > 0, for convenience */
  size_t len;
  size_t alloc;
  size_t cap; /* maximum len */
} tp_buf;

void tp_buf_init(tp_buf *buf, size_t cap);
/* Appends; TP_E_TOOBIG (buffer unchanged) when len would exceed cap. */
tp_err tp_buf_append(tp_buf *buf, const void *data, size_t len);
void tp_buf_reset(tp_buf *buf);
void tp_buf_free(tp_buf *buf);

#endif
