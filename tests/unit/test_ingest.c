/* test_ingest.c - ingest against a real SQLite store in a temporary directory:
 * batches are built with protobuf-c, packed, and fed to tp_ingest_batch as bytes,
 * exactly as the HTTP layer does. Every rejection must name its reason and leave
 * the database untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest.h"
#include "store.h"
#include "tlsprobe.pb-c.h"
#include "validate.h"

#define NOW_NS INT64_C(1700000000000000000)

typedef struct fixture {
  char dir[64];
  char db[128];
  tp_store *store;
} fixture;

static void open_store(fixture *f) {
  char err[512] = "";
  tp_err rc = tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &f->store, err, sizeof(err));
  if (rc != TP_E_OK)
    fail_msg("open store: %s", err);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp_ingest_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
  open_store(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char path[160];
  tp_store_close(f->store);
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof(path), "%s%s", f->db, suffixes[i]);
    unlink(path);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

static long long query_int(const char *db_path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  long long value = -1;
  assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
  value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

static char *query_text(const char *db_path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
  char *value = strdup((const char *)sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

static long long rows(const fixture *f) { return query_int(f->db, "SELECT count(*) FROM results"); }

/* ---- batch building -------------------------------------------------------------- */

#define MAX_RESULTS 4

typedef struct test_batch {
  Tlsprobe__V1__ResultBatch batch;
  Tlsprobe__V1__ProbeResult results[MAX_RESULTS];
  Tlsprobe__V1__ProbeResult *result_ptrs[MAX_RESULTS];
  Tlsprobe__V1__CertificateFacts cert;
  Tlsprobe__V1__CertificateFacts *cert_ptrs[1];
  char *sans[2];
  Tlsprobe__V1__OcspFacts ocsp;
  Tlsprobe__V1__HttpFacts http;
  char *groups[TP_V_MAX_OFFERED + 1];
  char *shares[2];
} test_batch;

/* A valid batch of n results: results[0] succeeded with a one-cert chain, an OCSP
 * staple, an HTTP request and every client-profile fact; the others failed with
 * "expired" and carry none of them. */
static void make_batch(test_batch *t, size_t n) {
  static char san0[] = "example.test", san1[] = "www.example.test";
  memset(t, 0, sizeof(*t));
  tlsprobe__v1__result_batch__init(&t->batch);
  t->batch.agent_id = "agent-1";
  t->batch.instance_id = UINT64_MAX - 5; /* above INT64_MAX: stored as bit pattern */
  t->batch.batch_seq = 7;
  t->batch.sent_unix_ns = NOW_NS;
  tlsprobe__v1__certificate_facts__init(&t->cert);
  t->cert.subject = "CN=\"quoted\" \\ back\nslash, caf\xc3\xa9";
  t->cert.issuer = "CN=Test CA";
  t->sans[0] = san0;
  t->sans[1] = san1;
  t->cert.san_dns = t->sans;
  t->cert.n_san_dns = 2;
  t->cert.not_before_unix = 1600000000;
  t->cert.not_after_unix = 1800000000;
  t->cert.key_type = "EC/ECDSA";
  t->cert.key_bits = 256;
  t->cert.signature_algorithm = "ECDSA-SHA256";
  t->cert_ptrs[0] = &t->cert;
  tlsprobe__v1__ocsp_facts__init(&t->ocsp);
  t->ocsp.cert_status = "good";
  t->ocsp.this_update_unix = 1699990000;
  t->ocsp.next_update_unix = 1700590000;
  t->ocsp.age_seconds = 10000;
  tlsprobe__v1__http_facts__init(&t->http);
  t->http.status = 204;
  t->http.first_byte_ns = 1500000;
  t->http.hsts = 1;
  for (size_t i = 0; i < TP_V_MAX_OFFERED + 1; i++)
    t->groups[i] = i == 1 ? "SECP256R1" : "X25519";
  t->shares[0] = "X25519";
  t->shares[1] = "caf\xc3\xa9"; /* any UTF-8 is fine */
  for (size_t i = 0; i < n; i++) {
    Tlsprobe__V1__ProbeResult *r = &t->results[i];
    tlsprobe__v1__probe_result__init(r);
    r->agent_id = i == 0 ? "agent-1" : ""; /* empty = the batch's */
    r->region = "eu-west";
    r->target = "web";
    r->host = "localhost";
    r->port = 8443;
    r->profile = "modern";
    r->address = "127.0.0.1";
    r->result_seq = i + 1;
    r->started_unix_ns = NOW_NS - (int64_t)i * 1000;
    r->handshake_ns = 2000000;
    r->total_ns = 3000000;
    r->ok = i == 0;
    r->error_class = i == 0 ? TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK
                            : TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_EXPIRED;
    r->error_detail = i == 0 ? "" : "certificate expired";
    r->tls_version = "TLS1.3";
    r->cipher = "TLS_AES_128_GCM_SHA256";
    r->group = "X25519";
    if (i == 0) {
      r->chain = t->cert_ptrs;
      r->n_chain = 1;
      r->days_to_earliest_expiry = 42;
      r->chain_length_sent = 2;
      r->chain_complete = 1;
      r->groups_offered = t->groups;
      r->n_groups_offered = 2;
      r->key_shares_offered = t->shares;
      r->n_key_shares_offered = 2;
      r->mode = "early_data";
      r->resumed = 1;
      r->ticket_received = 1;
      r->resumption_handshake_ns = 700000;
      r->early_data_attempted = 1;
      r->early_data_accepted = 1;
      r->fidelity_note = "SSL 3.0 unsupported";
      r->ocsp = &t->ocsp;
      r->http = &t->http;
    } else {
      r->days_to_earliest_expiry = 5; /* ignored without a chain: stored NULL */
    }
    t->result_ptrs[i] = r;
  }
  t->batch.results = t->result_ptrs;
  t->batch.n_results = n;
}

