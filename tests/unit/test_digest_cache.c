/* test_digest_cache.c - the engine's bounded caches (probes/engine/digest_cache.c,
 * verify_cache.c): never more than max_entries values, the least recently used
 * goes first, every value dropped is freed exactly once; chain digests; and the
 * validity window a verified chain is cached with (certificates made here with
 * GnuTLS, signed for real). */
#include <gnutls/gnutls.h>
#include <gnutls/x509-ext.h>
#include <gnutls/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "digest_cache.h"
#include "verify_cache.h"

/* ---- the map ------------------------------------------------------------ */

static int freed; /* values freed by the cache under test */

static void free_counted(void *value) {
  freed++;
  free(value);
}

static void key_of(unsigned n, uint8_t key[TP_DIGEST_LEN]) {
  memset(key, 0, TP_DIGEST_LEN);
  memcpy(key, &n, sizeof(n));
}

static unsigned *value_of(unsigned n) {
  unsigned *v = malloc(sizeof(*v));
  assert_non_null(v);
  *v = n;
  return v;
}

static bool holds(tp_digest_cache *c, unsigned n) {
  uint8_t key[TP_DIGEST_LEN];
  key_of(n, key);
  const unsigned *v = tp__digest_cache_get(c, key);
  return v != NULL && *v == n;
}

static void put(tp_digest_cache *c, unsigned n) {
  uint8_t key[TP_DIGEST_LEN];
  key_of(n, key);
  tp__digest_cache_put(c, key, value_of(n));
}

static void test_least_recently_used_goes_first(void **state) {
  (void)state;
  freed = 0;
  tp_digest_cache *c = tp__digest_cache_new(3, free_counted);
  assert_int_equal(tp__digest_cache_count(c), 0);
  assert_false(holds(c, 1)); /* empty, nothing allocated yet */
  put(c, 1);
  put(c, 2);
  put(c, 3);
  assert_true(holds(c, 1)); /* 1 is now the most recent: 2 is the oldest */
  put(c, 4);
  assert_int_equal(tp__digest_cache_count(c), 3);
  assert_int_equal(freed, 1);
  assert_false(holds(c, 2));
  assert_true(holds(c, 1));
  assert_true(holds(c, 3));
  assert_true(holds(c, 4));
  put(c, 5); /* oldest now: 1 (touched before 3 and 4 were) */
  assert_false(holds(c, 1));
  assert_int_equal(freed, 2);
  tp__digest_cache_free(c);
  assert_int_equal(freed, 5); /* 3, 4, 5 freed with the cache */
}

static void test_bounded_under_churn(void **state) {
  (void)state;
  freed = 0;
  tp_digest_cache *c = tp__digest_cache_new(16, free_counted);
  for (unsigned n = 0; n < 1000; n++) {
    put(c, n);
    assert_true(tp__digest_cache_count(c) <= 16);
  }
  assert_int_equal(tp__digest_cache_count(c), 16);
  assert_int_equal(tp__digest_cache_capacity(c), 16);
  assert_int_equal(freed, 1000 - 16);
  for (unsigned n = 0; n < 1000; n++)
    assert_int_equal(holds(c, n), n >= 1000 - 16);
  tp__digest_cache_free(c);
  assert_int_equal(freed, 1000);
}

static void test_replace_and_remove(void **state) {
  (void)state;
  freed = 0;
  tp_digest_cache *c = tp__digest_cache_new(4, free_counted);
  uint8_t key[TP_DIGEST_LEN];
  key_of(7, key);
  tp__digest_cache_put(c, key, value_of(70));
  tp__digest_cache_put(c, key, value_of(71)); /* replaces: the old value is freed */
  assert_int_equal(freed, 1);
  assert_int_equal(tp__digest_cache_count(c), 1);
  assert_int_equal(*(unsigned *)tp__digest_cache_get(c, key), 71);
  assert_true(tp__digest_cache_remove(c, key));
  assert_false(tp__digest_cache_remove(c, key));
  assert_null(tp__digest_cache_get(c, key));
  assert_int_equal(freed, 2);
  assert_int_equal(tp__digest_cache_count(c), 0);
  /* a removed slot is reused: four more fit without eviction */
  for (unsigned n = 0; n < 4; n++)
    put(c, n);
  assert_int_equal(freed, 2);
  tp__digest_cache_free(c);
  assert_int_equal(freed, 6);
}

