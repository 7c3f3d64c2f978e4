/* json_out.c - JSON string escaping and raw appends over tp_buf. */
#include "json_out.h"

#include <stdarg.h>
#include <stdio.h>

tp_err tp_json_str(tp_buf *out, const char *s) {
  tp_err rc = tp_buf_append(out, "\"", 1);
  const unsigned char *p = (const unsigned char *)s;
  while (rc == TP_E_OK && *p != '\0') {
    /* Copy the longest run that needs no escaping in one append. */
    const unsigned char *run = p;
    while (*p >= 0x20 && *p != '"' && *p != '\\')
      p++;
    if (p > run)
      rc = tp_buf_append(out, run, (size_t)(p - run));
    if (rc != TP_E_OK || *p == '\0')
      break;
    char esc[8];
    int n;
    switch (*p) {
    case '"':
      n = snprintf(esc, sizeof(esc), "\\\"");
      break;
    case '\\':
      n = snprintf(esc, sizeof(esc), "\\\\");
      break;
    case '\n':
      n = snprintf(esc, sizeof(esc), "\\n");
      break;
    case '\r':
      n = snprintf(esc, sizeof(esc), "\\r");
      break;
    case '\t':
      n = snprintf(esc, sizeof(esc), "\\t");
      break;
    default:
      n = snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)*p);
      break;
    }
    if (n < 0)
      return TP_E_INVAL;
    rc = tp_buf_append(out, esc, (size_t)n);
    p++;
  }
  if (rc == TP_E_OK)
    rc = tp_buf_append(out, "\"", 1);
  return rc;
}

tp_err tp_json_str_array(tp_buf *out, char *const *items, size_t n) {
  tp_err rc = tp_buf_append(out, "[", 1);
  for (size_t i = 0; rc == TP_E_OK && i < n; i++) {
    if (i > 0)
      rc = tp_buf_append(out, ",", 1);
    if (rc == TP_E_OK)
      rc = tp_json_str(out, items[i] ? items[i] : "");
  }
  return rc == TP_E_OK ? tp_buf_append(out, "]", 1) : rc;
}

tp_err tp_json_raw(tp_buf *out, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  /* Callers only format numbers and fixed punctuation; anything longer is a bug. */
  if (n < 0 || (size_t)n >= sizeof(small))
    return TP_E_INVAL;
  return tp_buf_append(out, small, (size_t)n);
}