static uint8_t *pack(const Tlsprobe__V1__ResultBatch *batch, size_t *len) {
  *len = tlsprobe__v1__result_batch__get_packed_size(batch);
  uint8_t *buf = malloc(*len + 1);
  assert_non_null(buf);
  assert_int_equal(tlsprobe__v1__result_batch__pack(batch, buf), *len);
  return buf;
}

/* Packs, ingests and returns the result code; reply is filled. */
static tp_err ingest(fixture *f, const test_batch *t, tp_ingest_reply *reply) {
  size_t len;
  uint8_t *bytes = pack(&t->batch, &len);
  tp_err rc = tp_ingest_batch(f->store, bytes, len, NOW_NS + 5, reply);
  free(bytes);
  return rc;
}

/* Ingests and asserts a 400 with exactly `reason` and no stored row. */
static void expect_reject(fixture *f, const test_batch *t, const char *reason) {
  tp_ingest_reply reply;
  assert_int_equal(ingest(f, t, &reply), TP_E_VALIDATE);
  assert_int_equal(reply.http_status, 400);
  assert_string_equal(reply.reason, reason);
  assert_null(reply.ack);
  tp_ingest_reply_clear(&reply);
  assert_int_equal(rows(f), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM batches"), 0);
}

static void decode_ack(const tp_ingest_reply *reply, uint64_t seq, uint32_t stored, bool dup) {
  Tlsprobe__V1__BatchAck *ack = tlsprobe__v1__batch_ack__unpack(NULL, reply->ack_len, reply->ack);
  assert_non_null(ack);
  assert_int_equal(ack->batch_seq, seq);
  assert_int_equal(ack->stored, stored);
  assert_int_equal(ack->duplicate, dup);
  tlsprobe__v1__batch_ack__free_unpacked(ack, NULL);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_valid_batch_is_stored(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_ingest_reply reply;
  make_batch(&t, 3);
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  assert_int_equal(reply.http_status, 200);
  assert_int_equal(reply.stored, 3);
  assert_false(reply.duplicate);
  decode_ack(&reply, 7, 3, false);
  tp_ingest_reply_clear(&reply);

  assert_int_equal(rows(f), 3);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results WHERE agent_id='agent-1'"), 3);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results WHERE error_class='expired'"
                                    " AND ok=0"),
                   2);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM results WHERE error_class='ok' AND ok=1"
                                    " AND grp='X25519' AND days_to_earliest_expiry=42"),
                   1);
  assert_int_equal(query_int(f->db, "SELECT instance_id FROM batches"), -6); /* UINT64_MAX-5 */
  assert_int_equal(query_int(f->db, "SELECT received_unix_ns FROM results LIMIT 1"), NOW_NS + 5);
  char *chain = query_text(f->db, "SELECT chain_json FROM results WHERE ok=1");
  assert_string_equal(
      chain, "[{\"subject\":\"CN=\\\"quoted\\\" \\\\ back\\nslash, caf\xc3\xa9\","
             "\"issuer\":\"CN=Test CA\",\"san_dns\":[\"example.test\",\"www.example.test\"],"
             "\"not_before_unix\":1600000000,\"not_after_unix\":1800000000,"
             "\"key_type\":\"EC/ECDSA\",\"key_bits\":256,"
             "\"signature_algorithm\":\"ECDSA-SHA256\"}]");
  free(chain);
  char *empty_chain = query_text(f->db, "SELECT chain_json FROM results WHERE result_seq=2");
  assert_string_equal(empty_chain, "[]");
  free(empty_chain);
  /* Without a chain the expiry is NULL, whatever the agent put in the field. */
  assert_int_equal(
      query_int(f->db, "SELECT count(*) FROM results WHERE days_to_earliest_expiry IS NULL"), 2);
}

