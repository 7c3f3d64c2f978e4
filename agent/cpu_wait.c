/* cpu_wait.c - run-queue wait samples (cpu_wait.h). */
#include "cpu_wait.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void tp_cpu_wait_ring_add(tp_cpu_wait_ring *r, uint64_t at_ns, uint64_t wait_ns) {
  r->at_ns[r->next] = at_ns;
  r->wait_ns[r->next] = wait_ns;
  r->next = (r->next + 1) % TP_CPU_WAIT_SAMPLES;
  if (r->count < TP_CPU_WAIT_SAMPLES)
    r->count++;
}

/* Index of the k-th newest sample (k = 0 newest); k < count. */
static unsigned newest(const tp_cpu_wait_ring *r, unsigned k) {
  return (r->next + TP_CPU_WAIT_SAMPLES - 1 - k) % TP_CPU_WAIT_SAMPLES;
}

bool tp_cpu_wait_ring_permille(const tp_cpu_wait_ring *r, uint64_t since_ns, unsigned *permille) {
  if (r->count < 2)
    return false;
  unsigned last = newest(r, 0);
  /* Walk back to the newest sample at or before since_ns; stop at the oldest. */
  unsigned k = 1;
  while (k + 1 < r->count && r->at_ns[newest(r, k)] > since_ns)
    k++;
  unsigned first = newest(r, k);
  uint64_t span = r->at_ns[last] - r->at_ns[first];
  uint64_t waited = r->wait_ns[last] - r->wait_ns[first];
  if (span == 0 || r->wait_ns[last] < r->wait_ns[first] || r->at_ns[last] < r->at_ns[first])
    return false;
  uint64_t pm = waited >= span ? 1000 : waited * 1000 / span;
  *permille = (unsigned)pm;
  return true;
}

tp_err tp_cpu_wait_read_thread(int *fd, uint64_t *wait_ns) {
  if (*fd < 0) {
    *fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
      return errno == ENOENT ? TP_E_NOTFOUND : TP_E_IO;
  }
  char buf[128];
  ssize_t n = pread(*fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0)
    return TP_E_IO;
  buf[n] = '\0';
  /* "<on-cpu ns> <run-queue wait ns> <timeslices>\n" */
  unsigned long long on_cpu = 0, waited = 0;
  if (sscanf(buf, "%llu %llu", &on_cpu, &waited) != 2)
    return TP_E_IO;
  *wait_ns = waited;
  return TP_E_OK;
}
