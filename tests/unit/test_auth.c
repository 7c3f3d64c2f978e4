/* test_auth.c - agent tokens: hashing (a known SHA-256 vector), constant-time compare,
 * minting, the tokens file written by libyaml's emitter and read back, lookups,
 * revocation, every refusal of a hand-edited file with file:line:col, permission
 * warnings; and the per-agent rate limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_tokens.h"
#include "rate_limit.h"
#include "tp_secret.h"

typedef struct fixture {
  char dir[64];
  char path[128];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp_auth_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/tokens.yaml", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  unlink(f->path);
  rmdir(f->dir);
  free(f);
  return 0;
}

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  assert_int_equal(fclose(fp), 0);
}

static void test_hash_vector(void **state) {
  (void)state;
  /* SHA-256("abc"), FIPS 180-2 appendix B.1 */
  static const uint8_t expect[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                     0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                     0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  uint8_t out[32];
  tp_token_hash("abc", 3, out);
  assert_memory_equal(out, expect, 32);
}

static void test_ct_equal(void **state) {
  (void)state;
  uint8_t a[32] = {0}, b[32] = {0};
  assert_true(tp_ct_equal(a, b, 32));
  b[31] = 1;
  assert_false(tp_ct_equal(a, b, 32));
  b[31] = 0;
  b[0] = 0x80;
  assert_false(tp_ct_equal(a, b, 32));
  assert_true(tp_ct_equal(a, b, 0));
}

static void test_mint(void **state) {
  (void)state;
  char t1[TP_TOKEN_HEX + 1], t2[TP_TOKEN_HEX + 1];
  uint8_t h1[32], h2[32], check[32];
  assert_int_equal(tp_token_mint(t1, h1), TP_E_OK);
  assert_int_equal(tp_token_mint(t2, h2), TP_E_OK);
  assert_int_equal(strlen(t1), 64);
  assert_int_equal(strspn(t1, "0123456789abcdef"), 64);
  assert_string_not_equal(t1, t2);
  tp_token_hash(t1, 64, check);
  assert_memory_equal(check, h1, 32);
}

