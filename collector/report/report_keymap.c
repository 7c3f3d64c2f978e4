/* report_keymap.c - see report_keymap.h. */
#include "report_keymap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tp_mem.h"

typedef struct entry {
  char *key;
  size_t len;
  uint64_t hash;
} entry;

struct tp_keymap {
  entry *entries; /* by index */
  size_t n, alloc;
  size_t *slots;  /* index + 1, 0 = empty */
  size_t n_slots; /* a power of two, > 2 * n */
};

tp_keymap *tp_keymap_new(void) { return tp_xcalloc(1, sizeof(tp_keymap)); }

static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static void grow(tp_keymap *m) {
  size_t n = m->n_slots ? m->n_slots * 2 : 64;
  size_t *slots = tp_xcalloc(n, sizeof(*slots));
  for (size_t i = 0; i < m->n; i++) {
    size_t at = (size_t)m->entries[i].hash & (n - 1);
    while (slots[at] != 0)
      at = (at + 1) & (n - 1);
    slots[at] = i + 1;
  }
  free(m->slots);
  m->slots = slots;
  m->n_slots = n;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t slot_of(const tp_keymap *m, const void *key, size_t len, uint64_t hash) {
  size_t at = (size_t)hash & (m->n_slots - 1);
  for (; m->slots[at] != 0; at = (at + 1) & (m->n_slots - 1)) {
    const entry *e = &m->entries[m->slots[at] - 1];
    if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0)
      break;
  }
  return at;
}

bool tp_keymap_find(const tp_keymap *m, const void *key, size_t len, size_t *index) {
  if (m->n_slots == 0)
    return false;
  size_t at = slot_of(m, key, len, fnv1a(key, len));
  if (m->slots[at] == 0)
    return false;
  *index = m->slots[at] - 1;
  return true;
}

size_t tp_keymap_get(tp_keymap *m, const void *key, size_t len, bool *added) {
  if (2 * (m->n + 1) > m->n_slots)
    grow(m);
  uint64_t hash = fnv1a(key, len);
  size_t at = slot_of(m, key, len, hash);
  if (m->slots[at] != 0) {
    *added = false;
    return m->slots[at] - 1;
  }
  if (m->n == m->alloc) {
    m->alloc = m->alloc ? 2 * m->alloc : 16;
    m->entries = tp_xrealloc(m->entries, m->alloc * sizeof(m->entries[0]));
  }
  entry *e = &m->entries[m->n];
  e->key = tp_xmalloc(len ? len : 1);
  memcpy(e->key, key, len);
  e->len = len;
  e->hash = hash;
  m->slots[at] = ++m->n;
  *added = true;
  return m->n - 1;
}

size_t tp_keymap_count(const tp_keymap *m) { return m->n; }

const void *tp_keymap_key(const tp_keymap *m, size_t i, size_t *len) {
  *len = m->entries[i].len;
  return m->entries[i].key;
}

void tp_keymap_free(tp_keymap *m) {
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->n; i++)
    free(m->entries[i].key);
  free(m->entries);
  free(m->slots);
  free(m);
}
