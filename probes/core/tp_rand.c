/* tp_rand.c - see tp_rand.h. */
#include "tp_rand.h"

#include <errno.h>
#include <sys/random.h>

void tp_rng_seed(tp_rng *rng, uint64_t seed) {
  rng->state = seed != 0 ? seed : 0x9E3779B97F4A7C15ULL;
}

uint64_t tp_rng_next(tp_rng *rng) {
  rng->state ^= rng->state >> 12;
  rng->state ^= rng->state << 25;
  rng->state ^= rng->state >> 27;
  return rng->state * 2685821657736338717ULL;
}

uint64_t tp_rng_below(tp_rng *rng, uint64_t bound) {
  return tp_rng_next(rng) % bound;
}

int tp_random_fill(void *buf, size_t len) {
  unsigned char *p = buf;
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}
