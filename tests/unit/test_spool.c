/* test_spool.c - the agent's spool, every case against both implementations
 * (SQLite file and memory), plus what only a file can do (survive a reopen):
 *   - numbering from 1, strictly increasing, never reused (also after the newest
 *     records were acked and the file reopened);
 *   - lease -> ack deletes exactly the lease; nack keeps the same batch, a
 *     dissolved lease is cut again; a lease persists across a reopen with its
 *     batch number and range (a crash between lease and ack loses nothing);
 *   - max_records and max_bytes bound a lease, but one record always fits;
 *   - the size bound drops the oldest records outside the lease, reports each
 *     contiguous run once (count = range size), merges consecutive drops;
 *   - counted losses (invalid results) travel as drop reports;
 *   - replace swaps a record's bytes under the same number;
 *   - a second process cannot open a spool file in use;
 *   - an ack whose deletion fails (a full disk) never re-sends the batch from this
 *     process: appends and leases fail until the deletion succeeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool.h"

#define KIB 1024

typedef struct fixture {
  char dir[64];
  char path[128];
  bool file; /* SQLite (true) or memory */
  tp_spool *spool;
} fixture;

static tp_spool *open_spool(fixture *f, uint64_t max_bytes) {
  tp_spool *s = NULL;
  char err[512] = "";
  if (f->file) {
    if (tp_spool_open_sqlite(f->path, max_bytes, &s, err, sizeof(err)) != TP_E_OK)
      fail_msg("open: %s", err);
  } else {
    assert_int_equal(tp_spool_open_memory(max_bytes, &s), TP_E_OK);
  }
  return s;
}

static int setup(fixture **out, bool file) {
  fixture *f = calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp-spool.XXXXXX");
  if (f == NULL || mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->path, sizeof(f->path), "%s/agent.spool", f->dir);
  f->file = file;
  *out = f;
  return 0;
}

static int setup_file(void **state) { return setup((fixture **)state, true); }
static int setup_memory(void **state) { return setup((fixture **)state, false); }

static int teardown(void **state) {
  fixture *f = *state;
  tp_spool_close(f->spool);
  const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
  char path[160];
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof(path), "%s%s", f->path, suffixes[i]);
    unlink(path);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

/* Appends a record of `len` bytes, each byte = tag; returns its number. */
static uint64_t put(tp_spool *s, size_t len, uint8_t tag, int64_t t) {
  uint8_t buf[64 * KIB];
  assert_true(len <= sizeof(buf));
  memset(buf, tag, len);
  uint64_t seq = 0;
  assert_int_equal(tp_spool_append(s, buf, len, t, &seq), TP_E_OK);
  return seq;
}

static tp_spool_lease *lease(tp_spool *s, size_t max_records, size_t max_bytes) {
  tp_spool_lease *l = NULL;
  assert_int_equal(tp_spool_lease_next(s, max_records, max_bytes, &l), TP_E_OK);
  return l;
}

static void test_numbering_and_ack(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  for (uint64_t i = 1; i <= 5; i++)
    assert_int_equal(put(f->spool, 10, (uint8_t)i, (int64_t)i), i);
  tp_spool_lease *l = lease(f->spool, 3, 1 << 20);
  assert_non_null(l);
  assert_int_equal(l->batch_seq, 1);
  assert_int_equal(l->n_records, 3);
  assert_int_equal(l->records[0].seq, 1);
  assert_int_equal(l->records[2].seq, 3);
  assert_int_equal(l->records[2].data[0], 3);
  assert_int_equal(l->bytes, 30);
  /* One lease at a time. */
  tp_spool_lease *second = NULL;
  assert_int_equal(tp_spool_lease_next(f->spool, 3, 1 << 20, &second), TP_E_INVAL);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  tp_spool_stats st;
  tp_spool_get_stats(f->spool, &st);
  assert_int_equal(st.records, 2);
  assert_int_equal(st.bytes, 20);
  l = lease(f->spool, 10, 1 << 20);
  assert_int_equal(l->batch_seq, 2);
  assert_int_equal(l->n_records, 2);
  assert_int_equal(l->records[0].seq, 4);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  assert_null(lease(f->spool, 10, 1 << 20)); /* empty: nothing to send */
  /* Numbers continue: a new result is never mistaken for a re-send. */
  assert_int_equal(put(f->spool, 10, 6, 6), 6);
}

