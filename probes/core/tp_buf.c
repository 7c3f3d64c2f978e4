/* tp_buf.c - bounded growable buffer. */
#include "tp_buf.h"

#include <stdlib.h>
#include <string.h>

#include "tp_mem.h"

void tp_buf_init(tp_buf *buf, size_t cap) {
  buf->data = NULL;
  buf->len = 0;
  buf->alloc = 0;
  buf->cap = cap;
}

tp_err tp_buf_append(tp_buf *buf, const void *data, size_t len) {
  if (len > buf->cap || buf->len > buf->cap - len)
    return TP_E_TOOBIG;
  size_t need = buf->len + len + 1; /* +1 keeps a terminating NUL */
  if (need > buf->alloc) {
    size_t alloc = buf->alloc ? buf->alloc : 256;
    while (alloc < need)
      alloc *= 2;
    buf->data = tp_xrealloc(buf->data, alloc);
    buf->alloc = alloc;
  }
  if (len > 0)
    memcpy(buf->data + buf->len, data, len);
  buf->len += len;
  buf->data[buf->len] = '\0';
  return TP_E_OK;
}

void tp_buf_reset(tp_buf *buf) {
  buf->len = 0;
  if (buf->data != NULL)
    buf->data[0] = '\0';
}

void tp_buf_free(tp_buf *buf) {
  free(buf->data);
  tp_buf_init(buf, buf->cap);
}
