/* maintenance.c - the maintenance thread of maintenance.h: a timed wait on a
 * condition variable (CLOCK_MONOTONIC, so a wall-clock step neither fires nor
 * delays a pass), one tp_store_maintain pass per wake, and the pause between its
 * chunks, which is also where a stop request is noticed. */
#include "maintenance.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "store.h"
#include "tp_mem.h"

#define PAUSE_MIN_NS (2 * 1000000ull)   /* > 1 ms: ingest polls the lock every 1 ms */
#define PAUSE_MAX_NS (200 * 1000000ull) /* a slow chunk (disk) must not stall the pass */

struct tp_maintenance {
  tp_maintenance_options opts;
  const tp_log *log;
  tp_store *store; /* used by the thread only */
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  bool stop; /* under lock */
};

static void deadline_after(uint64_t ns, struct timespec *ts) {
  (void)clock_gettime(CLOCK_MONOTONIC, ts); /* cannot fail with a valid clock id */
  uint64_t nsec = (uint64_t)ts->tv_nsec + ns % 1000000000u;
  ts->tv_sec += (time_t)(ns / 1000000000u + nsec / 1000000000u);
  ts->tv_nsec = (long)(nsec % 1000000000u);
}

/* Sleeps ns or until stopped; true when stopped. */
static bool sleep_or_stop(tp_maintenance *m, uint64_t ns) {
  struct timespec until;
  deadline_after(ns, &until);
  pthread_mutex_lock(&m->lock);
  while (!m->stop) {
    int rc = pthread_cond_timedwait(&m->wake, &m->lock, &until);
    if (rc == ETIMEDOUT)
      break;
    if (rc != 0) { /* EINVAL cannot happen with our deadline; do not spin on it */
      m->stop = true;
      break;
    }
  }
  bool stop = m->stop;
  pthread_mutex_unlock(&m->lock);
  return stop;
}

/* Between two chunks: leave the write lock to ingest for three times as long as the
 * chunk held it (bounded), then go on unless stopped. A backlog is then worked off
 * with at most a quarter of the writer's time -- ingest, whose agents are waiting
 * for acks, keeps the rest. With no request in ingest's hands, no pause. */
static bool between(void *ctx, uint64_t txn_ns) {
  tp_maintenance *m = ctx;
  if (m->opts.ingest_pending != NULL &&
      atomic_load_explicit(m->opts.ingest_pending, memory_order_relaxed) == 0)
    return !sleep_or_stop(m, 0); /* nobody waiting: on at once, unless stopped */
  uint64_t pause = 3 * txn_ns;
  pause = pause < PAUSE_MIN_NS ? PAUSE_MIN_NS : pause > PAUSE_MAX_NS ? PAUSE_MAX_NS : pause;
  return !sleep_or_stop(ctx, pause);
}

