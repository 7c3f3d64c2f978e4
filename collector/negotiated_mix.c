/* negotiated_mix.c - the counts and codec of negotiated_mix.h. A mix holds at most
 * TP_MIX_MAX_ENTRIES entries kept sorted, so lookups are a binary search and the
 * encoding needs no sort. */
#include "negotiated_mix.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_mem.h"
#include "varint.h"

#define FORMAT_V1 0x01

typedef struct {
  char *name[3]; /* version, cipher, group */
  uint64_t count;
} entry;

struct tp_mix {
  entry items[TP_MIX_MAX_ENTRIES];
  size_t n;
  uint64_t overflow, total;
};

tp_mix *tp_mix_new(void) { return tp_xcalloc(1, sizeof(tp_mix)); }

void tp_mix_clear(tp_mix *mix) {
  for (size_t i = 0; i < mix->n; i++)
    for (int k = 0; k < 3; k++)
      free(mix->items[i].name[k]);
  mix->n = 0;
  mix->overflow = mix->total = 0;
}

void tp_mix_free(tp_mix *mix) {
  if (mix == NULL)
    return;
  tp_mix_clear(mix);
  free(mix);
}

/* Byte order of (version, cipher, group), as the encoding sorts them. */
static int compare(const char *const a[3], const char *const b[3]) {
  for (int k = 0; k < 3; k++) {
    int c = strcmp(a[k], b[k]);
    if (c != 0)
      return c;
  }
  return 0;
}

