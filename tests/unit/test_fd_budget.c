/* test_fd_budget.c - the agent's file-descriptor budget (issue #6 defect 9):
 * the arithmetic, its overflow guard, the raise/refuse decision, and the real
 * getrlimit/setrlimit path within this process's own hard limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "config.h"
#include "fd_budget.h"

static void test_need_arithmetic(void **state) {
  (void)state;
  uint64_t need = 0;
  assert_int_equal(tp_fd_budget_need(1, 1, &need), 0);
  assert_int_equal(need, 1 * (2 * 1 + TP_FD_PER_LOOP) + TP_FD_MAIN + TP_FD_SPARE);
  assert_int_equal(tp_fd_budget_need(2, 64, &need), 0);
  assert_int_equal(need, 2 * (2 * 64 + TP_FD_PER_LOOP) + TP_FD_MAIN + TP_FD_SPARE);
  /* The configuration's largest values stay far from any overflow. */
  assert_int_equal(tp_fd_budget_need(TP_AGENT_MAX_LOOPS, TP_AGENT_MAX_IN_FLIGHT, &need), 0);
  assert_int_equal(need, (uint64_t)TP_AGENT_MAX_LOOPS *
                                 (TP_FD_PER_PROBE * TP_AGENT_MAX_IN_FLIGHT + TP_FD_PER_LOOP) +
                             TP_FD_MAIN + TP_FD_SPARE);
  /* Values no configuration can hold must not wrap around to a small need. */
  need = 42;
  assert_int_equal(tp_fd_budget_need(UINT64_MAX, 1, &need), -1);
  assert_int_equal(tp_fd_budget_need(1, UINT64_MAX / 2, &need), -1);
  assert_int_equal(tp_fd_budget_need(2, UINT64_MAX / 4, &need), -1);
  assert_int_equal(tp_fd_budget_need(UINT64_MAX / 4, 0, &need), -1); /* x TP_FD_PER_LOOP */
  assert_int_equal(need, 42);
}

static void test_plan(void **state) {
  (void)state;
  assert_int_equal(tp_fd_budget_plan(100, 1024, 4096), TP_FD_FITS);
  assert_int_equal(tp_fd_budget_plan(1024, 1024, 4096), TP_FD_FITS);
  assert_int_equal(tp_fd_budget_plan(1025, 1024, 4096), TP_FD_RAISE);
  assert_int_equal(tp_fd_budget_plan(4096, 1024, 4096), TP_FD_RAISE);
  assert_int_equal(tp_fd_budget_plan(4097, 1024, 4096), TP_FD_SHORT);
  assert_int_equal(tp_fd_budget_plan(5000, 1024, TP_FD_UNLIMITED), TP_FD_RAISE);
  assert_int_equal(tp_fd_budget_plan(UINT64_MAX, 32, 32), TP_FD_SHORT);
}

/* Against this process's real limits: lower the soft limit (always allowed),
 * then ask for a need between it and the hard limit. */
static void test_ensure_raises_and_refuses(void **state) {
  (void)state;
  struct rlimit saved;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 200)
    skip(); /* too little room to test a raise */
  struct rlimit low = {.rlim_cur = 64, .rlim_max = saved.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

  char err[512] = "", line[256];
  tp_fd_budget b;
  /* 1 loop x 40 in flight = 1 * (80 + 8) + 48 = 136 > 64: a raise. */
  assert_int_equal(tp_fd_budget_ensure(1, 40, false, &b, err, sizeof(err)), TP_E_OK);
  assert_true(b.raised);
  assert_int_equal(b.need, 136);
  assert_int_equal(b.limit, 64); /* --check changes nothing */
  struct rlimit now;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
  assert_int_equal(now.rlim_cur, 64);
  tp_fd_budget_describe(&b, line, sizeof(line));
  assert_non_null(strstr(line, "need 136 (1 loops x 40 probes in flight x 2"));
  assert_non_null(strstr(line, "limit 64"));
  assert_non_null(strstr(line, "raised"));

  assert_int_equal(tp_fd_budget_ensure(1, 40, true, &b, err, sizeof(err)), TP_E_OK);
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
  assert_int_equal(now.rlim_cur, 136); /* only as far as needed */
  assert_int_equal(b.limit, 136);

  /* A need above the hard limit: refused, naming need, limit and knobs. */
  if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 1000000) {
    unsigned in_flight = (unsigned)(saved.rlim_max / 2) + 1;
    assert_int_equal(tp_fd_budget_ensure(1, in_flight, true, &b, err, sizeof(err)), TP_E_TOOBIG);
    assert_non_null(strstr(err, "not enough file descriptors"));
    assert_non_null(strstr(err, "lower limits.max_in_flight or limits.loops"));
    tp_fd_budget_describe(&b, line, sizeof(line));
    assert_non_null(strstr(line, "NOT enough"));
  }
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_need_arithmetic),
      cmocka_unit_test(test_plan),
      cmocka_unit_test(test_ensure_raises_and_refuses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
