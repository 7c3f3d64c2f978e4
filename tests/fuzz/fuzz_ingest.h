/* fuzz_ingest.h - the ingest fuzz entry point, shared by the libFuzzer target
 * (fuzz_ingest, TP_FUZZ=ON) and the seed regression test (fuzz_ingest_seeds, every
 * build). */
#ifndef TP_FUZZ_INGEST_H
#define TP_FUZZ_INGEST_H
#include <stddef.h>
#include <stdint.h>

/* Ingests the bytes as one POST /v1/results body into an empty in-memory store
 * and, if stored, reports over it; aborts on any broken invariant. Returns the
 * HTTP status ingest answered (200 or 400). */
int tp_fuzz_ingest_one(const uint8_t *data, size_t size);
/* Closes the store the first call opened (the seed runner calls it at exit). */
void tp_fuzz_ingest_cleanup(void);

#endif