/* The index of the combination, or where it would go (*found false). */
static size_t find(const tp_mix *mix, const char *const key[3], bool *found) {
  size_t lo = 0, hi = mix->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = compare((const char *const *)mix->items[mid].name, key);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

tp_err tp_mix_add(tp_mix *mix, const char *version, const char *cipher, const char *group,
                  uint64_t n) {
  const char *key[3] = {version ? version : "", cipher ? cipher : "", group ? group : ""};
  for (int k = 0; k < 3; k++)
    if (strlen(key[k]) > TP_MIX_MAX_NAME)
      return TP_E_INVAL;
  if (n == 0)
    return TP_E_OK;
  if (n > TP_MIX_COUNT_MAX - mix->total)
    return TP_E_TOOBIG;
  bool found;
  size_t at = find(mix, key, &found);
  if (found) {
    mix->items[at].count += n;
  } else if (mix->n == TP_MIX_MAX_ENTRIES) {
    mix->overflow += n;
  } else {
    memmove(&mix->items[at + 1], &mix->items[at], (mix->n - at) * sizeof(entry));
    entry *e = &mix->items[at];
    for (int k = 0; k < 3; k++)
      e->name[k] = tp_xstrdup(key[k]);
    e->count = n;
    mix->n++;
  }
  mix->total += n;
  return TP_E_OK;
}

tp_err tp_mix_merge(tp_mix *into, const tp_mix *from) {
  if (from->total > TP_MIX_COUNT_MAX - into->total)
    return TP_E_TOOBIG;
  for (size_t i = 0; i < from->n; i++) {
    const entry *e = &from->items[i];
    tp_err rc = tp_mix_add(into, e->name[0], e->name[1], e->name[2], e->count);
    if (rc != TP_E_OK)
      return rc; /* not reached: names and total were checked */
  }
  into->overflow += from->overflow;
  into->total += from->overflow;
  return TP_E_OK;
}

size_t tp_mix_entries(const tp_mix *mix) { return mix->n; }

tp_mix_entry tp_mix_entry_at(const tp_mix *mix, size_t i) {
  const entry *e = &mix->items[i];
  return (tp_mix_entry){
      .version = e->name[0], .cipher = e->name[1], .group = e->name[2], .count = e->count};
}

uint64_t tp_mix_overflow(const tp_mix *mix) { return mix->overflow; }
uint64_t tp_mix_total(const tp_mix *mix) { return mix->total; }

tp_err tp_mix_encode(const tp_mix *mix, tp_buf *out) {
  uint8_t format = FORMAT_V1;
  tp_err rc = tp_buf_append(out, &format, 1);
  if (rc == TP_E_OK)
    rc = tp_varint_append(out, mix->overflow);
  if (rc == TP_E_OK)
    rc = tp_varint_append(out, mix->n);
  for (size_t i = 0; rc == TP_E_OK && i < mix->n; i++) {
    for (int k = 0; rc == TP_E_OK && k < 3; k++) {
      size_t len = strlen(mix->items[i].name[k]);
      rc = tp_varint_append(out, len);
      if (rc == TP_E_OK)
        rc = tp_buf_append(out, mix->items[i].name[k], len);
    }
    if (rc == TP_E_OK)
      rc = tp_varint_append(out, mix->items[i].count);
  }
  return rc;
}

static tp_err refuse(tp_mix *mix, char *err, size_t errlen, const char *what, size_t at) {
  tp_mix_clear(mix);
  snprintf(err, errlen, "negotiated mix: %s at byte %zu", what, at);
  return TP_E_DECODE;
}

/* One length-prefixed name into buf (TP_MIX_MAX_NAME + 1 bytes); false if malformed. */
static bool get_name(const uint8_t **p, const uint8_t *end, char *buf) {
  uint64_t len;
  if (!tp_varint_get(p, end, &len) || len > TP_MIX_MAX_NAME || len > (uint64_t)(end - *p))
    return false;
  if (memchr(*p, '\0', (size_t)len) != NULL)
    return false;
  memcpy(buf, *p, (size_t)len);
  buf[len] = '\0';
  *p += len;
  return true;
}

tp_err tp_mix_decode(tp_mix *mix, const uint8_t *data, size_t len, char *err, size_t errlen) {
  const uint8_t *p = data, *end = data + len;
  uint64_t overflow, n;
  tp_mix_clear(mix);
  if (len == 0 || data[0] != FORMAT_V1)
    return refuse(mix, err, errlen, len == 0 ? "empty blob" : "unknown format", 0);
  p++;
  if (!tp_varint_get(&p, end, &overflow) || !tp_varint_get(&p, end, &n))
    return refuse(mix, err, errlen, "truncated header", (size_t)(p - data));
  if (n > TP_MIX_MAX_ENTRIES)
    return refuse(mix, err, errlen, "more entries than a mix holds", (size_t)(p - data));
  if (overflow > TP_MIX_COUNT_MAX || (overflow > 0 && n < TP_MIX_MAX_ENTRIES))
    return refuse(mix, err, errlen, "overflow count without a full mix", 1);
  mix->overflow = mix->total = overflow;
  char names[3][TP_MIX_MAX_NAME + 1];
  for (uint64_t i = 0; i < n; i++) {
    size_t at = (size_t)(p - data);
    uint64_t count;
    if (!get_name(&p, end, names[0]) || !get_name(&p, end, names[1]) ||
        !get_name(&p, end, names[2]) || !tp_varint_get(&p, end, &count))
      return refuse(mix, err, errlen, "truncated or malformed entry", at);
    const char *key[3] = {names[0], names[1], names[2]};
    if (mix->n > 0 && compare((const char *const *)mix->items[mix->n - 1].name, key) >= 0)
      return refuse(mix, err, errlen, "entries not strictly ascending", at);
    if (count == 0 || count > TP_MIX_COUNT_MAX - mix->total)
      return refuse(mix, err, errlen, "count zero or total beyond the limit", at);
    entry *e = &mix->items[mix->n++];
    for (int k = 0; k < 3; k++)
      e->name[k] = tp_xstrdup(key[k]);
    e->count = count;
    mix->total += count;
  }
  if (p != end)
    return refuse(mix, err, errlen, "trailing bytes", (size_t)(p - data));
  return TP_E_OK;
}