static void test_nack_keeps_or_dissolves(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  for (int i = 0; i < 4; i++)
    put(f->spool, 10, 1, 1);
  tp_spool_lease *l = lease(f->spool, 4, 1 << 20);
  assert_int_equal(l->batch_seq, 1);
  tp_spool_nack(f->spool, l, true); /* a retry: the same batch */
  l = lease(f->spool, 2, 1 << 20);  /* the smaller max does not cut a kept batch */
  assert_int_equal(l->batch_seq, 1);
  assert_int_equal(l->n_records, 4);
  tp_spool_nack(f->spool, l, false); /* dissolved (a 413): cut anew */
  l = lease(f->spool, 2, 1 << 20);
  assert_int_equal(l->batch_seq, 2);
  assert_int_equal(l->n_records, 2);
  assert_int_equal(l->records[1].seq, 2);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
}

static void test_lease_bytes_bound_but_one_fits(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  put(f->spool, 40 * KIB, 1, 1);
  put(f->spool, 10, 2, 2);
  put(f->spool, 10, 3, 3);
  tp_spool_lease *l = lease(f->spool, 100, 16 * KIB); /* the first alone is larger */
  assert_int_equal(l->n_records, 1);
  assert_int_equal(l->bytes, 40 * KIB);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  l = lease(f->spool, 100, 15);
  assert_int_equal(l->n_records, 1); /* 10 + 10 > 15 */
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
}

/* 64 KiB bound, 1 KiB records: the 65th append drops the oldest outside the
 * lease, in one chunk, reported as one drop with its exact range. */
static void test_full_drops_oldest_outside_lease(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, 64 * KIB);
  for (int i = 1; i <= 64; i++)
    put(f->spool, KIB, (uint8_t)i, 1000 + i);
  tp_spool_lease *l = lease(f->spool, 2, 1 << 20); /* seqs 1, 2 in flight */
  tp_spool_nack(f->spool, l, true);
  assert_int_equal(put(f->spool, KIB, 65, 1065), 65);
  tp_spool_stats st;
  tp_spool_get_stats(f->spool, &st);
  assert_true(st.bytes <= 64 * KIB);
  assert_int_equal(st.dropped_full, 1); /* 64 KiB / 64 = 1 KiB chunk: one record */
  /* The kept lease is intact and now carries no drop (it was cut before). */
  l = lease(f->spool, 100, 1 << 20);
  assert_int_equal(l->batch_seq, 1);
  assert_int_equal(l->n_records, 2);
  assert_int_equal(l->n_drops, 0);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  /* Two more appends drop seq 4 and 5: merged with seq 3's report. */
  put(f->spool, KIB, 66, 1066);
  put(f->spool, KIB, 67, 1067);
  put(f->spool, KIB, 68, 1068);
  l = lease(f->spool, 100, 1 << 20);
  assert_int_equal(l->n_drops, 1);
  assert_string_equal(l->drops[0].reason, TP_SPOOL_DROP_FULL);
  assert_int_equal(l->drops[0].first_seq, 3);
  assert_true(l->drops[0].last_seq >= 3);
  assert_int_equal(l->drops[0].count, l->drops[0].last_seq - l->drops[0].first_seq + 1);
  assert_int_equal(l->drops[0].first_unix_ns, 1003);
  assert_int_equal(l->records[0].seq, l->drops[0].last_seq + 1); /* no gap unexplained */
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  tp_spool_get_stats(f->spool, &st);
  assert_int_equal(st.records, 0);
}

static void test_counted_drops_are_reported(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  tp_spool_count_drop(f->spool, TP_SPOOL_DROP_INVALID, 0, 500);
  tp_spool_count_drop(f->spool, TP_SPOOL_DROP_INVALID, 0, 700);
  tp_spool_lease *l = lease(f->spool, 10, 1 << 20);
  assert_non_null(l); /* a lease of drops only */
  assert_int_equal(l->n_records, 0);
  assert_int_equal(l->n_drops, 1);
  assert_int_equal(l->drops[0].count, 2);
  assert_int_equal(l->drops[0].first_seq, 0);
  assert_int_equal(l->drops[0].first_unix_ns, 500);
  assert_int_equal(l->drops[0].last_unix_ns, 700);
  assert_int_equal(l->drops[0].drop_id, 1);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  assert_null(lease(f->spool, 10, 1 << 20));
}

