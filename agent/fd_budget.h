/* fd_budget.h - how many file descriptors the agent may hold open at once,
 * and whether RLIMIT_NOFILE allows it. Checked at start so that an agent with
 * too low a limit refuses to run instead of failing probes with EMFILE, which
 * would be reported as the targets' fault.
 *
 * Each probe in flight may hold TP_FD_PER_PROBE sockets at once (its
 * connection, plus a resume or diagnostic reconnect or an AIA fetch being
 * opened while the previous one closes); each probe loop TP_FD_PER_LOOP more
 * (epoll, its async eventfd, the c-ares resolver's sockets); the main loop and
 * the pusher TP_FD_MAIN (stdio, epoll, eventfd, the signal pipe, libcurl's
 * connection and wake-up pair); TP_FD_SPARE leaves room for files opened while
 * running (trust stores, /etc/resolv.conf). */
#ifndef TP_AGENT_FD_BUDGET_H
#define TP_AGENT_FD_BUDGET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tp_error.h"

#define TP_FD_PER_PROBE 2u
#define TP_FD_PER_LOOP 8u
#define TP_FD_MAIN 16u
#define TP_FD_SPARE 32u

/* No limit (RLIM_INFINITY) in the uint64_t values below. */
#define TP_FD_UNLIMITED UINT64_MAX

typedef struct tp_fd_budget {
  unsigned loops, max_in_flight; /* what the need was computed from */
  uint64_t need;                 /* descriptors the agent may hold at once */
  uint64_t soft, hard;           /* RLIMIT_NOFILE as found */
  uint64_t limit;                /* soft limit after tp_fd_budget_ensure */
  bool raised;                   /* the soft limit was (or would be) raised */
} tp_fd_budget;

/* need = loops * (TP_FD_PER_PROBE * max_in_flight + TP_FD_PER_LOOP)
 *        + TP_FD_MAIN + TP_FD_SPARE.
 * Returns 0, or -1 if the product does not fit in 64 bits. */
int tp_fd_budget_need(uint64_t loops, uint64_t max_in_flight, uint64_t *need);

typedef enum tp_fd_verdict {
  TP_FD_FITS,  /* need <= soft */
  TP_FD_RAISE, /* soft < need <= hard: raise the soft limit to need */
  TP_FD_SHORT, /* hard < need: cannot run */
} tp_fd_verdict;

/* The decision alone, without system calls. */
tp_fd_verdict tp_fd_budget_plan(uint64_t need, uint64_t soft, uint64_t hard);

/* Computes the need, reads RLIMIT_NOFILE and, if `apply`, raises the soft
 * limit when the plan says so. Without `apply` nothing changes (--check) and
 * *out says what would happen. Returns TP_E_OK, TP_E_TOOBIG if the hard limit
 * is too low (or raising failed) with what is needed, the limit and the knob
 * to lower in err, or TP_E_IO if the limit cannot be read. *out is filled in
 * every case but TP_E_IO. */
tp_err tp_fd_budget_ensure(unsigned loops, unsigned max_in_flight, bool apply, tp_fd_budget *out,
                           char *err, size_t errlen);

/* One line for --check and the start log, e.g. "file descriptors: need 320
 * (2 loops x 64 probes in flight x 2, plus loops, pusher and spare), limit
 * 1024 (hard 524288): enough". */
void tp_fd_budget_describe(const tp_fd_budget *b, char *buf, size_t len);

#endif
