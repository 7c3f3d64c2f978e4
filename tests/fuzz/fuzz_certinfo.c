/* fuzz_certinfo.c - libFuzzer target for the certificate facts a probe
 * records from whatever chain a server sends (probes/engine/certinfo.c):
 * the input is cut into DER certificates, leaf first, and given to
 * tp_certinfo_collect_der, which imports each with gnutls_x509_crt_import and
 * extracts subject, issuer, SANs, validity, key and signature algorithm.
 *
 * The contract is the architecture's "the producer knows the contract": no
 * certificate, however odd, may make its target's result invalid. So besides
 * sanitizer findings it aborts when the facts, put into an otherwise minimal
 * result, fail the wire validator the collector applies (tp_validate_result),
 * or when the chain is longer than what was sent or than its cap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certinfo.h"
#include "fuzz_seed.h"
#include "result.h"
#include "tp_mem.h"
#include "validate.h"

#define NOW_UNIX INT64_C(1700000000)
/* More pieces than the chain cap, so the cap itself is exercised. */
#define MAX_PIECES (TP_CERTINFO_MAX_CHAIN + 8)

static void check(int ok, const char *what, const char *detail) {
  if (!ok) {
    fprintf(stderr, "fuzz_certinfo: invariant broken: %s\n  %s\n", what, detail ? detail : "");
    abort();
  }
}

/* Length of the DER element at the start of p (tag 0x30, SEQUENCE, as every
 * certificate starts), header included; 0 if p does not start with one that
 * fits in n bytes. */
static size_t der_element(const uint8_t *p, size_t n) {
  if (n < 2 || p[0] != 0x30)
    return 0;
  size_t len = p[1], header = 2;
  if (len & 0x80) {
    size_t bytes = len & 0x7f;
    if (bytes == 0 || bytes > 4 || n < 2 + bytes)
      return 0;
    len = 0;
    for (size_t i = 0; i < bytes; i++)
      len = len << 8 | p[2 + i];
    header += bytes;
  }
  return len <= n - header ? header + len : 0;
}

/* Cuts the input into certificates: consecutive DER elements; whatever does
 * not parse as one (or follows the last piece allowed) is one last piece. */
static unsigned split(const uint8_t *data, size_t size, gnutls_datum_t *pieces) {
  unsigned n = 0;
  while (size > 0 && n < MAX_PIECES) {
    size_t len = n + 1 < MAX_PIECES ? der_element(data, size) : 0;
    if (len == 0)
      len = size;
    pieces[n].data = (unsigned char *)data;
    pieces[n].size = (unsigned)len;
    n++;
    data += len;
    size -= len;
  }
  return n;
}

/* Returns how many certificates yielded facts. */
static size_t run(const uint8_t *data, size_t size) {
  gnutls_datum_t pieces[MAX_PIECES];
  if (size > UINT32_MAX)
    return 0;
  unsigned n = split(data, size, pieces);
  tp_result *r = tp_result_new();
  r->target = tp_xstrdup("t");
  r->profile = tp_xstrdup("p");
  r->port = 443;
  r->started_unix_ns = NOW_UNIX * INT64_C(1000000000);
  tp_certinfo_collect_der(pieces, n, NOW_UNIX, r);
  check(r->chain_length_sent == n, "chain_length_sent is what was sent", NULL);
  check(r->chain_len <= n && r->chain_len <= TP_CERTINFO_MAX_CHAIN, "chain within its cap", NULL);
  check(r->chain_len == 0 || r->chain[0].n_san_dns <= TP_CERTINFO_MAX_SANS, "SANs within cap",
        NULL);

  char reason[512];
  tp_result_pb pb;
  tp_result_pb_init(&pb, r);
  tp_err rc = tp_validate_result("fuzz", &pb.msg, reason, sizeof(reason));
  tp_result_pb_clear(&pb);
  check(rc == TP_E_OK, "certificate facts fail the wire contract", reason);
  size_t facts = r->chain_len;
  tp_result_free(r);
  return facts;
}

/* Seeds named ok-* must yield facts for every certificate, reject-* for
 * none; others only have to run. */
int tp_fuzz_seed_run(const char *name, const uint8_t *data, size_t size) {
  gnutls_datum_t pieces[MAX_PIECES];
  unsigned sent = split(data, size, pieces);
  size_t got = run(data, size);
  if (strncmp(name, "ok-", 3) == 0 && got != sent) {
    fprintf(stderr, "FAIL %s: facts for %zu of %u certificates\n", name, got, sent);
    return 1;
  }
  if (strncmp(name, "reject-", 7) == 0 && got != 0) {
    fprintf(stderr, "FAIL %s: facts for %zu certificates, want none\n", name, got);
    return 1;
  }
  return 0;
}

void tp_fuzz_seed_cleanup(void) {}

/* The libFuzzer entry point (unused in the seed runner). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)run(data, size);
  return 0;
}