static void test_replace_keeps_number(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  put(f->spool, 100, 1, 1);
  uint8_t small[3] = {9, 9, 9};
  assert_int_equal(tp_spool_replace(f->spool, 1, small, sizeof(small)), TP_E_OK);
  assert_int_equal(tp_spool_replace(f->spool, 77, small, sizeof(small)), TP_E_NOTFOUND);
  tp_spool_stats st;
  tp_spool_get_stats(f->spool, &st);
  assert_int_equal(st.bytes, 3);
  tp_spool_lease *l = lease(f->spool, 10, 1 << 20);
  assert_int_equal(l->records[0].seq, 1);
  assert_int_equal(l->records[0].len, 3);
  assert_int_equal(l->records[0].data[0], 9);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
}

/* Results older than the collector accepts go as one too_old report, not one by one
 * through refusals; the lease in flight is never touched. */
static void test_expire_reports_too_old(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  for (int i = 1; i <= 6; i++)
    put(f->spool, 10, (uint8_t)i, i * 100);
  tp_spool_lease *l = lease(f->spool, 1, 1 << 20); /* seq 1 in flight */
  tp_spool_nack(f->spool, l, true);
  assert_int_equal(tp_spool_expire(f->spool, 450), TP_E_OK); /* 2, 3, 4 are older */
  tp_spool_stats st;
  tp_spool_get_stats(f->spool, &st);
  assert_int_equal(st.dropped_too_old, 3);
  assert_int_equal(st.records, 3);
  l = lease(f->spool, 10, 1 << 20);
  assert_int_equal(l->records[0].seq, 1); /* the kept lease, as it was */
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  l = lease(f->spool, 10, 1 << 20);
  assert_int_equal(l->n_drops, 1);
  assert_string_equal(l->drops[0].reason, TP_SPOOL_DROP_TOO_OLD);
  assert_int_equal(l->drops[0].first_seq, 2);
  assert_int_equal(l->drops[0].last_seq, 4);
  assert_int_equal(l->drops[0].count, 3);
  assert_int_equal(l->drops[0].first_unix_ns, 200);
  assert_int_equal(l->drops[0].last_unix_ns, 400);
  assert_int_equal(l->n_records, 2);
  assert_int_equal(l->records[0].seq, 5);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  assert_int_equal(tp_spool_expire(f->spool, 10000), TP_E_OK); /* nothing left: no-op */
  assert_null(lease(f->spool, 10, 1 << 20));
}

/* A numbered result dropped after the fact travels with its number (so it is not
 * also missing), and consecutive ones merge into one report. */
static void test_numbered_drops_keep_their_numbers(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  tp_spool_count_drop(f->spool, TP_SPOOL_DROP_INVALID, 7, 100);
  tp_spool_count_drop(f->spool, TP_SPOOL_DROP_INVALID, 8, 200);
  tp_spool_count_drop(f->spool, TP_SPOOL_DROP_INVALID, 0, 300);
  tp_spool_lease *l = lease(f->spool, 10, 1 << 20);
  assert_int_equal(l->n_drops, 2);
  assert_int_equal(l->drops[0].first_seq, 7);
  assert_int_equal(l->drops[0].last_seq, 8);
  assert_int_equal(l->drops[0].count, 2);
  assert_int_equal(l->drops[1].first_seq, 0);
  assert_int_equal(l->drops[1].count, 1);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
}

/* A refused record is given up alone: the drop reports of the lease it was in go
 * back to the spool (the collector did not take them either), and the record is
 * reported lost under its number. */
static void test_forfeit_keeps_the_lease_drops(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  tp_spool_count_drop(f->spool, TP_SPOOL_DROP_INVALID, 0, 50);
  put(f->spool, 10, 1, 100);
  put(f->spool, 10, 2, 200);
  tp_spool_lease *l = lease(f->spool, 1, 1 << 20);
  assert_int_equal(l->n_drops, 1);
  assert_int_equal(tp_spool_forfeit(f->spool, 1, TP_SPOOL_DROP_INVALID), TP_E_INVAL); /* leased */
  tp_spool_nack(f->spool, l, false);
  assert_int_equal(tp_spool_forfeit(f->spool, 1, TP_SPOOL_DROP_INVALID), TP_E_OK);
  assert_int_equal(tp_spool_forfeit(f->spool, 1, TP_SPOOL_DROP_INVALID), TP_E_NOTFOUND);
  tp_spool_stats st;
  tp_spool_get_stats(f->spool, &st);
  assert_int_equal(st.records, 1);
  assert_int_equal(st.bytes, 10);
  l = lease(f->spool, 10, 1 << 20);
  assert_int_equal(l->n_records, 1);
  assert_int_equal(l->records[0].seq, 2);
  assert_int_equal(l->n_drops, 2); /* the unnumbered one kept, and seq 1 */
  assert_int_equal(l->drops[0].first_seq, 0);
  assert_int_equal(l->drops[1].first_seq, 1);
  assert_int_equal(l->drops[1].last_seq, 1);
  assert_int_equal(l->drops[1].first_unix_ns, 100);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
}