static int64_t wall_ns(void) {
  struct timespec ts;
  (void)clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double mono_ms(void) {
  struct timespec ts;
  (void)clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void run_pass(tp_maintenance *m) {
  char err[1024];
  tp_store_maintain_limits limits = {.raw_retention_ms = m->opts.raw_retention_ms,
                                     .rollup_retention_ms = m->opts.rollup_retention_ms,
                                     .chunk_rows = m->opts.chunk_rows,
                                     .between = between,
                                     .ctx = m};
  tp_store_maintain_stats st;
  double start = mono_ms();
  tp_err rc = tp_store_maintain(m->store, wall_ns(), &limits, &st, err, sizeof(err));
  double ms = mono_ms() - start;
  if (rc != TP_E_OK) {
    tp_log_error(m->log, "maintenance failed", "error=\"%s\" rolled_up=%" PRIu64 " ms=%.0f", err,
                 st.rolled_up, ms);
    return;
  }
  if (st.transactions == 0)
    return; /* idle: nothing to say */
  tp_log_info(m->log, "maintenance",
              "rolled_up=%" PRIu64 " rollup_rows=%" PRIu64 " raw_deleted=%" PRIu64
              " rollups_deleted=%" PRIu64 " drops_deleted=%" PRIu64 " batches_deleted=%" PRIu64
              " transactions=%" PRIu32 " max_transaction_ms=%.1f ms=%.0f%s",
              st.rolled_up, st.rollup_rows, st.raw_deleted, st.rollups_deleted, st.drops_deleted,
              st.batches_deleted, st.transactions, (double)st.max_txn_ns / 1e6, ms,
              st.stopped ? " stopped=shutdown" : "");
}

static void *thread_main(void *arg) {
  tp_maintenance *m = arg;
  while (!sleep_or_stop(m, m->opts.interval_ms * 1000000u))
    run_pass(m);
  return NULL;
}

/* "7d", "36h", "90m", "60s", "500ms": the largest unit that divides exactly. */
static void format_ms(uint64_t ms, char *out, size_t len) {
  static const struct {
    uint64_t ms;
    const char *unit;
  } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (ms >= units[i].ms && ms % units[i].ms == 0) {
      snprintf(out, len, "%" PRIu64 "%s", ms / units[i].ms, units[i].unit);
      return;
    }
  snprintf(out, len, "%" PRIu64 "ms", ms);
}

static tp_err init_sync(tp_maintenance *m, char *err, size_t errlen) {
  pthread_condattr_t attr;
  int rc = pthread_condattr_init(&attr);
  if (rc == 0) {
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
      rc = pthread_cond_init(&m->wake, &attr);
    (void)pthread_condattr_destroy(&attr);
  }
  if (rc == 0 && (rc = pthread_mutex_init(&m->lock, NULL)) != 0)
    (void)pthread_cond_destroy(&m->wake);
  if (rc != 0) {
    char why[128];
    snprintf(err, errlen, "maintenance: cannot create its condition variable: %s",
             tp_errno_text(rc, why, sizeof(why)));
    return TP_E_IO;
  }
  return TP_E_OK;
}

tp_err tp_maintenance_start(const tp_maintenance_options *options, const tp_log *log,
                            tp_maintenance **out, char *err, size_t errlen) {
  char raw[32], rollups[32], every[32], why[128];
  *out = NULL;
  tp_maintenance *m = tp_xcalloc(1, sizeof(*m));
  m->opts = *options;
  m->log = log;
  tp_err rc = tp_store_open_sqlite(options->database, TP_STORE_READWRITE, &m->store, err, errlen);
  if (rc != TP_E_OK) {
    free(m);
    return rc;
  }
  rc = init_sync(m, err, errlen);
  if (rc != TP_E_OK)
    goto fail_store;
  int prc = pthread_create(&m->thread, NULL, thread_main, m);
  if (prc != 0) {
    snprintf(err, errlen, "maintenance: cannot start its thread: %s",
             tp_errno_text(prc, why, sizeof(why)));
    rc = TP_E_IO;
    goto fail_sync;
  }
  format_ms(options->raw_retention_ms, raw, sizeof(raw));
  format_ms(options->rollup_retention_ms, rollups, sizeof(rollups));
  format_ms(options->interval_ms, every, sizeof(every));
  tp_log_info(log, "maintenance scheduled", "interval=%s raw_retention=%s rollup_retention=%s",
              every, raw, rollups);
  *out = m;
  return TP_E_OK;
fail_sync:
  (void)pthread_mutex_destroy(&m->lock);
  (void)pthread_cond_destroy(&m->wake);
fail_store:
  tp_store_close(m->store);
  free(m);
  return rc;
}

void tp_maintenance_stop(tp_maintenance *m) {
  if (m == NULL)
    return;
  pthread_mutex_lock(&m->lock);
  m->stop = true;
  pthread_cond_signal(&m->wake);
  pthread_mutex_unlock(&m->lock);
  (void)pthread_join(m->thread, NULL); /* our own joinable thread: cannot fail */
  (void)pthread_mutex_destroy(&m->lock);
  (void)pthread_cond_destroy(&m->wake);
  tp_store_close(m->store);
  free(m);
}