/* Keys that share the bytes the bucket is chosen by are still told apart. */
static void test_same_bucket_keys(void **state) {
  (void)state;
  freed = 0;
  tp_digest_cache *c = tp__digest_cache_new(8, free_counted);
  uint8_t a[TP_DIGEST_LEN] = {0}, b[TP_DIGEST_LEN] = {0};
  b[TP_DIGEST_LEN - 1] = 1;
  tp__digest_cache_put(c, a, value_of(1));
  tp__digest_cache_put(c, b, value_of(2));
  assert_int_equal(*(unsigned *)tp__digest_cache_get(c, a), 1);
  assert_int_equal(*(unsigned *)tp__digest_cache_get(c, b), 2);
  assert_true(tp__digest_cache_remove(c, a));
  assert_int_equal(*(unsigned *)tp__digest_cache_get(c, b), 2);
  tp__digest_cache_free(c);
  assert_int_equal(freed, 2);
}

static void test_chain_digests(void **state) {
  (void)state;
  uint8_t bytes[3][8] = {"leaf", "inter", "root"};
  gnutls_datum_t certs[TP_CHAIN_DIGESTS_MAX + 1];
  for (unsigned i = 0; i <= TP_CHAIN_DIGESTS_MAX; i++)
    certs[i] = (gnutls_datum_t){bytes[i % 3], 8};
  tp_chain_digests d, e;
  tp__chain_digests(certs, 2, &d);
  assert_true(d.complete);
  assert_int_equal(d.n, 2);
  assert_memory_not_equal(d.cert[0], d.cert[1], TP_DIGEST_LEN);
  bytes[0][7] = 'x'; /* one byte of the leaf changes */
  tp__chain_digests(certs, 2, &e);
  assert_memory_not_equal(d.cert[0], e.cert[0], TP_DIGEST_LEN);
  assert_memory_equal(d.cert[1], e.cert[1], TP_DIGEST_LEN);
  tp__chain_digests(certs, TP_CHAIN_DIGESTS_MAX + 1, &e); /* too long to key: not complete */
  assert_false(e.complete);
  assert_int_equal(e.n, TP_CHAIN_DIGESTS_MAX);
  tp__chain_digests(NULL, 0, &e);
  assert_false(e.complete);
}

/* ---- the validity window of a verified chain ----------------------------- */

typedef struct {
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  gnutls_datum_t der;
} made_cert;

static void make_cert(made_cert *m, const char *cn, time_t nb, time_t na, made_cert *issuer,
                      bool must_staple) {
  assert_int_equal(gnutls_x509_privkey_init(&m->key), 0);
  assert_int_equal(gnutls_x509_privkey_generate(m->key, GNUTLS_PK_ECDSA,
                                                GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                                0),
                   0);
  assert_int_equal(gnutls_x509_crt_init(&m->crt), 0);
  assert_int_equal(gnutls_x509_crt_set_version(m->crt, 3), 0);
  unsigned char serial[4] = {1, 2, 3, (unsigned char)cn[0]};
  assert_int_equal(gnutls_x509_crt_set_serial(m->crt, serial, sizeof(serial)), 0);
  assert_int_equal(gnutls_x509_crt_set_dn_by_oid(m->crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                                 (unsigned)strlen(cn)),
                   0);
  assert_int_equal(gnutls_x509_crt_set_activation_time(m->crt, nb), 0);
  assert_int_equal(gnutls_x509_crt_set_expiration_time(m->crt, na), 0);
  assert_int_equal(gnutls_x509_crt_set_key(m->crt, m->key), 0);
  assert_int_equal(gnutls_x509_crt_set_basic_constraints(m->crt, issuer == NULL, -1), 0);
  if (must_staple) {
    gnutls_x509_tlsfeatures_t f;
    assert_int_equal(gnutls_x509_tlsfeatures_init(&f), 0);
    assert_int_equal(gnutls_x509_tlsfeatures_add(f, 5), 0);
    assert_int_equal(gnutls_x509_crt_set_tlsfeatures(m->crt, f), 0);
    gnutls_x509_tlsfeatures_deinit(f);
  }
  made_cert *signer = issuer != NULL ? issuer : m;
  if (issuer != NULL)
    assert_int_equal(gnutls_x509_crt_set_issuer_dn_by_oid(m->crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                                          "window root", 11),
                     0);
  assert_int_equal(gnutls_x509_crt_sign2(m->crt, signer->crt, signer->key, GNUTLS_DIG_SHA256, 0),
                   0);
  assert_int_equal(gnutls_x509_crt_export2(m->crt, GNUTLS_X509_FMT_DER, &m->der), 0);
}