static void test_new_fields_are_stored(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_ingest_reply reply;
  make_batch(&t, 2);
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  tp_ingest_reply_clear(&reply);
  assert_int_equal(
      query_int(f->db, "SELECT count(*) FROM results WHERE result_seq=1 AND mode='early_data'"
                       " AND ticket_received=1 AND resumption_handshake_ns=700000"
                       " AND early_data_attempted=1 AND early_data_accepted=1"
                       " AND fidelity_note='SSL 3.0 unsupported' AND ocsp_stapled=1"
                       " AND ocsp_cert_status='good' AND ocsp_this_update_unix=1699990000"
                       " AND ocsp_next_update_unix=1700590000 AND ocsp_age_seconds=10000"
                       " AND chain_length_sent=2 AND chain_complete=1 AND http_status=204"
                       " AND http_first_byte_ns=1500000 AND http_hsts=1"),
      1);
  char *groups = query_text(f->db, "SELECT groups_offered FROM results WHERE result_seq=1");
  assert_string_equal(groups, "[\"X25519\",\"SECP256R1\"]");
  free(groups);
  char *shares = query_text(f->db, "SELECT key_shares_offered FROM results WHERE result_seq=1");
  assert_string_equal(shares, "[\"X25519\",\"caf\xc3\xa9\"]");
  free(shares);
  /* The failed result: no staple, no HTTP request -> NULLs; empty lists -> []. */
  assert_int_equal(
      query_int(f->db, "SELECT count(*) FROM results WHERE result_seq=2 AND ocsp_stapled=0"
                       " AND ocsp_cert_status IS NULL AND ocsp_this_update_unix IS NULL"
                       " AND ocsp_next_update_unix IS NULL AND ocsp_age_seconds IS NULL"
                       " AND http_status IS NULL AND http_first_byte_ns IS NULL"
                       " AND http_hsts IS NULL AND groups_offered='[]'"
                       " AND key_shares_offered='[]' AND mode='' AND fidelity_note=''"
                       " AND chain_length_sent=0 AND chain_complete=0"),
      1);
}

/* Limits of the new fields that must still be accepted. */
static void test_new_field_boundaries_accepted(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_ingest_reply reply;
  char note[TP_V_MAX_NOTE + 1];
  memset(note, 'n', TP_V_MAX_NOTE);
  note[TP_V_MAX_NOTE] = '\0';
  make_batch(&t, 2);
  t.results[0].n_groups_offered = TP_V_MAX_OFFERED;
  t.results[0].fidelity_note = note;
  t.results[0].resumption_handshake_ns = TP_V_MAX_PHASE_NS;
  t.results[0].mode = "";
  t.http.status = 999;
  t.ocsp.cert_status = "unknown"; /* stapled but unreadable: the agent sends zeros */
  t.ocsp.this_update_unix = 0;
  t.ocsp.next_update_unix = 0;
  t.ocsp.age_seconds = 0;
  t.results[0].chain_length_sent = 1; /* == chain */
  t.results[1].mode = "handshake";
  t.results[1].http = &t.http;
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  tp_ingest_reply_clear(&reply);
  make_batch(&t, 1);
  t.batch.batch_seq = 8;
  t.results[0].result_seq = 10; /* a new result, not a re-send of seq 1 */
  t.http.status = 0; /* no valid status line */
  t.ocsp.cert_status = "revoked";
  t.ocsp.age_seconds = -TP_V_MAX_OCSP_TIME; /* a responder far in the future: stored */
  t.results[0].mode = "resumption";
  t.results[0].early_data_accepted = 0;
  t.results[0].chain_length_sent = 0; /* not reported */
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  tp_ingest_reply_clear(&reply);
  assert_int_equal(rows(f), 3);
}

