/* rollup.c - what storage for long windows costs: raw results stored through
 * tp_store_put_batch (batches of 500, the way ingest stores them), then
 *   1. rollup throughput: one tp_store_maintain pass over the backlog, no pauses;
 *   2. ingest while maintenance runs: put_batch latency (p50/p99/max, what an agent's
 *      ack waits for) with no maintenance, with the maintenance thread making a pass
 *      a second, and with it working through a backlog -- interleaved, twice;
 *   3. reading: tp_store_scan_rollups over every minute row, then every hour row,
 *      merging the sketches per group: the cost per row, and what a 30-day window of
 *      these series would cost.
 * Series: 100 (target x profile x region), one result per series per second, so a
 * minute holds 60 results of each. Not a test: figures only (bench/run.sh).
 *
 *   bench-rollup [ROWS] [DIR]      defaults 200000, /tmp */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "maintenance.h"
#include "sketch.h"
#include "store.h"
#include "tlsprobe.pb-c.h"

#define BATCH 500
#define SERIES 100
#define T0 INT64_C(1790000000000000000)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct filler {
  tp_store *store;
  uint64_t seq, batch;
  uint64_t rng;
  char names[SERIES][3][16];
} filler;

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* One batch of BATCH results: consecutive seconds of the series, the next ones
 * the collector would receive. Returns the put's duration in seconds, < 0 on error. */
static double put_one(filler *f, int64_t base_ns) {
  char err[512];
  static Tlsprobe__V1__ProbeResult r[BATCH];
  static Tlsprobe__V1__ProbeResult *rp[BATCH];
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  for (size_t i = 0; i < BATCH; i++) {
    uint64_t n = f->seq++;
    int s = (int)(n % SERIES);
    tlsprobe__v1__probe_result__init(&r[i]);
    r[i].target = f->names[s][0];
    r[i].profile = f->names[s][1];
    r[i].region = f->names[s][2];
    r[i].host = "bench.test";
    r[i].port = 443;
    r[i].result_seq = n + 1;
    r[i].started_unix_ns = base_ns + (int64_t)(n / SERIES) * 1000000000;
    bool ok = rng_next(&f->rng) % 100 < 97;
    r[i].ok = ok;
    r[i].error_class = ok ? TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_OK
                          : TLSPROBE__V1__ERROR_CLASS__ERROR_CLASS_HANDSHAKE_TIMEOUT;
    r[i].connect_ns = 100000 + rng_next(&f->rng) % 400000;
    r[i].handshake_ns = 700000 + rng_next(&f->rng) % 3000000;
    r[i].total_ns = r[i].connect_ns + r[i].handshake_ns + 200000;
    r[i].loop_lag_ns = rng_next(&f->rng) % 20000;
    r[i].mode = "handshake";
    r[i].address_family = "ipv4";
    rp[i] = &r[i];
  }
  b.agent_id = "bench-agent";
  b.instance_id = 1;
  b.batch_seq = ++f->batch;
  b.results = rp;
  b.n_results = BATCH;
  tp_store_put_outcome out;
  double t = now_s();
  if (tp_store_put_batch(f->store, &b, wall_ns(), &out, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "put: %s\n", err);
    return -1;
  }
  return now_s() - t;
}

