/* tp_rand.h - a small non-cryptographic PRNG (xorshift64*, Vigna 2016) for
 * jitter: schedule spreading and retry backoff. State lives in its owner (no
 * hidden global); seed it from uv_random or the clock. Never use it for
 * anything an attacker must not predict. */
#ifndef TP_RAND_H
#define TP_RAND_H
#include <stddef.h>
#include <stdint.h>

typedef struct tp_rng {
  uint64_t state; /* never 0 */
} tp_rng;

void tp_rng_seed(tp_rng *rng, uint64_t seed); /* a 0 seed is replaced by a fixed odd one */
uint64_t tp_rng_next(tp_rng *rng);
/* Uniform in [0, bound) up to modulo bias (irrelevant for jitter); bound > 0. */
uint64_t tp_rng_below(tp_rng *rng, uint64_t bound);

/* Fills buf with len bytes from the kernel's CSPRNG (getrandom), for
 * identifiers that must not collide across machines (spool ids). 0 on success,
 * -1 if the kernel refused. */
int tp_random_fill(void *buf, size_t len);

#endif