static void free_cert(made_cert *m) {
  gnutls_free(m->der.data);
  gnutls_x509_crt_deinit(m->crt);
  gnutls_x509_privkey_deinit(m->key);
}

static void test_window_is_the_intersection(void **state) {
  (void)state;
  time_t now = time(NULL);
  made_cert root, leaf, staple;
  make_cert(&root, "window root", now - 1000, now + 5000, NULL, false);
  make_cert(&leaf, "window leaf", now - 100, now + 9000, &root, false);
  make_cert(&staple, "window must-staple", now - 100, now + 9000, &root, true);
  gnutls_x509_trust_list_t tl;
  assert_int_equal(gnutls_x509_trust_list_init(&tl, 0), 0);
  gnutls_x509_crt_t anchor;
  assert_int_equal(gnutls_x509_crt_init(&anchor), 0);
  assert_int_equal(gnutls_x509_crt_import(anchor, &root.der, GNUTLS_X509_FMT_DER), 0);
  assert_int_equal(gnutls_x509_trust_list_add_cas(tl, &anchor, 1, 0), 1); /* tl owns it */

  int64_t from = 0, until = 0;
  /* the leaf alone, no trust list: its own period */
  assert_true(tp__verify_chain_window(NULL, &leaf.der, 1, &from, &until));
  assert_int_equal(from, now - 100);
  assert_int_equal(until, now + 9000);
  /* with the anchor that issues it: the anchor expires first */
  assert_true(tp__verify_chain_window(tl, &leaf.der, 1, &from, &until));
  assert_int_equal(from, now - 100);
  assert_int_equal(until, now + 5000);
  /* leaf + root sent: the root's earlier start counts too (max of starts is the leaf's) */
  gnutls_datum_t chain[2] = {leaf.der, root.der};
  assert_true(tp__verify_chain_window(NULL, chain, 2, &from, &until));
  assert_int_equal(from, now - 100);
  assert_int_equal(until, now + 5000);
  /* a certificate that demands a staple (RFC 7633) is never cached */
  assert_false(tp__verify_chain_window(tl, &staple.der, 1, &from, &until));
  /* nor are bytes that are not a certificate */
  uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
  gnutls_datum_t bad = {junk, sizeof(junk)};
  assert_false(tp__verify_chain_window(tl, &bad, 1, &from, &until));
  assert_false(tp__verify_chain_window(tl, &leaf.der, 0, &from, &until));

  gnutls_x509_trust_list_deinit(tl, 1);
  free_cert(&staple);
  free_cert(&leaf);
  free_cert(&root);
}

int main(void) {
  if (gnutls_global_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_least_recently_used_goes_first),
      cmocka_unit_test(test_bounded_under_churn),
      cmocka_unit_test(test_replace_and_remove),
      cmocka_unit_test(test_same_bucket_keys),
      cmocka_unit_test(test_chain_digests),
      cmocka_unit_test(test_window_is_the_intersection),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  gnutls_global_deinit();
  return rc;
}
