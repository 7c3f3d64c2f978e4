/* negotiated_mix.h - exact successes per negotiated (TLS version, cipher, group), as
 * one compact blob: the rollups' `negotiated` column, so `report versions` and the
 * per-group distributions work over windows that only rollups cover.
 *
 * Blob: a format byte; a varint count of successes beyond TP_MIX_MAX_ENTRIES distinct
 * combinations (folded together, never dropped silently); a varint number of entries;
 * per entry three length-prefixed names (version, cipher, group; each at most
 * TP_MIX_MAX_NAME bytes, no NUL) and a varint count > 0. Entries are in strictly
 * ascending (version, cipher, group) byte order, so one mix has one encoding.
 *
 * The blob is read back from the database, so tp_mix_decode treats it as untrusted:
 * anything but the exact encoding of a mix within the limits is refused with where. */
#ifndef TP_NEGOTIATED_MIX_H
#define TP_NEGOTIATED_MIX_H
#include <stddef.h>
#include <stdint.h>

#include "tp_buf.h"
#include "tp_error.h"

#define TP_MIX_MAX_ENTRIES 64
#define TP_MIX_MAX_NAME 128 /* TP_V_MAX_SHORT: what the wire allows */
/* Successes one mix may count (2^53, as tp_sketch and tp_outcome_counts). */
#define TP_MIX_COUNT_MAX ((uint64_t)1 << 53)

typedef struct tp_mix tp_mix;

typedef struct tp_mix_entry {
  const char *version, *cipher, *group; /* owned by the mix; "" = not negotiated */
  uint64_t count;
} tp_mix_entry;

tp_mix *tp_mix_new(void);
void tp_mix_free(tp_mix *mix);
void tp_mix_clear(tp_mix *mix);
/* Counts n more successes of the combination (NULL reads as ""); past
 * TP_MIX_MAX_ENTRIES combinations they go to the overflow count. TP_E_TOOBIG (mix
 * unchanged) when the total would pass TP_MIX_COUNT_MAX; TP_E_INVAL for a name longer
 * than TP_MIX_MAX_NAME. */
tp_err tp_mix_add(tp_mix *mix, const char *version, const char *cipher, const char *group,
                  uint64_t n);
/* into += from, with tp_mix_add's rules. */
tp_err tp_mix_merge(tp_mix *into, const tp_mix *from);
size_t tp_mix_entries(const tp_mix *mix);
/* Entry i (< tp_mix_entries), in ascending order; valid until the mix changes. */
tp_mix_entry tp_mix_entry_at(const tp_mix *mix, size_t i);
uint64_t tp_mix_overflow(const tp_mix *mix);
uint64_t tp_mix_total(const tp_mix *mix);
/* Appends the blob to out. */
tp_err tp_mix_encode(const tp_mix *mix, tp_buf *out);
/* Replaces mix with the blob's; TP_E_DECODE with a message in err (mix cleared). */
tp_err tp_mix_decode(tp_mix *mix, const uint8_t *data, size_t len, char *err, size_t errlen);

#endif
