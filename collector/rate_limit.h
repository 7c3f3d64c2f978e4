/* rate_limit.h - per-agent request rate (token buckets) and rate-limited logging.
 *
 * Buckets: `rate` requests per second on average, `burst` at once. The table has a
 * fixed size; when it is full the least recently seen key is forgotten, which can only
 * make the limit more lenient for that key (a fresh bucket is full), never lock a
 * legitimate agent out. Used from one thread (the HTTP thread): no lock. */
#ifndef TP_RATE_LIMIT_H
#define TP_RATE_LIMIT_H
#include <stdbool.h>
#include <stdint.h>

#include "tp_log.h"

typedef struct tp_rate_limit tp_rate_limit;

/* NULL when rate is 0 (no limit): tp_rate_limit_allow then always allows. */
tp_rate_limit *tp_rate_limit_new(unsigned rate, unsigned burst);
void tp_rate_limit_free(tp_rate_limit *rl);
/* Takes one request from key's bucket at now_ms (monotonic). false = over the rate;
 * *retry_after_s is then how long until the next request would pass (>= 1). */
bool tp_rate_limit_allow(tp_rate_limit *rl, const char *key, uint64_t now_ms,
                         unsigned *retry_after_s);

/* At most `lines` log lines per `window_ms` for one kind of event; the first line
 * after a window with suppressed ones says how many were dropped. */
typedef struct tp_log_limit {
  unsigned lines;
  uint64_t window_ms;
  uint64_t window_start_ms;
  unsigned used;
  unsigned long suppressed;
} tp_log_limit;

/* True if a line may be written now; *suppressed_before is how many were dropped since
 * the last written line (to put in it). */
bool tp_log_limit_take(tp_log_limit *ll, uint64_t now_ms, unsigned long *suppressed_before);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t tp_monotonic_ms(void);

#endif
