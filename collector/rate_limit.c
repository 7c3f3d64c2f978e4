/* rate_limit.c - token buckets in a small fixed table, and log line budgets. */
#include "rate_limit.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tp_mem.h"

#define TABLE_SIZE 1024
#define KEY_MAX 160

typedef struct bucket {
  char key[KEY_MAX]; /* "" = free */
  double tokens;
  uint64_t last_ms;
} bucket;

struct tp_rate_limit {
  double rate, burst;
  bucket table[TABLE_SIZE];
};

uint64_t tp_monotonic_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

tp_rate_limit *tp_rate_limit_new(unsigned rate, unsigned burst) {
  if (rate == 0)
    return NULL;
  tp_rate_limit *rl = tp_xcalloc(1, sizeof(*rl));
  rl->rate = rate;
  rl->burst = burst > 0 ? burst : 1;
  return rl;
}

void tp_rate_limit_free(tp_rate_limit *rl) { free(rl); }

/* The key's bucket, or a fresh one in a free slot or in the least recently used. */
static bucket *find(tp_rate_limit *rl, const char *key) {
  bucket *lru = &rl->table[0];
  for (size_t i = 0; i < TABLE_SIZE; i++) {
    bucket *b = &rl->table[i];
    if (strcmp(b->key, key) == 0 && b->key[0] != '\0')
      return b;
    if (b->key[0] == '\0' || (lru->key[0] != '\0' && b->last_ms < lru->last_ms))
      lru = b;
  }
  size_t n = strlen(key);
  if (n >= KEY_MAX)
    n = KEY_MAX - 1;
  memcpy(lru->key, key, n);
  lru->key[n] = '\0';
  lru->tokens = rl->burst;
  lru->last_ms = 0;
  return lru;
}

bool tp_rate_limit_allow(tp_rate_limit *rl, const char *key, uint64_t now_ms,
                         unsigned *retry_after_s) {
  if (rl == NULL || key == NULL || key[0] == '\0')
    return true;
  bucket *b = find(rl, key);
  if (b->last_ms != 0 && now_ms > b->last_ms) {
    b->tokens += (double)(now_ms - b->last_ms) * rl->rate / 1000.0;
    if (b->tokens > rl->burst)
      b->tokens = rl->burst;
  }
  b->last_ms = now_ms > 0 ? now_ms : 1;
  if (b->tokens >= 1.0) {
    b->tokens -= 1.0;
    return true;
  }
  double wait_s = (1.0 - b->tokens) / rl->rate;
  unsigned s = (unsigned)wait_s;
  *retry_after_s = (double)s < wait_s ? s + 1 : s;
  if (*retry_after_s == 0)
    *retry_after_s = 1;
  return false;
}

bool tp_log_limit_take(tp_log_limit *ll, uint64_t now_ms, unsigned long *suppressed_before) {
  if (ll->window_start_ms == 0 || now_ms - ll->window_start_ms >= ll->window_ms) {
    ll->window_start_ms = now_ms > 0 ? now_ms : 1;
    ll->used = 0;
  }
  if (ll->used >= ll->lines) {
    ll->suppressed++;
    return false;
  }
  ll->used++;
  *suppressed_before = ll->suppressed;
  ll->suppressed = 0;
  return true;
}
