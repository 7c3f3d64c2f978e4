/* test_hello_http.c - the two parsers of bytes the engine sees on the wire:
 * our ClientHello (evidence of groups / key shares offered) and the HTTP
 * response head. Malformed and truncated input must be rejected, never read
 * past its end (run under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hello.h"
#include "http.h"

/* A TLS 1.3-style ClientHello body: version, random, empty session id, one
 * suite, null compression, then supported_groups {X25519, SECP256R1,
 * FFDHE2048} and key_share {X25519 (32 bytes), SECP256R1 (65 bytes)}. */
static size_t build_hello(uint8_t *b) {
  size_t n = 0;
  b[n++] = 3;
  b[n++] = 3;
  memset(b + n, 0xAB, 32);
  n += 32;
  b[n++] = 0; /* session id */
  b[n++] = 0;
  b[n++] = 2;
  b[n++] = 0x13;
  b[n++] = 0x01; /* TLS_AES_128_GCM_SHA256 */
  b[n++] = 1;
  b[n++] = 0; /* compression: null */
  size_t ext_len_at = n;
  n += 2;
  /* supported_groups */
  const uint8_t groups[] = {0, 10, 0, 8, 0, 6, 0, 29, 0, 23, 1, 0};
  memcpy(b + n, groups, sizeof(groups));
  n += sizeof(groups);
  /* key_share: ext type 51, ext len, shares len, (group, len, key)... */
  size_t shares = (2 + 2 + 32) + (2 + 2 + 65);
  b[n++] = 0;
  b[n++] = 51;
  b[n++] = (uint8_t)((shares + 2) >> 8);
  b[n++] = (uint8_t)(shares + 2);
  b[n++] = (uint8_t)(shares >> 8);
  b[n++] = (uint8_t)shares;
  b[n++] = 0;
  b[n++] = 29;
  b[n++] = 0;
  b[n++] = 32;
  memset(b + n, 1, 32);
  n += 32;
  b[n++] = 0;
  b[n++] = 23;
  b[n++] = 0;
  b[n++] = 65;
  memset(b + n, 2, 65);
  n += 65;
  size_t ext_len = n - ext_len_at - 2;
  b[ext_len_at] = (uint8_t)(ext_len >> 8);
  b[ext_len_at + 1] = (uint8_t)ext_len;
  return n;
}

static void test_client_hello(void **state) {
  (void)state;
  uint8_t b[512];
  size_t n = build_hello(b);
  tp_hello_offer offer;
  assert_int_equal(tp_hello_parse_client_hello(b, n, &offer), 0);
  assert_int_equal(offer.n_groups, 3);
  assert_int_equal(offer.groups[0], 29);
  assert_int_equal(offer.groups[2], 256);
  assert_int_equal(offer.n_key_shares, 2);
  assert_int_equal(offer.key_shares[1], 23);
  char buf[16];
  assert_string_equal(tp_hello_group_name(29, buf, sizeof(buf)), "X25519");
  assert_string_equal(tp_hello_group_name(256, buf, sizeof(buf)), "FFDHE2048");
  assert_string_equal(tp_hello_group_name(0x1234, buf, sizeof(buf)), "0x1234");
}

static void test_client_hello_truncated(void **state) {
  (void)state;
  uint8_t b[512];
  size_t n = build_hello(b);
  tp_hello_offer offer;
  /* every strict prefix that cuts into a length-prefixed field fails;
   * copy into an exact-size heap block so ASan sees any over-read */
  for (size_t cut = 1; cut < n; cut++) {
    uint8_t *copy = malloc(cut);
    memcpy(copy, b, cut);
    int rc = tp_hello_parse_client_hello(copy, cut, &offer);
    /* the only valid prefix is the one that ends before the extensions */
    if (cut == 2 + 32 + 1 + 4 + 2)
      assert_int_equal(rc, 0);
    else
      assert_int_equal(rc, -1);
    free(copy);
  }
  /* an extension claiming more bytes than the message has */
  b[2 + 32 + 1 + 4 + 2 + 2 + 2] = 0xFF; /* first extension's length, high byte */
  assert_int_equal(tp_hello_parse_client_hello(b, n, &offer), -1);
}

static tp_buf buf_of(const char *s) {
  tp_buf b;
  tp_buf_init(&b, TP_HTTP_MAX_HEADER_BYTES);
  assert_int_equal(tp_buf_append(&b, s, strlen(s)), TP_E_OK);
  return b;
}

static void test_http_head(void **state) {
  (void)state;
  tp_http_response r;
  tp_buf b = buf_of("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                    "strict-transport-security: max-age=63072000\r\n\r\nbody");
  assert_int_equal(tp_http_parse_head(&b, &r), 0);
  assert_int_equal(r.status, 200);
  assert_true(r.hsts);
  assert_true(r.complete);
  tp_buf_free(&b);

  b = buf_of("HTTP/1.0 503 Service Unavailable\n\n");
  assert_int_equal(tp_http_parse_head(&b, &r), 0);
  assert_int_equal(r.status, 503);
  assert_false(r.hsts);
  tp_buf_free(&b);

  b = buf_of("HTTP/1.1 301 Moved\r\nLocation: /x\r\n"); /* head not finished */
  assert_int_equal(tp_http_parse_head(&b, &r), 1);
  assert_int_equal(r.status, 301);
  tp_buf_free(&b);

  b = buf_of("HTTP/1."); /* may still become a status line */
  assert_int_equal(tp_http_parse_head(&b, &r), 1);
  tp_buf_free(&b);

  const char *bad[] = {"SSH-2.0-OpenSSH_9.2\r\n", "HTTP/2 200\r\n\r\n", "HTTP/1.1 20 OK\r\n",
                       "HTTP/1.1 2000 OK\r\n", "<html>", "HTTP/1.1 abc OK\r\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    b = buf_of(bad[i]);
    if (tp_http_parse_head(&b, &r) != -1)
      fail_msg("accepted \"%s\"", bad[i]);
    tp_buf_free(&b);
  }
}

static void test_http_request(void **state) {
  (void)state;
  char *req = tp_http_build_request("HEAD", "/health", "shop.example");
  assert_string_equal(req, "HEAD /health HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: tlsprobe\r\n"
                           "Accept: */*\r\n\r\n");
  free(req);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_hello),
      cmocka_unit_test(test_client_hello_truncated),
      cmocka_unit_test(test_http_head),
      cmocka_unit_test(test_http_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