static void test_new_field_rejects(void **state) {
  fixture *f = *state;
  test_batch t;
  char long_text[TP_V_MAX_NOTE + 2];
  memset(long_text, 'a', sizeof(long_text) - 1);
  long_text[sizeof(long_text) - 1] = '\0';

  make_batch(&t, 1);
  t.results[0].n_groups_offered = TP_V_MAX_OFFERED + 1;
  expect_reject(f, &t, "results[0].groups_offered: 65 entries exceeds the limit of 64");
  make_batch(&t, 2);
  t.results[1].key_shares_offered = t.groups;
  t.results[1].n_key_shares_offered = TP_V_MAX_OFFERED + 1;
  expect_reject(f, &t, "results[1].key_shares_offered: 65 entries exceeds the limit of 64");
  make_batch(&t, 1);
  t.groups[1] = "";
  expect_reject(f, &t, "results[0].groups_offered[1]: must not be empty");
  make_batch(&t, 1);
  t.shares[1] = "bad \xff";
  expect_reject(f, &t, "results[0].key_shares_offered[1]: invalid UTF-8");
  make_batch(&t, 1);
  long_text[129] = '\0';
  t.groups[0] = long_text;
  expect_reject(f, &t, "results[0].groups_offered[0]: 129 bytes exceeds the limit of 128");
  long_text[129] = 'a';

  make_batch(&t, 1);
  t.results[0].mode = "zero_rtt";
  expect_reject(f, &t, "results[0].mode: \"zero_rtt\" is not one of handshake, resumption,"
                       " early_data");
  /* Numbers are stored as int64: one above INT64_MAX would read back negative. */
  make_batch(&t, 1);
  t.results[0].result_seq = (uint64_t)INT64_MAX + 1;
  expect_reject(f, &t, "results[0].result_seq: 9223372036854775808 exceeds 9223372036854775807");
  make_batch(&t, 2);
  t.results[1].result_seq = t.results[0].result_seq;
  expect_reject(f, &t, "results[1].result_seq: 1 does not follow 1 (must increase)");
  make_batch(&t, 1);
  t.results[0].mode = "Resumption"; /* exact names only */
  expect_reject(f, &t, "results[0].mode: \"Resumption\" is not one of handshake, resumption,"
                       " early_data");
  make_batch(&t, 1);
  t.results[0].mode = "x\"\n y=1 0123456789abcdefghijklmnopqrstuvwxyz";
  /* Echoed values are neutralized and cut: reasons end up in logs. */
  expect_reject(f, &t, "results[0].mode: \"x?? y=1 0123456789abcdefghijklmn...\" is not one"
                       " of handshake, resumption, early_data");
  make_batch(&t, 1);
  t.results[0].mode = "\xc3";
  expect_reject(f, &t, "results[0].mode: invalid UTF-8");

  make_batch(&t, 1);
  t.results[0].fidelity_note = long_text; /* 1025 bytes */
  expect_reject(f, &t, "results[0].fidelity_note: 1025 bytes exceeds the limit of 1024");
  make_batch(&t, 1);
  t.results[0].resumption_handshake_ns = TP_V_MAX_PHASE_NS + 1;
  expect_reject(f, &t, "results[0].resumption_handshake_ns: 600000000001 ns exceeds the limit"
                       " of 10 minutes (no probe timeout can be set above 5 minutes)");
  make_batch(&t, 1);
  t.results[0].early_data_attempted = 0;
  expect_reject(f, &t, "results[0].early_data_accepted: true without early_data_attempted");

  make_batch(&t, 1);
  t.ocsp.cert_status = "";
  expect_reject(f, &t, "results[0].ocsp.cert_status: \"\" is not one of good, revoked, unknown");
  make_batch(&t, 1);
  t.ocsp.cert_status = "GOOD";
  expect_reject(f, &t,
                "results[0].ocsp.cert_status: \"GOOD\" is not one of good, revoked, unknown");
  make_batch(&t, 1);
  t.ocsp.this_update_unix = TP_V_MAX_OCSP_TIME + 1;
  expect_reject(f, &t, "results[0].ocsp.this_update_unix: 253402300800 is beyond year 9999");
  make_batch(&t, 1);
  t.ocsp.next_update_unix = INT64_MIN;
  expect_reject(f, &t,
                "results[0].ocsp.next_update_unix: -9223372036854775808 is beyond year 9999");
  make_batch(&t, 1);
  t.ocsp.age_seconds = INT64_MAX;
  expect_reject(f, &t, "results[0].ocsp.age_seconds: 9223372036854775807 is beyond year 9999");

  make_batch(&t, 1);
  t.http.status = 1000;
  expect_reject(f, &t, "results[0].http.status: 1000 is out of range 0..999");
  make_batch(&t, 1);
  t.http.first_byte_ns = UINT64_MAX;
  expect_reject(f, &t, "results[0].http.first_byte_ns: 18446744073709551615 ns exceeds the"
                       " limit of 10 minutes (no probe timeout can be set above 5 minutes)");

  make_batch(&t, 1);
  {
    /* Two certificates stored but one "sent": the chain can be capped, never padded. */
    Tlsprobe__V1__CertificateFacts *two[2] = {&t.cert, &t.cert};
    t.results[0].chain = two;
    t.results[0].n_chain = 2;
    t.results[0].chain_length_sent = 1;
    expect_reject(f, &t, "results[0].chain_length_sent: 1 is less than the 2 certificates in"
                         " chain");
  }
}

/* Schema version 3: address family, the real-client emulation check and the
 * early-data policy, stored as sent; a result without them stores the wire's
 * zero values ('' and 0), never NULL (NULL = stored before version 3). */
static void test_v3_fields_are_stored(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_ingest_reply reply;
  make_batch(&t, 3);
  t.results[0].address_family = "ipv6";
  t.results[0].address = "::1";
  t.results[0].emulation_checked = 1;
  t.results[0].emulation_divergence = "group X25519MLKEM768 not offered by the real client";
  t.results[0].early_data_policy_violation = 1; /* results[0] had its early data accepted */
  t.results[1].address_family = "ipv4";
  t.results[1].emulation_checked = 1; /* checked and exact */
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  assert_int_equal(reply.stored, 3);
  tp_ingest_reply_clear(&reply);
  assert_int_equal(
      query_int(f->db, "SELECT count(*) FROM results WHERE result_seq=1 AND address='::1'"
                       " AND address_family='ipv6' AND emulation_checked=1"
                       " AND emulation_divergence='group X25519MLKEM768 not offered by the"
                       " real client' AND early_data_policy_violation=1"),
      1);
  assert_int_equal(
      query_int(f->db, "SELECT count(*) FROM results WHERE result_seq=2"
                       " AND address_family='ipv4' AND emulation_checked=1"
                       " AND emulation_divergence='' AND early_data_policy_violation=0"),
      1);
  assert_int_equal(
      query_int(f->db, "SELECT count(*) FROM results WHERE result_seq=3"
                       " AND address_family='' AND emulation_checked=0"
                       " AND emulation_divergence='' AND early_data_policy_violation=0"),
      1);
}

/* A divergence text is stored as sent, control characters included (the report
 * escapes them), up to the note limit. */
