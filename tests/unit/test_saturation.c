/* test_saturation.c - knowing when the agent's timings are wrong (agent/saturation.h):
 * the CPU-wait ring's arithmetic, the per-result judgement against each threshold,
 * the in-flight controller's cuts and growth, the thread's real run-queue counter,
 * and the engine obeying a changed in-flight limit with real probes on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "cpu_wait.h"
#include "probe.h"
#include "profile.h"
#include "saturation.h"

#define MS 1000000ull

static void test_ring_permille(void **state) {
  (void)state;
  tp_cpu_wait_ring r = {0};
  unsigned pm = 0;
  assert_false(tp_cpu_wait_ring_permille(&r, 0, &pm)); /* nothing known yet */
  tp_cpu_wait_ring_add(&r, 1000 * MS, 0);
  assert_false(tp_cpu_wait_ring_permille(&r, 0, &pm)); /* one sample: no interval */
  tp_cpu_wait_ring_add(&r, 1100 * MS, 10 * MS);        /* 10 ms of 100 waited */
  tp_cpu_wait_ring_add(&r, 1200 * MS, 60 * MS);        /* 50 ms of 100 waited */
  assert_true(tp_cpu_wait_ring_permille(&r, 1000 * MS, &pm));
  assert_int_equal(pm, 300); /* 60 of 200 since the first sample */
  assert_true(tp_cpu_wait_ring_permille(&r, 1150 * MS, &pm));
  assert_int_equal(pm, 500); /* from the sample at or before 1150: the last interval */
  assert_true(tp_cpu_wait_ring_permille(&r, 1250 * MS, &pm));
  assert_int_equal(pm, 500); /* no interval closed since: the last one stands in */
  assert_true(tp_cpu_wait_ring_permille(&r, 0, &pm));
  assert_int_equal(pm, 300); /* before everything kept: from the oldest */
  /* The ring keeps the newest TP_CPU_WAIT_SAMPLES: wrap it and ask for the start. */
  for (unsigned i = 0; i < 2 * TP_CPU_WAIT_SAMPLES; i++)
    tp_cpu_wait_ring_add(&r, (1300 + 100 * (uint64_t)i) * MS, 60 * MS + (uint64_t)i * 100 * MS);
  assert_int_equal(r.count, TP_CPU_WAIT_SAMPLES);
  assert_true(tp_cpu_wait_ring_permille(&r, 0, &pm));
  assert_int_equal(pm, 1000); /* every ms waited since (capped at 1000) */
}

static tp_saturation_options options(bool adaptive) {
  return (tp_saturation_options){.max_loop_lag_ns = 10 * MS,
                                 .max_lateness_ns = 1000 * MS,
                                 .max_cpu_wait_permille = 200,
                                 .adaptive = adaptive,
                                 .min_in_flight = 4,
                                 .max_in_flight = 64};
}

static void test_judge_each_threshold(void **state) {
  (void)state;
  tp_saturation_options o = options(true);
  tp_saturation_ctl ctl;
  tp_saturation_ctl_init(&ctl, &o);
  tp_result r = {.loop_lag_ns = 10 * MS, .schedule_lateness_ns = 1000 * MS};
  tp_saturation_ctl_judge(&ctl, &r, true, 200); /* every value at its threshold: not past it */
  assert_false(r.saturated);
  assert_false(ctl.overloaded);
  r.loop_lag_ns = 10 * MS + 1;
  tp_saturation_ctl_judge(&ctl, &r, true, 0);
  assert_true(r.saturated);
  assert_true(ctl.overloaded);
  ctl.overloaded = false;
  r.loop_lag_ns = 0;
  r.schedule_lateness_ns = 1000 * MS + 1;
  tp_saturation_ctl_judge(&ctl, &r, true, 0);
  assert_true(r.saturated);
  assert_false(ctl.overloaded); /* lateness alone: fewer slots would only queue more */
  r.schedule_lateness_ns = 0;
  tp_saturation_ctl_judge(&ctl, &r, true, 201);
  assert_true(r.saturated);
  assert_true(ctl.overloaded);
  ctl.overloaded = false;
  tp_saturation_ctl_judge(&ctl, &r, false, 1000); /* unknown CPU wait is not evidence */
  assert_false(r.saturated);
  assert_int_equal(ctl.results, 5);
  assert_int_equal(ctl.saturated, 3);
}

