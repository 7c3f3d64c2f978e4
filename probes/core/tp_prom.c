/* tp_prom.c - the text exposition format's syntax (see tp_prom.h). */
#include "tp_prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

void tp_prom_begin(tp_prom_writer *w, tp_buf *out) {
  w->out = out;
  w->err = TP_E_OK;
}

tp_err tp_prom_end(const tp_prom_writer *w) {
  return w->err;
}

static void put(tp_prom_writer *w, const void *data, size_t len) {
  if (w->err == TP_E_OK)
    w->err = tp_buf_append(w->out, data, len);
}

static void puts_(tp_prom_writer *w, const char *s) {
  put(w, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 if there is none. */
static size_t utf8_len(const unsigned char *p) {
  unsigned char c = p[0];
  if (c < 0x80)
    return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0; /* overlong */
    if (c == 0xED)
      hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90; /* overlong */
    if (c == 0xF4)
      hi = 0x8F; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (p[1] < lo || p[1] > hi)
    return 0; /* also stops at the NUL terminator */
  for (size_t i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xBF)
      return 0;
  return n;
}

void tp_prom_escape_label(tp_prom_writer *w, const char *value) {
  const unsigned char *p = (const unsigned char *)value;
  const unsigned char *run = p; /* bytes copied as they are, in one append */
  while (*p != '\0') {
    const char *esc = NULL;
    size_t n = 1;
    if (*p == '\\')
      esc = "\\\\";
    else if (*p == '"')
      esc = "\\\"";
    else if (*p == '\n')
      esc = "\\n";
    else if ((n = utf8_len(p)) == 0) {
      esc = REPLACEMENT;
      n = 1;
    }
    if (esc == NULL) {
      p += n;
      continue;
    }
    put(w, run, (size_t)(p - run));
    puts_(w, esc);
    p += n;
    run = p;
  }
  put(w, run, (size_t)(p - run));
}

/* HELP text: backslash and line feed only (the format's rule for docstrings). */
static void escape_help(tp_prom_writer *w, const char *help) {
  for (const char *p = help; *p != '\0'; p++) {
    if (*p == '\\')
      puts_(w, "\\\\");
    else if (*p == '\n')
      puts_(w, "\\n");
    else
      put(w, p, 1);
  }
}

void tp_prom_family(tp_prom_writer *w, const char *name, const char *type, const char *help) {
  puts_(w, "# HELP ");
  puts_(w, name);
  puts_(w, " ");
  escape_help(w, help);
  puts_(w, "\n# TYPE ");
  puts_(w, name);
  puts_(w, " ");
  puts_(w, type);
  puts_(w, "\n");
}

static void labels_text(tp_prom_writer *w, const tp_prom_label *labels, size_t n);

/* name or name{a="x",b="y"} */
static void series(tp_prom_writer *w, const char *name, const tp_prom_label *labels, size_t n) {
  puts_(w, name);
  if (n == 0)
    return;
  puts_(w, "{");
  labels_text(w, labels, n);
  puts_(w, "}");
}

static void value_line(tp_prom_writer *w, const char *text) {
  puts_(w, " ");
  puts_(w, text);
  puts_(w, "\n");
}

void tp_prom_u64(tp_prom_writer *w, const char *name, const tp_prom_label *labels, size_t n,
                 uint64_t value) {
  char text[24];
  snprintf(text, sizeof(text), "%" PRIu64, value);
  series(w, name, labels, n);
  value_line(w, text);
}

void tp_prom_i64(tp_prom_writer *w, const char *name, const tp_prom_label *labels, size_t n,
                 int64_t value) {
  char text[24];
  snprintf(text, sizeof(text), "%" PRId64, value);
  series(w, name, labels, n);
  value_line(w, text);
}

static void format_double(double v, char *text, size_t len) {
  if (isnan(v))
    snprintf(text, len, "NaN");
  else if (isinf(v))
    snprintf(text, len, v > 0 ? "+Inf" : "-Inf");
  else
    snprintf(text, len, "%.17g", v); /* round-trips every double */
}

void tp_prom_f64(tp_prom_writer *w, const char *name, const tp_prom_label *labels, size_t n,
                 double value) {
  char text[40];
  format_double(value, text, sizeof(text));
  series(w, name, labels, n);
  value_line(w, text);
}

/* `a="x",b="y"` without braces: a histogram repeats its labels on every line, so they
 * are escaped once (this is most of a large scrape's work). */
static void labels_text(tp_prom_writer *w, const tp_prom_label *labels, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      puts_(w, ",");
    puts_(w, labels[i].name);
    puts_(w, "=\"");
    tp_prom_escape_label(w, labels[i].value);
    puts_(w, "\"");
  }
}

void tp_prom_histogram(tp_prom_writer *w, const char *name, const tp_prom_label *labels, size_t n,
                       const tp_prom_buckets *b, const uint64_t *counts, double sum) {
  char text[40];
  tp_buf lb;
  tp_prom_writer lw;
  tp_buf_init(&lb, w->out->cap);
  tp_prom_begin(&lw, &lb);
  labels_text(&lw, labels, n);
  if (w->err == TP_E_OK)
    w->err = lw.err;
  const char *l = lb.len > 0 ? (const char *)lb.data : "";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= b->n; i++) {
    cumulative += counts[i];
    snprintf(text, sizeof(text), "%" PRIu64, cumulative);
    puts_(w, name);
    puts_(w, "_bucket{");
    put(w, l, lb.len);
    puts_(w, n > 0 ? ",le=\"" : "le=\"");
    puts_(w, i < b->n ? b->text[i] : "+Inf");
    puts_(w, "\"}");
    value_line(w, text);
  }
  const char *suffix[2] = {"_sum", "_count"};
  for (size_t k = 0; k < 2; k++) {
    if (k == 0)
      format_double(sum, text, sizeof(text));
    else
      snprintf(text, sizeof(text), "%" PRIu64, cumulative);
    puts_(w, name);
    puts_(w, suffix[k]);
    if (n > 0) {
      puts_(w, "{");
      put(w, l, lb.len);
      puts_(w, "}");
    }
    value_line(w, text);
  }
  tp_buf_free(&lb);
}

static bool name_char(char c, bool first, bool label) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
    return true;
  if (c == ':')
    return !label;
  return !first && c >= '0' && c <= '9';
}

bool tp_prom_name_valid(const char *name, bool label) {
  if (name == NULL || name[0] == '\0')
    return false;
  if (label && strncmp(name, "__", 2) == 0)
    return false; /* reserved for Prometheus itself */
  for (size_t i = 0; name[i] != '\0'; i++)
    if (!name_char(name[i], i == 0, label))
      return false;
  return true;
}