static void init_filler(filler *f, tp_store *store) {
  memset(f, 0, sizeof(*f));
  f->store = store;
  f->rng = 88172645463325252ull;
  for (int s = 0; s < SERIES; s++) {
    snprintf(f->names[s][0], 16, "target-%02d", s % 25);
    snprintf(f->names[s][1], 16, "profile-%d", (s / 25) % 2);
    snprintf(f->names[s][2], 16, "region-%d", s / 50);
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double rank(const double *sorted, size_t n, unsigned p) {
  size_t r = (n * p + 99) / 100;
  return sorted[(r < 1 ? 1 : r) - 1];
}

static tp_store *fresh(const char *dir, const char *name, char *path, size_t len) {
  char err[512];
  tp_store *s = NULL;
  const char *suffix[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    char p[600];
    snprintf(p, sizeof(p), "%s/%s%s", dir, name, suffix[i]);
    unlink(p);
  }
  snprintf(path, len, "%s/%s", dir, name);
  if (tp_store_open_sqlite(path, TP_STORE_READWRITE, &s, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "open: %s\n", err);
    return NULL;
  }
  return s;
}

static int fill(filler *f, size_t rows, double *rate) {
  double t = now_s();
  for (size_t done = 0; done < rows; done += BATCH)
    if (put_one(f, T0) < 0)
      return -1;
  *rate = (double)rows / (now_s() - t);
  return 0;
}

typedef struct read_ctx {
  tp_sketch *merged;
  size_t rows;
  char group[64];
} read_ctx;

static tp_err on_rollup(const tp_store_rollup_row *row, void *data) {
  read_ctx *c = data;
  char group[64];
  snprintf(group, sizeof(group), "%s/%s/%s", row->target, row->profile, row->region);
  if (strcmp(group, c->group) != 0) { /* a new group: what the report would print */
    snprintf(c->group, sizeof(c->group), "%s", group);
    tp_sketch_clear(c->merged);
  }
  c->rows++;
  return tp_sketch_merge(c->merged, row->handshake_ns);
}

/* 1. and 3. */
static int bench_rollup(const char *dir, size_t rows) {
  char path[512], err[512];
  filler f;
  double fill_rate;
  tp_store *s = fresh(dir, "bench-rollup.db", path, sizeof(path));
  if (s == NULL)
    return -1;
  init_filler(&f, s);
  if (fill(&f, rows, &fill_rate) != 0)
    return -1;
  tp_store_maintain_limits limits = {0};
  tp_store_maintain_stats st;
  double t = now_s(), cpu = cpu_s();
  if (tp_store_maintain(s, T0, &limits, &st, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "maintain: %s\n", err);
    return -1;
  }
  double took = now_s() - t;
  cpu = cpu_s() - cpu;
  printf("rollup: %zu raw results (stored at %.0f results/s, no maintenance) -> %llu rollup"
         " row writes in %.2f s (%.2f s CPU): %.0f results/s (%.0f per CPU second), %u"
         " transactions of %d rows, longest %.1f ms\n",
         rows, fill_rate, (unsigned long long)st.rollup_rows, took, cpu,
         (double)st.rolled_up / took, (double)st.rolled_up / cpu, st.transactions,
         TP_STORE_MAINTAIN_CHUNK, (double)st.max_txn_ns / 1e6);
  /* A 30-day window of these 100 series: 4.32 M minute rows, or 72,000 hour rows. */
  static const struct {
    tp_store_rollup_span span;
    const char *name;
    double rows_30d;
  } spans[] = {{TP_STORE_ROLLUP_MINUTE, "minute", 4.32e6}, {TP_STORE_ROLLUP_HOUR, "hour", 7.2e4}};
  for (int i = 0; i < 2; i++) {
    read_ctx c = {.merged = tp_sketch_new()};
    t = now_s();
    if (tp_store_scan_rollups(s, spans[i].span, 0, INT64_MAX, NULL, TP_STORE_ROLLUPS_BY_GROUP,
                              on_rollup, &c, err, sizeof(err)) != TP_E_OK) {
      fprintf(stderr, "scan: %s\n", err);
      return -1;
    }
    took = now_s() - t;
    printf("read: %zu %s rows scanned and merged per group in %.3f s: %.2f us per row (30 days"
           " of 100 series: %.0f rows, ~%.2f s)\n",
           c.rows, spans[i].name, took, took * 1e6 / (double)c.rows, spans[i].rows_30d,
           took / (double)c.rows * spans[i].rows_30d);
    tp_sketch_free(c.merged);
  }
  tp_store_close(s);
  return 0;
}

/* 2. put_batch latencies of `batches` batches after `rows` results were stored:
 * with no maintenance; with the maintenance thread making a pass every second over
 * what arrives (the stored rows already rolled up); and with it working through a
 * backlog of `rows` results meanwhile (after a migration, say). Ingest runs flat out,
 * so this is the worst case: at ordinary rates a pass has little to do. */
typedef enum { NO_MAINTENANCE, STEADY, BACKLOG } ingest_mode;

static int bench_ingest(const char *dir, size_t rows, size_t batches, ingest_mode mode) {
  static const char *const names[] = {"without maintenance:", "with a pass every 1 s:",
                                      "while a pass works a backlog:"};
  char path[512], err[512];
  filler f;
  double fill_rate;
  tp_store *s = fresh(dir, "bench-ingest.db", path, sizeof(path));
  if (s == NULL)
    return -1;
  init_filler(&f, s);
  if (fill(&f, rows, &fill_rate) != 0)
    return -1;
  if (mode == STEADY) {
    tp_store_maintain_limits limits = {0};
    tp_store_maintain_stats st;
    if (tp_store_maintain(s, T0, &limits, &st, err, sizeof(err)) != TP_E_OK)
      return -1;
  }
  tp_maintenance *m = NULL;
  tp_log log = {.min_level = TP_LOG_WARN, .component = "bench"};
  tp_maintenance_options o = {.database = path, .interval_ms = mode == STEADY ? 1000 : 1};
  if (mode != NO_MAINTENANCE && tp_maintenance_start(&o, &log, &m, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "maintenance: %s\n", err);
    return -1;
  }
  usleep(20000); /* let a backlog pass begin */
  double *lat = malloc(batches * sizeof(*lat)), t = now_s();
  for (size_t i = 0; i < batches; i++) {
    lat[i] = put_one(&f, T0);
    if (lat[i] < 0)
      return -1;
  }
  double took = now_s() - t;
  tp_maintenance_stop(m);
  tp_store_horizon h;
  if (tp_store_horizon_get(s, &h, err, sizeof(err)) != TP_E_OK)
    return -1;
  qsort(lat, batches, sizeof(*lat), cmp_double);
  printf("ingest %-30s %zu batches of %d: %.0f results/s, put p50 %.1f ms p99 %.1f ms max %.1f"
         " ms%s\n",
         names[mode], batches, BATCH, (double)(batches * BATCH) / took,
         rank(lat, batches, 50) * 1e3, rank(lat, batches, 99) * 1e3, lat[batches - 1] * 1e3,
         mode == BACKLOG ? (h.results_not_rolled_up > (uint64_t)(batches * BATCH)
                                ? " (backlog left: maintenance busy throughout)"
                                : " (backlog cleared during the run)")
                         : "");
  free(lat);
  tp_store_close(s);
  return 0;
}

int main(int argc, char **argv) {
  size_t rows = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 200000;
  const char *dir = argc > 2 ? argv[2] : "/tmp";
  rows = (rows + BATCH - 1) / BATCH * BATCH;
  printf("bench-rollup: %zu results of %d series, batches of %d, SQLite WAL synchronous=FULL in"
         " %s\n",
         rows, SERIES, BATCH, dir);
  if (bench_rollup(dir, rows) != 0)
    return 1;
  /* Interleaved rounds: the machine's load drifts. */
  for (int round = 0; round < 2; round++)
    for (int mode = NO_MAINTENANCE; mode <= BACKLOG; mode++)
      if (bench_ingest(dir, rows, 300, (ingest_mode)mode) != 0)
        return 1;
  char path[600];
  const char *names[] = {"bench-rollup.db", "bench-ingest.db"};
  const char *suffix[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 3; k++) {
      snprintf(path, sizeof(path), "%s/%s%s", dir, names[i], suffix[k]);
      unlink(path);
    }
  return 0;
}
