/* gen_sketch_seeds.c - writes the sketch seed corpus (tests/fuzz/corpus/sketch):
 * blobs tp_sketch_encode wrote for typical and extreme sketches (ok-*), hand-made
 * broken ones that each hit one refusal of tp_sketch_decode (reject-*), and
 * outcome-count blobs (counts-*, for the second decoder the target runs). Run it
 * again when a format changes and commit the files:
 *   build/tests/fuzz/fuzz_gen_sketch_seeds tests/fuzz/corpus/sketch */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "outcome.h"
#include "negotiated_mix.h"
#include "outcome_counts.h"
#include "sketch.h"

static int write_file(const char *dir, const char *name, const void *data, size_t len) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
    perror(path);
    return 1;
  }
  return 0;
}

static int write_sketch(const char *dir, const char *name, const tp_sketch *s) {
  tp_buf b;
  tp_buf_init(&b, TP_SKETCH_MAX_BLOB);
  int rc = tp_sketch_encode(s, &b) != TP_E_OK || write_file(dir, name, b.data, b.len);
  tp_buf_free(&b);
  return rc;
}

/* Values of a handshake-like distribution: median 2 ms, a long tail. */
static void add_latencies(tp_sketch *s, size_t n) {
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double u = (double)(x >> 11) / 9007199254740992.0;
    (void)tp_sketch_add(s, (uint64_t)(2e6 * exp(2.0 * (u - 0.5))));
  }
}

static int ok_seeds(const char *dir) {
  int rc = 0;
  tp_sketch *s = tp_sketch_new();
  rc |= write_sketch(dir, "ok-empty", s);
  (void)tp_sketch_add(s, 1678000);
  rc |= write_sketch(dir, "ok-one-value", s);
  (void)tp_sketch_add(s, 1678000);
  (void)tp_sketch_add(s, 2034000);
  rc |= write_sketch(dir, "ok-tiny", s);
  tp_sketch_clear(s);
  add_latencies(s, 2000);
  rc |= write_sketch(dir, "ok-latencies", s);
  tp_sketch_clear(s);
  for (uint64_t v = 0; v < 300; v += 7)
    (void)tp_sketch_add(s, v);
  rc |= write_sketch(dir, "ok-exact-range", s);
  tp_sketch_clear(s);
  (void)tp_sketch_add(s, 0);
  (void)tp_sketch_add(s, UINT64_MAX);
  rc |= write_sketch(dir, "ok-extremes", s);
  tp_sketch_free(s);
  /* Two buckets of 2^52: exactly TP_SKETCH_MAX_COUNT. */
  static const unsigned char at_limit[] = {0x01, 0x02, 0x07, 0x08, 0x07, 0x80, 0x80, 0x80,
                                           0x80, 0x80, 0x80, 0x80, 0x08, 0x01, 0x80, 0x80,
                                           0x80, 0x80, 0x80, 0x80, 0x80, 0x08};
  rc |= write_file(dir, "ok-count-at-limit", at_limit, sizeof(at_limit));
  return rc;
}

static int reject_seeds(const char *dir) {
  static const struct {
    const char *name, *blob;
    size_t len;
  } seeds[] = {
      {"reject-empty", "", 0},
      {"reject-unknown-format", "\x02\x00", 2},
      {"reject-truncated", "\x01\x02\x07\x08\x07\x01", 6},
      {"reject-trailing", "\x01\x01\x07\x07\x07\x01\x00", 7},
      {"reject-overlong-varint", "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11},
      {"reject-non-minimal-varint", "\x01\x81\x00\x07\x07\x07\x01", 7},
      {"reject-more-buckets-than-bytes", "\x01\x7f\x01\x01\x01\x01", 6},
      {"reject-zero-count", "\x01\x01\x07\x07\x07\x00", 6},
      {"reject-repeated-index", "\x01\x02\x07\x07\x07\x01\x00\x01", 8},
      {"reject-index-out-of-range", "\x01\x01\x07\x07\xf0\x1f\x01", 7},
      {"reject-min-above-max", "\x01\x02\x09\x07\x07\x01\x02\x01", 8},
      {"reject-min-outside-bucket", "\x01\x01\x05\x07\x07\x01", 6},
      {"reject-count-beyond-limit",
       "\x01\x02\x07\x08\x07\x81\x80\x80\x80\x80\x80\x80\x08\x01\x80\x80\x80\x80\x80\x80\x80\x08",
       22},
  };
  int rc = 0;
  for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
    rc |= write_file(dir, seeds[i].name, seeds[i].blob, seeds[i].len);
  return rc;
}

static int write_counts(const char *dir, const char *name, const tp_outcome_counts *c) {
  tp_buf b;
  tp_buf_init(&b, 4096);
  int rc = tp_outcome_counts_encode(c, &b) != TP_E_OK || write_file(dir, name, b.data, b.len);
  tp_buf_free(&b);
  return rc;
}

static int counts_seeds(const char *dir) {
  tp_outcome_counts c = {{0}};
  int rc = write_counts(dir, "counts-none", &c);
  c.n[TP_OUTCOME_OK] = 59;
  rc |= write_counts(dir, "counts-ok", &c);
  c.n[TP_OUTCOME_EXPIRED] = 1;
  c.n[TP_OUTCOME_CONNECTION_REFUSED] = 300;
  c.n[TP_OUTCOME_OTHER] = 2;
  rc |= write_counts(dir, "counts-mixed", &c);
  rc |= write_file(dir, "counts-unknown-class", "\x01\x19\x01", 3);
  rc |= write_file(dir, "counts-descending", "\x01\x0e\x01\x01\x01", 5);
  return rc;
}

static int write_mix(const char *dir, const char *name, const tp_mix *m) {
  tp_buf b;
  tp_buf_init(&b, 64 * 1024);
  int rc = tp_mix_encode(m, &b) != TP_E_OK || write_file(dir, name, b.data, b.len);
  tp_buf_free(&b);
  return rc;
}

static int mix_seeds(const char *dir) {
  tp_mix *m = tp_mix_new();
  int rc = write_mix(dir, "mix-empty", m);
  rc |= tp_mix_add(m, "TLS1.3", "TLS_AES_128_GCM_SHA256", "X25519", 57) != TP_E_OK;
  rc |= write_mix(dir, "mix-one", m);
  rc |= tp_mix_add(m, "TLS1.2", "AES128-GCM-SHA256", "", 3) != TP_E_OK;
  rc |= write_mix(dir, "mix-two", m);
  char cipher[16];
  for (int i = 0; i < TP_MIX_MAX_ENTRIES + 2; i++) {
    snprintf(cipher, sizeof(cipher), "C%03d", i);
    rc |= tp_mix_add(m, "TLS1.2", cipher, "SECP256R1", 1) != TP_E_OK;
  }
  rc |= write_mix(dir, "mix-full-overflow", m);
  tp_mix_free(m);
  /* header: format 1, overflow 0, 1 entry; names "b" then "a"... out of order */
  rc |= write_file(dir, "mix-descending", "\x01\x00\x02\x01b\x00\x00\x01\x01a\x00\x00\x01", 13);
  rc |= write_file(dir, "mix-zero-count", "\x01\x00\x01\x01a\x00\x00\x00", 8);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  int rc = ok_seeds(argv[1]) | reject_seeds(argv[1]) | counts_seeds(argv[1]) | mix_seeds(argv[1]);
  return rc ? 1 : 0;
}
