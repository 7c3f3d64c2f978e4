/* fuzz_sketch.c - libFuzzer target for the blobs the collector reads back from its
 * rollups table: the input is given to tp_sketch_decode (a latency sketch,
 * collector/sketch.h), to tp_outcome_counts_decode (the outcome counts,
 * collector/outcome_counts.h) and to tp_mix_decode (the negotiated mix,
 * collector/negotiated_mix.h). A database file is as untrusted as the network:
 * a disk error, a hand edit or another program's writes can put anything there.
 *
 * Besides sanitizer findings it aborts when a decoder's contract breaks: a
 * refusal that is not TP_E_DECODE with a message, or leaves data behind; an
 * accepted blob that does not re-encode to exactly the input (the codecs accept
 * only canonical bytes); a sketch whose count exceeds TP_SKETCH_MAX_COUNT, whose
 * quantiles are not ascending in q or outside [min, max], or that does not merge
 * with a copy of itself into twice its count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "fuzz_seed.h"
#include "negotiated_mix.h"
#include "outcome_counts.h"
#include "sketch.h"

static void check(int ok, const char *what, const char *detail) {
  if (!ok) {
    fprintf(stderr, "fuzz_sketch: invariant broken: %s\n  %s\n", what, detail ? detail : "");
    abort();
  }
}

static void check_reencodes(const tp_buf *b, const uint8_t *data, size_t size, const char *what) {
  check(b->len == size && (size == 0 || memcmp(b->data, data, size) == 0), what, NULL);
}

static void check_quantiles(const tp_sketch *s) {
  static const double qs[] = {0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1};
  uint64_t lo = 0, hi = 0, prev = 0;
  check(tp_sketch_quantile(s, 0, &lo) && tp_sketch_quantile(s, 1, &hi), "quantiles of a non-empty sketch",
        NULL);
  for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
    uint64_t v = 0;
    check(tp_sketch_quantile(s, qs[i], &v), "quantile answered", NULL);
    check(v >= lo && v <= hi, "quantile within [min, max]", NULL);
    check(i == 0 || v >= prev, "quantiles ascending in q", NULL);
    prev = v;
  }
}

/* Returns 1 if the input decoded as a sketch. */
static int run_sketch(const uint8_t *data, size_t size) {
  char err[256] = "";
  tp_sketch *s = tp_sketch_new(), *copy = tp_sketch_new();
  check(tp_sketch_add(s, 12345) == TP_E_OK, "add", NULL); /* decode must replace it */
  tp_err rc = tp_sketch_decode(s, data, size, err, sizeof(err));
  int ok = rc == TP_E_OK;
  if (!ok) {
    check(rc == TP_E_DECODE && err[0] != '\0', "a refusal is TP_E_DECODE with a message", err);
    check(tp_sketch_count(s) == 0 && tp_sketch_bucket_count(s) == 0, "refused leaves it empty", err);
    goto out;
  }
  tp_buf b;
  tp_buf_init(&b, TP_SKETCH_MAX_BLOB);
  check(tp_sketch_encode(s, &b) == TP_E_OK, "encode what decoded", NULL);
  check_reencodes(&b, data, size, "a decoded sketch re-encodes to its blob");
  tp_buf_free(&b);
  uint64_t n = tp_sketch_count(s);
  check(n <= TP_SKETCH_MAX_COUNT, "count within the limit", NULL);
  check((n == 0) == (tp_sketch_bucket_count(s) == 0), "empty means no buckets", NULL);
  if (n == 0)
    goto out;
  check_quantiles(s);
  check(tp_sketch_decode(copy, data, size, err, sizeof(err)) == TP_E_OK, "decodes twice", err);
  rc = tp_sketch_merge(s, copy);
  if (n > TP_SKETCH_MAX_COUNT / 2) {
    check(rc == TP_E_TOOBIG && tp_sketch_count(s) == n, "an overflowing merge changes nothing", NULL);
  } else {
    check(rc == TP_E_OK && tp_sketch_count(s) == 2 * n, "merged with itself: twice the count", NULL);
    check(tp_sketch_bucket_count(s) == tp_sketch_bucket_count(copy), "same buckets", NULL);
    check_quantiles(s);
  }
out:
  tp_sketch_free(copy);
  tp_sketch_free(s);
  return ok;
}

static void run_counts(const uint8_t *data, size_t size) {
  char err[256] = "";
  tp_outcome_counts c;
  tp_err rc = tp_outcome_counts_decode(data, size, &c, err, sizeof(err));
  if (rc != TP_E_OK) {
    check(rc == TP_E_DECODE && err[0] != '\0', "counts: a refusal is TP_E_DECODE with a message",
          err);
    check(tp_outcome_counts_total(&c) == 0, "counts: refused leaves zeros", err);
    return;
  }
  check(tp_outcome_counts_total(&c) <= TP_OUTCOME_COUNTS_MAX, "counts: total within the limit",
        NULL);
  tp_buf b;
  tp_buf_init(&b, 4096);
  check(tp_outcome_counts_encode(&c, &b) == TP_E_OK, "counts: encode", NULL);
  check_reencodes(&b, data, size, "counts: decoded counts re-encode to their blob");
  tp_buf_free(&b);
}

static void run_mix(const uint8_t *data, size_t size) {
  char err[256] = "";
  tp_mix *m = tp_mix_new();
  tp_err rc = tp_mix_decode(m, data, size, err, sizeof(err));
  if (rc != TP_E_OK) {
    check(rc == TP_E_DECODE && err[0] != '\0', "mix: a refusal is TP_E_DECODE with a message", err);
    check(tp_mix_total(m) == 0 && tp_mix_entries(m) == 0, "mix: refused leaves it empty", err);
    tp_mix_free(m);
    return;
  }
  check(tp_mix_total(m) <= TP_MIX_COUNT_MAX, "mix: total within the limit", NULL);
  check(tp_mix_entries(m) <= TP_MIX_MAX_ENTRIES, "mix: entries within the limit", NULL);
  tp_buf b;
  tp_buf_init(&b, 64 * 1024);
  check(tp_mix_encode(m, &b) == TP_E_OK, "mix: encode", NULL);
  check_reencodes(&b, data, size, "mix: a decoded mix re-encodes to its blob");
  /* Merged with itself: twice the total, the same combinations. */
  tp_mix *twice = tp_mix_new();
  check(tp_mix_merge(twice, m) == TP_E_OK, "mix: merge into empty", NULL);
  if (tp_mix_total(m) <= TP_MIX_COUNT_MAX / 2) {
    check(tp_mix_merge(twice, m) == TP_E_OK, "mix: merge with itself", NULL);
    check(tp_mix_total(twice) == 2 * tp_mix_total(m), "mix: merged total", NULL);
    check(tp_mix_entries(twice) == tp_mix_entries(m), "mix: merged combinations", NULL);
  }
  tp_mix_free(twice);
  tp_buf_free(&b);
  tp_mix_free(m);
}

/* Seeds named ok-* must decode as a sketch, reject-* must not; others (counts-*
 * for the outcome counts, mix-* for the negotiated mix, crash inputs) only have to
 * run. */
int tp_fuzz_seed_run(const char *name, const uint8_t *data, size_t size) {
  int ok = run_sketch(data, size);
  run_counts(data, size);
  run_mix(data, size);
  return tp_fuzz_seed_verdict(name, ok, "decoded", "refused");
}

void tp_fuzz_seed_cleanup(void) {}

/* The libFuzzer entry point (unused in the seed runner). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)run_sketch(data, size);
  run_counts(data, size);
  run_mix(data, size);
  return 0;
}
