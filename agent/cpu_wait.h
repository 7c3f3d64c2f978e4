/* cpu_wait.h - how long a probe loop's thread waited for a CPU while runnable.
 *
 * Under CPU contention the kernel does not run the loop the moment a server's
 * answer arrives; the wait is invisible to the loop (its lag metric starts when
 * it runs again) but lands in every timing the probes report. Linux counts it
 * per thread: /proc/thread-self/schedstat, second field, "time spent waiting on a
 * runqueue" in ns (CONFIG_SCHED_INFO). The loop samples that counter on a timer
 * into a small ring, so judging a probe costs no system call: the wait fraction
 * over the probe's lifetime is read off the samples around it.
 *
 * The ring is plain data, usable without a loop (tests feed it samples). */
#ifndef TP_CPU_WAIT_H
#define TP_CPU_WAIT_H
#include <stdbool.h>
#include <stdint.h>

#include "tp_error.h"

#define TP_CPU_WAIT_SAMPLES 64 /* at 100 ms: the last 6.4 s */

typedef struct tp_cpu_wait_ring {
  uint64_t at_ns[TP_CPU_WAIT_SAMPLES];   /* monotonic (uv_hrtime) */
  uint64_t wait_ns[TP_CPU_WAIT_SAMPLES]; /* cumulative run-queue wait at that time */
  unsigned next, count;
} tp_cpu_wait_ring;

void tp_cpu_wait_ring_add(tp_cpu_wait_ring *ring, uint64_t at_ns, uint64_t wait_ns);
/* Per mille of wall time spent waiting for a CPU from `since_ns` to the newest
 * sample: from the newest sample taken at or before since_ns (the oldest kept if
 * none), or over the last sample interval when no interval has closed since then.
 * false = fewer than two samples, nothing known. */
bool tp_cpu_wait_ring_permille(const tp_cpu_wait_ring *ring, uint64_t since_ns, unsigned *permille);

/* The calling thread's cumulative run-queue wait. Opens the thread's schedstat
 * file on first use into *fd (-1 = not yet; TP_E_NOTFOUND: the kernel has none,
 * TP_E_IO: unreadable). One pread per call. */
tp_err tp_cpu_wait_read_thread(int *fd, uint64_t *wait_ns);

#endif