/* A lease of drop reports only (max_records 0): how a refused batch's reports are
 * tried apart from its results. */
static void test_drops_only_lease(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  put(f->spool, 10, 1, 100);
  assert_null(lease(f->spool, 0, 1 << 20)); /* results but no reports: nothing */
  tp_spool_count_drop(f->spool, TP_SPOOL_DROP_INVALID, 0, 50);
  tp_spool_lease *l = lease(f->spool, 0, 1 << 20);
  assert_int_equal(l->n_records, 0);
  assert_int_equal(l->n_drops, 1);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  l = lease(f->spool, 10, 1 << 20);
  assert_int_equal(l->n_records, 1);
  assert_int_equal(l->n_drops, 0);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
}

/* ---- file only ---------------------------------------------------------------- */

static void test_reopen_keeps_everything(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  uint64_t id = tp_spool_id(f->spool);
  for (int i = 1; i <= 5; i++)
    put(f->spool, 10, (uint8_t)i, i);
  tp_spool_count_drop(f->spool, TP_SPOOL_DROP_INVALID, 0, 9);
  tp_spool_lease *l = lease(f->spool, 2, 1 << 20);
  assert_int_equal(l->batch_seq, 1);
  tp_spool_lease_free(l); /* a crash: neither ack nor nack */
  tp_spool_close(f->spool);
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  assert_int_equal(tp_spool_id(f->spool), id);
  tp_spool_stats st;
  tp_spool_get_stats(f->spool, &st);
  assert_int_equal(st.records, 5);
  assert_int_equal(st.bytes, 50);
  /* The same batch, exactly: number, range, drop report. */
  l = lease(f->spool, 100, 1 << 20);
  assert_int_equal(l->batch_seq, 1);
  assert_int_equal(l->n_records, 2);
  assert_int_equal(l->records[1].seq, 2);
  assert_int_equal(l->n_drops, 1);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  l = lease(f->spool, 100, 1 << 20);
  assert_int_equal(l->batch_seq, 2);
  assert_int_equal(l->n_records, 3);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  /* Everything acked, reopened: the numbers still continue. */
  tp_spool_close(f->spool);
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  assert_int_equal(put(f->spool, 10, 6, 6), 6);
  l = lease(f->spool, 100, 1 << 20);
  assert_int_equal(l->batch_seq, 3);
  tp_spool_nack(f->spool, l, true);
}

static void test_file_in_use_is_refused(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  put(f->spool, 10, 1, 1);
  tp_spool *other = NULL;
  char err[512] = "";
  assert_int_equal(tp_spool_open_sqlite(f->path, TP_SPOOL_DEFAULT_MAX_BYTES, &other, err,
                                        sizeof(err)),
                   TP_E_CONFIG);
  assert_null(other);
  assert_non_null(strstr(err, "in use"));
}

static void test_not_a_spool_is_refused(void **state) {
  fixture *f = *state;
  FILE *fp = fopen(f->path, "w");
  assert_non_null(fp);
  fputs("definitely not sqlite, but long enough to have a header.......................", fp);
  fclose(fp);
  tp_spool *s = NULL;
  char err[512] = "";
  assert_int_equal(tp_spool_open_sqlite(f->path, TP_SPOOL_DEFAULT_MAX_BYTES, &s, err, sizeof(err)),
                   TP_E_IO);
  assert_null(s);
  assert_non_null(strstr(err, f->path));
}

/* A full disk: RLIMIT_FSIZE at the files' current size makes the next write that
 * grows the WAL fail with EFBIG (SIGXFSZ ignored), as a full filesystem would. */