static void test_v3_field_limits_accepted(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_ingest_reply reply;
  char note[TP_V_MAX_NOTE + 1];
  memset(note, 'd', TP_V_MAX_NOTE);
  note[TP_V_MAX_NOTE] = '\0';
  make_batch(&t, 2);
  t.results[0].emulation_checked = 1;
  t.results[0].emulation_divergence = "tab\there, \x1b[31m red \xc2\x9b";
  t.results[1].emulation_checked = 1;
  t.results[1].emulation_divergence = note; /* on a failure: stored, counted nowhere */
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  tp_ingest_reply_clear(&reply);
  char *div = query_text(f->db, "SELECT emulation_divergence FROM results WHERE result_seq=1");
  assert_string_equal(div, "tab\there, \x1b[31m red \xc2\x9b");
  free(div);
  assert_int_equal(query_int(f->db, "SELECT length(emulation_divergence) FROM results"
                                    " WHERE result_seq=2"),
                   TP_V_MAX_NOTE);
}

/* Their contradictions are refused whole (validate.c), so nothing half-true
 * reaches the report. */
static void test_v3_field_rejects(void **state) {
  fixture *f = *state;
  test_batch t;
  char note[TP_V_MAX_NOTE + 2];
  memset(note, 'd', sizeof(note) - 1);
  note[sizeof(note) - 1] = '\0'; /* 1025 bytes */
  make_batch(&t, 1);
  t.results[0].emulation_checked = 1;
  t.results[0].emulation_divergence = note;
  expect_reject(f, &t, "results[0].emulation_divergence: 1025 bytes exceeds the limit of 1024");
  make_batch(&t, 1);
  t.results[0].emulation_checked = 1;
  t.results[0].emulation_divergence = "bad \xc0\xaf";
  expect_reject(f, &t, "results[0].emulation_divergence: invalid UTF-8");
  make_batch(&t, 1);
  t.results[0].emulation_divergence = "cipher X not offered";
  expect_reject(f, &t, "results[0].emulation_divergence: set without emulation_checked");
  make_batch(&t, 2);
  t.results[1].early_data_policy_violation = 1; /* results[1] attempted no early data */
  expect_reject(f, &t, "results[1].early_data_policy_violation: true without"
                       " early_data_accepted");
  make_batch(&t, 1);
  t.results[0].address_family = "IPv4";
  expect_reject(f, &t, "results[0].address_family: \"IPv4\" is not one of ipv4, ipv6");
}

static void test_duplicate_batch_is_acked_not_stored(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_ingest_reply reply;
  make_batch(&t, 2);
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  tp_ingest_reply_clear(&reply);
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  assert_int_equal(reply.http_status, 200);
  assert_true(reply.duplicate);
  assert_int_equal(reply.stored, 0);
  decode_ack(&reply, 7, 0, true);
  tp_ingest_reply_clear(&reply);
  assert_int_equal(rows(f), 2);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM batches"), 1);

  /* Same seq from a restarted agent (new instance_id) is a different batch. */
  t.batch.instance_id = 1;
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  assert_false(reply.duplicate);
  tp_ingest_reply_clear(&reply);
  assert_int_equal(rows(f), 4);
}

static void test_truncated_bytes_are_decode_errors(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_ingest_reply reply;
  size_t len;
  make_batch(&t, 2);
  uint8_t *bytes = pack(&t.batch, &len);
  assert_int_equal(tp_ingest_batch(f->store, bytes, len - 3, NOW_NS, &reply), TP_E_DECODE);
  assert_int_equal(reply.http_status, 400);
  assert_string_equal(reply.reason, "malformed protobuf");
  tp_ingest_reply_clear(&reply);
  const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(tp_ingest_batch(f->store, garbage, sizeof(garbage), NOW_NS, &reply),
                   TP_E_DECODE);
  tp_ingest_reply_clear(&reply);
  free(bytes);
  assert_int_equal(rows(f), 0);
}

static void test_empty_batch(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_ingest_reply reply;
  make_batch(&t, 0);
  expect_reject(f, &t, "empty batch");
  /* A zero-length body decodes to an empty batch too. */
  assert_int_equal(tp_ingest_batch(f->store, (const uint8_t *)"", 0, NOW_NS, &reply),
                   TP_E_VALIDATE);
  assert_string_equal(reply.reason, "empty batch");
  tp_ingest_reply_clear(&reply);
}

static void test_bad_port(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 3);
  t.results[1].port = 0;
  expect_reject(f, &t, "results[1].port: 0 is out of range 1..65535");
  t.results[1].port = 65536;
  expect_reject(f, &t, "results[1].port: 65536 is out of range 1..65535");
}

static void test_bad_error_class(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 2);
  t.results[1].error_class = (Tlsprobe__V1__ErrorClass)999;
  expect_reject(f, &t, "results[1].error_class: 999 is not a known error class");
  t.results[1].error_class = TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_UNSPECIFIED;
  expect_reject(f, &t, "results[1].error_class: 0 is not a known error class");
}

static void test_ok_must_match_class(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 2);
  t.results[1].ok = 1;
  expect_reject(f, &t, "results[1].ok: ok=true contradicts error_class expired");
  make_batch(&t, 1);
  t.results[0].ok = 0;
  expect_reject(f, &t, "results[0].ok: ok=false contradicts error_class ok");
}

