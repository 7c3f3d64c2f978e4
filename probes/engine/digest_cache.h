/* digest_cache.h - a bounded map from a SHA-256 digest to a value it owns,
 * least recently used out first (engine-internal). The engine keeps two: the
 * chains it verified (verify_cache.c) and the facts of the certificates it
 * parsed (certinfo.c), both keyed by digests of bytes the server sent, so a
 * server that changes one byte gets a new key. One per engine, used on its
 * loop only: no locking. Memory is bounded by max_entries values plus
 * O(max_entries) bookkeeping, allocated on first use. */
#ifndef TP_DIGEST_CACHE_H
#define TP_DIGEST_CACHE_H
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TP_DIGEST_LEN 32 /* SHA-256 */

typedef struct tp_digest_cache tp_digest_cache;
typedef void (*tp_digest_free_fn)(void *value);

/* max_entries >= 1 (at most 1 << 24); free_value frees a value the cache
 * drops (evicted, replaced, removed, or with the cache). */
tp_digest_cache *tp__digest_cache_new(size_t max_entries, tp_digest_free_fn free_value);
void tp__digest_cache_free(tp_digest_cache *cache); /* NULL is fine */

/* The value stored under key, now the most recently used; NULL if none.
 * Borrowed: valid until the next put or remove on this cache. */
void *tp__digest_cache_get(tp_digest_cache *cache, const uint8_t key[TP_DIGEST_LEN]);
/* Stores value under key; the cache owns it from now on. An existing value
 * under the same key is freed; when full, the least recently used entry is. */
void tp__digest_cache_put(tp_digest_cache *cache, const uint8_t key[TP_DIGEST_LEN], void *value);
/* Frees the value under key, if any. Returns whether there was one. */
bool tp__digest_cache_remove(tp_digest_cache *cache, const uint8_t key[TP_DIGEST_LEN]);
size_t tp__digest_cache_count(const tp_digest_cache *cache);
size_t tp__digest_cache_capacity(const tp_digest_cache *cache);

/* The digests of a chain as sent: one per certificate (the first
 * TP_CHAIN_DIGESTS_MAX), hashed once per probe and shared by both caches. */
#define TP_CHAIN_DIGESTS_MAX 16
typedef struct tp_chain_digests {
  unsigned n;    /* certificates hashed */
  bool complete; /* every certificate sent was hashed (n_sent <= MAX and no error) */
  uint8_t cert[TP_CHAIN_DIGESTS_MAX][TP_DIGEST_LEN];
} tp_chain_digests;

void tp__chain_digests(const gnutls_datum_t *certs, unsigned n_sent, tp_chain_digests *out);

#endif
