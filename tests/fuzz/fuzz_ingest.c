/* fuzz_ingest.c - libFuzzer target for the collector's decoder of untrusted bytes:
 * a POST /v1/results body through tp_ingest_batch (decode -> validate -> store),
 * then the report over whatever was stored, because stored strings are later
 * JSON-escaped and printed.
 *
 * Every input starts from an empty database, so a crash reproduces from that one
 * input, whatever ran before. Creating and migrating a store per input would cap
 * the fuzzer at ~150 inputs/s, so one shared-cache in-memory database stays open
 * through a second connection, which empties every table after each input; the
 * store is then closed and opened again (no migration left to do), so the writer's
 * in-memory dictionaries and seen sets start empty too, as they would on a fresh
 * file. The store code under test is unchanged. Beyond sanitizer findings, it
 * aborts when an
 * invariant breaks: a batch that passed validation must store (503 would make the
 * agent retry forever), a stored batch must be acknowledged with a decodable ack
 * and be a duplicate the second time, and a report must render. */
#include "fuzz_ingest.h"
#include "fuzz_seed.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "report.h"
#include "report_output.h"
#include "store.h"
#include "tlsprobe.pb-c.h"

#define RECEIVED_NS INT64_C(1700000000000000000)
#define NOW_NS INT64_C(4102444800000000000) /* 2100-01-01 */
#define DB_URI "file:tp_fuzz_ingest?mode=memory&cache=shared"

static tp_store *g_store; /* opened for each input, closed after it */
static sqlite3 *g_side;   /* empties the store between inputs; keeps the memory DB alive */

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_ingest: invariant broken: %s\n", what);
    abort();
  }
}

static void check_ack(const tp_ingest_reply *reply, uint32_t stored, int duplicate) {
  check(reply->ack != NULL, "200 without an ack");
  Tlsprobe__V1__BatchAck *ack = tlsprobe__v1__batch_ack__unpack(NULL, reply->ack_len, reply->ack);
  check(ack != NULL, "ack does not decode");
  check(ack->stored == stored && (ack->duplicate != 0) == (duplicate != 0), "ack contents");
  tlsprobe__v1__batch_ack__free_unpacked(ack, NULL);
}

/* Builds the report over everything stored (with every series' latest facts, the
 * latest chains and a time series) and renders every view in every format into
 * memory. */
static void report_all(tp_store *store) {
  char err[512];
  tp_report *rep = NULL;
  tp_report_query q = {.now_unix_ns = NOW_NS,
                       .since_unix_ns = 0,
                       .until_unix_ns = INT64_MAX, /* everything */
                       .since_text = "all",
                       .with_facts = true,
                       .with_chains = true,
                       .buckets = 4};
  check(tp_report_build(store, &q, &rep, err, sizeof(err)) == TP_E_OK, "report build");
  static const tp_report_view views[] = {TP_VIEW_SUMMARY, TP_VIEW_ERRORS,  TP_VIEW_VERSIONS,
                                         TP_VIEW_EXPIRY,  TP_VIEW_CLIENTS, TP_VIEW_TARGET,
                                         TP_VIEW_AGENTS};
  static const tp_report_format formats[] = {TP_FORMAT_TEXT, TP_FORMAT_JSON, TP_FORMAT_CSV};
  for (size_t v = 0; v < sizeof(views) / sizeof(views[0]); v++)
    for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
      char *text = NULL;
      size_t len = 0;
      FILE *out = open_memstream(&text, &len);
      check(out != NULL, "open_memstream");
      tp_report_output o = {.view = views[v], .format = formats[f]};
      check(tp_report_write(rep, &o, out) == TP_E_OK, "report write");
      check(fclose(out) == 0, "report close");
      check(len > 0 && text[len - 1] == '\n', "report ends with a newline");
      check(strlen(text) == len, "report contains a NUL byte");
      free(text);
    }
  tp_report_free(rep);
}

static tp_store *open_once(void) {
  char err[512];
  if (g_store != NULL)
    return g_store;
  if (g_side == NULL) {
    /* URI filenames are off by default; this must run before SQLite initializes. */
    check(sqlite3_config(SQLITE_CONFIG_URI, 1) == SQLITE_OK, "enable SQLite URIs");
    check(sqlite3_open_v2(DB_URI, &g_side, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) ==
              SQLITE_OK,
          "open the side connection");
  }
  if (tp_store_open_sqlite(DB_URI, TP_STORE_READWRITE, &g_store, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "fuzz_ingest: %s\n", err);
    abort();
  }
  return g_store;
}

void tp_fuzz_ingest_cleanup(void) {
  tp_store_close(g_store);
  sqlite3_close(g_side);
  g_store = NULL;
  g_side = NULL;
}

int tp_fuzz_ingest_one(const uint8_t *data, size_t size) {
  tp_store *store = open_once();
  tp_ingest_reply reply;
  tp_err rc = tp_ingest_batch(store, data, size, RECEIVED_NS, &reply);
  int status = reply.http_status;
  check(rc != TP_E_STORE && status != 503, "a batch that passed validation failed to store");
  check((rc == TP_E_OK) == (status == 200), "status agrees with the result code");
  check(status == 200 || status == 400, "status is 200 or 400");
  if (status == 400)
    check(reply.reason[0] != '\0' && reply.ack == NULL, "a 400 has a reason and no ack");
  if (status == 200) {
    check(!reply.duplicate && reply.stored == reply.results && reply.drops_stored == reply.drops,
          "first store stores everything");
    check_ack(&reply, reply.stored, 0);
    tp_ingest_reply_clear(&reply);
    rc = tp_ingest_batch(store, data, size, RECEIVED_NS + 1, &reply);
    check(rc == TP_E_OK && reply.duplicate && reply.stored == 0, "a retry is a duplicate");
    check_ack(&reply, 0, 1);
    report_all(store);
  }
  tp_ingest_reply_clear(&reply);
  tp_store_close(g_store);
  g_store = NULL;
  check(sqlite3_exec(g_side,
                     "DELETE FROM result_rows; DELETE FROM seen; DELETE FROM spool_keys;"
                     " DELETE FROM series; DELETE FROM shapes; DELETE FROM chains;"
                     " DELETE FROM batches; DELETE FROM drops; DELETE FROM spools",
                     NULL, NULL, NULL) == SQLITE_OK,
        "empty the store");
  return status;
}

/* Seeds named ok-* must be stored (200), reject-* refused (400). */
int tp_fuzz_seed_run(const char *name, const uint8_t *data, size_t size) {
  int want = strncmp(name, "ok-", 3) == 0 ? 200 : strncmp(name, "reject-", 7) == 0 ? 400 : 0;
  int got = tp_fuzz_ingest_one(data, size);
  if (want != 0 && got != want) {
    fprintf(stderr, "FAIL %s: status %d, want %d\n", name, got, want);
    return 1;
  }
  return 0;
}

void tp_fuzz_seed_cleanup(void) {
  tp_fuzz_ingest_cleanup();
}

/* The libFuzzer entry point (unused in the seed runner). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)tp_fuzz_ingest_one(data, size);
  return 0;
}
