/* fuzz_ocsp.c - libFuzzer target for the stapled OCSP response a server
 * sends (RFC 6066 §8; probes/engine/ocsp.c): the input is one DER
 * OCSPResponse given to tp_ocsp_collect_der, which imports it with
 * gnutls_ocsp_resp_import and reads the first single response's status,
 * thisUpdate and nextUpdate.
 *
 * As for certificates, no staple may make its target's result invalid: it
 * aborts when the facts, in an otherwise minimal result, fail the wire
 * validator the collector applies, or when a staple is not recorded as one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_seed.h"
#include "ocsp.h"
#include "result.h"
#include "tp_mem.h"
#include "validate.h"

#define NOW_UNIX INT64_C(1700000000)

static void check(int ok, const char *what, const char *detail) {
  if (!ok) {
    fprintf(stderr, "fuzz_ocsp: invariant broken: %s\n  %s\n", what, detail ? detail : "");
    abort();
  }
}

/* Returns 1 if the response was read, 0 if not. */
static int run(const uint8_t *data, size_t size) {
  if (size > UINT32_MAX)
    return 0;
  gnutls_datum_t der = {(unsigned char *)data, (unsigned)size};
  tp_result *r = tp_result_new();
  r->target = tp_xstrdup("t");
  r->profile = tp_xstrdup("p");
  r->port = 443;
  r->started_unix_ns = NOW_UNIX * INT64_C(1000000000);
  int read = tp_ocsp_collect_der(&der, NOW_UNIX, r) == 0;
  check(r->ocsp_stapled && r->ocsp_cert_status != NULL, "a staple is recorded with a status",
        NULL);
  check(read || strcmp(r->ocsp_cert_status, "unknown") == 0, "unreadable means unknown",
        r->ocsp_cert_status);

  char reason[512];
  tp_result_pb pb;
  tp_result_pb_init(&pb, r);
  tp_err rc = tp_validate_result("fuzz", &pb.msg, reason, sizeof(reason));
  tp_result_pb_clear(&pb);
  check(rc == TP_E_OK, "OCSP facts fail the wire contract", reason);
  tp_result_free(r);
  return read;
}

/* Seeds named ok-* must be read (a status and times), reject-* must not;
 * others only have to run. */
int tp_fuzz_seed_run(const char *name, const uint8_t *data, size_t size) {
  int want = strncmp(name, "ok-", 3) == 0 ? 1 : strncmp(name, "reject-", 7) == 0 ? 0 : -1;
  int got = run(data, size);
  if (want >= 0 && got != want) {
    fprintf(stderr, "FAIL %s: %s, want %s\n", name, got ? "read" : "not read",
            want ? "read" : "not read");
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