static void test_save_load_lookup_revoke(void **state) {
  fixture *f = *state;
  char err[512] = "", t1[65], t2[65], t3[65], id[TP_TOKEN_ID_HEX + 1];
  uint8_t h1[32], h2[32], h3[32];
  tp_token_table *table = NULL;
  /* A missing file: empty when allowed (agents add), NOTFOUND with advice otherwise. */
  assert_int_equal(tp_token_table_load(f->path, false, &table, err, sizeof(err)), TP_E_NOTFOUND);
  assert_non_null(strstr(err, "tlsprobe-collector agents add NAME"));
  assert_int_equal(tp_token_table_load(f->path, true, &table, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_token_table_count(table), 0);
  /* An empty table saves as "agents: []" and loads back. */
  assert_int_equal(tp_token_table_save(table, f->path, err, sizeof(err)), TP_E_OK);
  tp_token_table_free(table);
  assert_int_equal(tp_token_table_load(f->path, false, &table, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_token_table_count(table), 0);

  assert_int_equal(tp_token_mint(t1, h1), TP_E_OK);
  assert_int_equal(tp_token_mint(t2, h2), TP_E_OK);
  assert_int_equal(tp_token_mint(t3, h3), TP_E_OK);
  /* Names YAML would misread unquoted: the emitter quotes them. */
  assert_int_equal(tp_token_table_add(table, "edge:1#x", h1, 1700000000), TP_E_OK);
  assert_int_equal(tp_token_table_add(table, "edge-2", h2, 1700000001), TP_E_OK);
  assert_int_equal(tp_token_table_add(table, "edge-2", h3, 1700000002), TP_E_OK);
  assert_int_equal(tp_token_table_save(table, f->path, err, sizeof(err)), TP_E_OK);
  tp_token_table_free(table);

  struct stat st;
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(tp_token_table_load(f->path, false, &table, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_token_table_count(table), 3);
  assert_string_equal(tp_token_table_name(table, 0), "edge:1#x");
  assert_string_equal(tp_token_table_created(table, 0), "2023-11-14T22:13:20Z");
  assert_string_equal(tp_token_table_lookup(table, t1, 64), "edge:1#x");
  assert_string_equal(tp_token_table_lookup(table, t2, 64), "edge-2");
  assert_string_equal(tp_token_table_lookup(table, t3, 64), "edge-2");
  assert_null(tp_token_table_lookup(table, t1, 63));
  assert_null(tp_token_table_lookup(table, "", 0));
  char wrong[65];
  memcpy(wrong, t1, sizeof(wrong));
  wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
  assert_null(tp_token_table_lookup(table, wrong, 64));

  /* Revoke one of edge-2's tokens by id, then the rest by name. */
  size_t removed = 0;
  tp_token_table_id(table, 2, id);
  tp_token_table_revoke(table, "edge-2", id, &removed);
  assert_int_equal(removed, 1);
  assert_null(tp_token_table_lookup(table, t3, 64));
  assert_string_equal(tp_token_table_lookup(table, t2, 64), "edge-2");
  tp_token_table_revoke(table, "edge-2", NULL, &removed);
  assert_int_equal(removed, 1);
  tp_token_table_revoke(table, "nobody", NULL, &removed);
  assert_int_equal(removed, 0);
  assert_int_equal(tp_token_table_save(table, f->path, err, sizeof(err)), TP_E_OK);
  tp_token_table_free(table);
  assert_int_equal(tp_token_table_load(f->path, false, &table, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_token_table_count(table), 1);
  assert_null(tp_token_table_lookup(table, t2, 64));
  tp_token_table_free(table);
}

static void test_bad_files(void **state) {
  fixture *f = *state;
  static const char hash[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  char text[1024];
  /* "@" stands for a valid hash, "~" for one digit short of it. */
  static const struct {
    const char *text, *expect;
  } cases[] = {
      {"agents:\n  - name: \"edge 1\"\n    sha256: \"@\"\n",
       ":2:11: agents[0].name: must be printable ASCII without spaces"},
      {"agents:\n  - name: a\n    sha256: \"~\"\n", ":3:13: agents[0].sha256: not 64 lowercase hex"},
      {"agents:\n  - {name: a, sha256: \"@\"}\n  - {name: b, sha256: \"@\"}\n",
       ":3:23: agents[1].sha256: the same token hash as agents[0]"},
      {"agents:\n  - name: a\n    token: \"@\"\n", ":3:5: Unexpected key: token"},
      {"", "no configuration"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[512] = "";
    size_t at = 0;
    tp_token_table *table = NULL;
    for (const char *p = cases[i].text; *p != '\0' && at + 70 < sizeof(text); p++) {
      if (*p == '@' || *p == '~') {
        size_t n = *p == '@' ? 64 : 63;
        memcpy(text + at, hash, n);
        at += n;
      } else {
        text[at++] = *p;
      }
    }
    text[at] = '\0';
    write_file(f->path, text);
    tp_err rc = tp_token_table_load(f->path, false, &table, err, sizeof(err));
    if (rc != TP_E_CONFIG || strstr(err, cases[i].expect) == NULL)
      fail_msg("case %zu: rc=%d \"%s\" lacks \"%s\"", i, rc, err, cases[i].expect);
    assert_null(table);
  }
}

static void test_secret_file_mode(void **state) {
  fixture *f = *state;
  char why[128] = "";
  write_file(f->path, "agents: []\n");
  assert_int_equal(chmod(f->path, 0600), 0);
  assert_false(tp_secret_file_too_open(f->path, why, sizeof(why)));
  assert_int_equal(chmod(f->path, 0644), 0);
  assert_true(tp_secret_file_too_open(f->path, why, sizeof(why)));
  assert_string_equal(why, "mode 0644: accessible by group and others");
  assert_int_equal(chmod(f->path, 0640), 0);
  assert_true(tp_secret_file_too_open(f->path, why, sizeof(why)));
  assert_string_equal(why, "mode 0640: accessible by group");
}

static void test_rate_limit(void **state) {
  (void)state;
  unsigned retry = 0;
  assert_null(tp_rate_limit_new(0, 10));
  assert_true(tp_rate_limit_allow(NULL, "x", 1, &retry)); /* no limiter: always */
  tp_rate_limit *rl = tp_rate_limit_new(2, 3);
  assert_non_null(rl);
  uint64_t t = 1000;
  for (int i = 0; i < 3; i++)
    assert_true(tp_rate_limit_allow(rl, "agent:a", t, &retry)); /* the burst */
  assert_false(tp_rate_limit_allow(rl, "agent:a", t, &retry));
  assert_int_equal(retry, 1);
  assert_true(tp_rate_limit_allow(rl, "agent:b", t, &retry)); /* buckets are per key */
  assert_true(tp_rate_limit_allow(rl, "agent:a", t + 500, &retry)); /* 2/s: one per 500 ms */
  assert_false(tp_rate_limit_allow(rl, "agent:a", t + 600, &retry));
  /* The table forgets the least recently seen key when full: never a lock-out. */
  char key[32];
  for (int i = 0; i < 2000; i++) {
    snprintf(key, sizeof(key), "addr:%d", i);
    assert_true(tp_rate_limit_allow(rl, key, t + 700 + (uint64_t)i, &retry));
  }
  tp_rate_limit_free(rl);

  tp_log_limit ll = {.lines = 2, .window_ms = 1000};
  unsigned long suppressed = 9;
  assert_true(tp_log_limit_take(&ll, 10, &suppressed));
  assert_int_equal(suppressed, 0);
  assert_true(tp_log_limit_take(&ll, 20, &suppressed));
  assert_false(tp_log_limit_take(&ll, 30, &suppressed));
  assert_false(tp_log_limit_take(&ll, 40, &suppressed));
  assert_true(tp_log_limit_take(&ll, 1500, &suppressed));
  assert_int_equal(suppressed, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hash_vector),
      cmocka_unit_test(test_ct_equal),
      cmocka_unit_test(test_mint),
      cmocka_unit_test_setup_teardown(test_save_load_lookup_revoke, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_secret_file_mode, setup, teardown),
      cmocka_unit_test(test_rate_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