static struct rlimit fill_disk(const fixture *f) {
  char wal[160];
  snprintf(wal, sizeof(wal), "%s-wal", f->path);
  struct stat db_st, wal_st;
  assert_int_equal(stat(f->path, &db_st), 0);
  assert_int_equal(stat(wal, &wal_st), 0);
  struct rlimit old;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  struct rlimit full = old;
  full.rlim_cur = (rlim_t)(db_st.st_size > wal_st.st_size ? db_st.st_size : wal_st.st_size);
  assert_true(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &full), 0);
  return old;
}

static void free_disk(struct rlimit old) {
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  assert_true(signal(SIGXFSZ, SIG_DFL) != SIG_ERR);
}

static void test_failed_ack_is_never_resent(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  for (int i = 1; i <= 5; i++)
    put(f->spool, 10, (uint8_t)i, i);
  tp_spool_lease *l = lease(f->spool, 3, 1 << 20);
  assert_int_equal(l->batch_seq, 1);
  struct rlimit old = fill_disk(f);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_IO); /* the collector has it; the delete failed */
  tp_spool_stats st;
  tp_spool_get_stats(f->spool, &st);
  assert_int_equal(st.records, 2); /* delivered: not waiting */
  assert_int_equal(st.bytes, 20);
  assert_true(st.io_errors >= 1);
  /* Neither the delivered batch again nor anything behind it while the disk is full. */
  l = NULL;
  assert_int_equal(tp_spool_lease_next(f->spool, 100, 1 << 20, &l), TP_E_IO);
  assert_null(l);
  uint8_t rec[10] = {9};
  assert_int_equal(tp_spool_append(f->spool, rec, sizeof(rec), 9, NULL), TP_E_IO);
  free_disk(old);
  /* Space again: the deletion goes through and the next batch is what was left. */
  l = lease(f->spool, 100, 1 << 20);
  assert_non_null(l);
  assert_int_equal(l->batch_seq, 2);
  assert_int_equal(l->n_records, 2);
  assert_int_equal(l->records[0].seq, 4);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  tp_spool_get_stats(f->spool, &st);
  assert_int_equal(st.records, 0);
  assert_int_equal(st.dropped_full, 0);
  /* Gone from the file too: a reopen offers nothing. */
  tp_spool_close(f->spool);
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  assert_null(lease(f->spool, 100, 1 << 20));
}

static void test_failed_ack_then_restart_resends_same_batch(void **state) {
  fixture *f = *state;
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  for (int i = 1; i <= 3; i++)
    put(f->spool, 10, (uint8_t)i, i);
  tp_spool_lease *l = lease(f->spool, 2, 1 << 20);
  struct rlimit old = fill_disk(f);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_IO);
  tp_spool_close(f->spool); /* stopped before the disk had room again */
  free_disk(old);
  f->spool = open_spool(f, TP_SPOOL_DEFAULT_MAX_BYTES);
  /* Persisted: the same batch, which the collector recognises as a re-send. */
  l = lease(f->spool, 100, 1 << 20);
  assert_int_equal(l->batch_seq, 1);
  assert_int_equal(l->n_records, 2);
  assert_int_equal(tp_spool_ack(f->spool, l), TP_E_OK);
  l = lease(f->spool, 100, 1 << 20);
  assert_int_equal(l->batch_seq, 2);
  assert_int_equal(l->records[0].seq, 3);
  tp_spool_nack(f->spool, l, true);
}

#define BOTH(fn)                                                                                 \
  cmocka_unit_test_setup_teardown(fn, setup_file, teardown),                                   \
      cmocka_unit_test_setup_teardown(fn, setup_memory, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(test_numbering_and_ack),
      BOTH(test_nack_keeps_or_dissolves),
      BOTH(test_lease_bytes_bound_but_one_fits),
      BOTH(test_full_drops_oldest_outside_lease),
      BOTH(test_counted_drops_are_reported),
      BOTH(test_replace_keeps_number),
      BOTH(test_expire_reports_too_old),
      BOTH(test_numbered_drops_keep_their_numbers),
      BOTH(test_forfeit_keeps_the_lease_drops),
      BOTH(test_drops_only_lease),
      cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup_file, teardown),
      cmocka_unit_test_setup_teardown(test_file_in_use_is_refused, setup_file, teardown),
      cmocka_unit_test_setup_teardown(test_not_a_spool_is_refused, setup_file, teardown),
      cmocka_unit_test_setup_teardown(test_failed_ack_is_never_resent, setup_file, teardown),
      cmocka_unit_test_setup_teardown(test_failed_ack_then_restart_resends_same_batch, setup_file,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
