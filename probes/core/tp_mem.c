/* tp_mem.c - abort-on-failure allocation helpers (see tp_mem.h for why). */
#include "tp_mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t size) {
  fprintf(stderr, "tlsprobe: out of memory allocating %zu bytes\n", size);
  abort();
}

void *tp_xmalloc(size_t size) {
  void *p = malloc(size ? size : 1);
  if (p == NULL)
    out_of_memory(size);
  return p;
}

void *tp_xcalloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (p == NULL)
    out_of_memory(count * size);
  return p;
}

void *tp_xrealloc(void *ptr, size_t size) {
  void *p = realloc(ptr, size ? size : 1);
  if (p == NULL)
    out_of_memory(size);
  return p;
}

char *tp_xstrdup(const char *s) {
  return tp_xstrndup(s, strlen(s));
}

char *tp_xstrndup(const char *s, size_t n) {
  char *p = tp_xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *tp_xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (len < 0)
    abort(); /* only an invalid format string gets here */
  char *p = tp_xmalloc((size_t)len + 1);
  va_start(ap, fmt);
  vsnprintf(p, (size_t)len + 1, fmt, ap);
  va_end(ap);
  return p;
}

char *tp_xstrdup_or_null(const char *s) {
  return s != NULL ? tp_xstrdup(s) : NULL;
}