static void test_string_limits(void **state) {
  fixture *f = *state;
  test_batch t;
  char long_text[1100];
  memset(long_text, 'a', sizeof(long_text) - 1);
  long_text[sizeof(long_text) - 1] = '\0';

  make_batch(&t, 1);
  long_text[256] = '\0';
  t.results[0].target = long_text;
  expect_reject(f, &t, "results[0].target: 256 bytes exceeds the limit of 255");
  long_text[256] = 'a';

  make_batch(&t, 1);
  t.results[0].target = "";
  expect_reject(f, &t, "results[0].target: must not be empty");

  make_batch(&t, 1);
  t.results[0].profile = "";
  expect_reject(f, &t, "results[0].profile: must not be empty");

  make_batch(&t, 1);
  long_text[65] = '\0';
  t.results[0].region = long_text;
  expect_reject(f, &t, "results[0].region: 65 bytes exceeds the limit of 64");
  long_text[65] = 'a';

  make_batch(&t, 1);
  t.results[0].error_detail = long_text; /* 1099 bytes */
  expect_reject(f, &t, "results[0].error_detail: 1099 bytes exceeds the limit of 1024");

  make_batch(&t, 1);
  long_text[129] = '\0';
  t.batch.agent_id = long_text;
  expect_reject(f, &t, "agent_id: 129 bytes exceeds the limit of 128");

  make_batch(&t, 1);
  t.batch.agent_id = "";
  expect_reject(f, &t, "agent_id: must not be empty");

  make_batch(&t, 1);
  t.batch.agent_id = "bad agent";
  expect_reject(f, &t, "agent_id: must be printable ASCII without spaces");

  make_batch(&t, 1);
  t.results[0].agent_id = "someone-else";
  expect_reject(f, &t, "results[0].agent_id: differs from the batch agent_id");
}

static void test_invalid_utf8(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 2);
  t.results[1].profile = "mod\xff";
  expect_reject(f, &t, "results[1].profile: invalid UTF-8");
  make_batch(&t, 1);
  t.results[0].error_detail = "overlong \xc0\xaf";
  expect_reject(f, &t, "results[0].error_detail: invalid UTF-8");
  make_batch(&t, 1);
  t.results[0].host = "surrogate \xed\xa0\x80";
  expect_reject(f, &t, "results[0].host: invalid UTF-8");
  make_batch(&t, 1);
  t.cert.issuer = "truncated \xe2\x82";
  expect_reject(f, &t, "results[0].chain[0].issuer: invalid UTF-8");
  make_batch(&t, 1);
  t.sans[1] = "\xf8\x88\x80\x80\x80";
  expect_reject(f, &t, "results[0].chain[0].san_dns[1]: invalid UTF-8");
}

