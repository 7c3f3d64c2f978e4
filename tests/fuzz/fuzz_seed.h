/* fuzz_seed.h - what each fuzz target gives the shared seed runner
 * (seeds_main.c), so every target's corpus is a regression test in every
 * build, with any compiler. */
#ifndef TP_FUZZ_SEED_H
#define TP_FUZZ_SEED_H
#include <stddef.h>
#include <stdint.h>

/* Runs one seed through the target (aborting on a broken invariant) and checks
 * what its name promises; returns 0 if it held, else 1 after printing why. */
int tp_fuzz_seed_run(const char *name, const uint8_t *data, size_t size);
/* Releases what the target kept between inputs (called once at exit). */
void tp_fuzz_seed_cleanup(void);

#endif
