/* test_result_proto.c - the tp_result -> protobuf -> bytes -> protobuf round
 * trip the pusher relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "result.h"
#include "tp_mem.h"

static tp_result *make_result(const char *target, uint64_t handshake_ns) {
  tp_result *r = tp_result_new();
  r->target = tp_xstrdup(target);
  r->host = tp_xstrdup("127.0.0.1");
  r->profile = tp_xstrdup("default");
  r->port = 8443;
  r->outcome = TP_OUTCOME_OK;
  r->handshake_ns = handshake_ns;
  r->started_unix_ns = 1700000000000000000LL;
  return r;
}

static void test_result_round_trip(void **state) {
  (void)state;
  tp_result *r = make_result("web", 1234567);
  r->outcome = TP_OUTCOME_EXPIRED;
  r->detail = tp_xstrdup("The certificate has expired.");
  r->tls_version = tp_xstrdup("TLS1.3");
  r->chain_len = 1;
  r->chain = tp_xcalloc(1, sizeof(tp_cert_facts));
  r->chain[0].subject = tp_xstrdup("CN=web");
  r->chain[0].n_san_dns = 1;
  r->chain[0].san_dns = tp_xcalloc(1, sizeof(char *));
  r->chain[0].san_dns[0] = tp_xstrdup("web.test");
  r->chain[0].not_after_unix = 1600000000;
  r->days_to_earliest_expiry = -3;

  r->ocsp_stapled = true;
  r->ocsp_cert_status = tp_xstrdup("good");
  r->ocsp_age_seconds = 7200;
  r->n_groups_offered = 2;
  r->groups_offered = tp_xcalloc(2, sizeof(char *));
  r->groups_offered[0] = tp_xstrdup("X25519");
  r->groups_offered[1] = tp_xstrdup("SECP256R1");
  r->mode = TP_MODE_RESUMPTION;

  tp_result_pb pb;
  tp_result_pb_init(&pb, r);
  size_t len = tlsprobe__v1__probe_result__get_packed_size(&pb.msg);
  uint8_t *bytes = malloc(len);
  tlsprobe__v1__probe_result__pack(&pb.msg, bytes);
  tp_result_pb_clear(&pb);
  Tlsprobe__V1__ProbeResult *back = tlsprobe__v1__probe_result__unpack(NULL, len, bytes);
  assert_non_null(back);
  assert_string_equal(back->target, "web");
  assert_int_equal(back->port, 8443);
  assert_false(back->ok);
  assert_int_equal(back->error_class, TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_EXPIRED);
  assert_string_equal(back->error_detail, "The certificate has expired.");
  assert_string_equal(back->tls_version, "TLS1.3");
  assert_string_equal(back->cipher, ""); /* absent -> empty */
  assert_int_equal(back->handshake_ns, 1234567);
  assert_int_equal(back->n_chain, 1);
  assert_string_equal(back->chain[0]->subject, "CN=web");
  assert_string_equal(back->chain[0]->san_dns[0], "web.test");
  assert_int_equal(back->days_to_earliest_expiry, -3);
  assert_non_null(back->ocsp);
  assert_string_equal(back->ocsp->cert_status, "good");
  assert_int_equal(back->ocsp->age_seconds, 7200);
  assert_null(back->http); /* no HTTP request made -> absent */
  assert_int_equal(back->n_groups_offered, 2);
  assert_string_equal(back->groups_offered[1], "SECP256R1");
  assert_string_equal(back->mode, "resumption");
  /* truncated bytes do not decode */
  assert_null(tlsprobe__v1__probe_result__unpack(NULL, len - 3, bytes));
  tlsprobe__v1__probe_result__free_unpacked(back, NULL);
  free(bytes);
  tp_result_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_result_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