static void test_utf8_validator(void **state) {
  (void)state;
  assert_true(tp_utf8_valid((const unsigned char *)"", 0));
  assert_true(tp_utf8_valid((const unsigned char *)"plain", 5));
  assert_true(tp_utf8_valid((const unsigned char *)"caf\xc3\xa9", 5));
  assert_true(tp_utf8_valid((const unsigned char *)"\xe2\x82\xac", 3));      /* U+20AC */
  assert_true(tp_utf8_valid((const unsigned char *)"\xf0\x9f\x98\x80", 4));  /* U+1F600 */
  assert_true(tp_utf8_valid((const unsigned char *)"\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
  assert_false(tp_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
  assert_false(tp_utf8_valid((const unsigned char *)"\xe0\x80\xaf", 3));     /* overlong */
  assert_false(tp_utf8_valid((const unsigned char *)"\xf0\x80\x80\xaf", 4)); /* overlong */
  assert_false(tp_utf8_valid((const unsigned char *)"\x80", 1));
  assert_false(tp_utf8_valid((const unsigned char *)"\xc3", 1));
}

static void test_timing_checks(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1);
  t.results[0].started_unix_ns = 0;
  expect_reject(f, &t, "results[0].started_unix_ns: 0 is not a positive timestamp");
  make_batch(&t, 1);
  t.results[0].handshake_ns = TP_V_MAX_PHASE_NS + 1;
  expect_reject(f, &t, "results[0].handshake_ns: 600000000001 ns exceeds the limit of 10 minutes "
                       "(no probe timeout can be set above 5 minutes)");
  make_batch(&t, 1);
  t.results[0].loop_lag_ns = UINT64_MAX;
  expect_reject(f, &t,
                "results[0].loop_lag_ns: 18446744073709551615 ns exceeds the limit of 1 hour");
}

static void test_one_bad_result_stores_nothing(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 4);
  t.results[3].port = 0;
  expect_reject(f, &t, "results[3].port: 0 is out of range 1..65535");
}

static void test_store_failure_is_503_and_rolled_back(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_ingest_reply reply;
  sqlite3 *db = NULL;
  /* Break the schema behind the store's back: the prepared insert fails. */
  assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "DROP TABLE result_rows", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  make_batch(&t, 2);
  assert_int_equal(ingest(f, &t, &reply), TP_E_STORE);
  assert_int_equal(reply.http_status, 503);
  assert_non_null(strstr(reply.reason, "result_rows"));
  tp_ingest_reply_clear(&reply);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM batches"), 0);
}

static void test_reopen_keeps_rows(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_ingest_reply reply;
  make_batch(&t, 3);
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  tp_ingest_reply_clear(&reply);
  tp_store_close(f->store);
  f->store = NULL;
  open_store(f); /* migration must be idempotent */
  assert_int_equal(rows(f), 3);
  assert_int_equal(query_int(f->db, "PRAGMA user_version"), 10);
  /* The reopened store still dedupes against the earlier batch. */
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  assert_true(reply.duplicate);
  tp_ingest_reply_clear(&reply);
  assert_int_equal(rows(f), 3);
}

/* ---- issue #7: hostile input ------------------------------------------------------ */

static tp_err ingest_ex(fixture *f, const test_batch *t, const tp_ingest_params *p,
                        tp_ingest_reply *reply) {
  size_t len;
  uint8_t *bytes = pack(&t->batch, &len);
  tp_err rc = tp_ingest_batch_ex(f->store, bytes, len, p, reply);
  free(bytes);
  return rc;
}

static void expect_status(fixture *f, const test_batch *t, const tp_ingest_params *p, int status,
                          const char *reason) {
  tp_ingest_reply reply;
  tp_err rc = ingest_ex(f, t, p, &reply);
  if (reply.http_status != status || (reason != NULL && strcmp(reply.reason, reason) != 0))
    fail_msg("rc=%d status=%d reason \"%s\", expected %d \"%s\"", rc, reply.http_status,
             reply.reason, status, reason ? reason : "");
  tp_ingest_reply_clear(&reply);
}

/* dns + connect + handshake <= total + loop_lag (what the engine guarantees); total 0 is
 * "not measured". */
static void test_phase_sum_rule(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1);
  t.results[0].dns_ns = 500000;
  t.results[0].connect_ns = 500000;
  t.results[0].handshake_ns = 2000000;
  t.results[0].total_ns = 2999999;
  expect_reject(f, &t, "results[0].total_ns: 2999999 ns is less than dns_ns + connect_ns + "
                       "handshake_ns = 3000000 ns (with loop_lag_ns 0)");
  t.results[0].handshake_ns = TP_V_MAX_PHASE_NS; /* the 1-hour handshake is gone already */
  t.results[0].total_ns = 1000;
  expect_reject(f, &t, "results[0].total_ns: 1000 ns is less than dns_ns + connect_ns + "
                       "handshake_ns = 600001000000 ns (with loop_lag_ns 0)");
  make_batch(&t, 1);
  t.results[0].dns_ns = 500000;
  t.results[0].connect_ns = 500000;
  t.results[0].total_ns = 2500000;
  t.results[0].loop_lag_ns = 500000; /* the lag subtracted from total but not from phases */
  tp_ingest_reply reply;
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  tp_ingest_reply_clear(&reply);
  make_batch(&t, 1);
  t.batch.batch_seq = 8;
  t.results[0].result_seq = 2;
  t.results[0].total_ns = 0; /* not measured (a minimal error record) */
  assert_int_equal(ingest(f, &t, &reply), TP_E_OK);
  tp_ingest_reply_clear(&reply);
  assert_int_equal(rows(f), 2);
}

static void test_time_window(void **state) {
  fixture *f = *state;
  test_batch t;
  tp_time_window w = {.now_unix_ns = NOW_NS,
                      .max_age_ns = UINT64_C(7) * 86400 * 1000000000,
                      .max_skew_ns = UINT64_C(300) * 1000000000};
  tp_ingest_params p = {.received_unix_ns = NOW_NS, .window = &w};
  make_batch(&t, 2);
  t.results[1].started_unix_ns = NOW_NS + INT64_C(301) * 1000000000;
  expect_status(f, &t, &p, 400,
                "results[1].started_unix_ns: 2023-11-14T22:18:21Z is more than 300 s ahead of the "
                "collector's clock (2023-11-14T22:13:20Z; max_clock_skew)");
  t.results[1].started_unix_ns = INT64_MAX; /* 2262 */
  expect_status(f, &t, &p, 400,
                "results[1].started_unix_ns: 2262-04-11T23:47:16Z is more than 300 s ahead of the "
                "collector's clock (2023-11-14T22:13:20Z; max_clock_skew)");
  t.results[1].started_unix_ns = NOW_NS - INT64_C(8) * 86400 * 1000000000;
  expect_status(f, &t, &p, 400,
                "results[1].started_unix_ns: 2023-11-06T22:13:20Z is more than 604800 s before the "
                "collector's clock (2023-11-14T22:13:20Z; max_result_age)");
  assert_int_equal(rows(f), 0);
  /* At the edges: 5 minutes ahead, 7 days behind. */
  t.results[0].started_unix_ns = NOW_NS + INT64_C(300) * 1000000000;
  t.results[1].started_unix_ns = NOW_NS - INT64_C(7) * 86400 * 1000000000;
  expect_status(f, &t, &p, 200, NULL);
  assert_int_equal(rows(f), 2);
  /* Drop reports: ahead of the clock is refused; any age is accepted (an outage longer
   * than max_result_age is when the loss they count matters most). */
  make_batch(&t, 1);
  t.batch.batch_seq = 10;
  Tlsprobe__V1__DropReport drop = TLSPROBE__V1__DROP_REPORT__INIT;
  Tlsprobe__V1__DropReport *drops[1] = {&drop};
  drop.drop_id = 1;
  drop.count = 1;
  drop.reason = "spool_full";
  drop.first_unix_ns = NOW_NS - 1000;
  drop.last_unix_ns = NOW_NS + INT64_C(301) * 1000000000;
  t.batch.drops = drops;
  t.batch.n_drops = 1;
  t.results[0].result_seq = 3;
  expect_status(f, &t, &p, 400,
                "drops[0].last_unix_ns: 2023-11-14T22:18:21Z is more than 300 s ahead of the "
                "collector's clock (2023-11-14T22:13:20Z; max_clock_skew)");
  drop.first_unix_ns = drop.last_unix_ns = NOW_NS - INT64_C(30) * 86400 * 1000000000;
  expect_status(f, &t, &p, 200, NULL);
  /* Without a window (tools replaying old batches) only positivity is checked. */
  make_batch(&t, 1);
  t.batch.batch_seq = 9;
  t.results[0].result_seq = 5;
  t.results[0].started_unix_ns = INT64_C(4102444800000000000); /* 2100 */
  tp_ingest_params none = {.received_unix_ns = NOW_NS};
  expect_status(f, &t, &none, 200, NULL);
}

