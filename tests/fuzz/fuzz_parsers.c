/* fuzz_parsers.c - libFuzzer target for the probe side's decoders of untrusted
 * bytes: the ClientHello parsers (our own hello from GnuTLS's hook, and a real
 * client's recorded hello from a testssl.sh file: records, fragments, SSL 2.0
 * framing), the HTTP response-head parser (servers' answers and AIA fetches),
 * and tp_text_fit, which every certificate string and server-sent text passes
 * through on its way into a result. Besides sanitizer findings it aborts when
 * an invariant breaks: counts within their arrays, and fitted text that the
 * wire validator would reject. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_seed.h"
#include "hello.h"
#include "http.h"
#include "tp_buf.h"
#include "tp_text.h"
#include "validate.h"

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_parsers: invariant broken: %s\n", what);
    abort();
  }
}

static void check_offer(const tp_hello_offer *o) {
  check(o->n_cipher_suites <= TP_HELLO_MAX_SUITES, "suites within the array");
  check(o->n_groups <= TP_HELLO_MAX_GROUPS, "groups within the array");
  check(o->n_key_shares <= TP_HELLO_MAX_KEY_SHARES, "key shares within the array");
  check(o->n_signature_algorithms <= TP_HELLO_MAX_SIGALGS, "signature algorithms within the array");
  check(o->n_supported_versions <= TP_HELLO_MAX_VERSIONS, "versions within the array");
}

static void fit(const uint8_t *data, size_t size, size_t max) {
  char *out = tp_text_fit((const char *)data, size, max);
  size_t n = strlen(out);
  check(n <= max, "fitted text within its limit");
  check(tp_utf8_valid((const unsigned char *)out, n), "fitted text is valid UTF-8");
  check(tp_text_fits(out, n, max), "fitted text fits");
  free(out);
}

/* Returns 1 when the input parsed as a ClientHello in either framing. */
static int run(const uint8_t *data, size_t size) {
  tp_hello_offer offer;
  const char *why = NULL;
  memset(&offer, 0, sizeof(offer));
  int body_ok = tp_hello_parse_client_hello(data, size, &offer) == 0;
  check_offer(&offer);
  memset(&offer, 0, sizeof(offer));
  int recorded_ok = tp_hello_parse_recorded(data, size, &offer, &why) == 0;
  check_offer(&offer);
  check(recorded_ok || why != NULL, "a rejected recorded hello says why");

  tp_buf head;
  tp_buf_init(&head, TP_HTTP_MAX_HEADER_BYTES);
  if (tp_buf_append(&head, data, size) == TP_E_OK) {
    tp_http_response resp;
    if (tp_http_parse_head(&head, &resp) == 0 && resp.complete)
      check(resp.status <= 999, "a parsed status has three digits");
  }
  tp_buf_free(&head);

  fit(data, size, 16);
  fit(data, size, 1024);
  return body_ok || recorded_ok;
}

/* Seeds named hello-* must parse as a ClientHello; others only have to run. */
int tp_fuzz_seed_run(const char *name, const uint8_t *data, size_t size) {
  int parsed = run(data, size);
  if (strncmp(name, "hello-", 6) == 0 && !parsed) {
    fprintf(stderr, "FAIL %s: not parsed as a ClientHello\n", name);
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