static void test_controller_cuts_and_grows(void **state) {
  (void)state;
  tp_saturation_options o = options(true);
  tp_saturation_ctl ctl;
  tp_saturation_ctl_init(&ctl, &o);
  uint64_t t = 10000 * MS;
  assert_int_equal(ctl.limit, 64);
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t, true, 500, 10), 32); /* CPU wait: halve */
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t + 100 * MS, true, 500, 10), 32); /* < 500 ms */
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t + 500 * MS, true, 500, 10), 16);
  ctl.overloaded = true; /* a lagging result since the last tick */
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t + 1000 * MS, false, 0, 10), 8);
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t + 1500 * MS, true, 999, 10), 4);
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t + 2000 * MS, true, 999, 10), 4); /* floor */
  /* Healthy again: no growth within a second of the last cut (at 1.5 s). */
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t + 2400 * MS, true, 0, 10), 4);
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t + 2500 * MS, true, 0, 10), 5);
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t + 2600 * MS, true, 0, 0), 5); /* none queued */
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t + 2700 * MS, true, 0, 3), 6);
  for (unsigned i = 0; i < 100; i++)
    (void)tp_saturation_ctl_tick(&ctl, t + (2800 + 100 * (uint64_t)i) * MS, true, 0, 3);
  assert_int_equal(ctl.limit, 64); /* never past limits.max_in_flight */

  tp_saturation_options fixed = options(false);
  tp_saturation_ctl_init(&ctl, &fixed);
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t, true, 1000, 10), 64); /* not adaptive */
  tp_saturation_options odd = options(true);
  odd.min_in_flight = 100; /* a floor above the limit is the limit */
  tp_saturation_ctl_init(&ctl, &odd);
  assert_int_equal(tp_saturation_ctl_tick(&ctl, t, true, 1000, 10), 64);
}

/* The counter exists on Linux and never goes backwards. */
static void test_thread_counter(void **state) {
  (void)state;
  int fd = -1;
  uint64_t a = 0, b = 0;
  assert_int_equal(tp_cpu_wait_read_thread(&fd, &a), TP_E_OK);
  assert_true(fd >= 0);
  volatile uint64_t spin = 0;
  for (unsigned i = 0; i < 10000000; i++)
    spin += i;
  assert_int_equal(tp_cpu_wait_read_thread(&fd, &b), TP_E_OK);
  assert_true(b >= a);
  close(fd);
}

/* ---- the engine obeys a changed limit ---------------------------------------------------- */

typedef struct done_count {
  unsigned n;
} done_count;

static void on_done(tp_result *r, void *data) {
  done_count *d = data;
  d->n++;
  tp_result_free(r);
}

static void test_engine_limit_changes(void **state) {
  (void)state;
  /* A listener that never accepts: connects complete in the backlog, handshakes time out. */
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(lfd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(lfd, 16), 0);
  socklen_t len = sizeof(sa);
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);

  char err[256];
  tp_profile_spec spec = {.name = "p"};
  tp_profile *profile = NULL;
  assert_int_equal(tp_profile_new(&spec, &profile, err, sizeof(err)), TP_E_OK);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  tp_probe_engine_options eo = {.max_in_flight = 1};
  tp_probe_engine *engine = NULL;
  assert_int_equal(tp_probe_engine_new(&loop, &eo, NULL, &engine), TP_E_OK);
  tp_target target = {.name = "t", .host = "127.0.0.1", .port = ntohs(sa.sin_port)};
  tp_probe_timeouts to = {.connect_ms = 1000, .handshake_ms = 100};
  done_count done = {0};
  for (unsigned i = 0; i < 4; i++)
    assert_int_equal(tp_probe_engine_submit(engine, &target, profile, &to, on_done, &done),
                     TP_E_OK);
  assert_int_equal(tp_probe_engine_in_flight(engine), 1);
  assert_int_equal(tp_probe_engine_pending(engine), 3);
  assert_int_equal(tp_probe_engine_set_max_in_flight(engine, 3), TP_E_OK); /* starts 2 now */
  assert_int_equal(tp_probe_engine_in_flight(engine), 3);
  assert_int_equal(tp_probe_engine_pending(engine), 1);
  assert_int_equal(tp_probe_engine_set_max_in_flight(engine, 1), TP_E_OK); /* none cancelled */
  assert_int_equal(tp_probe_engine_in_flight(engine), 3);
  assert_int_equal(tp_probe_engine_max_in_flight(engine), 1);
  assert_int_equal(tp_probe_engine_set_max_in_flight(engine, 0), TP_E_INVAL);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(done.n, 4); /* the queued one ran once a slot was free under the new limit */
  tp_probe_engine_close(engine, NULL, NULL);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  tp_profile_free(profile);
  close(lfd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ring_permille),
      cmocka_unit_test(test_judge_each_threshold),
      cmocka_unit_test(test_controller_cuts_and_grows),
      cmocka_unit_test(test_thread_counter),
      cmocka_unit_test(test_engine_limit_changes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