static void test_identity_must_match(void **state) {
  fixture *f = *state;
  test_batch t;
  make_batch(&t, 1);
  tp_ingest_params p = {.received_unix_ns = NOW_NS, .identity = "agent-2"};
  expect_status(f, &t, &p, 403, "agent_id \"agent-1\" is not the authenticated agent \"agent-2\"");
  assert_int_equal(rows(f), 0);
  /* An empty id is a broken batch: 400 from validation, not 403. */
  t.batch.agent_id = "";
  expect_status(f, &t, &p, 400, "agent_id: must not be empty");
  make_batch(&t, 1);
  p.identity = "agent-1";
  expect_status(f, &t, &p, 200, NULL);
  assert_int_equal(rows(f), 1);
}

/* Decode memory is bounded before allocation: results are counted in the wire bytes,
 * nested repetition runs into the budget. */
static void test_decode_bounds(void **state) {
  fixture *f = *state;
  tp_ingest_reply reply;
  size_t n = 10001, len = 9 + 2 * n;
  uint8_t *b = malloc(len);
  assert_non_null(b);
  memcpy(b, "\x0a\x07" "agent-1", 9);
  for (size_t i = 0; i < n; i++)
    memcpy(b + 9 + 2 * i, "\x2a\x00", 2); /* an empty ProbeResult */
  assert_int_equal(tp_ingest_batch(f->store, b, len, NOW_NS, &reply), TP_E_TOOBIG);
  assert_int_equal(reply.http_status, 400);
  assert_string_equal(reply.reason, "results: 10001 results exceeds the limit of 10000");
  tp_ingest_reply_clear(&reply);
  /* A truncated top-level field is malformed whatever follows. */
  assert_int_equal(tp_ingest_batch(f->store, b, 10, NOW_NS, &reply), TP_E_DECODE);
  assert_string_equal(reply.reason, "malformed protobuf");
  tp_ingest_reply_clear(&reply);
  free(b);

  /* One result holding 200,000 empty certificates (3 wire bytes each, ~100 decoded). */
  size_t certs = 200000, inner_len = 3 * certs;
  len = 9 + 1 + 4 + inner_len;
  b = malloc(len);
  assert_non_null(b);
  memcpy(b, "\x0a\x07" "agent-1", 9);
  size_t at = 9, v = inner_len;
  b[at++] = 0x2a; /* results, length-delimited: the length as a varint */
  for (; v >= 0x80; v >>= 7)
    b[at++] = (uint8_t)(v | 0x80);
  b[at++] = (uint8_t)v;
  for (size_t i = 0; i < certs; i++) {
    memcpy(b + at, "\x82\x05\x00", 3); /* field 80, length 0 */
    at += 3;
  }
  assert_int_equal(tp_ingest_batch(f->store, b, at, NOW_NS, &reply), TP_E_TOOBIG);
  assert_int_equal(reply.http_status, 400);
  assert_string_equal(reply.reason, "batch too large to decode");
  tp_ingest_reply_clear(&reply);
  free(b);
  assert_int_equal(rows(f), 0);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_valid_batch_is_stored),
      T(test_new_fields_are_stored),
      T(test_new_field_boundaries_accepted),
      T(test_new_field_rejects),
      T(test_v3_fields_are_stored),
      T(test_v3_field_limits_accepted),
      T(test_v3_field_rejects),
      T(test_duplicate_batch_is_acked_not_stored),
      T(test_truncated_bytes_are_decode_errors),
      T(test_empty_batch),
      T(test_bad_port),
      T(test_bad_error_class),
      T(test_ok_must_match_class),
      T(test_string_limits),
      T(test_invalid_utf8),
      cmocka_unit_test(test_utf8_validator),
      T(test_timing_checks),
      T(test_one_bad_result_stores_nothing),
      T(test_store_failure_is_503_and_rolled_back),
      T(test_reopen_keeps_rows),
      T(test_phase_sum_rule),
      T(test_time_window),
      T(test_identity_must_match),
      T(test_decode_bounds),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
