/* tp_text.c - see tp_text.h. One pass: decode a UTF-8 sequence, copy it if it is
 * printable, else write its escape; stop before the output would exceed the
 * budget left for the cut mark. */
#include "tp_text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_mem.h"

size_t tp_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char c = s[0];
  size_t extra;
  uint32_t v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    extra = 1;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    extra = 2;
    v = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    extra = 3;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (n <= extra)
    return 0;
  for (size_t k = 1; k <= extra; k++) {
    if ((s[k] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (s[k] & 0x3F);
  }
  if ((extra == 2 && v < 0x800) || (extra == 3 && (v < 0x10000 || v > 0x10FFFF)) ||
      (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return extra + 1;
}

static bool is_control(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* The output form of the sequence at s: a copy or an escape. Returns its length
 * (written to out, which has room for 8 bytes) and the input bytes consumed. */
static size_t render(const unsigned char *s, size_t n, char out[8], size_t *consumed) {
  uint32_t cp = 0;
  size_t len = tp_utf8_seq(s, n, &cp);
  if (len == 0) { /* an invalid byte: show it, resynchronise on the next */
    *consumed = 1;
    return (size_t)snprintf(out, 8, "\\x%02X", s[0]);
  }
  *consumed = len;
  if (is_control(cp))
    return (size_t)snprintf(out, 8, cp < 0x80 ? "\\x%02X" : "\\u%04X", (unsigned)cp);
  memcpy(out, s, len);
  return len;
}

bool tp_text_fits(const char *s, size_t n, size_t max) {
  if (n > max)
    return false;
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    uint32_t cp = 0;
    size_t len = tp_utf8_seq(u + i, n - i, &cp);
    if (len == 0 || is_control(cp))
      return false;
    i += len;
  }
  return true;
}

char *tp_text_fit(const char *s, size_t n, size_t max) {
  if (tp_text_fits(s, n, max))
    return tp_xstrndup(s, n);
  const size_t mark = sizeof(TP_TEXT_CUT_MARK) - 1;
  char *out = tp_xmalloc(max + 1);
  const unsigned char *u = (const unsigned char *)s;
  size_t used = 0, i = 0;
  bool cut = false;
  while (i < n) {
    char piece[8];
    size_t consumed = 0;
    size_t len = render(u + i, n - i, piece, &consumed);
    /* The mark must still fit if anything after this piece has to go. */
    size_t budget = i + consumed < n ? max - mark : max;
    if (used + len > budget) {
      cut = true;
      break;
    }
    memcpy(out + used, piece, len);
    used += len;
    i += consumed;
  }
  if (cut) {
    memcpy(out + used, TP_TEXT_CUT_MARK, mark);
    used += mark;
  }
  out[used] = '\0';
  return out;
}

char *tp_text_fit_str(const char *s, size_t max) {
  return s != NULL ? tp_text_fit(s, strlen(s), max) : NULL;
}

char *tp_text_refit(char *s, size_t max) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s);
  if (tp_text_fits(s, n, max))
    return s;
  char *fitted = tp_text_fit(s, n, max);
  free(s);
  return fitted;
}
