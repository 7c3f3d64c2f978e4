/* digest_cache.c - see digest_cache.h. Slots live in one array allocated at
 * the first put and handed out in order, so only slots in use are ever
 * written (a large bound costs address space, not resident memory, until it
 * is needed); a slot in use is on the recency list (most recent at head), a
 * removed one on the free list. Buckets chain slots by the digest's first
 * bytes: a SHA-256 output is already uniform, so no further hashing. */
#include "digest_cache.h"

#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "tp_mem.h"

#define NIL UINT32_MAX
#define MAX_ENTRIES (1u << 24)

typedef struct slot {
  uint8_t key[TP_DIGEST_LEN];
  void *value;
  uint32_t newer, older; /* recency list; in the free list, older is the next free slot */
  uint32_t chain;        /* next slot in the same bucket */
} slot;

struct tp_digest_cache {
  size_t capacity, count;
  tp_digest_free_fn free_value;
  slot *slots;       /* capacity slots, NULL until the first put */
  uint32_t *buckets; /* mask + 1 heads */
  uint32_t mask;
  uint32_t newest, oldest, free_head;
  uint32_t fresh; /* slots [fresh, capacity) were never used */
};

tp_digest_cache *tp__digest_cache_new(size_t max_entries, tp_digest_free_fn free_value) {
  tp_digest_cache *c = tp_xcalloc(1, sizeof(*c));
  c->capacity = max_entries == 0 ? 1 : max_entries > MAX_ENTRIES ? MAX_ENTRIES : max_entries;
  c->free_value = free_value;
  c->newest = c->oldest = c->free_head = NIL;
  return c;
}

void tp__digest_cache_free(tp_digest_cache *c) {
  if (c == NULL)
    return;
  for (uint32_t i = c->newest; i != NIL; i = c->slots[i].older)
    c->free_value(c->slots[i].value);
  free(c->slots);
  free(c->buckets);
  free(c);
}

static void drop(tp_digest_cache *c, uint32_t i);

/* One bucket per four slots: chains stay short, and the bucket array (which
 * is written whole) stays small next to the slots, which are not. */
static void allocate(tp_digest_cache *c) {
  uint32_t n_buckets = 16;
  while (n_buckets * 4 < c->capacity)
    n_buckets <<= 1;
  c->mask = n_buckets - 1;
  c->buckets = tp_xmalloc(n_buckets * sizeof(uint32_t));
  for (uint32_t i = 0; i < n_buckets; i++)
    c->buckets[i] = NIL;
  c->slots = tp_xmalloc(c->capacity * sizeof(slot));
  c->fresh = 0;
}

/* A slot to fill: a removed one, a never used one, else the least recently
 * used one, whose value goes. */
static uint32_t take_slot(tp_digest_cache *c) {
  if (c->free_head == NIL && c->fresh < c->capacity)
    return c->fresh++;
  if (c->free_head == NIL)
    drop(c, c->oldest); /* full: the least recently used goes */
  uint32_t i = c->free_head;
  c->free_head = c->slots[i].older;
  return i;
}

static uint32_t bucket_of(const tp_digest_cache *c, const uint8_t key[TP_DIGEST_LEN]) {
  uint32_t h;
  memcpy(&h, key, sizeof(h));
  return h & c->mask;
}

static uint32_t find(const tp_digest_cache *c, const uint8_t key[TP_DIGEST_LEN]) {
  if (c->slots == NULL)
    return NIL;
  uint32_t i = c->buckets[bucket_of(c, key)];
  while (i != NIL && memcmp(c->slots[i].key, key, TP_DIGEST_LEN) != 0)
    i = c->slots[i].chain;
  return i;
}

static void unlink_recency(tp_digest_cache *c, uint32_t i) {
  slot *s = &c->slots[i];
  if (s->newer != NIL)
    c->slots[s->newer].older = s->older;
  else
    c->newest = s->older;
  if (s->older != NIL)
    c->slots[s->older].newer = s->newer;
  else
    c->oldest = s->newer;
}

static void push_newest(tp_digest_cache *c, uint32_t i) {
  slot *s = &c->slots[i];
  s->newer = NIL;
  s->older = c->newest;
  if (c->newest != NIL)
    c->slots[c->newest].newer = i;
  c->newest = i;
  if (c->oldest == NIL)
    c->oldest = i;
}

static void unlink_bucket(tp_digest_cache *c, uint32_t i) {
  uint32_t *link = &c->buckets[bucket_of(c, c->slots[i].key)];
  while (*link != i)
    link = &c->slots[*link].chain;
  *link = c->slots[i].chain;
}

/* Frees slot i's value and returns the slot to the free list. */
static void drop(tp_digest_cache *c, uint32_t i) {
  unlink_recency(c, i);
  unlink_bucket(c, i);
  c->free_value(c->slots[i].value);
  c->slots[i].value = NULL;
  c->slots[i].older = c->free_head;
  c->free_head = i;
  c->count--;
}

void *tp__digest_cache_get(tp_digest_cache *c, const uint8_t key[TP_DIGEST_LEN]) {
  uint32_t i = find(c, key);
  if (i == NIL)
    return NULL;
  if (c->newest != i) {
    unlink_recency(c, i);
    push_newest(c, i);
  }
  return c->slots[i].value;
}

void tp__digest_cache_put(tp_digest_cache *c, const uint8_t key[TP_DIGEST_LEN], void *value) {
  if (c->slots == NULL)
    allocate(c);
  uint32_t i = find(c, key);
  if (i != NIL) {
    if (c->slots[i].value != value)
      c->free_value(c->slots[i].value);
    c->slots[i].value = value;
    unlink_recency(c, i);
    push_newest(c, i);
    return;
  }
  i = take_slot(c);
  slot *s = &c->slots[i];
  memcpy(s->key, key, TP_DIGEST_LEN);
  s->value = value;
  uint32_t b = bucket_of(c, key);
  s->chain = c->buckets[b];
  c->buckets[b] = i;
  push_newest(c, i);
  c->count++;
}

bool tp__digest_cache_remove(tp_digest_cache *c, const uint8_t key[TP_DIGEST_LEN]) {
  uint32_t i = find(c, key);
  if (i == NIL)
    return false;
  drop(c, i);
  return true;
}

size_t tp__digest_cache_count(const tp_digest_cache *c) { return c->count; }

size_t tp__digest_cache_capacity(const tp_digest_cache *c) { return c->capacity; }

void tp__chain_digests(const gnutls_datum_t *certs, unsigned n_sent, tp_chain_digests *out) {
  out->n = 0;
  out->complete = false;
  for (unsigned i = 0; i < n_sent && i < TP_CHAIN_DIGESTS_MAX; i++) {
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[i].data, certs[i].size, out->cert[i]) < 0)
      return; /* the first n stay usable */
    out->n = i + 1;
  }
  out->complete = out->n == n_sent && n_sent > 0;
}
