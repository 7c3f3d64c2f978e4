/* fd_budget.c - the file-descriptor budget (see fd_budget.h). The arithmetic
 * and the decision are pure functions so tests can cover them without
 * touching the process's limits; only tp_fd_budget_ensure calls getrlimit and
 * setrlimit. */
#include "fd_budget.h"

#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>

#include "tp_error.h"

int tp_fd_budget_need(uint64_t loops, uint64_t max_in_flight, uint64_t *need) {
  uint64_t per_loop, all_loops, total;
  if (__builtin_mul_overflow(max_in_flight, (uint64_t)TP_FD_PER_PROBE, &per_loop) ||
      __builtin_add_overflow(per_loop, (uint64_t)TP_FD_PER_LOOP, &per_loop) ||
      __builtin_mul_overflow(loops, per_loop, &all_loops) ||
      __builtin_add_overflow(all_loops, (uint64_t)(TP_FD_MAIN + TP_FD_SPARE), &total))
    return -1;
  *need = total;
  return 0;
}

tp_fd_verdict tp_fd_budget_plan(uint64_t need, uint64_t soft, uint64_t hard) {
  if (need <= soft)
    return TP_FD_FITS;
  if (need <= hard)
    return TP_FD_RAISE;
  return TP_FD_SHORT;
}

static uint64_t from_rlim(rlim_t v) {
  return v == RLIM_INFINITY ? TP_FD_UNLIMITED : (uint64_t)v;
}

static void format_limit(uint64_t v, char *buf, size_t len) {
  if (v == TP_FD_UNLIMITED)
    snprintf(buf, len, "unlimited");
  else
    snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void short_message(const tp_fd_budget *b, const char *why, char *err, size_t errlen) {
  char hard[32];
  format_limit(b->hard, hard, sizeof(hard));
  snprintf(err, errlen,
           "not enough file descriptors: %u loops x %u probes in flight need %llu, but the "
           "limit is %llu (hard limit %s)%s; lower limits.max_in_flight or limits.loops, or "
           "raise the limit (ulimit -n, LimitNOFILE= in a systemd unit)",
           b->loops, b->max_in_flight, (unsigned long long)b->need, (unsigned long long)b->soft,
           hard, why);
}

tp_err tp_fd_budget_ensure(unsigned loops, unsigned max_in_flight, bool apply, tp_fd_budget *out,
                           char *err, size_t errlen) {
  struct rlimit rl;
  *out = (tp_fd_budget){.loops = loops, .max_in_flight = max_in_flight};
  if (tp_fd_budget_need(loops, max_in_flight, &out->need) != 0) {
    out->need = TP_FD_UNLIMITED;
    snprintf(err, errlen, "%u loops x %u probes in flight: the file-descriptor need overflows",
             loops, max_in_flight);
    return TP_E_TOOBIG;
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    char buf[128];
    snprintf(err, errlen, "cannot read the file-descriptor limit (RLIMIT_NOFILE): %s",
             tp_errno_text(errno, buf, sizeof(buf)));
    return TP_E_IO;
  }
  out->soft = out->limit = from_rlim(rl.rlim_cur);
  out->hard = from_rlim(rl.rlim_max);
  switch (tp_fd_budget_plan(out->need, out->soft, out->hard)) {
  case TP_FD_FITS:
    return TP_E_OK;
  case TP_FD_SHORT:
    short_message(out, "", err, errlen);
    return TP_E_TOOBIG;
  case TP_FD_RAISE:
    break;
  }
  out->raised = true;
  if (!apply)
    return TP_E_OK;
  /* Only as far as needed: the need already includes spare, and a soft limit
   * far above it would hide a descriptor leak until the hard limit. */
  rl.rlim_cur = (rlim_t)out->need;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    char buf[128], why[160];
    snprintf(why, sizeof(why), " and raising the soft limit failed: %s",
             tp_errno_text(errno, buf, sizeof(buf)));
    short_message(out, why, err, errlen);
    return TP_E_TOOBIG;
  }
  out->limit = out->need;
  return TP_E_OK;
}

void tp_fd_budget_describe(const tp_fd_budget *b, char *buf, size_t len) {
  char soft[32], hard[32];
  format_limit(b->soft, soft, sizeof(soft));
  format_limit(b->hard, hard, sizeof(hard));
  const char *verdict = "enough";
  tp_fd_verdict v = tp_fd_budget_plan(b->need, b->soft, b->hard);
  if (v == TP_FD_RAISE)
    verdict = "the soft limit is raised to the need at start";
  else if (v == TP_FD_SHORT)
    verdict = "NOT enough: the agent would refuse to start";
  snprintf(buf, len,
           "file descriptors: need %llu (%u loops x %u probes in flight x %u, plus loops, "
           "pusher and spare), limit %s (hard %s): %s",
           (unsigned long long)b->need, b->loops, b->max_in_flight, TP_FD_PER_PROBE, soft, hard,
           verdict);
}
