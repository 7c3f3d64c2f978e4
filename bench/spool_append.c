/* spool_append.c - what durability costs per result: COUNT results of SIZE bytes
 * appended, leased in batches of 200 and acknowledged, through the SQLite spool (WAL,
 * synchronous=NORMAL, one transaction per append) and through the memory spool, side
 * by side in one run. Prints wall time and CPU time per result for each and their
 * ratio. Not a test: figures only (bench/run.sh).
 *
 *   bench-spool [COUNT] [SIZE] [DIR]      defaults 20000, 800 bytes, /tmp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"

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

typedef struct figures {
  double wall_s, cpu_s;
} figures;

/* Appends count records, leasing and acking 200 at a time after every 200 appends
 * (the pusher's steady state with a reachable collector). */
static int run(tp_spool *s, size_t count, size_t size, figures *out) {
  unsigned char *rec = malloc(size);
  if (rec == NULL)
    return -1;
  memset(rec, 0x5A, size);
  double w0 = now_s(), c0 = cpu_s();
  for (size_t i = 1; i <= count; i++) {
    if (tp_spool_append(s, rec, size, (int64_t)i, NULL) != TP_E_OK) {
      free(rec);
      return -1;
    }
    if (i % 200 == 0) {
      tp_spool_lease *l = NULL;
      if (tp_spool_lease_next(s, 200, 1u << 20, &l) != TP_E_OK || l == NULL ||
          tp_spool_ack(s, l) != TP_E_OK) {
        free(rec);
        return -1;
      }
    }
  }
  out->wall_s = now_s() - w0;
  out->cpu_s = cpu_s() - c0;
  free(rec);
  return 0;
}

int main(int argc, char **argv) {
  size_t count = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
  size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 800;
  const char *dir = argc > 3 ? argv[3] : "/tmp";
  char path[512], err[512], wal[600];
  snprintf(path, sizeof(path), "%s/bench-spool.%ld", dir, (long)getpid());
  tp_spool *file = NULL, *mem = NULL;
  figures f = {0}, m = {0};
  if (tp_spool_open_sqlite(path, TP_SPOOL_DEFAULT_MAX_BYTES, &file, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "bench-spool: %s\n", err);
    return 1;
  }
  if (tp_spool_open_memory(TP_SPOOL_DEFAULT_MAX_BYTES, &mem) != TP_E_OK || count == 0 ||
      run(file, count, size, &f) != 0 || run(mem, count, size, &m) != 0) {
    fprintf(stderr, "bench-spool: run failed\n");
    return 1;
  }
  tp_spool_close(file);
  tp_spool_close(mem);
  unlink(path);
  snprintf(wal, sizeof(wal), "%s-wal", path);
  unlink(wal);
  printf("spool  : %zu results of %zu bytes, leased and acked 200 at a time\n", count, size);
  printf("sqlite : %.1f us wall, %.1f us CPU per result (%.0f results/s)\n",
         f.wall_s / (double)count * 1e6, f.cpu_s / (double)count * 1e6, (double)count / f.wall_s);
  printf("memory : %.1f us wall, %.1f us CPU per result (%.0f results/s)\n",
         m.wall_s / (double)count * 1e6, m.cpu_s / (double)count * 1e6, (double)count / m.wall_s);
  printf("ratio  : sqlite/memory CPU per result = %.1f\n", m.cpu_s > 0 ? f.cpu_s / m.cpu_s : 0.0);
  return 0;
}
