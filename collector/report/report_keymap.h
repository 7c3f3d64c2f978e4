/* report_keymap.h - byte-string keys to dense indices (0, 1, 2... in insertion
 * order), for grouping rows: open addressing with linear probing over FNV-1a
 * hashes, grown at half load. Keys are copied. */
#ifndef TP_REPORT_KEYMAP_H
#define TP_REPORT_KEYMAP_H
#include <stdbool.h>
#include <stddef.h>

typedef struct tp_keymap tp_keymap;

tp_keymap *tp_keymap_new(void);
/* The index of key; a new key gets the next index and *added = true. */
size_t tp_keymap_get(tp_keymap *m, const void *key, size_t len, bool *added);
/* Lookup only: true and *index when key is in the map. */
bool tp_keymap_find(const tp_keymap *m, const void *key, size_t len, size_t *index);
size_t tp_keymap_count(const tp_keymap *m);
/* The key of index i (borrowed, valid until the map is freed). */
const void *tp_keymap_key(const tp_keymap *m, size_t i, size_t *len);
void tp_keymap_free(tp_keymap *m);

#endif
